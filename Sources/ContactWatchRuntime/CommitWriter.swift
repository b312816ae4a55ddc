import ContactWatchStore
import Foundation
import Synchronization

/// Writes prepared batches to the state store on its own thread, in order, so the processing thread never waits on
/// the disk: it prepares batch k+1 while batch k is being written, and publishes a batch's alerts once `completed`
/// shows it durable.
final class CommitWriter: @unchecked Sendable {
    private let store: StateStore
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [PreparedCommit] = []
    private var closing = false
    private var failure: StoreError? = nil
    private let finished = DispatchSemaphore(value: 0)
    private let completed = Atomic<Int>(0)

    init(store: StateStore) {
        self.store = store
        let thread = Thread { [self] in loop() }
        thread.name = "contactwatch-writer"
        thread.start()
    }

    /// How many batches are durable so far.
    var completedCount: Int { completed.load(ordering: .acquiring) }

    /// The first write failure, if any (later batches are not written after one).
    var error: StoreError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    func submit(_ batch: PreparedCommit) {
        condition.lock()
        queue.append(batch)
        condition.signal()
        condition.unlock()
    }

    /// Writes what is queued, then stops the thread; returns once it has.
    func close() {
        condition.lock()
        closing = true
        condition.signal()
        condition.unlock()
        finished.wait()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && !closing { condition.wait() }
            if queue.isEmpty || failure != nil {
                condition.unlock()
                break
            }
            let batch = queue.removeFirst()
            condition.unlock()
            do {
                try store.write(batch)
                completed.add(1, ordering: .releasing)
            } catch {
                condition.lock()
                failure = error
                condition.unlock()
            }
        }
        finished.signal()
    }
}
