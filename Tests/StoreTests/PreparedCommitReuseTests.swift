import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import Foundation
import GRDB
import Testing

/// The daemon's writer hands each written batch back emptied (`PreparedCommit.recycled()`) and the next
/// `prepare(…, reusing:)` refills its arrays and byte buffer instead of allocating (and faulting in) fresh ones: what
/// is stored must be the same as with fresh batches, and the allocations must really be reused.
@Suite(.computing) struct PreparedCommitReuseTests {
    @Test func reusedBatchesStoreWhatFreshBatchesStore() throws {
        let lines = SyntheticStream.generate(seed: 31, count: 3000)
        let fresh = TempDir(), reused = TempDir()
        defer { fresh.cleanup(); reused.cleanup() }
        let engineA = try Engine(settings: EngineSettings()), engineB = try Engine(settings: EngineSettings())
        let storeA = try StateStore(directory: fresh.path), storeB = try StateStore(directory: reused.path)
        defer { storeA.close(); storeB.close() }
        var outboxA = Outbox(), outboxB = Outbox()
        var spare: PreparedCommit? = nil
        var sameBuffer = 0, batches = 0
        var lastBytes: UnsafeRawPointer? = nil
        // Batches of different sizes, so that some reuse a larger allocation and some outgrow it.
        var start = 0, size = 40
        while start < lines.count {
            let slice = lines[start..<min(start + size, lines.count)]
            start += size
            size = size == 40 ? 400 : (size == 400 ? 90 : 40)
            outboxA.removeAll()
            outboxB.removeAll()
            feed(engineA, slice, into: &outboxA)
            feed(engineB, slice, into: &outboxB)
            let now = 1_000 + Int64(start)
            // Any position a daemon could record: never past the last alertSequence given (a load refuses that).
            let published = min(UInt64(start), engineA.state.alertSequence)
            let a = StateStore.prepare(changes: engineA.takeChanges(), state: engineA.state, journalFrom: outboxA,
                                       publishedThrough: published, now: now)
            let b = StateStore.prepare(changes: engineB.takeChanges(), state: engineB.state, journalFrom: outboxB,
                                       publishedThrough: published, now: now, reusing: &spare)
            #expect(spare == nil)
            #expect(a.recordCount == b.recordCount)
            #expect(a.bytes.withUnsafeBytes { Array($0) } == b.bytes.withUnsafeBytes { Array($0) })
            let bytes = b.bytes.withUnsafeBytes { $0.baseAddress }
            if bytes != nil && bytes == lastBytes { sameBuffer += 1 }
            lastBytes = bytes
            batches += 1
            try storeA.write(a)
            try storeB.write(b)
            spare = b.recycled()
        }
        #expect(batches > 10)
        // Every batch fits the first one's 64 KiB allocation: each after the first writes into it.
        #expect(sameBuffer == batches - 1)
        for table in ["meta", "publisher", "caseState", "pdu", "withdrawn", "outcomeTimer", "journalChunk"] {
            let sql = "SELECT * FROM \(table) WHERE NOT (\(table == "meta" ? "key = 'lastStart'" : "0"))"
            #expect(try rows(storeA.path, sql) == rows(storeB.path, sql), "table \(table)")
        }
        let (stateA, _) = try storeA.load()
        let (stateB, _) = try storeB.load()
        #expect(sameState(stateA, stateB))
        #expect(sameState(stateB, engineB.state))
    }

    /// A buffer another reference still reads is never written into: the writer allocates its own.
    @Test func aSharedBufferIsNotReused() {
        var w = ByteWriter(capacity: 128)
        for i in 0..<100 { w.u8(UInt8(i)) }
        let kept = w.finish()
        var offered: ByteBuffer? = kept
        var reuse = ByteWriter(reusing: &offered, capacity: 64)
        #expect(offered == nil)
        for _ in 0..<100 { reuse.u8(0xEE) }
        #expect(kept.count == 100)
        #expect(kept.withUnsafeBytes { Array($0) } == (0..<100).map { UInt8($0) })
        #expect(reuse.bytes == [UInt8](repeating: 0xEE, count: 100))
    }

    /// A buffer nothing else references gives its allocation to the writer, unless it is too small.
    @Test func anUnsharedBufferIsReusedWhenLargeEnough() {
        var w = ByteWriter(capacity: 4096)
        w.u8(1)
        var offered: ByteBuffer? = w.finish()
        let address = offered!.withUnsafeBytes { $0.baseAddress }
        var reuse = ByteWriter(reusing: &offered, capacity: 1000)
        #expect(offered == nil)
        #expect(reuse.count == 0)
        reuse.u8(7)
        let again = reuse.finish()
        #expect(again.withUnsafeBytes { $0.baseAddress } == address)
        #expect(again.withUnsafeBytes { Array($0) } == [7])

        var small: ByteBuffer? = again
        let grown = ByteWriter(reusing: &small, capacity: 1 << 20)
        #expect(small == nil)
        #expect(grown.count == 0)
    }

    private func rows(_ path: String, _ sql: String) throws -> [String] {
        let q = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in try Row.fetchAll(db, sql: sql).map { $0.description } }
    }
}
