import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import Foundation
import GRDB
import Testing

/// Schema v1 → v2 (R7). `Tests/Fixtures/stores/v1-before-r7.sqlite` was written by the real `contactwatchd` of the
/// commit before R7 (schema v1), stopped with SIGTERM after `v1-before-r7.ndjson` (two planned appointments without
/// an outcome, an AFTA, a failure with its open warning-due alert, a publisher's sequence numbers).
@Suite("Store migration: a v1 store opens and gains R7", .computing)
struct MigrationTests {
    static let stores = Fixtures.directory.deletingLastPathComponent().appendingPathComponent("stores")

    /// A temporary directory holding a copy of the fixture store `name` as its store file.
    static func copy(_ name: String) throws -> TempDir {
        let dir = TempDir()
        do {
            try FileManager.default.copyItem(atPath: stores.appendingPathComponent(name).path, toPath: dir.storePath)
        } catch {
            dir.cleanup()
            throw error
        }
        return dir
    }

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

    /// A store this start migrated, then refused by the load (a record it cannot decode): the refusal no longer says
    /// "it has not been modified" — its file has not, but its -wal holds the migration, and the previous version would
    /// now refuse it as newer (a reviewer, session 42).
    @Test("a store migrated by this start and then refused by the load says so, its file as found")
    func migratedThenRefused() throws {
        let dir = try Self.copy("v1-before-r7.sqlite")
        defer { dir.cleanup() }
        let q = try DatabaseQueue(path: dir.storePath)
        try q.write { db in try db.execute(sql: "UPDATE pdu SET data = x'ffffffffffffffff'") }
        try q.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.storePath))
        let store = try StateStore(directory: dir.path)
        #expect(store.migratedFrom == 1)
        let error = #expect(throws: StoreError.self) { try store.load() }
        store.close()
        #expect(error?.kind == .corrupt, "\(String(describing: error))")
        let text = error?.description ?? ""
        #expect(!text.contains("it has not been modified."), "\(text)")
        #expect(text.contains("its file has not been modified, but this start migrated it from schema version 1 to "
            + "\(StateStore.schemaVersion) before the load (in its -wal, not checkpointed)."), "\(text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.storePath)) == before)
        #expect(FileManager.default.fileExists(atPath: dir.storePath + "-wal"))
    }

    @Test("a store written before R7 migrates forward, keeps everything, and gains R7 with it enabled")
    func v1StoreGainsR7() throws {
        let dir = try Self.copy("v1-before-r7.sqlite")
        defer { dir.cleanup() }
        #expect(try Self.userVersion(dir.storePath) == 1)

        // What the engine of today makes of the same stream with R7 off: the state the v1 store must load as.
        let part1 = try String(contentsOf: Self.stores.appendingPathComponent("v1-before-r7.ndjson"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let reference = try Engine(settings: EngineSettings())
        var ignored = Outbox()
        feed(reference, part1[...], into: &ignored)

        let store = try StateStore(directory: dir.path)
        #expect(store.migratedFrom == 1)
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
        #expect(reopened.migratedFrom == nil)
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
        #expect(store.migratedFrom == nil)
        store.close()
        #expect(try Self.userVersion(dir.storePath) == UInt32(StateStore.schemaVersion))
        #expect(try Self.tables(dir.storePath) == ["caseState", "journalChunk", "meta", "outcomeTimer", "pdu", "publisher", "withdrawn"])
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
        let dir = try Self.copy("v2-r7-on.sqlite")
        defer { dir.cleanup() }
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
        #expect(store.migratedFrom == 2)
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
        #expect(try Self.userVersion(dir.storePath) == UInt32(StateStore.schemaVersion))
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        #expect(sameState(try reopened.load().state, engine.state))
    }

    /// Schema v3 → v4 (the journal in rows of a commit's alerts, `JournalChunk`). `Tests/Fixtures/stores/v3-r7-on.sqlite`
    /// was written by the real `contactwatchd` of 4956708 (schema v3, R7 enabled in its configuration file), stopped
    /// with SIGTERM after `v2-r7-on.ndjson` (the v2 fixture's stream: eight journal entries in one commit). Before it is
    /// opened, 392 more rows are added to its v3 journal as v3 stored them (three commits, bodies up to 40,000 bytes,
    /// ids that are not 32 hex digits, a non-ASCII topic) and it is marked published through 150.
    @Test("a v3 store moves its journal into rows of a commit's alerts, byte for byte")
    func v3StoreChunksItsJournal() throws {
        let dir = try Self.copy("v3-r7-on.sqlite")
        defer { dir.cleanup() }
        #expect(try Self.userVersion(dir.storePath) == 3)
        let added = varied(9...400, seed: 12)
        try tamper(dir) { db in
            for e in added {
                try db.execute(sql: "INSERT INTO journal (alertSequence, alertId, topic, body, recordedAt) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Int64(e.alertSequence), e.alertId, String(decoding: e.topic, as: UTF8.self),
                                           Data(e.body), e.alertSequence < 100 ? 1_000 : e.alertSequence < 103 ? 2_000 : 3_000])
            }
            try db.execute(sql: "UPDATE meta SET value = 400 WHERE key = 'alertSequence'")
            try db.execute(sql: "UPDATE meta SET value = 150 WHERE key = 'publishedThrough'")
        }
        // The journal as the v3 reader returned it.
        let before: [JournalEntry] = try {
            let q = try DatabaseQueue(path: dir.storePath)
            defer { try? q.close() }
            return try q.read { db in
                try Row.fetchAll(db, sql: "SELECT alertSequence, alertId, topic, body FROM journal ORDER BY alertSequence").map {
                    JournalEntry(alertSequence: UInt64($0[0] as Int64), alertId: $0[1], topic: Array(($0[2] as String).utf8),
                                 body: [UInt8]($0[3] as Data))
                }
            }
        }()
        #expect(before.count == 400 && Array(before[8...]) == added)

        var on = EngineSettings()
        on.outcomeOverdueEnabled = true
        let lines = try String(contentsOf: Self.stores.appendingPathComponent("v2-r7-on.ndjson"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let reference = try Engine(settings: on)
        var referenceOut = Outbox()
        feed(reference, lines[...], into: &referenceOut)
        // The fixture's own eight: the ids and topics the engine makes of the stream (bodies differ in detectedAt).
        let referenceJournal = StateStore.journalEntries(from: referenceOut)
        #expect(before[..<8].map(\.alertId) == referenceJournal.map(\.alertId))
        #expect(before[..<8].map(\.topic) == referenceJournal.map(\.topic))

        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        #expect(try !Self.tables(dir.storePath).contains("journal") && Self.tables(dir.storePath).contains("journalChunk"))
        let (loaded, unpublished) = try store.load()
        var expectedState = reference.state
        expectedState.alertSequence = 400
        #expect(sameState(loaded, expectedState), "the v3 store does not load as the stream's state")
        #expect(unpublished == Array(before[150...]))
        #expect(try store.journal(after: 0, limit: 1_000) == before)
        let reader = try JournalReader(path: store.path)
        defer { reader.close() }
        for after: UInt64 in [0, 7, 8, 9, 99, 100, 102, 103, 150, 399, 400] {
            for (limit, maxBytes) in [(1, 1 << 20), (5, 1 << 20), (1_000, 1 << 20), (1_000, 4_000), (1_000, 0)] {
                #expect(try reader.page(after: after, maxAlerts: limit, maxBytes: maxBytes).entries
                        == referencePage(before, after: after, limit: limit, maxBytes: maxBytes))
            }
        }
        // A row never mixes two recordedAt values (the fixture's commit, then 1,000, 2,000, 3,000).
        let rows = try JournalChunkTests.rows(dir.storePath)
        #expect(rows.reduce(0) { $0 + $1.count } == 400)
        let group = { (n: Int64) -> Int in n <= 8 ? 0 : n < 100 ? 1 : n < 103 ? 2 : 3 }
        #expect(rows.allSatisfy { group($0.first) == group($0.last) })
        #expect(Set(rows.map { group($0.first) }) == [0, 1, 2, 3])
        #expect(try store.pruneJournal(recordedBefore: 2_500) == 94)  // 9...102: old enough and published
        #expect(try store.journal(after: 0, limit: 1_000) == before.filter { $0.alertSequence <= 8 || $0.alertSequence > 102 })
        reader.close()
        store.close()
        #expect(try Self.userVersion(dir.storePath) == UInt32(StateStore.schemaVersion))
    }

    /// A v2 store whose contact names a case it does not have cannot be migrated: refused as corrupt (exit 74), and
    /// left at v2 with its contacts (the migration is one transaction), never reset.
    /// An upgrade from v3 that fails after the v4 step (a full disk, a kill between two migrations: each is a
    /// transaction of its own) leaves a store of schema v4: its journal rows must be what schema v4 reads (format 1,
    /// as the version that made it wrote them), not format 3, which only schema v6 defines; and the refusal says how
    /// far the upgrade went (the store's hunter, session 45).
    @Test("an upgrade from v3 that fails after the v4 step leaves journal rows schema v4 reads, and says it upgraded the store that far")
    func v3UpgradeInterruptedAfterV4() throws {
        let dir = try Self.copy("v3-r7-on.sqlite")
        defer { dir.cleanup() }
        let q = try DatabaseQueue(path: dir.storePath)
        try q.write { db in
            try db.execute(sql: """
                CREATE TRIGGER inject BEFORE UPDATE ON meta WHEN OLD.key = 'schemaVersion' AND NEW.value = 5
                BEGIN SELECT RAISE(ABORT, 'injected failure of the v5 step'); END;
                """)
        }
        try q.close()
        let error = #expect(throws: StoreError.self) { _ = try StateStore(directory: dir.path) }
        let text = error?.description ?? ""
        #expect(text.contains("injected failure of the v5 step"), "\(text)")
        #expect(text.contains("this start upgraded it from schema version 3 to 4 (of \(StateStore.schemaVersion)) before the failure; the next start goes on from there."), "\(text)")
        #expect(!text.contains(StoreError.notModified), "\(text)")
        let check = try DatabaseQueue(path: dir.storePath)
        defer { try? check.close() }
        let (version, formats) = try check.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0,
             try Int.fetchAll(db, sql: "SELECT unicode(CAST(substr(entries, 1, 1) AS TEXT)) FROM journalChunk"))
        }
        #expect(version == 4)
        #expect(!formats.isEmpty && formats.allSatisfy { $0 == 1 }, "journal row formats \(formats)")
    }

    @Test func v2StoreWithAnOrphanContactIsRefusedUnchanged() throws {
        let dir = try Self.copy("v2-r7-on.sqlite")
        defer { dir.cleanup() }
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
