import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// A valid event body built from raw JSON member texts, so that tests can put any bytes in any field.
struct RawEvent {
    var env: [(String, String?)]
    var info: [(String, String?)]

    static func contact() -> RawEvent {
        RawEvent(env: [("eventType", q(contactTopic)), ("version", "1"), ("occurredAt", q("2026-03-02T11:00:00Z")),
                       ("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001"}]}"#)],
                 info: [("contactId", "1"), ("contactStart", q("2026-03-02T10:00:00Z")), ("contactType", q("COAP")),
                        ("outcome", #"{"code":"UAAB"}"#)])
    }

    static func registration(_ kind: String = "added") -> RawEvent {
        RawEvent(env: [("eventType", q("probation-case.registration.\(kind)")), ("version", "1"),
                       ("occurredAt", q("2026-03-02T11:00:00Z")),
                       ("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001"}]}"#)],
                 info: [("registerTypeCode", q("RHRH"))])
    }

    /// Sets (or with nil removes) an envelope member; `additionalInformation` replaces the info object text.
    func with(_ key: String, _ value: String?) -> RawEvent {
        var r = self
        if let k = r.env.firstIndex(where: { $0.0 == key }) { r.env[k].1 = value } else { r.env.append((key, value)) }
        return r
    }

    func info(_ key: String, _ value: String?) -> RawEvent {
        var r = self
        if let k = r.info.firstIndex(where: { $0.0 == key }) { r.info[k].1 = value } else { r.info.append((key, value)) }
        return r
    }

    var text: String {
        let members = env + (env.contains { $0.0 == "additionalInformation" } ? [] : [("additionalInformation", obj(info))])
        return obj(members)
    }
}

/// One validation case: a body and the field its notice must name (nil: JSON null).
struct Bad: Sendable, CustomTestStringConvertible {
    let name: String
    let body: String
    let field: String?
    init(_ name: String, _ event: RawEvent, _ field: String?) {
        self.name = name
        body = event.text
        self.field = field
    }
    init(_ name: String, text: String, _ field: String?) {
        self.name = name
        body = text
        self.field = field
    }
    var testDescription: String { name }
}

let ai = "additionalInformation."
let C = RawEvent.contact()

/// events.md "Validation" and "Which problem is reported".
@Suite("Validation", .computing)
struct ValidationTests {
    /// Sends `body` as a two-frame message on the contact topic and returns the single notice.
    func notice(_ body: String, topic: String = contactTopic, harness: Harness = Harness()) -> Msg? {
        let out = harness.send(body, topic: topic)
        #expect(out.count == 1, "expected one notice, got \(out)")
        #expect(out.first?.topic == "invalid-event")
        return out.first
    }

    func expectValid(_ body: String, harness h: Harness = Harness()) {
        let out = h.send(body, topic: contactTopic)
        #expect(!out.contains { $0.topic == "invalid-event" }, "unexpected notice: \(out)")
    }

    /// The notice's `reason` quoted a duplicate key whole, beside a payload cut to 4,096 bytes: a key of megabytes
    /// (under a raised `input.maxMessageBytes`) made a notice of megabytes (a bug hunter, session 46).
    /// The key a duplicate is reported by is the first, in order, that has a later duplicate, at any object size: an
    /// object of more than 24 members named the first key repeating an earlier one (`y` here where 24 members named
    /// `x`; a mutation tester, session 51).
    @Test("a duplicate key is reported as the first key with a later duplicate, in objects of 2, 24, 25 and 60 members",
          arguments: [2, 24, 25, 60])
    func duplicateKeyNamedAlikeAtAnySize(members: Int) throws {
        var info = members == 2 ? ["\"x\":1", "\"x\":2"] : ["\"x\":1", "\"y\":2", "\"y\":3", "\"x\":4"]
        while info.count < members { info.append("\"f\(info.count)\":0") }
        let body = #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-03-02T11:00:00Z","#
            + #""personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]},"additionalInformation":{"#
            + info.joined(separator: ",") + "}}"
        let n = try #require(notice(body))
        #expect(n.reason == "body is not JSON (duplicate key \"x\")", "\(members) members: \(n.reason ?? "nil")")
        // The contract's reader (`JSONReader`, which the scanner is compared with) names the same key.
        var reader = JSONReader()
        let error = Array(body.utf8).withUnsafeBytes { reader.parse($0) }
        #expect(error?.message == "duplicate key \"x\"", "\(String(describing: error?.message))")
    }

    @Test("a duplicate key is quoted in the reason up to 64 bytes, cut on a character, with its length; a short one whole")
    func duplicateKeyQuotedShort() throws {
        var settings = EngineSettings()
        settings.maxMessageBytes = 4 << 20
        let long = String(repeating: "k", count: 63) + "é" + String(repeating: "k", count: 1_000_000)
        let body = #"{"eventType":"probation-case.contact.recorded",""# + long + #"":1,""# + long + #"":2}"#
        let n = try #require(notice(body, harness: Harness(settings)))
        let reason = try #require(n.reason)
        #expect(reason == "body is not JSON (duplicate key \"" + String(repeating: "k", count: 63) + "…\" (\(long.utf8.count) bytes))",
                "\(reason.prefix(200))")
        let short = try #require(notice(#"{"eventType":"probation-case.contact.recorded","a":1,"a":2}"#))
        #expect(short.reason == "body is not JSON (duplicate key \"a\")", "\(short.reason ?? "nil")")
    }

    // MARK: - Envelope

    static let envelope: [Bad] = [
        Bad("eventType missing", C.with("eventType", nil), "eventType"),
        Bad("eventType null", C.with("eventType", "null"), "eventType"),
        Bad("eventType number", C.with("eventType", "5"), "eventType"),
        Bad("version missing", C.with("version", nil), "version"),
        Bad("version null", C.with("version", "null"), "version"),
        Bad("version 2", C.with("version", "2"), "version"),
        Bad("version string", C.with("version", q("1")), "version"),
        Bad("version 1.0", C.with("version", "1.0"), "version"),
        Bad("version 1e0", C.with("version", "1e0"), "version"),
        Bad("version true", C.with("version", "true"), "version"),
        Bad("occurredAt missing", C.with("occurredAt", nil), "occurredAt"),
        Bad("occurredAt null", C.with("occurredAt", "null"), "occurredAt"),
        Bad("occurredAt number", C.with("occurredAt", "1772449200000"), "occurredAt"),
        Bad("occurredAt space", C.with("occurredAt", q("2026-03-02 11:00:00Z")), "occurredAt"),
        Bad("occurredAt second 60", C.with("occurredAt", q("2026-03-02T11:00:60Z")), "occurredAt"),
        Bad("occurredAt 10 fraction digits", C.with("occurredAt", q("2026-03-02T11:00:00.1234567890Z")), "occurredAt"),
        Bad("occurredAt no zone", C.with("occurredAt", q("2026-03-02T11:00:00")), "occurredAt"),
        Bad("occurredAt date only", C.with("occurredAt", q("2026-03-02")), "occurredAt"),
        Bad("publisherId empty", C.with("publisherId", q("")), "publisherId"),
        Bad("publisherId number", C.with("publisherId", "7"), "publisherId"),
        Bad("publisherId 65 chars", C.with("publisherId", q(String(repeating: "p", count: 65))), "publisherId"),
        Bad("sequenceNumber 0", C.with("sequenceNumber", "0"), "sequenceNumber"),
        Bad("sequenceNumber negative", C.with("sequenceNumber", "-3"), "sequenceNumber"),
        Bad("sequenceNumber fraction", C.with("sequenceNumber", "3.5"), "sequenceNumber"),
        Bad("sequenceNumber string", C.with("sequenceNumber", q("3")), "sequenceNumber"),
        Bad("sequenceNumber 2^53", C.with("sequenceNumber", "9007199254740992"), "sequenceNumber"),
        Bad("personReference missing", C.with("personReference", nil), "personReference"),
        Bad("personReference array", C.with("personReference", "[]"), "personReference"),
        Bad("personReference string", C.with("personReference", q("X100001")), "personReference"),
        Bad("identifiers missing", C.with("personReference", "{}"), "personReference.identifiers"),
        Bad("identifiers object", C.with("personReference", #"{"identifiers":{"type":"CRN","value":"X100001"}}"#), "personReference.identifiers"),
        Bad("identifiers null", C.with("personReference", #"{"identifiers":null}"#), "personReference.identifiers"),
        Bad("no CRN (empty)", C.with("personReference", #"{"identifiers":[]}"#), "personReference.identifiers"),
        Bad("no CRN (other types)", C.with("personReference", #"{"identifiers":[{"type":"PNC","value":"2001/1234A"}]}"#), "personReference.identifiers"),
        Bad("two CRNs", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001"},{"type":"CRN","value":"X100001"}]}"#), "personReference.identifiers"),
        Bad("entry not object", C.with("personReference", #"{"identifiers":["X100001"]}"#), "personReference.identifiers[0]"),
        Bad("second entry not object", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001"},5]}"#), "personReference.identifiers[1]"),
        Bad("entry type missing", C.with("personReference", #"{"identifiers":[{"value":"X100001"}]}"#), "personReference.identifiers[0].type"),
        Bad("entry type number", C.with("personReference", #"{"identifiers":[{"type":1,"value":"X100001"}]}"#), "personReference.identifiers[0].type"),
        Bad("entry type null", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001"},{"type":null}]}"#), "personReference.identifiers[1].type"),
        Bad("CRN lower case", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":"x100001"}]}"#), "personReference.identifiers[0].value"),
        Bad("CRN short", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":"X10000"}]}"#), "personReference.identifiers[0].value"),
        Bad("CRN long", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":"X1000011"}]}"#), "personReference.identifiers[0].value"),
        Bad("CRN number", C.with("personReference", #"{"identifiers":[{"type":"CRN","value":100001}]}"#), "personReference.identifiers[0].value"),
        Bad("CRN missing value", C.with("personReference", #"{"identifiers":[{"type":"CRN"}]}"#), "personReference.identifiers[0].value"),
        Bad("CRN second entry bad", C.with("personReference", #"{"identifiers":[{"type":"PNC","value":5},{"type":"CRN","value":"XX00001"}]}"#), "personReference.identifiers[1].value"),
        Bad("additionalInformation missing", C.with("additionalInformation", nil).with("additionalInformation", nil), "additionalInformation"),
        Bad("additionalInformation array", C.with("additionalInformation", "[]"), "additionalInformation"),
        Bad("additionalInformation null", C.with("additionalInformation", "null"), "additionalInformation"),
    ]

    @Test("envelope fields", arguments: envelope)
    func envelopeFields(_ c: Bad) throws {
        let n = try #require(notice(c.body))
        #expect(n.field == c.field)
        #expect(n.noticeTopic == contactTopic)
    }

    @Test("additionalInformation absent when its member is removed")
    func infoMissing() throws {
        var r = C
        r.env.append(("additionalInformation", nil))
        let n = try #require(notice(r.text))
        #expect(n.field == "additionalInformation")
    }

    // MARK: - Contact fields

    static let contactFields: [Bad] = [
        Bad("contactId missing", C.info("contactId", nil), ai + "contactId"),
        Bad("contactId null", C.info("contactId", "null"), ai + "contactId"),
        Bad("contactId 0", C.info("contactId", "0"), ai + "contactId"),
        Bad("contactId -1", C.info("contactId", "-1"), ai + "contactId"),
        Bad("contactId -0", C.info("contactId", "-0"), ai + "contactId"),
        Bad("contactId 1.0", C.info("contactId", "1.0"), ai + "contactId"),
        Bad("contactId 1e3", C.info("contactId", "1e3"), ai + "contactId"),
        Bad("contactId 1E3", C.info("contactId", "1E3"), ai + "contactId"),
        Bad("contactId string", C.info("contactId", q("1")), ai + "contactId"),
        Bad("contactId 2^53", C.info("contactId", "9007199254740992"), ai + "contactId"),
        Bad("contactId 20 digits", C.info("contactId", "12345678901234567890"), ai + "contactId"),
        Bad("contactVersion 0", C.info("contactVersion", "0"), ai + "contactVersion"),
        Bad("contactVersion 2.0", C.info("contactVersion", "2.0"), ai + "contactVersion"),
        Bad("contactVersion string", C.info("contactVersion", q("2")), ai + "contactVersion"),
        Bad("contactStart missing", C.info("contactStart", nil), ai + "contactStart"),
        Bad("contactStart bad", C.info("contactStart", q("2026-03-02T10:00:00+0100")), ai + "contactStart"),
        Bad("contactType number", C.info("contactType", "5"), ai + "contactType"),
        Bad("contactType unknown without mode", C.info("contactType", q("XXXX")), ai + "contactType"),
        Bad("neither type nor mode", C.info("contactType", nil), ai + "contactType"),
        Bad("type and mode null", C.info("contactType", "null").info("contactMode", "null"), ai + "contactType"),
        Bad("contactMode unknown", C.info("contactMode", q("PHONE")), ai + "contactMode"),
        Bad("contactMode lower case", C.info("contactMode", q("office")), ai + "contactMode"),
        Bad("contactMode number", C.info("contactMode", "1"), ai + "contactMode"),
        Bad("contactMode unknown, type unknown", C.info("contactType", q("XXXX")).info("contactMode", q("PHONE")), ai + "contactMode"),
        Bad("outcome string", C.info("outcome", q("UAAB")), ai + "outcome"),
        Bad("outcome array", C.info("outcome", "[]"), ai + "outcome"),
        Bad("outcome.code missing", C.info("outcome", "{}"), ai + "outcome.code"),
        Bad("outcome.code number", C.info("outcome", #"{"code":1}"#), ai + "outcome.code"),
        Bad("unknown code, no flags", C.info("outcome", #"{"code":"ZZZZ"}"#), ai + "outcome.code"),
        Bad("unknown code, two flags", C.info("outcome", #"{"code":"ZZZZ","attended":true,"complied":false}"#), ai + "outcome.code"),
        Bad("unknown code, flag null", C.info("outcome", #"{"code":"ZZZZ","attended":true,"complied":false,"enforceable":null}"#), ai + "outcome.code"),
        Bad("unknown code, two flags, one mistyped", C.info("outcome", #"{"code":"ZZZZ","attended":"yes","complied":false}"#), ai + "outcome.code"),
        Bad("unknown code, three flags, attended string", C.info("outcome", #"{"code":"ZZZZ","attended":"true","complied":false,"enforceable":true}"#), ai + "outcome.attended"),
        Bad("known code, attended string", C.info("outcome", #"{"code":"UAAB","attended":"true"}"#), ai + "outcome.attended"),
        Bad("known code, complied number", C.info("outcome", #"{"code":"UAAB","complied":0}"#), ai + "outcome.complied"),
        Bad("known code, enforceable string", C.info("outcome", #"{"code":"UAAB","enforceable":"false"}"#), ai + "outcome.enforceable"),
        Bad("flags order", C.info("outcome", #"{"code":"UAAB","enforceable":1,"complied":1}"#), ai + "outcome.complied"),
        Bad("enforcementAction string", C.info("enforcementAction", q("EA02")), ai + "enforcementAction"),
        Bad("enforcementAction.code missing", C.info("enforcementAction", #"{"actionAt":"2026-03-02T10:00:00Z"}"#), ai + "enforcementAction.code"),
        Bad("enforcementAction.code number", C.info("enforcementAction", #"{"code":2}"#), ai + "enforcementAction.code"),
        Bad("enforcementAction.actionAt bad", C.info("enforcementAction", #"{"code":"EA02","actionAt":"yesterday"}"#), ai + "enforcementAction.actionAt"),
        Bad("interviewSetting unknown", C.info("interviewSetting", q("BOOTH")), ai + "interviewSetting"),
        Bad("interviewSetting number", C.info("interviewSetting", "2"), ai + "interviewSetting"),
        Bad("sensitive string", C.info("sensitive", q("true")), ai + "sensitive"),
        Bad("sensitive number", C.info("sensitive", "1"), ai + "sensitive"),
        Bad("sentenceType unknown", C.info("sentenceType", q("LIFE")), ai + "sentenceType"),
        Bad("pduCode number", C.info("pduCode", "5"), ai + "pduCode"),
        Bad("teamCode bool", C.info("teamCode", "true"), ai + "teamCode"),
        Bad("staffCode array", C.info("staffCode", "[]"), ai + "staffCode"),
        Bad("officeLocationCode object", C.info("officeLocationCode", "{}"), ai + "officeLocationCode"),
    ]

    @Test("contact fields", arguments: contactFields)
    func contactFieldCases(_ c: Bad) throws {
        let n = try #require(notice(c.body))
        #expect(n.field == c.field)
    }

    /// A contact with neither contactType nor contactMode (absent, or both null) is refused at contactType with its
    /// own reason (`contactFieldCases` checks the field only; the reason was asserted nowhere: a mutation tester,
    /// session 51).
    @Test("neither contactType nor contactMode: refused at contactType with that reason")
    func neitherTypeNorMode() throws {
        for body in [C.info("contactType", nil).text, C.info("contactType", "null").info("contactMode", "null").text] {
            let n = try #require(notice(body))
            #expect(n.field == ai + "contactType")
            #expect(n.reason == "neither contactType nor contactMode is given", "\(n.reason ?? "nil")")
        }
    }

    // MARK: - Order

    static let order: [Bad] = [
        Bad("version before occurredAt", C.with("version", "2").with("occurredAt", "1"), "version"),
        Bad("occurredAt before publisherId", C.with("occurredAt", "1").with("publisherId", "1"), "occurredAt"),
        Bad("publisherId before sequenceNumber", C.with("publisherId", "1").with("sequenceNumber", "0"), "publisherId"),
        Bad("sequenceNumber before personReference", C.with("sequenceNumber", "0").with("personReference", nil), "sequenceNumber"),
        Bad("personReference before additionalInformation", C.with("personReference", nil).with("additionalInformation", "1"), "personReference"),
        Bad("envelope before info", C.with("version", "2").info("contactId", nil), "version"),
        Bad("contactId before contactVersion", C.info("contactId", "0").info("contactVersion", "0"), ai + "contactId"),
        Bad("contactVersion before contactStart", C.info("contactVersion", "0").info("contactStart", nil), ai + "contactVersion"),
        Bad("contactStart before contactType", C.info("contactStart", nil).info("contactType", nil), ai + "contactStart"),
        Bad("contactType before contactMode", C.info("contactType", "1").info("contactMode", "1"), ai + "contactType"),
        Bad("contactMode before outcome", C.info("contactMode", "1").info("outcome", "1"), ai + "contactMode"),
        Bad("outcome before enforcementAction", C.info("outcome", #"{"code":"ZZZZ"}"#).info("enforcementAction", "1"), ai + "outcome.code"),
        Bad("enforcementAction before interviewSetting", C.info("enforcementAction", "{}").info("interviewSetting", "1"), ai + "enforcementAction.code"),
        Bad("interviewSetting before sensitive", C.info("interviewSetting", "1").info("sensitive", "1"), ai + "interviewSetting"),
        Bad("sensitive before sentenceType", C.info("sensitive", "1").info("sentenceType", "1"), ai + "sensitive"),
        Bad("sentenceType before pduCode", C.info("sentenceType", "1").info("pduCode", "1"), ai + "sentenceType"),
        Bad("pduCode before teamCode", C.info("pduCode", "1").info("teamCode", "1"), ai + "pduCode"),
        Bad("teamCode before staffCode", C.info("teamCode", "1").info("staffCode", "1"), ai + "teamCode"),
        Bad("staffCode before officeLocationCode", C.info("staffCode", "1").info("officeLocationCode", "1"), ai + "staffCode"),
        Bad("field rules before outcome-before-start",
            C.info("contactStart", q("2026-03-03T10:00:00Z")).info("pduCode", "1"), ai + "pduCode"),
        Bad("outcome-before-start before future skew",
            C.with("occurredAt", q("2027-03-02T11:00:00Z")).info("contactStart", q("2027-03-03T10:00:00Z")), ai + "outcome"),
        Bad("field rules before future skew", C.with("occurredAt", q("2027-03-02T11:00:00Z")).info("sensitive", "0"), ai + "sensitive"),
    ]

    @Test("checks run in order; the first failure is reported", arguments: order)
    func orderCases(_ c: Bad) throws {
        let n = try #require(notice(c.body))
        #expect(n.field == c.field)
    }

    // MARK: - Valid variants

    static let valid: [(String, RawEvent)] = [
        ("null publisherId and sequenceNumber", C.with("publisherId", "null").with("sequenceNumber", "null")),
        ("unknown fields everywhere", C.with("extra", #"{"a":[1,2,{"b":null}]}"#).info("extra", "1.5e300")
            .with("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001","x":1}],"y":2}"#)),
        ("contactVersion null = default", C.info("contactVersion", "null")),
        ("contactId 2^53-1", C.info("contactId", "9007199254740991")),
        ("unknown contactType with contactMode", C.info("contactType", q("XXXX")).info("contactMode", q("TELEPHONE"))),
        ("mode only", C.info("contactType", nil).info("contactMode", q("OFFICE"))),
        ("type null, mode given", C.info("contactType", "null").info("contactMode", q("OFFICE"))),
        ("unknown outcome code with three flags", C.info("outcome", #"{"code":"ZZZZ","attended":false,"complied":false,"enforceable":true}"#)),
        ("outcome null", C.info("outcome", "null")),
        ("actionAt null", C.info("enforcementAction", #"{"code":"EA02","actionAt":null}"#)),
        ("unknown action code", C.info("enforcementAction", #"{"code":"WHATEVER"}"#)),
        ("other identifier types' values unchecked", C.with("personReference", #"{"identifiers":[{"type":"PNC","value":null},{"type":"CRN","value":"X100001"},{"type":"NOMS","value":[1]}]}"#)),
        ("escaped keys and values", C.with("version", "1").info("contactType", #""\u0043OAP""#)),
        ("lower-case t and z", C.with("occurredAt", q("2026-03-02t11:00:00z"))),
        ("whitespace around", C.with("version", " 1 ")),
        ("30 distinct keys", C.info("outcome", "{" + (0..<29).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"code\":\"UAAB\"}")),
        ("sensitive false", C.info("sensitive", "false")),
        ("publisherId of 64", C.with("publisherId", q(String(repeating: "p", count: 64))).with("sequenceNumber", "1")),
        ("sequenceNumber 2^53-1", C.with("publisherId", q("p")).with("sequenceNumber", "9007199254740991")),
    ]

    @Test("valid variants raise the alert they should", arguments: valid.map(\.0))
    func validVariants(name: String) {
        let r = Self.valid.first { $0.0 == name }!.1
        let h = Harness()
        let out = h.send(r.text, topic: contactTopic)
        #expect(!out.contains { $0.topic == "invalid-event" }, "\(out)")
        if !name.contains("outcome null") {
            #expect(out.contains { $0.rule == R.warningDue })
        }
    }

    @Test("member names are compared after unescaping")
    func escapedNames() {
        let text = C.text.replacingOccurrences(of: #""version":1"#, with: #""\u0076ersion":1"#)
            .replacingOccurrences(of: #""contactId":1"#, with: #""contact\u0049d":1"#)
        #expect(text.contains(#"\u0076ersion"#) && text.contains(#"contact\u0049d"#))
        #expect(Harness().send(text).map(\.rule) == [R.warningDue])
    }

    @Test("contactMode wins over contactType")
    func modeWins() {
        let h = Harness()
        h.send(contact(id: 1, start: t("2026-03-02 10:00"), type: "COAP", mode: "TELEPHONE", outcome: "ATTC"))
        h.send(contact(id: 2, start: t("2026-04-02 10:00"), type: "COAP", mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.telephoneOnly).count == 1)
    }

    // MARK: - Registration fields

    static let registrationCases: [Bad] = [
        Bad("registerTypeCode missing", RawEvent.registration().info("registerTypeCode", nil), ai + "registerTypeCode"),
        Bad("registerTypeCode number", RawEvent.registration().info("registerTypeCode", "1"), ai + "registerTypeCode"),
        Bad("registerLevelCode number", RawEvent.registration().info("registerLevelCode", "2"), ai + "registerLevelCode"),
        Bad("type before level", RawEvent.registration("deleted").info("registerTypeCode", "1").info("registerLevelCode", "2"), ai + "registerTypeCode"),
        Bad("envelope", RawEvent.registration("updated").with("version", "3"), "version"),
        Bad("future skew", RawEvent.registration("deregistered").with("occurredAt", q("2027-01-01T00:00:00Z")), "occurredAt"),
        // events.md: "for MAPP: M1, M2 or M3" (a bug hunter, session 46: other levels were taken, the case losing
        // R3's protection in silence).
        Bad("MAPP level m2", RawEvent.registration().info("registerTypeCode", q("MAPP")).info("registerLevelCode", q("m2")), ai + "registerLevelCode"),
        Bad("MAPP level M4", RawEvent.registration("updated").info("registerTypeCode", q("MAPP")).info("registerLevelCode", q("M4")), ai + "registerLevelCode"),
        Bad("MAPP level 2", RawEvent.registration().info("registerTypeCode", q("MAPP")).info("registerLevelCode", q("2")), ai + "registerLevelCode"),
        Bad("MAPP level with a space", RawEvent.registration().info("registerTypeCode", q("MAPP")).info("registerLevelCode", q(" M2")), ai + "registerLevelCode"),
        Bad("MAPP level empty", RawEvent.registration("deregistered").info("registerTypeCode", q("MAPP")).info("registerLevelCode", q("")), ai + "registerLevelCode"),
    ]

    @Test("a MAPP level M1, M2 or M3 (escaped or not), a MAPP without a level, and any level of another register are valid")
    func registrationLevelsTaken() {
        for (code, level) in [("MAPP", q("M1")), ("MAPP", q("M3")), ("MAPP", #""\u004d2""#), ("MAPP", nil), ("RHRH", q("X")),
                              ("mapp", q("m2"))] {
            let h = Harness()
            let body = RawEvent.registration().info("registerTypeCode", q(code)).info("registerLevelCode", level).text
            #expect(h.send(body).isEmpty, "\(code) \(level ?? "-")")
        }
        // M2 is the level R3 knows: a telephone contact of that case is excluded.
        let h = Harness()
        h.send(RawEvent.registration().info("registerTypeCode", q("MAPP")).info("registerLevelCode", #""\u004d2""#).text)
        h.send(contact(id: 1, start: t("2026-03-02 10:00"), type: "COPT", mode: nil, outcome: "ATTC"))
        #expect(h.alerts.map(\.topic) == ["alert.raised.remote-contact.excluded-case"])
    }

    @Test("registration fields", arguments: registrationCases)
    func registration(_ c: Bad) throws {
        let h = Harness()
        let topic = (jsonObject(c.body)?["eventType"] as? String)!
        let n = try #require(notice(c.body, topic: topic, harness: h))
        #expect(n.field == c.field)
        #expect(n.noticeTopic == topic)
        #expect(h.send(RawEvent.registration().info("registerLevelCode", "null").text).isEmpty)
    }

    // MARK: - Cross-field rules

    @Test("an outcome more than 5 minutes before contactStart is invalid; exactly 5 minutes is valid", arguments: [
        ("2026-03-02T11:05:00Z", false), ("2026-03-02T11:05:00.001Z", true), ("2026-03-02T11:05:00.0009Z", false),
    ])
    func outcomeBeforeStart(start: String, invalid: Bool) {
        let body = C.info("contactStart", q(start)).text
        let h = Harness()
        let out = h.send(body)
        #expect(out.map(\.topic) == [invalid ? "invalid-event" : "alert.raised.non-compliance.warning-due"])
        if invalid { #expect(out.first?.field == ai + "outcome") }
        // Without an outcome a future start is a planned contact.
        #expect(Harness().send(C.info("contactStart", q("2026-04-02T10:00:00Z")).info("outcome", nil).text).isEmpty)
    }

    @Test("future skew: more than maxFutureSkewSeconds after the given wall clock", arguments: [(0 as Millis, false), (1, true)])
    func futureSkew(extra: Millis, invalid: Bool) {
        let now = t("2026-03-01 11:00")
        let h = Harness()
        h.now = now
        let out = h.send(C.with("occurredAt", q(iso(now + 86_400_000 + extra))).info("contactStart", q(iso(now))).text)
        #expect(out.map(\.topic) == [invalid ? "invalid-event" : "alert.raised.non-compliance.warning-due"])
        if invalid { #expect(out.first?.field == "occurredAt") }
        // The setting is used.
        let h2 = Harness { $0.maxFutureSkewSeconds = 0 }
        h2.now = now
        #expect(h2.send(contact(id: 1, start: now - hour, at: now + 1, outcome: "UAAB")).first?.field == "occurredAt")
        #expect(h2.send(contact(id: 1, start: now - hour, at: now, outcome: "UAAB")).first?.rule == R.warningDue)
    }

    @Test("a contactId under another CRN is invalid at personReference.identifiers, before the cross-field rules")
    func otherCRN() {
        let h = Harness()
        let mon = t("2026-03-02 10:00")
        h.send(contact("X100001", id: 1, start: mon, outcome: "ATTC"))
        let out = h.send(contact("X100002", id: 1, v: 2, start: mon, outcome: "UAAB"))
        #expect(out.map(\.field) == ["personReference.identifiers"])
        // Also for what would be a duplicate, and ahead of outcome-before-start and future skew.
        #expect(h.send(contact("X100002", id: 1, start: mon, outcome: "ATTC")).map(\.field) == ["personReference.identifiers"])
        #expect(h.send(contact("X100002", id: 1, v: 3, start: t("2027-01-01 10:00"), at: t("2026-12-30 10:00"), outcome: "ATTC")).map(\.field)
            == ["personReference.identifiers"])
        // Its own CRN is fine.
        #expect(h.send(contact("X100001", id: 1, v: 2, start: mon, outcome: "UAAB")).map(\.rule) == [R.warningDue])
    }

    @Test("an invalid first arrival does not claim the contactId and changes no state")
    func invalidNoState() {
        let h = Harness()
        let mon = t("2026-03-02 10:00")
        // Invalid: pduCode is a number.
        h.send(C.info("pduCode", "5").text)
        #expect(h.engine.state.watermark == .min)
        #expect(h.engine.state.contacts.isEmpty)
        // contactId 1 is free for another CRN and version 1 is not a duplicate.
        #expect(h.send(contact("X100002", id: 1, start: mon, outcome: "UAAB")).map(\.rule) == [R.warningDue])
    }

    // MARK: - Frames, UTF-8, JSON

    static let jsonProblems: [Bad] = [
        Bad("byte-order mark", text: "\u{FEFF}" + C.text, nil),
        Bad("NaN", text: C.info("sensitive", "NaN").text, nil),
        Bad("Infinity", text: C.info("contactId", "Infinity").text, nil),
        Bad("-Infinity", text: C.info("contactId", "-Infinity").text, nil),
        Bad("duplicate key (top level)", text: C.with("version", "1").text.replacingOccurrences(of: "\"version\":1", with: "\"version\":1,\"version\":1"), nil),
        Bad("duplicate key (nested)", text: C.info("outcome", #"{"code":"UAAB","code":"ATTC"}"#).text, nil),
        Bad("duplicate key via escape", text: C.info("outcome", #"{"code":"UAAB","\u0063ode":"ATTC"}"#).text, nil),
        Bad("duplicate key in identifiers entry", text: C.with("personReference", #"{"identifiers":[{"type":"CRN","type":"CRN","value":"X100001"}]}"#).text, nil),
        Bad("trailing comma", text: C.text.dropLast() + ",}", nil),
        Bad("single quotes", text: "{'eventType':'probation-case.contact.recorded'}", nil),
        Bad("leading zero", text: C.info("contactId", "01").text, nil),
        Bad("empty body", text: "", nil),
        Bad("whitespace only", text: "  \n", nil),
        Bad("two values", text: C.text + " {}", nil),
        Bad("truncated", text: String(C.text.dropLast(3)), nil),
        Bad("array", text: "[" + C.text + "]", nil),
        Bad("string", text: q(contactTopic), nil),
        Bad("number", text: "1", nil),
        Bad("null", text: "null", nil),
        Bad("duplicate key among 30", text: C.info("outcome", "{" + (0..<29).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k7\":1,\"code\":\"UAAB\"}").text, nil),
        Bad("unescaped control character", text: C.info("pduCode", "\"a\u{01}b\"").text, nil),
    ]

    @Test("UTF-8 and JSON problems: field null", arguments: jsonProblems)
    func jsonProblemCases(_ c: Bad) throws {
        let n = try #require(notice(c.body))
        #expect(n.fieldIsNull)
        #expect(n.noticeTopic == contactTopic)
        if c.body.hasPrefix("\u{FEFF}") {
            // Foundation's JSON reader drops a leading U+FEFF inside strings: look at the raw notice instead.
            #expect(n.body.contains("\"payload\":\"\u{FEFF}{"))
        } else {
            #expect(n.payload == c.body)
        }
    }

    @Test("a body that is not UTF-8: field null, invalid bytes replaced in the payload", arguments: [
        [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80],
    ] as [[UInt8]])
    func notUTF8(bad: [UInt8]) throws {
        let h = Harness()
        let body = Array(#"{"eventType":"probation-case.contact.recorded","pduCode":""#.utf8) + bad + Array(#""}"#.utf8)
        let out = h.sendBytes(frames: 2, topic: Array(contactTopic.utf8), body: body)
        let n = try #require(out.first)
        #expect(out.count == 1 && n.topic == "invalid-event")
        #expect(n.fieldIsNull)
        #expect(n.payload == String(decoding: body, as: UTF8.self))
        #expect(n.payload?.contains("\u{FFFD}") == true)
    }

    @Test("three or more frames: field null, topic = the first frame, nothing else checked", arguments: [3, 4])
    func frames(count: Int) throws {
        let h = Harness()
        let out = h.sendBytes(frames: count, topic: Array("some-topic".utf8), body: Array(C.text.utf8))
        let n = try #require(out.first)
        #expect(out.count == 1 && n.topic == "invalid-event")
        #expect(n.fieldIsNull)
        #expect(n.noticeTopic == "some-topic")
        #expect(n.payload == C.text)
        #expect(h.engine.state.watermark == .min)
    }

    @Test("topic mismatch: field eventType, notice topic = the first frame")
    func topicMismatch() throws {
        let n = try #require(notice(C.text, topic: "probation-case.registration.added"))
        #expect(n.field == "eventType")
        #expect(n.noticeTopic == "probation-case.registration.added")
        // A topic that is a prefix of eventType is still a mismatch.
        #expect(notice(C.text, topic: "probation-case.contact")?.field == "eventType")
    }

    @Test("one-frame messages: the topic is the body's eventType; the notice topic is that eventType, else null")
    func oneFrame() throws {
        let h = Harness()
        let mon = t("2026-03-02 10:00")
        #expect(h.sendBytes(frames: 1, topic: nil, body: Array(contact(id: 1, start: mon, outcome: "UAAB").utf8)).map(\.rule) == [R.warningDue])
        let n = try #require(h.sendBytes(frames: 1, topic: nil, body: Array(C.with("version", "2").text.utf8)).first)
        #expect(n.field == "version" && n.noticeTopic == contactTopic)
        let m = try #require(h.sendBytes(frames: 1, topic: nil, body: Array(C.with("eventType", "7").text.utf8)).first)
        #expect(m.field == "eventType" && m.noticeTopicIsNull)
        let j = try #require(h.sendBytes(frames: 1, topic: nil, body: Array("nope".utf8)).first)
        #expect(j.fieldIsNull && j.noticeTopicIsNull)
        let a = try #require(h.sendBytes(frames: 1, topic: nil, body: Array("[1]".utf8)).first)
        #expect(a.fieldIsNull && a.noticeTopicIsNull)
        let e = try #require(h.sendBytes(frames: 1, topic: nil, body: Array("{}".utf8)).first)
        #expect(e.field == "eventType" && e.noticeTopicIsNull)
    }

    @Test("the notice: exactly its fields, detectedAt from the given clock")
    func noticeShape() throws {
        let h = Harness()
        h.now = t("2026-05-05T05:05:05.5Z")
        let n = try #require(notice(C.with("version", "2").text, harness: h))
        #expect(keys(n.json) == ["detectedAt", "eventType", "field", "payload", "reason", "topic"])
        #expect(n.json["eventType"] as? String == "contactwatch.invalid-event")
        #expect(n.json["detectedAt"] as? String == "2026-05-05T05:05:05.500Z")
        #expect(n.reason?.isEmpty == false)
    }

    @Test("payload: cut to 4096 bytes on a character boundary, after replacing invalid UTF-8")
    func payloadCut() throws {
        let h = Harness()
        let long = "{" + String(repeating: "a", count: 5000)
        let n1 = try #require(notice(long, harness: h))
        #expect(n1.payload == String(long.prefix(4096)))
        // é (2 bytes) straddles byte 4096: cut before it.
        let straddle = "{" + String(repeating: "a", count: 4094) + "é" + "zzz"
        #expect(notice(straddle, harness: h)?.payload == "{" + String(repeating: "a", count: 4094))
        // Exactly 4096 bytes with a 4-byte character at the end: kept whole.
        let exact = "{" + String(repeating: "a", count: 4091) + "😀"
        #expect(Array(exact.utf8).count == 4096)
        #expect(notice(exact, harness: h)?.payload == exact)
        // An invalid byte at position 4095 becomes U+FFFD (3 bytes), which no longer fits.
        let body = Array(("{" + String(repeating: "a", count: 4094)).utf8) + [0xFF]
        let out = h.sendBytes(frames: 2, topic: Array(contactTopic.utf8), body: body)
        #expect(out.first?.payload == "{" + String(repeating: "a", count: 4094))
        // The topic of a two-frame message is reported as given.
        #expect(Array((out.first?.payload ?? "").utf8).count <= 4096)
    }

    // MARK: - Ignored types

    @Test("invalid identifiers at 300 different indices: each notice names its index, the count by reason keeps one key per path")
    func invalidReasonsWithoutIndices() {
        let h = Harness()
        for k in 0..<300 {
            // k good-looking entries without a CRN, then one whose type is missing: the problem is at index k.
            let entries = Array(repeating: #"{"type":"PNC","value":"1"}"#, count: k) + [#"{"value":"X100001"}"#]
            let body = RawEvent.contact().with("personReference", #"{"identifiers":["# + entries.joined(separator: ",") + "]}").text
            #expect(h.send(body).first?.field == "personReference.identifiers[\(k)].type")
        }
        let bad = RawEvent.contact().with("personReference", #"{"identifiers":[{"type":"CRN","value":"X100001"},5]}"#).text
        #expect(h.send(bad).first?.field == "personReference.identifiers[1]")
        #expect(h.engine.counters.invalid == 301)
        #expect(h.engine.counters.invalidByField == ["personReference.identifiers[].type": 300, "personReference.identifiers[]": 1],
                "\(h.engine.counters.invalidByField.count) reasons: \(h.engine.counters.invalidByField.keys.sorted().prefix(5))")
        #expect(Engine.withoutIndices("additionalInformation.outcome.code") == "additionalInformation.outcome.code")
        #expect(Engine.withoutIndices("a[12].b[3][4]") == "a[].b[][]")
    }

    @Test("an unlisted eventType is ignored: no notice, nothing else checked, W not moved")
    func ignored() {
        let h = Harness()
        let mon = t("2026-03-02 10:00")
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        let bodies = [
            #"{"eventType":"probation-case.contact.deleted","version":"x","occurredAt":"2026-03-20T10:00:00Z"}"#,
            #"{"eventType":"probation-case.registration.added.v2","occurredAt":"2026-03-20T10:00:00Z","personReference":1}"#,
            #"{"eventType":"","occurredAt":"2026-03-20T10:00:00Z"}"#,
        ]
        for b in bodies { #expect(h.send(b).isEmpty) }
        #expect(h.engine.counters.ignored == 3)
        #expect(h.engine.state.watermark == mon + hour)
        // One frame too.
        #expect(h.sendBytes(frames: 1, topic: nil, body: Array(bodies[0].utf8)).isEmpty)
        // Only when the topic matches.
        #expect(h.send(bodies[0], topic: "probation-case.contact.recorded").first?.field == "eventType")
        // W had not moved: the next event that moves it past the deadline raises R6 now.
        #expect(h.send(tick(t("2026-03-13 10:00"))).map(\.rule) == [R.overdue])
    }

    @Test("the eventType match is exact (case-sensitive) for listed types")
    func caseSensitive() {
        let h = Harness()
        let body = C.with("eventType", q("Probation-Case.Contact.Recorded")).text
        #expect(h.send(body).isEmpty)
        #expect(h.engine.counters.ignored == 1)
    }

    /// The longest span of N calendar months that `input.contactRetentionDays` must cover (the daemon's configuration
    /// refuses less), against every date of a 400-year cycle stepped back by `LocalDate.subtracting(months:)`.
    @Test("the longest span of N calendar months is what subtracting N months from every date of a 400-year cycle gives", arguments: [1, 2, 11, 12, 13, 24, 1200])
    func longestSpanOfMonths(_ months: Int) {
        let first = LocalDate(year: 2000, month: 1, day: 1)!.days
        var longest: Int32 = 0
        for d in first..<(first + 146_097) { longest = max(longest, d - LocalDate(days: d).subtracting(months: months).days) }
        #expect(EngineSettings.longestSpanDays(months: months) == Int(longest))
    }
}
