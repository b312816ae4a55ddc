import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
import ContactWatchStore
import Foundation
import Testing

func entry(_ n: UInt64) -> JournalEntry {
    let id = String(repeating: String(n % 16, radix: 16), count: 32)
    return JournalEntry(alertSequence: n, alertId: id, topic: Array("alert.raised.telephone-only".utf8),
                        body: Array("{\"alertId\":\"\(id)\",\"alertSequence\":\(n)}".utf8))
}

/// Commits journal entries `range`, with the state's alertSequence set to the last one.
func commitJournal(_ store: StateStore, _ range: ClosedRange<UInt64>, publishedThrough: UInt64? = nil, now: Int64) throws {
    var state = EngineState()
    state.alertSequence = range.upperBound
    try store.commit(changes: ChangeSet(), state: state, journal: range.map(entry), publishedThrough: publishedThrough,
                     now: now)
}

@Suite(.computing) struct JournalTests {
    @Test func emptyStoreLoadsEmptyState() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path + "/nested/state")
        defer { store.close() }
        let (state, unpublished) = try store.load()
        #expect(state.watermark == .min)
        #expect(state.alertSequence == 0)
        #expect(state.cases.isEmpty && state.contacts.isEmpty && state.pdus.isEmpty && state.publishers.isEmpty)
        #expect(unpublished.isEmpty)
        #expect(try store.latestSequence() == 0)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/nested/state/contactwatch.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/nested/state/contactwatch.sqlite.creating"))
    }

    @Test func journalAfterAndLimit() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        try commitJournal(store, 1...10, now: 1000)
        try commitJournal(store, 11...25, now: 2000)
        #expect(try store.journal(after: 0, limit: 5) == (1...5).map(entry))
        #expect(try store.journal(after: 8, limit: 4).map(\.alertSequence) == [9, 10, 11, 12])
        #expect(try store.journal(after: 20, limit: 100).map(\.alertSequence) == [21, 22, 23, 24, 25])
        #expect(try store.journal(after: 25, limit: 100).isEmpty)
        #expect(try store.journal(after: 3, limit: 0).isEmpty)
        #expect(try store.latestSequence() == 25)
    }

    @Test func publishedThroughAndUnpublishedOnLoad() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var store = try StateStore(directory: dir.path)
        try commitJournal(store, 1...10, publishedThrough: 4, now: 1000)
        store.close()
        store = try StateStore(directory: dir.path)
        #expect(try store.load().unpublished == (5...10).map(entry))
        try store.markPublished(through: 7)
        #expect(try store.load().unpublished.map(\.alertSequence) == [8, 9, 10])
        // Never moves backwards.
        try store.markPublished(through: 3)
        try commitJournal(store, 11...12, publishedThrough: 2, now: 2000)
        #expect(try store.publishedThrough() == 7)
        store.close()
        store = try StateStore(directory: dir.path)
        defer { store.close() }
        #expect(try store.load().unpublished.map(\.alertSequence) == [8, 9, 10, 11, 12])
        #expect(try store.load().state.alertSequence == 12)
    }

    @Test func pruneDeletesOnlyOldPublishedEntries() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        try commitJournal(store, 1...10, now: 1000)
        try commitJournal(store, 11...20, now: 5000)
        try store.markPublished(through: 15)
        // Old enough: 1...10 (recorded at 1000); published: 1...15. Both: 1...10.
        #expect(try store.pruneJournal(recordedBefore: 2000) == 10)
        #expect(try store.journal(after: 0, limit: 100).map(\.alertSequence) == Array(11...20))
        // 11...20 are old enough now, but only 11...15 are published.
        #expect(try store.pruneJournal(recordedBefore: 9000) == 5)
        #expect(try store.journal(after: 0, limit: 100).map(\.alertSequence) == Array(16...20))
        #expect(try store.latestSequence() == 20)
    }

    /// A clock fault tester (session 24): a wall clock stepped back (500 days, then forward again) recorded a commit's
    /// entries in the past, and the next prune took them for old; a clock stepped ahead past the retention made every
    /// entry old. Rows are never recorded before the row above them, and retention counts back from the earlier of the
    /// clock and the newest row.
    @Test("a commit under a clock stepped back is recorded at the last row's time; a prune under a clock far ahead keeps the newest retention's worth")
    func pruneAcrossClockSteps() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        try commitJournal(store, 1...10, now: 5_000)
        try commitJournal(store, 11...20, now: 1_000)  // the clock stepped back
        try commitJournal(store, 21...30, now: 9_000)
        try store.markPublished(through: 30)
        // 11...20 were recorded at 5000, not 1000: a prune before 2000 finds nothing old.
        #expect(try store.pruneJournalStep(recordedBefore: 2_000, maxRows: 100).pruned == 0)
        // The clock far ahead (cutoff 1,000,000) with a retention of 3000: the cutoff is the newest row's 9000 less
        // 3000, so only the rows recorded at 5000 go.
        let step = try store.pruneJournalStep(recordedBefore: 1_000_000, retentionMillis: 3_000, maxRows: 100)
        #expect(step.pruned == 20 && step.finished)
        #expect(try store.journal(after: 0, limit: 100).map(\.alertSequence) == Array(21...30))
        // Without the retention's bound the same cutoff prunes what is left (the clock is believed).
        #expect(try store.pruneJournal(recordedBefore: 1_000_000) == 10)
    }

    /// A reviewer (session 24): a row recorded under a clock years ahead must not stamp every later row with its time
    /// (the journal would not be pruned until then): beyond a day behind the last row, the clock is taken as it is.
    @Test("a commit under a clock more than a day behind the last row is recorded at the clock's time")
    func clockFarBehindTheLastRow() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let day: Int64 = 86_400_000
        try commitJournal(store, 1...10, now: 50 * day)      // a clock far ahead
        try commitJournal(store, 11...20, now: 2 * day)      // corrected: 48 days back
        try commitJournal(store, 21...30, now: 2 * day + 5)
        try store.markPublished(through: 30)
        // 11...30 carry the corrected clock's time: a prune at day 3 takes them; at day 2 none of them.
        #expect(try store.pruneJournal(recordedBefore: 2 * day) == 0)
        #expect(try store.pruneJournal(recordedBefore: 3 * day) == 20)
        #expect(try store.journal(after: 0, limit: 100).map(\.alertSequence) == Array(1...10))
    }

    @Test func journalEntriesFromOutbox() throws {
        let lines = try Fixtures.lines("01-warning-then-breach.ndjson")
        var outbox = Outbox()
        feed(try Engine(settings: EngineSettings()), lines[...], into: &outbox)
        let entries = StateStore.journalEntries(from: outbox)
        let alerts = outbox.messages.filter { $0.topic.hasPrefix("alert.") }
        #expect(!entries.isEmpty)
        #expect(entries.count == alerts.count)
        for (e, m) in zip(entries, alerts) {
            let body = try JSONSerialization.jsonObject(with: Data(e.body)) as! [String: Any]
            #expect(e.alertId == body["alertId"] as? String)
            #expect(e.alertId.count == 32)
            #expect(e.alertSequence == (body["alertSequence"] as? NSNumber)?.uint64Value)
            #expect(String(decoding: e.topic, as: UTF8.self) == m.topic)
            #expect(String(decoding: e.body, as: UTF8.self) == m.body)
        }
    }

    /// A copy of the files taken while the store is open (as after a SIGKILL: WAL not checkpointed) loads every
    /// committed batch.
    @Test func committedStateSurvivesWithoutClose() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let lines = SyntheticStream.generate(seed: 11, count: 600)
        let engine = try Engine(settings: EngineSettings())
        let store = try StateStore(directory: dir.path)
        var outbox = Outbox()
        for start in stride(from: 0, to: lines.count, by: 100) {
            outbox.removeAll()
            feed(engine, lines[start..<(start + 100)], into: &outbox)
            try store.commit(changes: engine.takeChanges(), state: engine.state,
                             journal: StateStore.journalEntries(from: outbox), publishedThrough: nil, now: 0)
        }
        let copy = TempDir()
        defer { copy.cleanup() }
        for suffix in ["", "-wal"] {
            let src = dir.storePath + suffix
            if FileManager.default.fileExists(atPath: src) {
                try FileManager.default.copyItem(atPath: src, toPath: copy.storePath + suffix)
            }
        }
        #expect(FileManager.default.fileExists(atPath: copy.storePath + "-wal"))
        store.close()
        let recovered = try StateStore(directory: copy.path)
        defer { recovered.close() }
        let (state, unpublished) = try recovered.load()
        #expect(sameState(state, engine.state))
        #expect(unpublished.count == Int(engine.state.alertSequence))
    }

    /// The commit path binds texts and blobs through the SQLite C API; what it stores must be what GRDB's
    /// `execute(arguments:)` stored: topics as `String(decoding:as: UTF8.self)`, the journal's strings NUL-terminated
    /// (the engine's topics and alertIds hold none); publisherIds whole.
    @Test func textsAreStoredAsStrings() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var store = try StateStore(directory: dir.path)
        let topics: [[UInt8]] = [Array("alert.raised.télé".utf8), [0x61, 0xFF, 0x62], [0x61, 0x00, 0x62], []]
        var entries: [JournalEntry] = []
        for (k, topic) in topics.enumerated() {
            entries.append(JournalEntry(alertSequence: UInt64(k + 1), alertId: k == 3 ? "ab\u{0}cd" : "é\(k)",
                                        topic: topic, body: k == 3 ? [] : [0, 1, 2, 0xFF]))
        }
        var state = EngineState()
        state.alertSequence = UInt64(topics.count)
        state.publishers = ["pub-é": 7, "pub\u{0}x": 9]
        var changes = ChangeSet()
        changes.publishers = Set(state.publishers.keys)
        try store.commit(changes: changes, state: state, journal: entries, publishedThrough: nil, now: 5)
        store.close()
        store = try StateStore(directory: dir.path)
        defer { store.close() }
        let (loaded, unpublished) = try store.load()
        // A publisherId is stored whole, U+0000 and what follows included (events.md allows any scalar; cut at the NUL,
        // it took another publisher's position: the store's hunter, session 45).
        #expect(loaded.publishers == ["pub-é": 7, "pub\u{0}x": 9])
        #expect(unpublished.map(\.topic) == [Array("alert.raised.télé".utf8), Array("a\u{FFFD}b".utf8), [0x61], []])
        #expect(unpublished.map(\.alertId) == ["é0", "é1", "é2", "ab"])
        #expect(unpublished.map(\.body) == [[0, 1, 2, 0xFF], [0, 1, 2, 0xFF], [0, 1, 2, 0xFF], []])
    }

    /// The reader's page: at most maxAlerts entries and maxBytes of bodies, but always the first; the byte budget ends
    /// the page exactly where trimming a longer read ended it.
    @Test func readerPageStopsAtTheByteBudget() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        try commitJournal(store, 1...50, now: 0)
        let sizes = (1...50).map { UInt64($0) }.map { entry($0).body.count }
        let reader = try JournalReader(path: store.path)
        defer { reader.close(); store.close() }
        for (after, maxAlerts, maxBytes) in [(0, 100, 0), (0, 100, sizes[0] - 1), (0, 100, sizes[0] + sizes[1]),
                                             (0, 100, sizes[0] + sizes[1] - 1), (10, 5, 1 << 20), (10, 100, 1 << 20),
                                             (49, 100, 1), (50, 100, 1 << 20), (3, 100, 400)] {
            var expected: [UInt64] = []
            var bytes = 0
            for n in stride(from: after + 1, through: 50, by: 1) where expected.count < maxAlerts {
                bytes += sizes[n - 1]
                if bytes > maxBytes && !expected.isEmpty { break }
                expected.append(UInt64(n))
            }
            let page = try reader.page(after: UInt64(after), maxAlerts: maxAlerts, maxBytes: maxBytes)
            #expect(page.latest == 50)
            #expect(page.entries.map(\.alertSequence) == expected, "after \(after), \(maxAlerts) alerts, \(maxBytes) bytes")
            #expect(page.entries.map(\.body) == expected.map { entry($0).body })
        }
    }
}
