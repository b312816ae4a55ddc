#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The directories above a path that let other users replace what is below them. In a directory any user can write
/// without the sticky bit, any of them can rename an entry away and put their own in its place (ssh's StrictModes
/// walks the path for the same reason); with the sticky bit (`/tmp`), they can still create a name that is free.
public enum OpenDirectories {
    /// A directory above `path` and its mode.
    public struct Found: Sendable, Equatable {
        public var directory: String
        public var mode: mode_t
        /// `0777`, `01777`: the mode as `ls` and `chmod` write it.
        public var modeText: String { "0" + String(mode & 0o7777, radix: 8) }
    }

    /// The first directory above `path` (after resolving links: `realpath` of the path, else of its directory, else
    /// the path as given) that any user can write without the sticky bit — or, with `freeNameToo`, the path's own
    /// directory with it (there anyone can take the name while it is free). Nil when none.
    public static func firstWritableByAnyone(above path: String, freeNameToo: Bool = false) -> Found? {
        func parent(_ p: String) -> String? {
            guard let slash = p.lastIndex(of: "/") else { return "." }
            return slash == p.startIndex ? (p == "/" ? nil : "/") : String(p[..<slash])
        }
        func real(_ p: String) -> String? {
            guard let r = realpath(p, nil) else { return nil }
            defer { free(r) }
            return String(cString: r)
        }
        // The path itself may not exist yet (a socket file before its bind): its directory is resolved then.
        let resolved: String
        if let r = real(path) {
            resolved = r
        } else if let directory = parent(path), let r = real(directory) {
            let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
            resolved = r == "/" ? "/" + name : r + "/" + name
        } else {
            resolved = path
        }
        var next = parent(resolved)
        var own = true
        while let directory = next {
            var st = stat()
            if stat(directory, &st) == 0, st.st_mode & 0o002 != 0, (own && freeNameToo) || st.st_mode & S_ISVTX == 0 {
                return Found(directory: directory, mode: st.st_mode)
            }
            own = false
            next = directory == "." ? nil : parent(directory)
        }
        return nil
    }
}
