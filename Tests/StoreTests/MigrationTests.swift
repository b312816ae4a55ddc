import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import Foundation
import GRDB
import Testing

/// Schema v1 → v2 (R7). `Tests/Fixtures/stores/v1-before-r7.sqlite` was written by the real `contactwatchd` of the
/// commit before R7 (schema v1), stopped with SIGTERM after `v1-before-r7.ndjson` (two planned appointments without
/// an outcome, an AFTA, a failure with its open warning-due alert, a publisher's sequence numbers).
@Suite("Store migration: a v1 store opens and gains R7")
struct MigrationTests {
    static let stores = Fixtures.directory.deletingLastPathComponent().appendingPathComponent("stores")

    static func userVersion(_ path: String) throws -> UInt32 {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data[60..<64].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// After the v1 stream: no R7 alert can rise from an old contact; a contact's next version arms and raises; the
    /// rest continues as before (the open R1 alert resolves, the sequence numbers go on).
    static let part2 = [
        #"{"eventType":"probation-case.registration.added","version":1,"occurredAt":"2026-06-10T08:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900006"}]},"additionalInformation":{"registerTypeCode":"RMRH"}}"#,
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-06-11T09:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900005"}]},"additionalInformation":{"contactId":9501,"contactVersion":2,"contactStart":"2026-06-01T11:00:00Z","contactType":"COAP","interviewSetting":"PRIVATE_ROOM","pduCode":"N07SUF"}}"#,
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-06-11T10:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900001"}]},"additionalInformation":{"contactId":9101,"contactVersion":2,"contactStart":"2026-06-12T10:00:00Z","contactType":"COAP","interviewSetting":"PRIVATE_ROOM","pduCode":"N07SUF"}}"#,
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-06-12T11:00:00Z","publisherId":"feed-1","sequenceNumber":3,"personReference":{"identifiers":[{"type":"CRN","value":"X900007"}]},"additionalInformation":{"contactId":9701,"contactVersion":2,"contactStart":"2026-06-03T10:00:00Z","contactType":"COAP","outcome":{"code":"UAAB"},"enforcementAction":{"code":"EA02"},"interviewSetting":"OPEN_BOOTH","pduCode":"N07SUF"}}"#,
        #"{"eventType":"probation-case.registration.updated","version":1,"occurredAt":"2026-06-22T08:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900006"}]},"additionalInformation":{"registerTypeCode":"RMRH"}}"#,
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-06-23T09:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900005"}]},"additionalInformation":{"contactId":9501,"contactVersion":3,"contactStart":"2026-06-01T11:00:00Z","contactType":"COAP","outcome":{"code":"ATTC"},"interviewSetting":"PRIVATE_ROOM","pduCode":"N07SUF"}}"#,
    ]

    @Test("a store written before R7 migrates forward, keeps everything, and gains R7 with it enabled")
    func v1StoreGainsR7() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let fixture = Self.stores.appendingPathComponent("v1-before-r7.sqlite").path
        try FileManager.default.copyItem(atPath: fixture, toPath: dir.storePath)
        #expect(try Self.userVersion(dir.storePath) == 1)

        // What the engine of today makes of the same stream with R7 off: the state the v1 store must load as.
        let part1 = try String(contentsOf: Self.stores.appendingPathComponent("v1-before-r7.ndjson"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let reference = try Engine(settings: EngineSettings())
        var ignored = Outbox()
        feed(reference, part1[...], into: &ignored)

        let store = try StateStore(directory: dir.path)
        let (loaded, unpublished) = try store.load()
        #expect(unpublished.isEmpty)
        #expect(sameState(loaded, reference.state), "the v1 store does not load as the stream's state")
        #expect(loaded.alertSequence == 1 && loaded.contacts.count == 4 && loaded.outcomeTimers.isEmpty)
        #expect(try store.latestSequence() == 1)
        #expect(try store.journal(after: 0, limit: 10).map(\.alertSequence) == [1])

        var on = EngineSettings()
        on.outcomeOverdueEnabled = true
        let engine = try Engine(settings: on, state: loaded)
        var outbox = Outbox()
        feed(engine, Self.part2[...], into: &outbox)
        let got = messages(outbox)
        // The same as an engine that ran part 1 with R7 off and part 2 with it on, never stopping.
        let inMemory = try Engine(settings: on, state: reference.state)
        var expected = Outbox()
        feed(inMemory, Self.part2[...], into: &expected)
        #expect(got == messages(expected))
        #expect(outbox.messages.map(\.topic) == [
            "alert.raised.outcome-overdue",                 // 9501's next version, past its deadline
            "alert.resolved.non-compliance.warning-due",    // the v1 store's open alert
            "alert.raised.outcome-overdue",                 // 9101, moved to 12 June, due 19 June
            "alert.resolved.outcome-overdue",               // 9501's outcome
        ])
        #expect(got.first?.contains(#""alertSequence":2"#) == true)
        #expect(!got.joined().contains(#""triggerContactId":9201"#), "9201 (AFTA before the upgrade) raised")

        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                         publishedThrough: engine.state.alertSequence, now: 1_800_000_000_000)
        store.close()
        #expect(try Self.userVersion(dir.storePath) == UInt32(StateStore.schemaVersion))
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        let (again, _) = try reopened.load()
        #expect(sameState(again, engine.state))
        #expect(again.cases.contains { !$0.openOutcomeOverdue.isEmpty })
        #expect(try reopened.journal(after: 0, limit: 10).count == 5)
    }

    @Test("a fresh store is created at the current schema version, contacts packed in their cases' rows")
    func freshStore() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        store.close()
        #expect(try Self.userVersion(dir.storePath) == 3)
        #expect(try Self.tables(dir.storePath) == ["caseState", "journal", "meta", "outcomeTimer", "pdu", "publisher", "withdrawn"])
    }

    static func tables(_ path: String) throws -> [String] {
        let q = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'grdb%' ORDER BY name")
        }
    }

    /// Schema v2 → v3 (contacts packed into their case's row). `Tests/Fixtures/stores/v2-r7-on.sqlite` was written by
    /// the real `contactwatchd` of 66ad26a (schema v2, R7 enabled in its configuration file), stopped with SIGTERM
    /// after `v2-r7-on.ndjson` (v1's stream, `part2` above, two more contacts: open R1 and R7 alerts, an armed R7
    /// timer, a publisher's sequence numbers, eight journal entries).
    @Test("a v2 store migrates to packed contacts losslessly and goes on as if never stopped")
    func v2StorePacksContacts() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let fixture = Self.stores.appendingPathComponent("v2-r7-on.sqlite").path
        try FileManager.default.copyItem(atPath: fixture, toPath: dir.storePath)
        #expect(try Self.userVersion(dir.storePath) == 2)
        #expect(try Self.tables(dir.storePath).contains("contact"))

        var on = EngineSettings()
        on.outcomeOverdueEnabled = true
        let lines = try String(contentsOf: Self.stores.appendingPathComponent("v2-r7-on.ndjson"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let reference = try Engine(settings: on)
        var referenceOut = Outbox()
        feed(reference, lines[...], into: &referenceOut)

        let store = try StateStore(directory: dir.path)
        let (loaded, unpublished) = try store.load()
        #expect(unpublished.isEmpty)
        #expect(sameState(loaded, reference.state), "the v2 store does not load as the stream's state")
        #expect(loaded.contacts.count == 5 && loaded.outcomeTimers.count == 1 && loaded.alertSequence == 8)
        #expect(loaded.cases.contains { !$0.openOutcomeOverdue.isEmpty } && loaded.publishers["feed-1"] == 4)
        // The journal is untouched: every entry, with the bodies the daemon published.
        let journal = try store.journal(after: 0, limit: 100)
        #expect(journal.map(\.alertSequence) == Array(1...8))
        // (The bodies differ only in detectedAt, the daemon's wall clock.)
        let referenceJournal = StateStore.journalEntries(from: referenceOut)
        #expect(journal.map(\.alertId) == referenceJournal.map(\.alertId) && journal.map(\.topic) == referenceJournal.map(\.topic))
        #expect(try !Self.tables(dir.storePath).contains("contact"))

        // Goes on exactly as the engine that never stopped, and round-trips again in the new layout.
        let engine = try Engine(settings: on, state: loaded)
        let more = SyntheticStream.generate(seed: 11, count: 400, cases: 12, start: "2026-06-25T09:00:00Z")
        var out = Outbox(), expected = Outbox()
        feed(engine, more[...], into: &out)
        feed(reference, more[...], into: &expected)
        #expect(messages(out) == messages(expected))
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: out),
                         publishedThrough: engine.state.alertSequence, now: 1_800_000_000_000)
        store.close()
        #expect(try Self.userVersion(dir.storePath) == 3)
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        #expect(sameState(try reopened.load().state, engine.state))
    }

    /// A v2 store whose contact names a case it does not have cannot be migrated: refused as corrupt (exit 74), and
    /// left at v2 with its contacts (the migration is one transaction), never reset.
    @Test func v2StoreWithAnOrphanContactIsRefusedUnchanged() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try FileManager.default.copyItem(atPath: Self.stores.appendingPathComponent("v2-r7-on.sqlite").path,
                                         toPath: dir.storePath)
        try tamper(dir) { db in
            var w = ByteWriter()
            RecordCodec.encode(ContactRecord(caseIndex: 4242, actionId: 0, version: 1, contactStart: 1_780_000_000_000,
                                             actionTime: 0, pduIndex: -1, contributionDate: 20_600, flags: []), into: &w)
            try db.execute(sql: "INSERT INTO contact (id, data) VALUES (777, ?)", arguments: [Data(w.bytes)])
        }
        #expect {
            _ = try StateStore(directory: dir.path)
        } throws: { e in
            (e as? StoreError)?.kind == .corrupt && "\(e)".contains("4242")
        }
        #expect(try Self.userVersion(dir.storePath) == 2)
        let check = try DatabaseQueue(path: dir.storePath)
        defer { try? check.close() }
        #expect(try check.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM contact") } == 6)
    }
}
