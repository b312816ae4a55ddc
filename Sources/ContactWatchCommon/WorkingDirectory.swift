#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The working directory a relative path is taken from.
public enum WorkingDirectory {
    /// "; the path is relative, and the working directory it is taken from no longer exists" when `path` is relative
    /// and the process's working directory was deleted (`getcwd` fails with `ENOENT`), else "": added to a failure
    /// that said only "No such file or directory" of the path (a process-environment hunter, session 53).
    public static func goneNote(for path: String) -> String {
        guard !path.hasPrefix("/") else { return "" }
        if let cwd = getcwd(nil, 0) {
            free(cwd)
            return ""
        }
        return errno == ENOENT ? "; the path is relative, and the working directory it is taken from no longer exists" : ""
    }
}
