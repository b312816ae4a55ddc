import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R1 — non-compliance (rules.md): which alert, severity, evidence, counting window, resolution.
@Suite("R1 non-compliance", .computing)
struct RuleR1Tests {
    let mon = t("2026-03-02 10:00") // Monday 2 March 2026 (GMT)

    // MARK: - Which alert

    @Test("a first failure raises warning-due, medium, with exactly the R1 evidence")
    func firstFailure() throws {
        let h = Harness()
        let out = h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        #expect(out.count == 1)
        let a = try #require(out.first)
        #expect(a.topic == "alert.raised.non-compliance.warning-due")
        #expect(a.json["eventType"] as? String == "probation-case.supervision-alert.raised")
        #expect(a.json["version"] as? Int == 1)
        #expect(a.severity == "medium")
        #expect(a.occurredAt == iso(mon))
        #expect(a.subjectType == "CRN" && a.subjectValue == "X100001")
        let ids = (a.json["personReference"] as? [String: Any])?["identifiers"] as? [[String: Any]]
        #expect(ids?.count == 1 && ids?[0]["type"] as? String == "CRN" && ids?[0]["value"] as? String == "X100001")
        #expect(keys(a.evidence) == ["categories", "failuresInWindow", "lastWarningAt", "outcomeCode", "sentenceType",
                                     "triggerContactId", "triggerContactVersion"])
        #expect(a.triggerContactId == 1 && a.triggerContactVersion == 1)
        #expect(a.evString("outcomeCode") == "UAAB")
        #expect(a.evString("sentenceType") == "COMMUNITY_ORDER")
        #expect(a.evInt("failuresInWindow") == 1)
        #expect(a.ev("lastWarningAt") is NSNull)
        #expect(a.categories == [])
        #expect(keys(a.json) == ["alertId", "alertSequence", "detectedAt", "eventType", "evidence", "occurredAt",
                                 "personReference", "reason", "rule", "severity", "subject", "version"])
    }

    @Test("every failure outcome raises; non-failures do not", arguments: [
        ("UAAB", true), ("AFTC", true), ("ATSH", true), ("ATTC", false), ("ATSS", false), ("AFTA", false),
        ("AACL", false), ("AAEM", false), ("AAFC", false), ("AAHO", false), ("AAME", false), ("AARE", false),
        ("AARC", false), ("CO05", false),
    ])
    func failureCodes(code: String, fails: Bool) {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: code))
        #expect(h.raised(R.warningDue).count == (fails ? 1 : 0))
        #expect(h.alerts.count == (fails ? 1 : 0))
    }

    @Test("flags override the outcome table; an unknown code with its three flags counts by the flags")
    func flagOverrides() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "ATTC", flags: (true, false, true)))
        #expect(h.raised(R.warningDue).count == 1)
        let h2 = Harness()
        h2.send(contact(id: 1, start: mon, outcome: "UAAB", flags: (false, false, false)))
        #expect(h2.alerts.isEmpty)
        let h3 = Harness()
        h3.send(contact(id: 1, start: mon, outcome: "ZZ99", flags: (false, false, true)))
        #expect(h3.raised(R.warningDue).first?.evString("outcomeCode") == "ZZ99")
    }

    @Test("a second failure in the window raises breach-due, high, F = 2")
    func secondFailure() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + 7 * day, outcome: "AFTC"))
        let b = try #require(h.raised(R.breachDue).first)
        #expect(b.severity == "high")
        #expect(b.evInt("failuresInWindow") == 2)
        #expect(b.ev("lastWarningAt") is NSNull)
        #expect(b.evString("outcomeCode") == "AFTC")
        #expect(h.raised(R.warningDue).count == 1)
    }

    /// "in 1 months" (a reviewer, session 43, after the singular of R2, R5 and R6).
    @Test("a one-month window reads in the singular, in a warning's reason and a breach's")
    func singularReason() throws {
        let h = Harness { $0.nonComplianceWindowMonths = 1 }
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + 7 * day, outcome: "AFTC"))
        #expect(try #require(h.raised(R.warningDue).first).reason?.hasSuffix("(no other failure and no warning in 1 month)") == true)
        #expect(try #require(h.raised(R.breachDue).first).reason?.contains("(2 failures in 1 month)") == true,
                "\(h.raised(R.breachDue).first?.reason ?? "")")
    }

    @Test("a recent warning turns a first failure into breach-due, with lastWarningAt")
    func recentWarning() throws {
        let h = Harness()
        // A warning letter on a contact that is not a failure.
        h.send(contact(id: 1, start: mon, outcome: "ATTC", action: "EA02", actionAt: mon + 2 * hour))
        h.send(contact(id: 2, start: mon + 10 * day, outcome: "UAAB"))
        let b = try #require(h.raised(R.breachDue).first)
        #expect(b.evInt("failuresInWindow") == 1)
        #expect(b.evString("lastWarningAt") == iso(mon + 2 * hour))
        #expect(h.raised(R.warningDue).isEmpty)
    }

    @Test("lastWarningAt is the latest recent warning at or before the failure; later warnings do not count")
    func latestWarning() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon + day, action: "LCL", actionAt: mon + day))
        h.send(contact(id: 3, start: mon + 20 * day, action: "EA03", actionAt: mon + 20 * day))
        h.send(contact(id: 4, start: mon + 10 * day, at: mon + 21 * day, outcome: "UAAB"))
        let b = try #require(h.raised(R.breachDue).first)
        #expect(b.evString("lastWarningAt") == iso(mon + day))
    }

    /// rules.md step 3: "Withdrawing a withdrawal (`EA06`, `EA07`) puts back the warning it had removed." *Decision*
    /// (README, *Decisions*): only while the warning's contact still carries that warning at the same effective time;
    /// a contact whose own later version dropped or changed its action keeps it dropped (a bug hunter, session 46,
    /// found the condition undeclared).
    @Test("withdrawing a withdrawal puts its warning back while the warning's contact still carries it, not once that contact dropped it")
    func withdrawnWithdrawalPutsBackALiveWarningOnly() throws {
        let warnedAt = mon + 2 * hour
        func run(dropWarningFirst: Bool) -> Harness {
            let h = Harness()
            h.send(contact(id: 1, start: mon, outcome: "ATTC", action: "EA02", actionAt: warnedAt))
            h.send(contact(id: 2, start: mon + day, outcome: "ATTC", action: "EA06", actionAt: mon + day))
            if dropWarningFirst { h.send(contact(id: 1, v: 2, start: mon, at: mon + 2 * day, outcome: "ATTC")) }
            h.send(contact(id: 2, v: 2, start: mon + day, at: mon + 3 * day, outcome: "ATTC"))
            h.send(contact(id: 3, start: mon + 4 * day, outcome: "UAAB"))
            return h
        }
        let back = run(dropWarningFirst: false)
        let b = try #require(back.raised(R.breachDue).first)
        #expect(b.evString("lastWarningAt") == iso(warnedAt))
        #expect(back.raised(R.warningDue).isEmpty)
        let dropped = run(dropWarningFirst: true)
        let w = try #require(dropped.raised(R.warningDue).first)
        #expect(w.ev("lastWarningAt") is NSNull)
        #expect(dropped.raised(R.breachDue).isEmpty)
    }

    @Test("a warning at exactly the failure's contactStart is recent")
    func warningAtSameInstant() {
        let h = Harness()
        h.send(contact(id: 1, start: mon - day, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon, outcome: "UAAB"))
        #expect(h.raised(R.breachDue).count == 1)
        let h2 = Harness()
        h2.send(contact(id: 1, start: mon - day, action: "EA02", actionAt: mon + 1))
        h2.send(contact(id: 2, start: mon, at: mon + 2 * hour, outcome: "UAAB"))
        #expect(h2.raised(R.warningDue).count == 1)
    }

    // MARK: - Counting start

    @Test("counting start: a breach resets counting, a warning or NFA does not", arguments: [
        ("EA08", R.warningDue, 1), ("IBR", R.warningDue, 1), ("BRE", R.warningDue, 1), ("EA11", R.warningDue, 1),
        ("IMB", R.warningDue, 1), ("NFA", R.breachDue, 2), ("EA02", R.breachDue, 2), ("ROM", R.breachDue, 2),
    ])
    func countingStart(action: String, expected: String, f: Int) throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + day, action: action, actionAt: mon + day))
        h.send(contact(id: 3, start: mon + 10 * day, outcome: "UAAB"))
        let last = try #require(h.raised(expected).last)
        #expect(last.triggerContactId == 3)
        #expect(last.evInt("failuresInWindow") == f)
        // After a breach, the warning given before it does not count either; after EA02 it does.
        if action == "EA02" { #expect(last.evString("lastWarningAt") == iso(mon + day)) }
    }

    @Test("a breach after the failure's contactStart does not reset its counting")
    func breachAfterFailure() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + 5 * day, action: "EA08", actionAt: mon + 5 * day))
        // Failure on day 3, recorded late: the breach (day 5) is after it.
        h.send(contact(id: 3, start: mon + 3 * day, at: mon + 6 * day, outcome: "UAAB"))
        let b = try #require(h.raised(R.breachDue).first)
        #expect(b.triggerContactId == 3)
        #expect(b.evInt("failuresInWindow") == 2)
    }

    @Test("a breach before the window's failures but after a warning hides the warning")
    func breachHidesWarning() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon + day, action: "EA08", actionAt: mon + day))
        h.send(contact(id: 3, start: mon + 2 * day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).count == 1)
        #expect(h.raised(R.breachDue).isEmpty)
    }

    @Test("a breach exactly at the failure's contactStart is the counting start (at or before t)")
    func breachAtSameInstant() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + day, action: "EA08", actionAt: mon + 5 * day))
        // Failure exactly at the breach: counted (>= s); the earlier failure is not.
        h.send(contact(id: 3, start: mon + 5 * day, outcome: "UAAB"))
        let w = try #require(h.raised(R.warningDue).last)
        #expect(w.triggerContactId == 3 && w.evInt("failuresInWindow") == 1)
    }

    // MARK: - Window

    @Test("window: 12 calendar months back to the same day, inclusive", arguments: [
        ("2025-03-02 10:00", 2), ("2025-03-01 23:59", 1),
    ])
    func window12(first: String, f: Int) throws {
        let h = Harness()
        h.send(contact(id: 1, start: t(first), outcome: "UAAB"))
        h.send(contact(id: 2, start: t("2026-03-02 10:00"), outcome: "UAAB"))
        let last = try #require(h.lastR1)
        #expect(last.rule == (f == 2 ? R.breachDue : R.warningDue))
        #expect(last.evInt("failuresInWindow") == f)
    }

    @Test("window dates are Europe/London dates (00:30 BST counts as the next day)", arguments: [
        ("2025-06-30 23:30", 2), // 2025-07-01 00:30 BST: in the window starting 2025-07-01
        ("2025-06-30 22:59", 1), // 2025-06-30 23:59 BST: outside
    ])
    func windowLocalDates(first: String, f: Int) throws {
        let h = Harness()
        h.send(contact(id: 1, start: t(first), outcome: "UAAB"))
        h.send(contact(id: 2, start: t("2026-07-01 10:00"), outcome: "UAAB"))
        #expect(h.lastR1?.evInt("failuresInWindow") == f)
    }

    @Test("month-end clamping: 2026-03-31 minus 1 month is 2026-02-28", arguments: [
        ("2026-02-28 10:00", 2), ("2026-02-27 10:00", 1),
    ])
    func monthEnd(first: String, f: Int) {
        let h = Harness { $0.nonComplianceWindowMonths = 1 }
        h.send(contact(id: 1, start: t(first), outcome: "UAAB"))
        h.send(contact(id: 2, start: t("2026-03-31 09:00"), outcome: "UAAB"))
        #expect(h.lastR1?.evInt("failuresInWindow") == f)
        #expect(h.lastR1?.rule == (f == 2 ? R.breachDue : R.warningDue))
    }

    @Test("leap day: 2024-02-29 minus 12 months is 2023-02-28")
    func leapDay() {
        let h = Harness()
        h.send(contact(id: 1, start: t("2023-02-28 10:00"), outcome: "UAAB"))
        h.send(contact(id: 2, start: t("2024-02-29 10:00"), outcome: "UAAB"))
        #expect(h.lastR1?.evInt("failuresInWindow") == 2)
        let h2 = Harness()
        h2.send(contact(id: 1, start: t("2023-02-27 10:00"), outcome: "UAAB"))
        h2.send(contact(id: 2, start: t("2024-02-29 10:00"), outcome: "UAAB"))
        #expect(h2.lastR1?.evInt("failuresInWindow") == 1)
    }

    @Test("a warning older than the window is not recent")
    func oldWarning() {
        let h = Harness()
        h.send(contact(id: 1, start: t("2025-03-01 10:00"), action: "EA02", actionAt: t("2025-03-01 10:00")))
        h.send(contact(id: 2, start: t("2026-03-02 10:00"), outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.warningDue)
        let h2 = Harness()
        h2.send(contact(id: 1, start: t("2025-03-02 00:00"), action: "EA02", actionAt: t("2025-03-02 00:00")))
        h2.send(contact(id: 2, start: t("2026-03-02 10:00"), outcome: "UAAB"))
        #expect(h2.lastR1?.rule == R.breachDue)
    }

    @Test("failures after t (recorded earlier) do not count")
    func laterFailuresNotCounted() {
        let h = Harness()
        h.send(contact(id: 2, start: mon + 2 * day, outcome: "UAAB"))
        h.send(contact(id: 1, start: mon, at: mon + 3 * day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).map(\.triggerContactId) == [2, 1])
        #expect(h.raised(R.breachDue).isEmpty)
    }

    @Test("failures of another case do not count")
    func otherCase() {
        let h = Harness()
        h.send(contact("X100001", id: 1, start: mon, outcome: "UAAB"))
        h.send(contact("X100002", id: 2, start: mon + day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).count == 2)
    }

    // MARK: - Severity

    @Test("warning-due is high for a priority case, with its categories in table order")
    func priorityWarning() throws {
        let h = Harness()
        h.send(reg("ADVV", at: mon - day))
        h.send(reg("RHRH", at: mon - day))
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        let w = try #require(h.raised(R.warningDue).first)
        #expect(w.severity == "high")
        #expect(w.categories == ["HIGH_ROSH", "DOMESTIC_ABUSE"])
    }

    @Test("unknown and MAPPA level 1 registers make no priority case", arguments: [("MAPP", "M1"), ("XXXX", nil), ("RLRH", nil), ("RMRH", nil)] as [(String, String?)])
    func notPriority(code: String, level: String?) {
        let h = Harness()
        h.send(reg(code, level: level, at: mon - day))
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).first?.severity == "medium")
        #expect(h.raised(R.warningDue).first?.categories == [])
    }

    @Test("licence-review: medium for a first failure, high for F >= 2 or a priority case")
    func licence() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB", sentence: "LICENCE"))
        let a = try #require(h.raised(R.licenceReview).first)
        #expect(a.severity == "medium" && a.evString("sentenceType") == "LICENCE" && a.evInt("failuresInWindow") == 1)
        // The sentence type is remembered: the next failure has none but is on licence; F = 2 -> high.
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        let b = try #require(h.raised(R.licenceReview).last)
        #expect(b.triggerContactId == 2 && b.severity == "high" && b.evInt("failuresInWindow") == 2)
        #expect(h.raised(R.breachDue).isEmpty && h.raised(R.warningDue).isEmpty)

        let p = Harness()
        p.send(reg("RCHD", at: mon - day))
        p.send(contact(id: 1, start: mon, outcome: "UAAB", sentence: "LICENCE"))
        #expect(p.raised(R.licenceReview).first?.severity == "high")
        #expect(p.raised(R.licenceReview).first?.categories == ["CHILD_SAFEGUARDING"])
    }

    @Test("licence-review with a recent warning stays licence-review (medium) with lastWarningAt")
    func licenceWithWarning() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "LCL", actionAt: mon, sentence: "LICENCE"))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        let a = try #require(h.raised(R.licenceReview).first)
        #expect(a.severity == "medium" && a.evString("lastWarningAt") == iso(mon))
    }

    @Test("other sentence types follow the community-order path", arguments: ["COMMUNITY_ORDER", "SUSPENDED_SENTENCE_ORDER", "POST_SENTENCE_SUPERVISION"])
    func sentenceTypes(s: String) {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB", sentence: s))
        #expect(h.raised(R.warningDue).first?.evString("sentenceType") == s)
    }

    @Test("breach-due is high even without priority; the case's categories are listed")
    func breachSeverity() {
        let h = Harness()
        h.send(reg("MAPP", level: "M3", at: mon - day))
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        #expect(h.raised(R.breachDue).first?.severity == "high")
        #expect(h.raised(R.breachDue).first?.categories == ["MAPPA_LEVEL_2_3"])
    }

    // MARK: - Resolution

    static let warningCodes = ["EA02", "EA03", "LCL"]
    static let breachCodes = ["EA08", "IBR", "BRE", "EA11", "IMB"]
    static let noEffect = ["EA06", "EA07", "ROM", "EA12", "C173", "XYZ9"]
    static let resolutionCases: [(String, String, Bool)] =
        warningCodes.map { (R.warningDue, $0, true) } + breachCodes.map { (R.warningDue, $0, true) } + [(R.warningDue, "NFA", true)]
        + noEffect.map { (R.warningDue, $0, false) }
        + warningCodes.map { (R.breachDue, $0, false) } + breachCodes.map { (R.breachDue, $0, true) } + [(R.breachDue, "NFA", true)]
        + noEffect.map { (R.breachDue, $0, false) }
        + warningCodes.map { (R.licenceReview, $0, true) } + breachCodes.map { (R.licenceReview, $0, true) }
        + [(R.licenceReview, "NFA", true)] + noEffect.map { (R.licenceReview, $0, false) }

    @Test("resolution table: which action resolves which R1 alert", arguments: resolutionCases)
    func resolutionTable(rule: String, code: String, resolves: Bool) throws {
        let h = Harness()
        switch rule {
        case R.breachDue: h.send(contact(id: 1, start: mon - 5 * day, action: "EA02", actionAt: mon - 5 * day))
        case R.licenceReview: h.send(contact(id: 1, start: mon - 5 * day, sentence: "LICENCE"))
        default: break
        }
        h.send(contact(id: 2, start: mon, outcome: "UAAB"))
        let raised = try #require(h.raised(rule).first)
        #expect(h.alerts.count == 1)
        let out = h.send(contact(id: 3, start: mon + day, outcome: "ATTC", action: code, actionAt: mon + 2 * day))
        if resolves {
            #expect(out.count == 1)
            let r = try #require(out.first)
            #expect(r.topic == "alert.resolved.\(rule)")
            #expect(r.json["eventType"] as? String == "probation-case.supervision-alert.resolved")
            #expect(r.alertId == raised.alertId && r.severity == raised.severity)
            #expect(r.occurredAt == iso(mon + 2 * day))
            #expect(r.resolution == "ENFORCEMENT_ACTION" && r.resolvedBy == 3)
            // The raise's evidence, repeated, plus resolution and resolvedByContactId.
            var ev = r.evidence
            ev.removeValue(forKey: "resolution")
            ev.removeValue(forKey: "resolvedByContactId")
            #expect(NSDictionary(dictionary: ev) == NSDictionary(dictionary: raised.evidence))
        } else {
            #expect(out.isEmpty)
        }
    }

    @Test("only an action effective at or after the trigger contactStart resolves", arguments: [(-1 as Millis, false), (0, true), (1, true)])
    func actionTime(offset: Millis, resolves: Bool) {
        let h = Harness()
        h.send(contact(id: 1, start: mon, at: mon + hour, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon - day, at: mon + 2 * hour, action: "NFA", actionAt: mon + offset))
        #expect(h.resolved(R.warningDue).count == (resolves ? 1 : 0))
    }

    @Test("actionAt defaults to the event's occurredAt")
    func actionAtDefault() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon - 3 * day, at: mon + 5 * hour, action: "EA02"))
        #expect(h.resolved(R.warningDue).first?.occurredAt == iso(mon + 5 * hour))
        // Same event time before the failure: no resolution.
        let h2 = Harness()
        h2.send(contact(id: 1, start: mon, at: mon + 6 * hour, outcome: "UAAB"))
        h2.send(contact(id: 2, start: mon - 3 * day, at: mon - hour, action: "EA02"))
        #expect(h2.resolved(R.warningDue).isEmpty)
    }

    @Test("a warning resolves warning-due but not breach-due; a breach then resolves it")
    func warningDoesNotResolveBreachDue() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).count == 1 && h.raised(R.breachDue).count == 1)
        let out = h.send(contact(id: 3, start: mon + 2 * day, action: "EA02", actionAt: mon + 2 * day))
        #expect(out.map(\.topic) == ["alert.resolved.non-compliance.warning-due"])
        let out2 = h.send(contact(id: 4, start: mon + 3 * day, action: "IBR", actionAt: mon + 3 * day))
        #expect(out2.map(\.topic) == ["alert.resolved.non-compliance.breach-due"])
    }

    @Test("one action resolves every open R1 alert it answers, oldest raised first")
    func oldestFirst() {
        let h = Harness()
        // Raised in the order 2, 1 (contact 1 recorded late with an earlier start).
        h.send(contact(id: 2, start: mon + 2 * day, outcome: "UAAB"))
        h.send(contact(id: 1, start: mon, at: mon + 3 * day, outcome: "UAAB"))
        h.send(contact(id: 3, start: mon + 4 * day, outcome: "UAAB")) // breach-due (F = 3)
        let out = h.send(contact(id: 9, start: mon + 5 * day, action: "NFA", actionAt: mon + 5 * day))
        #expect(out.map(\.triggerContactId) == [2, 1, 3])
        #expect(out.allSatisfy { $0.isResolve && $0.resolvedBy == 9 })
    }

    @Test("an action only resolves alerts whose trigger started at or before it")
    func partialResolution() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + 4 * day, outcome: "UAAB"))
        let out = h.send(contact(id: 9, start: mon + day, at: mon + 5 * day, action: "NFA", actionAt: mon + 2 * day))
        #expect(out.map(\.triggerContactId) == [1])
    }

    @Test("a failure and its warning in one event: raise, then its resolution")
    func raiseThenResolve() throws {
        let h = Harness()
        let out = h.send(contact(id: 1, start: mon, at: mon + hour, outcome: "UAAB", action: "EA02"))
        #expect(out.map(\.topic) == ["alert.raised.non-compliance.warning-due", "alert.resolved.non-compliance.warning-due"])
        #expect(out[0].alertId == out[1].alertId)
        #expect(out.map(\.seq) == [1, 2])
        #expect(out[1].occurredAt == iso(mon + hour))
        #expect(out[1].resolvedBy == 1)
    }

    @Test("a failure and a breach in one event: warning-due raised then resolved, and the breach resets counting")
    func failureWithBreach() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        let out = h.send(contact(id: 2, start: mon + day, outcome: "UAAB", action: "EA08"))
        #expect(out.map(\.topic) == ["alert.raised.non-compliance.breach-due", "alert.resolved.non-compliance.warning-due",
                                     "alert.resolved.non-compliance.breach-due"])
        h.send(contact(id: 3, start: mon + 3 * day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).count == 2)
    }

    // MARK: - Reclassification

    @Test("reclassification resolves as RECLASSIFIED at W, and the contact stops counting")
    func reclassified() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(tick(mon + 3 * day))
        // The update's own occurredAt is earlier than W.
        let out = h.send(contact(id: 1, v: 2, start: mon, at: mon + 2 * day, outcome: "AAME"))
        #expect(out.count == 1)
        let r = try #require(out.first)
        #expect(r.topic == "alert.resolved.non-compliance.warning-due")
        #expect(r.resolution == "RECLASSIFIED" && r.resolvedBy == 1)
        #expect(r.occurredAt == iso(mon + 3 * day))
        #expect(r.triggerContactVersion == 1)
        h.send(contact(id: 2, start: mon + 4 * day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).last?.evInt("failuresInWindow") == 1)
        #expect(h.raised(R.breachDue).isEmpty)
    }

    @Test("a version with no outcome any more is not a failure: RECLASSIFIED")
    func reclassifiedNoOutcome() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 1, v: 2, start: mon, at: mon + day))
        #expect(h.resolved(R.warningDue).first?.resolution == "RECLASSIFIED")
    }

    @Test("a failure that stays a failure in a new version raises nothing new and resolves nothing")
    func stillFailure() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        let out = h.send(contact(id: 1, v: 2, start: mon, at: mon + day, outcome: "AFTC"))
        #expect(out.isEmpty)
        h.send(contact(id: 2, start: mon + 2 * day, outcome: "UAAB"))
        #expect(h.raised(R.breachDue).first?.evInt("failuresInWindow") == 2)
    }

    @Test("a contact that becomes a failure in a later version raises with that version as trigger")
    func becomesFailure() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon)) // planned
        h.send(contact(id: 1, v: 3, start: mon, at: mon + day, outcome: "UAAB"))
        let w = try #require(h.raised(R.warningDue).first)
        #expect(w.triggerContactVersion == 3)
        #expect(w.alertId == alertIdText("\(R.warningDue)|CRN|X100001|1|3"))
    }

    @Test("failure -> accepted -> failure again raises a second alert with the new version")
    func failureAgain() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 1, v: 2, start: mon, at: mon + day, outcome: "AAME"))
        h.send(contact(id: 1, v: 3, start: mon, at: mon + 2 * day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).map(\.triggerContactVersion) == [1, 3])
        #expect(Set(h.raised(R.warningDue).map(\.alertId)).count == 2)
    }

    @Test("reclassification of an overdue alert: R1 then R6 resolution, same occurredAt and resolution")
    func reclassifiedOverdue() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(tick(t("2026-03-13 09:00")))
        #expect(h.raised(R.overdue).count == 1)
        let out = h.send(contact(id: 1, v: 2, start: mon, at: t("2026-03-16 09:00"), outcome: "AAME"))
        #expect(out.map(\.topic) == ["alert.resolved.non-compliance.warning-due", "alert.resolved.non-compliance.enforcement-overdue"])
        #expect(out.allSatisfy { $0.resolution == "RECLASSIFIED" && $0.resolvedBy == 1 && $0.occurredAt == iso(t("2026-03-16 09:00")) })
        #expect(out[1].alertId == h.raised(R.overdue).first?.alertId)
    }
}
