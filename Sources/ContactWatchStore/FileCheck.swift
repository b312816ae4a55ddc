import ContactWatchCommon

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks an existing database file with plain reads, before SQLite touches it (SQLite would create `-wal`/`-shm`
/// side files, and could write to the file). Catches garbage, truncated, foreign and newer-schema files without
/// modifying anything.
public enum FileCheck {
    /// `PRAGMA application_id` of a ContactWatch store: "CWst".
    static let applicationID: UInt32 = 0x4357_7374

    struct Header {
        var pageSize: Int
        var pageCount: Int?
        var userVersion: UInt32
        var applicationID: UInt32
        var fileSize: Int
    }

    /// fsyncs a file or directory (best effort).
    static func fsync(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsyncFD(fd)
        close(fd)
    }

    /// fsyncs a file: 0, or the errno of the failed `open` or `fsync`.
    static func sync(path: String) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return fsyncFD(fd) == 0 ? 0 : errno
    }

    private static func fsyncFD(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        return Glibc.fsync(fd)
        #else
        return Darwin.fsync(fd)
        #endif
    }

    static func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// Why the file system holding `directory` is full, or nil: no inode left for a new file, or less than 64 KiB
    /// free for an unprivileged user (`statvfs`). Asked only after creating or opening the store failed, because
    /// SQLite's message for a file it could not create there is "unable to open database file", and the errno it
    /// leaves behind is often a later call's (ENOENT).
    static func fullFileSystem(holding directory: String) -> String? {
        var st = statvfs()
        guard statvfs(directory, &st) == 0 else { return nil }
        if st.f_files > 0 && st.f_favail == 0 { return "no inode left for a new file" }
        if UInt64(st.f_bavail) * UInt64(st.f_frsize) < 64 * 1024 {
            return "\(UInt64(st.f_bavail) * UInt64(st.f_frsize)) bytes free"
        }
        return nil
    }

    /// `mkdir -p`: creates `directory` and its missing parents (mode 0777 less the umask, as `FileManager` did; the
    /// last one, the state directory itself, 0750 less the umask: it holds every alert, which other local users
    /// have no business reading, whatever the umask of a shell that started the daemon), each at least u+rwx.
    /// Returns nil on success, else why not with the path it failed at, in the system's words: e.g. "/srv/state:
    /// Not a directory" when a parent is a regular file, "/srv/state: Permission denied", "/srv: Read-only file
    /// system". (Foundation's error said only "NSCocoaErrorDomain error 512".)
    public static func createDirectories(_ directory: String) -> String? {
        var prefix = directory.hasPrefix("/") ? "/" : ""
        let components = directory.split(separator: "/", omittingEmptySubsequences: true)
        for (k, component) in components.enumerated() {
            prefix += prefix.isEmpty || prefix.hasSuffix("/") ? String(component) : "/" + component
            var st = stat()
            if stat(prefix, &st) == 0 {
                if (st.st_mode & S_IFMT) != S_IFDIR { return "\(prefix): \(errnoText(ENOTDIR)) (it is a file)" }
                continue
            }
            let statErrno = errno
            if statErrno != ENOENT { return "\(prefix): \(errnoText(statErrno))" }
            // A symbolic link to nothing (a state directory linked to a disk that is not mounted): mkdir said "File
            // exists", sending the operator after a file that is not there (a fault tester, session 35).
            if lstat(prefix, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                return "\(prefix): a symbolic link to \(symbolicLinkTarget(prefix) ?? "?"), which does not exist (is its file system "
                    + "mounted? mount it, or correct the link; do not create the target by hand unless this is a new "
                    + "installation: a daemon started on an empty directory starts with no cases)"
            }
            if mkdir(prefix, k == components.count - 1 ? 0o750 : 0o777) != 0 {
                let e = errno
                // Another process may have made it in between.
                if e == EEXIST, stat(prefix, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { continue }
                return "\(prefix): \(errnoText(e))"
            }
            // The umask is for others' bits: one that takes the owner's own (`UMask=0277`, 0777) made a directory the
            // daemon could not use (`d---------`), refused at the next step with "Permission denied" and left so for
            // every later start (a process-environment hunter, session 53). A directory made here is at least u+rwx.
            if stat(prefix, &st) == 0, st.st_mode & 0o700 != 0o700 { _ = chmod(prefix, (st.st_mode & 0o7777) | 0o700) }
        }
        return nil
    }

    /// The size of a file, or nil when it does not exist.
    static func size(of path: String) throws(StoreError) -> Int? {
        var st = stat()
        if stat(path, &st) != 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw .unreadable(path, errnoText(e))
        }
        if let notRegular = FileKind(mode: st.st_mode).notRegularFile { throw .unreadable(path, notRegular) }
        return Int(st.st_size)
    }

    /// Reads and validates the 100-byte SQLite header of `path`.
    static func header(of path: String, knownSchemaVersion: Int) throws(StoreError) -> Header {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .unreadable(path, errnoText(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path, errnoText(errno)) }
        let fileSize = Int(st.st_size)
        var h = [UInt8](repeating: 0, count: 100)
        var got = 0
        while got < 100 {
            let n = h.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, 100 - got) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path, errnoText(errno))
            }
            if n == 0 { break }
            got += n
        }
        if fileSize == 0 { throw .corrupt(path, "the file is empty") }
        let magic = Array("SQLite format 3".utf8) + [0]
        guard got >= 16, Array(h[0..<16]) == magic else {
            throw .corrupt(path, "the file does not start with the SQLite header; it is not a database or is damaged")
        }
        guard got == 100 else { throw .corrupt(path, "the file is truncated to \(fileSize) bytes") }
        func be16(_ o: Int) -> Int { Int(h[o]) << 8 | Int(h[o + 1]) }
        func be32(_ o: Int) -> UInt32 {
            UInt32(h[o]) << 24 | UInt32(h[o + 1]) << 16 | UInt32(h[o + 2]) << 8 | UInt32(h[o + 3])
        }
        var pageSize = be16(16)
        if pageSize == 1 { pageSize = 65536 }
        guard pageSize >= 512 && pageSize <= 65536 && pageSize & (pageSize - 1) == 0 else {
            throw .corrupt(path, "invalid page size \(pageSize) in the header")
        }
        guard (1...2).contains(h[18]), (1...2).contains(h[19]), h[21] == 64, h[22] == 32, h[23] == 32 else {
            throw .corrupt(path, "invalid file format bytes in the header")
        }
        let app = be32(68)
        let userVersion = be32(60)
        if app != applicationID {
            throw .foreign(path, app == 0 ? "it is an SQLite database without an application id"
                : "it is an SQLite database with application id 0x\(String(app, radix: 16))")
        }
        if Int(userVersion) > knownSchemaVersion {
            throw .newerSchema(path, found: Int(userVersion), known: knownSchemaVersion)
        }
        // The in-header page count is valid when the change counter matches "version-valid-for".
        let pageCount: Int? = be32(24) == be32(92) && be32(28) > 0 ? Int(be32(28)) : nil
        return Header(pageSize: pageSize, pageCount: pageCount, userVersion: userVersion, applicationID: app,
                      fileSize: fileSize)
    }

    /// Checks that the file holds every page its header claims. Skipped while a non-empty `-wal` exists: a checkpoint
    /// interrupted by a crash may leave the main file short, and SQLite completes it from the WAL on open.
    static func checkLength(_ header: Header, path: String, walSize: Int?) throws(StoreError) {
        if let walSize, walSize > 0 { return }
        guard header.fileSize % header.pageSize == 0 else {
            throw .corrupt(path, "the file is truncated: \(header.fileSize) bytes is not a whole number of "
                + "\(header.pageSize)-byte pages")
        }
        if let pages = header.pageCount, header.fileSize < pages * header.pageSize {
            throw .corrupt(path, "the file is truncated: the header records \(pages) pages of \(header.pageSize) bytes, "
                + "the file has \(header.fileSize / header.pageSize)")
        }
    }
}
