import ContactWatchEngine

// The store's record codec: a compact, versioned binary form of the engine's entities. It runs once per dirty entity
// per commit batch and once per row on load, so it avoids Codable and JSON: unsigned LEB128 varints, zigzag for signed
// values, length-prefixed byte strings. Every blob starts with a version byte. Decoding is bounds-checked throughout:
// garbage throws `CodecError`, it never traps.

/// A blob that could not be decoded.
public struct CodecError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Bytes a `ByteWriter` wrote (`finish()`), immutable from then on and freed with the last reference.
///
/// Contract (the unsafe part): the buffer owns `base` (allocated by the writer for `count` or more bytes, all `count`
/// of them initialised) and never writes it; the bytes are only read through `withUnsafeBytes`, valid during the
/// call. Immutable and owned, so it may be shared across threads (a batch is made on the processing thread and
/// written by the writer thread).
///
/// A buffer nothing else references any more can give its allocation back to a new writer
/// (`ByteWriter(reusing:capacity:)`): it is then empty, and since no other reference exists, nobody reads it.
public final class ByteBuffer: @unchecked Sendable {
    private var base: UnsafeMutablePointer<UInt8>?
    /// The number of bytes.
    public private(set) var count: Int
    /// The allocation's size in bytes.
    fileprivate private(set) var capacity: Int

    /// No bytes.
    public init() {
        base = nil
        count = 0
        capacity = 0
    }

    fileprivate init(adopting base: UnsafeMutablePointer<UInt8>, count: Int, capacity: Int) {
        self.base = base
        self.count = count
        self.capacity = capacity
    }

    /// Hands the allocation over, leaving the buffer empty. Only for a buffer known to be uniquely referenced.
    fileprivate func surrender() -> (base: UnsafeMutablePointer<UInt8>, capacity: Int)? {
        guard let b = base else { return nil }
        base = nil
        count = 0
        defer { capacity = 0 }
        return (b, capacity)
    }

    deinit { base?.deallocate() }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

/// Appends encoded values to a byte buffer: its own allocation, written through a pointer (a record costs a few
/// instructions per byte; `[UInt8].append` per byte cost several times that). Not copyable: one owner writes it.
public struct ByteWriter: ~Copyable, @unchecked Sendable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    /// The number of bytes written.
    public private(set) var count: Int

    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
        count = 0
    }

    /// A writer for at least `capacity` bytes that writes into `buffer`'s allocation when nothing else references
    /// `buffer` and its allocation is large enough (`buffer` is then taken: nil on return, either way). A commit
    /// batch's records are megabytes, and a fresh allocation of that size comes from the kernel page by page, faulted
    /// in and zeroed for every batch; the last batch's allocation is already in place.
    public init(reusing buffer: inout ByteBuffer?, capacity: Int) {
        let needed = max(capacity, 64)
        var adopted: (base: UnsafeMutablePointer<UInt8>, capacity: Int)? = nil
        if var old = buffer {
            buffer = nil
            if isKnownUniquelyReferenced(&old), old.capacity >= needed { adopted = old.surrender() }
        }
        if let adopted {
            base = adopted.base
            self.capacity = adopted.capacity
        } else {
            self.capacity = needed
            base = .allocate(capacity: needed)
        }
        count = 0
    }

    deinit { base.deallocate() }

    /// A copy of the bytes written.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// The bytes written, handed over without a copy (the writer ends here; its allocation now belongs to the
    /// buffer). A commit batch's records are megabytes: copying them into an array cost a copy and a fresh
    /// allocation, page-faulted in, per batch.
    public consuming func finish() -> ByteBuffer {
        let buffer = ByteBuffer(adopting: base, count: count, capacity: capacity)
        discard self
        return buffer
    }

    public mutating func reset() { count = 0 }

    /// The bytes written from `offset` on, writable in place (valid only inside `body`; `offset` ≤ `count`).
    mutating func withMutableBytes<T, E: Error>(from offset: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> T) throws(E) -> T {
        precondition(offset >= 0 && offset <= count)
        return try body(UnsafeMutableRawBufferPointer(start: base + offset, count: count - offset))
    }

    /// The bytes written, in place (valid only inside `body`).
    public func withBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Makes room for `n` more bytes.
    @inline(__always) mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    @inline(never) mutating func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let b = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        b.update(from: base, count: count)
        base.deallocate()
        base = b
        capacity = c
    }

    @inline(__always) public mutating func u8(_ v: UInt8) {
        reserve(1)
        base[count] = v
        count += 1
    }

    @inline(__always) public mutating func varint(_ v: UInt64) {
        reserve(10)
        var v = v
        var i = count
        while v >= 0x80 {
            base[i] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            i += 1
        }
        base[i] = UInt8(truncatingIfNeeded: v)
        count = i + 1
    }

    @inline(__always) public mutating func zigzag(_ v: Int64) {
        varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    /// Eight bytes, little-endian.
    @inline(__always) public mutating func fixed64(_ v: UInt64) {
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: v.littleEndian, as: UInt64.self)
        count += 8
    }

    /// Lets `body` write at most `maxCount` bytes after those written; it returns how many it wrote (0 to
    /// `maxCount`), which is also returned.
    @inline(__always) mutating func append(atMost maxCount: Int, _ body: (UnsafeMutableRawPointer) -> Int) -> Int {
        reserve(maxCount)
        let n = body(UnsafeMutableRawPointer(base + count))
        precondition(n >= 0 && n <= maxCount, "wrote \(n) bytes where at most \(maxCount) were reserved")
        count += n
        return n
    }

    @inline(__always) mutating func raw(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        reserve(b.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: src, byteCount: b.count)
        count += b.count
    }

    public mutating func byteString(_ b: [UInt8]) {
        varint(UInt64(b.count))
        b.withUnsafeBytes { raw($0) }
    }

    public mutating func string(_ s: String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { u in
            varint(UInt64(u.count))
            raw(UnsafeRawBufferPointer(u))
        }
        if done == nil {
            var s = s
            s.withUTF8 { u in
                varint(UInt64(u.count))
                raw(UnsafeRawBufferPointer(u))
            }
        }
    }
}

/// Reads encoded values from a byte buffer; every read is bounds-checked and throws on malformed input.
public struct ByteReader {
    let base: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ base: UnsafeRawBufferPointer) { self.base = base }

    /// A reader of `base` starting at `offset` (at most `base.count`).
    init(_ base: UnsafeRawBufferPointer, offset: Int) {
        precondition(offset >= 0 && offset <= base.count)
        self.base = base
        self.offset = offset
    }

    public var remaining: Int { base.count - offset }
    public var isAtEnd: Bool { offset == base.count }

    @inline(__always) public mutating func u8() throws(CodecError) -> UInt8 {
        guard offset < base.count else { throw CodecError("record is truncated") }
        let v = base[offset]
        offset += 1
        return v
    }

    @inline(__always) public mutating func varint() throws(CodecError) -> UInt64 {
        // Most varints of a record are one byte (deltas, flags, small counts and versions), many two or three (time
        // differences in minutes), and the rest — ids and times of the cases' lists, a case's first contact — five
        // or six: with eight bytes left, all of those are read from one unaligned word without a loop.
        if _fastPath(offset &+ 8 <= base.count), let p = base.baseAddress {
            let word = UInt64(littleEndian: (p + offset).loadUnaligned(as: UInt64.self))
            if word & 0x80 == 0 {
                offset &+= 1
                return word & 0x7F
            }
            if word & 0x8000 == 0 {
                offset &+= 2
                return word & 0x7F | (word &>> 8 & 0x7F) &<< 7
            }
            if word & 0x80_0000 == 0 {
                offset &+= 3
                return word & 0x7F | (word &>> 8 & 0x7F) &<< 7 | (word &>> 16 & 0x7F) &<< 14
            }
            let stops = ~word & 0x8080_8080_8080_8080
            if _fastPath(stops != 0) { return Self.gather(word, stops, &offset) }
            return try varintSlow()
        }
        if offset &+ 3 <= base.count {
            let b0 = UInt64(base[offset])
            if b0 < 0x80 {
                offset &+= 1
                return b0
            }
            let b1 = UInt64(base[offset &+ 1])
            if b1 < 0x80 {
                offset &+= 2
                return b0 & 0x7F | b1 << 7
            }
            let b2 = UInt64(base[offset &+ 2])
            if b2 < 0x80 {
                offset &+= 3
                return b0 & 0x7F | (b1 & 0x7F) << 7 | b2 << 14
            }
        } else if offset < base.count && base[offset] < 0x80 {
            offset &+= 1
            return UInt64(base[offset &- 1])
        }
        return try varintSlow()
    }

    /// The value of the varint of one to eight bytes at the start of `word` (little-endian), whose last byte is the
    /// first one marked in `stops` (the bytes without the continuation bit); advances `offset` past it. Its seven-bit
    /// groups are gathered by masks and shifts: pairs of groups, then pairs of pairs, then the two halves.
    @inline(__always) static func gather(_ word: UInt64, _ stops: UInt64, _ offset: inout Int) -> UInt64 {
        let bits = stops.trailingZeroBitCount &+ 1  // 8 × the varint's length
        var x = (bits == 64 ? word : word & ((1 &<< UInt64(bits)) &- 1)) & 0x7F7F_7F7F_7F7F_7F7F
        x = (x & 0x007F_007F_007F_007F) | (x & 0x7F00_7F00_7F00_7F00) &>> 1
        x = (x & 0x0000_3FFF_0000_3FFF) | (x & 0x3FFF_0000_3FFF_0000) &>> 2
        x = (x & 0x0000_0000_0FFF_FFFF) | (x & 0x0FFF_FFFF_0000_0000) &>> 4
        offset &+= bits &>> 3
        return x
    }

    /// A varint `varint()` did not read: nine or ten bytes long (its eight-byte word had no last byte), or near the
    /// end of the record (fewer than eight bytes left), or malformed.
    @inline(never) mutating func varintSlow() throws(CodecError) -> UInt64 {
        if base.count &- offset >= 10 {
            // Ten bytes are there: the same checks without a bounds check per byte.
            var result: UInt64 = 0
            var shift: UInt64 = 0
            var i = offset
            while shift < 63 {
                let b = UInt64(base[i])
                i &+= 1
                result |= (b & 0x7F) << shift
                if b < 0x80 {
                    offset = i
                    return result
                }
                shift &+= 7
            }
            let b = UInt64(base[i])
            if b > 1 { throw CodecError("varint overflows 64 bits") }
            offset = i &+ 1
            return result | b << 63
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < base.count else { throw CodecError("record is truncated") }
            let b = base[offset]
            offset += 1
            if shift == 63 && b > 1 { throw CodecError("varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw CodecError("varint is too long") }
        }
    }

    /// Steps over one varint (at most ten bytes).
    @inline(__always) public mutating func skipVarint() throws(CodecError) {
        var i = offset
        let limit = min(base.count, offset + 10)
        while i < limit {
            if base[i] < 0x80 {
                offset = i + 1
                return
            }
            i += 1
        }
        throw CodecError(i == base.count ? "record is truncated" : "varint is too long")
    }

    @inline(__always) public mutating func zigzag() throws(CodecError) -> Int64 {
        let u = try varint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    public mutating func fixed64() throws(CodecError) -> UInt64 {
        guard remaining >= 8 else { throw CodecError("record is truncated") }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(base[offset + k]) << (8 * UInt64(k)) }
        offset += 8
        return v
    }

    @inline(__always) public mutating func uint32() throws(CodecError) -> UInt32 {
        let v = try varint()
        guard v <= UInt64(UInt32.max) else { throw CodecError("value \(v) does not fit 32 bits") }
        return UInt32(v)
    }

    @inline(__always) public mutating func int32() throws(CodecError) -> Int32 {
        let v = try zigzag()
        guard v >= Int64(Int32.min) && v <= Int64(Int32.max) else { throw CodecError("value \(v) does not fit 32 bits") }
        return Int32(v)
    }

    /// The largest time a record holds in magnitude (ms from 1970): 2^55, about a million years, beyond any RFC 3339
    /// time of years 0000 to 9999 an event can carry and far from where the engine's arithmetic on times (a
    /// difference of two, a day number) could overflow. A damaged record's time beyond it trapped a rule later (a
    /// last face-to-face contact near −2^63: R2's `t - reference` at that case's next event, a crash the unit restarts
    /// for ever, a reviewer, session 51); it is refused here, a corrupt store.
    public static let largestTime: Int64 = 1 << 55
    /// The largest day number in magnitude (days from 1970): that of `largestTime` either side (rounded away from 0,
    /// so the day of −2^55 is within it), so that a day plus any setting's days stays within 32 bits.
    public static let largestDay: Int64 = (largestTime + 86_399_999) / 86_400_000
    /// The largest count of contributions a PDU's day holds in magnitude: 2^30, so that one more cannot overflow
    /// its 32 bits.
    public static let largestBucketCount: Int64 = 1 << 30

    /// Refuses a time (decoded, or summed from differences) beyond `largestTime`.
    @inline(__always) public static func checkTime(_ t: Int64, _ what: StaticString) throws(CodecError) {
        guard t >= -largestTime && t <= largestTime else { throw outOfRange(t, what) }
    }

    /// Refuses a day number beyond `largestDay`; returns it in 32 bits.
    @inline(__always) public static func checkDay(_ d: Int64, _ what: StaticString) throws(CodecError) -> Int32 {
        guard d >= -largestDay && d <= largestDay else { throw outOfRange(d, what) }
        return Int32(d)
    }

    @inline(never) static func outOfRange(_ v: Int64, _ what: StaticString) -> CodecError {
        CodecError("\(what) \(v) is out of range")
    }

    /// A time: a zigzag varint within `largestTime`.
    @inline(__always) public mutating func time(_ what: StaticString) throws(CodecError) -> Int64 {
        let t = try zigzag()
        try Self.checkTime(t, what)
        return t
    }

    /// A PDU day's count of contributions: a zigzag varint within `largestBucketCount` (negative is possible: a
    /// contact's earlier version withdrawn from a day already pruned).
    @inline(__always) mutating func bucketCount() throws(CodecError) -> Int32 {
        let n = try zigzag()
        guard n >= -Self.largestBucketCount && n <= Self.largestBucketCount else { throw Self.outOfRange(n, "bucket count") }
        return Int32(n)
    }

    /// A day number: a zigzag varint within `largestDay`.
    @inline(__always) public mutating func day(_ what: StaticString) throws(CodecError) -> Int32 {
        try Self.checkDay(try zigzag(), what)
    }

    /// A count of elements that each take at least `minimumSize` bytes: refuses counts the rest cannot hold.
    @inline(__always) public mutating func count(minimumSize: Int = 1) throws(CodecError) -> Int {
        let n = try varint()
        guard n <= UInt64(remaining / max(minimumSize, 1)) else { throw CodecError("count \(n) exceeds the record") }
        return Int(n)
    }

    public mutating func byteString() throws(CodecError) -> [UInt8] {
        let n = try count()
        let out = Array(UnsafeRawBufferPointer(rebasing: base[offset..<(offset + n)]))
        offset += n
        return out
    }

    public mutating func string() throws(CodecError) -> String {
        let n = try count()
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + n)])
        // ASCII (register codes and levels, PDU codes) is valid UTF-8 as it is: no general validation.
        var high: UInt8 = 0
        for b in slice { high |= b }
        if high < 0x80 {
            offset += n
            return String(decoding: slice, as: UTF8.self)
        }
        guard let s = String(validating: slice, as: UTF8.self) else { throw CodecError("string is not valid UTF-8") }
        offset += n
        return s
    }

    /// The next `n` bytes in place (valid as long as the reader's buffer).
    @inline(__always) mutating func bytes(_ n: Int) throws(CodecError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw CodecError("record is truncated") }
        let out = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + n)])
        offset += n
        return out
    }

    public func expectEnd() throws(CodecError) {
        guard isAtEnd else { throw CodecError("\(remaining) unexpected bytes after the record") }
    }
}

/// The blob formats of the store's tables. Each starts with its format version (currently 1).
public enum RecordCodec {
    public static let version: UInt8 = 1

    @inline(__always) static func checkVersion(_ r: inout ByteReader, _ what: String) throws(CodecError) {
        let v = try r.u8()
        guard v == version else { throw CodecError("\(what) record has unknown format version \(v)") }
    }

    // MARK: ContactRecord

    package static func encode(_ c: ContactRecord, into w: inout ByteWriter) {
        w.u8(version)
        w.varint(UInt64(c.caseIndex))
        w.varint(UInt64(c.actionId))
        w.varint(c.version)
        w.zigzag(c.contactStart)
        // The action time is usually near the contact's start: store the (wrapping) difference.
        w.zigzag(c.actionTime &- c.contactStart)
        w.zigzag(Int64(c.pduIndex))
        w.zigzag(Int64(c.contributionDate))
        w.u8(c.flags.rawValue)
    }

    package static func decodeContact(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> ContactRecord {
        var r = ByteReader(bytes)
        try checkVersion(&r, "contact")
        let caseIndex = try r.uint32()
        let actionId = try r.uint32()
        let version = try r.varint()
        let start = try r.time("contact start")
        let actionTime = start &+ (try r.zigzag())
        try ByteReader.checkTime(actionTime, "action time")
        let pdu = try r.int32()
        let date = try r.day("contribution date")
        let flags = ContactRecord.Flags(rawValue: try r.u8())
        try r.expectEnd()
        return ContactRecord(caseIndex: caseIndex, actionId: actionId, version: version, contactStart: start,
                             actionTime: actionTime, pduIndex: pdu, contributionDate: date, flags: flags)
    }

    // MARK: A case's contacts, packed (schema v3)

    /// The format byte of a case's packed contacts.
    static let contactsVersion: UInt8 = 1
    private static let packedHasAction: UInt64 = 1, packedHasPDU: UInt64 = 2
    private static let millisPerMinute: Int64 = 60_000

    /// A time difference, zigzagged above a two-bit tag: 1 = in whole minutes (most are), 0 = in milliseconds,
    /// 2 = out of the compact range (never for real times; the raw difference follows).
    @inline(__always) static func timeDelta(_ d: Int64, into w: inout ByteWriter) {
        let (q, r) = d.quotientAndRemainder(dividingBy: millisPerMinute)
        if r == 0 && q > Int64.min >> 3 && q < Int64.max >> 3 {
            w.varint(UInt64(bitPattern: (q << 1) ^ (q >> 63)) << 2 | 1)
        } else if d > Int64.min >> 3 && d < Int64.max >> 3 {
            w.varint(UInt64(bitPattern: (d << 1) ^ (d >> 63)) << 2)
        } else {
            w.varint(2)
            w.zigzag(d)
        }
    }

    @inline(__always) static func readTimeDelta(_ r: inout ByteReader) throws(CodecError) -> Int64 {
        let v = try r.varint()
        let z = v >> 2
        let d = Int64(bitPattern: z >> 1) ^ -Int64(bitPattern: z & 1)
        if _fastPath(v & 3 == 1) { return d &* millisPerMinute }
        if v & 3 == 0 { return d }
        return try readTimeDeltaRare(v, &r)
    }

    @inline(never) static func readTimeDeltaRare(_ v: UInt64, _ r: inout ByteReader) throws(CodecError) -> Int64 {
        guard v == 2 else { throw CodecError("bad time difference tag \(v & 3)") }
        return try r.zigzag()
    }

    /// One contact of a packed list: its id and start as differences from the previous contact's (`previousId`,
    /// `previousStart`; 0 and 0 for the first), then the fields that do not depend on the previous contact: a head
    /// (the flags above two presence bits: one byte while no flag above 16 is set), the version, the contribution
    /// date from the start's UTC day, the action (id, time from the start) and PDU only when there are any.
    @inline(__always) static func encodeContact(id: UInt64, _ c: ContactRecord, previousId: UInt64, previousStart: Int64,
                                                into w: inout ByteWriter) {
        w.varint(id &- previousId)
        var head = UInt64(c.flags.rawValue) << 2
        let hasAction = c.actionId != 0 || c.actionTime != 0
        if hasAction { head |= packedHasAction }
        if c.pduIndex != -1 { head |= packedHasPDU }
        w.varint(head)
        w.varint(c.version)
        timeDelta(c.contactStart &- previousStart, into: &w)
        w.zigzag(Int64(c.contributionDate) &- floorDays(c.contactStart))
        if hasAction {
            w.varint(UInt64(c.actionId))
            timeDelta(c.actionTime &- c.contactStart, into: &w)
        }
        if c.pduIndex != -1 { w.zigzag(Int64(c.pduIndex)) }
    }

    /// The contacts of one case (all with that `caseIndex`, which is not stored), ascending by id: a format byte,
    /// then each contact (`encodeContact`) to the end of the blob. About 10 bytes per contact, against ~30 for a row
    /// of its own.
    package static func encodeContacts(_ contacts: UnsafeBufferPointer<(id: UInt64, record: ContactRecord)>,
                                       into w: inout ByteWriter) {
        w.u8(contactsVersion)
        var previousId: UInt64 = 0
        var previousStart: Int64 = 0
        for (id, c) in contacts {
            encodeContact(id: id, c, previousId: previousId, previousStart: previousStart, into: &w)
            previousId = id
            previousStart = c.contactStart
        }
    }

    /// Decodes a case's packed contacts, calling `body` with each (ids strictly ascending, as encoded).
    @inline(__always)
    package static func decodeContacts(caseIndex: UInt32, _ bytes: UnsafeRawBufferPointer,
                                       _ body: (UInt64, ContactRecord) throws -> Void) throws {
        var r = ByteReader(bytes)
        let v = try r.u8()
        guard v == contactsVersion else { throw CodecError("contacts record has unknown format version \(v)") }
        var id: UInt64 = 0
        var start: Int64 = 0
        var first = true
        while !r.isAtEnd {
            let delta = try r.varint()
            guard first || delta > 0, id <= UInt64.max - delta else { throw CodecError("contact ids out of order") }
            first = false
            id += delta
            let head = try r.varint()
            guard head < 1 << 10 else { throw CodecError("bad contact flags \(head)") }
            let version = try r.varint()
            start = start &+ (try readTimeDelta(&r))
            try ByteReader.checkTime(start, "contact start")
            let date = try ByteReader.checkDay(try r.zigzag() &+ floorDays(start), "contribution date")
            var actionId: UInt32 = 0
            var actionTime: Int64 = 0
            if head & packedHasAction != 0 {
                actionId = try r.uint32()
                actionTime = start &+ (try readTimeDelta(&r))
                try ByteReader.checkTime(actionTime, "action time")
            }
            var pdu: Int32 = -1
            if head & packedHasPDU != 0 { pdu = try r.int32() }
            try body(id, ContactRecord(caseIndex: caseIndex, actionId: actionId, version: version, contactStart: start,
                                       actionTime: actionTime, pduIndex: pdu, contributionDate: date,
                                       flags: ContactRecord.Flags(rawValue: UInt8(truncatingIfNeeded: head >> 2))))
        }
    }

    /// Rewrites a case's packed contacts: the `stored` ones (nil: none) that neither `records` (ascending ids)
    /// replace nor `deleted` (ascending) names, merged by id with `records`. A kept contact's bytes are copied as
    /// they are (only its id and start differences are re-encoded, when its predecessor changed), so a change costs
    /// a walk over the list, not a decode and encode of every contact. Returns whether anything changed. Damaged
    /// stored bytes throw.
    package static func mergeContacts(stored: UnsafeRawBufferPointer?,
                                      records: UnsafeBufferPointer<(id: UInt64, record: ContactRecord)>,
                                      deleted: UnsafeBufferPointer<UInt64>, into w: inout ByteWriter,
                                      walkKeptPrefix: Bool = true) throws(CodecError) -> Bool {
        w.u8(contactsVersion)
        var changed = false
        var k = 0
        // What was last written, and the stored list's own context.
        var writtenId: UInt64 = 0, writtenStart: Int64 = 0
        var storedId: UInt64 = 0, storedStart: Int64 = 0
        // Stored entries kept as they are, not yet copied: `stored[runStart..<runEnd]` (consecutive entries, copied
        // with one `raw` when something else is written or at the end).
        var runStart = 0, runEnd = 0
        if let stored, stored.count > 0 {
            guard stored[0] == contactsVersion else {
                throw CodecError("contacts record has unknown format version \(stored[0])")
            }
            // The entries before the first the batch replaces, adds before or forgets, walked without their
            // fields (`keptPrefix`): kept as they are, in one run. The loop below goes on from there.
            // (`walkKeptPrefix: false`, for tests: the loop reads every entry, as it did before the walk.)
            let prefix = walkKeptPrefix ? keptPrefix(stored, below: records.count > 0 ? records[0].id : .max, deleted: deleted)
                : (end: 1, id: UInt64(0), start: Int64(0))
            var r = ByteReader(stored, offset: prefix.end)
            var first = prefix.end == 1
            storedId = prefix.id
            storedStart = prefix.start
            writtenId = prefix.id
            writtenStart = prefix.start
            runStart = 1
            runEnd = prefix.end
            while !r.isAtEnd {
                let entry = r.offset
                let delta = try r.varint()
                guard first || delta > 0, storedId <= UInt64.max - delta else { throw CodecError("contact ids out of order") }
                first = false
                let contextId = storedId, contextStart = storedStart
                let id = storedId + delta
                let headAt = r.offset
                let head = try r.varint()
                guard head < 1 << 10 else { throw CodecError("bad contact flags \(head)") }
                try r.skipVarint()
                let startAt = r.offset
                let start = storedStart &+ (try readTimeDelta(&r))
                let restAt = r.offset
                try r.skipVarint()
                if head & packedHasAction != 0 {
                    try r.skipVarint()
                    _ = try readTimeDelta(&r)
                }
                if head & packedHasPDU != 0 { try r.skipVarint() }
                let end = r.offset
                storedId = id
                storedStart = start

                if k < records.count && records[k].id <= id {
                    if runEnd > runStart {
                        w.raw(UnsafeRawBufferPointer(rebasing: stored[runStart..<runEnd]))
                        runStart = runEnd
                    }
                    while k < records.count && records[k].id < id {
                        emit(records[k], &writtenId, &writtenStart, &w)
                        changed = true
                        k += 1
                    }
                    if k < records.count && records[k].id == id {
                        emit(records[k], &writtenId, &writtenStart, &w)
                        changed = true
                        k += 1
                        continue
                    }
                }
                if deleted.count > 0 && contains(deleted, id) {
                    changed = true
                    continue
                }
                // Kept as stored.
                if writtenId == contextId && writtenStart == contextStart {
                    if runEnd != entry || runEnd == runStart {
                        if runEnd > runStart { w.raw(UnsafeRawBufferPointer(rebasing: stored[runStart..<runEnd])) }
                        runStart = entry
                    }
                    runEnd = end
                } else {
                    if runEnd > runStart {
                        w.raw(UnsafeRawBufferPointer(rebasing: stored[runStart..<runEnd]))
                        runStart = runEnd
                    }
                    w.varint(id &- writtenId)
                    w.raw(UnsafeRawBufferPointer(rebasing: stored[headAt..<startAt]))
                    timeDelta(start &- writtenStart, into: &w)
                    w.raw(UnsafeRawBufferPointer(rebasing: stored[restAt..<end]))
                }
                writtenId = id
                writtenStart = start
            }
            if runEnd > runStart { w.raw(UnsafeRawBufferPointer(rebasing: stored[runStart..<runEnd])) }
        }
        while k < records.count {
            emit(records[k], &writtenId, &writtenStart, &w)
            changed = true
            k += 1
        }
        return changed
    }

    /// Where the entries of a packed list (`stored`, its format byte checked) stop being kept as they are: the
    /// offset of the first entry whose id is `bound` or more, or is in `deleted` (ascending), with the id and start of
    /// the entry before it (0 and 0 when none). Only each entry's id, start and length are read, from bytes in place,
    /// without a throw: an entry this walk does not take as plainly valid (a varint of more than 7 bytes, the rare
    /// time-difference tag, ids out of order, flags out of range, truncation) also stops it, before that entry, so
    /// that `mergeContacts`' checked loop reads it and refuses it (or takes it) exactly as it would have. Every entry
    /// this walk passes is one that loop would have read to the same id and start and kept unchanged.
    @inline(__always) package static func keptPrefix(_ stored: UnsafeRawBufferPointer, below bound: UInt64,
                                             deleted: UnsafeBufferPointer<UInt64>) -> (end: Int, id: UInt64, start: Int64) {
        let n = stored.count
        guard n > 1, let base = stored.baseAddress else { return (min(n, 1), 0, 0) }
        let p = base.assumingMemoryBound(to: UInt8.self)
        // A varint of at most 7 bytes wholly inside (values below 2^49).
        @inline(__always) func varint(_ i: inout Int) -> UInt64? {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                let b = p[i]
                i &+= 1
                v |= UInt64(b & 0x7F) &<< shift
                if b < 0x80 { return v }
                shift &+= 7
                if shift == 49 { return nil }
            }
            return nil
        }
        @inline(__always) func skip(_ i: inout Int) -> Bool {
            var k = 0
            while i < n {
                let b = p[i]
                i &+= 1
                if b < 0x80 { return true }
                k &+= 1
                if k == 7 { return false }
            }
            return false
        }
        // A time difference of tag 0 or 1 (`readTimeDelta`'s fast cases).
        @inline(__always) func timeDelta(_ i: inout Int) -> Int64? {
            guard let v = varint(&i), v & 3 < 2 else { return nil }
            let z = v &>> 2
            let d = Int64(bitPattern: z &>> 1) ^ -Int64(bitPattern: z & 1)
            return v & 3 == 1 ? d &* millisPerMinute : d
        }
        var at = 1
        var id: UInt64 = 0, start: Int64 = 0
        // `deleted[d]` is the first forgotten id not below the last id passed.
        var d = 0
        while at < n {
            var i = at
            guard let delta = varint(&i), at == 1 || delta > 0 else { break }
            let next = id &+ delta
            guard next >= id, next < bound,  // (`next < id`: the sum overflowed)
                  let head = varint(&i), head < 1 << 10,
                  skip(&i),  // version
                  let t = timeDelta(&i),
                  skip(&i)  // contribution date
            else { break }
            if head & packedHasAction != 0 {
                guard skip(&i), timeDelta(&i) != nil else { break }
            }
            if head & packedHasPDU != 0 {
                guard skip(&i) else { break }
            }
            if d < deleted.count && deleted[d] <= next {
                var lo = d, hi = deleted.count
                while lo < hi {
                    let mid = (lo &+ hi) &>> 1
                    if deleted[mid] < next { lo = mid &+ 1 } else { hi = mid }
                }
                d = lo
                if d < deleted.count && deleted[d] == next { break }
            }
            id = next
            start = start &+ t
            at = i
        }
        return (at, id, start)
    }

    @inline(__always) private static func emit(_ r: (id: UInt64, record: ContactRecord), _ writtenId: inout UInt64,
                                               _ writtenStart: inout Int64, _ w: inout ByteWriter) {
        encodeContact(id: r.id, r.record, previousId: writtenId, previousStart: writtenStart, into: &w)
        writtenId = r.id
        writtenStart = r.record.contactStart
    }

    /// Whether the ascending `keys` contain `key` (binary search).
    @inline(__always) static func contains(_ keys: UnsafeBufferPointer<UInt64>, _ key: UInt64) -> Bool {
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if keys[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return lo < keys.count && keys[lo] == key
    }

    // MARK: OpenAlert

    static func encodeAlert(_ a: OpenAlert, into w: inout ByteWriter) {
        w.fixed64(a.id.high)
        w.fixed64(a.id.low)
        w.u8(a.rule.rawValue)
        w.u8(a.severity.rawValue)
        w.varint(a.triggerContactId)
        w.varint(a.triggerContactVersion)
        w.zigzag(a.triggerStart)
        w.byteString(a.evidence)
        w.zigzag(Int64(a.deadline))
        w.u8(a.overdueRaised ? 1 : 0)
    }

    static func decodeAlert(_ r: inout ByteReader) throws(CodecError) -> OpenAlert {
        let high = try r.fixed64()
        let low = try r.fixed64()
        let ruleRaw = try r.u8()
        guard let rule = Rule(rawValue: ruleRaw) else { throw CodecError("unknown rule \(ruleRaw)") }
        let sevRaw = try r.u8()
        guard let severity = Severity(rawValue: sevRaw) else { throw CodecError("unknown severity \(sevRaw)") }
        let contactId = try r.varint()
        let contactVersion = try r.varint()
        let start = try r.time("alert's contact start")
        let evidence = try r.byteString()
        let deadline = try r.day("alert's deadline")
        let overdue = try r.u8()
        guard overdue <= 1 else { throw CodecError("bad boolean \(overdue)") }
        return OpenAlert(id: AlertID(high: high, low: low), rule: rule, severity: severity, triggerContactId: contactId,
                         triggerContactVersion: contactVersion, triggerStart: start, evidence: evidence,
                         deadline: deadline, overdueRaised: overdue == 1)
    }

    /// An open alert on its own (with a version byte).
    package static func encode(_ a: OpenAlert, into w: inout ByteWriter) {
        w.u8(version)
        encodeAlert(a, into: &w)
    }

    package static func decodeOpenAlert(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> OpenAlert {
        var r = ByteReader(bytes)
        try checkVersion(&r, "alert")
        let a = try decodeAlert(&r)
        try r.expectEnd()
        return a
    }

    /// Checks open alerts' evidence during a load: the bytes an alert's resolution repeats as they are (its members
    /// after `triggerContactVersion`, each led by a comma, or none). Damage that still decodes (an unescaped quote in
    /// a case row, which has no digest) was published in the resolution as invalid JSON (a store's hunter, session
    /// 52); here the evidence is parsed inside the object the resolution writes around it, duplicate keys refused, so
    /// what is published is what the engine wrote (UTF-8 checked first, as for an event). One per load: its reader
    /// and buffer are reused alert after alert.
    package struct EvidenceCheck: ~Copyable {
        private var reader = JSONReader()
        private var scratch: [UInt8] = []
        private static let head = Array("{\"triggerContactId\":0,\"triggerContactVersion\":0".utf8)
        /// What a resolution writes after the evidence (`resolutionFields`): a key of its own there is refused too.
        private static let tail = Array(",\"resolution\":\"x\",\"resolvedByContactId\":0}".utf8)

        package init() {}

        package mutating func check(_ a: OpenAlert) throws(CodecError) {
            if a.evidence.isEmpty { return }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: Self.head)
            scratch.append(contentsOf: a.evidence)
            scratch.append(contentsOf: Self.tail)
            let problem = scratch.withUnsafeBytes { isValidUTF8($0) ? reader.parse($0)?.message : "not UTF-8" }
            if let problem { throw CodecError("an open alert's evidence is not JSON (\(problem))") }
        }

        package mutating func check(_ c: CaseState) throws(CodecError) {
            for a in c.openNonCompliance { try check(a) }
            if let a = c.openTelephoneOnly { try check(a) }
            for a in c.openOutcomeOverdue { try check(a) }
        }
    }

    // MARK: CaseState

    /// A case's four lists, each as its count and its refs: read with one call (`withUnsafeAllElements`).
    private static func encodeLists(_ lists: ContactLists, into w: inout ByteWriter) {
        lists.withUnsafeAllElements { refs, ends in
            encodeRefs(refs, 0, ends.0, into: &w)
            encodeRefs(refs, ends.0, ends.1, into: &w)
            encodeRefs(refs, ends.1, ends.2, into: &w)
            encodeRefs(refs, ends.2, ends.3, into: &w)
        }
    }

    @inline(__always) private static func encodeRefs(_ refs: UnsafeBufferPointer<ContactRef>, _ lo: Int, _ hi: Int,
                                                     into w: inout ByteWriter) {
        w.varint(UInt64(hi - lo))
        for i in lo..<hi {
            w.varint(refs[i].contactId)
            w.zigzag(refs[i].start)
        }
    }

    /// Decodes a case's four lists of refs (each a count and its refs) into one `ContactLists`: read into a scratch
    /// buffer first, then copied into one allocation of exactly their size. The scratch is 64 refs on the stack
    /// (1 KiB); a case with more is read again into one sized by the bytes left (each ref is at least two bytes).
    private static func decodeLists(_ r: inout ByteReader) throws(CodecError) -> ContactLists {
        let start = r
        let small: ContactLists? = try withUnsafeTemporaryAllocation(of: ContactRef.self, capacity: 64) {
            scratch throws(CodecError) -> ContactLists? in try decodeLists(&r, into: scratch)
        }
        if let small { return small }
        r = start
        let bound = r.remaining / 2
        return try withUnsafeTemporaryAllocation(of: ContactRef.self, capacity: Swift.max(1, bound)) {
            scratch throws(CodecError) -> ContactLists in try decodeLists(&r, into: scratch)!
        }
    }

    /// The lists read through `scratch`; nil when they do not fit in it.
    @inline(__always)
    private static func decodeLists(_ r: inout ByteReader, into scratch: UnsafeMutableBufferPointer<ContactRef>)
        throws(CodecError) -> ContactLists? {
        var ends = (0, 0, 0, 0)
        var n = 0
        for k in 0..<4 {
            let count = try r.count(minimumSize: 2)
            guard count <= scratch.count &- n else { return nil }
            for _ in 0..<count {
                let id = try r.varint()
                scratch.initializeElement(at: n, to: ContactRef(contactId: id, start: try r.time("listed contact's start")))
                n &+= 1
            }
            switch k {
            case 0: ends.0 = n
            case 1: ends.1 = n
            case 2: ends.2 = n
            default: ends.3 = n
            }
        }
        return ContactLists(concatenated: UnsafeBufferPointer(rebasing: scratch[0..<n]), ends: ends)
    }

    private static let hasLastInPerson: UInt8 = 1, hasFirstContact: UInt8 = 2, hasTelephoneOnly: UInt8 = 4
    /// Open R7 alerts follow at the end (schema v2; a case without them is encoded exactly as schema v1 wrote it).
    private static let hasOutcomeOverdue: UInt8 = 8

    /// A case, without its CRN (a column of its row). Categories are not stored: they follow from the registers.
    package static func encode(_ c: CaseState, into w: inout ByteWriter) {
        withUnsafePointer(to: c) { encode(caseAt: $0, into: &w) }
    }

    /// As `encode(_:into:)`, reading the case where it lies (the store encodes `state.cases` in place: passing an
    /// array element by value copies it, which costs as much as a third of the encoding).
    static func encode(caseAt p: UnsafePointer<CaseState>, into w: inout ByteWriter) {
        w.u8(version)
        var bits: UInt8 = 0
        if p.pointee.lastInPersonAt != .min { bits |= hasLastInPerson }
        if p.pointee.firstContactAt != .max { bits |= hasFirstContact }
        // Read once, in place: `openTelephoneOnly` is the engine's computed property, and calling it on `p.pointee`
        // from here copies the whole case (a retain and a release of each of its arrays) — once per read.
        let telephoneOnly = CaseState.openTelephoneOnly(at: p)
        if telephoneOnly != nil { bits |= hasTelephoneOnly }
        if !p.pointee.openOutcomeOverdue.isEmpty { bits |= hasOutcomeOverdue }
        w.u8(bits)
        w.u8(p.pointee.sentenceType.rawValue)
        if p.pointee.lastInPersonAt != .min { w.zigzag(p.pointee.lastInPersonAt) }
        if p.pointee.firstContactAt != .max { w.zigzag(p.pointee.firstContactAt) }
        w.varint(UInt64(p.pointee.registers.count))
        for reg in p.pointee.registers {
            w.string(reg.code)
            if let level = reg.level {
                w.u8(1)
                w.string(level)
            } else {
                w.u8(0)
            }
        }
        // The lists through the stored `lists` (one retain), not the computed views `failures`, ...: each of those,
        // called on `p.pointee` from here, would copy the whole case first. Each list is read in place
        // (`withUnsafeAllElements`: all four with one inlinable, non-generic call).
        encodeLists(p.pointee.lists, into: &w)
        w.varint(UInt64(p.pointee.openNonCompliance.count))
        for a in p.pointee.openNonCompliance { encodeAlert(a, into: &w) }
        if let t = telephoneOnly { encodeAlert(t, into: &w) }
        if bits & hasOutcomeOverdue != 0 {
            w.varint(UInt64(p.pointee.openOutcomeOverdue.count))
            for a in p.pointee.openOutcomeOverdue { encodeAlert(a, into: &w) }
        }
    }

    package static func decodeCase(crn: CRN, _ bytes: UnsafeRawBufferPointer) throws(CodecError) -> CaseState {
        var r = ByteReader(bytes)
        try checkVersion(&r, "case")
        let bits = try r.u8()
        guard bits & ~(hasLastInPerson | hasFirstContact | hasTelephoneOnly | hasOutcomeOverdue) == 0 else {
            throw CodecError("unknown case flags \(bits)")
        }
        let st = try r.u8()
        guard let sentence = SentenceType(rawValue: st) else { throw CodecError("unknown sentence type \(st)") }
        let lastInPersonAt: Millis = bits & hasLastInPerson != 0 ? try r.time("last face-to-face contact") : .min
        let firstContactAt: Millis = bits & hasFirstContact != 0 ? try r.time("first contact") : .max
        let nr = try r.count(minimumSize: 2)
        var regs: [Register] = []
        if nr > 0 {
            regs.reserveCapacity(nr)
            for _ in 0..<nr {
                let code = try r.string()
                let hasLevel = try r.u8()
                switch hasLevel {
                case 0: regs.append(Register(code: code, level: nil))
                case 1: regs.append(Register(code: code, level: try r.string()))
                default: throw CodecError("bad register level marker \(hasLevel)")
                }
            }
        }
        let lists = try decodeLists(&r)
        var openNonCompliance: [OpenAlert] = []
        let na = try r.count(minimumSize: 24)
        if na > 0 {
            openNonCompliance.reserveCapacity(na)
            for _ in 0..<na { openNonCompliance.append(try decodeAlert(&r)) }
        }
        let telephoneOnly: OpenAlert? = bits & hasTelephoneOnly != 0 ? try decodeAlert(&r) : nil
        var openOutcomeOverdue: [OpenAlert] = []
        if bits & hasOutcomeOverdue != 0 {
            let n = try r.count(minimumSize: 24)
            openOutcomeOverdue.reserveCapacity(n)
            for _ in 0..<n { openOutcomeOverdue.append(try decodeAlert(&r)) }
        }
        try r.expectEnd()
        return CaseState(crn: crn, sentenceType: sentence, registers: regs, lastInPersonAt: lastInPersonAt,
                         firstContactAt: firstContactAt, lists: lists, openNonCompliance: openNonCompliance,
                         openTelephoneOnly: telephoneOnly, openOutcomeOverdue: openOutcomeOverdue)
    }

    // MARK: PDUState

    /// A PDU's buckets and open alert, without its code (a column of its row).
    package static func encode(_ p: PDUState, into w: inout ByteWriter) {
        w.u8(version)
        w.varint(UInt64(p.buckets.count))
        var previous: Int64 = 0
        for b in p.buckets {
            // Dates are sorted: store each as the difference from the previous one.
            w.zigzag(Int64(b.date) - previous)
            previous = Int64(b.date)
            w.zigzag(Int64(b.compliant))
            w.zigzag(Int64(b.nonCompliant))
        }
        if let a = p.open {
            w.u8(1)
            encodeAlert(a, into: &w)
        } else {
            w.u8(0)
        }
    }

    package static func decodePDU(code: String, _ bytes: UnsafeRawBufferPointer) throws(CodecError) -> PDUState {
        var r = ByteReader(bytes)
        try checkVersion(&r, "PDU")
        var p = PDUState(code: code)
        let n = try r.count(minimumSize: 3)
        p.buckets.reserveCapacity(n)
        var previous: Int64 = 0
        for _ in 0..<n {
            let delta = try r.zigzag()
            // Sorted, one bucket a date (the engine's binary searches and window totals rely on it).
            guard delta > 0 || p.buckets.isEmpty else { throw CodecError("bucket dates out of order") }
            let date = try ByteReader.checkDay(previous &+ delta, "bucket date")
            previous = Int64(date)
            p.buckets.append(PDUState.Bucket(date: date, compliant: try r.bucketCount(), nonCompliant: try r.bucketCount()))
        }
        switch try r.u8() {
        case 0: break
        case 1: p.open = try decodeAlert(&r)
        case let v: throw CodecError("bad open-alert marker \(v)")
        }
        try r.expectEnd()
        return p
    }

    // MARK: R7 timers (schema v2)

    package static func encode(_ t: OutcomeTimer, into w: inout ByteWriter) {
        w.u8(version)
        w.varint(t.version)
        w.zigzag(Int64(t.deadline))
        if let code = t.pendingCode {
            w.u8(1)
            w.string(code)
        } else {
            w.u8(0)
        }
    }

    package static func decodeOutcomeTimer(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> OutcomeTimer {
        var r = ByteReader(bytes)
        try checkVersion(&r, "outcome timer")
        let v = try r.varint()
        let deadline = try r.day("outcome deadline")
        let code: String?
        switch try r.u8() {
        case 0: code = nil
        case 1: code = try r.string()
        case let m: throw CodecError("bad pending-code marker \(m)")
        }
        try r.expectEnd()
        return OutcomeTimer(version: v, deadline: deadline, pendingCode: code)
    }

    // MARK: Withdrawn warnings

    package static func encode(_ a: ActionRecord, into w: inout ByteWriter) {
        w.u8(version)
        w.varint(a.contactId)
        w.zigzag(a.start)
    }

    package static func decodeActionRecord(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> ActionRecord {
        var r = ByteReader(bytes)
        try checkVersion(&r, "withdrawn")
        let a = ActionRecord(contactId: try r.varint(), start: try r.time("withdrawn warning's start"))
        try r.expectEnd()
        return a
    }
}
