import ContactWatchStore
import Foundation
import Synchronization
import ZeroMQ

/// Writes prepared batches to the state store on its own thread, in order, so the processing thread never waits on
/// the disk: it prepares batch k+1 while batch k is being written.
///
/// Each time a batch is durable (or a write failed) the writer thread sends one empty frame on its own `inproc` PAIR
/// socket, connected to the socket the processing loop polls (`signalEndpoint`): the loop wakes, reads
/// `completedCount` and `error`, and publishes what is durable. Nothing sleeps or polls the counter on a timer.
///
/// Threads: the writer thread owns its PAIR socket (created, used and closed there); `submit` and `close` are called
/// from the processing thread; `completedCount` and `error` from any thread.
final class CommitWriter: @unchecked Sendable {
    private let store: StateStore
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [PreparedCommit] = []
    /// The last batch written, emptied (`PreparedCommit.recycled()`), for the next `prepare` to refill.
    private var spare: PreparedCommit? = nil
    private var closing = false
    private var failure: StoreError? = nil
    private var signalReady: Result<Void, ZMQError>? = nil
    private let finished = DispatchSemaphore(value: 0)
    private let completed = Atomic<Int>(0)
    /// Receives each commit's duration (the metrics' histogram), when set.
    private let timings: (any TimingObserver)?

    /// Starts the writer thread, which connects a PAIR socket to `signalEndpoint` (bound by the caller) before it
    /// takes the first batch; returns once it has connected.
    init(store: StateStore, context: ZMQContext, signalEndpoint: String,
         timings: (any TimingObserver)? = nil) throws(DaemonError) {
        self.store = store
        self.timings = timings
        let thread = Thread { [self] in run(context: context, endpoint: signalEndpoint) }
        thread.name = ThreadPlacement.writer
        thread.start()
        condition.lock()
        while signalReady == nil { condition.wait() }
        let ready = signalReady!
        condition.unlock()
        if case .failure(let error) = ready {
            finished.wait()
            throw DaemonError(.internal, "cannot connect the writer's durability signal: \(error)")
        }
    }

    /// How many batches are durable so far.
    var completedCount: Int { completed.load(ordering: .acquiring) }

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

    func submit(_ batch: PreparedCommit) {
        condition.lock()
        queue.append(batch)
        condition.signal()
        condition.unlock()
    }

    /// Writes what is queued, then stops the thread; returns once it has. Idempotent.
    func close() {
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
        while writeNext() {
            // A wake-up only: the loop reads `completedCount` and `error`. Never blocks (no high-water mark).
            _ = try? signal.send([[]], dontWait: true)
        }
    }

    /// Writes the next batch; false when there is none to write (closing, or after a failure). The batch's reference
    /// to its outbox is dropped before the durability signal: the processing thread then holds the only reference to
    /// the batch's outbox (which the batch shares for its journal rows) and empties it in place for reuse. The rest
    /// of the batch is kept, emptied, as `spare`.
    private func writeNext() -> Bool {
        guard let batch = next() else { return false }
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

    /// The next batch to write, or nil when closing with nothing left or after a failure.
    private func next() -> PreparedCommit? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closing { condition.wait() }
        if queue.isEmpty || failure != nil { return nil }
        return queue.removeFirst()
    }
}
