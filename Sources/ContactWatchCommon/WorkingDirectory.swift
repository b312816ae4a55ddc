#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The working directory a relative path is taken from.
public enum WorkingDirectory {
    /// "the path is relative, and the working directory it is taken from no longer exists" when `path` is relative
    /// and the process's working directory was deleted (`getcwd` fails with `ENOENT`), else nil: added to a failure
    /// that said only "No such file or directory" of the path (a process-environment hunter, session 53).
    public static func goneReason(for path: String) -> String? {
        guard !path.hasPrefix("/") else { return nil }
        if let cwd = getcwd(nil, 0) {
            free(cwd)
            return nil
        }
        return errno == ENOENT ? "the path is relative, and the working directory it is taken from no longer exists" : nil
    }

    /// `goneReason` for an `ipc://` endpoint's path (not an abstract name, `ipc://@…`); nil for any other endpoint.
    public static func goneReason(forEndpoint endpoint: String) -> String? {
        guard endpoint.hasPrefix("ipc://") else { return nil }
        let path = String(endpoint.dropFirst("ipc://".count))
        return path.hasPrefix("@") ? nil : goneReason(for: path)
    }
}
