// The engine's state: everything a restart must get back. Kept compact: a case is a small struct in an array,
// a contact is a 48-byte record, open alerts carry just what their resolution repeats.

/// What the engine remembers of a contact's highest processed version (events.md, "Updates and duplicates").
package struct ContactRecord: Sendable, Equatable {
    package var caseIndex: UInt32
    /// The action code id of the version's enforcement action (0 = none).
    package var actionId: UInt32
    package var version: UInt64
    package var contactStart: Millis
    /// The action's effective time.
    package var actionTime: Millis
    /// The PDU index this version contributes to the compliance rate (-1: none).
    package var pduIndex: Int32
    /// The date (days) of the contribution.
    package var contributionDate: Int32
    package var flags: Flags

    package struct Flags: OptionSet, Sendable, Equatable {
        package let rawValue: UInt8
        package init(rawValue: UInt8) { self.rawValue = rawValue }
        package static let failure = Flags(rawValue: 1)
        package static let attendedInPerson = Flags(rawValue: 2)
        package static let attendedRemote = Flags(rawValue: 4)
        /// The contribution is compliant (else non-compliant), when pduIndex >= 0.
        package static let compliant = Flags(rawValue: 8)
        package static let remoteAlertRaised = Flags(rawValue: 16)
        package static let privacyAlertRaised = Flags(rawValue: 32)
    }

    package init(caseIndex: UInt32, actionId: UInt32, version: UInt64, contactStart: Millis, actionTime: Millis,
                pduIndex: Int32, contributionDate: Int32, flags: Flags) {
        self.caseIndex = caseIndex
        self.actionId = actionId
        self.version = version
        self.contactStart = contactStart
        self.actionTime = actionTime
        self.pduIndex = pduIndex
        self.contributionDate = contributionDate
        self.flags = flags
    }
}

/// A contact of a case in one of its per-case lists.
package struct ContactRef: Sendable, Equatable {
    package var contactId: UInt64
    package var start: Millis
    package init(contactId: UInt64, start: Millis) {
        self.contactId = contactId
        self.start = start
    }
}

/// A recorded warning or breach: its effective time and the contact that carries it.
package typealias ActionRecord = ContactRef

/// An open alert: what its resolution (and overdue alert) needs.
package struct OpenAlert: Sendable, Equatable {
    package var id: AlertID
    package var rule: Rule
    package var severity: Severity
    package var triggerContactId: UInt64
    package var triggerContactVersion: UInt64
    package var triggerStart: Millis
    /// The raise's rule evidence members, as JSON text without braces (after the trigger fields).
    package var evidence: [UInt8]
    /// R1: the enforcement deadline (days).
    package var deadline: Int32
    /// R1: the overdue (R6) alert raised for it, if any.
    package var overdueRaised: Bool

    package init(id: AlertID, rule: Rule, severity: Severity, triggerContactId: UInt64, triggerContactVersion: UInt64,
                triggerStart: Millis, evidence: [UInt8], deadline: Int32, overdueRaised: Bool) {
        self.id = id
        self.rule = rule
        self.severity = severity
        self.triggerContactId = triggerContactId
        self.triggerContactVersion = triggerContactVersion
        self.triggerStart = triggerStart
        self.evidence = evidence
        self.deadline = deadline
        self.overdueRaised = overdueRaised
    }
}

package struct CaseState: Sendable, Equatable {
    package var crn: CRN
    package var registers: [Register] = []
    package var categories: Categories = []
    package var excludedFromRemote = false
    package var sentenceType: SentenceType = .communityOrder
    /// Int64.min when none.
    package var lastInPersonAt: Millis = .min
    /// Int64.max when none.
    package var firstContactAt: Millis = .max
    /// Current failures (contacts whose current version is a failure).
    package var failures: [ContactRef] = []
    /// Current attended remote contacts.
    package var remotes: [ContactRef] = []
    package var warnings: [ActionRecord] = []
    package var breaches: [ActionRecord] = []
    /// Open R1 alerts in the order they were raised.
    package var openNonCompliance: [OpenAlert] = []
    package var openTelephoneOnly: OpenAlert? = nil
    /// Open R7 alerts, one at most per trigger contactId (they stay open when their contact is forgotten).
    package var openOutcomeOverdue: [OpenAlert] = []

    package init(crn: CRN) { self.crn = crn }

    package mutating func setRegisters(_ r: [Register]) {
        registers = r
        (categories, excludedFromRemote) = Registers.classify(r)
    }
}

/// Compliance-rate contributions of one PDU, by date.
package struct PDUState: Sendable, Equatable {
    package struct Bucket: Sendable, Equatable {
        package var date: Int32
        package var compliant: Int32
        package var nonCompliant: Int32
        package init(date: Int32, compliant: Int32, nonCompliant: Int32) {
            self.date = date
            self.compliant = compliant
            self.nonCompliant = nonCompliant
        }
    }

    package var code: String
    /// Sorted by date.
    package var buckets: [Bucket] = []
    package var open: OpenAlert? = nil

    package init(code: String) { self.code = code }

    mutating func add(date: Int32, compliant: Bool, delta: Int32) {
        // Binary search for the date; most contributions land at or near the end.
        var lo = 0, hi = buckets.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if buckets[mid].date < date { lo = mid + 1 } else { hi = mid }
        }
        if lo == buckets.count || buckets[lo].date != date {
            buckets.insert(Bucket(date: date, compliant: 0, nonCompliant: 0), at: lo)
        }
        if compliant { buckets[lo].compliant += delta } else { buckets[lo].nonCompliant += delta }
        if buckets[lo].compliant == 0 && buckets[lo].nonCompliant == 0 { buckets.remove(at: lo) }
    }

    /// Takes back one contribution (of a forgotten contact). A bucket that is not there is left alone: a store written
    /// before contributions were withdrawn this way may have pruned it already.
    mutating func withdraw(date: Int32, compliant: Bool) {
        var lo = 0, hi = buckets.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if buckets[mid].date < date { lo = mid + 1 } else { hi = mid }
        }
        guard lo < buckets.count, buckets[lo].date == date else { return }
        if compliant {
            guard buckets[lo].compliant > 0 else { return }
            buckets[lo].compliant -= 1
        } else {
            guard buckets[lo].nonCompliant > 0 else { return }
            buckets[lo].nonCompliant -= 1
        }
        if buckets[lo].compliant == 0 && buckets[lo].nonCompliant == 0 { buckets.remove(at: lo) }
    }

    /// Drops the buckets of dates before `date`.
    mutating func prune(before date: Int32) {
        var k = 0
        while k < buckets.count && buckets[k].date < date { k += 1 }
        if k > 0 { buckets.removeFirst(k) }
    }

    func totals(from start: Int32, through end: Int32) -> (compliant: Int, nonCompliant: Int) {
        buckets.withUnsafeBufferPointer { b in
            var c = 0, n = 0
            var k = b.count - 1
            while k >= 0 {
                let x = b[k]
                if x.date < start { break }
                if x.date <= end {
                    c += Int(x.compliant)
                    n += Int(x.nonCompliant)
                }
                k -= 1
            }
            return (c, n)
        }
    }
}

/// R7: a deadline armed by a contact version that awaits an outcome, processed while R7 was enabled. It fires once
/// (step 6), when the date of W is past `deadline`, unless the contact has moved on to another version by then.
package struct OutcomeTimer: Sendable, Equatable {
    /// The version that armed it (the alert's trigger version).
    package var version: UInt64
    /// The Nth business day after the date of that version's contactStart (days).
    package var deadline: Int32
    /// The pending outcome code (e.g. `AFTA`), nil when the version has no outcome.
    package var pendingCode: String?

    package init(version: UInt64, deadline: Int32, pendingCode: String?) {
        self.version = version
        self.deadline = deadline
        self.pendingCode = pendingCode
    }
}

/// Everything the engine knows. The store persists it; `Engine.init(settings:state:)` resumes from it.
package struct EngineState: Sendable {
    /// The watermark W (Int64.min before any event).
    package var watermark: Millis = .min
    /// The last `alertSequence` used.
    package var alertSequence: UInt64 = 0
    /// The last sequence number per publisher.
    package var publishers: [String: UInt64] = [:]
    package var cases: [CaseState] = []
    package var caseIndex: [CRN: UInt32] = [:]
    package var contacts: [UInt64: ContactRecord] = [:]
    /// For withdrawal actions: the warning each one removed (to put back if the withdrawal is withdrawn).
    package var withdrawn: [UInt64: ActionRecord] = [:]
    package var pdus: [PDUState] = []
    package var pduIndex: [String: Int32] = [:]
    /// R7 deadlines armed and not yet fired, by contactId (only ever filled while R7 is enabled).
    package var outcomeTimers: [UInt64: OutcomeTimer] = [:]

    package init() {}

    mutating func caseIndex(for crn: CRN) -> Int {
        if let i = caseIndex[crn] { return Int(i) }
        let i = cases.count
        cases.append(CaseState(crn: crn))
        caseIndex[crn] = UInt32(i)
        return i
    }

    mutating func pduIndex(for code: String) -> Int32 {
        if let i = pduIndex[code] { return i }
        let i = Int32(pdus.count)
        pdus.append(PDUState(code: code))
        pduIndex[code] = i
        return i
    }
}

/// What changed since the store last took the changes: the entities to write.
package struct ChangeSet: Sendable {
    package var cases: Set<UInt32> = []
    package var contacts: Set<UInt64> = []
    package var forgottenContacts: [UInt64] = []
    package var pdus: Set<Int32> = []
    package var publishers: Set<String> = []
    package var withdrawn: Set<UInt64> = []
    /// Contacts whose R7 timer was armed, fired or dropped.
    package var outcomeTimers: Set<UInt64> = []
    package var isEmpty: Bool {
        cases.isEmpty && contacts.isEmpty && forgottenContacts.isEmpty && pdus.isEmpty && publishers.isEmpty && withdrawn.isEmpty
            && outcomeTimers.isEmpty
    }
    package init() {}
}

/// Counts kept by the engine, exported as metrics by the runtime.
public struct EngineCounters: Sendable {
    public var received = 0
    public var processed = 0
    public var contactEvents = 0
    public var registrationEvents = 0
    public var ignored = 0
    public var duplicates = 0
    public var stale = 0
    public var invalid = 0
    /// Invalid messages by the offending field ("frames", "utf8", "json", "object" for the field-less ones).
    public var invalidByField: [String: Int] = [:]
    public var gaps = 0
    public var missing = 0
    public var repeats = 0
    public var publisherRestarts = 0
    public var raisedByRule: [Int] = Array(repeating: 0, count: Rule.allCases.count)
    public var resolvedByRule: [Int] = Array(repeating: 0, count: Rule.allCases.count)
    public var forgottenContacts = 0
    public init() {}
}
