#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Decoding and validation of events (events.md), straight from the received frame.

/// A CRN packed into an integer: letter index × 1,000,000 + the six digits. Orders as the text does.
public struct CRN: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var key: UInt32
    public init(key: UInt32) { self.key = key }

    /// One past the largest key a CRN text can have (Z999999): a key from elsewhere (a store's row) at or above it
    /// names no CRN, and `description` would trap writing its letter.
    public static let keyLimit: UInt32 = 26_000_000

    public init?(_ b: UnsafeRawBufferPointer) {
        guard b.count == 7, let base = b.baseAddress else { return nil }
        let letter = base.load(as: UInt8.self) &- 65
        guard letter < 26 else { return nil }
        // The six digits as the low six bytes of a word: each byte 0x30...0x39 (its high nibble 3, and no carry
        // out of the low nibble when 6 is added), then their values combined two, then three pairs at a time.
        let w = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
            | UInt64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 5, as: UInt16.self))) &<< 32
        guard w & 0xF0F0_F0F0_F0F0 == 0x3030_3030_3030,
              (w &+ 0x0606_0606_0606) & 0xF0F0_F0F0_F0F0 == 0x3030_3030_3030 else { return nil }
        let d = w & 0x0F0F_0F0F_0F0F
        // Byte 2k: 10·digit(2k) + digit(2k+1).
        let pairs = (d &* 10 &+ (d &>> 8)) & 0x00FF_00FF_00FF
        let v = (pairs & 0xFF) &* 10_000 &+ ((pairs &>> 16) & 0xFF) &* 100 &+ ((pairs &>> 32) & 0xFF)
        key = UInt32(letter) &* 1_000_000 &+ UInt32(truncatingIfNeeded: v)
    }

    public init?(_ text: String) {
        var t = text
        guard let c = t.withUTF8({ CRN(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = c
    }

    public static func < (a: CRN, b: CRN) -> Bool { a.key < b.key }

    func append(to out: inout [UInt8]) {
        out.append(UInt8(65 + key / 1_000_000))
        Civil.appendDigits(&out, Int(key % 1_000_000), width: 6)
    }

    public var description: String {
        var out: [UInt8] = []
        append(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Why an event is invalid: the JSON path of the offending field (nil for frame, UTF-8 and JSON problems) and a
/// plain-English reason.
public struct Invalidity: Error, Sendable, Equatable {
    public var field: String?
    public var reason: String
}

enum EventType: UInt8 {
    case contactRecorded, registrationAdded, registrationUpdated, registrationDeregistered, registrationDeleted

    /// The listed type named by the (decoded) bytes, nil for any other.
    @inline(__always)
    init?(_ b: UnsafeRawBufferPointer) {
        switch b.count {
        case 31 where bytesEqual(b, "probation-case.contact.recorded" as StaticString): self = .contactRecorded
        case 33 where bytesEqual(b, "probation-case.registration.added" as StaticString): self = .registrationAdded
        case 35 where bytesEqual(b, "probation-case.registration.updated" as StaticString): self = .registrationUpdated
        case 35 where bytesEqual(b, "probation-case.registration.deleted" as StaticString): self = .registrationDeleted
        case 40 where bytesEqual(b, "probation-case.registration.deregistered" as StaticString): self = .registrationDeregistered
        default: return nil
        }
    }
}

/// A decoded, field-valid contact event. String values are handles into the reader (`EventScanner` slots; node
/// indexes for `ReferenceEventDecoder`).
struct ContactEvent {
    var occurredAt: Millis = 0
    var crn = CRN(key: 0)
    var contactId: UInt64 = 0
    var contactVersion: UInt64 = 1
    var contactStart: Millis = 0
    var mode: ContactMode = .office
    var hasOutcome = false
    var outcomeCode: Int32 = -1
    var attended = false
    var complied = false
    var enforceable = false
    var actionCode: Int32 = -1
    var actionId: UInt32 = 0
    var actionAt: Millis = 0
    var setting: InterviewSetting = .unknown
    var sensitive = false
    var sentenceType: SentenceType? = nil
    var pduCode: Int32 = -1

    var isFailure: Bool { hasOutcome && !complied && enforceable }
}

struct RegistrationEvent {
    var occurredAt: Millis = 0
    var crn = CRN(key: 0)
    var type: EventType = .registrationAdded
    var registerTypeCode: Int32 = -1
    var registerLevelCode: Int32 = -1
}

enum DecodedEvent {
    case contact(ContactEvent)
    case registration(RegistrationEvent)
}

/// The envelope fields that step 0 (sequence tracking) needs, read before validation.
struct SequenceStamp {
    var publisherId: Int32
    var sequenceNumber: UInt64
}

/// Validates one event body already scanned by `reader`, in the order events.md prescribes. Checks that need engine
/// state (contact ownership) and the cross-field rules are run by the engine afterwards. Value handles are slots
/// (`EventSlot`): -1 when the member is absent or null.
struct EventDecoder {
    typealias S = EventSlot

    /// The step-0 stamp: a valid publisherId and sequenceNumber on a body that is a JSON object.
    @inline(__always)
    static func sequenceStamp(_ r: borrowing EventScanner) -> SequenceStamp? {
        guard r.rootKind == .object else { return nil }
        let pid = r.value(S.publisherId), seq = r.value(S.sequenceNumber)
        guard pid >= 0, seq >= 0, validPublisherId(r, pid) else { return nil }
        let s = r.node(seq)
        guard s.kind == .number, s.flag else { return nil }
        return SequenceStamp(publisherId: pid, sequenceNumber: s.integer)
    }

    static func validPublisherId(_ r: borrowing EventScanner, _ i: Int32) -> Bool {
        guard r.node(i).kind == .string else { return false }
        return r.withStringBytes(i) { b -> Bool in
            // Valid UTF-8 (the scanner checked it): a scalar is 1 to 4 bytes, so 1 to 64 bytes are always 1 to 64
            // scalars and only a longer value needs its scalars counted.
            if b.count <= 64 { return b.count >= 1 }
            var n = 0
            for c in b where c & 0xC0 != 0x80 { n += 1 }
            return n <= 64
        }
    }

    /// The event type, or an invalidity; `nil` type without invalidity means an unlisted (ignored) type.
    static func eventType(_ r: borrowing EventScanner, topic: UnsafeRawBufferPointer?) -> Result<EventType?, Invalidity> {
        let t = r.value(S.eventType)
        guard t >= 0, r.node(t).kind == .string else {
            return .failure(Invalidity(field: "eventType", reason: "eventType is missing or not a string"))
        }
        if let topic, !r.stringEquals(t, topic) {
            return .failure(Invalidity(field: "eventType", reason: "the topic frame does not match eventType"))
        }
        // The scanner read the body's first member from its memo: the type it recorded for those bytes.
        let known = r.knownEventType
        if known != 0 { return .success(known <= 5 ? EventType(rawValue: known &- 1) : nil) }
        // (Without escapes, the usual case, the bytes are read in place without a closure.)
        if !r.node(t).flag { return .success(EventType(r.rawBytes(t))) }
        return .success(r.withStringBytes(t) { EventType($0) })
    }

    /// The decoded eventType of a body that is a JSON object, when it is a string (the notice's topic of a one-frame
    /// message).
    static func eventTypeText(_ r: borrowing EventScanner) -> [UInt8]? {
        let t = r.value(S.eventType)
        guard r.rootKind == .object, t >= 0, r.node(t).kind == .string else { return nil }
        return r.decodedBytes(t)
    }

    @inline(__always)
    static func time(_ r: borrowing EventScanner, _ i: Int32) -> Millis? {
        guard i >= 0, r.node(i).kind == .string else { return nil }
        let memos = r.dateMemos
        return r.withStringBytes(i) { RFC3339Fast.parse($0, memos: memos) }
    }

    @inline(__always)
    static func integer(_ r: borrowing EventScanner, _ i: Int32) -> UInt64? {
        let n = r.node(i)
        return n.kind == .number && n.flag ? n.integer : nil
    }

    @inline(__always)
    static func isString(_ r: borrowing EventScanner, _ i: Int32) -> Bool { r.node(i).kind == .string }

    @inline(__always)
    static func bool(_ r: borrowing EventScanner, _ i: Int32) -> Bool? {
        switch r.node(i).kind {
        case .true: return true
        case .false: return false
        default: return nil
        }
    }

    @inline(never)
    static func invalid(_ field: String, _ reason: String) -> Invalidity { Invalidity(field: field, reason: reason) }

    /// Validates the envelope and the type's fields of a body whose event type is listed (`decode(_:type:scannedCRN:
    /// contact:registration:)`, as a value).
    static func decode(_ r: borrowing EventScanner, type: EventType, scannedCRN: CRN?) -> Result<DecodedEvent, Invalidity> {
        var c = ContactEvent(), g = RegistrationEvent()
        if let e = decode(r, type: type, scannedCRN: scannedCRN, contact: &c, registration: &g) { return .failure(e) }
        return .success(type == .contactRecorded ? .contact(c) : .registration(g))
    }

    /// Validates the envelope and the type's fields of a body whose event type is listed: the invalidity, or nil with
    /// the event written into `contact` (a contact event) or `registration` (any other listed type). (Inlined into the
    /// engine's one call site, and written through the caller's variables, so that the decoded event is built where
    /// the engine reads it: returned in a `Result` and wrapped in a `DecodedEvent`, the ~110-byte contact event was
    /// copied twice on its way to `processContact`.)
    /// `scannedCRN` is `scannedCRN(r)`, read once per event (the engine reads it early for its prefetch).
    @inline(__always)
    static func decode(_ r: borrowing EventScanner, type: EventType, scannedCRN: CRN?, contact: inout ContactEvent,
                       registration: inout RegistrationEvent) -> Invalidity? {
        let version = r.value(S.version)
        guard version >= 0, integer(r, version) == 1 else { return invalid("version", "version must be the integer 1") }
        guard let occurredAt = time(r, r.value(S.occurredAt)) else {
            return invalid("occurredAt", "occurredAt is missing or not an RFC 3339 date-time")
        }
        let publisher = r.value(S.publisherId)
        if publisher >= 0, !validPublisherId(r, publisher) {
            return invalid("publisherId", "publisherId must be a string of 1 to 64 characters")
        }
        let sequence = r.value(S.sequenceNumber)
        if sequence >= 0, integer(r, sequence) == nil {
            return invalid("sequenceNumber", "sequenceNumber must be an integer from 1 to 9007199254740991")
        }
        let crn: CRN
        switch person(r, scannedCRN: scannedCRN) {
        case .success(let c): crn = c
        case .failure(let e): return e
        }
        let info = r.value(S.additionalInformation)
        guard info >= 0, r.node(info).kind == .object else {
            return invalid("additionalInformation", "additionalInformation is missing or not an object")
        }
        if type == .contactRecorded {
            return self.contact(r, occurredAt: occurredAt, crn: crn, into: &contact)
        }
        let typeCode = r.value(S.registerTypeCode), levelCode = r.value(S.registerLevelCode)
        guard typeCode >= 0, isString(r, typeCode) else {
            return invalid("additionalInformation.registerTypeCode", "registerTypeCode is missing or not a string")
        }
        if levelCode >= 0, !isString(r, levelCode) {
            return invalid("additionalInformation.registerLevelCode", "registerLevelCode is not a string")
        }
        if levelCode >= 0, MAPPLevel.refused(type: { r.stringEquals(typeCode, $0) }, level: { r.stringEquals(levelCode, $0) }) {
            return invalid(MAPPLevel.field, MAPPLevel.problem)
        }
        registration = RegistrationEvent(occurredAt: occurredAt, crn: crn, type: type, registerTypeCode: typeCode,
                                         registerLevelCode: levelCode)
        return nil
    }

    /// The CRN and `additionalInformation.contactId` of a body that is a JSON object, each when it is valid on its
    /// own (whatever else is wrong with the event). Off the hot path: only for invalid events.
    static func subjectHints(_ r: borrowing EventScanner) -> (crn: CRN?, contactId: UInt64?) {
        guard r.rootKind == .object else { return (nil, nil) }
        var crn: CRN? = nil
        if case .success(let c) = person(r, scannedCRN: scannedCRN(r)) { crn = c }
        var contactId: UInt64? = nil
        let info = r.value(S.additionalInformation)
        if info >= 0, r.node(info).kind == .object {
            let id = r.value(S.contactId)
            if id >= 0 { contactId = integer(r, id) }
        }
        return (crn, contactId)
    }

    /// The CRN in the value of the body's CRN identifier (`EventSlot.crnValue`) when that value is a string without
    /// escapes (its raw bytes are its text) and a valid CRN; nil otherwise. Read once per event: the engine prefetches
    /// its case with it and hands it to `decode`, so that `person` does not read the same bytes again.
    @inline(__always)
    static func scannedCRN(_ r: borrowing EventScanner) -> CRN? {
        let value = r.value(S.crnValue)
        guard value >= 0, r.node(value).kind == .string, !r.node(value).flag else { return nil }
        return CRN(r.rawBytes(value))
    }

    /// personReference, from the scanner's summary of its identifiers. `scannedCRN` must be `scannedCRN(r)`: it is
    /// the CRN when the value is a string without escapes (with escapes, the decoded bytes are read here).
    static func person(_ r: borrowing EventScanner, scannedCRN: CRN?) -> Result<CRN, Invalidity> {
        let p = r.value(S.personReference)
        guard p >= 0, r.node(p).kind == .object else {
            return .failure(invalid("personReference", "personReference is missing or not an object"))
        }
        let ids = r.value(S.identifiers)
        guard ids >= 0, r.node(ids).kind == .array else {
            return .failure(invalid("personReference.identifiers", "personReference.identifiers is missing or not an array"))
        }
        if r.problemIndex >= 0 {
            let index = r.problemIndex
            if r.problemIsType {
                return .failure(invalid("personReference.identifiers[\(index)].type", "identifier type is missing or not a string"))
            }
            return .failure(invalid("personReference.identifiers[\(index)]", "each identifier must be an object"))
        }
        guard r.crnCount == 1 else {
            return .failure(invalid("personReference.identifiers",
                                    "personReference.identifiers must contain exactly one CRN (found \(r.crnCount))"))
        }
        let value = r.value(S.crnValue)
        guard value >= 0, isString(r, value),
              let crn = r.node(value).flag ? r.withStringBytes(value, { CRN($0) }) : scannedCRN else {
            return .failure(invalid("personReference.identifiers[\(r.crnIndex)].value", "CRN is not a capital letter and six digits"))
        }
        return .success(crn)
    }

    static let codeFieldNames = ["pduCode", "teamCode", "staffCode", "officeLocationCode"]

    @inline(__always)
    static func contact(_ r: borrowing EventScanner, occurredAt: Millis, crn: CRN, into e: inout ContactEvent) -> Invalidity? {
        let contactIdNode = r.value(S.contactId), versionNode = r.value(S.contactVersion)
        let startNode = r.value(S.contactStart), typeNode = r.value(S.contactType), modeNode = r.value(S.contactMode)
        let outcomeNode = r.value(S.outcome), actionNode = r.value(S.enforcementAction)
        let settingNode = r.value(S.interviewSetting), sensitiveNode = r.value(S.sensitive)
        let sentenceNode = r.value(S.sentenceType), pduNode = r.value(S.pduCode)
        e = ContactEvent()
        e.occurredAt = occurredAt
        e.crn = crn
        let prefix = "additionalInformation."
        guard contactIdNode >= 0, let id = integer(r, contactIdNode) else {
            return invalid(prefix + "contactId", "contactId is missing or not an integer from 1 to 9007199254740991")
        }
        e.contactId = id
        if versionNode >= 0 {
            guard let v = integer(r, versionNode) else {
                return invalid(prefix + "contactVersion", "contactVersion is not an integer from 1 to 9007199254740991")
            }
            e.contactVersion = v
        }
        guard let start = time(r, startNode) else {
            return invalid(prefix + "contactStart", "contactStart is missing or not an RFC 3339 date-time")
        }
        e.contactStart = start
        // contactType, then contactMode: at least one; contactMode wins.
        var typeMode: ContactMode? = nil
        if typeNode >= 0 {
            guard isString(r, typeNode) else { return invalid(prefix + "contactType", "contactType is not a string") }
            typeMode = r.withStringBytes(typeNode) { ContactMode.forContactType($0) }
            if typeMode == nil && modeNode < 0 {
                return invalid(prefix + "contactType", "contactType is not a known code and contactMode is absent")
            }
        } else if modeNode < 0 {
            return invalid(prefix + "contactType", "neither contactType nor contactMode is given")
        }
        if modeNode >= 0 {
            guard isString(r, modeNode), let m = r.withStringBytes(modeNode, { ContactMode.parse($0) }) else {
                return invalid(prefix + "contactMode", "contactMode is not a known mode")
            }
            e.mode = m
        } else {
            e.mode = typeMode!
        }
        if outcomeNode >= 0 {
            guard r.node(outcomeNode).kind == .object else { return invalid(prefix + "outcome", "outcome is not an object") }
            let code = r.value(S.outcomeCode)
            let g = (r.value(S.attended), r.value(S.complied), r.value(S.enforceable))
            guard code >= 0, isString(r, code) else {
                return invalid(prefix + "outcome.code", "outcome code is missing or not a string")
            }
            let table = r.withStringBytes(code) { OutcomeFlags.forCode($0) }
            if table == nil && (g.0 < 0 || g.1 < 0 || g.2 < 0) {
                return invalid(prefix + "outcome.code",
                               "outcome code is not in the table and not all of attended, complied and enforceable are given")
            }
            var flags = table ?? OutcomeFlags(attended: false, complied: false, enforceable: false)
            if g.0 >= 0 {
                guard let b = bool(r, g.0) else { return invalid(prefix + "outcome.attended", "outcome.attended is not a boolean") }
                flags.attended = b
            }
            if g.1 >= 0 {
                guard let b = bool(r, g.1) else { return invalid(prefix + "outcome.complied", "outcome.complied is not a boolean") }
                flags.complied = b
            }
            if g.2 >= 0 {
                guard let b = bool(r, g.2) else {
                    return invalid(prefix + "outcome.enforceable", "outcome.enforceable is not a boolean")
                }
                flags.enforceable = b
            }
            e.hasOutcome = true
            e.outcomeCode = code
            e.attended = flags.attended
            e.complied = flags.complied
            e.enforceable = flags.enforceable
        }
        if actionNode >= 0 {
            guard r.node(actionNode).kind == .object else {
                return invalid(prefix + "enforcementAction", "enforcementAction is not an object")
            }
            let code = r.value(S.actionCode), at = r.value(S.actionAt)
            guard code >= 0, isString(r, code) else {
                return invalid(prefix + "enforcementAction.code", "enforcement action code is missing or not a string")
            }
            e.actionCode = code
            e.actionId = r.withStringBytes(code) { ActionCodes.id($0) }
            e.actionAt = occurredAt
            if at >= 0 {
                guard let t = time(r, at) else {
                    return invalid(prefix + "enforcementAction.actionAt", "actionAt is not an RFC 3339 date-time")
                }
                e.actionAt = t
            }
        }
        if settingNode >= 0 {
            guard isString(r, settingNode), let s = r.withStringBytes(settingNode, { InterviewSetting.parse($0) }) else {
                return invalid(prefix + "interviewSetting", "interviewSetting is not a known setting")
            }
            e.setting = s
        } else {
            e.setting = e.mode == .homeVisit ? .home : e.mode == .doorstep ? .doorstep : .unknown
        }
        if sensitiveNode >= 0 {
            guard let b = bool(r, sensitiveNode) else { return invalid(prefix + "sensitive", "sensitive is not a boolean") }
            e.sensitive = b
        }
        if sentenceNode >= 0 {
            guard isString(r, sentenceNode), let s = r.withStringBytes(sentenceNode, { SentenceType.parse($0) }) else {
                return invalid(prefix + "sentenceType", "sentenceType is not a known sentence type")
            }
            e.sentenceType = s
        }
        // pduCode, teamCode, staffCode, officeLocationCode: strings when present.
        for k in 0..<Int32(4) {
            let v = r.value(S.pduCode + k)
            if v >= 0 && !isString(r, v) {
                let name = Self.codeFieldNames[Int(k)]
                return invalid(prefix + name, "\(name) is not a string")
            }
        }
        e.pduCode = pduNode
        return nil
    }
}

/// RFC 3339 for the engine's hot path: the usual `YYYY-MM-DDTHH:MM:SSZ` read at fixed offsets, anything else by
/// `RFC3339.parse` (the same result for every input: `RFC3339FastTests`).
enum RFC3339Fast {
    /// A date part converted (`YYYY-MM-DD` as the first word and the two day bytes of a valid date-time in the usual
    /// form) and its day number: a stream's date-times crowd into a few dates, and the same bytes are the same valid
    /// date, so a repeat skips the date's checks and arithmetic. The empty memo never matches (a valid date has a '-'
    /// in its first word).
    struct DateMemo {
        var a: UInt64 = 0
        var day: UInt64 = 0
        var days: Int64 = 0
    }

    /// The memo table's size: a date part has its one place in it (`memoIndex`), the last date seen there.
    static let memoCount = 32

    @inline(__always) static func memoIndex(_ a: UInt64, _ day: UInt64) -> Int {
        Int(truncatingIfNeeded: ((a ^ day) &* 0x9E37_79B9_7F4A_7C15) &>> 59)
    }

    /// Without a memo (tests).
    static func parse(_ s: UnsafeRawBufferPointer) -> Millis? {
        var memos = [DateMemo](repeating: DateMemo(), count: memoCount)
        return memos.withUnsafeMutableBufferPointer { parse(s, memos: $0.baseAddress!) }
    }

    /// The usual form whose date part is in the memo table (`memoCount` entries): only the time of day is checked and
    /// added (inline, the common case); anything else is `parseDate`'s.
    @inline(__always)
    static func parse(_ s: UnsafeRawBufferPointer, memos: UnsafeMutablePointer<DateMemo>) -> Millis? {
        if s.count == 20, let base = s.baseAddress {
            // Bytes 0..<8 "YYYY-MM-", 8..<16 "DDTHH:MM", 16..<20 ":SSZ".
            let a = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
            let b = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let memo = memos + memoIndex(a, b & 0xFFFF)
            if a == memo.pointee.a && b & 0xFFFF == memo.pointee.day {
                // The date part of the last valid date-time: only the time of day is left to check, as `parseDate`
                // does (the 'Z' included, as byte 19).
                let c = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
                if b & maskB == sepB, c & maskC == sepC {
                    let digitsB = (b & ~maskB) | (0x3030_3030_3030_3030 & maskB)
                    let digitsC = (c & ~maskC) | (0x3030_3030 & maskC)
                    if allDigits(digitsB), allDigits(digitsC | 0x3030_3030_0000_0000) {
                        let vb = (b & ~maskB) & 0x0F0F_0F0F_0F0F_0F0F, vc = (c & ~maskC) & 0x0F0F_0F0F_0F0F_0F0F
                        let pb = vb &* 10 &+ (vb &>> 8), pc = vc &* 10 &+ (vc &>> 8)
                        let hour = Int(truncatingIfNeeded: (pb &>> 24) & 0xFF), minute = Int(truncatingIfNeeded: (pb &>> 48) & 0xFF)
                        let second = Int(truncatingIfNeeded: (pc &>> 8) & 0xFF)
                        guard hour <= 23, minute <= 59, second <= 59 else { return nil }
                        return (memo.pointee.days &* 86_400 &+ Int64(hour &* 3600 &+ minute &* 60 &+ second)) &* 1000
                    }
                }
            }
        }
        return parseDate(s, memos: memos)
    }

    // The separators of the usual form in its three words, and their masks.
    private static let sepA: UInt64 = 0x2D00_002D_0000_0000, maskA: UInt64 = 0xFF00_00FF_0000_0000
    private static let sepB: UInt64 = 0x0000_3A00_0054_0000, maskB: UInt64 = 0x0000_FF00_00FF_0000
    private static let sepC: UInt64 = 0x5A00_003A, maskC: UInt64 = 0xFF00_00FF

    /// Any date-time: the usual form checked and converted in full (its date part then memoised), any other by
    /// `RFC3339.parse`.
    @inline(never)
    private static func parseDate(_ s: UnsafeRawBufferPointer, memos: UnsafeMutablePointer<DateMemo>) -> Millis? {
        guard s.count == 20, let base = s.baseAddress, base.load(fromByteOffset: 19, as: UInt8.self) == UInt8(ascii: "Z") else {
            return RFC3339.parse(s)
        }
        let a = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        let b = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let c = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
        // The separators, then every digit position holds 0x30...0x39.
        guard a & maskA == sepA, b & maskB == sepB, c & maskC == sepC else { return RFC3339.parse(s) }
        let digitsA = (a & ~maskA) | (0x3030_3030_3030_3030 & maskA)
        let digitsB = (b & ~maskB) | (0x3030_3030_3030_3030 & maskB)
        let digitsC = (c & ~maskC) | (0x3030_3030 & maskC)
        guard allDigits(digitsA), allDigits(digitsB), allDigits(digitsC | 0x3030_3030_0000_0000) else { return RFC3339.parse(s) }
        // Digit values (separators zeroed), then each byte k holds 10·digit(k) + digit(k+1): no byte exceeds 99.
        @inline(__always) func pairs(_ w: UInt64, _ separators: UInt64) -> UInt64 {
            let v = (w & ~separators) & 0x0F0F_0F0F_0F0F_0F0F
            return v &* 10 &+ (v &>> 8)
        }
        @inline(__always) func byte(_ w: UInt64, _ k: Int) -> Int { Int(truncatingIfNeeded: (w &>> UInt64(k &* 8)) & 0xFF) }
        let pa = pairs(a, maskA), pb = pairs(b, maskB), pc = pairs(c, maskC)
        let year = byte(pa, 0) &* 100 &+ byte(pa, 2)
        let month = byte(pa, 5)
        let day = byte(pb, 0)
        let hour = byte(pb, 3)
        let minute = byte(pb, 6)
        let second = byte(pc, 1)
        guard month >= 1 && month <= 12, day >= 1, hour <= 23, minute <= 59, second <= 59 else { return nil }
        let seconds = Int64(hour &* 3600 &+ minute &* 60 &+ second)
        // Days in the month: 28 + (0x3bbeecc >> 2·month) & 3 gives 31, 28, 31, 30, … (February without leap).
        let monthDays = 28 &+ (0x3BBE_ECC &>> (month &* 2)) & 3
        if day > monthDays {
            guard month == 2, day == 29, year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) else { return nil }
        }
        guard year > 0 else { return RFC3339.parse(s) }
        // Civil.daysFromCivil for years 1...9999 (no negative division): Howard Hinnant's algorithm.
        let y = UInt(month <= 2 ? year &- 1 : year)
        let era = y / 400
        let yoe = y &- era &* 400
        let mp = UInt(month > 2 ? month &- 3 : month &+ 9)
        let doy = (153 &* mp &+ 2) / 5 &+ UInt(day) &- 1
        let doe = yoe &* 365 &+ yoe / 4 &- yoe / 100 &+ doy
        let days = Int64(era &* 146_097 &+ doe) &- 719_468
        memos[memoIndex(a, b & 0xFFFF)] = DateMemo(a: a, day: b & 0xFFFF, days: days)
        return (days &* 86_400 &+ seconds) &* 1000
    }

    /// Whether every byte of `w` is an ASCII digit.
    @inline(__always) private static func allDigits(_ w: UInt64) -> Bool {
        // Each byte minus 0x30 must be below 10: no high nibble left and no byte above 9 after adding 6.
        let x = w &- 0x3030_3030_3030_3030
        return (w & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030 && ((x &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) == 0
    }
}
