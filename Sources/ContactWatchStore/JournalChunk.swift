import ContactWatchEngine
import Crypto
import GRDB

/// The journal's rows since schema v4: the alert messages of one commit, in `alertSequence` order, in blobs of about
/// `targetBytes` (a row is closed once its blob reaches that size), one row each (`journalChunk(firstSequence,
/// lastSequence, entryCount, recordedAt, entries)`). A commit of thousands of alerts writes a few dozen rows instead
/// of a row per alert: SQLite's per-row work (a statement step, a b-tree insert into a leaf page) was a third of the
/// writer thread's time under load, and a blob larger than a page goes to overflow pages, which are written whole.
///
/// Blob format (`entries`): a format byte (1), then for each entry:
/// - varint: for the first entry its `alertSequence` (the row's `firstSequence`: a row moved to another key does not
///   read), for each later one its `alertSequence` minus the previous entry's, at least 1 (strictly ascending);
/// - a flags byte: bit 0 set, the alert id is the 16 bytes of 32 lowercase hex digits (big-endian, as printed);
///   clear, the id's UTF-8 follows as a varint length and its bytes (any other text, e.g. none);
/// - the topic frame: a varint length and its bytes;
/// - the body: a varint length and its bytes, exactly as published.
/// A row is read whole (at most about `targetBytes` plus one body), so a catch-up request starting in the middle of a
/// large commit reads one row's worth before its first alert.
///
/// Format 2 (since schema v5): a format byte (2), the size of the entries above as a varint, then those entries as one
/// LZ4 block (`LZ4Block`). A row is written in format 2 when that is smaller, else in format 1 (random bodies); rows
/// of format 1 written before stay as they are. The reader dispatches on the byte; a block that does not decompress
/// to exactly the declared size, or an unknown byte, is a `CodecError` (a corrupt store), never a misread. A journal of
/// alert bodies (similar JSON) compresses about 4.5× this way; a version that reads format 1 only would take format 2
/// for damage, which is why the schema version moved to 5 with it (it refuses the store as newer instead).
///
/// Format 3 (since schema v6, every row written since): a format byte (3), the first 8 bytes of the SHA-256 of what
/// follows, then a row of format 1 or 2 as above. SQLite checks no page's content, and damage inside a row that still
/// decoded was served to a consumer as an alert (an `alertId` of invalid UTF-8, from 4 bytes written into a stopped
/// store's journal page: a fault tester, session 41); a row whose digest does not match is a `CodecError` (a corrupt
/// store) like one that does not decode. Rows of formats 1 and 2 written before are read unchecked, as before.
enum JournalChunk {
    static let format: UInt8 = 1
    static let compressedFormat: UInt8 = 2
    static let checkedFormat: UInt8 = 3
    /// Bytes before the inner row in format 3: the format byte and the digest.
    static let checkedHeader = 9

    /// The first 8 bytes of the SHA-256 of `bytes` (BoringSSL uses the SHA instructions where the CPU has them: ~5 µs
    /// for a 7 KB row at the 1.45 GB/s `openssl speed -evp sha256 -bytes 8192` measured on the development machine).
    static func digest(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        SHA256.hash(data: bytes).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
    /// A row's blob is closed once it reaches this size.
    static let targetBytes = 32 * 1024
    static let binaryId: UInt8 = 1

    static let insertSQL = """
        INSERT INTO journalChunk (firstSequence, lastSequence, entryCount, recordedAt, entries) VALUES (?, ?, ?, ?, ?)
        """

    /// Collects a commit's alert messages into rows and inserts each row once it is full (and the last at `finish`).
    /// One thread uses a builder, inside one write (its properties are not checked for exclusive access at run time).
    final class Builder {
        @exclusivity(unchecked) private var w = ByteWriter(capacity: JournalChunk.targetBytes + 4096)
        @exclusivity(unchecked) private var first: UInt64 = 0
        @exclusivity(unchecked) private var last: UInt64 = 0
        @exclusivity(unchecked) private var count = 0
        /// The last sequence appended in this commit (rows of one commit are strictly ascending).
        @exclusivity(unchecked) private var previous: UInt64? = nil
        /// The row in format 2, rebuilt at each flush.
        @exclusivity(unchecked) private var packed =
            ByteWriter(capacity: 1 + 10 + LZ4Block.bound(JournalChunk.targetBytes + 4096))
        private let insert: RawStatement
        private let now: Int64
        private let compress: Bool

        /// `compress`: false writes every row in format 1 without a digest (tests: rows as versions before format 2
        /// wrote them).
        init(_ db: Database, now: Int64, compress: Bool = true) throws {
            insert = try RawStatement(db, JournalChunk.insertSQL)
            self.now = now
            self.compress = compress
        }

        /// Appends one alert message; `id`: the engine's id (binary), or nil to use `idText`.
        func append(sequence: UInt64, id: AlertID?, idText: String?, topic: UnsafeRawBufferPointer,
                             body: UnsafeRawBufferPointer) throws {
            if let previous, sequence <= previous {
                throw CodecError("journal entry \(sequence) is not after entry \(previous) of the same commit")
            }
            previous = sequence
            if count == 0 {
                w.reset()
                if compress {
                    // Format 3's header, its digest filled in at `flush`.
                    w.u8(JournalChunk.checkedFormat)
                    w.fixed64(0)
                }
                w.u8(JournalChunk.format)
                first = sequence
                w.varint(sequence)
            } else {
                w.varint(sequence &- last)
            }
            last = sequence
            count += 1
            if let id {
                JournalChunk.appendBinary(id, to: &w)
            } else if let text = idText, let id = JournalChunk.parseHexId(text) {
                JournalChunk.appendBinary(id, to: &w)
            } else {
                w.u8(0)
                JournalChunk.appendText(idText ?? "", to: &w)
            }
            if JournalChunk.isPlainASCII(topic) {
                w.varint(UInt64(topic.count))
                w.raw(topic)
            } else {
                JournalChunk.appendText(String(decoding: topic, as: UTF8.self), to: &w)
            }
            w.varint(UInt64(body.count))
            w.raw(body)
            if w.count >= JournalChunk.targetBytes { try flush() }
        }

        /// Inserts the row being built, if any: format 3 around format 2 (its entries as one LZ4 block) when that is
        /// smaller, else around format 1 (without `compress`: format 1 alone).
        func flush() throws {
            guard count > 0 else { return }
            try insert.int64(1, Int64(bitPattern: first))
            try insert.int64(2, Int64(bitPattern: last))
            try insert.int64(3, Int64(count))
            try insert.int64(4, now)
            let header = compress ? JournalChunk.checkedHeader : 0
            let packedSmaller = compress && w.withBytes { b in pack(UnsafeRawBufferPointer(rebasing: b[(header + 1)...])) }
                && packed.count < w.count
            func sealed(_ row: inout ByteWriter) {
                guard header > 0 else { return }
                row.withMutableBytes(from: 1) { b in
                    let d = JournalChunk.digest(UnsafeRawBufferPointer(rebasing: b[(header - 1)...]))
                    b.storeBytes(of: d.littleEndian, toByteOffset: 0, as: UInt64.self)
                }
            }
            if packedSmaller {
                sealed(&packed)
                try packed.withBytes { p in
                    try insert.blob(5, p.baseAddress, p.count)
                    try insert.step()
                }
            } else {
                sealed(&w)
                try w.withBytes { b in
                    try insert.blob(5, b.baseAddress, b.count)
                    try insert.step()
                }
            }
            count = 0
        }

        /// Writes format 3 around format 2 of `entries` into `packed`: format 3's header (its digest filled in by
        /// `flush`), the format byte, the entries' size as a varint, their LZ4 block. False when it could not be made.
        private func pack(_ entries: UnsafeRawBufferPointer) -> Bool {
            guard entries.count > 0, entries.count <= LZ4Block.maxInput else { return false }
            packed.reset()
            packed.u8(JournalChunk.checkedFormat)
            packed.fixed64(0)
            packed.u8(JournalChunk.compressedFormat)
            packed.varint(UInt64(entries.count))
            let bound = LZ4Block.bound(entries.count)
            return packed.append(atMost: bound) { LZ4Block.compress(entries, into: $0, capacity: bound) } > 0
        }

        /// Inserts the last row and drops the statement's bindings (they point into this builder's buffer).
        func finish() throws {
            defer { insert.clear() }
            try flush()
        }
    }

    /// Bytes 1...127 only: UTF-8 that `String(decoding:as:)` keeps as is and that has no NUL.
    @inline(__always) static func isPlainASCII(_ b: UnsafeRawBufferPointer) -> Bool {
        for c in b where c == 0 || c >= 0x80 { return false }
        return true
    }

    /// A text as the v3 journal stored its TEXT columns (GRDB binds a `String` NUL-terminated: what follows a NUL was
    /// not stored), so that ids and topics read back as they did: a varint length and the UTF-8 up to the first NUL.
    static func appendText(_ s: String, to w: inout ByteWriter) {
        var s = s
        s.withUTF8 { u in
            let n = u.firstIndex(of: 0) ?? u.count
            w.varint(UInt64(n))
            w.raw(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[0..<n]))
        }
    }

    @inline(__always) static func appendBinary(_ id: AlertID, to w: inout ByteWriter) {
        w.u8(binaryId)
        var be = (id.high.bigEndian, id.low.bigEndian)
        withUnsafeBytes(of: &be) { w.raw($0) }
    }

    /// The id of 32 lowercase hex digits (as the engine prints them), or nil for any other text.
    static func parseHexId(_ s: String) -> AlertID? {
        var s = s
        return s.withUTF8 { u -> AlertID? in
            guard u.count == 32 else { return nil }
            var high: UInt64 = 0, low: UInt64 = 0
            for k in 0..<32 {
                let c = u[k]
                let v: UInt64
                switch c {
                case 0x30...0x39: v = UInt64(c &- 0x30)
                case 0x61...0x66: v = UInt64(c &- 0x61 &+ 10)
                default: return nil
                }
                if k < 16 { high = high << 4 | v } else { low = low << 4 | v }
            }
            return AlertID(high: high, low: low)
        }
    }

    /// One entry of a row, in place (the buffers are valid only during the call that receives them).
    struct Entry {
        var sequence: UInt64
        var id: AlertID?
        var idText: UnsafeRawBufferPointer
        var topic: UnsafeRawBufferPointer
        var body: UnsafeRawBufferPointer

        var idString: String { id?.description ?? String(decoding: idText, as: UTF8.self) }
    }

    /// Reads the entries of a row's blob in order, each handed to `body` until it returns false. A blob that does
    /// not decode, or whose sequences do not start at `firstSequence` and ascend, throws `CodecError` (never reads
    /// outside `blob`).
    static func forEach(_ blob: UnsafeRawBufferPointer, firstSequence: UInt64,
                        _ body: (Entry) throws -> Bool) throws {
        do {
            try decode(blob, firstSequence: firstSequence, body)
        } catch let e as CodecError where !e.description.hasPrefix("journal row") {
            throw CodecError("journal row \(firstSequence): \(e.description)")
        }
    }

    private static func decode(_ blob: UnsafeRawBufferPointer, firstSequence: UInt64, checked: Bool = false,
                               _ body: (Entry) throws -> Bool) throws {
        var r = ByteReader(blob)
        switch try r.u8() {
        case checkedFormat where !checked:
            let stored = try r.fixed64()
            let inner = UnsafeRawBufferPointer(rebasing: blob[checkedHeader...])
            guard digest(inner) == stored else {
                throw CodecError("journal row \(firstSequence) does not match its checksum (damaged on disk)")
            }
            try decode(inner, firstSequence: firstSequence, checked: true, body)
        case format:
            try decodeEntries(r, firstSequence: firstSequence, body)
        case compressedFormat:
            let rawCount = try r.varint()
            try LZ4Block.decompress(UnsafeRawBufferPointer(rebasing: blob[r.offset...]), rawCount: rawCount) { raw in
                try decodeEntries(ByteReader(raw), firstSequence: firstSequence, body)
            }
        case let f:
            throw CodecError("journal row \(firstSequence) has an unknown format \(f)")
        }
    }

    private static func decodeEntries(_ reader: ByteReader, firstSequence: UInt64,
                                      _ body: (Entry) throws -> Bool) throws {
        var r = reader
        var sequence: UInt64 = 0
        var isFirst = true
        while !r.isAtEnd {
            let delta = try r.varint()
            if isFirst {
                guard delta == firstSequence else {
                    throw CodecError("journal row \(firstSequence) starts at entry \(delta), not at its key")
                }
                sequence = delta
            } else {
                // `delta` first: a delta above 2^63 − 1 (a damaged row whose digest was recomputed) made the
                // subtraction trap, a crash at every start instead of exit 74 (an ASan run, session 51).
                guard delta > 0, delta <= UInt64(Int64.max), sequence <= UInt64(Int64.max) - delta else {
                    throw CodecError("journal row \(firstSequence) has entries out of order")
                }
                sequence += delta
            }
            isFirst = false
            let flags = try r.u8()
            var id: AlertID? = nil
            var idText = UnsafeRawBufferPointer(start: nil, count: 0)
            if flags == binaryId {
                let bytes = try r.bytes(16)
                id = AlertID(high: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                             low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            } else if flags == 0 {
                idText = try r.bytes(r.count(minimumSize: 1))
            } else {
                throw CodecError("journal row \(firstSequence) has an entry with unknown flags \(flags)")
            }
            let topic = try r.bytes(r.count(minimumSize: 1))
            let message = try r.bytes(r.count(minimumSize: 1))
            if try !body(Entry(sequence: sequence, id: id, idText: idText, topic: topic, body: message)) { return }
        }
        if isFirst { throw CodecError("journal row \(firstSequence) has no entries") }
    }
}
