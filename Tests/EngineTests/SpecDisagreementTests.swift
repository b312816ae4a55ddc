import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// Places where the engine disagreed with the contract when these tests were written (both fixed in be50b8c); kept as
/// regression tests, each naming the spec sentence it checks.
@Suite("Spec disagreements found by the engine tests (regressions)", .computing)
struct SpecDisagreementTests {
    /// alerts.md: "`topic` is ... for a one-frame message its body's `eventType` when that can be read, else `null`."
    /// A one-frame body that is not UTF-8 (or larger than input.maxMessageBytes) is rejected before it is parsed, and
    /// `Engine.invalid` then reads the notice's topic from the JSONReader's *previous* parse, whose body buffer is no
    /// longer alive (a use-after-free read: the topic is the previous message's eventType, or garbage, or null).
    @Test("one-frame non-UTF-8 body after a valid one-frame message: notice topic must be null, not the previous eventType")
    func staleTopicAfterUTF8Failure() throws {
        let h = Harness()
        let good = contact(id: 1, start: t("2026-03-02 10:00"), outcome: "ATTC")
        h.sendBytes(frames: 1, topic: nil, body: Array(good.utf8))
        let out = h.sendBytes(frames: 1, topic: nil, body: [0xFF, 0xFE, 0xFD])
        let n = try #require(out.first)
        #expect(n.topic == "invalid-event")
        #expect(n.fieldIsNull)
        #expect(n.noticeTopicIsNull, "notice topic is \(String(describing: n.json["topic"]))")
    }

    /// events.md: "Contacts that old [contactStart more than input.contactRetentionDays before W] are forgotten: no rule
    /// looks at them any more". rules.md R2: `remoteContactsSinceInPerson` counts "the case's remote contacts, not
    /// forgotten". The engine forgets only once per UTC day of W, so within a day a contact can be older than the
    /// retention limit and still be counted.
    @Test("a remote contact more than 400 days before W is not counted in remoteContactsSinceInPerson (same UTC day as the last forgetting)")
    func forgettingGranularity() throws {
        let h = Harness()
        let first = t("2025-01-01 10:00")
        h.send(contact(id: 1, start: first, at: first + 30 * minute, mode: "TELEPHONE", outcome: "ATTC"))
        // W moves to 400 days minus 1 hour after the first contact: it is not yet old.
        h.send(tick(first + 400 * day - hour))
        // Same UTC day, W moves past 400 days + 30 min: contact 1 is now more than 400 days before W.
        let start = first + 400 * day + 30 * minute
        h.send(contact(id: 2, start: start, at: start + 30 * minute, mode: "TELEPHONE", outcome: "ATTC"))
        let a = try #require(h.raised(R.telephoneOnly).first)
        #expect(a.evInt("remoteContactsSinceInPerson") == 1, "contact 1 (400 days and 1 hour old) was counted")
    }

    /// Same rule for R1: with a window longer than the retention, a failure more than 400 days before W is forgotten
    /// and no longer counts in F.
    @Test("R1 does not count a forgotten failure (window longer than retention)", arguments: [(40 * minute, 2), (-10 * minute, 1)])
    func forgottenFailure(offset: Millis, f: Int) {
        let h = Harness { $0.nonComplianceWindowMonths = 24 }
        let second = t("2026-06-01 10:00")
        let first = second - 400 * day + offset
        h.send(contact(id: 1, start: first, at: first + hour, outcome: "UAAB"))
        // Same UTC day as the second failure; the first is not yet 400 days old.
        h.send(tick(second - 2 * hour))
        // W = second + 30 min: the first failure is 400 days - 10 min old (kept) or 400 days + 40 min old (forgotten).
        h.send(contact(id: 2, start: second, at: second + 30 * minute, outcome: "UAAB"))
        #expect(h.lastR1?.triggerContactId == 2)
        #expect(h.lastR1?.evInt("failuresInWindow") == f)
    }
}
