import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// State stays bounded: what a forgotten contact contributed goes with it (README, "Engine decisions").
@Suite("Retention: forgotten contacts and old compliance dates")
struct RetentionTests {
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
}
