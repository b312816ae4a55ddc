import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// R2 — telephone-only supervision (rules.md).
@Suite("R2 telephone-only", .computing)
struct RuleR2Tests {
    let t0 = t("2026-03-02 10:00")

    func phone(_ id: UInt64, _ start: Millis, crn: String = "X100001", v: UInt64? = nil, outcome: String? = "ATTC",
               mode: String = "TELEPHONE") -> String {
        contact(crn, id: id, v: v, start: start, mode: mode, outcome: outcome)
    }

    func office(_ id: UInt64, _ start: Millis, crn: String = "X100001", v: UInt64? = nil, outcome: String? = "ATTC",
                mode: String = "OFFICE") -> String {
        contact(crn, id: id, v: v, start: start, mode: mode, outcome: outcome)
    }

    @Test("limit 28 days: exactly 28 days does not raise, more does", arguments: [(28 * day, false), (28 * day + 1000, true), (28 * day + 1, true)])
    func limit(elapsed: Millis, raises: Bool) throws {
        let h = Harness()
        h.send(office(1, t0))
        let out = h.send(phone(2, t0 + elapsed))
        #expect(out.count == (raises ? 1 : 0))
        guard raises else { return }
        let a = try #require(out.first)
        #expect(a.topic == "alert.raised.telephone-only")
        #expect(a.severity == "medium")
        #expect(a.occurredAt == iso(t0 + elapsed))
        #expect(keys(a.evidence) == ["categories", "daysWithoutInPerson", "lastInPersonAt", "limitDays",
                                     "remoteContactsSinceInPerson", "triggerContactId", "triggerContactVersion"])
        #expect(a.evString("lastInPersonAt") == iso(t0))
        #expect(a.evInt("daysWithoutInPerson") == 28)
        #expect(a.evInt("limitDays") == 28)
        #expect(a.evInt("remoteContactsSinceInPerson") == 1)
        #expect(a.categories == [])
        #expect(a.triggerContactId == 2)
    }

    @Test("priority case: limit 14, severity high, categories", arguments: [(14 * day, false), (14 * day + 1000, true)])
    func priorityLimit(elapsed: Millis, raises: Bool) {
        let h = Harness()
        h.send(reg("ADVV", at: t0 - day))
        h.send(office(1, t0))
        h.send(phone(2, t0 + elapsed))
        let a = h.raised(R.telephoneOnly)
        #expect(a.count == (raises ? 1 : 0))
        if raises {
            #expect(a[0].severity == "high" && a[0].evInt("limitDays") == 14 && a[0].categories == ["DOMESTIC_ABUSE"])
            #expect(a[0].evInt("daysWithoutInPerson") == 14)
        }
    }

    @Test("configured limits are used")
    func configuredLimits() {
        let h = Harness { $0.telephoneOnlyLimitDays = 5; $0.telephoneOnlyPriorityLimitDays = 2 }
        h.send(office(1, t0))
        h.send(phone(2, t0 + 5 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evInt("limitDays") == 5)
        h.send(reg("RHRH", crn: "X100002", at: t0))
        h.send(office(3, t0, crn: "X100002"))
        h.send(phone(4, t0 + 2 * day + 1000, crn: "X100002"))
        #expect(h.raised(R.telephoneOnly).last?.evInt("limitDays") == 2)
    }

    /// "for 1 days (limit 1)" (a rules auditor, session 43, of R6's "1 business days").
    @Test("one day without face-to-face contact reads in the singular")
    func singularReason() {
        let h = Harness { $0.telephoneOnlyLimitDays = 1 }
        h.send(office(1, t0))
        h.send(phone(2, t0 + day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.reason == "No face-to-face contact for more than 1 day (limit 1); 1 remote contact since the last in-person contact")
    }

    /// Raised after the limit and an hour, "for 7 days (limit 7)" read as at the limit (a differential tester, session
    /// 54): the whole days equal to the limit are "more than"; beyond it, the days as they are.
    @Test("whole days equal to the limit read as more than the limit; more whole days as they are")
    func atTheLimitReadsAsMoreThan() {
        let h = Harness { $0.telephoneOnlyLimitDays = 7 }
        h.send(office(1, t0))
        h.send(phone(2, t0 + 7 * day + 3_600_000))
        #expect(h.raised(R.telephoneOnly).first?.reason?.hasPrefix("No face-to-face contact for more than 7 days (limit 7); ") == true,
                "\(String(describing: h.raised(R.telephoneOnly).first?.reason))")
        h.send(office(3, t0, crn: "X100002"))
        h.send(phone(4, t0 + 9 * day, crn: "X100002"))
        #expect(h.raised(R.telephoneOnly).count == 2)
        #expect(h.raised(R.telephoneOnly).last?.reason?.hasPrefix("No face-to-face contact for 9 days (limit 7); ") == true,
                "\(String(describing: h.raised(R.telephoneOnly).last?.reason))")
    }

    @Test("daysWithoutInPerson is whole days, rounded down")
    func wholeDays() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 31 * day + 23 * hour))
        #expect(h.raised(R.telephoneOnly).first?.evInt("daysWithoutInPerson") == 31)
    }

    @Test("without any in-person contact the reference is firstContactAt; lastInPersonAt is null")
    func firstContactReference() throws {
        let h = Harness()
        h.send(phone(1, t0))
        h.send(phone(2, t0 + 29 * day))
        let a = try #require(h.raised(R.telephoneOnly).first)
        #expect(a.ev("lastInPersonAt") is NSNull)
        #expect(a.evInt("daysWithoutInPerson") == 29)
        #expect(a.evInt("remoteContactsSinceInPerson") == 2)
    }

    @Test("firstContactAt counts any contact with an outcome, attended or not, in person or not")
    func firstContactAnyOutcome() {
        let h = Harness()
        h.send(office(1, t0, outcome: "UAAB"))
        h.send(phone(2, t0 + 29 * day))
        let a = h.raised(R.telephoneOnly)
        #expect(a.count == 1)
        #expect(a.first?.evInt("remoteContactsSinceInPerson") == 1)
        #expect(a.first?.ev("lastInPersonAt") is NSNull)
    }

    @Test("firstContactAt ignores contacts without an outcome")
    func firstContactNoOutcome() {
        let h = Harness()
        h.send(office(1, t0 - 100 * day, outcome: nil))
        h.send(phone(2, t0))
        h.send(phone(3, t0 + 20 * day))
        #expect(h.raised(R.telephoneOnly).isEmpty)
    }

    @Test("firstContactAt is the earliest ever processed: a later version moving the start does not move it")
    func firstContactNeverMovesForward() {
        let h = Harness()
        h.send(office(1, t0, outcome: "AFTA"))
        h.send(office(1, t0 + 10 * day, v: 2, outcome: "AFTA"))
        h.send(phone(2, t0 + 29 * day))
        #expect(h.raised(R.telephoneOnly).count == 1)
        #expect(h.raised(R.telephoneOnly).first?.evInt("daysWithoutInPerson") == 29)
    }

    @Test("lastInPersonAt never moves back: an update to an earlier start or a non-attended outcome keeps it", arguments: [
        ("start", "ATTC"), ("outcome", "AFTA"), ("outcome", "UAAB"),
    ])
    func lastInPersonNeverBack(what: String, outcome: String) {
        let h = Harness()
        h.send(office(1, t0 + 10 * day))
        // v2 of the in-person contact: earlier start, or no longer attended.
        h.send(office(1, what == "start" ? t0 : t0 + 10 * day, v: 2, outcome: outcome))
        h.send(phone(2, t0 + 30 * day)) // 20 days after the remembered lastInPersonAt
        #expect(h.raised(R.telephoneOnly).isEmpty)
        h.send(phone(3, t0 + 38 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evString("lastInPersonAt") == iso(t0 + 10 * day))
    }

    @Test("a late-recorded in-person contact with an earlier start does not move lastInPersonAt back")
    func lateInPerson() {
        let h = Harness()
        h.send(office(1, t0 + 10 * day))
        h.send(office(2, t0))
        h.send(phone(3, t0 + 38 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evString("lastInPersonAt") == iso(t0 + 10 * day))
    }

    @Test("remoteContactsSinceInPerson: current attended remote versions after lastInPersonAt, at or before t")
    func remoteCount() throws {
        let h = Harness()
        h.send(phone(1, t0 - 5 * day)) // before the in-person contact: not counted
        h.send(office(2, t0))
        h.send(phone(3, t0 + 5 * day))
        h.send(phone(4, t0 + 10 * day))
        h.send(phone(5, t0 + 12 * day, outcome: nil)) // planned: not counted
        h.send(phone(6, t0 + 14 * day))
        h.send(phone(6, t0 + 14 * day, v: 2, outcome: "AFTA")) // no longer attended: withdrawn
        h.send(phone(7, t0 + 16 * day, outcome: "AFTA")) // not attended
        h.send(phone(8, t0 + 18 * day, mode: "VIDEO")) // video is remote by default
        h.send(phone(9, t0 + 20 * day, mode: "TEXT_OR_ONLINE"))
        h.send(office(10, t0 + 22 * day, outcome: "AFTA")) // in person, not attended: no reset
        h.send(phone(11, t0 + 29 * day))
        let a = try #require(h.raised(R.telephoneOnly).first)
        #expect(a.triggerContactId == 11)
        #expect(a.evInt("remoteContactsSinceInPerson") == 5) // 3, 4, 8, 9, 11
        #expect(h.raised(R.telephoneOnly).count == 1)
    }

    @Test("a remote contact replaced by an in-person version stops counting as remote")
    func remoteWithdrawn() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 5 * day))
        // v2 of contact 2: it was in person after all (start unchanged) -> lastInPersonAt moves to t0 + 5d.
        h.send(office(2, t0 + 5 * day, v: 2))
        h.send(phone(3, t0 + 33 * day + 1000))
        let a = h.raised(R.telephoneOnly)
        #expect(a.first?.evInt("remoteContactsSinceInPerson") == 1)
        #expect(a.first?.evString("lastInPersonAt") == iso(t0 + 5 * day))
    }

    @Test("contact types map to modes: COPT, CTOA, CTOB are telephone; COVC video", arguments: ["COPT", "CTOA", "CTOB", "COVC"])
    func contactTypes(code: String) {
        let h = Harness()
        h.send(office(1, t0))
        h.send(contact(id: 2, start: t0 + 29 * day, type: code, mode: nil, outcome: "ATTC"))
        #expect(h.raised(R.telephoneOnly).count == 1)
    }

    @Test("at most one open telephone-only alert per case")
    func oneOpen() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 29 * day))
        h.send(phone(3, t0 + 40 * day))
        h.send(phone(4, t0 + 60 * day))
        #expect(h.raised(R.telephoneOnly).count == 1)
        // Another case is independent.
        h.send(office(5, t0, crn: "X100002"))
        h.send(phone(6, t0 + 29 * day, crn: "X100002"))
        #expect(h.raised(R.telephoneOnly).count == 2)
    }

    @Test("resolution: an attended in-person contact at or after the trigger start", arguments: [
        ("OFFICE", 0 as Millis, "ATTC", true), ("HOME_VISIT", day, "ATTC", true), ("DOORSTEP", day, "AFTC", true),
        ("OTHER_IN_PERSON", day, "ATSS", true), ("OFFICE", -1, "ATTC", false), ("OFFICE", day, "UAAB", false),
        ("OFFICE", day, "AFTA", false), ("VIDEO", day, "ATTC", false), ("TELEPHONE", day, "ATTC", false),
    ])
    func resolution(mode: String, offset: Millis, outcome: String, resolves: Bool) throws {
        let h = Harness()
        h.send(office(1, t0))
        let raise = try #require(h.send(phone(2, t0 + 29 * day)).first)
        h.send(contact(id: 3, start: t0 + 29 * day + offset, at: t0 + 31 * day, mode: mode, outcome: outcome))
        let r = h.resolved(R.telephoneOnly)
        #expect(r.count == (resolves ? 1 : 0))
        guard resolves else { return }
        #expect(r[0].alertId == raise.alertId && r[0].severity == raise.severity)
        #expect(r[0].resolution == "IN_PERSON_CONTACT" && r[0].resolvedBy == 3)
        #expect(r[0].occurredAt == iso(t0 + 29 * day + offset))
        var ev = r[0].evidence
        ev.removeValue(forKey: "resolution")
        ev.removeValue(forKey: "resolvedByContactId")
        #expect(NSDictionary(dictionary: ev) == NSDictionary(dictionary: raise.evidence))
    }

    @Test("after a resolution a new alert can be raised with a new trigger")
    func raiseAgain() {
        let h = Harness()
        h.send(office(1, t0))
        h.send(phone(2, t0 + 29 * day))
        h.send(office(3, t0 + 30 * day))
        h.send(phone(4, t0 + 50 * day))
        #expect(h.raised(R.telephoneOnly).count == 1)
        h.send(phone(5, t0 + 58 * day + 1000))
        #expect(h.raised(R.telephoneOnly).map(\.triggerContactId) == [2, 5])
        #expect(h.raised(R.telephoneOnly).last?.evInt("remoteContactsSinceInPerson") == 2)
    }

    @Test("video counts as face to face when rules.videoCountsAsFaceToFace is true")
    func videoFaceToFace() {
        let h = Harness { $0.videoCountsAsFaceToFace = true }
        h.send(office(1, t0))
        h.send(phone(2, t0 + 20 * day, mode: "VIDEO"))
        h.send(phone(3, t0 + 40 * day))
        #expect(h.raised(R.telephoneOnly).isEmpty)
        h.send(phone(4, t0 + 48 * day + 1000))
        #expect(h.raised(R.telephoneOnly).first?.evString("lastInPersonAt") == iso(t0 + 20 * day))
        h.send(phone(5, t0 + 49 * day, mode: "VIDEO"))
        #expect(h.resolved(R.telephoneOnly).first?.resolvedBy == 5)
    }

    @Test("a late-recorded remote contact before lastInPersonAt raises nothing")
    func lateRemote() {
        let h = Harness()
        h.send(office(1, t0 + 40 * day))
        h.send(phone(2, t0, v: nil))
        h.send(phone(3, t0 + 20 * day))
        #expect(h.raised(R.telephoneOnly).isEmpty)
    }
}
