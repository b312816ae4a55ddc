import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// events.md "Updates and duplicates", rules.md steps 1–5: duplicates, stale contacts, replacement, actions, withdrawals.
@Suite("Updates, duplicates, stale contacts, actions", .computing)
struct UpdateTests {
    let mon = t("2026-03-02 10:00")

    // MARK: - Duplicates

    @Test("a duplicate (same or lower version) has no effect at all", arguments: [1, 2] as [UInt64])
    func duplicate(v: UInt64) {
        let h = Harness()
        h.send(contact(id: 1, v: 2, start: mon, outcome: "UAAB", pdu: "P"))
        // Same contact, not a higher version, now accepted: no reclassification.
        let out = h.send(contact(id: 1, v: v, start: mon, at: mon + 2 * hour, outcome: "AAME", action: "NFA", pdu: "P"))
        #expect(out.isEmpty)
        #expect(h.engine.counters.duplicates == 1)
        // It still counts as a failure.
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        #expect(h.raised(R.breachDue).first?.evInt("failuresInWindow") == 2)
    }

    @Test("contactVersion defaults to 1: a second arrival without it is a duplicate")
    func defaultVersion() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "ATTC"))
        #expect(h.send(contact(id: 1, start: mon, at: mon + 2 * hour, outcome: "UAAB")).isEmpty)
        #expect(h.send(contact(id: 1, v: 2, start: mon, at: mon + 3 * hour, outcome: "UAAB")).count == 1)
    }

    @Test("a duplicate does not update the sentence type (steps 2-5 are skipped)")
    func duplicateSentence() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "ATTC"))
        h.send(contact(id: 1, start: mon, at: mon + 2 * hour, outcome: "ATTC", sentence: "LICENCE"))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        #expect(h.raised(R.warningDue).count == 1)
        #expect(h.raised(R.licenceReview).isEmpty)
    }

    // MARK: - Stale contacts

    @Test("stale: contactStart more than input.contactRetentionDays (400) before W as moved by this event", arguments: [
        (400 * day, false), (400 * day + 1, true),
    ])
    func stale(age: Millis, isStale: Bool) {
        let h = Harness()
        let start = t("2025-01-01 10:00")
        let out = h.send(contact(id: 1, start: start, at: start + age, outcome: "UAAB"))
        #expect(out.filter { R.r1.contains($0.rule ?? "") }.count == (isStale ? 0 : 1))
        #expect(h.engine.counters.stale == (isStale ? 1 : 0))
        #expect(h.engine.state.watermark == start + age)
    }

    @Test("stale against W moved by an earlier event; the setting is used")
    func staleSetting() {
        let h = Harness { $0.contactRetentionDays = 100 }
        h.send(tick(t("2026-06-01 10:00")))
        h.send(contact(id: 1, start: t("2026-02-20 10:00"), at: t("2026-02-21 10:00"), outcome: "UAAB"))
        #expect(h.alerts.isEmpty)
        h.send(contact(id: 2, start: t("2026-02-21 10:00"), at: t("2026-02-22 10:00"), outcome: "UAAB"))
        #expect(h.raised(R.warningDue).count == 1)
    }

    @Test("a stale contact has no effect beyond W: its action resolves nothing, its sentence type is not kept")
    func staleNoEffect() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        let out = h.send(contact(id: 2, start: t("2025-01-01 10:00"), at: mon + 2 * hour, outcome: "ATTC", action: "NFA",
                                 actionAt: mon + 2 * hour, setting: "OPEN_BOOTH", sentence: "LICENCE", pdu: "P"))
        #expect(out.isEmpty)
        h.send(contact(id: 3, start: mon + day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.breachDue)
        #expect(h.lastR1?.evString("sentenceType") == "COMMUNITY_ORDER")
    }

    @Test("a stale arrival does not claim the contactId for its CRN")
    func staleNoOwnership() {
        let h = Harness()
        h.send(tick(t("2026-06-01 10:00")))
        h.send(contact("X100001", id: 1, start: t("2025-01-01 10:00"), at: t("2025-01-01 11:00"), outcome: "UAAB"))
        h.send(contact("X100002", id: 1, start: t("2026-05-30 10:00"), outcome: "UAAB"))
        #expect(h.notices.isEmpty)
        #expect(h.raised(R.warningDue).first?.subjectValue == "X100002")
    }

    // MARK: - Replacement of actions

    @Test("a new version without the action withdraws it (warning no longer recent)")
    func actionWithdrawn() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 1, v: 2, start: mon, at: mon + 2 * hour))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.warningDue)
    }

    @Test("a new version with another action code replaces the action (warning -> breach resets counting)")
    func actionChanged() {
        let h = Harness()
        h.send(contact(id: 9, start: mon - 3 * day, outcome: "UAAB"))
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 1, v: 2, start: mon, at: mon + 2 * hour, action: "EA08", actionAt: mon + hour))
        h.send(contact(id: 2, start: mon + day, outcome: "UAAB"))
        // The breach (mon + 1h) is the counting start; the warning is gone.
        #expect(h.lastR1?.rule == R.warningDue)
        #expect(h.lastR1?.evInt("failuresInWindow") == 1)
    }

    @Test("the same action code in a new version keeps its original effective time")
    func sameActionKeepsTime() {
        let h = Harness()
        h.send(contact(id: 1, start: mon + day, outcome: "UAAB"))
        // A warning effective before the failure: recorded, but does not resolve it.
        h.send(contact(id: 2, start: mon, at: mon + day + 2 * hour, action: "EA02", actionAt: mon))
        #expect(h.resolved(R.warningDue).isEmpty)
        // Same code with a later actionAt: the action stands unchanged (effective at mon): still no resolution.
        h.send(contact(id: 2, v: 2, start: mon, at: mon + day + 3 * hour, action: "EA02", actionAt: mon + 2 * day))
        #expect(h.resolved(R.warningDue).isEmpty)
        // A later failure sees the warning at its original time.
        h.send(contact(id: 3, start: mon + 3 * day, outcome: "UAAB"))
        #expect(h.raised(R.breachDue).first?.evString("lastWarningAt") == iso(mon))
        // Another code is a changed action, recorded at its own time: resolves the warning-due.
        h.send(contact(id: 2, v: 3, start: mon, at: mon + 3 * day + 2 * hour, action: "EA03", actionAt: mon + 2 * day))
        #expect(h.resolved(R.warningDue).first?.occurredAt == iso(mon + 2 * day))
        #expect(h.resolved(R.warningDue).first?.triggerContactId == 1)
    }

    @Test("an unchanged action still resolves what it answers, at its original effective time")
    func unchangedActionResolves() {
        let h = Harness()
        h.send(contact(id: 2, start: mon, action: "NFA", actionAt: mon + 5 * day))
        h.send(contact(id: 1, start: mon + day, at: mon + 6 * day, outcome: "UAAB")) // recorded after the NFA
        #expect(h.resolved(R.warningDue).isEmpty)
        let out = h.send(contact(id: 2, v: 2, start: mon, at: mon + 7 * day, outcome: "ATTC", action: "NFA", actionAt: mon + 6 * day))
        #expect(out.map(\.topic) == ["alert.resolved.non-compliance.warning-due"])
        #expect(out.first?.occurredAt == iso(mon + 5 * day))
    }

    @Test("step 3 before step 4: a version that drops its own warning and becomes a failure is warning-due")
    func ownWarningDropped() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 1, v: 2, start: mon, at: mon + 2 * hour, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.warningDue)
        // Keeping the same warning code: the warning stands (at mon) and is recent for the failure -> breach-due,
        // which a warning does not resolve.
        let h2 = Harness()
        h2.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        let out = h2.send(contact(id: 1, v: 2, start: mon, at: mon + 2 * hour, outcome: "UAAB", action: "EA02"))
        #expect(out.map(\.topic) == ["alert.raised.non-compliance.breach-due"])
        #expect(out.first?.evString("lastWarningAt") == iso(mon))
    }

    // MARK: - Withdrawals

    @Test("a withdrawal removes the warning: a later failure is warning-due, not breach-due", arguments: ["EA06", "EA07"])
    func withdrawal(code: String) {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon + day, action: code, actionAt: mon + day))
        h.send(contact(id: 3, start: mon + 2 * day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.warningDue)
        #expect(h.lastR1?.ev("lastWarningAt") is NSNull)
    }

    @Test("a withdrawal removes the latest warning at or before it, not a later one")
    func withdrawalLatestBefore() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon, action: "EA03", actionAt: mon + 2 * day))
        h.send(contact(id: 3, start: mon, action: "EA06", actionAt: mon + day))
        h.send(contact(id: 4, start: mon + 3 * day, outcome: "UAAB"))
        #expect(h.lastR1?.evString("lastWarningAt") == iso(mon + 2 * day))

        let h2 = Harness()
        h2.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h2.send(contact(id: 2, start: mon, action: "EA03", actionAt: mon + day))
        h2.send(contact(id: 3, start: mon, action: "EA06", actionAt: mon + 2 * day))
        h2.send(contact(id: 4, start: mon + 3 * day, outcome: "UAAB"))
        #expect(h2.lastR1?.evString("lastWarningAt") == iso(mon))

        // At exactly the withdrawal's time counts as "at or before".
        let h3 = Harness()
        h3.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon + day))
        h3.send(contact(id: 3, start: mon, action: "EA07", actionAt: mon + day))
        h3.send(contact(id: 4, start: mon + 3 * day, outcome: "UAAB"))
        #expect(h3.lastR1?.rule == R.warningDue)
    }

    @Test("a withdrawal with no earlier warning removes nothing (a later warning stays)")
    func withdrawalNothing() {
        let h = Harness()
        h.send(contact(id: 3, start: mon, action: "EA06", actionAt: mon))
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon + day))
        h.send(contact(id: 4, start: mon + 3 * day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.breachDue)
    }

    @Test("a withdrawal only touches its own case")
    func withdrawalOwnCase() {
        let h = Harness()
        h.send(contact("X100001", id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact("X100002", id: 2, start: mon, action: "EA06", actionAt: mon + day))
        h.send(contact("X100001", id: 3, start: mon + 2 * day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.breachDue)
    }

    @Test("withdrawing a withdrawal puts the warning back", arguments: [nil, "ROM", "NFA"] as [String?])
    func unwithdraw(newAction: String?) {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon + day, action: "EA06", actionAt: mon + day))
        h.send(contact(id: 2, v: 2, start: mon + day, at: mon + day + 2 * hour, action: newAction, actionAt: mon + day))
        h.send(contact(id: 3, start: mon + 2 * day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.breachDue)
        #expect(h.lastR1?.evString("lastWarningAt") == iso(mon))
    }

    @Test("the same withdrawal code in a new version keeps the warning removed")
    func withdrawalUnchanged() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, action: "EA02", actionAt: mon))
        h.send(contact(id: 2, start: mon + day, action: "EA06", actionAt: mon + day))
        h.send(contact(id: 2, v: 2, start: mon + day, at: mon + day + 2 * hour, outcome: "ATTC", action: "EA06", actionAt: mon + day))
        h.send(contact(id: 3, start: mon + 2 * day, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.warningDue)
    }

    // MARK: - Step order

    @Test("one step: R1, R2, R3, R5 in rule order, then the action's resolution")
    func stepOrder() {
        let h = Harness { $0.complianceRateMinimumSample = 1 }
        h.send(reg("ADVP", at: mon - day))
        h.send(contact(id: 1, start: mon, outcome: "ATTC"))
        let out = h.send(contact(id: 2, start: mon + 15 * day, mode: "TELEPHONE", outcome: "AFTC", action: "EA02", pdu: "P"))
        #expect(out.map(\.topic) == [
            "alert.raised.non-compliance.warning-due", "alert.raised.telephone-only", "alert.raised.remote-contact.excluded-case",
            "alert.raised.compliance-rate.below-threshold", "alert.resolved.non-compliance.warning-due",
        ])
        #expect(out.map(\.seq) == [1, 2, 3, 4, 5])
    }

    @Test("R2 resolution and R4 raise in one step, then R1 resolution")
    func stepOrder2() {
        let h = Harness()
        h.send(contact(id: 1, start: mon, outcome: "UAAB"))
        h.send(contact(id: 2, start: mon + 29 * day, mode: "TELEPHONE", outcome: "ATTC"))
        let out = h.send(contact(id: 3, start: mon + 30 * day, outcome: "ATTC", action: "NFA", setting: "OPEN_BOOTH"))
        #expect(out.map(\.topic) == ["alert.resolved.telephone-only", "alert.raised.no-privacy",
                                     "alert.resolved.non-compliance.warning-due", "alert.resolved.non-compliance.enforcement-overdue"])
    }
}
