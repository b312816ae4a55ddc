import ContactWatchCommon
import ContactWatchEngine
import ContactWatchStore
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// Writes prepared batches to the state store on its own thread, in order, so the processing thread never waits on
/// the disk: it prepares batch k+1 while batch k is being written.
///
/// Each time a batch is durable (or a write failed) the writer thread sends one empty frame on its own `inproc` PAIR
/// socket, connected to the socket the processing loop polls (`signalEndpoint`): the loop wakes, reads
/// `completedCount` and `error`, and publishes what is durable. Nothing sleeps or polls the counter on a timer.
///
/// When a commit leaves the WAL at its bound (`StateStore.walCheckpointFrames`), the writer copies it back
/// (`StateStore.checkpointWALIfDue`) after that signal, before it takes the next batch.
///
/// A commit that finds a side file of the store deleted saves what the WAL held before it fails (`StateStore`); when
/// another process's read transaction keeps that copy from finishing, it waits for the transaction to end, with no input
/// read meanwhile (`isWaitingForReaders`), until the daemon stops (`close` ends the wait).
///
/// Journal retention runs here too, between batches (`requestPrune`): a prune takes the store's write lock, and may wait
/// up to the busy timeout for another process's lock or take long on a large journal, which on the processing thread
/// stopped event processing (and SIGTERM, subscriptions, /healthz) for that long. Here it delays only commits, and in
/// bounded steps (`pruneRowsPerStep` rows each), with any batch queued meanwhile written before the next step.
///
/// Threads: the writer thread owns its PAIR socket (created, used and closed there); `submit`, `requestPrune` and
/// `close` are called from the processing thread; `completedCount` and `error` from any thread.
final class CommitWriter: @unchecked Sendable {
    private let store: StateStore
    private let condition = MonotonicCondition()
    // Guarded by `condition`.
    private var queue: [PreparedCommit] = []
    /// The last batch written, emptied (`PreparedCommit.recycled()`), for the next `prepare` to refill.
    private var spare: PreparedCommit? = nil
    private var closing = false
    /// Whether the check of the store's files at the stop was made (`next`).
    private var checkedAtStop = false
    /// A prune asked for and not finished: its cutoff, its retention (for the log line) and what it pruned so far.
    private var prune: (cutoff: Int64, days: Int, pruned: Int)? = nil
    private var failure: StoreError? = nil
    private var signalReady: Result<Void, ZMQError>? = nil
    private let finished = DispatchSemaphore(value: 0)
    private let completed = Atomic<Int>(0)
    /// Set by `close` before it waits: a prune waiting for another process's lock gives up at once (`pruneStep`).
    private let stopping = Atomic<Bool>(false)
    /// Set when a commit's save after a lost side file starts waiting for another process's reader (never cleared:
    /// the commit then fails and the daemon stops).
    private let waitingForReaders = Atomic<Bool>(false)
    /// Whether the last prune step gave up its wait for a lock because of `stopping` (writer thread only).
    private let pruneGaveUp = Atomic<Bool>(false)
    /// Receives each commit's duration (the metrics' histogram), when set.
    private let timings: (any TimingObserver)?
    private let logger: Logger
    private let counters: RuntimeCounters?

    /// How long the writer waits idle before it checks the store's files (a side file deleted while no batch comes
    /// would otherwise be found only at the next commit: at the stop, too late to save past another process's reader).
    static let idleCheckSeconds: TimeInterval = 1

    /// Journal rows (about 32 KiB each) deleted per transaction by a prune: a few milliseconds of the write lock.
    static let pruneRowsPerStep = 256

    /// Starts the writer thread, which connects a PAIR socket to `signalEndpoint` (bound by the caller) before it
    /// takes the first batch; returns once it has connected.
    init(store: StateStore, context: ZMQContext, signalEndpoint: String, timings: (any TimingObserver)? = nil,
         logger: Logger = Logger(label: "contactwatchd"), counters: RuntimeCounters? = nil) throws(DaemonError) {
        self.store = store
        self.timings = timings
        self.logger = logger
        self.counters = counters
        // A side file of the store deleted while another process reads it: the commit waits (SIGTERM ends the wait,
        // through `close`), saying why once.
        // From the save's start (its first checkpoint may wait a busy timeout, its copy take a VACUUM) the processing
        // loop reads no input (`isWaitingForReaders`).
        store.setSaveWait(StateStore.SaveWait(giveUp: { [weak self] in self?.stopping.load(ordering: .acquiring) ?? true },
                                              waiting: { [weak self, logger] text in
                                                  self?.waitingForReaders.store(true, ordering: .releasing)
                                                  self?.counters?.storeWaitingForReaders.store(true, ordering: .relaxed)
                                                  logger.error("\(text)")
                                              },
                                              lost: { [weak self] in
                                                  self?.waitingForReaders.store(true, ordering: .releasing)
                                                  self?.counters?.storeWaitingForReaders.store(true, ordering: .relaxed)
                                              }))
        // A thread the system refuses is said (SystemThread): `Thread.start()` said nothing, and the wait below never
        // ended.
        do {
            try SystemThread.start(name: ThreadPlacement.writer) { [self] in run(context: context, endpoint: signalEndpoint) }
        } catch {
            throw DaemonError.threadRefused(error, while: "cannot write the state store")
        }
        condition.lock()
        while signalReady == nil { condition.wait() }
        let ready = signalReady!
        condition.unlock()
        if case .failure(let error) = ready {
            finished.wait()
            throw DaemonError(.internal, "cannot connect the writer's durability signal: \(error)")
        }
    }

    /// Whether a commit waits for another process's reader to let go of the store (a side file was deleted): events
    /// read now would be applied in memory and dropped when the daemon stops, so the loop reads none.
    var isWaitingForReaders: Bool { waitingForReaders.load(ordering: .acquiring) }

    /// How many batches are durable so far.
    var completedCount: Int { completed.load(ordering: .acquiring) }

    /// When the write in progress on the store started (`MonotonicClock.nanos()`: a batch's commit, a prune step, a
    /// check of its files, a WAL checkpoint after a batch), or nil when none is (`CommitStallWatch`).
    var busySinceNanos: UInt64? {
        let started = busySince.load(ordering: .acquiring)
        return started == 0 ? nil : started
    }
    private let busySince = Atomic<UInt64>(0)

    /// Runs `work` with `busySinceNanos` set.
    @discardableResult
    private func busy<T>(_ work: () -> T) -> T {
        busySince.store(MonotonicClock.nanos(), ordering: .releasing)
        defer { busySince.store(0, ordering: .releasing) }
        return work()
    }

    /// The first write failure, if any (later batches are not written after one).
    var error: StoreError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// The last batch written, emptied, if the processing thread has not taken it yet: its allocations (megabytes
    /// under load) are refilled by the next `StateStore.prepare(…, reusing:)` instead of fresh ones faulted in.
    func takeSpare() -> PreparedCommit? {
        condition.lock()
        defer { condition.unlock() }
        var taken: PreparedCommit? = nil
        swap(&taken, &spare)
        return taken
    }

    /// Drops the spare batch (its buffers, sized by the largest batch since), for an idle daemon.
    func dropSpare() {
        condition.lock()
        let dropped = spare
        spare = nil
        condition.unlock()
        _ = dropped  // freed here, outside the lock
    }

    func submit(_ batch: consuming PreparedCommit) {
        condition.lock()
        // Moved in, not copied: a caller's reference still alive when the writer empties the batch would make it
        // reallocate every array (a reviewer, session 39).
        queue.append(consume batch)
        condition.signal()
        condition.unlock()
    }

    /// Asks the writer thread to delete the journal's published entries recorded before `cutoff` (Unix milliseconds;
    /// `retentionDays` is for the log line), between batches. A prune still going on is not restarted: it goes on
    /// with its own cutoff, and this one is dropped (the next is an interval away). Never waits.
    func requestPrune(recordedBefore cutoff: Int64, retentionDays: Int) {
        condition.lock()
        if prune == nil {
            prune = (cutoff, retentionDays, 0)
            condition.signal()
        }
        condition.unlock()
    }

    /// Writes what is queued, then stops the thread; returns once it has. Idempotent. A prune step waiting for a lock
    /// another process holds gives up at once (it is not a commit: the rest waits for the next start), so the stop does
    /// not wait up to the busy timeout for it; a batch still waits for the lock as long as it must.
    func close() {
        stopping.store(true, ordering: .releasing)
        condition.lock()
        let first = !closing
        closing = true
        condition.signal()
        condition.unlock()
        if first { finished.wait() }
    }

    private func run(context: ZMQContext, endpoint: String) {
        defer { finished.signal() }
        ThreadPlacement.name(ThreadPlacement.writer)
        ThreadPlacement.lowerPriority(by: ThreadPlacement.writerNiceSteps)
        let signal: ZMQSocket
        do {
            signal = try context.socket(.pair, lingerMilliseconds: 0)
            try signal.setSendHighWaterMark(0)
            try signal.connect(endpoint)
        } catch {
            report(.failure(error as? ZMQError ?? ZMQError(operation: "zmq_socket", code: EINVAL)))
            return
        }
        defer { signal.close() }
        report(.success(()))
        while let wrote = writeNext() {
            // A check of the store's files that found nothing changes nothing the loop reads: no wake-up.
            if !wrote { continue }
            // A wake-up only: the loop reads `completedCount` and `error`. Never blocks (no high-water mark).
            _ = try? signal.send([[]], dontWait: true)
            // The WAL's bound, once the batch is reported: its publication does not wait for this copy (SQLite's
            // auto-checkpoint ran it inside the commit). Before the next batch, on this connection, as that did.
            busy { store.checkpointWALIfDue() }
        }
    }

    /// Writes the next batch, or takes one step of a prune when no batch waits, or checks the store's files; nil when
    /// there is nothing left to do (closing, or after a failure), false after a check that found nothing amiss. The
    /// batch's reference to its outbox is dropped before the durability signal: the processing thread then holds the only reference to the batch's outbox (which the batch shares for its
    /// journal rows) and empties it in place for reuse. The rest of the batch is kept, emptied, as `spare`.
    private func writeNext() -> Bool? {
        guard let work = next() else { return nil }
        // The batch taken out of `work` (consumed), so that it is the only reference to its buffers: with `work` still
        // holding a copy until the function returned, `recycled()` emptied shared arrays, and `removeAll(keepingCapacity:)`
        // then allocated a fresh buffer of each one's size for every batch — and the outbox the batch refers to could be
        // recycled by the processing thread while `work` still held it, reallocating its 51 MB (heaptrack, a helper,
        // session 38; `CommitWriterReuseTests`).
        let batch: PreparedCommit
        switch consume work {
        case .batch(let taken): batch = taken
        case .prune(let cutoff, let days):
            busy { pruneStep(cutoff, retentionDays: days) }
            return true
        case .check: return !busy { checkFiles() }
        }
        busySince.store(MonotonicClock.nanos(), ordering: .releasing)
        defer { busySince.store(0, ordering: .releasing) }
        do {
            let started = ContinuousClock.now
            try store.write(batch)
            timings?.recordCommit(ContinuousClock.now - started)
            let emptied = (consume batch).recycled()
            condition.lock()
            spare = emptied
            condition.unlock()
            completed.add(1, ordering: .releasing)
        } catch {
            condition.lock()
            failure = error
            condition.unlock()
        }
        return true
    }

    private func report(_ result: Result<Void, ZMQError>) {
        condition.lock()
        signalReady = result
        condition.broadcast()
        condition.unlock()
    }

    private enum Work {
        case batch(PreparedCommit)
        case prune(Int64, days: Int)
        /// The store's files checked as a commit checks them (`StateStore.checkFiles`): idle, and once at the stop.
        case check
    }

    /// The next batch to write, else a step of the prune asked for, else a check of the store's files after
    /// `idleCheckSeconds` idle and once when closing with no batch left; nil when closing after that (a prune not
    /// finished then is left for the next start) or after a failure.
    private func next() -> Work? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && prune == nil && !closing {
            let timedOut = !condition.wait(until: .after(seconds: Self.idleCheckSeconds))
            if timedOut && failure == nil && queue.isEmpty && prune == nil && !closing { return .check }
        }
        if failure != nil { return nil }
        if !queue.isEmpty { return .batch(queue.removeFirst()) }
        if closing {
            if checkedAtStop { return nil }
            checkedAtStop = true
            return .check
        }
        return prune.map { .prune($0.cutoff, days: $0.days) }
    }

    /// A side file deleted (or the store moved) while no batch came: the same save and failure as at a commit, so
    /// that the daemon stops with what its files lacked saved (a stop that closed the store without it lost every
    /// commit since another process's reader began, and gave their alertSequences again: fault tester, session 22).
    /// Returns whether the files are in place (a failure is recorded for the loop otherwise).
    private func checkFiles() -> Bool {
        do {
            try store.checkFiles()
            return true
        } catch {
            condition.lock()
            if failure == nil { failure = error }
            condition.unlock()
            return false
        }
    }

    /// One bounded step of the prune; at its end, the `info` line with the count (or a `warning`: a prune that fails,
    /// e.g. on a lock another process held past the busy timeout, is tried again at the next interval; it is not a
    /// commit, so it does not stop the daemon).
    private func pruneStep(_ cutoff: Int64, retentionDays: Int) {
        var pruned = 0
        var finished = false
        var problem: StoreError? = nil
        pruneGaveUp.store(false, ordering: .relaxed)
        let giveUp: @Sendable () -> Bool = { [self] in
            let stop = stopping.load(ordering: .acquiring)
            if stop { pruneGaveUp.store(true, ordering: .relaxed) }
            return stop
        }
        do {
            (pruned, finished) = try store.pruneJournalStep(recordedBefore: cutoff,
                                                            retentionMillis: Int64(retentionDays) * millisPerDay,
                                                            maxRows: Self.pruneRowsPerStep,
                                                            giveUpWhen: giveUp)
        } catch {
            problem = error
        }
        condition.lock()
        guard var job = prune else {
            condition.unlock()
            return
        }
        let (total, overflow) = job.pruned.addingReportingOverflow(pruned)
        job.pruned = overflow ? .max : total  // saturating, as the count is (see pruneJournal)
        prune = finished || problem != nil ? nil : job
        condition.unlock()
        if pruned > 0, let counters {
            // Saturating too (`Atomic.add` traps on overflow); this thread is the counter's only writer.
            let room = Int.max - counters.journalPruned.load(ordering: .relaxed)
            counters.journalPruned.add(min(pruned, room), ordering: .relaxed)
        }
        if problem != nil, pruneGaveUp.load(ordering: .relaxed) {
            logger.info("journal pruning stopped: the daemon is stopping (the rest at the next start)",
                        metadata: ["pruned": "\(job.pruned)"])
        } else if let problem {
            counters?.journalPruneFailures.add(1, ordering: .relaxed)
            logger.warning("journal pruning failed (tried again at the next interval): \(problem)",
                           metadata: ["pruned": "\(job.pruned)"])
        } else if finished, job.pruned > 0 {
            logger.info("pruned \(job.pruned) journal entries older than \(job.days) days")
        }
    }
}
