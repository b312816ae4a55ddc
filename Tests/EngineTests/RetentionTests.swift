import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// State stays bounded: what a forgotten contact contributed goes with it (README, "Engine decisions").
@Suite("Retention: forgotten contacts and old compliance dates", .computing)
struct RetentionTests {
    /// A contact remembered under one CRN arrives under another, and that arrival itself carries W past the old
    /// contact's retention: the old contact is forgotten entirely, its CRN with it (events.md), so the arrival is
    /// stale, or the first arrival of a new contact — as when another event had moved W first. It was refused as
    /// "belongs to another CRN" (judged by W before the event), and a failure under the new CRN lost its alert (a bug
    /// hunter, session 46).
    @Test("an arrival under another CRN that itself moves W past the old contact is stale or new, as when another event moved W first", arguments: [false, true])
    func otherCRNArrivalForgettingTheOldContact(movedFirst: Bool) throws {
        let old = t("2025-01-10 10:00")
        let late = t("2026-02-20 00:00")   // 405.6 days later: past the default 400 days
        for movedStart in [false, true] {
            let h = Harness()
            h.send(contact("X700001", id: 77, start: old, at: old + hour, outcome: "ATTC"))
            if movedFirst { h.send(contact("X700003", id: 90, start: late - hour, at: late, outcome: "ATTC")) }
            let start = movedStart ? late - 14 * hour : old
            let out = h.send(contact("X700002", id: 77, v: 2, start: start, at: late, outcome: "UAAB"))
            #expect(!out.contains { $0.topic == "invalid-event" }, "refused: \(out.map(\.topic))")
            if movedStart {
                #expect(out.map(\.topic) == ["alert.raised.non-compliance.warning-due"], "\(out.map(\.topic))")
            } else {
                #expect(out.isEmpty && h.engine.counters.stale == 1, "\(out.map(\.topic)), stale \(h.engine.counters.stale)")
            }
        }
        // Still remembered after the event (W moves less): another CRN's, invalid.
        let h = Harness()
        h.send(contact("X700001", id: 77, start: old, at: old + hour, outcome: "ATTC"))
        let out = h.send(contact("X700002", id: 77, v: 2, start: old, at: old + 399 * day, outcome: "UAAB"))
        #expect(out.map(\.topic) == ["invalid-event"] && out.first?.reason == "contactId 77 belongs to another CRN", "\(out.map(\.topic))")
    }

    @Test("a warning carried by a forgotten contact no longer makes a breach due", arguments: [false, true])
    func forgottenWarning(forgotten: Bool) {
        // A 24-month window so that only forgetting (400 days) can drop the warning.
        let h = Harness { $0.nonComplianceWindowMonths = 24 }
        let warned = t("2025-01-06 10:00")
        h.send(contact(id: 1, start: warned, outcome: "ATTC", action: "EA02"))
        let failure = warned + (forgotten ? 401 : 399) * day
        h.send(contact(id: 2, start: failure, outcome: "UAAB"))
        let alert = h.lastR1
        #expect(alert?.rule == (forgotten ? R.warningDue : R.breachDue))
        #expect(h.engine.state.cases[0].warnings.count == (forgotten ? 0 : 1))
    }

    /// Issue 12's case: a warning recorded 40 days after its contact, and a failure on the day that contact crosses the
    /// 120-day retention. Daily forgetting kept the warning for the rest of that day (breach-due with lastWarningAt);
    /// the contract forgets the contact — and the warning it carries — the moment it is more than 120 days before W.
    @Test("a warning whose contact crossed the retention earlier the same day no longer counts",
          arguments: [(false, "COMMUNITY_ORDER"), (true, "COMMUNITY_ORDER"), (false, "LICENCE"), (true, "LICENCE")])
    func warningOfContactForgottenThatDay(crossed: Bool, sentence: String) throws {
        let h = Harness { $0.contactRetentionDays = 120 }
        let start = t("2026-01-05 10:00")
        h.send(contact(id: 1, start: start, at: start + hour, outcome: "ATTC", sentence: sentence))
        let warnedAt = start + 40 * day
        h.send(contact(id: 1, v: 2, start: start, at: warnedAt, outcome: "ATTC", action: "EA02", actionAt: warnedAt))
        // The first event of the day on which contact 1 crosses the cutoff (start + 120 days), before it does.
        h.send(tick(start + 120 * day - 2 * hour))
        #expect(h.engine.state.contacts[1] != nil)
        // The failure: contact 1 is 120 days and 30 minutes old at its occurredAt (or 29h30 short of it).
        let failureStart = start + 120 * day + (crossed ? 0 : -30 * hour)
        h.send(contact(id: 2, start: failureStart, at: failureStart + 30 * minute, outcome: "UAAB"))
        let alert = try #require(h.lastR1)
        #expect(h.engine.state.contacts[1] == nil || !crossed)
        if sentence == "LICENCE" {
            #expect(alert.rule == R.licenceReview)
        } else {
            #expect(alert.rule == (crossed ? R.warningDue : R.breachDue))
        }
        if crossed {
            #expect(alert.ev("lastWarningAt") is NSNull, "\(alert.body)")
        } else {
            #expect(alert.evString("lastWarningAt") == iso(warnedAt))
        }
        #expect(h.engine.state.cases[0].warnings.count == (crossed ? 0 : 1))
    }

    /// events.md: a forgotten contact is forgotten entirely, and a later version moved back within the retention "is
    /// processed as the first arrival of a new contact"; alerts.md's identity (rule, subject, contactId, version) cannot
    /// tell it from its earlier self. *Decision* (README, Engine decisions; differential tester, session 24): the
    /// contract as written — the new arrival raises as any new contact does, under the same `alertId` as the alert
    /// its earlier self raised and that is still open, and an action answering both resolves both, oldest first.
    @Test("a forgotten contact arriving again raises under the alertId of its earlier self's alert still open; one warning resolves both, each with its R6")
    func reArrivalOfForgottenContact() throws {
        let h = Harness {
            $0.contactRetentionDays = 30
            $0.complianceRateWindowDays = 30
        }
        let first = t("2026-01-05 10:00")
        h.send(contact(id: 900, start: first, at: first + hour, outcome: "UAAB"))
        h.send(tick(first + 15 * day))  // the warning is overdue: R6
        let again = first + 35 * day    // contact 900 (v1) is now more than 30 days before W: forgotten
        h.send(contact(id: 900, start: again, at: again + hour, outcome: "UAAB"))
        #expect(h.engine.state.contacts[900]?.contactStart == again)
        h.send(tick(again + 15 * day))
        let raised = h.raised(R.warningDue), overdue = h.raised(R.overdue)
        #expect(raised.count == 2 && overdue.count == 2)
        #expect(Set(raised.compactMap(\.alertId)).count == 1, "\(raised)")
        let warned = again + 16 * day
        h.send(contact(id: 901, start: warned, at: warned + hour, outcome: "ATTC", action: "EA02"))
        #expect(h.resolved(R.warningDue).map(\.alertId) == raised.map(\.alertId))
        #expect(h.resolved(R.overdue).count == 2)
        #expect(h.engine.state.cases[0].openNonCompliance.isEmpty)
    }

    /// A withdrawal looks only at the warnings of contacts still remembered.
    @Test("a withdrawal skips the warning of a contact forgotten that day and removes the one still remembered")
    func withdrawalSkipsForgottenWarning() throws {
        let h = Harness { $0.contactRetentionDays = 120 }
        let a = t("2026-01-05 10:00"), b = t("2026-02-02 10:00")
        // Contact 2's warning is older (effective 2026-02-03) than contact 1's (recorded 2026-03-02).
        h.send(contact(id: 2, start: b, at: b + day, outcome: "ATTC", action: "EA02", actionAt: b + day))
        h.send(contact(id: 1, start: a, at: a + 56 * day, outcome: "ATTC", action: "EA02", actionAt: a + 56 * day))
        h.send(tick(a + 120 * day - 2 * hour))
        // Contact 1 crosses the cutoff; the withdrawal then removes contact 2's warning, the latest one remembered.
        let w = a + 120 * day + hour
        h.send(contact(id: 3, start: w - 30 * minute, at: w, outcome: "ATTC", action: "EA06", actionAt: w))
        #expect(h.engine.state.withdrawn[3]?.contactId == 2)
        h.send(contact(id: 4, start: w + hour, at: w + 2 * hour, outcome: "UAAB"))
        #expect(h.lastR1?.rule == R.warningDue)
        #expect(h.lastR1?.ev("lastWarningAt") is NSNull)
    }

    /// A compliance window as long as the retention reaches back to the cutoff's date; across a change of UTC offset
    /// that date starts before the cutoff, so a contact can be forgotten while its date is still in the window. Its
    /// contribution goes with it.
    @Test("a forgotten contact's compliance-rate contribution is withdrawn even when its date is still in the window")
    func forgottenContributionInWindow() throws {
        let h = Harness {
            $0.contactRetentionDays = 90
            $0.complianceRateWindowDays = 90
            $0.complianceRateMinimumSample = 1
        }
        // 23:15Z on 3 August is 00:15 BST on 4 August.
        let old = t("2026-08-03 23:15")
        h.send(contact(id: 1, start: old, at: old + 9 * hour, outcome: "UAAB", pdu: "N07SUF"))
        #expect(h.raised(R.rate).count == 1)
        // W at 23:30Z on 1 November (GMT): the window is 4 August – 1 November, the cutoff 23:30Z on 3 August.
        let w = t("2026-11-01 23:30")
        h.send(tick(t("2026-11-01 01:00")))
        #expect(h.engine.state.contacts[1] != nil)
        h.send(contact(id: 2, start: w - 30 * minute, at: w, outcome: "ATTC", pdu: "N07SUF"))
        #expect(h.engine.state.contacts[1] == nil)
        let resolved = try #require(h.resolved(R.rate).last)
        #expect(resolved.evInt("compliant") == 1 && resolved.evInt("nonCompliant") == 0)
        #expect(resolved.evString("windowStart") == "2026-08-04")
    }

    @Test("compliance-rate dates older than the retention are dropped")
    func pduBucketsPruned() {
        let h = Harness()
        let first = t("2025-01-06 10:00")
        for k in 0..<3 { h.send(contact(id: UInt64(10 + k), start: first + Millis(k) * day, outcome: "ATTC", pdu: "N07SUF")) }
        #expect(h.engine.state.pdus[0].buckets.count == 3)
        let later = first + 500 * day
        h.send(contact(id: 20, start: later, outcome: "ATTC", pdu: "N07SUF"))
        #expect(h.engine.state.pdus[0].buckets.map(\.date) == [h.engine.zone.date(of: later).days])
    }

    // MARK: - The exact moment (issue 11 follow-up: a prune 30 days late was caught by no test)

    /// events.md: a contact whose `contactStart` is more than `input.contactRetentionDays` days before W is forgotten,
    /// "entirely": a later arrival of the same `contactId` within the retention is then the first arrival of a new
    /// contact. Exactly 400 days before W is not "more than": the contact is still remembered and the same version
    /// arriving again is a duplicate; one millisecond more and it is forgotten, the arrival processed as new.
    @Test("a contact is forgotten the millisecond W passes contactStart + 400 days, not before, not after",
          arguments: [(0, false), (1, true), (-1, false), (30 * day, true)] as [(Millis, Bool)])
    func forgottenAtTheMillisecond(past: Millis, forgotten: Bool) throws {
        let h = Harness()
        let start = t("2025-01-10 09:00")
        h.send(contact(id: 1, v: 1, start: start, outcome: "ATTC"))
        #expect(h.engine.state.contacts[1] != nil)
        // The same contactId and version, moved to a start well inside the retention, arriving at W = start + 400 days
        // + `past`: a duplicate while the first arrival is remembered, a new contact (a failure: R1) once forgotten.
        let w = start + 400 * day + past
        let out = h.send(contact(id: 1, v: 1, start: start + 300 * day, at: w, outcome: "UAAB"))
        #expect(h.engine.state.watermark == w)
        #expect(h.engine.counters.forgottenContacts == (forgotten ? 1 : 0))
        #expect(h.engine.counters.duplicates == (forgotten ? 0 : 1))
        #expect(h.engine.counters.stale == 0)
        #expect(out.filter { R.r1.contains($0.rule ?? "") }.count == (forgotten ? 1 : 0), "\(out)")
        let kept = try #require(h.engine.state.contacts[1])
        #expect(kept.contactStart == (forgotten ? start + 300 * day : start))
    }

    /// The compliance-rate dates a PDU keeps (README, "Engine decisions"): at each contribution to a PDU, its dates
    /// before the local date of the retention cutoff (W − 400 days), less one day, are dropped. A contributing contact
    /// is never older than the cutoff, so only dates no remembered contact backs go (a store written before forgotten
    /// contributions were withdrawn holds such dates: `PDUState.withdraw`); the one day of slack keeps the cutoff's
    /// date whole across a change of UTC offset. Pinned to the millisecond: with the cutoff exactly at local midnight
    /// the cutoff's date is C, one millisecond earlier C − 1; a prune a day early or 30 days late fails.
    @Test("a PDU's compliance-rate dates are pruned on the exact day: before the cutoff's local date less one",
          arguments: [(0, 1), (-1, 2), (day, 0)] as [(Millis, Int32)])
    func pduDatesPrunedOnTheDay(past: Millis, keptBeforeCutoffDate: Int32) throws {
        var settings = EngineSettings()
        settings.complianceRateMinimumSample = 1_000  // no R5 alert: only the dates matter here
        let cutoff = t("2025-01-10 00:00")  // local midnight (GMT) of date C
        let w = cutoff + 400 * day + past
        let setup = Harness(settings)
        // A contribution that creates the PDU, on the local date of W − 2 h (that of W − 1 h too, for every W here).
        setup.send(contact(id: 1, start: w - 2 * hour, at: w - 90 * minute, outcome: "ATTC", pdu: "N07SUF"))
        let c = setup.engine.zone.date(of: cutoff).days
        let recent = setup.engine.zone.date(of: w - 2 * hour).days
        var state = setup.engine.state
        #expect(state.pdus.count == 1 && state.pdus[0].buckets.map(\.date) == [recent])
        // Dates C − 40 … C + 10 that no remembered contact backs, as a store written before withdrawals would hold.
        let legacy = (-40...10).map { PDUState.Bucket(date: c + Int32($0), compliant: 1, nonCompliant: 1) }
        state.pdus[0].buckets.insert(contentsOf: legacy, at: 0)
        let h = Harness(engine: try Engine(settings: settings, state: state))
        // The next contribution, at W.
        h.send(contact(id: 2, start: w - hour, at: w, outcome: "UAAB", pdu: "N07SUF"))
        #expect(h.engine.state.watermark == w)
        let firstKept = c - keptBeforeCutoffDate
        let expected = (Int(firstKept)...Int(c + 10)).map { Int32($0) } + [recent]
        #expect(h.engine.state.pdus[0].buckets.map(\.date) == expected)
        #expect(h.engine.state.pdus[0].buckets.last == PDUState.Bucket(date: recent, compliant: 1, nonCompliant: 1))
        // Later contributions the same day prune nothing more; the first one after the cutoff's date moved on prunes
        // again (the engine prunes only when the cut changed: a memo that stopped pruning fails here).
        h.send(contact(id: 3, start: w - 30 * minute, at: w, outcome: "ATTC", pdu: "N07SUF"))
        #expect(h.engine.state.pdus[0].buckets.map(\.date).first == firstKept)
        h.send(contact(id: 4, start: w + day - hour, at: w + day, outcome: "ATTC", pdu: "N07SUF"))
        #expect(h.engine.state.pdus[0].buckets.map(\.date).first == firstKept + 1)
        h.send(contact(id: 5, start: w + 3 * day - hour, at: w + 3 * day, outcome: "ATTC", pdu: "N07SUF"))
        #expect(h.engine.state.pdus[0].buckets.map(\.date).first == firstKept + 3)
    }
}
