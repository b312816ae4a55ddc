import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R7 — Outcome overdue (rules.md), one test per sentence of the section. 2026-06-01 is a Monday.
@Suite("R7 outcome overdue", .computing)
struct RuleR7Tests {
    static let r7 = "outcome-overdue"

    static func harness(_ configure: (inout EngineSettings) -> Void = { _ in }) -> Harness {
        Harness { s in
            s.outcomeOverdueEnabled = true
            configure(&s)
        }
    }

    let monday = t("2026-06-01 10:00")

    @Test("no outcome: raised once the date of W is past the 5th business day, with its evidence")
    func noOutcome() throws {
        let h = Self.harness()
        h.send(contact("X100001", id: 71, start: monday, at: monday - 3 * day))
        h.send(tick(t("2026-06-08 22:59")))  // 23:59 BST on the deadline itself
        #expect(h.raised(Self.r7).isEmpty)
        let w = t("2026-06-08 23:00")  // 00:00 BST on 9 June
        h.send(tick(w))
        let a = try #require(h.raised(Self.r7).first)
        #expect(h.raised(Self.r7).count == 1)
        #expect(a.topic == "alert.raised.outcome-overdue")
        #expect(a.severity == "medium")
        #expect(a.occurredAt == iso(w))
        #expect(a.subjectValue == "X100001" && a.subjectType == "CRN")
        #expect(a.alertId == alertIdText("outcome-overdue|CRN|X100001|71|1"))
        #expect(a.triggerContactId == 71 && a.triggerContactVersion == 1)
        #expect(keys(a.evidence) == ["categories", "contactStart", "deadline", "outcomeCode", "triggerContactId", "triggerContactVersion"])
        #expect(a.evString("contactStart") == iso(monday))
        #expect(a.ev("outcomeCode") is NSNull)
        #expect(a.evString("deadline") == "2026-06-08")
        #expect(a.categories == [])
        #expect(a.reason == "No outcome recorded for contact 71 on 2026-06-01; due by 2026-06-08")
    }

    @Test("a pending code (AFTA) awaits an outcome; its code is the evidence's outcomeCode")
    func pendingCode() throws {
        let h = Self.harness()
        h.send(contact(id: 72, start: monday, at: monday + hour, outcome: "AFTA"))
        h.send(tick(t("2026-06-09 09:00")))
        let a = try #require(h.raised(Self.r7).first)
        #expect(a.evString("outcomeCode") == "AFTA")
        #expect(a.reason == "No outcome recorded for contact 72 on 2026-06-01 (decision pending: AFTA); due by 2026-06-08")
    }

    @Test("a code not in the table with complied and enforceable false awaits an outcome; any other does not",
          arguments: [((true, false, false), true), ((false, false, false), true), ((false, false, true), false),
                      ((true, true, false), false)] as [((Bool, Bool, Bool), Bool)])
    func localCode(flags: (Bool, Bool, Bool), awaits: Bool) {
        let h = Self.harness()
        h.send(contact(id: 73, start: monday, at: monday + hour, outcome: "ZLOC",
                       flags: (attended: flags.0, complied: flags.1, enforceable: flags.2)))
        h.send(tick(t("2026-06-09 09:00")))
        #expect(h.raised(Self.r7).count == (awaits ? 1 : 0))
        if awaits { #expect(h.raised(Self.r7).first?.evString("outcomeCode") == "ZLOC") }
    }

    @Test("the deadline counts business days: over a weekend", arguments: [("2026-06-12 10:00", false), ("2026-06-13 10:00", true)])
    func overWeekend(w: String, raised: Bool) {
        let friday = t("2026-06-05 10:00")
        let h = Self.harness()
        h.send(contact(id: 74, start: friday, at: friday - day))
        h.send(tick(t(w)))
        #expect(h.raised(Self.r7).count == (raised ? 1 : 0))
        if raised { #expect(h.raised(Self.r7).first?.evString("deadline") == "2026-06-12") }
    }

    @Test("the deadline skips bank holidays (4 May 2026) and honours a configured list",
          arguments: [(true, "2026-05-11"), (false, "2026-05-08")])
    func overBankHoliday(defaultHolidays: Bool, deadline: String) throws {
        let friday = t("2026-05-01 10:00")
        let h = Self.harness { if !defaultHolidays { $0.bankHolidays = [] } }
        h.send(contact(id: 75, start: friday, at: friday - day))
        h.send(tick(t("2026-05-20 10:00")))
        let a = try #require(h.raised(Self.r7).first)
        #expect(a.evString("deadline") == deadline)
    }

    @Test("dates are Europe/London dates: a contact at 23:30Z on 1 June is on 2 June (BST)")
    func localDates() throws {
        let h = Self.harness()
        let start = t("2026-06-01 23:30")
        h.send(contact(id: 76, start: start, at: start - day))
        h.send(tick(t("2026-06-09 22:59")))
        #expect(h.raised(Self.r7).isEmpty)
        h.send(tick(t("2026-06-09 23:00")))
        let a = try #require(h.raised(Self.r7).first)
        #expect(a.evString("deadline") == "2026-06-09")
        #expect(a.reason?.contains("on 2026-06-02") == true)
    }

    @Test("several raises in one step come after R6, ordered by deadline, then CRN, then contactId as a number")
    func ordering() throws {
        let h = Self.harness()
        // R1 failure on 1 June: its R6 deadline is 11 June (8 business days).
        h.send(contact("X300000", id: 1, start: monday, outcome: "UAAB"))
        h.send(contact("X200000", id: 900, start: monday + day, at: monday - day))   // deadline 9 June
        h.send(contact("X100000", id: 901, start: monday + day, at: monday - day))   // deadline 9 June, lower CRN
        h.send(contact("X100000", id: 80, start: monday + day, at: monday - day))    // deadline 9 June, lower id
        h.send(contact("X900000", id: 5, start: monday, at: monday - day))           // deadline 8 June
        let step = h.send(tick(t("2026-06-15 09:00")))
        #expect(step.map { $0.rule ?? "" } == [R.overdue, Self.r7, Self.r7, Self.r7, Self.r7])
        #expect(step.dropFirst().map { $0.triggerContactId ?? 0 } == [5, 80, 901, 900])
    }

    @Test("a newer version with an outcome resolves it: OUTCOME_RECORDED at W, repeating the raise's evidence")
    func outcomeRecorded() throws {
        let h = Self.harness()
        h.send(contact(id: 77, start: monday, at: monday - day))
        h.send(tick(t("2026-06-09 09:00")))
        let raise = try #require(h.raised(Self.r7).first)
        let w = t("2026-06-10 09:00")
        h.send(contact(id: 77, v: 2, start: monday, at: w, outcome: "ATTC"))
        let r = try #require(h.resolved(Self.r7).first)
        #expect(r.alertId == raise.alertId && r.severity == raise.severity)
        #expect(r.occurredAt == iso(w))
        #expect(r.resolution == "OUTCOME_RECORDED" && r.resolvedBy == 77)
        var expected = raise.evidence
        expected["resolution"] = "OUTCOME_RECORDED"
        expected["resolvedByContactId"] = 77
        #expect(NSDictionary(dictionary: r.evidence) == NSDictionary(dictionary: expected))
        #expect(r.reason == "Outcome ATTC recorded for contact 77")
        #expect(h.engine.state.cases[0].openOutcomeOverdue.isEmpty)
        // The per-rule counters the metrics read: the same path as every other rule, by the rule's name.
        let rule = try #require(Rule.allCases.first { $0.name == "outcome-overdue" })
        #expect(h.engine.counters.raisedByRule[Int(rule.rawValue)] == 1)
        #expect(h.engine.counters.resolvedByRule[Int(rule.rawValue)] == 1)
    }

    @Test("a failure recorded late resolves R7 first (step 3), then raises R1 (step 4)")
    func failureRecordedLate() throws {
        let h = Self.harness()
        h.send(contact(id: 78, start: monday, at: monday + hour, outcome: "AFTA"))
        h.send(tick(t("2026-06-09 09:00")))
        let step = h.send(contact(id: 78, v: 2, start: monday, at: t("2026-06-10 09:00"), outcome: "UAAB"))
        #expect(step.map { $0.topic } == ["alert.resolved.outcome-overdue", "alert.raised.non-compliance.warning-due"])
    }

    @Test("a version moved to a date whose deadline has not passed resolves it (RESCHEDULED); the new deadline applies and raises a new alert")
    func rescheduledThenRaisedAgain() throws {
        let h = Self.harness()
        h.send(contact(id: 79, start: monday, at: monday - day))
        h.send(tick(t("2026-06-09 09:00")))
        let first = try #require(h.raised(Self.r7).first)
        let moved = t("2026-06-17 10:00")
        let w = t("2026-06-11 12:00")
        h.send(contact(id: 79, v: 2, start: moved, at: w))
        let r = try #require(h.resolved(Self.r7).first)
        #expect(r.resolution == "RESCHEDULED" && r.occurredAt == iso(w) && r.alertId == first.alertId)
        #expect(r.reason == "Contact 79 rescheduled to 2026-06-17")
        h.send(tick(t("2026-06-24 12:00")))
        #expect(h.raised(Self.r7).count == 1)
        h.send(tick(t("2026-06-25 08:00")))
        let second = try #require(h.raised(Self.r7).last)
        #expect(h.raised(Self.r7).count == 2)
        #expect(second.alertId == alertIdText("outcome-overdue|CRN|X100001|79|2"))
        #expect(second.alertId != first.alertId)
        #expect(second.evString("deadline") == "2026-06-24" && second.triggerContactVersion == 2)
    }

    @Test("after OUTCOME_RECORDED, a later version that awaits an outcome past its deadline raises a new alert")
    func raisedAgainAfterOutcome() throws {
        let h = Self.harness()
        h.send(contact(id: 81, start: monday, at: monday - day))
        h.send(tick(t("2026-06-09 09:00")))
        h.send(contact(id: 81, v: 2, start: monday, at: t("2026-06-10 09:00"), outcome: "ATTC"))
        // The outcome taken back (a version without one), still past the deadline: raised at once, in step 6.
        let step = h.send(contact(id: 81, v: 3, start: monday, at: t("2026-06-11 09:00")))
        #expect(step.map(\.topic) == ["alert.raised.outcome-overdue"])
        #expect(step.first?.alertId == alertIdText("outcome-overdue|CRN|X100001|81|3"))
    }

    @Test("an update that still awaits an outcome past its deadline leaves the alert open and raises nothing more")
    func staysOverdue() {
        let h = Self.harness()
        h.send(contact(id: 82, start: monday, at: monday - day))
        h.send(tick(t("2026-06-09 09:00")))
        let step = h.send(contact(id: 82, v: 2, start: monday + hour, at: t("2026-06-10 09:00"), setting: "PRIVATE_ROOM"))
        #expect(step.isEmpty)
        h.send(tick(t("2026-06-30 09:00")))
        #expect(h.of(Self.r7).count == 1)
        #expect(h.engine.state.cases[0].openOutcomeOverdue.count == 1)
        #expect(h.engine.state.outcomeTimers.isEmpty)
    }

    @Test("duplicates and stale contacts change nothing, but their step 6 lets other contacts' alerts rise")
    func duplicatesAndStale() {
        let h = Self.harness()
        h.send(contact(id: 83, start: monday, at: monday - day))
        h.send(contact("X100002", id: 84, start: monday - 10 * day, at: monday - 11 * day))
        h.send(tick(t("2026-06-05 09:00")))  // 84 raised (deadline 1 June: 25 May is a bank holiday)
        #expect(h.raised(Self.r7).map(\.triggerContactId) == [84])
        // A duplicate of 84's version 1 with an outcome changes nothing; its W raises 83.
        let dup = h.send(contact("X100002", id: 84, v: 1, start: monday - 10 * day, at: t("2026-06-09 09:00"), outcome: "ATTC"))
        #expect(dup.map(\.triggerContactId) == [83])
        #expect(h.resolved(Self.r7).isEmpty)
        // A stale contact (older than the retention) arms nothing and resolves nothing.
        let stale = h.send(contact("X100002", id: 85, start: monday - 500 * day, at: t("2026-06-10 09:00")))
        #expect(stale.isEmpty)
        #expect(h.engine.state.outcomeTimers[85] == nil)
    }

    @Test("a forgotten contact raises nothing; an R7 alert already open on it stays open")
    func forgotten() {
        // Retention of 3 days: a contact is forgotten before its 5-business-day deadline.
        let h = Self.harness { $0.contactRetentionDays = 3; $0.complianceRateWindowDays = 3 }
        h.send(contact(id: 86, start: monday, at: monday - day))
        h.send(tick(t("2026-06-20 09:00")))
        #expect(h.raised(Self.r7).isEmpty)
        #expect(h.engine.state.outcomeTimers.isEmpty)
        // With 1 business day, 87 raises before it is forgotten; its alert outlives it.
        let g = Self.harness { $0.contactRetentionDays = 3; $0.complianceRateWindowDays = 3; $0.outcomeOverdueBusinessDays = 1 }
        g.send(contact(id: 87, start: monday, at: monday - day))
        g.send(tick(t("2026-06-03 09:00")))
        #expect(g.raised(Self.r7).count == 1)
        g.send(tick(t("2026-06-10 09:00")))
        #expect(g.engine.state.contacts[87] == nil)
        #expect(g.engine.state.cases[0].openOutcomeOverdue.count == 1)
        #expect(g.resolved(Self.r7).isEmpty)
    }

    @Test("severity high for a priority case, with its categories")
    func priority() throws {
        let h = Self.harness()
        h.send(reg("ADVP", at: monday - 5 * day))
        h.send(contact(id: 88, start: monday, at: monday - day))
        h.send(tick(t("2026-06-09 09:00")))
        let a = try #require(h.raised(Self.r7).first)
        #expect(a.severity == "high")
        #expect(a.categories == ["DOMESTIC_ABUSE"])
    }

    @Test("disabled: nothing armed or raised")
    func disabled() {
        let h = Harness()
        h.send(contact(id: 89, start: monday, at: monday - day, outcome: nil))
        h.send(contact(id: 90, start: monday, at: monday + hour, outcome: "AFTA"))
        h.send(tick(t("2026-07-01 09:00")))
        #expect(h.of(Self.r7).isEmpty)
        #expect(h.engine.state.outcomeTimers.isEmpty)
    }

    @Test("enabling R7 on a state written with it off raises nothing until a contact's next version")
    func enabledLater() throws {
        let off = Harness()
        off.send(contact(id: 91, start: monday, at: monday - day))
        off.send(contact(id: 92, start: monday, at: monday - day))
        var on = EngineSettings()
        on.outcomeOverdueEnabled = true
        let h = Harness(engine: try Engine(settings: on, state: off.engine.state))
        h.send(tick(t("2026-06-20 09:00")))
        #expect(h.of(Self.r7).isEmpty)
        let step = h.send(contact(id: 92, v: 2, start: monday, at: t("2026-06-21 09:00")))
        #expect(step.map(\.triggerContactId) == [92])
    }

    @Test("disabling R7 still resolves its open alerts (step 3), and arms and raises nothing more")
    func disabledLater() throws {
        let on = Self.harness()
        on.send(contact(id: 93, start: monday, at: monday - day))
        on.send(contact(id: 94, start: monday, at: monday - day))
        on.send(contact(id: 95, start: monday + 2 * day, at: monday - day))
        on.send(tick(t("2026-06-09 09:00")))
        #expect(on.raised(Self.r7).count == 2)
        let h = Harness(engine: try Engine(settings: EngineSettings(), state: on.engine.state))
        let resolved = h.send(contact(id: 93, v: 2, start: monday, at: t("2026-06-10 09:00"), outcome: "ATTC"))
        #expect(resolved.map(\.topic) == ["alert.resolved.outcome-overdue"])
        let moved = h.send(contact(id: 94, v: 2, start: t("2026-06-22 10:00"), at: t("2026-06-10 10:00")))
        #expect(moved.first?.resolution == "RESCHEDULED")
        h.send(tick(t("2026-07-10 09:00")))
        #expect(h.raised(Self.r7).isEmpty, "95's timer, armed while enabled, does not fire while disabled")
    }
}
