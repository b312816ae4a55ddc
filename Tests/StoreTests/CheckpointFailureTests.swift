import ContactWatchTestThreads
import ContactWatchEngine
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import GRDB
import Synchronization
import Testing

/// A WAL checkpoint that fails does not fail a commit (commits append to the WAL), so before session 29 a checkpoint
/// that kept failing — an I/O error writing the database file — grew the `-wal` file with nothing said (both
/// connections' checkpoints were `try?`). They are now recorded (`StateStore.checkpoints`) for the daemon to say.
/// The failure is injected inside the checkpoint's access to its connection (`checkpointFault`), where SQLite's would
/// be thrown.
@Suite("WAL checkpoint failures are recorded, not swallowed", .computing)
struct CheckpointFailureTests {
    static let ioError = DatabaseError(resultCode: .SQLITE_IOERR_WRITE, message: "disk I/O error")

    static func batch(_ engine: Engine, _ lines: ArraySlice<String>, now: Int64) -> PreparedCommit {
        var outbox = Outbox()
        feed(engine, lines, into: &outbox)
        return StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: outbox,
                                  publishedThrough: nil, now: now)
    }

    @Test("the writer's checkpoint failing: each failure counted with SQLite's text, commits go on and the WAL grows past its bound; one success clears the run, not the total")
    func writerCheckpointFailures() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let failing = Atomic<Bool>(true)
        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: 8,
                                   backgroundCheckpoints: false,
                                   checkpointFault: { if failing.load(ordering: .relaxed) { throw Self.ioError } })
        defer { store.close() }
        #expect(store.checkpoints == CheckpointOutcomes())
        let engine = try Engine(settings: EngineSettings())
        let lines = SyntheticStream.generate(seed: 29, count: 600)
        var ran = 0
        for b in 0..<10 {
            try store.write(Self.batch(engine, lines[(b * 60)..<((b + 1) * 60)], now: 1_000 + Int64(b)))
            if store.checkpointWALIfDue() { ran += 1 }
        }
        try #require(ran >= 3, "the WAL bound was not crossed often enough: \(ran) checkpoints")
        let failed = store.checkpoints
        // write() also runs a due checkpoint before a commit when the caller did not: all of them failed.
        #expect(failed.failures >= ran)
        #expect(failed.failingInARow == failed.failures)
        #expect(failed.lastFailure?.contains("disk I/O error") == true, "\(failed)")
        #expect(store.walFrames.count > 8 * 3, "the WAL did not grow while checkpoints failed: \(store.walFrames.count) frames")

        failing.store(false, ordering: .relaxed)
        try store.write(Self.batch(engine, lines[0..<0], now: 2_000))
        #expect(store.checkpointWALIfDue())
        let after = store.checkpoints
        #expect(after.failures == failed.failures)
        #expect(after.failingInARow == 0)
        // The copy ran: the next commit restarts the WAL.
        try store.write(Self.batch(engine, lines[0..<0], now: 2_001))
        #expect(store.walFrames.count < 8, "the WAL did not restart after a checkpoint succeeded: \(store.walFrames.count)")
    }

    @Test("a checkpoint kept from running by another connection's lock (SQLITE_BUSY) is no failure: nothing recorded, nothing to warn of")
    func busyIsNoFailure() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: 1,
                                   backgroundCheckpoints: false,
                                   checkpointFault: { throw DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked") })
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        try store.write(Self.batch(engine, [], now: 1))
        #expect(store.checkpointWALIfDue())
        #expect(store.checkpoints == CheckpointOutcomes())
    }

    @Test("the checkpointer thread's failures are recorded too")
    func backgroundCheckpointFailures() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let calls = DispatchSemaphore(value: 0)
        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: .max,
                                   checkpointFault: { calls.signal(); throw Self.ioError })
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        let lines = SyntheticStream.generate(seed: 30, count: 120)
        // Each commit pokes the checkpointer. Its second checkpoint begins after its first was recorded (one thread).
        try store.write(Self.batch(engine, lines[0..<60], now: 1_000))
        try #require(calls.wait(timeout: .now() + 10) == .success, "the checkpointer never ran")
        try store.write(Self.batch(engine, lines[60..<120], now: 1_001))
        try #require(calls.wait(timeout: .now() + 10) == .success, "the checkpointer did not run again")
        let outcomes = store.checkpoints
        #expect(outcomes.failures >= 1)
        #expect(outcomes.failingInARow >= 1)
        #expect(outcomes.lastFailure?.contains("disk I/O error") == true, "\(outcomes)")
    }
}

/// The stop's deadline on lock waits (`StateStore.endLockWaits`): it ends a commit's wait, keeps its earliest value,
/// and leaves waits with a give-up of their own (a prune's, a save's after a lost side file) to that policy.
@Suite("LockWait: the stop's deadline", .computing)
struct LockWaitStopTests {
    @Test("past the deadline a wait ends at once and says it was the stop's; a later request does not move it; a scoped wait keeps its own policy")
    func stopDeadline() {
        let wait = LockWait(timeoutMilliseconds: 5000)
        #expect(wait.shouldRetry(afterTries: 0), "no deadline yet: SQLite's schedule")
        #expect(!wait.endedForTheStop)
        wait.end(by: ContinuousClock.now - .seconds(1))
        wait.end(by: ContinuousClock.now + .seconds(60))  // a second stop request
        #expect(!wait.shouldRetry(afterTries: 1), "the earliest deadline was moved later")
        #expect(wait.endedForTheStop)
        // A scoped wait that does not give up still waits (one pause of SQLite's schedule: 2 ms).
        #expect(wait.givingUp(when: { false }) { wait.shouldRetry(afterTries: 1) })
        #expect(!wait.givingUp(when: { true }) { wait.shouldRetry(afterTries: 1) })
    }
}
