import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Crypto
import Foundation
import Testing

/// alertId computed independently of the engine: first 32 hex digits of SHA-256 over the UTF-8 text.
func alertIdText(_ text: String) -> String {
    SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined().prefix(32).description
}

/// alerts.md: identity, alertSequence, stream.gap.
@Suite("Alert identity, sequence and stream gaps", .computing)
struct AlertIdentityTests {
    let mon = t("2026-03-02 10:00")

    @Test("alertId = first 32 hex of SHA-256 of rule|type|value|id|version (independent computation)")
    func alertId() throws {
        // Precomputed with `printf '%s' 'telephone-only|CRN|X688738|2500012345|1' | sha256sum`.
        #expect(alertIdText("telephone-only|CRN|X688738|2500012345|1") == "04cee72a859b896388ab88a58cc3946f")
        let h = Harness()
        h.send(contact("X688738", id: 2_500_012_345, v: 4, start: mon, outcome: "UAAB"))
        let a = try #require(h.raised(R.warningDue).first)
        #expect(a.alertId == alertIdText("non-compliance.warning-due|CRN|X688738|2500012345|4"))
        #expect(a.alertId?.count == 32)
        #expect(a.alertId == a.alertId?.lowercased())
    }

    @Test("R5 and R6 ids use their own rule and subject")
    func otherIds() throws {
        let h = Harness { $0.complianceRateMinimumSample = 1 }
        h.send(contact(id: 7, start: mon, outcome: "UAAB", pdu: "N07SUF"))
        h.send(tick(t("2026-03-20 10:00")))
        #expect(h.raised(R.rate).first?.alertId == alertIdText("compliance-rate.below-threshold|PDU|N07SUF|7|1"))
        #expect(h.raised(R.overdue).first?.alertId == alertIdText("non-compliance.enforcement-overdue|CRN|X100001|7|1"))
        let rate = try #require(h.raised(R.rate).first)
        #expect(rate.json["personReference"] == nil)
        #expect(rate.subjectType == "PDU" && rate.subjectValue == "N07SUF")
    }

    @Test("alertSequence counts raises and resolutions only, not notices")
    func sequence() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB", publisher: "p", seq: 5)) // gap notice + raise
        h.send("not json")
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB", action: "NFA", publisher: "p", seq: 9)) // gap + raise + 2 resolutions
        #expect(h.gaps.count == 2 && h.notices.count == 1)
        #expect(h.alerts.map(\.seq) == [1, 2, 3, 4])
        #expect(h.gaps.allSatisfy { $0.json["alertSequence"] == nil })
    }

    // MARK: - stream.gap

    @Test("first sight: m = 0, so a first number n > 1 is a gap of n - 1")
    func firstSight() throws {
        let h = Harness()
        let out = h.send(reg("RHRH", at: mon, publisher: "feed-1", seq: 1240))
        let g = try #require(out.first)
        #expect(g.topic == "stream.gap")
        #expect(g.json["eventType"] as? String == "contactwatch.stream.gap")
        #expect(g.json["publisherId"] as? String == "feed-1")
        #expect(g.json["expected"] as? Int == 1 && g.json["received"] as? Int == 1240 && g.json["missing"] as? Int == 1239)
        #expect(g.json["detectedAt"] as? String == iso(testNow))
        #expect(keys(g.json) == ["detectedAt", "eventType", "expected", "missing", "publisherId", "received"])
        let h2 = Harness()
        #expect(h2.send(reg("RHRH", at: mon, publisher: "feed-1", seq: 1)).isEmpty)
    }

    @Test("1,100 gaps of 2^53 − 2 (a new publisherId each at the largest sequenceNumber): each a notice, none traps")
    func hugeGapsDoNotOverflow() throws {
        let h = Harness()
        let largest: UInt64 = (1 << 53) - 1
        for k in 0..<1_100 {
            let out = h.send(reg("RHRH", at: mon, publisher: "p\(k)", seq: largest))
            #expect(out.count == 1 && out.first?.json["missing"] as? Int == Int(largest - 1), "#\(k): \(out.map(\.topic))")
        }
        #expect(h.engine.counters.gaps == 1_100)
    }

    @Test("distinct pduCodes: one warning at 1,000 (and none before), each code still a PDU of its own")
    func manyPDUCodesWarned() {
        let h = Harness()
        func warnings() -> [EngineLogEvent] { h.engine.takeLogEvents().filter { $0.pduCodes != nil } }
        for k in 0..<999 { h.send(contact(id: UInt64(k + 1), start: mon, outcome: "ATTC", pdu: "PDU\(k)")) }
        #expect(warnings().isEmpty)
        #expect(h.engine.state.pdus.count == 999)
        // A known code again is not a new one; the thousandth new one is said, once.
        h.send(contact(id: 5_000, start: mon, outcome: "ATTC", pdu: "PDU7"))
        #expect(warnings().isEmpty)
        h.send(contact(id: 5_001, start: mon, outcome: "ATTC", pdu: "PDU-new"))
        let said = warnings()
        #expect(said.count == 1 && said.first?.warning == true && said.first?.pduCodes == 1000
                && said.first?.message.contains("1000 distinct pduCodes are remembered") == true, "\(said.map(\.message))")
        h.send(contact(id: 5_002, start: mon, outcome: "ATTC", pdu: "PDU-newer"))
        #expect(warnings().isEmpty)
    }

    @Test("in order, gap, restart (n = 1: no notice), repeat (m kept)")
    func gapSemantics() {
        let h = Harness()
        func s(_ n: UInt64, _ p: String = "A") -> [Msg] { h.send(reg("RHRH", at: mon, publisher: p, seq: n)) }
        #expect(s(1).isEmpty)
        #expect(s(2).isEmpty)
        let gap = s(5)
        #expect(gap.count == 1 && gap[0].json["expected"] as? Int == 3 && gap[0].json["missing"] as? Int == 2)
        #expect(s(3).isEmpty) // repeat: m stays 5
        #expect(s(6).isEmpty) // so 6 is in order
        #expect(s(1).isEmpty) // restart: no notice, m = 1
        #expect(s(2).isEmpty)
        #expect(s(4).count == 1)
        #expect(s(2, "B").count == 1) // publishers are independent
        #expect(h.engine.counters.repeats == 1 && h.engine.counters.publisherRestarts == 1)
    }

    /// alerts.md's identities are bytes; a `String` key compared by canonical equivalence, so two publisherIds that
    /// differ only in their Unicode normal form were one publisher (a differential tester, session 36).
    @Test("publisherIds that differ only in normal form (\\u00e9 and e\\u0301) are two publishers")
    func publishersByBytes() {
        let h = Harness()
        #expect(h.send(reg("RHRH", at: mon, publisher: "caf\u{E9}", seq: 1)).isEmpty)
        // As one publisher this was a restart of its numbering (1 after 1); as its own, it is in order.
        #expect(h.send(reg("RHRH", at: mon, publisher: "cafe\u{301}", seq: 1)).isEmpty)
        #expect(h.engine.counters.publisherRestarts == 0)
        // A gap in the second is measured from its own last number.
        let gap = h.send(reg("RHRH", at: mon, publisher: "cafe\u{301}", seq: 3))
        #expect(gap.count == 1 && gap.first?.json["expected"] as? Int == 2 && gap.first?.json["missing"] as? Int == 1)
        #expect(h.engine.state.publishers.count == 2)
    }

    @Test("interleaved publishers with long ids, and an escaped spelling of the same id, are tracked by their decoded values")
    func interleavedPublishers() {
        let h = Harness()
        let a = "delius-probation-events-prod-01", b = "delius-probation-events-prod-02" // longer than a small String
        func s(_ n: UInt64, _ p: String) -> [Msg] { h.send(reg("RHRH", at: mon, publisher: p, seq: n)) }
        #expect(s(1, a).isEmpty)
        #expect(s(1, b).isEmpty)
        #expect(s(2, a).isEmpty)
        #expect(s(2, b).isEmpty)
        // The same id with an escape (\u0064 is "d") is the same publisher: 3 is in order.
        #expect(h.send(#"{"eventType":"probation-case.other.thing","publisherId":"\u0064elius-probation-events-prod-01","sequenceNumber":3}"#).isEmpty)
        #expect(s(4, a).isEmpty)
        let gap = s(5, b)
        #expect(gap.count == 1 && gap.first?.json["publisherId"] as? String == b && gap.first?.json["expected"] as? Int == 3)
        #expect(h.engine.state.publishers == [ExactString(a): 4, ExactString(b): 5])
        // 64 bytes of ASCII are 64 scalars: valid.
        #expect(s(2, String(repeating: "p", count: 64)).map(\.topic) == ["stream.gap"])
    }

    @Test("1,000 and 10,000 tracked publisherIds are each said once, as a warning; a known id adds nothing")
    func manyPublishersSaid() {
        let h = Harness()
        var said: [Int] = []
        for i in 1...10_001 {
            #expect(h.send(reg("RHRH", at: mon, publisher: "feed-\(i)", seq: 1)).isEmpty)
            if i == 1000 { #expect(h.send(reg("RHRH", at: mon, publisher: "feed-7", seq: 2)).isEmpty) } // known: in order
            for e in h.engine.takeLogEvents() {
                #expect(e.warning && e.publishers == i && e.message.contains("security.curve.allowPublishers"))
                said.append(i)
            }
        }
        #expect(said == [1000, 10_000])
        #expect(h.engine.state.publishers.count == 10_001)
        // A restart is a fact, not a warning.
        h.send(reg("RHRH", at: mon, publisher: "feed-7", seq: 1))
        #expect(h.engine.takeLogEvents().map(\.warning) == [false])
    }

    @Test("a repeated number equal to the last one is a repeat and is processed as usual")
    func repeatProcessed() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "ATTC", publisher: "A", seq: 1))
        let out = h.send(contact(id: 2, start: mon, outcome: "UAAB", publisher: "A", seq: 1))
        #expect(out.map(\.topic) == ["alert.raised.non-compliance.warning-due"])
    }

    @Test("the gap notice comes before everything else the message causes")
    func gapFirst() {
        let h = Harness()
        let out = h.send(contact(id: 1, start: mon, outcome: "UAAB", action: "EA02", publisher: "A", seq: 3))
        #expect(out.map(\.topic) == ["stream.gap", "alert.raised.non-compliance.warning-due", "alert.resolved.non-compliance.warning-due"])
    }

    @Test("invalid and ignored messages with a valid stamp take part in sequence tracking")
    func invalidAndIgnoredTakePart() {
        let h = Harness()
        // Invalid (version 2) but a JSON object with a valid stamp: gap notice, then the invalid notice.
        let bad = #"{"eventType":"probation-case.contact.recorded","version":2,"publisherId":"A","sequenceNumber":4}"#
        #expect(h.send(bad).map(\.topic) == ["stream.gap", "invalid-event"])
        // Ignored type: takes part (5 in order; 7 a gap) but publishes nothing else.
        #expect(h.send(#"{"eventType":"probation-case.other.thing","publisherId":"A","sequenceNumber":5}"#).isEmpty)
        #expect(h.send(#"{"eventType":"probation-case.other.thing","publisherId":"A","sequenceNumber":7}"#).map(\.topic) == ["stream.gap"])
        // Topic mismatch: still takes part.
        let mismatch = #"{"eventType":"probation-case.contact.recorded","publisherId":"A","sequenceNumber":9}"#
        #expect(h.send(mismatch, topic: "probation-case.registration.added").map(\.topic) == ["stream.gap", "invalid-event"])
    }

    @Test("stamps that are not valid take no part", arguments: [
        #""publisherId":"","sequenceNumber":5"#, #""publisherId":"A","sequenceNumber":0"#,
        #""publisherId":"A","sequenceNumber":5.0"#, #""publisherId":"A","sequenceNumber":"5""#,
        #""publisherId":5,"sequenceNumber":5"#, #""sequenceNumber":5"#, #""publisherId":"A""#,
        #""publisherId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","sequenceNumber":5"#, // 65
    ])
    func invalidStamp(stamp: String) {
        let h = Harness()
        let out = h.send(#"{"eventType":"probation-case.other.thing",\#(stamp)}"#)
        #expect(out.isEmpty)
        #expect(h.engine.state.publishers.isEmpty)
    }

    @Test("a publisherId of 64 Unicode scalars is valid (not 64 bytes)")
    func publisherIdScalars() {
        let h = Harness()
        let id = String(repeating: "é", count: 64)
        #expect(h.send(reg("RHRH", at: mon, publisher: id, seq: 2)).map(\.topic) == ["stream.gap"])
        let h2 = Harness()
        let id65 = String(repeating: "é", count: 65)
        #expect(h2.send(reg("RHRH", at: mon, publisher: id65, seq: 2)).map { $0.field } == ["publisherId"])
    }

    @Test("3-frame messages take no part in sequence tracking")
    func threeFrames() {
        let h = Harness()
        let body = Array(reg("RHRH", at: mon, publisher: "A", seq: 7).utf8)
        let out = h.sendBytes(frames: 3, topic: Array("probation-case.registration.added".utf8), body: body)
        #expect(out.map(\.topic) == ["invalid-event"])
        #expect(h.engine.state.publishers.isEmpty)
        #expect(h.send(reg("RHRH", at: mon, publisher: "A", seq: 1)).isEmpty)
    }

    @Test("non-JSON bodies take no part")
    func nonJSON() {
        let h = Harness()
        h.send(#"{"publisherId":"A","sequenceNumber":5,"#)
        #expect(h.engine.state.publishers.isEmpty)
        // A JSON array is not an object.
        h.send(#"[{"publisherId":"A","sequenceNumber":5}]"#)
        #expect(h.engine.state.publishers.isEmpty)
    }

    @Test("a JSON object without eventType but with a valid stamp takes part")
    func noEventType() {
        let h = Harness()
        #expect(h.send(#"{"publisherId":"A","sequenceNumber":3}"#).map(\.topic) == ["stream.gap", "invalid-event"])
    }
}
