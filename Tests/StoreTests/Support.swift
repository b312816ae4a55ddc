import ContactWatchEngine
import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Testing

/// A fresh temporary directory, removed by `cleanup`.
struct TempDir {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "storetests-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// `path` itself, created with its parents (removed by `cleanup` too).
    init(existing path: String) {
        self.path = path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    var storePath: String { path + "/" + StateStore.fileName }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

func messages(_ outbox: Outbox) -> [String] {
    outbox.messages.map { "\($0.topic) \($0.body)" }
}

/// Whether two engine states are the same (EngineState is not Equatable: compared field by field).
func sameState(_ a: EngineState, _ b: EngineState) -> Bool {
    a.watermark == b.watermark && a.alertSequence == b.alertSequence && a.publishers == b.publishers
        && a.cases == b.cases && a.contacts == b.contacts && a.withdrawn == b.withdrawn
        && a.pdus == b.pdus && a.pduIndex == b.pduIndex && a.outcomeTimers == b.outcomeTimers
}

/// A deterministic synthetic event stream touching every rule: failures and enforcement actions (warnings, breaches,
/// withdrawals), telephone and in-person contacts, registers that exclude remote contact, open booths, several PDUs,
/// updates, sequence numbers with gaps, and a few invalid messages. Time runs forward about a day per 12 events.
struct SyntheticStream {
    typealias Rng = SplitMix64

    struct Contact {
        var crn: String
        var version: Int
        var start: Millis
        var type: String
        var outcome: String?
        var pdu: String
    }

    static func time(_ t: Millis) -> String {
        let d = Date(timeIntervalSince1970: Double(t) / 1000)
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static func generate(seed: UInt64, count: Int, cases: Int = 40, start: String = "2025-01-06T09:00:00Z") -> [String] {
        var rng = Rng(seed: seed)
        var t = RFC3339.parse(start)!
        var contacts: [Int: Contact] = [:]
        var recent: [Int] = []
        var nextId = 1000
        var seq = 0
        var lines: [String] = []
        let crns = (0..<cases).map { String(format: "X%06d", 100_000 + $0) }
        let pdus = ["N07SUF", "N03NOR", "N55ESX"]
        let types = ["COAP", "COAP", "COPT", "COPT", "COPT", "CHVS", "COVC", "CODC"]
        let outcomes = ["ATTC", "ATTC", "UAAB", "AFTC", "AACL", "ATSH"]
        let settings = ["PRIVATE_ROOM", "OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "UNKNOWN"]
        let sentences = ["COMMUNITY_ORDER", "LICENCE", "SUSPENDED_SENTENCE_ORDER", "POST_SENTENCE_SUPERVISION"]
        let registers: [(String, String?)] = [("RVHR", nil), ("RHRH", nil), ("MAPP", "M2"), ("MAPP", "M1"), ("ADVP", nil),
                                              ("RCCO", nil), ("RCPR", nil), ("ADVV", nil)]

        func envelope(_ type: String, _ crn: String, _ info: String) -> String {
            seq += 1
            if rng.chance(0.01) { seq += 1 + rng.below(3) }  // a gap
            let pub = rng.chance(0.9) ? ",\"publisherId\":\"feed-1\",\"sequenceNumber\":\(seq)" : ""
            return "{\"eventType\":\"\(type)\",\"version\":1,\"occurredAt\":\"\(time(t))\"\(pub),"
                + "\"personReference\":{\"identifiers\":[{\"type\":\"CRN\",\"value\":\"\(crn)\"}]},"
                + "\"additionalInformation\":{\(info)}}"
        }

        func contactLine(_ id: Int, _ c: Contact, action: String?) -> String {
            var info = "\"contactId\":\(id),\"contactVersion\":\(c.version),\"contactStart\":\"\(time(c.start))\","
                + "\"contactType\":\"\(c.type)\",\"pduCode\":\"\(c.pdu)\""
            if let o = c.outcome { info += ",\"outcome\":{\"code\":\"\(o)\"}" }
            if let a = action { info += ",\"enforcementAction\":{\"code\":\"\(a)\"}" }
            if c.type == "COAP" { info += ",\"interviewSetting\":\"\(rng.pick(settings))\"" }
            if rng.chance(0.05) { info += ",\"sensitive\":true" }
            if rng.chance(0.1) { info += ",\"sentenceType\":\"\(rng.pick(sentences))\"" }
            return envelope("probation-case.contact.recorded", c.crn, info)
        }

        for _ in 0..<count {
            t += Millis(rng.below(4 * 3_600_000))
            let r = rng.below(100)
            if r < 50 || recent.isEmpty {
                // A new contact, usually with an outcome.
                let id = nextId
                nextId += 1
                let c = Contact(crn: rng.pick(crns), version: 1, start: t - Millis(rng.below(2 * 86_400_000)),
                                type: rng.pick(types), outcome: rng.chance(0.85) ? rng.pick(outcomes) : nil,
                                pdu: rng.pick(pdus))
                contacts[id] = c
                recent.append(id)
                if recent.count > 60 { recent.removeFirst() }
                lines.append(contactLine(id, c, action: nil))
            } else if r < 80 {
                // An update of a recent contact: an outcome, or an enforcement action.
                let id = rng.pick(recent)
                var c = contacts[id]!
                c.version += 1
                var action: String? = nil
                if rng.chance(0.6) {
                    action = rng.pick(["EA02", "EA02", "EA08", "EA06", "NFA", "IBR", "XX99"])
                } else {
                    c.outcome = rng.pick(outcomes)
                }
                contacts[id] = c
                lines.append(contactLine(id, c, action: action))
            } else if r < 84, let id = recent.last {
                // A duplicate (same version again).
                lines.append(contactLine(id, contacts[id]!, action: nil))
            } else if r < 96 {
                let (code, level) = rng.pick(registers)
                let kind = rng.pick(["added", "added", "updated", "deleted", "deregistered"])
                var info = "\"registerTypeCode\":\"\(code)\""
                if let level { info += ",\"registerLevelCode\":\"\(level)\"" }
                lines.append(envelope("probation-case.registration.\(kind)", rng.pick(crns), info))
            } else if r < 98 {
                lines.append("{\"eventType\":\"probation-case.contact.recorded\",\"version\":2}")
            } else {
                lines.append("not json \(rng.below(1000))")
            }
        }
        return lines
    }
}

extension SplitMix64 {
    /// True with probability p (53 random bits).
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
    mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}
