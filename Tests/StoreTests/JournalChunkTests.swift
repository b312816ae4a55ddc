import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import Foundation
import GRDB
import Testing

/// What a page of the journal must be (the v3 reader's semantics, a row per alert): the entries after `after`, at most
/// `limit`, and at most `maxBytes` of bodies — but always the first one.
func referencePage(_ all: [JournalEntry], after: UInt64, limit: Int, maxBytes: Int) -> [JournalEntry] {
    var out: [JournalEntry] = []
    var bytes = 0
    for e in all where e.alertSequence > after {
        if out.count >= limit { break }
        if !out.isEmpty && e.body.count > maxBytes - bytes { break }
        bytes += e.body.count
        out.append(e)
    }
    return out
}

/// The load and the journal's reader both refuse the store in `dir` as corrupt (exit 74), the load naming `words`.
func expectCorruptJournal(_ dir: TempDir, mentioning words: [String], _ damage: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    try expectCorruptLoad(dir, mentioning: words, sourceLocation: sourceLocation)
    let reader = try JournalReader(path: dir.storePath)
    defer { reader.close() }
    let error = #expect(throws: StoreError.self, sourceLocation: sourceLocation) {
        _ = try reader.page(after: 0, maxAlerts: 1_000, maxBytes: 1 << 30)
    }
    #expect(error?.kind == .corrupt, "\(damage): \(String(describing: error))", sourceLocation: sourceLocation)
}

/// 3,000 damaged copies of a row's `blob` (a third cut short at a random length, the rest with one to four bytes
/// at or after `from` replaced), each handed to `decode`; returns how many it threw on. `decode` counts what it read.
func decodeDamagedCopies(of blob: Data, from: Int, _ decode: (UnsafeRawBufferPointer) throws -> Void) -> Int {
    var rng = SplitMix64(seed: 7)
    var threw = 0
    for k in 0..<3_000 {
        var bytes = [UInt8](blob)
        if k % 3 == 0 {
            bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
        } else {
            for _ in 0...(rng.next() % 4) where bytes.count > from {
                bytes[from + Int(rng.next() % UInt64(bytes.count - from))] = UInt8(truncatingIfNeeded: rng.next())
            }
        }
        bytes.withUnsafeBytes { b in
            do { try decode(b) } catch { threw += 1 }
        }
    }
    return threw
}

/// Entries `range` with bodies of pseudo-random sizes (0 to 3,000 bytes, and one of 40,000: larger than a row),
/// engine-like ids (32 hex digits) but now and then another text, and topics with a non-ASCII one among them.
func varied(_ range: ClosedRange<UInt64>, seed: UInt64) -> [JournalEntry] {
    var rng = SplitMix64(seed: seed)
    return range.map { n in
        let size = n % 97 == 0 ? 40_000 : Int(rng.next() % 3_001)
        let body = (0..<size).map { i in UInt8(truncatingIfNeeded: 32 &+ (Int(n) &* 7 &+ i) % 90) }
        let id: String
        switch rng.next() % 20 {
        case 0: id = ""
        case 1: id = "not-an-id-\(n)"
        case 2: id = String(repeating: "A", count: 32)  // upper case: stored as text
        default: id = String(format: "%016llx%016llx", rng.next(), rng.next())
        }
        let topic = n % 13 == 0 ? "alert.raised.é-\(n)" : "alert.raised.telephone-only"
        return JournalEntry(alertSequence: n, alertId: id, topic: Array(topic.utf8), body: body)
    }
}

@Suite(.computing) struct JournalChunkTests {
    /// Three commits of many entries each, in rows of ~32 KiB: every page a client can ask for is the page the v3
    /// journal (a row per alert) gave.
    @Test func pagesAreThoseOfARowPerAlert() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let all = varied(1...200, seed: 1) + varied(201...203, seed: 2) + varied(204...600, seed: 3)
        var state = EngineState()
        for (range, now) in [(0..<200, Int64(1_000)), (200..<203, 2_000), (203..<600, 3_000)] {
            state.alertSequence = all[range.upperBound - 1].alertSequence
            try store.commit(changes: ChangeSet(), state: state, journal: Array(all[range]), publishedThrough: nil, now: now)
        }
        #expect(try store.journal(after: 0, limit: 10_000) == all)
        let rows = try Self.rows(dir.storePath)
        #expect(rows.count > 20, "\(rows.count) rows")
        #expect(rows.map(\.recordedAt).reduce(into: Set<Int64>()) { $0.insert($1) } == [1_000, 2_000, 3_000])
        #expect(rows.reduce(0) { $0 + $1.count } == 600)
        // A row per commit part: no row mixes two commits.
        #expect(rows.allSatisfy { r in (r.first <= 200 && r.last <= 200) || (r.first > 200 && r.last <= 203) || r.first > 203 })

        let reader = try JournalReader(path: store.path)
        defer { reader.close() }
        var rng = SplitMix64(seed: 9)
        for k in 0..<400 {
            let after = k < 20 ? [0, 1, 199, 200, 201, 202, 203, 204, 599, 600, 601, 97, 96, 98, 193, 194, 388, 5, 6, 7][k]
                : rng.next() % 610
            let limit = Int(rng.next() % 40) + 1
            let maxBytes = [0, 1, 500, 3_000, 20_000, 50_000, 1 << 20][Int(rng.next() % 7)]
            let page = try reader.page(after: after, maxAlerts: limit, maxBytes: maxBytes)
            #expect(page.latest == 600)
            #expect(page.entries == referencePage(all, after: after, limit: limit, maxBytes: maxBytes),
                    "after \(after) limit \(limit) maxBytes \(maxBytes)")
        }
        // The unpublished ones on load, from the middle of a row.
        try store.markPublished(through: 250)
        #expect(try store.load().unpublished == Array(all[250...]))
    }

    /// A store whose journal holds `all` (300 entries) in two commits, the first 150 recorded at 1,000 and the rest at
    /// 5,000, published through 220.
    static func twoCommits(_ all: [JournalEntry], in dir: TempDir) throws -> StateStore {
        let store = try StateStore(directory: dir.path)
        var state = EngineState()
        state.alertSequence = 150
        try store.commit(changes: ChangeSet(), state: state, journal: Array(all[0..<150]), publishedThrough: nil, now: 1_000)
        state.alertSequence = 300
        try store.commit(changes: ChangeSet(), state: state, journal: Array(all[150...]), publishedThrough: nil, now: 5_000)
        try store.markPublished(through: 220)
        return store
    }

    /// Pruning in bounded steps (the daemon's writer thread, between commits) deletes, step after step, exactly what
    /// one prune does: whole rows oldest first, at most `maxRows` per step, then the partly published row.
    @Test func pruningInStepsEqualsOnePrune() throws {
        let all = varied(1...300, seed: 4)
        func filled(_ dir: TempDir) throws -> StateStore { try Self.twoCommits(all, in: dir) }
        let oneDir = TempDir(), stepDir = TempDir()
        defer { oneDir.cleanup(); stepDir.cleanup() }
        let one = try filled(oneDir), stepped = try filled(stepDir)
        defer { one.close(); stepped.close() }
        let rowsBefore = try Self.rows(stepDir.storePath).count
        let expected = try one.pruneJournal(recordedBefore: 9_000)
        var total = 0, steps = 0
        while true {
            let step = try stepped.pruneJournalStep(recordedBefore: 9_000, maxRows: 1)
            #expect(step.pruned >= 0)
            total += step.pruned
            steps += 1
            if step.finished { break }
            try #require(steps <= rowsBefore + 1, "a step deleted nothing and did not finish")
        }
        #expect(expected == 220)
        #expect(total == expected)
        #expect(steps > 2, "\(rowsBefore) rows pruned in \(steps) steps of one row")
        #expect(try stepped.journal(after: 0, limit: 1_000) == one.journal(after: 0, limit: 1_000))
        let again = try stepped.pruneJournalStep(recordedBefore: 9_000, maxRows: 1)
        #expect(again.pruned == 0 && again.finished)
    }

    /// Pruning deletes whole rows when all their entries are published and old enough, and rewrites a row that is
    /// only partly published (its published entries go, the rest stay, readable as before).
    @Test func pruningSplitsAPartlyPublishedRow() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let all = varied(1...300, seed: 4)
        let store = try Self.twoCommits(all, in: dir)
        defer { store.close() }
        // Recorded before 2,000: the first commit's 150, all published.
        #expect(try store.pruneJournal(recordedBefore: 2_000) == 150)
        #expect(try store.journal(after: 0, limit: 1_000) == Array(all[150...]))
        // The second commit's published part, 151...220, from the middle of a row.
        #expect(try store.pruneJournal(recordedBefore: 9_000) == 70)
        #expect(try store.journal(after: 0, limit: 1_000) == Array(all[220...]))
        #expect(try store.pruneJournal(recordedBefore: 9_000) == 0)
        #expect(try Self.rows(dir.storePath).allSatisfy { $0.recordedAt == 5_000 && $0.first > 220 })
        #expect(try store.load().unpublished == Array(all[220...]))
    }

    /// A row's `entryCount` is outside its digest and only counts what a prune removed: damaged to 2^63 − 1 (or to
    /// any size, several rows together), the prune still removes exactly the published entries and its count stays
    /// bounded. The count overflowed (a trap in the start's prune, at every start) when a partly published row was
    /// pruned after such a row (a reviewer, session 51).
    @Test(arguments: [Int64.max, Int64.max - 1, -5, 1 << 62], [true, false])
    func aDamagedEntryCountOnlyMiscounts(entryCount: Int64, firstRowOnly: Bool) throws {
        let dir = TempDir(), reference = TempDir()
        defer { dir.cleanup(); reference.cleanup() }
        let all = varied(1...300, seed: 4)
        try Self.twoCommits(all, in: dir).close()
        let expected = try Self.twoCommits(all, in: reference)
        defer { expected.close() }
        try tamper(dir) { db in
            try db.execute(sql: "UPDATE journalChunk SET entryCount = ?" + (firstRowOnly ? " WHERE firstSequence = 1" : ""),
                           arguments: [entryCount])
        }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        // Every row: the first commit's wholly published ones, the second's partly published one and the rest.
        let pruned = try store.pruneJournal(recordedBefore: 9_000)
        #expect(pruned >= 0)
        #expect(try store.journal(after: 0, limit: 1_000) == Array(all[220...]))
        _ = try expected.pruneJournal(recordedBefore: 9_000)
        #expect(try store.journal(after: 0, limit: 1_000) == expected.journal(after: 0, limit: 1_000))
    }

    /// Sequences of one commit must ascend: a batch that breaks this is refused and nothing of it is written.
    @Test func aCommitWithEntriesOutOfOrderIsRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        var state = EngineState()
        state.alertSequence = 3
        #expect(throws: StoreError.self) {
            try store.commit(changes: ChangeSet(), state: state, journal: [entry(1), entry(3), entry(2)], publishedThrough: nil, now: 0)
        }
        #expect(try store.journal(after: 0, limit: 10).isEmpty)
        #expect(try store.latestSequence() == 0)
    }

    /// A damaged row is reported as a corrupt store (exit 74) by the load and by the journal's reader, never read past.
    @Test func aDamagedRowIsCorrupt() throws {
        for damage in ["truncated", "format", "key"] {
            let dir = TempDir()
            defer { dir.cleanup() }
            do {
                let store = try StateStore(directory: dir.path)
                var state = EngineState()
                state.alertSequence = 40
                try store.commit(changes: ChangeSet(), state: state, journal: varied(1...40, seed: 5), publishedThrough: nil, now: 0)
                store.close()
            }
            try tamper(dir) { db in
                switch damage {
                case "truncated":
                    try db.execute(sql: "UPDATE journalChunk SET entries = substr(entries, 1, length(entries) - 5)")
                case "format":
                    try db.execute(sql: "UPDATE journalChunk SET entries = X'09' || substr(entries, 2)")
                default:
                    try db.execute(sql: "UPDATE journalChunk SET firstSequence = firstSequence + 1000")
                }
            }
            try expectCorruptJournal(dir, mentioning: ["journal row"], damage)
        }
    }

    /// A row whose second entry's delta is above 2^63 − 1 (damage a recomputed digest does not catch) made the
    /// decoder's bound check subtract past zero: a trap (SIGILL) at the load of every start and at a journal request,
    /// where a corrupt store (exit 74) is due (an ASan run, session 51). Such a delta is refused as out of order, as is
    /// one that takes the sequence past 2^63 − 1; one that reaches it exactly is read.
    @Test(arguments: [UInt64(Int64.max) + 1, UInt64(Int64.max) + 2, UInt64.max, UInt64(Int64.max), UInt64(Int64.max) - 1])
    func aDeltaPastTheLargestSequenceIsRefused(delta: UInt64) throws {
        var w = ByteWriter(capacity: 64)
        w.u8(JournalChunk.format)
        for (k, v) in [1, delta].enumerated() {
            w.varint(v)  // the first entry's alertSequence, then the second's delta
            w.u8(0)  // an id as text
            for text in ["id\(k)", "alert.raised.x", "{}"] { w.string(text) }  // id, topic and body, each with its length
        }
        let blob = w.bytes
        var sequences: [UInt64] = []
        func read() throws {
            try blob.withUnsafeBytes { b in
                try JournalChunk.forEach(b, firstSequence: 1) { e in
                    sequences.append(e.sequence)
                    return true
                }
            }
        }
        if delta <= UInt64(Int64.max) - 1 {
            try read()
            #expect(sequences == [1, UInt64(Int64.max)])
        } else {
            let error = #expect(throws: CodecError.self) { try read() }
            #expect(error?.description.contains("journal row 1 has entries out of order") == true, "\(String(describing: error))")
            #expect(sequences == [1], "no entry past the first is read")
        }
    }

    /// Any bytes: the row decoder throws or reads entries inside the blob, never outside (truncations and flipped
    /// bytes of a real row).
    @Test func theDecoderStaysInsideAnyBlob() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        store.close()
        // A row of format 1 (the entries as they are; format 2's block: JournalFormatTests).
        try tamper(dir) { db in
            let builder = try JournalChunk.Builder(db, now: 0, compress: false)
            for e in varied(1...12, seed: 6) {
                try e.topic.withUnsafeBytes { t in
                    try e.body.prefix(200).withUnsafeBytes { b in
                        try builder.append(sequence: e.alertSequence, id: nil, idText: e.alertId, topic: t, body: b)
                    }
                }
            }
            try builder.finish()
        }
        let q = try DatabaseQueue(path: dir.storePath)
        let blob = try q.read { db in try Data.fetchOne(db, sql: "SELECT entries FROM journalChunk")! }
        try q.close()
        #expect(blob.first == JournalChunk.format)
        var read = 0
        let threw = decodeDamagedCopies(of: blob, from: 0) { b in
            try JournalChunk.forEach(b, firstSequence: 1) { e in
                for part in [e.idText, e.topic, e.body] where part.count > 0 {
                    precondition(part.baseAddress! >= b.baseAddress! && part.baseAddress! + part.count <= b.baseAddress! + b.count)
                }
                read += 1
                return true
            }
        }
        #expect(threw > 1_000 && read > 1_000, "threw \(threw), read \(read)")
    }

    static func rows(_ path: String) throws -> [(first: Int64, last: Int64, count: Int, recordedAt: Int64)] {
        let q = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in
            try Row.fetchAll(db, sql: "SELECT firstSequence, lastSequence, entryCount, recordedAt FROM journalChunk ORDER BY firstSequence")
                .map { ($0[0], $0[1], $0[2], $0[3]) }
        }
    }
}
