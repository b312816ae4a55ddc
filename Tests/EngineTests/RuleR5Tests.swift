import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R5 — area compliance rate (rules.md).
@Suite("R5 compliance rate", .computing)
struct RuleR5Tests {
    let t0 = t("2026-03-02 10:00")

    /// Each contact on its own case, so R1 counting stays simple (R1 alerts are filtered out anyway).
    func c(_ id: UInt64, _ outcome: String?, start: Millis? = nil, at: Millis? = nil, pdu: String? = "P1", v: UInt64? = nil) -> String {
        let crn = "X" + String(format: "%06d", id % 1_000_000)
        return contact(crn, id: id, v: v, start: start ?? t0, at: at, outcome: outcome, pdu: pdu)
    }

    func small(_ s: inout EngineSettings) {
        s.complianceRateMinimumSample = 4
        s.complianceRateThreshold = 0.5
        s.complianceRateHysteresis = 0.25
    }

    /// Contributions are kept by the date of `contactStart` in `rules.timeZone`: a restart from Europe/London to
    /// Pacific/Auckland counted the window in Auckland dates over contributions dated in London's, for up to
    /// `windowDays` (a rules auditor, session 43). 12:00Z on 2 March is 2 March in London, 3 March 01:00 in Auckland.
    @Test("a state written under another rules.timeZone: contributions dated in the zone in force, as in a fresh run with it; an unchanged zone changes nothing")
    func contributionsFollowTheZone() throws {
        func configure(_ s: inout EngineSettings) {
            s.complianceRateWindowDays = 1
            s.complianceRateMinimumSample = 2
        }
        let first = Harness(configure)
        first.send(c(1, "UAAB", start: t("2026-03-02 12:00"), at: t("2026-03-02 12:10")))
        var london = EngineSettings()
        configure(&london)
        let unchanged = try Engine(settings: london, state: first.engine.state)
        #expect(unchanged.takeChanges().isEmpty, "a restart with the same zone writes nothing")
        var auckland = london
        auckland.timeZone = "Pacific/Auckland"
        let restarted = Harness(engine: try Engine(settings: auckland, state: first.engine.state))
        let fresh = Harness(engine: try Engine(settings: auckland))
        fresh.send(c(1, "UAAB", start: t("2026-03-02 12:00"), at: t("2026-03-02 12:10")))
        #expect(restarted.engine.state.pdus == fresh.engine.state.pdus)
        #expect(restarted.engine.state.contacts[1] == fresh.engine.state.contacts[1])
        let changes = restarted.engine.changes
        #expect(changes.contacts.elements() == [1] && !changes.pdus.isEmpty, "the new dates are in the next commit")
        for h in [restarted, fresh] {
            h.send(c(2, "UAAB", start: t("2026-03-02 12:15"), at: t("2026-03-02 12:20")))
            let a = try #require(h.raised(R.rate).first, "both failures are dated 3 March in Auckland: 0 of 2")
            #expect(a.evString("windowStart") == "2026-03-03" && a.evString("windowEnd") == "2026-03-03")
            #expect(a.ev("nonCompliant") as? Int == 2)
        }
        #expect(restarted.raised(R.rate).map(\.alertId) == fresh.raised(R.rate).map(\.alertId))
    }

    /// "over the 1 days to", "(0 of 1 contacts complied)" (a rules auditor, session 43, of R6's "1 business days").
    @Test("a one-day window and a sample of one read in the singular")
    func singularReason() throws {
        let h = Harness { $0.complianceRateWindowDays = 1; $0.complianceRateMinimumSample = 1 }
        let a = try #require(h.send(c(1, "UAAB")).first { $0.rule == R.rate })
        #expect(a.reason == "Compliance in P1 is 0.0% over the 1 day to 2026-03-02 (0 of 1 contact complied), below 75%", "\(a.reason ?? "")")
    }

    /// A rate just below the threshold read "66.7% … below 66.7%" (one decimal for both, rounded to the nearest): the
    /// threshold now has the decimals it was given and the rate is rounded down where the nearest would reach it.
    @Test("a rate just below the threshold never reads at or above it")
    func reasonBelowItsThreshold() throws {
        let h = Harness { $0.complianceRateMinimumSample = 3; $0.complianceRateThreshold = 0.6668 }
        h.send(c(1, "ATTC"))
        h.send(c(2, "ATTC", start: t0 + hour))
        let a = try #require(h.send(c(3, "UAAB", start: t0 + 2 * hour)).first { $0.rule == R.rate })
        #expect(a.reason == "Compliance in P1 is 66.6% over the 90 days to 2026-03-02 (2 of 3 contacts complied), below 66.68%", "\(a.reason ?? "")")
        #expect(a.ev("rate") as? Double == 0.6667, "the evidence's rate keeps its own rounding")
        let far = Harness { $0.complianceRateMinimumSample = 3; $0.complianceRateThreshold = 0.7 }
        far.send(c(1, "ATTC"))
        far.send(c(2, "ATTC", start: t0 + hour))
        let b = try #require(far.send(c(3, "UAAB", start: t0 + 2 * hour)).first { $0.rule == R.rate })
        #expect(b.reason?.hasPrefix("Compliance in P1 is 66.7% over") == true && b.reason?.hasSuffix("below 70%") == true,
                "away from the threshold the nearest: \(b.reason ?? "")")
        // A threshold with more than four decimals of a percent is shown rounded up: 0.7500004 read "75%", and 3 of 4
        // below it "75.0% … below 75%" (a reviewer, session 44).
        let fine = Harness { $0.complianceRateMinimumSample = 4; $0.complianceRateThreshold = 0.7500004 }
        for (id, outcome) in [(1, "ATTC"), (2, "ATTC"), (3, "ATTC")] as [(UInt64, String)] {
            fine.send(c(id, outcome, start: t0 + Millis(id) * hour))
        }
        let f = try #require(fine.send(c(4, "UAAB", start: t0 + 4 * hour)).first { $0.rule == R.rate })
        #expect(f.reason?.contains(" is 75.0% over") == true && f.reason?.hasSuffix("below 75.0001%") == true, "\(f.reason ?? "")")
    }

    @Test("minimumSample: no alert below it; raise at n >= minimumSample with rate < threshold")
    func minimumSample() throws {
        let h = Harness(small)
        for id in 1...3 as ClosedRange<UInt64> { h.send(c(id, "UAAB")) }
        #expect(h.of(R.rate).isEmpty)
        let out = h.send(c(4, "AFTC", start: t0 + hour))
        let a = try #require(out.first { $0.rule == R.rate })
        #expect(a.topic == "alert.raised.compliance-rate.below-threshold")
        #expect(a.severity == "medium")
        #expect(a.subjectType == "PDU" && a.subjectValue == "P1")
        #expect(a.json["personReference"] == nil)
        #expect(a.occurredAt == iso(t0 + hour))
        #expect(keys(a.evidence) == ["compliant", "nonCompliant", "pduCode", "rate", "triggerContactId", "triggerContactVersion",
                                     "windowEnd", "windowStart"])
        #expect(a.triggerContactId == 4 && a.triggerContactVersion == 1)
        #expect(a.evString("pduCode") == "P1")
        #expect((a.ev("rate") as? NSNumber)?.doubleValue == 0)
        #expect(a.evInt("compliant") == 0 && a.evInt("nonCompliant") == 4)
        #expect(a.evString("windowEnd") == "2026-03-02" && a.evString("windowStart") == "2025-12-03")
        // The R5 alert comes after the contact's own R1 alert (step 4 order R1 ... R5).
        #expect(out.map(\.rule) == [R.warningDue, R.rate])
    }

    /// "Per pduCode": codes are compared as bytes (alerts.md's identity is a hash of the bytes). Keyed by `String`,
    /// `"\u{E9}"` and `"e\u{301}"` (canonically equivalent) were one PDU: the second's failure raised an alert under the
    /// first's code with both counted (a differential tester, session 36). Also after a restart of the state.
    @Test("pduCodes that differ only in Unicode normal form are two PDUs")
    func pduCodesByBytes() throws {
        let h = Harness { $0.complianceRateMinimumSample = 1 }
        h.send(c(4, "ATTC", pdu: "e\u{301}"))
        let out = h.send(c(5, "UAAB", pdu: "\u{E9}"))
        let a = try #require(out.first { $0.rule == R.rate }, "no R5 alert for the second PDU")
        #expect(Array((a.subjectValue ?? "").utf8) == Array("\u{E9}".utf8) && Array((a.evString("pduCode") ?? "").utf8) == Array("\u{E9}".utf8))
        #expect(a.evInt("compliant") == 0 && a.evInt("nonCompliant") == 1)
        #expect(h.engine.state.pdus.count == 2)
    }

    @Test("rate exactly at the threshold does not raise")
    func atThreshold() {
        let h = Harness(small)
        h.send([c(1, "ATTC"), c(2, "ATTC"), c(3, "UAAB"), c(4, "UAAB")])
        #expect(h.of(R.rate).isEmpty)
        h.send(c(5, "UAAB"))
        #expect((h.raised(R.rate).first?.ev("rate") as? NSNumber)?.doubleValue == 0.4)
    }

    @Test("hysteresis: resolve only at rate >= threshold + hysteresis, with the numbers at resolution")
    func hysteresis() throws {
        let h = Harness(small)
        for id in 1...4 as ClosedRange<UInt64> { h.send(c(id, "UAAB")) }
        let raise = try #require(h.raised(R.rate).first)
        for k in 1...11 as ClosedRange<UInt64> { h.send(c(100 + k, "ATTC", start: t0 + Millis(k) * minute)) }
        #expect(h.resolved(R.rate).isEmpty) // 11/15 = 0.733 < 0.75
        let out = h.send(c(112, "ATTC", start: t0 + 12 * minute)) // 12/16 = 0.75
        let r = try #require(out.first)
        #expect(out.count == 1)
        #expect(r.topic == "alert.resolved.compliance-rate.below-threshold")
        #expect(r.alertId == raise.alertId && r.severity == "medium")
        #expect(r.resolution == "RATE_RECOVERED" && r.resolvedBy == 112)
        #expect(r.occurredAt == iso(t0 + 12 * minute))
        #expect(r.triggerContactId == 4)
        #expect(r.evInt("compliant") == 12 && r.evInt("nonCompliant") == 4)
        #expect((r.ev("rate") as? NSNumber)?.doubleValue == 0.75)
        // Open again only after a new drop: a fresh raise with a new trigger.
        for id in 200...208 as ClosedRange<UInt64> { h.send(c(id, "UAAB", start: t0 + hour)) }
        #expect(h.raised(R.rate).count == 2)
        #expect(h.raised(R.rate).last?.triggerContactId == 208) // 12 of 24 is 0.5 (not below); 12 of 25 is 0.48
    }

    @Test("default settings: 50 minimum, 0.75 threshold, 0.02 hysteresis (0.77 in 64-bit floating point)")
    func defaults() {
        let h = Harness()
        var id: UInt64 = 0
        func send(_ outcome: String, _ n: Int) { for _ in 0..<n { id += 1; h.send(c(id, outcome)) } }
        send("UAAB", 20)
        send("ATTC", 29)
        #expect(h.of(R.rate).isEmpty) // n = 49
        send("ATTC", 1)
        #expect(h.raised(R.rate).count == 1) // 30/50 = 0.6
        send("ATTC", 36) // 66/86 = 0.767
        #expect(h.resolved(R.rate).isEmpty)
        send("ATTC", 1) // 67/87 = 0.770
        #expect(h.resolved(R.rate).count == 1)
        #expect(h.resolved(R.rate).first?.resolvedBy == Int(id))
    }

    @Test("rate evidence is rounded to 4 places, ties to even", arguments: [
        (["ATTC", "ATTC", "UAAB"], 3, 0.6667), (["UAAB", "UAAB", "ATTC"], 3, 0.3333),
        (Array(repeating: "UAAB", count: 31) + ["ATTC"], 32, 0.0312), // 1/32 * 10000 = 312.5 -> 312
    ])
    func rounding(outcomes: [String], sample: Int, rate: Double) {
        let h = Harness { $0.complianceRateMinimumSample = sample }
        for (k, o) in outcomes.enumerated() { h.send(c(UInt64(k + 1), o)) }
        #expect(h.raised(R.rate).count == 1)
        #expect((h.raised(R.rate).first?.ev("rate") as? NSNumber)?.doubleValue == rate)
    }

    @Test("window: the 90 dates ending on the date of W", arguments: [(89, true), (90, false)])
    func window(daysBack: Int, counted: Bool) {
        let h = Harness(small)
        let end = t("2026-06-10 10:00")
        h.send(c(1, "UAAB", start: end - Millis(daysBack) * day, at: end - Millis(daysBack) * day + hour))
        for id in 2...4 as ClosedRange<UInt64> { h.send(c(id, "UAAB", start: end)) }
        #expect(h.raised(R.rate).count == (counted ? 1 : 0))
        if counted {
            #expect(h.raised(R.rate).first?.evString("windowStart") == "2026-03-13")
            #expect(h.raised(R.rate).first?.evString("windowEnd") == "2026-06-10")
        }
    }

    @Test("the window ends on the date of W, not of the contact; contributions are kept by contactStart date")
    func windowByW() {
        let h = Harness(small)
        h.send(tick(t("2026-06-10 10:00")))
        // Contacts from March, recorded in June: outside the window ending 2026-06-10.
        for id in 1...4 as ClosedRange<UInt64> { h.send(c(id, "UAAB", start: t("2026-03-01 10:00"), at: t("2026-06-10 11:00"))) }
        #expect(h.of(R.rate).isEmpty)
    }

    @Test("window dates are Europe/London dates")
    func windowLocal() {
        let h = Harness(small)
        // 2026-06-10 23:30 UTC is 2026-06-11 00:30 BST: W's date is 2026-06-11, window from 2026-03-14.
        h.send(c(1, "UAAB", start: t("2026-03-13 12:00")))
        h.send(c(2, "UAAB", start: t("2026-03-14 00:30"))) // 2026-03-14 (GMT)
        for id in 3...4 as ClosedRange<UInt64> { h.send(c(id, "UAAB", start: t("2026-06-10 23:30"), at: t("2026-06-10 23:31"))) }
        #expect(h.of(R.rate).isEmpty) // n = 3
        h.send(c(5, "UAAB", start: t("2026-06-10 23:40"), at: t("2026-06-10 23:41")))
        #expect(h.raised(R.rate).first?.evString("windowStart") == "2026-03-14")
        #expect(h.raised(R.rate).first?.evString("windowEnd") == "2026-06-11")
        #expect(h.raised(R.rate).first?.evInt("nonCompliant") == 4)
    }

    @Test("no pduCode, AFTA, or no outcome contribute nothing; acceptable absences are compliant")
    func contributions() throws {
        let h = Harness { $0.complianceRateMinimumSample = 2 }
        h.send(c(1, "UAAB"))
        h.send(c(2, "AFTA"))
        h.send(c(3, nil))
        h.send(c(4, "UAAB", pdu: nil))
        h.send(c(5, "ATTC", pdu: "P2"))
        #expect(h.of(R.rate).isEmpty)
        h.send(c(6, "AACL"))
        let a = try #require(h.raised(R.rate).first)
        #expect(a.evInt("compliant") == 1 && a.evInt("nonCompliant") == 1)
        #expect((a.ev("rate") as? NSNumber)?.doubleValue == 0.5)
    }

    @Test("each contact's current version contributes once: a replacement swaps its contribution")
    func replacement() {
        let h = Harness(small)
        h.send([c(1, "ATTC"), c(2, "ATTC"), c(3, "ATTC"), c(4, "ATTC")])
        h.send(c(1, "UAAB", at: t0 + 2 * hour, v: 2))
        h.send(c(2, "UAAB", at: t0 + 2 * hour, v: 2))
        #expect(h.of(R.rate).isEmpty) // 2 of 4
        h.send(c(3, "UAAB", at: t0 + 2 * hour, v: 2))
        #expect(h.raised(R.rate).first?.evInt("nonCompliant") == 3)
        #expect(h.raised(R.rate).first?.evInt("compliant") == 1)
        #expect(h.raised(R.rate).first?.triggerContactVersion == 2)
    }

    @Test("the withdrawn contribution's PDU is evaluated first, then the new one")
    func withdrawnFirst() {
        let h = Harness {
            $0.complianceRateMinimumSample = 2
            $0.complianceRateThreshold = 0.5
            $0.complianceRateHysteresis = 0
        }
        h.send([c(1, "ATTC", pdu: "A"), c(2, "UAAB", pdu: "A")]) // 0.5: no alert
        h.send(c(10, "UAAB", pdu: "A")) // 1/3: raise A
        h.send([c(20, "ATTC", pdu: "B"), c(21, "UAAB", pdu: "B")]) // 0.5: no alert
        #expect(h.raised(R.rate).map(\.subjectValue) == ["A"])
        let out = h.send(c(10, "UAAB", at: t0 + 2 * hour, pdu: "B", v: 2)).filter { $0.rule == R.rate }
        #expect(out.map(\.topic) == ["alert.resolved.compliance-rate.below-threshold", "alert.raised.compliance-rate.below-threshold"])
        #expect(out.map(\.subjectValue) == ["A", "B"])
        #expect(out.first?.evInt("compliant") == 1 && out.first?.evInt("nonCompliant") == 1)
    }

    @Test("a version that drops its pduCode withdraws the contribution and re-evaluates that PDU")
    func dropPDU() {
        let h = Harness {
            $0.complianceRateMinimumSample = 2
            $0.complianceRateThreshold = 0.5
            $0.complianceRateHysteresis = 0
        }
        h.send([c(1, "ATTC"), c(2, "UAAB"), c(3, "UAAB")])
        #expect(h.raised(R.rate).count == 1)
        h.send(c(3, "UAAB", at: t0 + 2 * hour, pdu: nil, v: 2))
        #expect(h.resolved(R.rate).first?.resolvedBy == 3)
    }

    @Test("evaluation happens only after contact events that change a contribution")
    func onlyOnChange() {
        let h = Harness(small)
        for id in 1...4 as ClosedRange<UInt64> { h.send(c(id, "UAAB")) }
        #expect(h.raised(R.rate).count == 1)
        // W moves far ahead; contributions fall out of the window, but nothing is evaluated by these.
        h.send(tick(t0 + 200 * day))
        h.send(c(50, nil, start: t0 + 200 * day))
        h.send(c(4, "UAAB", v: 1)) // duplicate
        // A compliant contact: evaluated, n = 1 < 4: the open alert stays open.
        h.send(c(51, "ATTC", start: t0 + 200 * day))
        #expect(h.resolved(R.rate).isEmpty)
    }

    @Test("PDUs are independent")
    func independent() {
        let h = Harness(small)
        for id in 1...3 as ClosedRange<UInt64> { h.send(c(id, "UAAB", pdu: "A")) }
        h.send(c(4, "UAAB", pdu: "B"))
        #expect(h.of(R.rate).isEmpty)
    }
}
