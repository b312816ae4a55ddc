import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

// Small helpers for the rule, validation and property tests: event builders, a harness that feeds an engine
// and parses what it publishes, and time arithmetic.

// MARK: - Time

let minute: Millis = 60_000
let hour: Millis = 3_600_000
let day: Millis = millisPerDay

/// An instant from "YYYY-MM-DD HH:MM" (UTC) or any RFC 3339 text.
func t(_ s: String) -> Millis {
    if let v = RFC3339.parse(s) { return v }
    let text = s.replacingOccurrences(of: " ", with: "T") + (s.count == 16 ? ":00Z" : "Z")
    guard let v = RFC3339.parse(text) else { fatalError("bad test time \(s)") }
    return v
}

/// The output form of an instant.
func iso(_ m: Millis) -> String { RFC3339.format(m) }

// MARK: - JSON text

/// A JSON string literal for `s`.
func q(_ s: String) -> String {
    var out: [UInt8] = []
    JSONOut.string(&out, s)
    return String(decoding: out, as: UTF8.self)
}

/// A JSON object from members given as raw JSON text (nil values are left out).
func obj(_ members: [(String, String?)]) -> String {
    "{" + members.compactMap { k, v in v.map { "\(q(k)):\($0)" } }.joined(separator: ",") + "}"
}

let contactTopic = "probation-case.contact.recorded"

/// A contact.recorded event. Times are instants; `occurred` defaults to one hour after `start`.
func contact(_ crn: String = "X100001", id: UInt64, v: UInt64? = nil, start: Millis, at occurred: Millis? = nil,
             type: String? = nil, mode: String? = "OFFICE", outcome: String? = nil,
             flags: (attended: Bool, complied: Bool, enforceable: Bool)? = nil,
             action: String? = nil, actionAt: Millis? = nil, setting: String? = nil, sensitive: Bool? = nil,
             sentence: String? = nil, pdu: String? = nil, publisher: String? = nil, seq: UInt64? = nil) -> String {
    var outcomeText: String? = nil
    if let outcome {
        outcomeText = obj([("code", q(outcome)), ("attended", flags.map { "\($0.attended)" }),
                           ("complied", flags.map { "\($0.complied)" }), ("enforceable", flags.map { "\($0.enforceable)" })])
    }
    var actionText: String? = nil
    if let action { actionText = obj([("code", q(action)), ("actionAt", actionAt.map { q(iso($0)) })]) }
    let info = obj([
        ("contactId", "\(id)"), ("contactVersion", v.map { "\($0)" }), ("contactStart", q(iso(start))),
        ("contactType", type.map(q)), ("contactMode", mode.map(q)), ("outcome", outcomeText),
        ("enforcementAction", actionText), ("interviewSetting", setting.map(q)), ("sensitive", sensitive.map { "\($0)" }),
        ("sentenceType", sentence.map(q)), ("pduCode", pdu.map(q)),
    ])
    return envelope(contactTopic, at: occurred ?? start + hour, crn: crn, info: info, publisher: publisher, seq: seq)
}

/// A registration event (`kind`: added, updated, deregistered, deleted).
func reg(_ code: String, level: String? = nil, kind: String = "added", crn: String = "X100001", at: Millis,
         publisher: String? = nil, seq: UInt64? = nil) -> String {
    envelope("probation-case.registration.\(kind)", at: at, crn: crn,
             info: obj([("registerTypeCode", q(code)), ("registerLevelCode", level.map(q))]), publisher: publisher, seq: seq)
}

func envelope(_ type: String, at: Millis, crn: String, info: String, publisher: String? = nil, seq: UInt64? = nil) -> String {
    obj([("eventType", q(type)), ("version", "1"), ("occurredAt", q(iso(at))), ("publisherId", publisher.map(q)),
         ("sequenceNumber", seq.map { "\($0)" }),
         ("personReference", #"{"identifiers":[{"type":"CRN","value":"\#(crn)"}]}"#), ("additionalInformation", info)])
}

// MARK: - Messages

/// One published message, parsed.
struct Msg: CustomStringConvertible {
    let topic: String
    let body: String
    let json: [String: Any]

    init(topic: String, body: String) {
        self.topic = topic
        self.body = body
        let parsed = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        #expect(parsed != nil, "published body is not a JSON object: \(body)")
        json = parsed ?? [:]
    }

    var description: String { "\(topic) \(body)" }
    var isAlert: Bool { topic.hasPrefix("alert.") }
    var isRaise: Bool { topic.hasPrefix("alert.raised.") }
    var isResolve: Bool { topic.hasPrefix("alert.resolved.") }
    var rule: String? { json["rule"] as? String }
    var severity: String? { json["severity"] as? String }
    var alertId: String? { json["alertId"] as? String }
    var seq: Int? { json["alertSequence"] as? Int }
    var occurredAt: String? { json["occurredAt"] as? String }
    var evidence: [String: Any] { json["evidence"] as? [String: Any] ?? [:] }
    func ev(_ key: String) -> Any? { evidence[key] }
    var evInt: (String) -> Int? { { evidence[$0] as? Int } }
    var evString: (String) -> String? { { evidence[$0] as? String } }
    var categories: [String]? { evidence["categories"] as? [String] }
    var subjectValue: String? { (json["subject"] as? [String: Any])?["value"] as? String }
    var subjectType: String? { (json["subject"] as? [String: Any])?["type"] as? String }
    var resolution: String? { evidence["resolution"] as? String }
    var resolvedBy: Int? { evidence["resolvedByContactId"] as? Int }
    var triggerContactId: Int? { evidence["triggerContactId"] as? Int }
    var triggerContactVersion: Int? { evidence["triggerContactVersion"] as? Int }
    /// For invalid-event notices: the field (nil when JSON null), and whether the key is there at all.
    var field: String? { json["field"] as? String }
    var fieldIsNull: Bool { json["field"] is NSNull }
    var noticeTopic: String? { json["topic"] as? String }
    var noticeTopicIsNull: Bool { json["topic"] is NSNull }
    var payload: String? { json["payload"] as? String }
    var reason: String? { json["reason"] as? String }
    /// The body without detectedAt, for comparing runs.
    var withoutDetectedAt: NSDictionary {
        let m = NSMutableDictionary(dictionary: json)
        m.removeObject(forKey: "detectedAt")
        return m
    }
}

/// Feeds one engine and collects what it publishes.
final class Harness {
    let engine: Engine
    var now: Millis
    private(set) var all: [Msg] = []

    init(_ settings: EngineSettings = EngineSettings(), now: Millis = testNow) {
        engine = try! Engine(settings: settings)
        self.now = now
    }

    /// Wraps an existing engine (e.g. one resumed from another engine's state).
    init(engine: Engine, now: Millis = testNow) {
        self.engine = engine
        self.now = now
    }

    convenience init(_ configure: (inout EngineSettings) -> Void) {
        var s = EngineSettings()
        configure(&s)
        self.init(s)
    }

    /// Sends a body as a two-frame message whose topic is its eventType (read with JSONSerialization), else as a
    /// one-frame message; or with an explicit topic.
    @discardableResult
    func send(_ body: String, topic: String? = nil) -> [Msg] {
        var topicBytes: [UInt8]? = topic.map { Array($0.utf8) }
        if topicBytes == nil, let o = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any],
           let t = o["eventType"] as? String {
            topicBytes = Array(t.utf8)
        }
        return sendBytes(frames: topicBytes == nil ? 1 : 2, topic: topicBytes, body: Array(body.utf8))
    }

    /// Sends several bodies; returns everything they produced.
    @discardableResult
    func send(_ bodies: [String]) -> [Msg] { bodies.flatMap { send($0) } }

    /// Sends raw frames: `topic` is the first frame (when frames >= 2), `body` the last.
    @discardableResult
    func sendBytes(frames: Int, topic: [UInt8]?, body: [UInt8]) -> [Msg] {
        var out = Outbox()
        body.withUnsafeBytes { b in
            if let topic, frames >= 2 {
                topic.withUnsafeBytes { tp in engine.process(frameCount: frames, topic: tp, body: b, now: now, into: &out) }
            } else {
                engine.process(frameCount: frames, topic: nil, body: b, now: now, into: &out)
            }
        }
        let msgs = out.messages.map { Msg(topic: $0.topic, body: $0.body) }
        all += msgs
        return msgs
    }

    var alerts: [Msg] { all.filter(\.isAlert) }
    func raised(_ rule: String) -> [Msg] { all.filter { $0.isRaise && $0.rule == rule } }
    func resolved(_ rule: String) -> [Msg] { all.filter { $0.isResolve && $0.rule == rule } }
    func of(_ rule: String) -> [Msg] { all.filter { $0.rule == rule } }
    var notices: [Msg] { all.filter { $0.topic == "invalid-event" } }
    var gaps: [Msg] { all.filter { $0.topic == "stream.gap" } }
}

enum R {
    static let warningDue = "non-compliance.warning-due"
    static let breachDue = "non-compliance.breach-due"
    static let licenceReview = "non-compliance.licence-review"
    static let overdue = "non-compliance.enforcement-overdue"
    static let telephoneOnly = "telephone-only"
    static let excluded = "remote-contact.excluded-case"
    static let noPrivacy = "no-privacy"
    static let rate = "compliance-rate.below-threshold"
    static let r1: Set<String> = [warningDue, breachDue, licenceReview]
}

/// A registration event far from any test case, used to move W.
func tick(_ at: Millis) -> String { reg("RLRH", crn: "Z999999", at: at) }

/// The keys of a JSON object, sorted.
func keys(_ d: [String: Any]) -> [String] { d.keys.sorted() }

extension Harness {
    /// The last R1 raise (warning-due, breach-due or licence-review).
    var lastR1: Msg? { all.last { $0.isRaise && R.r1.contains($0.rule ?? "") } }
}
