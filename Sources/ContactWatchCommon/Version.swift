// The one place the release version is written. Both executables print it for `--version`, the daemon logs it in
// its `ready` line, and `make install` / `make deb` read it from this line (keep the `string = "..."` form).

/// ContactWatch's version. The minor version moves whenever the state store's schema does (`StateStore.schemaVersion`,
/// `StoreVersionPolicyTests`), so that an operator sees before an upgrade that it migrates the store (which an older
/// build then refuses): two builds of 0.10.0 were schema 5 and 6, and nothing said so (an operator audit, session 43).
public enum ContactWatchVersion {
    /// Semantic version of this source tree.
    public static let string = "0.11.0"
}
