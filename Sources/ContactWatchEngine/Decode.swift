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

    public init?(_ b: UnsafeRawBufferPointer) {
        guard b.count == 7, b[0] >= 65 && b[0] <= 90 else { return nil }
        var v: UInt32 = 0
        for k in 1..<7 {
            let c = b[k]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + UInt32(c - 48)
        }
        key = UInt32(b[0] - 65) * 1_000_000 + v
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

}

/// A decoded, field-valid contact event. String values are node indexes into the reader.
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

/// Validates one event body already parsed by `reader`, in the order events.md prescribes. Checks that need
/// engine state (contact ownership) and the cross-field rules are run by the engine afterwards.
struct EventDecoder {
    @inline(__always) static func isNull(_ r: borrowing JSONReader, _ i: Int32) -> Bool { r.node(i).kind == .null }

    /// Looks up members of an object by name; null values count as absent.
    @inline(__always)
    static func members<let N: Int>(_ r: borrowing JSONReader, _ object: Int32, _ names: InlineArray<N, StaticString>) -> InlineArray<N, Int32> {
        var slots = InlineArray<N, Int32>(repeating: -1)
        var next = 0
        r.forEachMember(object) { key, value in
            if r.node(value).kind == .null { return }
            let kn = r.node(key)
            if kn.flag {
                for k in 0..<N where r.keyEquals(key, names[k]) {
                    slots[k] = value
                    break
                }
                return
            }
            let len = Int(kn.end &- kn.start)
            let p = UnsafeRawPointer(r.base! + Int(kn.start))
            // Bodies usually list members in the order of `names`: start after the last match, wrapping around.
            var k = next
            for _ in 0..<N {
                let name = names[k]
                if name.utf8CodeUnitCount == len && (len == 0 || bytesEqual(p, UnsafeRawPointer(name.utf8Start), count: len)) {
                    slots[k] = value
                    next = k + 1 == N ? 0 : k + 1
                    break
                }
                k = k + 1 == N ? 0 : k + 1
            }
        }
        return slots
    }

    /// The step-0 stamp: a valid publisherId and sequenceNumber on a body that is a JSON object.
    static func sequenceStamp(_ r: borrowing JSONReader) -> SequenceStamp? {
        guard r.node(0).kind == .object else { return nil }
        let f = members(r, 0, ["publisherId", "sequenceNumber"])
        guard f[0] >= 0, f[1] >= 0, validPublisherId(r, f[0]) else { return nil }
        let s = r.node(f[1])
        guard s.kind == .number, s.flag else { return nil }
        return SequenceStamp(publisherId: f[0], sequenceNumber: s.integer)
    }

    static func validPublisherId(_ r: borrowing JSONReader, _ i: Int32) -> Bool {
        guard r.node(i).kind == .string else { return false }
        let scalars = r.withStringBytes(i) { b -> Int in
            var n = 0
            for c in b where c & 0xC0 != 0x80 { n += 1 }
            return n
        }
        return scalars >= 1 && scalars <= 64
    }

    /// The event type, or an invalidity; `nil` type without invalidity means an unlisted (ignored) type.
    static func eventType(_ r: borrowing JSONReader, topic: UnsafeRawBufferPointer?) -> Result<EventType?, Invalidity> {
        let f = members(r, 0, ["eventType"])
        guard f[0] >= 0, r.node(f[0]).kind == .string else {
            return .failure(Invalidity(field: "eventType", reason: "eventType is missing or not a string"))
        }
        if let topic, !r.stringEquals(f[0], topic) {
            return .failure(Invalidity(field: "eventType", reason: "the topic frame does not match eventType"))
        }
        return .success(r.withStringBytes(f[0]) { b in
            switch b.count {
            case 31: return bytesEqual(b, "probation-case.contact.recorded" as StaticString) ? .contactRecorded : nil
            case 33: return bytesEqual(b, "probation-case.registration.added" as StaticString) ? .registrationAdded : nil
            case 35:
                if bytesEqual(b, "probation-case.registration.updated" as StaticString) { return .registrationUpdated }
                return bytesEqual(b, "probation-case.registration.deleted" as StaticString) ? .registrationDeleted : nil
            case 40:
                return bytesEqual(b, "probation-case.registration.deregistered" as StaticString) ? .registrationDeregistered : nil
            default: return nil
            }
        })
    }

    @inline(__always)
    static func time(_ r: borrowing JSONReader, _ i: Int32) -> Millis? {
        guard i >= 0, r.node(i).kind == .string else { return nil }
        return r.withStringBytes(i) { RFC3339.parse($0) }
    }

    @inline(__always)
    static func integer(_ r: borrowing JSONReader, _ i: Int32) -> UInt64? {
        let n = r.node(i)
        return n.kind == .number && n.flag ? n.integer : nil
    }

    @inline(__always)
    static func isString(_ r: borrowing JSONReader, _ i: Int32) -> Bool { r.node(i).kind == .string }

    @inline(__always)
    static func bool(_ r: borrowing JSONReader, _ i: Int32) -> Bool? {
        switch r.node(i).kind {
        case .true: return true
        case .false: return false
        default: return nil
        }
    }

    static func invalid(_ field: String, _ reason: String) -> Invalidity { Invalidity(field: field, reason: reason) }

    /// Validates the envelope and the type's fields of a body whose event type is listed.
    static func decode(_ r: borrowing JSONReader, type: EventType) -> Result<DecodedEvent, Invalidity> {
        let env = members(r, 0, ["version", "occurredAt", "publisherId", "sequenceNumber", "personReference", "additionalInformation"])
        guard env[0] >= 0, integer(r, env[0]) == 1 else { return .failure(invalid("version", "version must be the integer 1")) }
        guard let occurredAt = time(r, env[1]) else {
            return .failure(invalid("occurredAt", "occurredAt is missing or not an RFC 3339 date-time"))
        }
        if env[2] >= 0, !validPublisherId(r, env[2]) {
            return .failure(invalid("publisherId", "publisherId must be a string of 1 to 64 characters"))
        }
        if env[3] >= 0, integer(r, env[3]) == nil {
            return .failure(invalid("sequenceNumber", "sequenceNumber must be an integer from 1 to 9007199254740991"))
        }
        let crn: CRN
        switch person(r, env[4]) {
        case .success(let c): crn = c
        case .failure(let e): return .failure(e)
        }
        let info = env[5]
        guard info >= 0, r.node(info).kind == .object else {
            return .failure(invalid("additionalInformation", "additionalInformation is missing or not an object"))
        }
        if type == .contactRecorded {
            return contact(r, info, occurredAt: occurredAt, crn: crn).map { .contact($0) }
        }
        let f = members(r, info, ["registerTypeCode", "registerLevelCode"])
        guard f[0] >= 0, isString(r, f[0]) else {
            return .failure(invalid("additionalInformation.registerTypeCode", "registerTypeCode is missing or not a string"))
        }
        if f[1] >= 0, !isString(r, f[1]) {
            return .failure(invalid("additionalInformation.registerLevelCode", "registerLevelCode is not a string"))
        }
        return .success(.registration(RegistrationEvent(occurredAt: occurredAt, crn: crn, type: type,
                                                        registerTypeCode: f[0], registerLevelCode: f[1])))
    }

    /// The CRN and `additionalInformation.contactId` of a body that is a JSON object, each when it is valid on its
    /// own (whatever else is wrong with the event). Off the hot path: only for invalid events.
    static func subjectHints(_ r: borrowing JSONReader) -> (crn: CRN?, contactId: UInt64?) {
        let env = members(r, 0, ["personReference", "additionalInformation"])
        var crn: CRN? = nil
        if case .success(let c) = person(r, env[0]) { crn = c }
        var contactId: UInt64? = nil
        if env[1] >= 0, r.node(env[1]).kind == .object {
            let f = members(r, env[1], ["contactId"])
            if f[0] >= 0 { contactId = integer(r, f[0]) }
        }
        return (crn, contactId)
    }

    static func person(_ r: borrowing JSONReader, _ p: Int32) -> Result<CRN, Invalidity> {
        guard p >= 0, r.node(p).kind == .object else {
            return .failure(invalid("personReference", "personReference is missing or not an object"))
        }
        let f = members(r, p, ["identifiers"])
        let ids = f[0]
        guard ids >= 0, r.node(ids).kind == .array else {
            return .failure(invalid("personReference.identifiers", "personReference.identifiers is missing or not an array"))
        }
        var problem: Invalidity? = nil
        var crnValue: Int32 = -1
        var crnIndex = 0
        var crnCount = 0
        r.forEachElement(ids) { index, element in
            guard problem == nil else { return }
            guard r.node(element).kind == .object else {
                problem = invalid("personReference.identifiers[\(index)]", "each identifier must be an object")
                return
            }
            let g = members(r, element, ["type", "value"])
            guard g[0] >= 0, isString(r, g[0]) else {
                problem = invalid("personReference.identifiers[\(index)].type", "identifier type is missing or not a string")
                return
            }
            if r.withStringBytes(g[0], { bytesEqual($0, "CRN" as StaticString) }) {
                crnCount += 1
                crnValue = g[1]
                crnIndex = index
            }
        }
        if let problem { return .failure(problem) }
        guard crnCount == 1 else {
            return .failure(invalid("personReference.identifiers",
                                    "personReference.identifiers must contain exactly one CRN (found \(crnCount))"))
        }
        guard crnValue >= 0, isString(r, crnValue), let crn = r.withStringBytes(crnValue, { CRN($0) }) else {
            return .failure(invalid("personReference.identifiers[\(crnIndex)].value", "CRN is not a capital letter and six digits"))
        }
        return .success(crn)
    }

    static let codeFieldNames = ["pduCode", "teamCode", "staffCode", "officeLocationCode"]

    static func contact(_ r: borrowing JSONReader, _ info: Int32, occurredAt: Millis, crn: CRN) -> Result<ContactEvent, Invalidity> {
        let f = members(r, info, ["contactId", "contactVersion", "contactStart", "contactType", "contactMode", "outcome",
                                  "enforcementAction", "interviewSetting", "sensitive", "sentenceType",
                                  "pduCode", "teamCode", "staffCode", "officeLocationCode"])
        // The members' value nodes by name (-1: absent or null), in the order of the list above.
        let (contactIdNode, versionNode, startNode, typeNode, modeNode, outcomeNode, actionNode, settingNode,
             sensitiveNode, sentenceNode, pduNode) = (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10])
        var e = ContactEvent()
        e.occurredAt = occurredAt
        e.crn = crn
        let prefix = "additionalInformation."
        guard contactIdNode >= 0, let id = integer(r, contactIdNode) else {
            return .failure(invalid(prefix + "contactId", "contactId is missing or not an integer from 1 to 9007199254740991"))
        }
        e.contactId = id
        if versionNode >= 0 {
            guard let v = integer(r, versionNode) else {
                return .failure(invalid(prefix + "contactVersion", "contactVersion is not an integer from 1 to 9007199254740991"))
            }
            e.contactVersion = v
        }
        guard let start = time(r, startNode) else {
            return .failure(invalid(prefix + "contactStart", "contactStart is missing or not an RFC 3339 date-time"))
        }
        e.contactStart = start
        // contactType, then contactMode: at least one; contactMode wins.
        var typeMode: ContactMode? = nil
        if typeNode >= 0 {
            guard isString(r, typeNode) else { return .failure(invalid(prefix + "contactType", "contactType is not a string")) }
            typeMode = r.withStringBytes(typeNode) { ContactMode.forContactType($0) }
            if typeMode == nil && modeNode < 0 {
                return .failure(invalid(prefix + "contactType", "contactType is not a known code and contactMode is absent"))
            }
        } else if modeNode < 0 {
            return .failure(invalid(prefix + "contactType", "neither contactType nor contactMode is given"))
        }
        if modeNode >= 0 {
            guard isString(r, modeNode), let m = r.withStringBytes(modeNode, { ContactMode.parse($0) }) else {
                return .failure(invalid(prefix + "contactMode", "contactMode is not a known mode"))
            }
            e.mode = m
        } else {
            e.mode = typeMode!
        }
        if outcomeNode >= 0 {
            let o = outcomeNode
            guard r.node(o).kind == .object else { return .failure(invalid(prefix + "outcome", "outcome is not an object")) }
            let g = members(r, o, ["code", "attended", "complied", "enforceable"])
            guard g[0] >= 0, isString(r, g[0]) else {
                return .failure(invalid(prefix + "outcome.code", "outcome code is missing or not a string"))
            }
            let table = r.withStringBytes(g[0]) { OutcomeFlags.forCode($0) }
            if table == nil && (g[1] < 0 || g[2] < 0 || g[3] < 0) {
                return .failure(invalid(prefix + "outcome.code",
                                        "outcome code is not in the table and not all of attended, complied and enforceable are given"))
            }
            var flags = table ?? OutcomeFlags(attended: false, complied: false, enforceable: false)
            for k in 0..<3 where g[k + 1] >= 0 {
                guard let b = bool(r, g[k + 1]) else {
                    let name = k == 0 ? "attended" : k == 1 ? "complied" : "enforceable"
                    return .failure(invalid(prefix + "outcome." + name, "outcome.\(name) is not a boolean"))
                }
                switch k {
                case 0: flags.attended = b
                case 1: flags.complied = b
                default: flags.enforceable = b
                }
            }
            e.hasOutcome = true
            e.outcomeCode = g[0]
            e.attended = flags.attended
            e.complied = flags.complied
            e.enforceable = flags.enforceable
        }
        if actionNode >= 0 {
            let a = actionNode
            guard r.node(a).kind == .object else {
                return .failure(invalid(prefix + "enforcementAction", "enforcementAction is not an object"))
            }
            let g = members(r, a, ["code", "actionAt"])
            guard g[0] >= 0, isString(r, g[0]) else {
                return .failure(invalid(prefix + "enforcementAction.code", "enforcement action code is missing or not a string"))
            }
            e.actionCode = g[0]
            e.actionId = r.withStringBytes(g[0]) { ActionCodes.id($0) }
            e.actionAt = occurredAt
            if g[1] >= 0 {
                guard let t = time(r, g[1]) else {
                    return .failure(invalid(prefix + "enforcementAction.actionAt", "actionAt is not an RFC 3339 date-time"))
                }
                e.actionAt = t
            }
        }
        if settingNode >= 0 {
            guard isString(r, settingNode), let s = r.withStringBytes(settingNode, { InterviewSetting.parse($0) }) else {
                return .failure(invalid(prefix + "interviewSetting", "interviewSetting is not a known setting"))
            }
            e.setting = s
        } else {
            e.setting = e.mode == .homeVisit ? .home : e.mode == .doorstep ? .doorstep : .unknown
        }
        if sensitiveNode >= 0 {
            guard let b = bool(r, sensitiveNode) else { return .failure(invalid(prefix + "sensitive", "sensitive is not a boolean")) }
            e.sensitive = b
        }
        if sentenceNode >= 0 {
            guard isString(r, sentenceNode), let s = r.withStringBytes(sentenceNode, { SentenceType.parse($0) }) else {
                return .failure(invalid(prefix + "sentenceType", "sentenceType is not a known sentence type"))
            }
            e.sentenceType = s
        }
        // pduCode, teamCode, staffCode, officeLocationCode: the last four of the list, strings when present.
        for k in 0..<4 where f[10 + k] >= 0 && !isString(r, f[10 + k]) {
            let name = Self.codeFieldNames[k]
            return .failure(invalid(prefix + name, "\(name) is not a string"))
        }
        e.pduCode = pduNode
        return .success(e)
    }
}
