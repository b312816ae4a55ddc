// The one place the release version is written. Both executables print it for `--version`, the daemon logs it in
// its `ready` line, and `make install` / `make deb` read it from this line (keep the `string = "..."` form).

/// ContactWatch's version.
public enum ContactWatchVersion {
    /// Semantic version of this source tree.
    public static let string = "0.10.0"
}
