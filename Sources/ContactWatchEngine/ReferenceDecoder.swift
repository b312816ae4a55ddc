#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The decoder the engine used before `EventScanner` (on `JSONReader`'s node array), kept as the reference that
/// `EventDecoder` is compared with (`EventScannerDifferentialTests`, the fuzz target): same validation, same order,
/// same results. Not on the engine's path.
struct ReferenceEventDecoder {
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
        if f[1] >= 0, MAPPLevel.refused(type: { r.stringEquals(f[0], $0) }, level: { r.stringEquals(f[1], $0) }) {
            return .failure(invalid(MAPPLevel.field, MAPPLevel.problem))
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

/// Compares `EventScanner` + `EventDecoder` with the reference path (`isValidUTF8`, `JSONReader.parse` with the
/// engine's settings, `ReferenceEventDecoder`) on one body: the UTF-8/JSON decision and message, then everything the
/// engine reads from a valid body (step-0 stamp, event type with and without a topic, both event kinds decoded
/// whatever the body's eventType, the invalid notice's hints). Returns a description of the first difference, nil when
/// they agree. Used by the differential tests and the fuzz target.
package enum ScannerDifferential {
    package static func difference(body: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer?) -> String? {
        // The scanner's fast path against its general path: the same outcome and the same state left behind.
        var fast = EventScanner(), general = EventScanner()
        general.fastPathEnabled = false
        let fastOutcome = fast.scan(body)
        let generalOutcome = general.scan(body)
        let f = fast.stateDescription(fastOutcome), g = general.stateDescription(generalOutcome)
        if f != g { return "fast path: \(f)\ngeneral path: \(g)" }
        var scanner = EventScanner()
        var reader = JSONReader()
        let new = describe(&scanner, body: body, topic: topic)
        let old = describe(&reader, body: body, topic: topic)
        return new == old ? nil : "scanner: \(new)\nreference: \(old)"
    }

    static func describe(_ r: inout EventScanner, body: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer?) -> String {
        switch r.scan(body) {
        case .utf8: return "utf8"
        case .json(let m): return "json: \(m)"
        case .ok: break
        }
        var out = "ok root=\(r.rootKind)"
        if let s = EventDecoder.sequenceStamp(r) { out += " stamp=\(r.string(s.publisherId))#\(s.sequenceNumber)" }
        out += " text=\(EventDecoder.eventTypeText(r).map { String(decoding: $0, as: UTF8.self) } ?? "-")"
        guard r.rootKind == .object else { return out }
        out += " type=\(EventDecoder.eventType(r, topic: nil)) typeTopic=\(EventDecoder.eventType(r, topic: topic ?? UnsafeRawBufferPointer(start: nil, count: 0)))"
        let hints = EventDecoder.subjectHints(r)
        out += " hints=\(hints.crn.map { "\($0)" } ?? "-")/\(hints.contactId.map { "\($0)" } ?? "-")"
        for type in [EventType.contactRecorded, .registrationDeleted] {
            out += describe(EventDecoder.decode(r, type: type, scannedCRN: EventDecoder.scannedCRN(r))) { r.string($0) }
        }
        return out
    }

    static func describe(_ r: inout JSONReader, body: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer?) -> String {
        guard isValidUTF8(body) else { return "utf8" }
        if let e = r.parse(body) { return "json: \(e.message)" }
        let root = r.node(0).kind
        var out = "ok root=\(root)"
        if let s = ReferenceEventDecoder.sequenceStamp(r) { out += " stamp=\(r.string(s.publisherId))#\(s.sequenceNumber)" }
        var text = "-"
        if root == .object {
            let f = ReferenceEventDecoder.members(r, 0, ["eventType"])
            if f[0] >= 0, r.node(f[0]).kind == .string { text = String(decoding: r.decodedBytes(f[0]), as: UTF8.self) }
        }
        out += " text=\(text)"
        guard root == .object else { return out }
        out += " type=\(ReferenceEventDecoder.eventType(r, topic: nil)) typeTopic=\(ReferenceEventDecoder.eventType(r, topic: topic ?? UnsafeRawBufferPointer(start: nil, count: 0)))"
        let hints = ReferenceEventDecoder.subjectHints(r)
        out += " hints=\(hints.crn.map { "\($0)" } ?? "-")/\(hints.contactId.map { "\($0)" } ?? "-")"
        for type in [EventType.contactRecorded, .registrationDeleted] {
            out += describe(ReferenceEventDecoder.decode(r, type: type)) { r.string($0) }
        }
        return out
    }

    /// One decoder's result for one event kind, as both descriptions give it (` invalid=…`, ` contact=…`, ` reg=…`).
    static func describe(_ decoded: Result<DecodedEvent, Invalidity>, _ string: (Int32) -> String) -> String {
        switch decoded {
        case .failure(let e): " invalid=\(e.field ?? "-"): \(e.reason)"
        case .success(.contact(let c)): " " + describe(c, string)
        case .success(.registration(let g)):
            " reg=\(g.occurredAt) \(g.crn) \(g.type) \(string(g.registerTypeCode)) \(g.registerLevelCode >= 0 ? string(g.registerLevelCode) : "-")"
        }
    }

    static func describe(_ c: ContactEvent, _ string: (Int32) -> String) -> String {
        "contact=\(c.occurredAt) \(c.crn) \(c.contactId) v\(c.contactVersion) \(c.contactStart) \(c.mode) "
            + "outcome=\(c.hasOutcome ? string(c.outcomeCode) : "-") \(c.attended) \(c.complied) \(c.enforceable) "
            + "action=\(c.actionCode >= 0 ? string(c.actionCode) : "-") \(c.actionId) \(c.actionAt) \(c.setting) \(c.sensitive) "
            + "\(c.sentenceType.map { "\($0)" } ?? "-") pdu=\(c.pduCode >= 0 ? string(c.pduCode) : "-")"
    }
}
