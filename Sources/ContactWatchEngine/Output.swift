import Crypto
import Glibc

/// What kind of message an outbox entry is.
public enum MessageKind: UInt8, Sendable {
    case alertRaised, alertResolved, streamGap, invalidEvent
}

/// The messages one or more steps produced, in order: topic and body bytes in one reusable buffer.
/// The runtime publishes them once the state change that made them is durable.
public struct Outbox: Sendable {
    /// One message and the facts about it that the store and the logs need, so that nothing re-reads its body.
    public struct Entry: Sendable {
        public var kind: MessageKind
        /// The alert's `alertSequence` (0 for notices).
        public var alertSequence: UInt64
        /// The alert's id (alerts only).
        public var alertId: AlertID?
        /// The case the message concerns: the alert's subject CRN, or an invalid event's CRN when it had a readable one.
        public var crn: CRN?
        /// The contact the message concerns: the alert's `triggerContactId`, or an invalid event's `contactId` when
        /// it had a readable one.
        public var contactId: UInt64?
        var topicStart: Int
        var topicCount: Int
        var bodyStart: Int
        var bodyCount: Int
    }

    public private(set) var entries: [Entry] = []
    private var bytes: [UInt8] = []

    public init() {
        bytes.reserveCapacity(16 * 1024)
    }

    /// An outbox with room for `bytes` bytes of topics and bodies and `messages` messages before it grows. Growing
    /// copies the whole buffer into a new one twice the size, each time into memory the kernel must first fault in
    /// and zero (page by page); room reserved up front is only address space until it is written, so a batch
    /// written into it touches each page once, and an outbox kept for reuse keeps its pages.
    public init(reservingBytes bytes: Int, messages: Int) {
        self.bytes.reserveCapacity(Swift.max(16 * 1024, bytes))
        entries.reserveCapacity(Swift.max(0, messages))
    }

    public var count: Int { entries.count }
    /// The bytes of topics and bodies written (the shared buffer's length).
    public var byteCount: Int { bytes.count }
    public var isEmpty: Bool { entries.isEmpty }

    public mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// An empty outbox keeps its reserved room (address space) but gives back to the system the pages a batch wrote
    /// there (`madvise(MADV_DONTNEED)` over the whole pages of both buffers' capacity): an outbox that held a batch of
    /// a burst otherwise keeps that batch's pages resident for good. The next batch faults them in again, zeroed.
    /// Not on the event path: for an idle daemon (`CommitPipeline.releasePages`). Returns the bytes advised.
    @discardableResult
    public func releasePages() -> Int {
        guard entries.isEmpty, bytes.isEmpty else { return 0 }
        return Self.releasePages(of: bytes) + Self.releasePages(of: entries)
    }

    private static func releasePages<T>(of array: [T]) -> Int {
        wholePages(of: array) { address, length in madvise(address, length, MADV_DONTNEED) == 0 ? length : 0 }
    }

    /// How many bytes of both buffers' reserved room are resident (`mincore`), in whole pages (tests).
    package func residentBytes() -> Int {
        Self.residentBytes(of: bytes) + Self.residentBytes(of: entries)
    }

    private static func residentBytes<T>(of array: [T]) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return wholePages(of: array) { address, length in
            var vector = [UInt8](repeating: 0, count: length / page)
            guard mincore(address, length, &vector) == 0 else { return 0 }
            return vector.reduce(0) { $0 + Int($1 & 1) } * page
        }
    }

    /// `body` with the whole pages inside `array`'s capacity (none of its storage's header: the start is rounded up,
    /// the end down), or 0 when there is not one.
    private static func wholePages<T>(of array: [T], _ body: (UnsafeMutableRawPointer, Int) -> Int) -> Int {
        let capacityBytes = array.capacity * MemoryLayout<T>.stride
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        return array.withUnsafeBufferPointer { p -> Int in
            guard let base = p.baseAddress, capacityBytes >= Int(page) else { return 0 }
            let start = (UInt(bitPattern: base) + page - 1) & ~(page - 1)
            let end = (UInt(bitPattern: base) + UInt(capacityBytes)) & ~(page - 1)
            guard end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { return 0 }
            return body(address, Int(end - start))
        }
    }

    /// Appends a message whose topic and body are written by the closures into the shared buffer.
    mutating func append(kind: MessageKind, alertSequence: UInt64, alertId: AlertID? = nil, crn: CRN? = nil,
                         contactId: UInt64? = nil, topic: (inout [UInt8]) -> Void, body: (inout [UInt8]) -> Void) {
        let t0 = bytes.count
        topic(&bytes)
        let b0 = bytes.count
        body(&bytes)
        entries.append(Entry(kind: kind, alertSequence: alertSequence, alertId: alertId, crn: crn, contactId: contactId,
                             topicStart: t0, topicCount: b0 - t0, bodyStart: b0, bodyCount: bytes.count - b0))
    }

    /// Appends a message written elsewhere: `message` holds the topic's `topicCount` bytes, then the body.
    mutating func append(kind: MessageKind, alertSequence: UInt64, alertId: AlertID? = nil, crn: CRN? = nil,
                         contactId: UInt64? = nil, message: UnsafeRawBufferPointer, topicCount: Int) {
        let t0 = bytes.count
        bytes.append(contentsOf: message)
        entries.append(Entry(kind: kind, alertSequence: alertSequence, alertId: alertId, crn: crn, contactId: contactId,
                             topicStart: t0, topicCount: topicCount, bodyStart: t0 + topicCount,
                             bodyCount: message.count - topicCount))
    }

    /// Calls `body` with each message's topic and body bytes, in order.
    public func forEach(_ body: (Entry, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { all in
            for e in entries {
                try body(e, UnsafeRawBufferPointer(rebasing: all[e.topicStart..<(e.topicStart + e.topicCount)]),
                         UnsafeRawBufferPointer(rebasing: all[e.bodyStart..<(e.bodyStart + e.bodyCount)]))
            }
        }
    }

    /// The messages as (topic, body) strings; for tests and tools, not the hot path.
    public var messages: [(kind: MessageKind, topic: String, body: String)] {
        var out: [(MessageKind, String, String)] = []
        forEach { e, t, b in
            out.append((e.kind, String(decoding: t, as: UTF8.self), String(decoding: b, as: UTF8.self)))
        }
        return out
    }
}

/// Appends JSON text to a byte buffer (the engine's messages; the companion tool's `replay --publisher-id` and
/// `generate` too).
package enum JSONOut {
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always) package static func raw(_ out: inout [UInt8], _ s: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    package static func string(_ out: inout [UInt8], _ s: String) {
        var s = s
        s.withUTF8 { string(&out, UnsafeRawBufferPointer($0)) }
    }

    /// Writes a JSON string from UTF-8 bytes, escaping quotes, backslashes and control characters.
    static func string(_ out: inout [UInt8], _ b: UnsafeRawBufferPointer) {
        out.append(UInt8(ascii: "\""))
        content(&out, b)
        out.append(UInt8(ascii: "\""))
    }

    /// Writes the escaped text of a string into a JSON string already opened (no quotes).
    static func text(_ out: inout [UInt8], _ s: String) {
        var s = s
        s.withUTF8 { content(&out, UnsafeRawBufferPointer($0)) }
    }

    /// A date as text (YYYY-MM-DD, no quotes).
    @inline(__always) static func dateText(_ out: inout [UInt8], _ d: LocalDate) {
        Civil.appendDate(&out, Int(d.days))
    }

    /// Writes UTF-8 bytes escaped for a JSON string, without the quotes.
    static func content(_ out: inout [UInt8], _ b: UnsafeRawBufferPointer) {
        // Most strings need no escaping: copy them whole.
        var plain = true
        for c in b where c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 {
            plain = false
            break
        }
        if plain {
            out.append(contentsOf: b)
            return
        }
        for c in b {
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(c)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(c)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                raw(&out, "\\u00")
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 15)])
            default: out.append(c)
            }
        }
    }

    static func uint(_ out: inout [UInt8], _ v: UInt64) {
        if v == 0 { out.append(48); return }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &tmp) { buf in
            var n = v
            var k = 24
            while n > 0 {
                k -= 1
                buf[k] = UInt8(48 + n % 10)
                n /= 10
            }
            out.append(contentsOf: UnsafeRawBufferPointer(start: buf.baseAddress! + k, count: 24 - k))
        }
    }

    package static func int(_ out: inout [UInt8], _ v: Int) {
        if v < 0 { out.append(UInt8(ascii: "-")); uint(&out, UInt64(-v)) } else { uint(&out, UInt64(v)) }
    }

    package static func time(_ out: inout [UInt8], _ t: Millis) {
        out.append(UInt8(ascii: "\""))
        RFC3339.append(&out, t)
        out.append(UInt8(ascii: "\""))
    }

    static func date(_ out: inout [UInt8], _ d: LocalDate) {
        out.append(UInt8(ascii: "\""))
        Civil.appendDate(&out, Int(d.days))
        out.append(UInt8(ascii: "\""))
    }

    static func double(_ out: inout [UInt8], _ v: Double) {
        out.append(contentsOf: v.description.utf8)
    }

    static func categories(_ out: inout [UInt8], _ c: Categories) {
        out.append(UInt8(ascii: "["))
        var first = true
        for (bit, name) in Categories.names where c.contains(bit) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            string(&out, name)
        }
        out.append(UInt8(ascii: "]"))
    }
}

/// An alert's identity: the first 16 bytes of SHA-256 over `rule|type|value|triggerContactId|triggerContactVersion`.
public struct AlertID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(rule: Rule, subjectType: String, subjectValue: String, triggerContactId: UInt64, triggerContactVersion: UInt64) {
        var type = subjectType, value = subjectValue
        self = type.withUTF8 { t in
            value.withUTF8 { v in
                AlertID(rule: rule, subjectType: UnsafeRawBufferPointer(t), subjectValue: UnsafeRawBufferPointer(v),
                        triggerContactId: triggerContactId, triggerContactVersion: triggerContactVersion)
            }
        }
    }

    /// The id of a case alert (subject type `CRN`), without making a String of the CRN.
    init(rule: Rule, crn: CRN, triggerContactId: UInt64, triggerContactVersion: UInt64) {
        var text: (UInt64, UInt64) = (0, 0)
        self = withUnsafeMutableBytes(of: &text) { buf in
            buf[0] = UInt8(truncatingIfNeeded: 65 &+ crn.key / 1_000_000)
            var v = crn.key % 1_000_000
            for k in stride(from: 6, through: 1, by: -1) {
                buf[k] = UInt8(truncatingIfNeeded: 48 &+ v % 10)
                v /= 10
            }
            let type: StaticString = "CRN"
            return AlertID(rule: rule, subjectType: UnsafeRawBufferPointer(start: type.utf8Start, count: 3),
                           subjectValue: UnsafeRawBufferPointer(rebasing: buf[0..<7]),
                           triggerContactId: triggerContactId, triggerContactVersion: triggerContactVersion)
        }
    }

    init(rule: Rule, subjectType t: UnsafeRawBufferPointer, subjectValue v: UnsafeRawBufferPointer, triggerContactId: UInt64,
         triggerContactVersion: UInt64) {
        // The UTF-8 of "rule|type|value|id|version", written into a scratch buffer (on the stack when small) with
        // block copies and digits written in place, hashed in one update; the id is the digest's first 16 bytes.
        let n = rule.staticName
        (high, low) = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n.utf8CodeUnitCount + t.count + v.count + 44) { buf in
            let p = buf.baseAddress!
            var k = 0
            @inline(__always) func put(_ b: UnsafeRawBufferPointer) {
                if let s = b.baseAddress { UnsafeMutableRawPointer(p + k).copyMemory(from: s, byteCount: b.count) }
                k &+= b.count
                p[k] = 0x7C  // "|"
                k &+= 1
            }
            @inline(__always) func put(_ x: UInt64) {
                var digits = 1, y = x
                while y >= 10 { digits &+= 1; y /= 10 }
                y = x
                var j = k &+ digits
                repeat {
                    j &-= 1
                    p[j] = UInt8(truncatingIfNeeded: 48 &+ y % 10)
                    y /= 10
                } while j > k
                k &+= digits
            }
            put(UnsafeRawBufferPointer(start: n.utf8Start, count: n.utf8CodeUnitCount))
            put(t)
            put(v)
            put(triggerContactId)
            p[k] = 0x7C
            k &+= 1
            put(triggerContactVersion)
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: p, count: k))
            return hasher.finalize().withUnsafeBytes { d in
                (UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        }
    }

    package func append(to out: inout [UInt8]) {
        var text: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &text) { buf in
            buf.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: high >> 32)), toByteOffset: 0, as: UInt64.self)
            buf.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: high)), toByteOffset: 8, as: UInt64.self)
            buf.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: low >> 32)), toByteOffset: 16, as: UInt64.self)
            buf.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: low)), toByteOffset: 24, as: UInt64.self)
            out.append(contentsOf: UnsafeRawBufferPointer(buf))
        }
    }

    /// The eight lowercase hex digits of `x`, most significant first, as the bytes of a word in memory order: each
    /// nibble spread into its own byte, then '0' added, and 39 more ('a' - '0' - 10) where the nibble is 10 or more.
    @inline(__always) static func hex8(_ x: UInt32) -> UInt64 {
        var v = UInt64(x)
        v = (v | v << 16) & 0x0000_FFFF_0000_FFFF
        v = (v | v << 8) & 0x00FF_00FF_00FF_00FF
        v = (v | v << 4) & 0x0F0F_0F0F_0F0F_0F0F  // byte i holds nibble i (least significant first)
        let letters = ((v &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        v = v &+ 0x3030_3030_3030_3030 &+ letters &* 39
        return UInt64(littleEndian: v.byteSwapped)
    }

    public var description: String {
        var out: [UInt8] = []
        append(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The detection rules, by their alert names (rules.md).
public enum Rule: UInt8, CaseIterable, Sendable {
    case warningDue, breachDue, licenceReview, telephoneOnly, remoteContactExcludedCase, noPrivacy,
         complianceRate, enforcementOverdue, outcomeOverdue

    public var name: String { staticName.description }

    /// The alert name as a static string (written into bodies without a String).
    var staticName: StaticString {
        switch self {
        case .warningDue: "non-compliance.warning-due"
        case .breachDue: "non-compliance.breach-due"
        case .licenceReview: "non-compliance.licence-review"
        case .telephoneOnly: "telephone-only"
        case .remoteContactExcludedCase: "remote-contact.excluded-case"
        case .noPrivacy: "no-privacy"
        case .complianceRate: "compliance-rate.below-threshold"
        case .enforcementOverdue: "non-compliance.enforcement-overdue"
        case .outcomeOverdue: "outcome-overdue"
        }
    }

    /// The short name used in reasons ("warning-due").
    var shortName: String {
        switch self {
        case .warningDue: "warning-due"
        case .breachDue: "breach-due"
        case .licenceReview: "licence-review"
        default: name
        }
    }

    public var isNonCompliance: Bool { self == .warningDue || self == .breachDue || self == .licenceReview }
}

/// Why an alert was resolved (alerts.md).
public enum Resolution: UInt8, Sendable {
    case enforcementAction, reclassified, inPersonContact, rateRecovered, outcomeRecorded, rescheduled

    var code: StaticString {
        switch self {
        case .enforcementAction: "ENFORCEMENT_ACTION"
        case .reclassified: "RECLASSIFIED"
        case .inPersonContact: "IN_PERSON_CONTACT"
        case .rateRecovered: "RATE_RECOVERED"
        case .outcomeRecorded: "OUTCOME_RECORDED"
        case .rescheduled: "RESCHEDULED"
        }
    }
}

/// Text for payloads and topics: invalid UTF-8 replaced by U+FFFD, cut to at most `limit` bytes on a
/// character boundary.
func sanitizedText(_ b: UnsafeRawBufferPointer, limit: Int) -> [UInt8] {
    var utf8 = Array(String(decoding: b, as: UTF8.self).utf8)
    if utf8.count > limit {
        var cut = limit
        while cut > 0 && utf8[cut] & 0xC0 == 0x80 { cut -= 1 }
        utf8.removeSubrange(cut...)
    }
    return utf8
}

/// The engine's scratch buffer for one message (topic, then body): JSON text written through a raw pointer, so that a
/// piece costs a capacity check and a copy instead of an `Array.append` (whose generic path was ~120 instructions a
/// piece, ~30 pieces an alert). A message is written here whole, then copied into the outbox once.
///
/// Unsafe-code contract: `base` points to `capacity` allocated bytes owned by this value alone (noncopyable, freed in
/// `deinit`); bytes `0..<count` are initialized; every write first makes room with `reserve`, so no write passes
/// `capacity`; `bytes` lends them only for the closure's duration.
struct JSONWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0
    /// The two dates last written (`time`, `dateText`), the latest first: each its day number and its `YYYY-MM-DD`
    /// (bytes 0..<8 and 8..<10). Alerts of a stream crowd into a few dates, and the civil calendar is the costly part
    /// of writing one; an alert writes two dates in turn (occurredAt, then detectedAt, usually on another day), so a
    /// memo of one date missed on both.
    private var memoDays: Int64 = .min
    private var memoText: UInt64 = 0
    private var memoDay: UInt16 = 0
    private var memoDays2: Int64 = .min
    private var memoText2: UInt64 = 0
    private var memoDay2: UInt16 = 0

    /// "00" to "99": two digits at a time.
    private static var digitPairs: StaticString {
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
    }

    /// 10^0 ... 10^19.
    private static let powersOfTen: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
                                                1_000_000_000, 10_000_000_000, 100_000_000_000, 1_000_000_000_000,
                                                10_000_000_000_000, 100_000_000_000_000, 1_000_000_000_000_000,
                                                10_000_000_000_000_000, 100_000_000_000_000_000,
                                                1_000_000_000_000_000_000, 10_000_000_000_000_000_000]

    /// Writes `value` (0...99) as two digits at `p`.
    @inline(__always) private static func two(_ value: Int, at p: UnsafeMutableRawPointer) {
        p.copyMemory(from: digitPairs.utf8Start + value &* 2, byteCount: 2)
    }

    /// The `YYYY-MM-DD` of day `days` at `p` (10 bytes), through the memo.
    @inline(__always) private mutating func dateBytes(_ days: Int64, at p: UnsafeMutablePointer<UInt8>) {
        if days == memoDays {
            UnsafeMutableRawPointer(p).storeBytes(of: memoText, as: UInt64.self)
            UnsafeMutableRawPointer(p + 8).storeBytes(of: memoDay, as: UInt16.self)
        } else if days == memoDays2 {
            UnsafeMutableRawPointer(p).storeBytes(of: memoText2, as: UInt64.self)
            UnsafeMutableRawPointer(p + 8).storeBytes(of: memoDay2, as: UInt16.self)
        } else {
            dateBytesMissed(days, at: p)
        }
    }

    /// `dateBytes` for a date in neither memo: written from the civil calendar, then remembered as the latest (the
    /// latest before it becomes the second).
    @inline(never) private mutating func dateBytesMissed(_ days: Int64, at p: UnsafeMutablePointer<UInt8>) {
        let (y, m, d) = Civil.civilFromDays(Int(days))
        if y >= 0 && y <= 9999 {
            JSONWriter.two(y / 100, at: p)
            JSONWriter.two(y % 100, at: p + 2)
        } else {
            fixed(y, width: 4, at: p)
        }
        p[4] = UInt8(ascii: "-")
        JSONWriter.two(m, at: p + 5)
        p[7] = UInt8(ascii: "-")
        JSONWriter.two(d, at: p + 8)
        memoDays2 = memoDays
        memoText2 = memoText
        memoDay2 = memoDay
        memoDays = days
        memoText = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
        memoDay = UnsafeRawPointer(p + 8).loadUnaligned(as: UInt16.self)
    }

    init(capacity: Int = 4096) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit { base.deallocate() }

    mutating func reset() { count = 0 }

    /// The bytes `range` (within `0..<count`), for the duration of `body`.
    func bytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    func array(_ range: Range<Int>) -> [UInt8] { bytes(range) { Array($0) } }

    @inline(__always) mutating func reserve(_ n: Int) {
        if _slowPath(count &+ n > capacity) { grow(count + n) }
    }

    @inline(never) mutating func grow(_ needed: Int) {
        let c = max(needed, capacity * 2)
        let b = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        b.initialize(from: base, count: count)
        base.deallocate()
        base = b
        capacity = c
    }

    @inline(__always) mutating func byte(_ c: UInt8) {
        reserve(1)
        base[count] = c
        count &+= 1
    }

    @inline(__always) mutating func raw(_ s: StaticString) {
        let n = s.utf8CodeUnitCount
        reserve(n)
        (base + count).initialize(from: s.utf8Start, count: n)
        count &+= n
    }

    @inline(__always) mutating func raw(_ b: UnsafeRawBufferPointer) {
        let n = b.count
        guard n > 0, let s = b.baseAddress else { return }
        reserve(n)
        UnsafeMutableRawPointer(base + count).copyMemory(from: s, byteCount: n)
        count &+= n
    }

    mutating func raw(_ a: [UInt8]) { a.withUnsafeBytes { raw($0) } }

    /// ASCII text known to need no escaping (codes and names from the engine's own tables).
    mutating func ascii(_ s: String) {
        var s = s
        s.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
    }

    /// A JSON string from UTF-8 bytes, escaped.
    mutating func string(_ b: UnsafeRawBufferPointer) {
        byte(UInt8(ascii: "\""))
        content(b)
        byte(UInt8(ascii: "\""))
    }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { string(UnsafeRawBufferPointer($0)) }
    }

    /// The escaped text of a string, without quotes (inside a string already opened).
    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { content(UnsafeRawBufferPointer($0)) }
    }

    /// UTF-8 bytes escaped for a JSON string, without the quotes (as `JSONOut.content`).
    mutating func content(_ b: UnsafeRawBufferPointer) {
        var plain = true
        for c in b where c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 {
            plain = false
            break
        }
        if plain { return raw(b) }
        var escaped: [UInt8] = []
        JSONOut.content(&escaped, b)
        raw(escaped)
    }

    mutating func uint(_ v: UInt64) {
        if v < 10 { return byte(UInt8(truncatingIfNeeded: 48 &+ v)) }
        // The number of digits (2...20), then two digits at a time from the right, in place (a scratch buffer and
        // its copy cost a `memcpy` call per number).
        // floor(log10(v)) is (bit length × 1233) >> 12 or one more (1233/4096 ≈ log10 2).
        var n = ((64 &- v.leadingZeroBitCount) &* 1233) &>> 12
        if v >= JSONWriter.powersOfTen[n] { n &+= 1 }
        reserve(20)
        let p = UnsafeMutableRawPointer(base + count)
        var j = n
        var y = v
        while y >= 100 {
            let r = Int(truncatingIfNeeded: y % 100)
            y /= 100
            j &-= 2
            JSONWriter.two(r, at: p + j)
        }
        if y >= 10 {
            JSONWriter.two(Int(truncatingIfNeeded: y), at: p + (j &- 2))
        } else {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ y), toByteOffset: j &- 1, as: UInt8.self)
        }
        count &+= n
    }

    mutating func int(_ v: Int) {
        if v < 0 { byte(UInt8(ascii: "-")); uint(v.magnitude.toUInt64) } else { uint(UInt64(v)) }
    }

    /// `value` in exactly `width` decimal digits (zero-padded; the caller keeps it in range).
    @inline(__always) private mutating func fixed(_ value: Int, width: Int, at p: UnsafeMutablePointer<UInt8>) {
        var v = value
        var k = width - 1
        while k >= 0 {
            p[k] = UInt8(truncatingIfNeeded: 48 &+ v % 10)
            v /= 10
            k -= 1
        }
    }

    /// A date as text (YYYY-MM-DD, no quotes).
    mutating func dateText(_ d: LocalDate) {
        reserve(10)
        dateBytes(Int64(d.days), at: base + count)
        count &+= 10
    }

    /// A date as a JSON string.
    mutating func date(_ d: LocalDate) {
        byte(UInt8(ascii: "\""))
        dateText(d)
        byte(UInt8(ascii: "\""))
    }

    /// An instant as a JSON string, as `RFC3339.append` writes it.
    mutating func time(_ t: Millis) {
        let days = floorDays(t)
        let rem = Int(t - days * millisPerDay)
        reserve(26)
        let p = base + count
        p[0] = UInt8(ascii: "\"")
        dateBytes(days, at: p + 1)
        p[11] = UInt8(ascii: "T")
        let secs = rem / 1000
        JSONWriter.two(secs / 3600, at: p + 12)
        p[14] = UInt8(ascii: ":")
        JSONWriter.two((secs / 60) % 60, at: p + 15)
        p[17] = UInt8(ascii: ":")
        JSONWriter.two(secs % 60, at: p + 18)
        var n = 20
        if rem % 1000 != 0 {
            p[20] = UInt8(ascii: ".")
            fixed(rem % 1000, width: 3, at: p + 21)
            n = 24
        }
        p[n] = UInt8(ascii: "Z")
        p[n + 1] = UInt8(ascii: "\"")
        count &+= n + 2
    }

    mutating func double(_ v: Double) { ascii(v.description) }

    /// A JSON array of category names (in the table's order).
    mutating func categories(_ c: Categories) {
        if c.rawValue < 32 { return raw(JSONWriter.categoryJSON[Int(c.rawValue)]) }
        var a: [UInt8] = []
        JSONOut.categories(&a, c)
        raw(a)
    }

    static let categoryJSON: [[UInt8]] = (0..<32).map { bits in
        var a: [UInt8] = []
        JSONOut.categories(&a, Categories(rawValue: UInt8(bits)))
        return a
    }

    mutating func crn(_ c: CRN) {
        reserve(7)
        base[count] = UInt8(truncatingIfNeeded: 65 &+ c.key / 1_000_000)
        let digits = Int(c.key % 1_000_000)
        JSONWriter.two(digits / 10_000, at: base + count + 1)
        JSONWriter.two(digits / 100 % 100, at: base + count + 3)
        JSONWriter.two(digits % 100, at: base + count + 5)
        count &+= 7
    }

    mutating func alertID(_ id: AlertID) {
        reserve(32)
        let p = UnsafeMutableRawPointer(base + count)
        p.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: id.high >> 32)), toByteOffset: 0, as: UInt64.self)
        p.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: id.high)), toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: id.low >> 32)), toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: AlertID.hex8(UInt32(truncatingIfNeeded: id.low)), toByteOffset: 24, as: UInt64.self)
        count &+= 32
    }
}

extension UInt {
    @inline(__always) var toUInt64: UInt64 { UInt64(self) }
}
