import ContactWatchEngine
@testable import ContactWatchRuntime
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// The daemon's side of checkpoint failures (`CheckpointWatch`): the store records them (`StateStore.checkpoints`),
/// the processing loop's housekeeping says them. Before session 29 they were swallowed.
@Suite("CheckpointWatch: WAL checkpoint failures said at warning, their end at info")
struct CheckpointWatchTests {
    static func outcomes(_ failures: Int, inARow: Int, _ last: String? = "disk I/O error") -> CheckpointOutcomes {
        var o = CheckpointOutcomes()
        o.failures = failures
        o.failingInARow = inARow
        o.lastFailure = failures > 0 ? last : nil
        return o
    }

    @Test("none: nothing said; new failures said at once, then at most once a minute with the count since; a success after a warning said once")
    func sayings() {
        let t0 = ContinuousClock.now
        func at(_ s: Int) -> ContinuousClock.Instant { t0 + .seconds(s) }
        var watch = CheckpointWatch()
        #expect(watch.observe(Self.outcomes(0, inARow: 0), at: at(0)) == nil)
        #expect(watch.observe(Self.outcomes(1, inARow: 1), at: at(1))
            == .failed(new: 1, total: 1, stillFailing: true, last: "disk I/O error", fileSizeLimit: false))
        #expect(watch.observe(Self.outcomes(5, inARow: 5), at: at(30)) == nil, "said again within a minute")
        #expect(watch.observe(Self.outcomes(9, inARow: 9, "database or disk is full"), at: at(62))
            == .failed(new: 8, total: 9, stillFailing: true, last: "database or disk is full", fileSizeLimit: false))
        #expect(watch.observe(Self.outcomes(9, inARow: 0), at: at(63)) == .recovered(total: 9))
        #expect(watch.observe(Self.outcomes(9, inARow: 0), at: at(64)) == nil, "the recovery said twice")
        // A failure followed by a success between two looks: said, as over; no recovery line after it.
        #expect(watch.observe(Self.outcomes(10, inARow: 0), at: at(200))
            == .failed(new: 1, total: 10, stillFailing: false, last: "disk I/O error", fileSizeLimit: false))
        #expect(watch.observe(Self.outcomes(10, inARow: 0), at: at(201)) == nil)
    }

    struct InjectedFault: Error, CustomStringConvertible {
        var description: String { "disk I/O error (injected)" }
    }

    @Test("a store whose checkpoints fail: the loop's watch logs a warning naming the -wal file and the error, counts them in the counters line, and says at info when they succeed again")
    func logsFromAStore() throws {
        let dir = NSTemporaryDirectory() + "cw-checkpoint-watch-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let failing = Atomic<Bool>(true)
        let store = try StateStore(directory: dir, synchronous: .full, walCheckpointFrames: 1,
                                   backgroundCheckpoints: false,
                                   checkpointFault: { if failing.load(ordering: .relaxed) { throw InjectedFault() } })
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        func commit(_ now: Int64) throws {
            try store.write(StateStore.prepare(changes: engine.takeChanges(), state: engine.state,
                                               journalFrom: Outbox(), publishedThrough: nil, now: now))
            store.checkpointWALIfDue()
        }
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in MemoryLogHandler(sink: lines) }
        let counters = RuntimeCounters()
        var watch = CheckpointWatch()
        let t0 = ContinuousClock.now
        watch.check(at: t0, store: store, logger: logger, counters: counters)
        #expect(lines.entries.withLock { $0.isEmpty })

        try commit(1)
        try commit(2)
        let n = store.checkpoints.failures
        try #require(n >= 2, "\(store.checkpoints)")
        watch.check(at: t0 + .seconds(1), store: store, logger: logger, counters: counters)
        let warning = try #require(lines.entries.withLock { $0.last })
        #expect(warning.level == .warning)
        #expect(warning.message.contains("WAL checkpoint failed \(n) times"), "\(warning.message)")
        #expect(warning.message.contains("disk I/O error (injected)"))
        #expect(warning.message.contains(store.path + "-wal"))
        #expect(warning.message.contains("still failing"))
        #expect(counters.checkpointFailures.load(ordering: .relaxed) == n)
        #expect(counters.summary.contains { $0.0 == "checkpointFailures" && $0.1 == n })

        failing.store(false, ordering: .relaxed)
        try commit(3)
        watch.check(at: t0 + .seconds(2), store: store, logger: logger, counters: counters)
        let recovered = try #require(lines.entries.withLock { $0.last })
        #expect(recovered.level == .info)
        #expect(recovered.message.contains("succeed again (\(n) failed"), "\(recovered.message)")
        #expect(lines.entries.withLock { $0.count } == 2)
    }

    /// A checkpoint refused by the process's file-size limit was said as a disk fault ("Check the disk and file
    /// system"), after a start that had warned of the limit (a reviewer, session 54).
    @Test("a checkpoint refused by the file-size limit (EFBIG) is said as that limit, not as the disk")
    func fileSizeLimit() throws {
        let dir = NSTemporaryDirectory() + "cw-checkpoint-fsize-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir, synchronous: .full, walCheckpointFrames: 1, backgroundCheckpoints: false,
                                   checkpointFault: {
                                       errno = EFBIG
                                       throw InjectedFault()
                                   })
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        try store.write(StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: Outbox(),
                                           publishedThrough: nil, now: 1))
        store.checkpointWALIfDue()
        #expect(store.checkpoints.lastFailureIsFileSizeLimit, "\(store.checkpoints)")
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in MemoryLogHandler(sink: lines) }
        var watch = CheckpointWatch()
        watch.check(at: .now, store: store, logger: logger, counters: RuntimeCounters())
        let warning = try #require(lines.entries.withLock { $0.last })
        #expect(warning.message.contains("the daemon's file-size limit (RLIMIT_FSIZE") && warning.message.contains("the disk is not at fault")
                && !warning.message.contains("Check the disk"), "\(warning.message)")
    }
}

/// The `-wal` file grown far past the size SQLite cuts it back to (another process's overlapping read transactions keep
/// the WAL from restarting: 55 MB → 2.9 GB in 60 s, unsaid, a fault tester, session 29).
@Suite("WALSizeWatch: a write-ahead log that keeps growing is said")
struct WALSizeWatchTests {
    @Test("under 4 × 64 MiB nothing; past it a warning, again at each doubling; once cut back to 64 MiB an info, and the threshold is 256 MiB again")
    func sayings() {
        let mib = 1_048_576
        var watch = WALSizeWatch()
        #expect(watch.observe(walBytes: 0) == nil)
        #expect(watch.observe(walBytes: 55 * mib) == nil)
        #expect(watch.observe(walBytes: 255 * mib) == nil)
        #expect(watch.observe(walBytes: 256 * mib) == .grown(bytes: 256 * mib))
        #expect(watch.observe(walBytes: 400 * mib) == nil, "said again before the size doubled")
        #expect(watch.observe(walBytes: 2_900 * mib) == .grown(bytes: 2_900 * mib))
        #expect(watch.observe(walBytes: 3_000 * mib) == nil)
        #expect(watch.observe(walBytes: 65 * mib) == nil, "not yet cut back to the limit")
        #expect(watch.observe(walBytes: 64 * mib) == .cutBack(bytes: 64 * mib))
        #expect(watch.observe(walBytes: 64 * mib) == nil)
        #expect(watch.observe(walBytes: 256 * mib) == .grown(bytes: 256 * mib))
    }

    @Test("walFileBytes is the -wal file's size: 0 before any, more after a commit")
    func walFileBytes() throws {
        let dir = NSTemporaryDirectory() + "cw-wal-size-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir)
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        try store.write(StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: Outbox(),
                                           publishedThrough: nil, now: 1))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? NSNumber)
        #expect(store.walFileBytes == size.intValue)
        #expect(store.walFileBytes > 0)
    }
}
