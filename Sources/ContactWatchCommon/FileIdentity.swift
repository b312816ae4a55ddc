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

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// Nil when `stat` (`lstat`) fails: nothing at `path`, or it cannot be reached.
    public init?(path: String, following: Bool = true) {
        var st = stat()
        guard (following ? stat(path, &st) : lstat(path, &st)) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

/// A file's identity and its size and status-change time: any write into it, a truncation, a `chmod`, a rename in or
/// out (for a directory: a file added or removed) changes one of them. What tells a file as it was seen from one that
/// changed since: the store's saved copy (`lstat`), the configuration file and the allow-list directories read by a
/// start (following links).
public struct FileStamp: Equatable, Sendable {
    public var identity: FileIdentity
    public var size: Int64
    public var changedSeconds: Int
    public var changedNanoseconds: Int

    /// Nil when `stat` (`lstat`) fails.
    public init?(path: String, following: Bool = true) {
        var st = stat()
        guard (following ? stat(path, &st) : lstat(path, &st)) == 0 else { return nil }
        identity = FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        size = Int64(st.st_size)
        changedSeconds = Int(st.st_ctim.tv_sec)
        changedNanoseconds = Int(st.st_ctim.tv_nsec)
    }
}
