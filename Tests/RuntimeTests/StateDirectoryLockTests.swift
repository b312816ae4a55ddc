@testable import ContactWatchRuntime
import ContactWatchCommon
import Foundation
import Logging
import Synchronization
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

    /// Another descriptor of the same file holds the lock (flock locks belong to open file descriptions, so this
    /// process conflicts with itself), and the waiter's blocking `flock` is `blockingLock`.
    static func lockWhileHeld(refusedIsFatal: Bool = true,
                              blockingLock: @escaping @Sendable (Int32) -> Int32) throws -> Result<String?, DaemonError> {
        let path = NSTemporaryDirectory() + "cw-lock-\(UUID().uuidString)"
        let holder = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        let waiter = open(path, O_RDWR | O_CLOEXEC)
        defer { close(holder); close(waiter); unlink(path) }
        try #require(holder >= 0 && waiter >= 0)
        try #require(flock(holder, LOCK_EX | LOCK_NB) == 0)
        do throws(DaemonError) {
            return .success(try StateDirectoryLock.lock(waiter, directory: "/state", waiting: { _ in }, refusedIsFatal: refusedIsFatal,
                                                        waitSeconds: 5, blockingLock: blockingLock))
        } catch {
            return .failure(error)
        }
    }

    /// With `refusedIsFatal` false too (the state directory's own lock, whose refusal by a file system is only a
    /// warning): the wait began because another process holds the lock, and returning the failure as a refusal let
    /// a second daemon run beside the first on one store (a reviewer, session 33).
    @Test("a blocking flock that fails (ENOLCK) is said as that failure at once, not as a holder that stayed 5 s; fatal even where a refusal is not", arguments: [true, false])
    func blockingLockFails(refusedIsFatal: Bool) throws {
        let outcome = try Self.lockWhileHeld(refusedIsFatal: refusedIsFatal) { _ in ENOLCK }
        guard case .failure(let error) = outcome else {
            Issue.record("went on although another process holds the lock and the wait for it failed: \(outcome)")
            return
        }
        let reason = String(cString: strerror(ENOLCK))
        #expect(error.message.contains("waiting for the lock failed: \(reason)"), "\(error.message)")
        #expect(!error.message.contains("has been using it"), "\(error.message)")
        #expect(error.exitStatus != DaemonError(.store(.busy), "").exitStatus, "a failure, not a busy store (exit 75)")
    }

    @Test("a blocking flock interrupted by a signal (EINTR) is tried again")
    func blockingLockInterrupted() throws {
        let calls = Atomic<Int>(0)
        let outcome = try Self.lockWhileHeld { _ in
            calls.add(1, ordering: .relaxed).oldValue < 2 ? EINTR : 0
        }
        guard case .success(let refused) = outcome else {
            Issue.record("not locked after two interruptions: \(outcome)")
            return
        }
        #expect(refused == nil)
        #expect(calls.load(ordering: .relaxed) == 3)
    }
}

/// The open-files limit raised at start (`DescriptorLimit.raiseToHard`).
@Suite("Open-files limit: raised, or its failure said")
struct DescriptorLimitTests {
    @Test("limits that cannot be read are a failure with the system's words, not nothing")
    func unreadable() {
        let result = DescriptorLimit.raiseToHard(read: { _ in EFAULT })
        #expect(result == .failure(DescriptorLimit.Unreadable(reason: String(cString: strerror(EFAULT)))))
    }

    @Test("limits already at the hard limit are kept and reported as they are")
    func alreadyAtHard() {
        let result = DescriptorLimit.raiseToHard(read: { limit in
            limit.rlim_cur = 4096
            limit.rlim_max = 4096
            return 0
        })
        #expect(result == .success(DescriptorLimit.Raised(before: 4096, now: 4096, hard: 4096, failure: nil)))
    }

    @Test("a flood of failed accepts: every one counted, 10 lines per socket, then one line per socket saying how many more once the flood is over")
    func acceptFailureFlood() {
        let sink = LogLines()
        let counters = RuntimeCounters()
        let clock = Mutex(0.0)
        let log = AcceptFailureLog(counters: counters, logger: Logger(label: "test") { _ in MemoryLogHandler(sink: sink) },
                                   limiter: LogLimiter(burst: 10, intervalSeconds: 6, now: { clock.withLock { $0 } }))
        for _ in 0..<1000 { log.report(.output, endpoint: "tcp://127.0.0.1:7402", code: EMFILE) }
        for _ in 0..<12 { log.report(.journal, endpoint: "tcp://127.0.0.1:7403", code: ECONNABORTED) }
        #expect(counters.acceptFailures.load(ordering: .relaxed) == 1012)
        let lines = sink.entries.withLock { $0 }
        #expect(lines.count == 20)
        #expect(lines.first?.message.hasPrefix("cannot accept a connection on the output socket: Too many open files; no file descriptor left") == true)
        expectFloodEndSaid(in: sink, say: { log.sayHeldBack() }, quiet: { clock.withLock { $0 = 6 } }, expected: [
            "2 more failed accepts of connections on the journal socket not logged at warning (rate limit); the flood is over",
            "990 more failed accepts of connections on the output socket not logged at warning (rate limit); the flood is over",
        ], level: .warning, notLogged: ["2", "990"])
    }
}

/// The limit on threads checked at start (`ThreadLimit`): under 4 to 13 threads the daemon stalled, crashed or got
/// ready deaf to SIGTERM (session 53).
@Suite("The limit on threads at start")
struct ThreadLimitRefusalTests {
    @Test("RLIMIT_NPROC below 64 is refused for a user other than root, named; root, 64 and no limit are not")
    func processLimit() {
        let said = ThreadLimit.refusal(realUID: 1000, rlimit: 13, cgroupLimits: [])
        #expect(said?.contains("the limit on processes and threads is 13 (RLIMIT_NPROC") == true, "\(String(describing: said))")
        #expect(ThreadLimit.refusal(realUID: 1000, rlimit: 63, cgroupLimits: []) != nil)
        #expect(ThreadLimit.refusal(realUID: 1000, rlimit: 64, cgroupLimits: []) == nil)
        #expect(ThreadLimit.refusal(realUID: 1000, rlimit: nil, cgroupLimits: []) == nil)
        #expect(ThreadLimit.refusal(realUID: 0, rlimit: 5, cgroupLimits: []) == nil)  // RLIMIT_NPROC does not bind root
    }

    @Test("a cgroup's pids.max below 64, its own or one above it, is refused naming the file, for root too")
    func cgroupLimit() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cw-pids-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let unit = root + "/system.slice/cw.service", slice = root + "/system.slice"
        try FileManager.default.createDirectory(atPath: unit, withIntermediateDirectories: true)
        try "max\n".write(toFile: unit + "/pids.max", atomically: true, encoding: .utf8)
        try "40\n".write(toFile: slice + "/pids.max", atomically: true, encoding: .utf8)
        try "0::/system.slice/cw.service\n".write(toFile: root + "/cgroup", atomically: true, encoding: .utf8)
        let limits = ThreadLimit.cgroupPidsLimits(procCgroup: root + "/cgroup", root: root)
        #expect(limits.map(\.max) == [40] && limits.first?.path == slice + "/pids.max", "\(limits)")
        let said = ThreadLimit.refusal(realUID: 0, rlimit: nil, cgroupLimits: limits)
        #expect(said?.contains("the cgroup's limit on tasks is 40 (\(slice)/pids.max: TasksMax=") == true, "\(String(describing: said))")
        #expect(ThreadLimit.refusal(realUID: 0, rlimit: nil, cgroupLimits: [(slice + "/pids.max", 64)]) == nil)
        // cgroup v1's pids controller.
        try FileManager.default.createDirectory(atPath: root + "/pids/a", withIntermediateDirectories: true)
        try "20\n".write(toFile: root + "/pids/a/pids.max", atomically: true, encoding: .utf8)
        try "3:pids:/a\n1:cpu:/\n".write(toFile: root + "/cgroup1", atomically: true, encoding: .utf8)
        #expect(ThreadLimit.cgroupPidsLimits(procCgroup: root + "/cgroup1", root: root).map(\.max) == [20])
    }
}
