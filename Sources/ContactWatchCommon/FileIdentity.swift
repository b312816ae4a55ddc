#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The device and inode of a file, as `stat(2)` gives them for a path (following symbolic links unless told not to):
/// what tells the file first seen at a path from one that replaced it (the state store and its side files, the
/// daemon's `ipc://` socket files).
public struct FileIdentity: Equatable, Sendable {
    public var device: UInt64
    public var inode: UInt64

    /// Nil when `stat` (`lstat`) fails: nothing at `path`, or it cannot be reached.
    public init?(path: String, following: Bool = true) {
        var st = stat()
        guard (following ? stat(path, &st) : lstat(path, &st)) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
