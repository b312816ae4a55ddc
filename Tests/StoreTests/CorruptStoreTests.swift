import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import ContactWatchCommon
import Foundation
import GRDB
import Testing

/// A new temporary directory holding a closed store with some real content (several pages); the caller cleans it up.
func populatedStore() throws -> TempDir {
    let dir = TempDir()
    do {
        let engine = try Engine(settings: EngineSettings())
        var outbox = Outbox()
        feed(engine, SyntheticStream.generate(seed: 5, count: 1500, cases: 300)[...], into: &outbox)
        let store = try StateStore(directory: dir.path)
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                         publishedThrough: nil, now: 0)
        store.close()
    } catch {
        dir.cleanup()
        throw error
    }
    return dir
}

/// Changes the closed store in `dir` behind ContactWatch's back (plain GRDB, no checks), as damage or another
/// program would.
func tamper(_ dir: TempDir, _ change: (Database) throws -> Void) throws {
    let q = try DatabaseQueue(path: dir.storePath)
    try q.write(change)
    try q.close()
}

/// Opens the store in `dir` (which succeeds) and expects its load to fail as `.corrupt`, saying each of `words`.
func expectCorruptLoad(_ dir: TempDir, mentioning words: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let store = try StateStore(directory: dir.path)
    defer { store.close() }
    let error = #expect(throws: StoreError.self, sourceLocation: sourceLocation) { try store.load() }
    #expect(error?.kind == .corrupt, "\(String(describing: error))", sourceLocation: sourceLocation)
    for w in words { #expect(error?.description.contains(w) == true, "\(String(describing: error))", sourceLocation: sourceLocation) }
}

/// Opens the store in `dir`, expecting a refusal of `kind` that leaves the file's bytes as they were and creates no
/// side files (when `sideFiles` is false).
func expectRefusal(_ dir: TempDir, _ kind: StoreError.Kind, mentioning words: [String] = [], sideFiles: Bool = false,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
    let before = try Data(contentsOf: URL(fileURLWithPath: dir.storePath))
    var caught: StoreError? = nil
    do {
        let store = try StateStore(directory: dir.path)
        _ = try store.load()
        store.close()
    } catch {
        caught = error
    }
    guard let caught else {
        Issue.record("the store opened", sourceLocation: sourceLocation)
        return
    }
    #expect(caught.kind == kind, "\(caught)", sourceLocation: sourceLocation)
    #expect(caught.description.contains(dir.storePath), sourceLocation: sourceLocation)
    #expect(caught.description.contains("not been modified"), sourceLocation: sourceLocation)
    for w in words { #expect(caught.description.contains(w), "\(caught)", sourceLocation: sourceLocation) }
    let after = try Data(contentsOf: URL(fileURLWithPath: dir.storePath))
    let unchanged = after == before
    #expect(unchanged, "the file was modified (\(before.count) -> \(after.count) bytes)", sourceLocation: sourceLocation)
    if !sideFiles {
        #expect(!FileManager.default.fileExists(atPath: dir.storePath + "-wal"), sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: dir.storePath + "-shm"), sourceLocation: sourceLocation)
    }
}

@Suite(.computing) struct CorruptStoreTests {
    @Test(arguments: [0.5, 0.25])
    func truncatedFileIsRefused(fraction: Double) throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.storePath))
        #expect(data.count >= 8 * 4096)
        try data.prefix(Int(Double(data.count) * fraction) / 4096 * 4096).write(to: URL(fileURLWithPath: dir.storePath))
        try expectRefusal(dir, .corrupt, mentioning: ["truncated", "move it aside"])
    }

    @Test(arguments: [0, 50, 100, 4097])
    func truncatedToOddSizeIsRefused(size: Int) throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.storePath))
        try data.prefix(size).write(to: URL(fileURLWithPath: dir.storePath))
        try expectRefusal(dir, .corrupt)
    }

    @Test func garbageFileIsRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var rng = SyntheticStream.Rng(seed: 42)
        let bytes = (0..<65536).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir.storePath))
        try expectRefusal(dir, .corrupt, mentioning: ["not a database"])
    }

    /// The store's path taken by a directory or a pipe: refused as unreadable, saying which (`FileKind`, the words
    /// the configuration file and the certificates use too), and left as it was.
    @Test func storePathThatIsNotARegularFileIsRefused() throws {
        for (make, words) in [({ (p: String) in try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: false) },
                               "a directory, not a regular file"),
                              ({ (p: String) in #expect(mkfifo(p, 0o600) == 0) }, "a pipe, socket or device, not a regular file")] {
            let dir = TempDir()
            defer { dir.cleanup() }
            try make(dir.storePath)
            let error = #expect(throws: StoreError.self) { _ = try StateStore(directory: dir.path) }
            #expect(error?.kind == .unreadable, "\(String(describing: error))")
            #expect(error?.description.contains("the state store at \(dir.storePath) cannot be opened (\(words))") == true,
                    "\(String(describing: error))")
            #expect(FileKind(path: dir.storePath) != .regular, "the path was replaced")
        }
    }

    @Test func anotherApplicationsDatabaseIsRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            try db.execute(sql: "CREATE TABLE player (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO player VALUES (1, 'x')")
        }
        try expectRefusal(dir, .foreign, mentioning: ["not a ContactWatch state store"])

        let dir2 = TempDir()
        defer { dir2.cleanup() }
        try tamper(dir2) { db in try db.execute(sql: "PRAGMA application_id = 1234; CREATE TABLE t (x)") }
        try expectRefusal(dir2, .foreign, mentioning: ["application id"])
    }

    @Test func newerSchemaIsRefused() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            try db.execute(sql: "PRAGMA user_version = 7")
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v7')")
        }
        try expectRefusal(dir, .newerSchema, mentioning: ["schema version 7", "(6)"])
    }

    /// A copy of a populated store with `change` left in its WAL, as a kill -9 leaves it: the three files are copied
    /// while the connection that made the change is open (closing it would checkpoint).
    static func storeWithWAL(_ change: (Database) throws -> Void) throws -> TempDir {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        let copy = TempDir()
        let q = try DatabaseQueue(path: dir.storePath)
        try q.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try change(db)
        }
        for suffix in ["", "-wal", "-shm"] {
            try FileManager.default.copyItem(atPath: dir.storePath + suffix, toPath: copy.storePath + suffix)
        }
        try? q.close()
        return copy
    }

    /// A newer daemon killed before its first checkpoint leaves its schema in the WAL, the file's header still
    /// saying the old version; rolled back, the older daemon opened the store, refused it as newer "unmodified", and
    /// its close checkpointed the WAL into the file and deleted it (an upgrade tester, session 41).
    @Test func newerSchemaInTheWALLeavesTheFilesAlone() throws {
        let copy = try Self.storeWithWAL { db in try db.execute(sql: "PRAGMA user_version = 7") }
        defer { copy.cleanup() }
        let wal = try Data(contentsOf: URL(fileURLWithPath: copy.storePath + "-wal"))
        #expect(!wal.isEmpty)
        try expectRefusal(copy, .newerSchema, mentioning: ["schema version 7"], sideFiles: true)
        let walAfter = try? Data(contentsOf: URL(fileURLWithPath: copy.storePath + "-wal"))
        #expect(walAfter == wal, "the WAL was \(walAfter == nil ? "deleted" : "changed")")
    }

    /// The same, refused while GRDB itself opens the connection (it reads the schema, through the WAL, before any
    /// check of ours): a schema this SQLite cannot parse was refused as corrupt and the WAL folded in all the same (a
    /// reviewer, session 41).
    @Test func unreadableSchemaInTheWALLeavesTheFilesAlone() throws {
        let copy = try Self.storeWithWAL { db in
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(sql: "UPDATE sqlite_master SET sql = 'CREATE TABLE meta(' WHERE name = 'meta'")
        }
        defer { copy.cleanup() }
        let wal = try Data(contentsOf: URL(fileURLWithPath: copy.storePath + "-wal"))
        try expectRefusal(copy, .corrupt, sideFiles: true)
        let walAfter = try? Data(contentsOf: URL(fileURLWithPath: copy.storePath + "-wal"))
        #expect(walAfter == wal, "the WAL was \(walAfter == nil ? "deleted" : "changed")")
    }

    /// The same for a store refused by the load rather than by the checks before it: a case record that does not
    /// decode, in the WAL of a daemon killed before its checkpoint, was refused "not modified" and the WAL folded into
    /// the file at the close all the same (a re-review, session 41).
    @Test func undecodableRecordInTheWALLeavesTheFilesAlone() throws {
        let copy = try Self.storeWithWAL { db in
            try db.execute(sql: """
                UPDATE caseState SET contacts = x'0102ffffffffffffffffffff'
                 WHERE caseIndex = (SELECT min(caseIndex) FROM caseState WHERE contacts IS NOT NULL)
                """)
        }
        defer { copy.cleanup() }
        let wal = try Data(contentsOf: URL(fileURLWithPath: copy.storePath + "-wal"))
        #expect(!wal.isEmpty)
        try expectRefusal(copy, .corrupt, sideFiles: true)
        let walAfter = try? Data(contentsOf: URL(fileURLWithPath: copy.storePath + "-wal"))
        #expect(walAfter == wal, "the WAL was \(walAfter == nil ? "deleted" : "changed")")
    }

    /// A newer ContactWatch that added a migration without changing user_version is recognised after opening.
    @Test func unknownMigrationIsRefused() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v7')") }
        try expectRefusal(dir, .newerSchema, mentioning: ["migrations v7"], sideFiles: true)
    }

    /// Damage inside the file (a valid header, a broken b-tree page) is found by quick_check.
    @Test func damagedPageIsRefused() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        var data = try Data(contentsOf: URL(fileURLWithPath: dir.storePath))
        let pageSize = 4096
        // Overwrite the page headers of a run of pages after the schema.
        for page in 3..<min(8, data.count / pageSize) {
            for k in 0..<16 { data[page * pageSize + k] = 0xEE }
        }
        try data.write(to: URL(fileURLWithPath: dir.storePath))
        try expectRefusal(dir, .corrupt, sideFiles: true)
    }

    /// A record that does not decode makes load throw `.corrupt`, without crashing.
    @Test func undecodableRecordFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            try db.execute(sql: """
                UPDATE caseState SET contacts = x'0102ffffffffffffffffffff'
                 WHERE caseIndex = (SELECT min(caseIndex) FROM caseState WHERE contacts IS NOT NULL)
                """)
        }
        let index = try DatabaseQueue(path: dir.storePath).read { db in
            try Int.fetchOne(db, sql: "SELECT min(caseIndex) FROM caseState WHERE contacts IS NOT NULL")
        }
        // Named by its case (session 52).
        try expectCorruptLoad(dir, mentioning: ["case \(try #require(index)) (CRN ", "'s contacts: "])
    }

    /// A contact packed into two cases' rows (the store never writes that) is refused as corrupt, not loaded twice.
    @Test func contactInTwoCasesFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            let rows = try Row.fetchAll(db, sql: "SELECT caseIndex, contacts FROM caseState WHERE contacts IS NOT NULL ORDER BY caseIndex LIMIT 2")
            try #require(rows.count == 2)
            let first: Data = rows[0]["contacts"]
            try db.execute(sql: "UPDATE caseState SET contacts = ? WHERE caseIndex = ?", arguments: [first, rows[1]["caseIndex"] as Int64])
        }
        try expectCorruptLoad(dir, mentioning: ["two cases"])
    }

    /// Two cases with one CRN (the store never writes that) are refused as corrupt.
    @Test func crnInTwoCasesFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            let rows = try Row.fetchAll(db, sql: "SELECT caseIndex, crn FROM caseState ORDER BY caseIndex LIMIT 3")
            try #require(rows.count == 3)
            try db.execute(sql: "UPDATE caseState SET crn = ? WHERE caseIndex = ?",
                           arguments: [rows[0]["crn"] as Int64, rows[2]["caseIndex"] as Int64])
        }
        try expectCorruptLoad(dir, mentioning: ["appears in two cases"])
    }

    /// A case row re-encoded with its last face-to-face contact at −2^63 + 1 (damage that still decodes: the row
    /// has no digest) trapped R2's arithmetic at that case's next event, a crash the unit restarts for ever (a
    /// reviewer, session 51). The load refuses it, naming the field and the case.
    @Test func caseTimeBeyondAnyEventFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT caseIndex, crn, data FROM caseState ORDER BY caseIndex LIMIT 1"))
            let data: Data = row["data"]
            var c = try data.withUnsafeBytes { try RecordCodec.decodeCase(crn: CRN(key: 0), $0) }
            c.lastInPersonAt = Int64.min + 1
            var w = ByteWriter()
            RecordCodec.encode(c, into: &w)
            try db.execute(sql: "UPDATE caseState SET data = ? WHERE caseIndex = ?", arguments: [Data(w.bytes), row["caseIndex"] as Int64])
        }
        try expectCorruptLoad(dir, mentioning: ["last face-to-face contact -9223372036854775807 is out of range"])
    }

    /// An open alert's evidence with an unescaped quote (damage that still decodes) was published in its resolution
    /// as invalid JSON (a store's hunter, session 52): the load refuses it, naming the case.
    @Test func evidenceThatIsNotJSONFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        var damaged: Int64 = -1
        try tamper(dir) { db in
            let rows = try Row.fetchAll(db, sql: "SELECT caseIndex, data FROM caseState ORDER BY caseIndex")
            for row in rows {
                let data: Data = row["data"]
                var c = try data.withUnsafeBytes { try RecordCodec.decodeCase(crn: CRN(key: 0), $0) }
                guard !c.openNonCompliance.isEmpty else { continue }
                let evidence = c.openNonCompliance[0].evidence
                let quote = try #require(evidence.lastIndex(of: UInt8(ascii: "\"")))
                c.openNonCompliance[0].evidence.insert(UInt8(ascii: "\""), at: quote)
                var w = ByteWriter()
                RecordCodec.encode(c, into: &w)
                damaged = row["caseIndex"]
                try db.execute(sql: "UPDATE caseState SET data = ? WHERE caseIndex = ?", arguments: [Data(w.bytes), damaged])
                return
            }
        }
        try #require(damaged >= 0, "the populated store has no open non-compliance alert")
        try expectCorruptLoad(dir, mentioning: ["case \(damaged) (CRN ", "an open alert's evidence is not JSON"])
    }

    /// A CRN key past Z999999 (25,999,999) names no CRN: two case rows sharing one at 2 × 10^8 trapped every start
    /// (the refusal's own message wrote the CRN's letter), and one alone was published as a control character in
    /// invalid JSON or trapped the debug log line of its next alert (a store's hunter, session 52). The load refuses
    /// it; Z999999 itself is a CRN, and two cases sharing it are refused naming it.
    @Test(arguments: [26_000_000, 191_000_000, 200_000_000, 4_294_967_295])
    func crnKeyPastZ999999FailsLoad(key: Int64) throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            try db.execute(sql: "UPDATE caseState SET crn = ? WHERE caseIndex IN (0, 1)", arguments: [key])
        }
        try expectCorruptLoad(dir, mentioning: ["case 0 has an invalid CRN key \(key)"])
    }

    @Test func twoCasesAtZ999999AreNamed() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in try db.execute(sql: "UPDATE caseState SET crn = 25999999 WHERE caseIndex IN (0, 1)") }
        try expectCorruptLoad(dir, mentioning: ["CRN Z999999 appears in two cases"])
    }

    /// A case whose stored contacts do not decode makes a commit that changes them fail as corrupt (exit 74),
    /// rolled back: nothing of the batch is stored, the damaged row is not overwritten.
    @Test func undecodableContactsFailTheCommit() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let engine = try Engine(settings: EngineSettings())
        var outbox = Outbox()
        let lines = SyntheticStream.generate(seed: 5, count: 1500, cases: 300)
        feed(engine, lines[..<1000], into: &outbox)
        var store = try StateStore(directory: dir.path)
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: [], publishedThrough: nil, now: 0)
        store.close()
        let damaged = Data([1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        try tamper(dir) { db in try db.execute(sql: "UPDATE caseState SET contacts = ?", arguments: [damaged]) }
        store = try StateStore(directory: dir.path)
        feed(engine, lines[1000...], into: &outbox)
        let changes = engine.takeChanges()
        #expect(!changes.contacts.isEmpty)
        #expect {
            try store.commit(changes: changes, state: engine.state, journal: [], publishedThrough: nil, now: 0)
        } throws: { e in
            (e as? StoreError)?.kind == .corrupt
        }
        store.close()
        let check = try DatabaseQueue(path: dir.storePath)
        defer { try? check.close() }
        #expect(try check.read { db in try Data.fetchAll(db, sql: "SELECT DISTINCT contacts FROM caseState") } == [damaged])
    }

    /// The merge function reads its batch through SQLite's pointer interface only: called from SQL typed by hand,
    /// or from a view, it fails instead of reading memory.
    @Test func mergeFunctionOnlyRunsWithItsBatch() throws {
        let q = try DatabaseQueue()
        try q.write { db in
            try MergeContacts.register(db)
            try db.execute(sql: "CREATE VIEW v AS SELECT cw_merge_contacts(NULL, NULL, 1) AS x")
        }
        for sql in ["SELECT cw_merge_contacts(x'01', 5, 1)", "SELECT cw_merge_contacts(NULL, NULL, 1)", "SELECT x FROM v"] {
            #expect(throws: DatabaseError.self, "\(sql)") {
                try q.read { db in _ = try Row.fetchAll(db, sql: sql) }
            }
        }
    }

    /// A case row whose CRN is not an integer (SQLite's columns take any type) is refused as corrupt, not converted.
    @Test func nonIntegerCaseKeyFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in try db.execute(sql: "UPDATE caseState SET crn = 'X123456' WHERE caseIndex = 3") }
        try expectCorruptLoad(dir, mentioning: ["not an integer"])
    }

    /// The shrink check (`checkStillInPlace`) must not take SQLite's own shrinking for a truncation: an operator's
    /// VACUUM from another connection (after deleting old journal rows, as retention does) cuts the file to what its
    /// header counts (a reviewer, session 35: the first check stopped such a daemon with exit 74, "restore from a
    /// backup"). A cut by another program leaves the header counting more pages than the file holds: refused.
    @Test func vacuumIsNotATruncationButACutIs() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        func size() throws -> Int64 { Int64(try FileManager.default.attributesOfItem(atPath: dir.storePath)[.size] as! Int) }
        try store.checkFiles()
        let before = try size()
        let other = try DatabaseQueue(path: dir.storePath)
        try other.writeWithoutTransaction { db in
            try db.execute(sql: "DELETE FROM journalChunk WHERE firstSequence < (SELECT max(firstSequence) FROM journalChunk)")
            try db.execute(sql: "VACUUM")
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        try other.close()
        let vacuumed = try size()
        try #require(vacuumed < before, "the VACUUM did not shrink the store: \(before) → \(vacuumed)")
        #expect(throws: Never.self) { try store.checkFiles() }
        // Cut by another program to half its size: the header still counts every page.
        #expect(truncate(dir.storePath, off_t(vacuumed / 2)) == 0)
        do {
            try store.checkFiles()
            Issue.record("a file cut from \(vacuumed) to \(vacuumed / 2) bytes was not seen")
        } catch {
            #expect(error.kind == .corrupt && error.description.contains("shrank from \(vacuumed) to \(vacuumed / 2) bytes"),
                    "\(error)")
        }
    }

    /// A `meta.alertSequence` below the journal's last sequence (or below `publishedThrough`) would give the journal's
    /// numbers again to other alerts: it was accepted (a fault tester, session 35).
    @Test func alertSequenceBehindTheJournalFailsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        let last = try DatabaseQueue(path: dir.storePath).read { db in try Int64.fetchOne(db, sql: "SELECT max(lastSequence) FROM journalChunk") } ?? 0
        try #require(last > 2, "the populated store has no journal")
        try tamper(dir) { db in try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'alertSequence'", arguments: [last - 1]) }
        try expectCorruptLoad(dir, mentioning: ["its journal holds alertSequence \(last), beyond the last one given (\(last - 1))"])
        try tamper(dir) { db in
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'alertSequence'", arguments: [last])
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'publishedThrough'", arguments: [last + 5])
        }
        try expectCorruptLoad(dir, mentioning: ["published through alertSequence \(last + 5), beyond the last one given (\(last))"])
    }

    /// A `meta`, `publisher` or `pdu` value of another storage class (`quick_check` passes it: the tables are not
    /// STRICT) trapped in GRDB's non-throwing subscripts (SIGILL, exit 132 under the daemon) instead of a corrupt
    /// store's exit 74, and a REAL was truncated (the store's hunter, session 45). Likewise a watermark, alertSequence
    /// or publisher position the engine could never have written trapped its arithmetic: every start (the watermark),
    /// the first alert (alertSequence 2^64 − 1), the publisher's next event (a position of 2^64 − 1) — a crash the
    /// unit restarts for ever (a reviewer, session 51).
    @Test("a meta, publisher or PDU value of the wrong storage class (text, NULL, blob, real), or out of range, is a corrupt store naming it, not a crash or a truncation", arguments: [
        ("UPDATE meta SET value = -9223372036854775807 WHERE key = 'watermark'", "meta value watermark is -9223372036854775807, not a time an event can carry"),
        ("UPDATE meta SET value = 36028797018963969 WHERE key = 'watermark'", "meta value watermark is 36028797018963969"),
        ("UPDATE meta SET value = -1 WHERE key = 'alertSequence'", "meta value alertSequence is -1, outside 0 to 2^53 − 1"),
        ("UPDATE meta SET value = 9007199254740992 WHERE key = 'alertSequence'", "meta value alertSequence is 9007199254740992"),
        ("INSERT INTO publisher VALUES ('feed-A', -1)", "publisher feed-A's lastSequence is -1, outside 0 to 2^53 − 1"),
        ("INSERT INTO publisher VALUES ('feed-B', 9007199254740992)", "publisher feed-B's lastSequence is 9007199254740992"),
        ("UPDATE meta SET value = 'x' WHERE key = 'alertSequence'", "meta value alertSequence is the text 'x', not an integer"),
        ("UPDATE meta SET value = NULL WHERE key = 'alertSequence'", "meta value alertSequence is NULL, not an integer"),
        ("UPDATE meta SET value = 1.5 WHERE key = 'alertSequence'", "meta value alertSequence is the real number 1.5, not an integer"),
        ("UPDATE meta SET value = x'00' WHERE key = 'watermark'", "meta value watermark is a blob of 1 bytes, not an integer"),
        ("INSERT INTO publisher VALUES ('feed-A', 'abc')", "publisher feed-A's lastSequence is the text 'abc', not an integer"),
        ("INSERT INTO publisher VALUES (x'ff00', 3)", "a publisherId of the publisher table is a blob of 2 bytes, not text"),
        ("UPDATE pdu SET code = x'ff' WHERE pduIndex = 0", "PDU 0's code is a blob of 1 bytes, not text"),
    ])
    func valueOfAnotherStorageClass(_ sql: String, _ message: String) throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        if sql.contains("pdu") {
            let pdus = try DatabaseQueue(path: dir.storePath).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM pdu") } ?? 0
            try #require(pdus > 0, "the populated store has no PDU")
        }
        try tamper(dir) { db in try db.execute(sql: sql) }
        try expectCorruptLoad(dir, mentioning: [message])
    }

    @Test("the largest values the engine can write load: alertSequence and a position of 2^53 − 1, the watermark at ±2^55")
    func valuesAtTheirLimitsLoad() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        try tamper(dir) { db in
            try db.execute(sql: "UPDATE meta SET value = 9007199254740991 WHERE key = 'alertSequence'")
            try db.execute(sql: "UPDATE meta SET value = 9007199254740991 WHERE key = 'publishedThrough'")
            try db.execute(sql: "INSERT INTO publisher VALUES ('feed-C', 9007199254740991)")
        }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let state = try store.load().state
        #expect(state.alertSequence == (1 << 53) - 1 && state.publishers[ExactString("feed-C")] == (1 << 53) - 1)
    }

    /// `contactCount` is only a capacity hint: a damaged one made the load allocate and fill a table for it (2^28
    /// contacts: ~16 GB, an OOM kill instead of a start; the store's hunter, session 45). It is bounded by what the
    /// file can hold. (50,000,000 here: ~2.8 GB before, within reach of the test machine.)
    @Test("a damaged contactCount does not size the loaded contacts table beyond what the file can hold")
    func contactCountBeyondTheFile() throws {
        let dir = try populatedStore()
        defer { dir.cleanup() }
        let expected: EngineState = try {
            let store = try StateStore(directory: dir.path)
            defer { store.close() }
            return try store.load().state
        }()
        try tamper(dir) { db in try db.execute(sql: "UPDATE meta SET value = 50000000 WHERE key = 'contactCount'") }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let loaded = try store.load().state
        #expect(sameState(loaded, expected))
        #expect(loaded.contacts.slotCount < 1_000_000, "\(loaded.contacts.slotCount) slots for \(loaded.contacts.count) contacts")
    }
}

/// SQLite's result codes as the operator's message and exit status classify them (`StoreError.from`).
@Suite("State store errors by SQLite result code")
struct StoreErrorClassificationTests {
    private func kind(_ code: ResultCode, errno: Int32 = 0) -> StoreError.Kind {
        StoreError.from(DatabaseError(resultCode: code, message: "m"), path: "/s/contactwatch.sqlite", during: "committing",
                        systemErrno: errno).kind
    }

    /// SQLITE_PROTOCOL (a WAL lock another process held through SQLite's ~10 s of retries) and an allocation failure
    /// were "I/O error … Check the disk", exit 74, which the unit never restarts (reviewers, session 50).
    @Test("locks (BUSY, LOCKED, PROTOCOL) are busy, NOMEM out of memory, both temporary; damage and I/O errors are not")
    func classified() {
        #expect(kind(.SQLITE_BUSY) == .busy && kind(.SQLITE_LOCKED) == .busy && kind(.SQLITE_PROTOCOL) == .busy)
        #expect(kind(.SQLITE_NOMEM) == .outOfMemory && kind(.SQLITE_IOERR_NOMEM) == .outOfMemory)
        #expect(StoreError.Kind.busy.isTemporary && StoreError.Kind.outOfMemory.isTemporary && StoreError.Kind.full.isTemporary)
        #expect(kind(.SQLITE_CORRUPT) == .corrupt && kind(.SQLITE_IOERR) == .io && kind(.SQLITE_IOERR_READ) == .io)
        #expect(!StoreError.Kind.io.isTemporary && !StoreError.Kind.corrupt.isTemporary)
        #expect(kind(.SQLITE_FULL) == .full && kind(.SQLITE_IOERR, errno: ENOSPC) == .full)
        let said = StoreError.from(DatabaseError(resultCode: .SQLITE_PROTOCOL, message: "locking protocol"),
                                   path: "/s/contactwatch.sqlite", during: "committing").description
        #expect(said.contains("locked by another process") && said.contains("fuser -v /s/contactwatch.sqlite"), "\(said)")
    }

    /// A write past the process's file-size limit (`ulimit -f`, `EFBIG`) said "Check the disk (space, errors)" (a
    /// process-environment hunter, session 53): it names the limit, not the disk, and is not temporary.
    @Test("EFBIG behind an I/O error names the file-size limit, not the disk")
    func fileSizeLimit() {
        let error = StoreError.from(DatabaseError(resultCode: .SQLITE_IOERR_WRITE, message: "disk I/O error"),
                                    path: "/s/contactwatch.sqlite", during: "committing", systemErrno: EFBIG)
        #expect(error.kind == .io && !error.kind.isTemporary)
        #expect(error.description.contains("file-size limit (RLIMIT_FSIZE") && error.description.contains("File too large")
                && !error.description.contains("Check the disk"), "\(error.description)")
        // Both files' sizes: the -wal meets the limit first under load, and is deleted at the stop (session 54).
        #expect(error.description.contains("the database file is absent and its -wal absent"), "\(error.description)")
    }
}
