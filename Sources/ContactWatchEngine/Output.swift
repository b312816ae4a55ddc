import Crypto

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

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
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
        // The UTF-8 of "rule|type|value|id|version", written into a scratch buffer (on the stack when small) with
        // block copies and digits written in place, hashed in one update; the id is the digest's first 16 bytes.
        var name = rule.name, type = subjectType, value = subjectValue
        (high, low) = name.withUTF8 { n in
            type.withUTF8 { t in
                value.withUTF8 { v in
                    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n.count + t.count + v.count + 44) { buf in
                        let p = buf.baseAddress!
                        var k = 0
                        @inline(__always) func put(_ b: UnsafeBufferPointer<UInt8>) {
                            if let s = b.baseAddress { (p + k).initialize(from: s, count: b.count) }
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
                        put(n)
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
            }
        }
    }

    func append(to out: inout [UInt8]) {
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

    public var name: String {
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
