import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import Foundation
import GRDB
import Testing

/// The daemon's writer reads a batch's journal rows from the batch's outbox (`prepare(…, journalFrom:)`) instead of
/// copies made on the processing thread (`journalEntries(from:)`): the rows stored must be the same.
@Suite(.computing) struct JournalOutboxTests {
    @Test func journalRowsFromTheOutboxAreTheRowsOfJournalEntries() throws {
        let lines = SyntheticStream.generate(seed: 23, count: 2000)
        let copied = TempDir(), shared = TempDir()
        defer { copied.cleanup(); shared.cleanup() }
        let engineA = try Engine(settings: EngineSettings()), engineB = try Engine(settings: EngineSettings())
        let storeA = try StateStore(directory: copied.path), storeB = try StateStore(directory: shared.path)
        defer { storeA.close(); storeB.close() }
        var outboxA = Outbox(), outboxB = Outbox()
        var batchesWithAlerts = 0, batchesWithout = 0
        for start in stride(from: 0, to: lines.count, by: 150) {
            let slice = lines[start..<min(start + 150, lines.count)]
            outboxA.removeAll()
            outboxB.removeAll()
            feed(engineA, slice, into: &outboxA)
            feed(engineB, slice, into: &outboxB)
            let entries = StateStore.journalEntries(from: outboxA)
            if entries.isEmpty { batchesWithout += 1 } else { batchesWithAlerts += 1 }
            try storeA.commit(changes: engineA.takeChanges(), state: engineA.state, journal: entries,
                              publishedThrough: nil, now: 1_000 + Int64(start))
            let p = StateStore.prepare(changes: engineB.takeChanges(), state: engineB.state, journalFrom: outboxB,
                                       publishedThrough: nil, now: 1_000 + Int64(start))
            #expect(p.journalCount == entries.count)
            try storeB.write(p)
        }
        #expect(batchesWithAlerts > 0)
        let a = try storeA.journal(after: 0, limit: 1_000_000)
        let b = try storeB.journal(after: 0, limit: 1_000_000)
        #expect(a.count == Int(engineA.state.alertSequence))
        #expect(a == b)
        #expect(b.allSatisfy { $0.alertId.count == 32 })
        // The rows themselves (bounds, counts, recordedAt, the blobs), too.
        let sql = "SELECT * FROM journalChunk ORDER BY firstSequence"
        #expect(try rows(storeA.path, sql) == rows(storeB.path, sql))
        let (stateB, unpublished) = try storeB.load()
        #expect(sameState(stateB, engineB.state))
        #expect(unpublished == a)
    }

    private func rows(_ path: String, _ sql: String) throws -> [String] {
        let q = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in try Row.fetchAll(db, sql: sql).map { $0.description } }
    }
}
