import ContactWatchCommon
import CSQLiteConfig
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Copies committed WAL frames back into the database file on its own thread and connection, so that the
/// processing thread's commits only append to the WAL. (Inline auto-checkpoints made a commit of ~1000 scattered
/// rows two to three times slower: every dirty page is written twice.) Should this thread fall behind, the writer's
/// `StateStore.checkpointWALIfDue` bounds the WAL (SQLite's own auto-checkpoint is off on the write connection).
final class Checkpointer: @unchecked Sendable {
    private let record: CheckpointRecord
    private let condition = MonotonicCondition()
    private var pending = false
    /// Whether the thread waits out `interval` after a checkpoint: a poke then only sets `pending` (the thread
    /// looks at it when the interval is over) instead of waking it once per commit to go back to sleep.
    private var napping = false
    private var stopping = false
    /// Whether the thread runs (it clears this as it ends).
    private var running = false
    private let queue: DatabaseQueue
    /// The shortest time between two checkpoints.
    private let interval: TimeInterval
    /// The thread's name as the kernel shows it (`top -H`, `perf`), beside the daemon's `cw-pipeline`, `cw-writer` and
    /// `cw-journal` (`ThreadPlacement`).
    static let threadName = "cw-checkpoint"

    init(path: String, synchronous: String, record: CheckpointRecord, interval: TimeInterval = 0.1) throws {
        self.record = record
        var config = Configuration()
        config.label = "ContactWatchStore.checkpointer"
        config.foreignKeysEnabled = false
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
        queue = try DatabaseQueue(path: path, configuration: config)
        self.interval = interval
        running = true
        do {
            try SystemThread.start(name: Self.threadName) { [self] in run() }
        } catch {
            running = false
            try? queue.close()
            throw error
        }
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
            // Passive: never waits for the writer, never blocks it. Errors are retried at the next poke (the
            // writer's `checkpointWALIfDue` is the backstop) and recorded for the daemon to say (`CheckpointRecord`).
            record.run(on: queue)
            let deadline = MonotonicCondition.Deadline.after(seconds: interval)
            condition.lock()
            napping = true
            while !stopping && condition.wait(until: deadline) {}
            napping = false
            condition.unlock()
        }
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// Its connection will not checkpoint the WAL when it closes (a store refused at load: `StateStore.load`).
    func keepFilesAsFound() {
        queue.inDatabase { db in
            if let connection = db.sqliteConnection { _ = cw_sqlite_no_checkpoint_on_close(connection) }
        }
    }

    /// Stops the thread (after any checkpoint in progress) and closes its connection.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
        try? queue.close()
    }
}

/// What became of the store's WAL checkpoints (the checkpointer thread's and the writer's `checkpointWALIfDue`): a
/// checkpoint that keeps failing while commits still append to the WAL (an I/O error writing the database file) lets
/// the `-wal` file grow without bound, and nothing else would say so. The daemon reads it (`StateStore.checkpoints`)
/// and says it (`CheckpointWatch`). A PASSIVE checkpoint that cannot finish because a reader holds frames is not a
/// failure (SQLite returns a row saying so, no error), nor is one kept from running by another connection's lock
/// (`SQLITE_BUSY`, `SQLITE_LOCKED`): the next one tries again.
public struct CheckpointOutcomes: Sendable, Equatable {
    /// Checkpoints that failed since the store was opened.
    public var failures = 0
    /// Those since the last one that succeeded (0: the last one succeeded, or none failed).
    public var failingInARow = 0
    /// The last failure's text (SQLite's, as the store's errors word it).
    public var lastFailure: String? = nil
    /// The last failure was the process's file-size limit (`EFBIG`: `RLIMIT_FSIZE`), not the disk.
    public var lastFailureIsFileSizeLimit = false

    public init() {}
}

/// Records each checkpoint's outcome; runs them (both connections' checkpoints go through `run(on:)`).
final class CheckpointRecord: Sendable {
    private let outcomes = Mutex(CheckpointOutcomes())
    /// Tests: thrown inside each checkpoint's access to the connection, in place of SQLite's error.
    private let fault: (@Sendable () throws -> Void)?

    /// Asked before each checkpoint: false skips it (`StateStore.shrankUnseen`: the file was cut short under the daemon).
    private let precheck = Mutex<LockedClosure<Void, Bool>?>(nil)

    init(fault: (@Sendable () throws -> Void)? = nil) { self.fault = fault }

    var current: CheckpointOutcomes { outcomes.withLock { $0 } }

    func setPrecheck(_ check: @escaping @Sendable () -> Bool) { precheck.withLock { $0 = LockedClosure { _ in check() } } }

    /// Runs a PASSIVE checkpoint on `queue`'s connection and records how it went.
    func run(on queue: DatabaseQueue) {
        if let check = precheck.withLock({ $0 }), !check.call(()) { return }
        errno = 0
        do {
            try queue.writeWithoutTransaction { db in
                try fault?()
                _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
            }
            outcomes.withLock { $0.failingInARow = 0 }
        } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode.primaryResultCode) {
            // Another connection in the way (a read transaction's schema read meeting a WAL restart, say): the
            // checkpoint did not run, as when a PASSIVE one finds frames in use, and the next one tries again. Not a
            // failure of the disk, and a warning for it would cry wolf.
            return
        } catch {
            // SQLite's record of the system call that failed, when it kept one; else this thread's errno (cleared
            // before the checkpoint), as `StateStore.systemErrno` does.
            let threadErrno = errno
            let recorded = queue.inDatabase { db in sqlite3_system_errno(db.sqliteConnection) }
            let systemErrno = recorded != 0 ? recorded : threadErrno
            var text = "\(error)"
            if let e = error as? DatabaseError {
                text = e.message ?? "\(e.resultCode)"
                if systemErrno != 0, [.SQLITE_IOERR, .SQLITE_FULL].contains(e.resultCode.primaryResultCode) {
                    text += "; the system said: \(FileCheck.errnoText(systemErrno))"
                }
            }
            outcomes.withLock {
                $0.failures += 1
                $0.failingInARow += 1
                $0.lastFailure = text
                $0.lastFailureIsFileSizeLimit = systemErrno == EFBIG
            }
        }
    }
}

/// A closure to keep in a `Mutex`, boxed in a struct. A bare closure as a `Mutex`'s value is reabstracted at every
/// `withLock` and the wrapped copy is written back, so each read left two more thunks in the `Mutex` for good
/// (swiftlang/swift#91348; this toolchain does it in release builds too). `CheckpointRecord.precheck`, read before each
/// checkpoint (up to ten a second under load), grew the daemon by ~1.7 kB a second while events flowed — the "creep per
/// reconnect" of session 47's leak hunt — and deepened every later call by two frames, until the checkpointer's stack
/// overflowed: SIGSEGV after ~130,000 checkpoints of an 8 MB stack (64 B a read), a few hours of steady load — seen
/// in debug and release builds alike under a 128 kB stack, after 195 and 198 s at 400 events a second (session 48).
struct LockedClosure<Input, Output>: Sendable {
    let call: @Sendable (Input) -> Output
}
