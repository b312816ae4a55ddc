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

    /// The directories above `path`, nearest first, after resolving links: `realpath` of the path, else of its
    /// directory (the path itself may not exist yet: a socket file before its bind), else the path as given.
    static func directories(above path: String) -> [String] {
        func parent(_ p: String) -> String? {
            guard let slash = p.lastIndex(of: "/") else { return "." }
            return slash == p.startIndex ? (p == "/" ? nil : "/") : String(p[..<slash])
        }
        func real(_ p: String) -> String? {
            guard let r = realpath(p, nil) else { return nil }
            defer { free(r) }
            return String(cString: r)
        }
        let resolved: String
        if let r = real(path) {
            resolved = r
        } else if let directory = parent(path), let r = real(directory) {
            let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
            resolved = r == "/" ? "/" + name : r + "/" + name
        } else {
            resolved = path
        }
        var out: [String] = []
        var next = parent(resolved)
        while let directory = next {
            out.append(directory)
            next = directory == "." ? nil : parent(directory)
        }
        return out
    }

    /// The first directory above `path` that any user can write without the sticky bit — or, with `freeNameToo`, the
    /// path's own directory with it (there anyone can take the name while it is free). Nil when none.
    public static func firstWritableByAnyone(above path: String, freeNameToo: Bool = false) -> Found? {
        for (k, directory) in directories(above: path).enumerated() {
            var st = stat()
            if stat(directory, &st) == 0, st.st_mode & 0o002 != 0, (k == 0 && freeNameToo) || st.st_mode & S_ISVTX == 0 {
                return Found(directory: directory, mode: st.st_mode)
            }
        }
        return nil
    }

    /// The first directory above `path` owned by another user than this process's (effective) user and root, and that
    /// user: they can rename what is below it away and put their own in its place, whatever its mode (ssh's
    /// StrictModes refuses such a path likewise; a reviewer, session 46, swapped an allow-list for a link this way).
    public static func firstOwnedByAnotherUser(above path: String) -> (directory: String, uid: uid_t)? {
        for directory in directories(above: path) {
            var st = stat()
            if stat(directory, &st) == 0, st.st_uid != 0, st.st_uid != geteuid() { return (directory, st.st_uid) }
        }
        return nil
    }
}
