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
        // Then every directory the path is resolved through, links included: a link's own directory decides where
        // the link points, and was never looked at — a link to a safe allow-list, put in another user's directory
        // or a world-writable one, passed, and that user re-pointed it (a bug hunter, session 47).
        for directory in traversed(path) where !out.contains(directory) { out.append(directory) }
        return out
    }

    /// The directories `path` is looked up in, one component at a time as the kernel resolves it: each link's own
    /// directory, then where its target leads (at most 40 links, as the kernel's limit). Stops at the first
    /// component that does not exist. A relative path starts at the current directory.
    static func traversed(_ path: String) -> [String] { resolution(of: path).directories }

    /// The directories `path` is looked up in (`traversed`) and the symbolic links met on the way, with their owners.
    static func resolution(of path: String) -> (directories: [String], links: [(path: String, uid: uid_t)]) {
        func components(_ p: String) -> [String] { p.split(separator: "/").map(String.init) }
        func parent(_ d: String) -> String {
            guard let slash = d.lastIndex(of: "/"), slash != d.startIndex else { return "/" }
            return String(d[..<slash])
        }
        var current = "/"
        if !path.hasPrefix("/") {
            guard let cwd = getcwd(nil, 0) else { return ([], []) }
            current = String(cString: cwd)
            free(cwd)
        }
        var pending = components(path)
        var out: [String] = []
        var met: [(path: String, uid: uid_t)] = []
        var links = 0
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name == "." { continue }
            if name == ".." { current = parent(current); continue }
            if !out.contains(current) { out.append(current) }
            let next = current == "/" ? "/" + name : current + "/" + name
            var st = stat()
            guard lstat(next, &st) == 0 else { break }
            guard st.st_mode & S_IFMT == S_IFLNK else {
                current = next
                continue
            }
            links += 1
            met.append((next, st.st_uid))
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(next, &buffer, buffer.count - 1)
            guard links <= 40, n > 0 else { break }
            let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") { current = "/" }
            pending = components(target) + pending
        }
        return (out, met)
    }

    /// The first symbolic link met in resolving `path` that is owned by another user than this process's (effective)
    /// user and root: its owner can re-point it, even in a sticky directory (`/tmp`), where the directory checks let it
    /// pass (a reviewer, session 47, re-pointed such a link at the publishers' list; the kernel's
    /// `fs.protected_symlinks` refuses to follow it only where that is enabled).
    public static func firstLinkOwnedByAnotherUser(in path: String) -> (link: String, uid: uid_t)? {
        resolution(of: path).links.first { $0.uid != 0 && $0.uid != geteuid() }.map { ($0.path, $0.uid) }
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
