import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
@testable import ContactWatchStore
import Foundation
import GRDB
import Testing

/// The journal's row formats: format 2 (the entries as one LZ4 block) written whenever it is smaller, format 1 (the
/// entries as they are) still read, and a format-2 row that does not decompress to what it declares reported as a
/// corrupt store, never read past.
@Suite(.computing) struct JournalFormatTests {
    /// Alert-like bodies: JSON of the same shape with varying values, as a commit's alerts are.
    static func alertLike(_ range: ClosedRange<UInt64>, seed: UInt64) -> [JournalEntry] {
        var rng = SplitMix64(seed: seed)
        return range.map { n in
            let body = """
                {"alertId":"\(String(format: "%016llx%016llx", rng.next(), rng.next()))","alertSequence":\(n),\
                "rule":"R4","state":"raised","crn":"X\(rng.next() % 1_000_000)","contactId":\(rng.next() % 10_000_000),\
                "reason":"Contact \(n) was recorded as telephone-only on 2026-03-\(10 + n % 18)","detectedAt":\
                "2026-12-02T17:\(n % 60):00.000Z","evidence":{"categories":["no-privacy"],"count":\(n % 7)}}
                """
            return JournalEntry(alertSequence: n, alertId: String(format: "%016llx%016llx", rng.next(), rng.next()),
                                topic: Array("alert.raised.no-privacy".utf8), body: Array(body.utf8))
        }
    }

    /// Bodies of 40,000 random bytes (a row each, larger than `targetBytes`): LZ4 cannot make them smaller.
    static func incompressible(_ range: ClosedRange<UInt64>, seed: UInt64) -> [JournalEntry] {
        var rng = SplitMix64(seed: seed)
        return range.map { n in
            JournalEntry(alertSequence: n, alertId: String(format: "%016llx%016llx", rng.next(), rng.next()),
                         topic: Array("alert.raised.x".utf8),
                         body: (0..<40_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    static func commit(_ entries: [JournalEntry], to store: StateStore, now: Int64 = 1_000) throws {
        var state = EngineState()
        state.alertSequence = entries.last!.alertSequence
        try store.commit(changes: ChangeSet(), state: state, journal: entries, publishedThrough: nil, now: now)
    }

    /// Each row's format byte and blob size.
    /// Each row's format (inside format 3's digest when it has one), size, and whether it carries a digest.
    static func formats(_ path: String) throws -> [(format: UInt8, bytes: Int, checked: Bool)] {
        let q = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in
            try Data.fetchAll(db, sql: "SELECT entries FROM journalChunk ORDER BY firstSequence").map { blob in
                let checked = blob.first == JournalChunk.checkedFormat && blob.count > JournalChunk.checkedHeader
                let format = checked ? blob[blob.startIndex + JournalChunk.checkedHeader] : blob.first ?? 0
                return (format, blob.count, checked)
            }
        }
    }

    /// A row as formats 1 and 2 were written before format 3: its digest header taken off.
    static func withoutDigest(_ blob: [UInt8]) -> [UInt8] {
        blob.first == JournalChunk.checkedFormat ? Array(blob[JournalChunk.checkedHeader...]) : blob
    }

    /// Alert-like rows are written as format 2, several times smaller, and read back byte for byte (pages included).
    @Test func alertsRoundTripCompressed() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let all = Self.alertLike(1...2_000, seed: 1)
        try Self.commit(all, to: store)
        let rows = try Self.formats(dir.storePath)
        #expect(rows.count > 10 && rows.allSatisfy { $0.format == JournalChunk.compressedFormat && $0.checked }, "\(rows)")
        let raw = all.reduce(0) { $0 + $1.body.count }
        let stored = rows.reduce(0) { $0 + $1.bytes }
        #expect(stored * 2 < raw, "\(raw) bytes of bodies stored in \(stored)")
        #expect(try store.journal(after: 0, limit: 10_000) == all)
        let reader = try JournalReader(path: store.path)
        defer { reader.close() }
        for after: UInt64 in [0, 1, 57, 500, 1_999, 2_000] {
            for (limit, maxBytes) in [(1, 1 << 20), (300, 1 << 20), (1_000, 10_000), (1_000, 0)] {
                #expect(try reader.page(after: after, maxAlerts: limit, maxBytes: maxBytes).entries
                        == referencePage(all, after: after, limit: limit, maxBytes: maxBytes))
            }
        }
        // Retention rewrites a partly published row: what stays reads as before.
        try store.markPublished(through: 777)
        #expect(try store.pruneJournal(recordedBefore: 2_000) == 777)
        #expect(try store.journal(after: 0, limit: 10_000) == Array(all[777...]))
        #expect(try store.load().unpublished == Array(all[777...]))
    }

    /// Bodies LZ4 cannot shrink are written as format 1 (never larger than the entries themselves) and read back.
    @Test func incompressibleBodiesStayFormatOne() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let all = Self.incompressible(1...6, seed: 2)
        try Self.commit(all, to: store)
        let rows = try Self.formats(dir.storePath)
        #expect(rows.count == 6 && rows.allSatisfy { $0.format == JournalChunk.format && $0.bytes < 40_100 }, "\(rows)")
        #expect(try store.journal(after: 0, limit: 1_000) == all)
    }

    /// Rows of format 1 (as every version before format 2 wrote them), beside rows of format 2, read as before.
    @Test func formatOneRowsStillRead() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let old = varied(1...300, seed: 3)
        let new = Self.alertLike(301...600, seed: 4)
        do {
            let store = try StateStore(directory: dir.path)
            try Self.commit(new, to: store, now: 2_000)
            store.close()
        }
        // The first 300 as format 1 rows, written by the builder with compression off (format 1's writer unchanged).
        try tamper(dir) { db in
            let builder = try JournalChunk.Builder(db, now: 1_000, compress: false)
            for e in old {
                try e.topic.withUnsafeBytes { t in
                    try e.body.withUnsafeBytes { b in
                        try builder.append(sequence: e.alertSequence, id: nil, idText: e.alertId, topic: t, body: b)
                    }
                }
            }
            try builder.finish()
        }
        let rows = try Self.formats(dir.storePath)
        #expect(rows.contains { $0.format == JournalChunk.format && !$0.checked }
                && rows.contains { $0.format == JournalChunk.compressedFormat && $0.checked }, "\(rows)")
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        #expect(try store.journal(after: 0, limit: 1_000) == old + new)
        let reader = try JournalReader(path: store.path)
        defer { reader.close() }
        for after: UInt64 in [0, 150, 299, 300, 301, 450] {
            #expect(try reader.page(after: after, maxAlerts: 100, maxBytes: 1 << 20).entries
                    == referencePage(old + new, after: after, limit: 100, maxBytes: 1 << 20))
        }
    }

    /// A format-2 row cut short, with a wrong declared size, with a damaged block or with an unknown format byte is a
    /// corrupt store (exit 74) for the load and for the journal's reader, with the row named.
    @Test func aDamagedCompressedRowIsCorrupt() throws {
        for damage in ["truncated", "declared larger", "declared smaller", "declared huge", "block", "format"] {
            let dir = TempDir()
            defer { dir.cleanup() }
            do {
                let store = try StateStore(directory: dir.path)
                try Self.commit(Self.alertLike(1...40, seed: 5), to: store)
                store.close()
            }
            #expect(try Self.formats(dir.storePath).map(\.format) == [JournalChunk.compressedFormat])
            try tamper(dir) { db in
                // As a format-2 row written before format 3 (no digest to catch the damage first).
                var blob = Self.withoutDigest([UInt8](try Data.fetchOne(db, sql: "SELECT entries FROM journalChunk")!))
                // Format byte, then the entries' size as a varint, then the block (read and written by the store's
                // own codec).
                let (declared, header) = try blob.withUnsafeBytes { b in
                    var r = ByteReader(b)
                    _ = try r.u8()
                    return (try r.varint(), r.offset)
                }
                func varint(_ v: UInt64) -> [UInt8] {
                    var w = ByteWriter(capacity: 16)
                    w.varint(v)
                    return w.bytes
                }
                switch damage {
                case "truncated": blob.removeLast(7)
                case "declared larger": blob.replaceSubrange(1..<header, with: varint(declared + 1))
                case "declared smaller": blob.replaceSubrange(1..<header, with: varint(declared - 1))
                case "declared huge": blob.replaceSubrange(1..<header, with: varint(1 << 40))
                case "block": for k in stride(from: header + 3, to: blob.count, by: 11) { blob[k] ^= 0x5A }
                default: blob[0] = 9
                }
                try db.execute(sql: "UPDATE journalChunk SET entries = ?", arguments: [Data(blob)])
            }
            try expectCorruptJournal(dir, mentioning: ["journal row 1"], damage)
        }
    }

    /// Any bytes in a format-2 row: the decoder throws or reads entries, never crashes (truncations and flipped bytes
    /// of a real row; the block is decompressed by `LZ4_decompress_safe`, the entries read inside its output).
    @Test func theDecoderSurvivesAnyCompressedBlob() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        try Self.commit(Self.alertLike(1...30, seed: 6), to: store)
        store.close()
        let q = try DatabaseQueue(path: dir.storePath)
        // As a format-2 row written before format 3 (a digest would refuse every damaged copy before the decoder).
        let blob = Data(Self.withoutDigest([UInt8](try q.read { db in try Data.fetchOne(db, sql: "SELECT entries FROM journalChunk")! })))
        try q.close()
        #expect(blob.first == JournalChunk.compressedFormat)
        var read = 0
        let threw = decodeDamagedCopies(of: blob, from: 1) { b in
            try JournalChunk.forEach(b, firstSequence: 1) { e in
                read += e.body.isEmpty ? 0 : 1
                return true
            }
        }
        #expect(threw > 1_000 && read > 1_000, "threw \(threw), read \(read)")
    }

    /// SQLite checks no page's content: 4 bytes written into a stopped store's journal page inside a row that still
    /// decoded were served to a consumer as an alert, its `alertId` invalid UTF-8 (a fault tester, session 41). Format
    /// 3's digest makes any damage to a row's entries a corrupt store, compressed or not, in an id, a topic or a body.
    @Test func aDamagedRowThatStillDecodesIsCorrupt() throws {
        for (compressible, place) in [(true, "digest"), (true, "middle"), (true, "end"), (false, "id"), (false, "body")] {
            let dir = TempDir()
            defer { dir.cleanup() }
            do {
                let store = try StateStore(directory: dir.path)
                try Self.commit(compressible ? Self.alertLike(1...40, seed: 7) : Self.incompressible(1...2, seed: 7), to: store)
                store.close()
            }
            let rows = try Self.formats(dir.storePath)
            #expect(!rows.isEmpty && rows.allSatisfy(\.checked), "\(rows)")
            try tamper(dir) { db in
                var blob = [UInt8](try Data.fetchOne(db, sql: "SELECT entries FROM journalChunk ORDER BY firstSequence")!)
                let h = JournalChunk.checkedHeader
                switch place {
                case "digest": blob[3] ^= 0x01
                case "middle": blob[blob.count / 2] ^= 0x01
                case "end": blob[blob.count - 1] ^= 0x80
                // Format 1 inside: the first entry's sequence (1 byte) and flags, then its 16-byte id.
                case "id": for k in (h + 3)..<(h + 7) { blob[k] = [0x55, 0xAA][k & 1] }
                default: blob[blob.count - 20] = blob[blob.count - 20] == 0x41 ? 0x42 : 0x41
                }
                // Damage that still decodes: the row without its digest reads (only the digest catches it).
                if place != "digest" {
                    var decoded = 0
                    try Self.withoutDigest(blob).withUnsafeBytes { b in
                        try JournalChunk.forEach(b, firstSequence: 1) { _ in decoded += 1; return true }
                    }
                    #expect(decoded > 0, "\(place)")
                }
                try db.execute(sql: "UPDATE journalChunk SET entries = ? WHERE firstSequence = 1", arguments: [Data(blob)])
            }
            try expectCorruptJournal(dir, mentioning: ["journal row 1", "does not match its checksum"], place)
        }
    }
}
