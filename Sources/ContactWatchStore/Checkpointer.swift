import ContactWatchCommon
import Foundation
import GRDB

/// Copies committed WAL frames back into the database file on its own thread and connection, so that the
/// processing thread's commits only append to the WAL. (Inline auto-checkpoints made a commit of ~1000 scattered
/// rows two to three times slower: every dirty page is written twice.) Should this thread fall behind, the writer's
/// `StateStore.checkpointWALIfDue` bounds the WAL (SQLite's own auto-checkpoint is off on the write connection).
final class Checkpointer: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var pending = false
    /// Whether the thread waits out `interval` after a checkpoint: a poke then only sets `pending` (the thread
    /// looks at it when the interval is over) instead of waking it once per commit to go back to sleep.
    private var napping = false
    private var stopping = false
    private var thread: Thread?
    private let queue: DatabaseQueue
    /// The shortest time between two checkpoints.
    private let interval: TimeInterval
    /// The thread's name as the kernel shows it (`top -H`, `perf`), beside the daemon's `cw-pipeline`, `cw-writer` and
    /// `cw-journal` (`ThreadPlacement`).
    static let threadName = "cw-checkpoint"

    init(path: String, synchronous: String, interval: TimeInterval = 0.1) throws {
        var config = Configuration()
        config.label = "ContactWatchStore.checkpointer"
        config.foreignKeysEnabled = false
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
        queue = try DatabaseQueue(path: path, configuration: config)
        self.interval = interval
        let t = Thread { [self] in run() }
        t.name = Self.threadName
        thread = t
        t.start()
    }

    /// Called after a commit: a checkpoint is due.
    func poke() {
        condition.lock()
        pending = true
        if !napping { condition.broadcast() }
        condition.unlock()
    }

    private func run() {
        nameCurrentThread(Self.threadName)
        while true {
            condition.lock()
            while !pending && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                break
            }
            pending = false
            condition.unlock()
            // Passive: never waits for the writer, never blocks it. Errors are retried at the next poke; the
            // writer's `checkpointWALIfDue` is the backstop.
            _ = try? queue.writeWithoutTransaction { db in
                try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
            }
            let deadline = MonotonicCondition.Deadline.after(seconds: interval)
            condition.lock()
            napping = true
            while !stopping && condition.wait(until: deadline) {}
            napping = false
            condition.unlock()
        }
        condition.lock()
        thread = nil
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the thread (after any checkpoint in progress) and closes its connection.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil { condition.wait() }
        condition.unlock()
        try? queue.close()
    }
}
