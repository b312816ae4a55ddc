import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R6 — enforcement overdue (rules.md).
@Suite("R6 enforcement overdue", .computing)
struct RuleR6Tests {
    let mon = t("2026-03-02 10:00") // deadline (8 business days): Thursday 2026-03-12

    @Test("raised once the date of W is after the deadline; occurredAt = W; exactly its evidence", arguments: [
        ("2026-03-12T23:59:59.999Z", false), ("2026-03-13T00:00:00Z", true),
    ])
    func deadline(w: String, raises: Bool) throws {
        let h = Harness()
        let r1 = try #require(h.send(contact(id: 1, start: mon, outcome: "UAAB")).first)
        let out = h.send(tick(t(w)))
        #expect(out.count == (raises ? 1 : 0))
        guard raises else { return }
        let a = try #require(out.first)
        #expect(a.topic == "alert.raised.non-compliance.enforcement-overdue")
        #expect(a.severity == "high")
        #expect(a.occurredAt == iso(t(w)))
        #expect(a.subjectType == "CRN" && a.subjectValue == "X100001")
        #expect(keys(a.evidence) == ["deadline", "overdueAlertId", "overdueRule", "triggerContactId", "triggerContactVersion"])
        #expect(a.evString("deadline") == "2026-03-12")
        #expect(a.evString("overdueAlertId") == r1.alertId)
        #expect(a.evString("overdueRule") == R.warningDue)
        #expect(a.triggerContactId == 1 && a.triggerContactVersion == 1)
        // Once only.
        #expect(h.send(tick(t(w) + 5 * day)).isEmpty)
    }

    /// A contact forgotten on one case with its R1 and R6 open comes back, a new contact, under another case, fails
    /// again and raises an R6 there. The first case's R6, resolved later, keeps its own alertId: the cache of R6 ids,
    /// keyed by contactId, held the other case's (an assertion in debug builds, the other case's alertId in release;
    /// the store's hunter, session 45).
    @Test("a forgotten contact back under another case raising its own R6: each case's R6 is resolved under its own alertId")
    func forgottenContactBackUnderAnotherCase() throws {
        let h = Harness { $0.contactRetentionDays = 30; $0.complianceRateWindowDays = 30 }
        h.send(contact("X100001", id: 900, v: 1, start: mon, outcome: "UAAB"))
        h.send(tick(mon + 15 * day))
        let again = mon + 35 * day
        h.send(tick(again - hour))  // contact 900 forgotten: past the 30 days' retention
        h.send(contact("X200002", id: 900, v: 1, start: again, outcome: "UAAB"))
        h.send(tick(again + 15 * day))
        let raised = h.raised(R.overdue)
        #expect(raised.map(\.subjectValue) == ["X100001", "X200002"], "\(raised.map(\.body))")
        let warned = again + 20 * day
        let first = h.send(contact("X100001", id: 901, start: warned, outcome: "ATTC", action: "EA02", actionAt: warned))
            .filter { $0.isResolve && $0.rule == R.overdue }
        #expect(first.map(\.alertId) == [raised[0].alertId], "\(first.map(\.body))")
        let second = h.send(contact("X200002", id: 902, start: warned, outcome: "ATTC", action: "EA02", actionAt: warned))
            .filter { $0.isResolve && $0.rule == R.overdue }
        #expect(second.map(\.alertId) == [raised[1].alertId], "\(second.map(\.body))")
    }

    @Test("a state written under another enforcementDeadlineBusinessDays (a holiday list or zone likewise): open R1 alerts' deadlines follow the settings in force, as in a fresh run with them (fault tester, session 23: 8 → 3 raised the overdue alert 6 days late; 3 → 8 said '8 business days' of a 3-day deadline)", arguments: [
        (8, 3, "2026-03-05"), (3, 8, "2026-03-12"), (8, 1, "2026-03-03"),
    ])
    func deadlineFollowsTheSettings(before: Int, after: Int, deadline: String) throws {
        let first = Harness { $0.enforcementDeadlineBusinessDays = before }
        first.send(contact(id: 1, start: mon, outcome: "UAAB"))
        var settings = EngineSettings()
        settings.enforcementDeadlineBusinessDays = after
        let restarted = Harness(engine: try Engine(settings: settings, state: first.engine.state))
        let fresh = Harness { $0.enforcementDeadlineBusinessDays = after }
        fresh.send(contact(id: 1, start: mon, outcome: "UAAB"))
        for h in [restarted, fresh] {
            h.send(tick(t(deadline + " 23:00") - hour))
            #expect(h.raised(R.overdue).isEmpty, "raised before the end of \(deadline)")
            h.send(tick(t(deadline + " 23:00") + hour + 1))
            let a = try #require(h.raised(R.overdue).first, "not raised after \(deadline)")
            #expect(a.evString("deadline") == deadline)
            #expect(a.reason?.contains("(\(after) business \(after == 1 ? "day" : "days") after the failure)") == true, "\(a.reason ?? "")")
        }
        #expect(restarted.raised(R.overdue).map(\.alertId) == fresh.raised(R.overdue).map(\.alertId))
    }

    @Test("a state written under another bank-holiday list: an open R1 alert's deadline follows the list in force, as in a fresh run with it (reviewer, session 23: only N was tested)")
    func deadlineFollowsTheHolidays() throws {
        var settings = EngineSettings()
        settings.enforcementDeadlineBusinessDays = 3
        let first = Harness(engine: try Engine(settings: settings))
        first.send(contact(id: 1, start: mon, outcome: "UAAB"))
        settings.bankHolidays = ["2026-03-03", "2026-03-04"].map { LocalDate(parsing: $0)! }
        let restarted = Harness(engine: try Engine(settings: settings, state: first.engine.state))
        let fresh = Harness(engine: try Engine(settings: settings))
        fresh.send(contact(id: 1, start: mon, outcome: "UAAB"))
        for h in [restarted, fresh] {
            h.send(tick(t("2026-03-09 22:00")))
            #expect(h.raised(R.overdue).isEmpty, "raised before the end of 2026-03-09 (3 business days after 2 March, 3 and 4 March holidays)")
            h.send(tick(t("2026-03-10 00:00:01")))
            #expect(h.raised(R.overdue).first?.evString("deadline") == "2026-03-09")
        }
    }

    @Test("an overdue alert raised under one N keeps its deadline after a restart with another: its resolution repeats the raise's (reviewer, session 23: the resolution said the recomputed date)")
    func raisedOverdueKeepsItsDeadline() throws {
        let first = Harness { $0.enforcementDeadlineBusinessDays = 3 }
        first.send(contact(id: 1, start: mon, outcome: "UAAB"))
        first.send(tick(t("2026-03-06 10:00")))
        let raised = try #require(first.raised(R.overdue).first)
        #expect(raised.evString("deadline") == "2026-03-05")
        let restarted = Harness(engine: try Engine(settings: EngineSettings(), state: first.engine.state))
        let out = restarted.send(contact(id: 1, v: 2, start: mon, at: t("2026-03-07 10:00"), outcome: "ATTC"))
        let resolved = try #require(out.first { $0.topic == "alert.resolved.\(R.overdue)" }, "\(out.map(\.topic))")
        #expect(resolved.alertId == raised.alertId && resolved.evString("deadline") == "2026-03-05")
    }

    @Test("the deadline skips weekends", arguments: [
        ("2026-03-06 10:00", 1, "2026-03-09"), // Friday -> Monday
        ("2026-03-07 10:00", 1, "2026-03-09"), // Saturday -> Monday
        ("2026-03-08 10:00", 2, "2026-03-10"), // Sunday -> Tuesday
        ("2026-03-02 10:00", 5, "2026-03-09"),
    ])
    func weekends(failure: String, n: Int, deadline: String) throws {
        let h = Harness { $0.enforcementDeadlineBusinessDays = n }
        h.send(contact(id: 1, start: t(failure), outcome: "UAAB"))
        h.send(tick(t(deadline + " 23:00") - hour)) // still the deadline date (GMT)
        #expect(h.raised(R.overdue).isEmpty)
        h.send(tick(t(deadline + " 23:00") + hour + 1))
        let a = try #require(h.raised(R.overdue).first)
        #expect(a.evString("deadline") == deadline)
    }

    @Test("default bank holidays are skipped (Good Friday and Easter Monday 2026); dates are London dates in BST")
    func bankHolidays() throws {
        let h = Harness { $0.enforcementDeadlineBusinessDays = 1 }
        h.send(contact(id: 1, start: t("2026-04-02 10:00"), outcome: "UAAB")) // Thursday
        h.send(tick(t("2026-04-07T22:59:59Z"))) // 23:59:59 BST on Tuesday 7 April: the deadline date
        #expect(h.raised(R.overdue).isEmpty)
        h.send(tick(t("2026-04-07T23:00:00Z"))) // 00:00 BST on Wednesday 8 April
        #expect(h.raised(R.overdue).first?.evString("deadline") == "2026-04-07")
    }

    @Test("a configured bank-holiday list replaces the default one")
    func configuredHolidays() {
        let h = Harness {
            $0.enforcementDeadlineBusinessDays = 1
            $0.bankHolidays = []
        }
        h.send(contact(id: 1, start: t("2026-04-02 10:00"), outcome: "UAAB"))
        h.send(tick(t("2026-04-04 10:00")))
        #expect(h.raised(R.overdue).first?.evString("deadline") == "2026-04-03")

        let h2 = Harness {
            $0.enforcementDeadlineBusinessDays = 1
            $0.bankHolidays = [LocalDate(parsing: "2026-03-03")!]
        }
        h2.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h2.send(tick(t("2026-03-05 10:00")))
        #expect(h2.raised(R.overdue).first?.evString("deadline") == "2026-03-04")
    }

    @Test("trigger date and W date are London dates around the BST change")
    func bstTrigger() throws {
        let h = Harness()
        // 2026-03-29T23:30Z is 00:30 BST on Monday 30 March: deadline Monday 13 April (3 and 6 April are holidays).
        h.send(contact(id: 1, start: t("2026-03-29T23:30:00Z"), at: t("2026-03-29T23:40:00Z"), outcome: "UAAB"))
        h.send(tick(t("2026-04-13T22:59:59Z")))
        #expect(h.raised(R.overdue).isEmpty)
        h.send(tick(t("2026-04-13T23:00:00Z")))
        let a = try #require(h.raised(R.overdue).first)
        #expect(a.evString("deadline") == "2026-04-13")
        #expect(a.occurredAt == "2026-04-13T23:00:00Z")
    }

    @Test("several overdue alerts in one step: by deadline, then CRN, then trigger contactId")
    func ordering() {
        let h = Harness()
        h.send(contact("X100002", id: 30, start: mon, outcome: "UAAB"))
        h.send(contact("X100001", id: 5, start: mon + day, outcome: "UAAB")) // Tuesday: later deadline
        h.send(contact("X100001", id: 20, start: mon, at: mon + day + 2 * hour, outcome: "UAAB"))
        h.send(contact("X100001", id: 10, start: mon, at: mon + day + 3 * hour, outcome: "UAAB"))
        let out = h.send(tick(t("2026-03-20 10:00")))
        #expect(out.map(\.triggerContactId) == [10, 20, 30, 5])
        #expect(out.map { $0.evString("deadline") } == ["2026-03-12", "2026-03-12", "2026-03-12", "2026-03-13"])
        #expect(out.allSatisfy { $0.rule == R.overdue && $0.occurredAt == "2026-03-20T10:00:00Z" })
    }

    @Test("a late-recorded failure gets R1 and R6 in the same step; occurredAt of R6 is W even if W is later than the event")
    func lateFailure() {
        let h = Harness()
        h.send(tick(t("2026-03-20 10:00")))
        let out = h.send(contact(id: 1, start: mon, at: t("2026-03-19 10:00"), outcome: "UAAB"))
        #expect(out.map(\.rule) == [R.warningDue, R.overdue])
        #expect(out.last?.occurredAt == "2026-03-20T10:00:00Z")
        #expect(out.last?.evString("overdueAlertId") == out.first?.alertId)
    }

    @Test("no R6 for an R1 alert resolved in the same step, nor for other rules")
    func noneForResolved() {
        let h = Harness()
        h.send(tick(t("2026-03-20 10:00")))
        h.send(contact(id: 1, start: mon, at: t("2026-03-20 11:00"), outcome: "UAAB", action: "EA02"))
        h.send(contact(id: 2, start: mon, mode: "TELEPHONE", outcome: "ATTC"))
        h.send(contact(id: 3, start: mon + 40 * day, at: mon + 40 * day, mode: "TELEPHONE", outcome: "ATTC"))
        #expect(h.raised(R.telephoneOnly).count == 1)
        #expect(h.raised(R.overdue).isEmpty)
    }

    @Test("R6 resolution right after its R1 resolution, copying resolution, resolvedByContactId and occurredAt")
    func resolutionCopies() throws {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        h.send(tick(t("2026-03-20 10:00")))
        let r6 = h.raised(R.overdue)
        #expect(r6.count == 2)
        let out = h.send(contact(id: 3, start: t("2026-03-20 11:00"), action: "NFA", actionAt: t("2026-03-20 12:00")))
        #expect(out.map(\.topic) == ["alert.resolved.non-compliance.warning-due", "alert.resolved.non-compliance.enforcement-overdue",
                                     "alert.resolved.non-compliance.breach-due", "alert.resolved.non-compliance.enforcement-overdue"])
        #expect(out.allSatisfy { $0.resolution == "ENFORCEMENT_ACTION" && $0.resolvedBy == 3 && $0.occurredAt == "2026-03-20T12:00:00Z" })
        #expect(out[1].alertId == r6[0].alertId && out[3].alertId == r6[1].alertId)
        #expect(out[1].severity == "high")
        var ev = out[1].evidence
        ev.removeValue(forKey: "resolution")
        ev.removeValue(forKey: "resolvedByContactId")
        #expect(NSDictionary(dictionary: ev) == NSDictionary(dictionary: r6[0].evidence))
        #expect(out.map(\.seq) == [5, 6, 7, 8])
    }

    @Test("a warning resolves warning-due and its R6, not the breach-due's R6")
    func partial() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        h.send(tick(t("2026-03-20 10:00")))
        let out = h.send(contact(id: 3, start: t("2026-03-20 11:00"), action: "EA02"))
        #expect(out.map(\.rule) == [R.warningDue, R.overdue])
        #expect(out.map(\.triggerContactId) == [1, 1])
    }

    @Test("registration events, duplicates and stale contacts run step 6")
    func step6Everywhere() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon, outcome: "ATTC"))
        #expect(h.send(contact(id: 2, start: mon, at: t("2026-03-13 01:00"), outcome: "ATTC")).map(\.rule) == [R.overdue])
        let h2 = Harness()
        h2.send(contact(id: 1, start: mon, outcome: "UAAB"))
        // A stale contact (more than 400 days before W as moved by itself) still moves W and runs step 6.
        #expect(h2.send(contact(id: 9, start: t("2025-01-01 10:00"), at: t("2026-03-13 01:00"), outcome: "UAAB")).map(\.rule) == [R.overdue])
        #expect(h2.raised(R.warningDue).count == 1)
    }

    @Test("an invalid or ignored event does not move W")
    func invalidDoesNotMoveW() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        let late = q(iso(t("2026-03-20 10:00")))
        h.send(#"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":\#(late),"personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]},"additionalInformation":{}}"#)
        h.send(#"{"eventType":"probation-case.something.else","version":1,"occurredAt":\#(late)}"#)
        #expect(h.notices.count == 1)
        #expect(h.raised(R.overdue).isEmpty)
        h.send(tick(mon + 2 * day))
        #expect(h.raised(R.overdue).isEmpty)
        h.send(tick(t("2026-03-13 10:00")))
        #expect(h.raised(R.overdue).count == 1)
    }

    @Test("W never moves back: an event with an earlier occurredAt keeps W")
    func wNeverBack() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(tick(t("2026-03-10 10:00")))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB")) // its occurredAt is before W
        #expect(h.raised(R.overdue).isEmpty)
        h.send(tick(t("2026-03-13 00:00")))
        #expect(h.raised(R.overdue).map(\.triggerContactId) == [1])
        h.send(tick(t("2026-03-11 00:00")))
        #expect(h.raised(R.overdue).count == 1)
    }
}
