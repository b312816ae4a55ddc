import ContactWatchEngine

/// States for the store's tests and the restart benchmark.
public enum SyntheticState {
    /// A state shaped like a large production one: `cases` cases with ~10 contacts each (some failures, warnings,
    /// open alerts, registers), 20 PDUs with a year of buckets.
    package static func syntheticState(cases: Int, contactsPerCase: Int = 10) -> EngineState {
        var s = EngineState()
        s.watermark = 1_775_000_000_000
        s.alertSequence = UInt64(cases / 4)
        s.publishers = ["feed-1": 123_456_789, "feed-2": 42]
        s.cases.reserveCapacity(cases)
        s.contacts.reserveCapacity(cases * contactsPerCase)
        for p in 0..<20 {
            var pdu = PDUState(code: "N\(10 + p)PDU")
            for d in 0..<365 { pdu.buckets.append(.init(date: 20_000 + Int32(d), compliant: 40, nonCompliant: 9)) }
            s.pduIndex[ExactString(pdu.code)] = Int32(p)
            s.pdus.append(pdu)
        }
        var contactId: UInt64 = 2_500_000_000
        for i in 0..<cases {
            var c = CaseState(crn: CRN(key: UInt32(23_000_000 + i)))
            if i % 5 == 0 { c.setRegisters([Register(code: "RHRH", level: nil), Register(code: "ADVV", level: nil)]) }
            c.lastInPersonAt = 1_770_000_000_000 + Int64(i)
            c.firstContactAt = 1_740_000_000_000
            for k in 0..<contactsPerCase {
                contactId += 1
                let start = 1_740_000_000_000 + Int64(k) * 7 * 86_400_000
                let failure = k % 4 == 3
                // As the engine records them: an action time only with an action (a warning on each failure), the
                // contribution dated the start's (local, here UTC) date.
                s.contacts[contactId] = ContactRecord(caseIndex: UInt32(i), actionId: failure ? 1 : 0, version: 2,
                                                      contactStart: start, actionTime: failure ? start + 86_400_000 : 0,
                                                      pduIndex: Int32(i % 20), contributionDate: Int32(start / 86_400_000),
                                                      flags: failure ? [.failure] : [.compliant, .attendedInPerson])
                if failure {
                    c.lists.append(ContactRef(contactId: contactId, start: start), to: .failures)
                    c.lists.append(ContactRef(contactId: contactId, start: start + 86_400_000), to: .warnings)
                }
            }
            if i % 7 == 0 {
                c.openNonCompliance.append(OpenAlert(
                    id: AlertID(high: UInt64(i) &* 0x9E37_79B9_7F4A_7C15, low: UInt64(i)), rule: .warningDue, severity: .medium,
                    triggerContactId: contactId, triggerContactVersion: 1, triggerStart: 1_760_000_000_000,
                    evidence: Array(",\"failuresInWindow\":2,\"windowStart\":\"2025-04-01\",\"sentenceType\":\"COMMUNITY_ORDER\"".utf8),
                    deadline: 20_400, overdueRaised: false))
            }
            s.cases.append(c)
        }
        return s
    }
}

/// A state shaped like a large production one (see `SyntheticState.syntheticState`).
package func syntheticState(cases: Int, contactsPerCase: Int = 10) -> EngineState {
    SyntheticState.syntheticState(cases: cases, contactsPerCase: contactsPerCase)
}
