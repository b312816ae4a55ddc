import CPrefetch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The engine's state: everything a restart must get back. Kept compact: a case is a small struct in an array,
// a contact is a 48-byte record (packed into 32 bytes in `ContactTable`), open alerts carry just what their
// resolution repeats.

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
        @inlinable package init(rawValue: UInt8) { self.rawValue = rawValue }
        package static let failure = Flags(rawValue: 1)
        package static let attendedInPerson = Flags(rawValue: 2)
        package static let attendedRemote = Flags(rawValue: 4)
        /// The contribution is compliant (else non-compliant), when pduIndex >= 0.
        package static let compliant = Flags(rawValue: 8)
        package static let remoteAlertRaised = Flags(rawValue: 16)
        package static let privacyAlertRaised = Flags(rawValue: 32)
    }

    @inlinable
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
    // Declared in this order so that the small fields share one word (64 bytes a case).
    package var crn: CRN
    package var categories: Categories = []
    package var excludedFromRemote = false
    package var sentenceType: SentenceType = .communityOrder
    package var registers: [Register] = []
    /// Int64.min when none.
    package var lastInPersonAt: Millis = .min
    /// Int64.max when none.
    package var firstContactAt: Millis = .max
    /// The case's four contact lists (current failures, current attended remote contacts, recorded warnings and
    /// breaches) in one allocation; changed through its own methods (`lists.append(_:to:)`, ...), read through the
    /// views below.
    package var lists = ContactLists()
    /// Current failures (contacts whose current version is a failure).
    package var failures: ContactLists.List {
        get { lists[.failures] }
        set { lists.replace(.failures, with: newValue) }
    }
    /// Current attended remote contacts.
    package var remotes: ContactLists.List {
        get { lists[.remotes] }
        set { lists.replace(.remotes, with: newValue) }
    }
    package var warnings: ContactLists.List {
        get { lists[.warnings] }
        set { lists.replace(.warnings, with: newValue) }
    }
    package var breaches: ContactLists.List {
        get { lists[.breaches] }
        set { lists.replace(.breaches, with: newValue) }
    }
    /// Open R1 alerts in the order they were raised.
    package var openNonCompliance: [OpenAlert] = []
    /// The open R2 alert. Kept in an immutable box (a pointer in the case; most cases have none): every change
    /// stores a new box, so a `CaseState` stays a plain value.
    package var openTelephoneOnly: OpenAlert? {
        get { telephoneOnlyBox?.alert }
        set { telephoneOnlyBox = newValue.map(AlertBox.init) }
    }
    private var telephoneOnlyBox: AlertBox? = nil
    /// Whether an R2 alert is open (without copying it out of its box).
    package var hasOpenTelephoneOnly: Bool { telephoneOnlyBox != nil }
    /// Open R7 alerts, one at most per trigger contactId (they stay open when their contact is forgotten).
    package var openOutcomeOverdue: [OpenAlert] = []

    private final class AlertBox: Sendable {
        let alert: OpenAlert
        init(_ alert: OpenAlert) { self.alert = alert }
    }

    package static func == (a: CaseState, b: CaseState) -> Bool {
        a.crn == b.crn && a.categories == b.categories && a.excludedFromRemote == b.excludedFromRemote
            && a.sentenceType == b.sentenceType && a.registers == b.registers && a.lastInPersonAt == b.lastInPersonAt
            && a.firstContactAt == b.firstContactAt && a.lists == b.lists && a.openNonCompliance == b.openNonCompliance
            && a.openTelephoneOnly == b.openTelephoneOnly && a.openOutcomeOverdue == b.openOutcomeOverdue
    }

    package init(crn: CRN) { self.crn = crn }

    /// A case from its parts in one step (the store's load: no case is built and then changed field by field, which
    /// copies it).
    package init(crn: CRN, sentenceType: SentenceType, registers: [Register], lastInPersonAt: Millis, firstContactAt: Millis,
                 lists: ContactLists, openNonCompliance: [OpenAlert], openTelephoneOnly: OpenAlert?,
                 openOutcomeOverdue: [OpenAlert]) {
        self.crn = crn
        let (categories, excluded) = registers.isEmpty ? ([], false) : Registers.classify(registers)
        self.categories = categories
        self.excludedFromRemote = excluded
        self.sentenceType = sentenceType
        self.registers = registers
        self.lastInPersonAt = lastInPersonAt
        self.firstContactAt = firstContactAt
        self.lists = lists
        self.openNonCompliance = openNonCompliance
        if let a = openTelephoneOnly { self.telephoneOnlyBox = AlertBox(a) } else { self.telephoneOnlyBox = nil }
        self.openOutcomeOverdue = openOutcomeOverdue
    }

    package mutating func setRegisters(_ r: [Register]) {
        registers = r
        (categories, excludedFromRemote) = Registers.classify(r)
    }
}

/// A case's four lists of `ContactRef`s — failures, remotes, warnings, breaches, in that order — in one heap
/// allocation instead of an array each: one allocation per case to build on a restart and one block of memory to
/// touch per event, with an 8-byte reference in `CaseState` instead of four. None until the first element; as an
/// array's, the allocation is kept when the lists empty again, grows by doubling, and is exactly the size of the
/// lists when built from the store.
/// A value with copy-on-write semantics, as an array: a change to a shared buffer copies it first. Within a list the
/// order is kept exactly as an array's would be (appends at the end, removals close the gap).
package struct ContactLists: @unchecked Sendable, Equatable {
    package enum Kind: Int, Sendable, CaseIterable {
        case failures = 0, remotes, warnings, breaches
    }

    /// Where each list ends in the elements (cumulative: list k is `end(k-1)..<end(k)`), and the elements' room.
    @usableFromInline struct Header {
        @usableFromInline var e0: UInt32, e1: UInt32, e2: UInt32, e3: UInt32
        @usableFromInline var capacity: UInt32

        @inlinable @inline(__always) func end(_ k: Int) -> Int {
            switch k {
            case 0: Int(e0)
            case 1: Int(e1)
            case 2: Int(e2)
            default: Int(e3)
            }
        }
        @inlinable @inline(__always) func start(_ k: Int) -> Int { k == 0 ? 0 : end(k - 1) }
        /// Adds `d` to the ends of lists `k...3`.
        @inline(__always) mutating func shift(from k: Int, by d: Int) {
            let d = UInt32(truncatingIfNeeded: d)
            if k <= 0 { e0 &+= d }
            if k <= 1 { e1 &+= d }
            if k <= 2 { e2 &+= d }
            e3 &+= d
        }
    }

    // Unsafe code, confined here. Contract: a `Storage` holds `header.capacity` slots for `ContactRef`s, of which the
    // first `header.e3` are initialized (a `ContactRef` is two integers: nothing to deinitialize). A `Storage`
    // reachable from more than one `ContactLists` is never written (every mutation first makes it unique, as
    // `Array` does), so sharing one across threads is safe: hence `@unchecked Sendable` on `ContactLists` and its
    // `List` views (`ManagedBuffer` itself is not `Sendable`).
    // The header is read through its pointer (`h`), never through `ManagedBuffer.header`: that is a class's stored
    // property, and each access to it pays a dynamic exclusivity check.
    @usableFromInline final class Storage: ManagedBuffer<Header, ContactRef> {
        @inline(__always) var h: Header { withUnsafeMutablePointerToHeader { $0.pointee } }

        static func make(capacity: Int) -> Storage {
            precondition(capacity > 0 && capacity <= Int(UInt32.max), "contact lists too long")
            let b = Storage.create(minimumCapacity: capacity) { _ in
                Header(e0: 0, e1: 0, e2: 0, e3: 0, capacity: UInt32(capacity))
            }
            return unsafeDowncast(b, to: Storage.self)
        }
    }

    @usableFromInline var storage: Storage?

    package init() {}

    /// Total elements of the four lists.
    package var totalCount: Int { storage.map { Int($0.h.e3) } ?? 0 }

    /// Bytes of the allocation (object header, the list ends and the elements' room; without malloc's overhead).
    package var allocatedBytes: Int {
        guard let s = storage else { return 0 }
        let elements = (16 + MemoryLayout<Header>.size + MemoryLayout<ContactRef>.alignment - 1)
            / MemoryLayout<ContactRef>.alignment * MemoryLayout<ContactRef>.alignment
        return elements + Int(s.h.capacity) * MemoryLayout<ContactRef>.stride
    }

    /// The lists from `refs` (all four, concatenated in order) and where each ends; in one allocation of exactly their
    /// size (the store's load).
    package init(concatenated refs: UnsafeBufferPointer<ContactRef>, ends: (Int, Int, Int, Int)) {
        precondition(ends.0 <= ends.1 && ends.1 <= ends.2 && ends.2 <= ends.3 && ends.3 == refs.count)
        guard refs.count > 0 else { return }
        let s = Storage.make(capacity: refs.count)
        s.withUnsafeMutablePointers { h, e in
            e.initialize(from: refs.baseAddress!, count: refs.count)
            h.pointee.e0 = UInt32(ends.0)
            h.pointee.e1 = UInt32(ends.1)
            h.pointee.e2 = UInt32(ends.2)
            h.pointee.e3 = UInt32(ends.3)
        }
        storage = s
    }

    /// A read-only view of one list (it keeps the allocation alive; later changes to the case do not show in it).
    package struct List: RandomAccessCollection, Equatable, ExpressibleByArrayLiteral, @unchecked Sendable {
        @usableFromInline let storage: Storage?
        package let startIndex: Int
        package let endIndex: Int

        @inline(__always) init(storage: Storage?, start: Int, end: Int) {
            self.storage = storage
            self.startIndex = start
            self.endIndex = end
        }

        /// A list of its own (tests, and assigning a whole list).
        package init(_ refs: [ContactRef]) {
            var l = ContactLists()
            l.replace(.failures, with: refs)
            self = l[.failures]
        }

        package init(arrayLiteral elements: ContactRef...) { self.init(elements) }

        package subscript(i: Int) -> ContactRef {
            @inline(__always) get {
                precondition(i >= startIndex && i < endIndex, "index out of range")
                return storage.unsafelyUnwrapped.withUnsafeMutablePointerToElements { $0[i] }
            }
        }

        package static func == (a: List, b: List) -> Bool { a.elementsEqual(b) }
    }

    /// Calls `body` with the elements of list `k` where they lie (valid only during the call). Inlinable: the
    /// store's encoder reads a case's lists through it without a `List` view's generic `Collection` calls, which
    /// another module runs unspecialised.
    @inlinable
    package func withUnsafeElements<R>(_ k: Kind, _ body: (UnsafeBufferPointer<ContactRef>) throws -> R) rethrows -> R {
        guard let s = storage else { return try body(UnsafeBufferPointer(start: nil, count: 0)) }
        return try s.withUnsafeMutablePointers { h, e in
            let lo = h.pointee.start(k.rawValue), hi = h.pointee.end(k.rawValue)
            return try body(UnsafeBufferPointer(start: e + lo, count: hi - lo))
        }
    }

    /// Calls `body` once with the four lists where they lie: their elements concatenated (failures, remotes, warnings,
    /// breaches) and where each list ends (valid only during the call). Not generic: the store's encoder reads a case's
    /// lists with one call instead of four `withUnsafeElements`, which ran there unspecialised
    /// (`Benchmarks/README.md`, "The daemon outside the engine, fourth pass (seventh session)": `prepare`).
    @inlinable
    package func withUnsafeAllElements(_ body: (UnsafeBufferPointer<ContactRef>, _ ends: (Int, Int, Int, Int)) -> Void) {
        guard let s = storage else { return body(UnsafeBufferPointer(start: nil, count: 0), (0, 0, 0, 0)) }
        s.withUnsafeMutablePointers { h, e in
            let header = h.pointee
            body(UnsafeBufferPointer(start: e, count: header.end(3)), (header.end(0), header.end(1), header.end(2), header.end(3)))
        }
    }

    package subscript(k: Kind) -> List {
        @inline(__always) get {
            guard let s = storage else { return List(storage: nil, start: 0, end: 0) }
            let h = s.h
            return List(storage: s, start: h.start(k.rawValue), end: h.end(k.rawValue))
        }
    }

    package static func == (a: ContactLists, b: ContactLists) -> Bool {
        if a.storage === b.storage { return true }
        return Kind.allCases.allSatisfy { a[$0] == b[$0] }
    }

    /// Makes the storage unique with room for `total` elements (a copy when shared or too small; none while empty).
    @inline(__always) private mutating func prepare(forTotal total: Int) {
        // (Not `if let s = storage`: the binding is a second reference, and the storage would never be unique.)
        if isKnownUniquelyReferenced(&storage), Int(storage.unsafelyUnwrapped.h.capacity) >= total { return }
        grow(toHold: total)
    }

    @inline(never) private mutating func grow(toHold total: Int) {
        let old = storage
        let count = totalCount
        let capacity = Swift.max(total, 2 * count)
        let s = Storage.make(capacity: capacity)
        if let old {
            old.withUnsafeMutablePointers { oh, oe in
                s.withUnsafeMutablePointers { h, e in
                    e.initialize(from: oe, count: count)
                    h.pointee.e0 = oh.pointee.e0
                    h.pointee.e1 = oh.pointee.e1
                    h.pointee.e2 = oh.pointee.e2
                    h.pointee.e3 = oh.pointee.e3
                }
            }
        }
        storage = s
    }

    /// Appends `r` at the end of list `k`.
    package mutating func append(_ r: ContactRef, to k: Kind) {
        let total = totalCount
        prepare(forTotal: total + 1)
        unowned(unsafe) let s = storage.unsafelyUnwrapped  // held by `storage` throughout: no retain
        s.withUnsafeMutablePointers { h, e in
            let at = h.pointee.end(k.rawValue)
            if at < total { (e + at + 1).moveInitialize(from: e + at, count: total - at) }
            (e + at).initialize(to: r)
            h.pointee.shift(from: k.rawValue, by: 1)
        }
    }

    /// Removes every element of list `k` whose contactId is `id` (the others keep their order).
    package mutating func removeAll(contactId id: UInt64, from k: Kind) {
        guard storage != nil else { return }
        // (Unowned references, held by `storage`: a strong one here would make the storage look shared to
        // `prepare`, which would copy it.)
        unowned(unsafe) let old = storage.unsafelyUnwrapped
        let h = old.h
        let (lo, hi) = (h.start(k.rawValue), h.end(k.rawValue))
        let any = old.withUnsafeMutablePointerToElements { e in (lo..<hi).contains { e[$0].contactId == id } }
        guard any else { return }
        prepare(forTotal: 0)
        unowned(unsafe) let s = storage.unsafelyUnwrapped
        s.withUnsafeMutablePointers { h, e in
            var w = lo
            for i in lo..<hi where e[i].contactId != id {
                e[w] = e[i]
                w += 1
            }
            close(h, e, gapAt: w, width: hi - w, list: k.rawValue)
        }
    }

    /// Removes and returns element `i` (an index of `self[k]`) of list `k`.
    @discardableResult
    package mutating func remove(at i: Int, from k: Kind) -> ContactRef {
        let l = self[k]
        precondition(i >= l.startIndex && i < l.endIndex, "index out of range")
        let r = l[i]
        prepare(forTotal: 0)
        unowned(unsafe) let s = storage.unsafelyUnwrapped  // held by `storage` throughout: no retain
        s.withUnsafeMutablePointers { h, e in close(h, e, gapAt: i, width: 1, list: k.rawValue) }
        return r
    }

    /// Replaces list `k` with `refs`.
    package mutating func replace<C: Collection>(_ k: Kind, with refs: C) where C.Element == ContactRef {
        let old = self[k]
        let total = totalCount
        let newTotal = total - old.count + refs.count
        if newTotal == 0 {
            storage = nil
            return
        }
        prepare(forTotal: newTotal)
        let lo = old.startIndex, hi = old.endIndex
        unowned(unsafe) let s = storage.unsafelyUnwrapped  // held by `storage` throughout: no retain
        s.withUnsafeMutablePointers { h, e in
            let d = refs.count - (hi - lo)
            if d != 0 && hi < total { (e + hi + d).moveInitialize(from: e + hi, count: total - hi) }
            var w = lo
            for r in refs {
                (e + w).initialize(to: r)
                w += 1
            }
            h.pointee.shift(from: k.rawValue, by: d)
        }
    }

    /// Closes a gap of `width` elements at `at`, the end of list `list`'s kept elements (the storage is unique).
    @inline(__always) private func close(_ h: UnsafeMutablePointer<Header>, _ e: UnsafeMutablePointer<ContactRef>, gapAt at: Int,
                                         width: Int, list k: Int) {
        guard width > 0 else { return }
        let total = Int(h.pointee.e3)
        if at + width < total { (e + at).moveInitialize(from: e + at + width, count: total - at - width) }
        h.pointee.shift(from: k, by: -width)
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
    /// The totals of the window last asked (`totals`), kept up to date as buckets change, so that asking again for the
    /// same or a later window costs what changed rather than a walk over the window's dates. Not state: a loaded
    /// `PDUState` starts without one, and `==` ignores it.
    private var window = WindowTotals()
    /// The date `prune(before:)` last ran with from `add(date:compliant:delta:thenPruneBefore:)` (`.min`: not yet). Not
    /// state either: a loaded `PDUState` prunes at its first contribution.
    var prunedBefore: Int32 = .min

    private struct WindowTotals {
        var start: Int32 = 1
        var end: Int32 = 0
        var compliant = 0
        var nonCompliant = 0
        @inline(__always) func covers(_ date: Int32) -> Bool { date >= start && date <= end }
    }

    package init(code: String) { self.code = code }

    package static func == (a: PDUState, b: PDUState) -> Bool {
        a.code == b.code && a.buckets == b.buckets && a.open == b.open
    }

    /// The first bucket whose date is at or after `date`.
    private func lowerBound(_ date: Int32) -> Int {
        var lo = 0, hi = buckets.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if buckets[mid].date < date { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    mutating func add(date: Int32, compliant: Bool, delta: Int32) {
        // Most contributions land on the last date: look there first, else binary search.
        let last = buckets.count - 1
        let lo = last >= 0 && buckets[last].date == date ? last : lowerBound(date)
        if lo == buckets.count || buckets[lo].date != date {
            buckets.insert(Bucket(date: date, compliant: 0, nonCompliant: 0), at: lo)
        }
        if compliant { buckets[lo].compliant += delta } else { buckets[lo].nonCompliant += delta }
        if window.covers(date) {
            if compliant { window.compliant += Int(delta) } else { window.nonCompliant += Int(delta) }
        }
        if buckets[lo].compliant == 0 && buckets[lo].nonCompliant == 0 { buckets.remove(at: lo) }
    }

    /// Replaces every bucket (sorted by date, none empty); the window's totals are worked out afresh.
    mutating func replaceBuckets(with sorted: [Bucket]) {
        buckets = sorted
        window = WindowTotals()
        prunedBefore = .min
    }

    /// Takes back one contribution (of a forgotten contact). A bucket that is not there is left alone: a store written
    /// before contributions were withdrawn this way may have pruned it already.
    mutating func withdraw(date: Int32, compliant: Bool) {
        let lo = lowerBound(date)
        guard lo < buckets.count, buckets[lo].date == date else { return }
        if compliant {
            guard buckets[lo].compliant > 0 else { return }
            buckets[lo].compliant -= 1
            if window.covers(date) { window.compliant -= 1 }
        } else {
            guard buckets[lo].nonCompliant > 0 else { return }
            buckets[lo].nonCompliant -= 1
            if window.covers(date) { window.nonCompliant -= 1 }
        }
        if buckets[lo].compliant == 0 && buckets[lo].nonCompliant == 0 { buckets.remove(at: lo) }
    }

    /// Drops the buckets of dates before `date`.
    mutating func prune(before date: Int32) {
        var k = 0
        while k < buckets.count && buckets[k].date < date {
            if window.covers(buckets[k].date) {
                window.compliant -= Int(buckets[k].compliant)
                window.nonCompliant -= Int(buckets[k].nonCompliant)
            }
            k += 1
        }
        if k > 0 { buckets.removeFirst(k) }
    }

    /// The sums of the buckets dated `start...end`.
    private func sum(from start: Int32, through end: Int32) -> (compliant: Int, nonCompliant: Int) {
        var c = 0, n = 0
        guard start <= end else { return (0, 0) }
        var k = lowerBound(start)
        while k < buckets.count && buckets[k].date <= end {
            c += Int(buckets[k].compliant)
            n += Int(buckets[k].nonCompliant)
            k += 1
        }
        return (c, n)
    }

    /// The contributions dated `start...end` (the compliance-rate window). A window that starts and ends at or after
    /// the last one asked, and overlaps it, is the last one's totals less the dates it left and plus the dates it
    /// gained; any other is summed afresh.
    mutating func totals(from start: Int32, through end: Int32) -> (compliant: Int, nonCompliant: Int) {
        if start == window.start && end == window.end { return (window.compliant, window.nonCompliant) }
        if window.start <= window.end && start >= window.start && end >= window.end && start <= window.end {
            let left = sum(from: window.start, through: start - 1)
            let gained = sum(from: window.end + 1, through: end)
            window.compliant += gained.compliant - left.compliant
            window.nonCompliant += gained.nonCompliant - left.nonCompliant
        } else {
            (window.compliant, window.nonCompliant) = sum(from: start, through: end)
        }
        window.start = start
        window.end = end
        return (window.compliant, window.nonCompliant)
    }

    #if DEBUG
    /// The window's totals summed afresh (tests compare them with `totals`).
    func totalsAfresh(from start: Int32, through end: Int32) -> (compliant: Int, nonCompliant: Int) { sum(from: start, through: end) }
    #endif
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

/// A text compared and hashed by its UTF-8 bytes, as alerts.md's identities are (an `alertId` is a hash of the
/// bytes): a `String` key compares by canonical equivalence, so `"\u{E9}"` and `"e\u{301}"` were one PDU for R5 and
/// one publisher for the sequence check (a differential tester, session 36). The keys of `EngineState.pduIndex` and
/// `publishers`; ordered by bytes, as SQLite's BINARY collation orders the store's rows.
package struct ExactString: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    package let value: String

    package init(_ value: String) { self.value = value }
    package init(stringLiteral value: String) { self.value = value }

    /// Byte for byte, by `memcmp` where both texts' bytes are contiguous (always, for native strings): the generic
    /// `elementsEqual` over two UTF-8 views cost ~1,000 instructions for a 14-byte publisherId, once an event in the
    /// sequence check's lookup (callgrind, session 51).
    package static func == (a: ExactString, b: ExactString) -> Bool {
        let equal: Bool?? = a.value.utf8.withContiguousStorageIfAvailable { x in
            b.value.utf8.withContiguousStorageIfAvailable { y in
                x.count == y.count && (x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
        if let known = equal, let known { return known }
        return a.value.utf8.elementsEqual(b.value.utf8)
    }
    package static func < (a: ExactString, b: ExactString) -> Bool { a.value.utf8.lexicographicallyPrecedes(b.value.utf8) }

    package func hash(into hasher: inout Hasher) {
        // One `combine(bytes:)` of the whole text whichever way its bytes are reached, so equal texts hash alike.
        if value.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            Array(value.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    package var description: String { value }
}

/// The last `sequenceNumber` of each `publisherId` (alerts.md), kept for the daemon's life: the ids by slot, their
/// positions in an array by the same slot. The sequence check keeps the slot of the publisher it last heard from and
/// reads and writes its position there, so a feed of one publisher hashes its id once, not at every event
/// (`Engine.trackSequence`; the dictionary's lookup was ~410 instructions an event, callgrind, session 51). A slot is
/// never reused or moved: an id is never forgotten. Reads as a dictionary of ids to positions (subscript, equality,
/// iteration as `(key, value)` pairs in slot order, which is arrival order).
package struct PublisherPositions: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence, CustomStringConvertible {
    private var slots: [ExactString: Int] = [:]
    private var ids: [ExactString] = []
    private var positions: [UInt64] = []

    package init() {}
    package init(dictionaryLiteral elements: (ExactString, UInt64)...) {
        for (id, position) in elements { self[id] = position }
    }

    package var count: Int { ids.count }
    package var isEmpty: Bool { ids.isEmpty }
    /// The ids by slot.
    package var keys: [ExactString] { ids }
    /// The three containers, for a footprint (benchmarks).
    package var storage: (slots: [ExactString: Int], ids: [ExactString], positions: [UInt64]) { (slots, ids, positions) }

    /// The position of `id`; nil when it was never heard from. Set: `id`'s position, the id added when new (a
    /// publisher is never forgotten, so setting nil changes nothing).
    package subscript(id: ExactString) -> UInt64? {
        get { slots[id].map { positions[$0] } }
        set {
            guard let newValue else { return }
            if let slot = slots[id] { positions[slot] = newValue } else { _ = add(id, newValue) }
        }
    }

    /// `id`'s slot, or nil when it was never heard from.
    package func slot(of id: ExactString) -> Int? { slots[id] }

    /// Whether `slot` holds `id` (a slot remembered from an earlier lookup, checked before it is used).
    package func slot(_ slot: Int, holds id: ExactString) -> Bool { slot >= 0 && slot < ids.count && ids[slot] == id }

    /// The position in `slot` (a slot `slot(of:)` or `add` gave).
    package subscript(slot slot: Int) -> UInt64 {
        get { positions[slot] }
        set { positions[slot] = newValue }
    }

    /// Adds an id not yet known; returns its slot.
    package mutating func add(_ id: ExactString, _ position: UInt64) -> Int {
        let slot = ids.count
        slots[id] = slot
        ids.append(id)
        positions.append(position)
        return slot
    }

    package static func == (a: PublisherPositions, b: PublisherPositions) -> Bool {
        a.count == b.count && a.ids.indices.allSatisfy { b[a.ids[$0]] == a.positions[$0] }
    }

    package func makeIterator() -> some IteratorProtocol<(key: ExactString, value: UInt64)> {
        zip(ids, positions).lazy.map { (key: $0.0, value: $0.1) }.makeIterator()
    }

    package var description: String {
        "[" + zip(ids, positions).map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "]"
    }
}

/// Everything the engine knows. The store persists it; `Engine.init(settings:state:)` resumes from it.
package struct EngineState: Sendable {
    /// The watermark W (Int64.min before any event).
    package var watermark: Millis = .min
    /// The last `alertSequence` used.
    package var alertSequence: UInt64 = 0
    /// The last sequence number per publisher.
    package var publishers = PublisherPositions()
    /// By case index. A case's index by CRN is the engine's own table (`Engine.caseTable`, built from these on start):
    /// a dictionary of it here would be a second copy (17 bytes a case).
    package var cases: [CaseState] = []
    package var contacts = ContactTable()
    /// For withdrawal actions: the warning each one removed (to put back if the withdrawal is withdrawn).
    package var withdrawn: [UInt64: ActionRecord] = [:]
    package var pdus: [PDUState] = []
    package var pduIndex: [ExactString: Int32] = [:]
    /// R7 deadlines armed and not yet fired, by contactId (only ever filled while R7 is enabled).
    package var outcomeTimers: [UInt64: OutcomeTimer] = [:]

    package init() {}

    /// Adds a case for `crn` (the caller knows it has none); returns its index.
    mutating func appendCase(_ crn: CRN) -> Int {
        cases.append(CaseState(crn: crn))
        return cases.count - 1
    }

    /// Starts loading the cache lines of case `i` (a hint, `Engine.prefetchCase`; changes nothing, `mutating` for the
    /// reason `ContactTable.prefetch` is).
    @inline(__always) mutating func prefetchCase(_ i: Int) {
        cases.withUnsafeBufferPointer { cases in
            let p = UnsafeRawPointer(cases.baseAddress! + i)
            cw_prefetch(p)
            cw_prefetch(p + 64)
            cw_prefetch(p + (MemoryLayout<CaseState>.size - 1))
        }
    }

    mutating func pduIndex(for code: String) -> Int32 {
        let key = ExactString(code)
        if let i = pduIndex[key] { return i }
        let i = Int32(pdus.count)
        pdus.append(PDUState(code: code))
        pduIndex[key] = i
        return i
    }
}

/// What changed since the store last took the changes: the entities to write.
package struct ChangeSet: Sendable {
    package var cases = DenseSet<UInt32>()
    /// The contacts whose record was set (see `ContactLog`); the forgotten ones are in `forgottenContacts`.
    package var contacts = ContactLog()
    package var forgottenContacts: [UInt64] = []
    package var pdus = DenseSet<Int32>()
    package var publishers: Set<ExactString> = []
    package var withdrawn = IDSet<UInt64>()
    /// Contacts whose R7 timer was armed, fired or dropped.
    package var outcomeTimers = IDSet<UInt64>()
    package var isEmpty: Bool {
        cases.isEmpty && contacts.isEmpty && forgottenContacts.isEmpty && pdus.isEmpty && publishers.isEmpty && withdrawn.isEmpty
            && outcomeTimers.isEmpty
    }
    package init() {}
}

/// The contactIds whose record the engine set since the store last took the changes: appended in the order set,
/// with repeats, and not removed when the contact is forgotten later in the batch (it is then in
/// `forgottenContacts` too). That is all the store needs: it sorts these ids with the forgotten ones, drops the
/// repeats and writes each contact's record as it is then, or deletes it when the engine no longer has it
/// (`StateStore.prepare`). An append costs a few instructions where a set's insert cost ~190 with its growth
/// (`Benchmarks/README.md`, "Engine pass 7 (seventh session)").
package struct ContactLog: Sendable {
    @usableFromInline var ids: [UInt64] = []

    @inlinable package init() {}

    package init<S: Sequence>(_ s: S) where S.Element == UInt64 { ids = Array(s) }

    /// Entries, repeats included.
    @inlinable package var count: Int { ids.count }
    @inlinable package var isEmpty: Bool { ids.isEmpty }

    @inlinable package mutating func append(_ id: UInt64) { ids.append(id) }

    package mutating func append(contentsOf s: some Sequence<UInt64>) { ids.append(contentsOf: s) }

    package mutating func reserveCapacity(_ n: Int) { ids.reserveCapacity(n) }

    /// The ids as appended (repeats included, unsorted).
    package func elements() -> [UInt64] { ids }
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
    public var repeats = 0
    public var publisherRestarts = 0
    public var raisedByRule: [Int] = Array(repeating: 0, count: Rule.allCases.count)
    public var resolvedByRule: [Int] = Array(repeating: 0, count: Rule.allCases.count)
    public var forgottenContacts = 0
    /// Events refused because their `occurredAt` is more than `input.maxFutureSkewSeconds` ahead of the wall clock
    /// passed in, and the latest such `occurredAt` with that clock (the daemon's warning: a host clock behind makes
    /// every event refused, which the counts alone do not say).
    public var tooFarAhead = 0
    public var lastTooFarAhead: (occurredAt: Millis, clock: Millis) = (0, 0)
    public init() {}
}

// MARK: - Integer-keyed tables

/// A value an `IDMap` can keep in its empty slots.
package protocol IDMapValue {
    static var filler: Self { get }
}

extension ContactRecord: IDMapValue {
    package static var filler: ContactRecord {
        ContactRecord(caseIndex: 0, actionId: 0, version: 0, contactStart: 0, actionTime: 0, pduIndex: -1, contributionDate: 0,
                      flags: [])
    }
}

/// A hash table keyed by 64-bit integers (contact ids, case and PDU indexes): open addressing with linear probing,
/// Fibonacci hashing (one multiplication, the high bits) and deletion by backward shift, at most 3/4 full. It serves
/// the engine's per-event lookups without `Hasher` (SipHash costs ~100 instructions a key; this costs a few), and
/// keeps keys and values in two flat arrays plus a bit per slot. Iteration order is the slot order: unspecified, as
/// a `Dictionary`'s.
package struct IDMap<Value: IDMapValue> {
    @usableFromInline struct Entry {
        @usableFromInline var key: UInt64
        @usableFromInline var value: Value
        @inlinable init(key: UInt64, value: Value) {
            self.key = key
            self.value = value
        }
    }

    @usableFromInline var entries: [Entry] = []
    /// A bit per slot: occupied.
    @usableFromInline var used: [UInt64] = []
    @usableFromInline var shift: UInt64 = 64
    @usableFromInline var _count = 0
    @inlinable package var count: Int { _count }

    @inlinable package init() {}

    @inlinable
    package init(minimumCapacity n: Int) { reserveCapacity(n) }

    @inlinable
    package var isEmpty: Bool { count == 0 }

    /// Slots allocated (a power of two, or 0).
    @inlinable
    package var slotCount: Int { entries.count }

    /// Bytes of the table's storage (its two arrays, with their headers and malloc's overhead).
    @inlinable
    package var footprint: Int {
        entries.isEmpty ? 0 : entries.count * MemoryLayout<Entry>.stride + used.count * 8 + 2 * (32 + 16)
    }

    @inlinable @inline(__always) func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    @inlinable @inline(__always) static func isUsed(_ used: UnsafeBufferPointer<UInt64>, _ k: Int) -> Bool {
        used[k &>> 6] & (1 &<< UInt64(truncatingIfNeeded: k & 63)) != 0
    }

    /// The slot holding `key`, or nil.
    @inlinable @inline(__always) func slot(of key: UInt64) -> Int? {
        guard count > 0 else { return nil }
        let mask = entries.count &- 1
        var k = home(key)
        return entries.withUnsafeBufferPointer { e in
            used.withUnsafeBufferPointer { u in
                while IDMap.isUsed(u, k) {
                    if e[k].key == key { return k }
                    k = (k &+ 1) & mask
                }
                return nil
            }
        }
    }

    @inlinable
    package func contains(_ key: UInt64) -> Bool { slot(of: key) != nil }

    @inlinable
    package subscript(key: UInt64) -> Value? {
        @inline(__always) get {
            guard let k = slot(of: key) else { return nil }
            return entries[k].value
        }
        set {
            if let v = newValue { updateValue(v, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    /// Sets the value of `key`; returns the one it replaced.
    @discardableResult @inlinable @_specialize(exported: true, where Value == ContactRecord)
    package mutating func updateValue(_ value: Value, forKey key: UInt64) -> Value? {
        if _slowPath((count &+ 1) &* 4 > entries.count &* 3) { resize(Swift.max(16, entries.count * 2)) }
        let mask = entries.count &- 1
        var k = home(key)
        let replaced: Value? = entries.withUnsafeMutableBufferPointer { e in
            used.withUnsafeMutableBufferPointer { u in
                while IDMap.isUsed(UnsafeBufferPointer(u), k) {
                    if e[k].key == key {
                        let old = e[k].value
                        e[k].value = value
                        return old
                    }
                    k = (k &+ 1) & mask
                }
                e[k] = Entry(key: key, value: value)
                u[k &>> 6] |= 1 &<< UInt64(truncatingIfNeeded: k & 63)
                return nil
            }
        }
        if replaced == nil { _count &+= 1 }
        return replaced
    }

    /// Adds `key` when it is not there; returns whether it was added (a set's insert: nothing is copied out).
    @discardableResult @inlinable
    package mutating func insertKey(_ key: UInt64, _ value: Value) -> Bool {
        if _slowPath((count &+ 1) &* 4 > entries.count &* 3) { resize(Swift.max(16, entries.count * 2)) }
        let mask = entries.count &- 1
        var k = home(key)
        let added: Bool = entries.withUnsafeMutableBufferPointer { e in
            used.withUnsafeMutableBufferPointer { u in
                while IDMap.isUsed(UnsafeBufferPointer(u), k) {
                    if e[k].key == key { return false }
                    k = (k &+ 1) & mask
                }
                e[k] = Entry(key: key, value: value)
                u[k &>> 6] |= 1 &<< UInt64(truncatingIfNeeded: k & 63)
                return true
            }
        }
        if added { _count &+= 1 }
        return added
    }

    @discardableResult @inlinable
    package mutating func removeValue(forKey key: UInt64) -> Value? {
        guard var hole = slot(of: key) else { return nil }
        let old = entries[hole].value
        let mask = entries.count &- 1
        // Backward shift: pull later entries of the run into the hole unless their home lies cyclically after it.
        var j = hole
        while true {
            j = (j &+ 1) & mask
            guard used[j >> 6] & (1 << UInt64(j & 63)) != 0 else { break }
            let h = home(entries[j].key)
            let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if stays { continue }
            entries[hole] = entries[j]
            hole = j
        }
        used[hole >> 6] &= ~(1 << UInt64(hole & 63))
        entries[hole].value = .filler
        _count &-= 1
        return old
    }

    @inlinable
    package mutating func removeAll() {
        self = IDMap()
    }

    @inlinable
    package mutating func reserveCapacity(_ n: Int) {
        var size = Swift.max(16, entries.count)
        while n * 4 > size * 3 { size *= 2 }
        if size > entries.count { resize(size) }
    }

    @usableFromInline @inline(never) mutating func resize(_ size: Int) {
        let old = entries, oldUsed = used
        entries = Array(repeating: Entry(key: 0, value: .filler), count: size)
        used = Array(repeating: 0, count: (size + 63) / 64)
        shift = UInt64(64 - size.trailingZeroBitCount)
        let mask = size - 1
        let shift = self.shift
        entries.withUnsafeMutableBufferPointer { e in
            used.withUnsafeMutableBufferPointer { u in
                old.withUnsafeBufferPointer { o in
                    oldUsed.withUnsafeBufferPointer { ou in
                        for w in 0..<ou.count {
                            var bits = ou[w]
                            while bits != 0 {
                                let s = w &<< 6 | bits.trailingZeroBitCount
                                bits &= bits &- 1
                                var k = Int(truncatingIfNeeded: (o[s].key &* 0x9E37_79B9_7F4A_7C15) >> shift)
                                while u[k &>> 6] & (1 &<< UInt64(truncatingIfNeeded: k & 63)) != 0 { k = (k &+ 1) & mask }
                                e[k] = o[s]
                                u[k &>> 6] |= 1 &<< UInt64(truncatingIfNeeded: k & 63)
                            }
                        }
                    }
                }
            }
        }
    }

    @inlinable func nextUsed(from s: Int) -> Int {
        var k = s
        while k < entries.count {
            let word = used[k >> 6] >> UInt64(k & 63)
            if word != 0 { return k + word.trailingZeroBitCount }
            k = (k | 63) + 1
        }
        return entries.count
    }

    @inlinable func key(at s: Int) -> UInt64 { entries[s].key }
    @inlinable func value(at s: Int) -> Value { entries[s].value }
}

extension IDMap: Sequence {
    package struct Iterator: IteratorProtocol {
        @usableFromInline let map: IDMap
        @usableFromInline var slot: Int
        @inlinable init(map: IDMap, slot: Int) {
            self.map = map
            self.slot = slot
        }
        @inlinable
        package mutating func next() -> (key: UInt64, value: Value)? {
            slot = map.nextUsed(from: slot)
            guard slot < map.slotCount else { return nil }
            defer { slot += 1 }
            return (map.key(at: slot), map.value(at: slot))
        }
    }

    @inlinable
    package func makeIterator() -> Iterator { Iterator(map: self, slot: 0) }
    @inlinable
    package var underestimatedCount: Int { count }
}

extension IDMap {
    /// The keys, in slot order (as `Dictionary.keys`, an array here).
    @inlinable
    package var keys: [UInt64] { map { $0.key } }
}

extension IDMap: Equatable where Value: Equatable {
    @inlinable
    package static func == (a: IDMap, b: IDMap) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in a { guard b[k] == v else { return false } }
        return true
    }
}

extension IDMap: Sendable where Value: Sendable {}
extension IDMap.Entry: Sendable where Value: Sendable {}

/// What `IDSet` and `DenseSet` share: built from and extended by sequences through their own `insert`, array
/// literals, and equality as "as many members, each a member of the other".
package protocol IntegerSet: Collection, ExpressibleByArrayLiteral, Equatable
where Element: FixedWidthInteger & Sendable, ArrayLiteralElement == Element {
    init()
    @discardableResult mutating func insert(_ x: Element) -> Bool
    func contains(_ x: Element) -> Bool
}

extension IntegerSet {
    @inlinable
    package init<S: Sequence>(_ s: S) where S.Element == Element {
        self.init()
        formUnion(s)
    }

    @inlinable
    package mutating func formUnion<S: Sequence>(_ s: S) where S.Element == Element {
        for x in s { insert(x) }
    }

    @inlinable
    package init(arrayLiteral elements: Element...) { self.init(elements) }

    @inlinable
    package static func == (a: Self, b: Self) -> Bool { a.count == b.count && a.allSatisfy { b.contains($0) } }
}

/// A set of integers (entity keys of a `ChangeSet`) on an `IDMap`: no `Hasher`. A `Collection` in slot order.
package struct IDSet<Element: FixedWidthInteger & Sendable>: Sendable {
    @usableFromInline struct Nothing: IDMapValue, Sendable {
        @inlinable init() {}
        @inlinable static var filler: Nothing { Nothing() }
    }
    @usableFromInline var map = IDMap<Nothing>()

    @inlinable
    package init() {}

    @discardableResult @inlinable
    package mutating func insert(_ x: Element) -> Bool {
        map.insertKey(UInt64(truncatingIfNeeded: x), Nothing())
    }

    @discardableResult @inlinable
    package mutating func remove(_ x: Element) -> Element? {
        map.removeValue(forKey: UInt64(truncatingIfNeeded: x)) == nil ? nil : x
    }

    @inlinable
    package func contains(_ x: Element) -> Bool { map.contains(UInt64(truncatingIfNeeded: x)) }

    @inlinable
    package mutating func removeAll() { map.removeAll() }
}

extension IDSet: Collection {
    package typealias Index = Int
    @inlinable
    package var startIndex: Int { map.nextUsed(from: 0) }
    @inlinable
    package var endIndex: Int { map.slotCount }
    @inlinable
    package func index(after i: Int) -> Int { map.nextUsed(from: i + 1) }
    @inlinable
    package subscript(i: Int) -> Element { Element(truncatingIfNeeded: map.key(at: i)) }
    @inlinable
    package var count: Int { map.count }
    @inlinable
    package var isEmpty: Bool { map.isEmpty }
}

extension IDSet: IntegerSet {}

/// A set of small non-negative integers (case and PDU indexes of a `ChangeSet`) as a bitmap: an insert is a bit set.
/// Negative integers are never members.
/// A `Collection` in ascending order.
package struct DenseSet<Element: FixedWidthInteger & Sendable>: Sendable {
    @usableFromInline var words: [UInt64] = []
    @usableFromInline var _count = 0
    @inlinable package var count: Int { _count }

    @inlinable
    package init() {}

    @discardableResult @inlinable
    package mutating func insert(_ x: Element) -> Bool {
        // No index is negative (a PDU index of -1 means "none" and is never inserted); one would name nothing to write.
        guard x >= 0 else { return false }
        let i = Int(x)
        let w = i &>> 6
        let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: i & 63)
        // Already a member (most inserts of a batch: its few PDUs are named by most contact events): a read, without
        // the uniqueness check and the write of a mutable access to `words`.
        if w < words.count && words[w] & bit != 0 { return false }
        if _slowPath(w >= words.count) { words.append(contentsOf: repeatElement(0, count: Swift.max(w + 1, words.count * 2) - words.count)) }
        // Not a member here (checked above, or the word was just added as 0).
        words.withUnsafeMutableBufferPointer { b in b[w] |= bit }
        _count &+= 1
        return true
    }

    @discardableResult @inlinable
    package mutating func remove(_ x: Element) -> Element? {
        guard contains(x) else { return nil }
        let i = Int(x)
        words[i >> 6] &= ~(1 << UInt64(i & 63))
        _count -= 1
        return x
    }

    @inlinable
    package func contains(_ x: Element) -> Bool {
        guard x >= 0 else { return false }
        let i = Int(x)
        return i >> 6 < words.count && words[i >> 6] & (1 << UInt64(i & 63)) != 0
    }

    @inlinable
    package mutating func removeAll() { self = DenseSet() }

    @inlinable func nextMember(from s: Int) -> Int {
        var k = s
        let end = words.count * 64
        while k < end {
            let word = words[k >> 6] >> UInt64(k & 63)
            if word != 0 { return k + word.trailingZeroBitCount }
            k = (k | 63) + 1
        }
        return end
    }
}

extension DenseSet: Collection {
    package typealias Index = Int
    @inlinable
    package var startIndex: Int { nextMember(from: 0) }
    @inlinable
    package var endIndex: Int { words.count * 64 }
    @inlinable
    package func index(after i: Int) -> Int { nextMember(from: i + 1) }
    @inlinable
    package subscript(i: Int) -> Element { Element(i) }
    @inlinable
    package var isEmpty: Bool { count == 0 }
}

extension DenseSet: IntegerSet {}

// MARK: - Non-generic entry points for the store

// The store's module calls `IDSet` and `DenseSet` through these concrete functions, compiled (specialised) here
// (and `ContactTable`, which is not generic). Called from another module, the generic members run unspecialised even
// though they are `@inlinable` (the store module does not specialise them: measured, type-metadata lookups on every
// call — see `Benchmarks/README.md`, "Measured again on main at `1445a31`" and "The store's table calls
// specialised (third session)"); these are ordinary non-generic calls instead.

extension IDSet where Element == UInt64 {
    /// The members, in slot order (unsorted).
    package func elements() -> [UInt64] {
        var out: [UInt64] = []
        out.reserveCapacity(count)
        var s = map.nextUsed(from: 0)
        while s < map.slotCount {
            out.append(map.key(at: s))
            s = map.nextUsed(from: s + 1)
        }
        return out
    }
}

extension DenseSet {
    /// The members in ascending order, as 64-bit keys (a bitmap is walked in order: no sort).
    @usableFromInline func ascendingKeys() -> [UInt64] {
        var out: [UInt64] = []
        out.reserveCapacity(count)
        words.withUnsafeBufferPointer { w in
            for i in 0..<w.count {
                var bits = w[i]
                while bits != 0 {
                    out.append(UInt64(i &<< 6 | bits.trailingZeroBitCount))
                    bits &= bits &- 1
                }
            }
        }
        return out
    }
}

extension DenseSet where Element == UInt32 {
    /// The members in ascending order.
    package func ascending() -> [UInt64] { ascendingKeys() }
}

extension DenseSet where Element == Int32 {
    /// The members in ascending order (never negative: see `insert`).
    package func ascending() -> [UInt64] { ascendingKeys() }
}
