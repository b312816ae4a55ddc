@testable import ContactWatchRuntime
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Who holds the state directory's lock, as a second daemon names it while it waits (`StateDirectoryLock.holder`).
@Suite("State directory lock: the holder named from /proc/locks")
struct StateDirectoryLockTests {
    /// Device fe:00 (major 254, minor 0), as glibc's makedev builds it.
    static let device = UInt64(254) << 8

    @Test("the granted FLOCK on the file's device and inode, not a POSIX lock, another inode or device, nor a waiter")
    func parse() {
        let text = """
            1: POSIX  ADVISORY  WRITE 111 fe:00:5309032 0 EOF
            2: FLOCK  ADVISORY  WRITE 222 fe:01:5309032 0 EOF
            3: FLOCK  ADVISORY  WRITE 333 fe:00:5309033 0 EOF
            4: FLOCK  ADVISORY  WRITE 444 fe:00:5309032 0 EOF
            4: -> FLOCK  ADVISORY  WRITE 555 fe:00:5309032 0 EOF
            """
        #expect(StateDirectoryLock.holder(inLocks: text, device: Self.device, inode: 5_309_032) == 444)
        #expect(StateDirectoryLock.holder(inLocks: text, device: Self.device, inode: 5_309_034) == nil)
        let waiterOnly = "7: -> FLOCK  ADVISORY  WRITE 555 fe:00:5309032 0 EOF\n"
        #expect(StateDirectoryLock.holder(inLocks: waiterOnly, device: Self.device, inode: 5_309_032) == nil)
        #expect(StateDirectoryLock.holder(inLocks: "", device: Self.device, inode: 1) == nil)
    }

    @Test("a lock this process holds on a real file is found under its own pid")
    func realLock() throws {
        let path = NSTemporaryDirectory() + "cw-lock-\(UUID().uuidString)"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        #expect(StateDirectoryLock.holder(of: fd) == nil, "found a holder before locking")
        try #require(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(StateDirectoryLock.holder(of: fd) == getpid())
    }
}
