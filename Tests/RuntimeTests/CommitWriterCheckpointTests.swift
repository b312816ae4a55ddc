@testable import ContactWatchEngine
@testable import ContactWatchRuntime
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Logging
import Testing
import ZeroMQ

/// The writer's WAL checkpoint (`StateStore.checkpointWALIfDue`, which replaced SQLite's inline auto-checkpoint) runs
/// after the batch that made it due has been reported durable: the processing thread can publish that batch while the
/// copy is still going on. Shown by order, not time: the checkpoint is held at its start until the test has received
/// the batch's durability signal; were it run before the report (or inside the commit, as SQLite's was), the signal
/// would not come while it is held.
@Suite("CommitWriter: the WAL checkpoint runs after the durability report")
struct CommitWriterCheckpointTests {
    /// Holds the writer's checkpoint at its start until released (at most `limit` seconds, so a wrong order fails the
    /// test instead of hanging it).
    final class Gate: @unchecked Sendable {
        private let condition = NSCondition()
        private var open = false
        private(set) var entries = 0
        private(set) var heldUntilReleased = true

        func enter(limit: TimeInterval = 20) {
            condition.lock()
            entries += 1
            condition.broadcast()
            let deadline = Date(timeIntervalSinceNow: limit)
            while !open {
                if !condition.wait(until: deadline) {
                    heldUntilReleased = false
                    break
                }
            }
            condition.unlock()
        }

        /// Waits (at most `limit` seconds) until the checkpoint has been entered `n` times.
        func waitEntered(_ n: Int, limit: TimeInterval = 20) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date(timeIntervalSinceNow: limit)
            while entries < n {
                if !condition.wait(until: deadline) { return entries >= n }
            }
            return true
        }

        func release() {
            condition.lock()
            open = true
            condition.broadcast()
            condition.unlock()
        }

        var snapshot: (entries: Int, held: Bool) {
            condition.lock()
            defer { condition.unlock() }
            return (entries, heldUntilReleased)
        }
    }

    /// The PAIR socket a `CommitWriter` reports durable batches to, bound at a fresh `inproc://` endpoint; the caller
    /// closes it (after the writer, before the context).
    static func durabilitySignal(_ context: ZMQContext, _ name: String) throws -> (ZMQSocket, String) {
        let signal = try context.socket(.pair, lingerMilliseconds: 0)
        let endpoint = "inproc://\(name)-\(UInt64.random(in: 0 ... .max))"
        do { try signal.bind(endpoint) } catch { signal.close(); throw error }
        return (signal, endpoint)
    }

    /// The writer's prune passes the retention to the store's cap in milliseconds (a reviewer, session 24: a wrong unit
    /// there passed every other test). Rows recorded on days 10, 11.5 and 12; a clock far ahead (day 1000) asks for a
    /// cutoff of day 999 with a retention of 1 day: the cap (the newest row's day 12, less 1 day) prunes day 10's rows
    /// only (a retention read in seconds would prune day 11.5's too, one read too large none).
    @Test("a prune asked under a clock far ahead keeps the newest retention's worth of the journal (the cap's unit)")
    func pruneCappedByTheNewestRow() throws {
        let dir = NSTemporaryDirectory() + "cw-writer-prune-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir)
        defer { store.close() }
        let day: Int64 = 86_400_000
        func entry(_ n: UInt64) -> JournalEntry {
            let id = String(repeating: String(n % 16, radix: 16), count: 32)
            return JournalEntry(alertSequence: n, alertId: id, topic: Array("alert.raised.telephone-only".utf8),
                                body: Array("{\"alertId\":\"\(id)\",\"alertSequence\":\(n)}".utf8))
        }
        for (range, at) in [(UInt64(1)...5, 10 * day), (6...8, 11 * day + day / 2), (9...10, 12 * day)] {
            var state = EngineState()
            state.alertSequence = range.upperBound
            try store.commit(changes: ChangeSet(), state: state, journal: range.map(entry), publishedThrough: UInt64?.none,
                             now: at)
        }
        try store.markPublished(through: 10)
        let context = try ZMQContext()
        defer { context.close() }
        let (signal, endpoint) = try Self.durabilitySignal(context, "writer-prune")
        defer { signal.close() }
        let counters = RuntimeCounters()
        let lines = LogLines()
        let writer = try CommitWriter(store: store, context: context, signalEndpoint: endpoint,
                                      logger: Logger(label: "test") { _ in MemoryLogHandler(sink: lines) },
                                      counters: counters)
        defer { writer.close() }
        writer.requestPrune(recordedBefore: 999 * day, retentionDays: 1)
        // The prune's line, written once it has finished (a durability report is no signal for it: a batch submitted
        // just after the previous one's report is written before the prune, session 25's suite run).
        #expect(lines.waitFor { $0.message.hasPrefix("pruned ") }, "\(lines.entries.withLock { $0 })")
        #expect(lines.entries.withLock { $0 }.contains { $0.message == "pruned 5 journal entries older than 1 days" })
        #expect(counters.journalPruned.load(ordering: .relaxed) == 5)
        #expect(try store.journal(after: 0, limit: 100).map { $0.alertSequence } == Array(6...10))
    }

    @Test("a batch that brings the WAL to its bound is reported durable before the writer's checkpoint runs; the next batch is written after it")
    func reportBeforeCheckpoint() throws {
        let dir = NSTemporaryDirectory() + "cw-writer-checkpoint-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gate = Gate()
        // A bound of one frame: every commit makes a checkpoint due. No checkpointer thread.
        let store = try StateStore(directory: dir, synchronous: .full, walCheckpointFrames: 1,
                                   backgroundCheckpoints: false, beforeWALCheckpoint: { gate.enter() })
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        func batch(_ now: Int64) -> PreparedCommit {
            StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: Outbox(),
                               publishedThrough: nil, now: now)
        }
        let context = try ZMQContext()
        defer { context.close() }
        let (signal, endpoint) = try Self.durabilitySignal(context, "checkpoint-order")
        defer { signal.close() }
        let writer = try CommitWriter(store: store, context: context, signalEndpoint: endpoint)
        defer { gate.release(); writer.close() }

        writer.submit(batch(1))
        // The report comes while the checkpoint is held (a wrong order: not before the gate gives up, 20 s).
        let reported = try signal.receiveMessage(timeoutMilliseconds: 10_000) { _ in true }
        #expect(reported == true, "no durability report while the writer's checkpoint was held")
        #expect(writer.completedCount == 1)
        #expect(gate.waitEntered(1), "the writer never ran the checkpoint the batch made due")
        #expect(writer.error == nil)
        gate.release()

        // The next batch: written after the checkpoint (same thread), reported, and its own checkpoint run.
        writer.submit(batch(2))
        let second = try signal.receiveMessage(timeoutMilliseconds: 20_000) { _ in true }
        #expect(second == true)
        #expect(writer.completedCount == 2)
        #expect(gate.waitEntered(2))
        let seen = gate.snapshot
        #expect(seen.held, "the checkpoint gave up waiting: the report did not come while it was held")
        #expect(seen.entries == 2)
    }
}

/// A written batch comes back emptied in place: its arrays keep their storage for the next batch. The writer held a
/// second reference to the batch while it emptied it, so every array was reallocated at its full size for each batch
/// (a helper's heaptrack run, session 38; found by reading, fixed in session 39).
@Suite("CommitWriter: a written batch is reused, not reallocated")
struct CommitWriterReuseTests {
    @Test("the spare batch after a commit has the same buffers as the batch submitted")
    func spareKeepsItsBuffers() throws {
        let dir = NSTemporaryDirectory() + "cw-writer-reuse-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir)
        defer { store.close() }
        let state = syntheticState(cases: 200)
        var changes = ChangeSet()
        for ci in 0..<state.cases.count { changes.cases.insert(UInt32(ci)) }
        changes.contacts.append(contentsOf: state.contacts.keys.prefix(500))
        let context = try ZMQContext()
        defer { context.close() }
        let (signal, endpoint) = try CommitWriterCheckpointTests.durabilitySignal(context, "writer-reuse")
        defer { signal.close() }
        let writer = try CommitWriter(store: store, context: context, signalEndpoint: endpoint)
        defer { writer.close() }
        let before: [Int]
        do {
            let batch = StateStore.prepare(changes: changes, state: state, journalFrom: Outbox(), publishedThrough: nil,
                                           now: 1_775_000_000_000)
            before = batch.bufferAddresses
            writer.submit(consume batch)
        }
        try #require(before.count >= 2, "the batch should have filled some arrays: \(before)")
        #expect(try signal.receiveMessage(timeoutMilliseconds: 20_000) { _ in true } == true, "no durability report")
        #expect(writer.error == nil)
        let spare = try #require(writer.takeSpare(), "no spare batch after the commit")
        #expect(spare.bufferAddresses == before)
    }
}
