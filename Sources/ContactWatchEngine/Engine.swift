import CPrefetch
import Foundation
import HeapModule

/// Something worth a log line that is not a message (publisher restarts, the count of tracked publishers passing a
/// power of ten). Rare by nature.
public struct EngineLogEvent: Sendable {
    public var message: String
    public var crn: String?
    public var contactId: UInt64?
    /// Something an operator should look at (logged at `warning`), not only a fact (`info`).
    public var warning = false
    /// The number the message is about, as a metadata value (the tracked publishers).
    public var publishers: Int?
    /// The distinct pduCodes remembered, as a metadata value.
    public var pduCodes: Int?
    /// A `stream.gap` (its line is written by whoever logs it, only when a rate limit lets it through: a publisher
    /// whose every message is a gap builds no text per message).
    public var gap: StreamGap?

    /// Messages of a publisher that went missing: `expected` … `received` − 1.
    public struct StreamGap: Sendable {
        public var publisher: String
        public var expected: UInt64
        public var received: UInt64
    }

    /// A gap said as a warning: the notice is at most once and not journaled, so without a line a gap seen while no
    /// consumer subscribed to `stream.gap` (after a crash, at a restart) left no trace but a count.
    static func gap(_ publisher: String, expected: UInt64, received: UInt64) -> EngineLogEvent {
        var e = EngineLogEvent(message: "")
        e.warning = true
        e.gap = StreamGap(publisher: publisher, expected: expected, received: received)
        return e
    }

    /// The line for a `gap` event (its `message` otherwise).
    public var text: String {
        guard let g = gap else { return message }
        let missing = g.received - g.expected
        let range = missing == 1 ? "sequenceNumber \(g.expected)" : "sequenceNumbers \(g.expected) to \(g.received - 1)"
        return "publisher \(g.publisher): \(missing) message\(missing == 1 ? "" : "s") missing (\(range), before "
            + "\(g.received)): lost on the way, or sent while this daemon was down or before it had processed them "
            + "(a crash loses what was not yet committed); ask the publisher to send them again. A publisher that numbers "
            + "topics this daemon does not subscribe to shows gaps too: number each topic stream"
    }

    /// `count` distinct publisherIds tracked, with what usually causes many and what to do (a warning).
    public static func distinctPDUCodes(_ count: Int) -> EngineLogEvent {
        var e = EngineLogEvent(message: """
            \(count) distinct pduCodes are remembered; each is a PDU kept for the daemon's life (a row in the store \
            and memory per code, R5's compliance windows). A publisher that puts something other than the PDU's code \
            in pduCode, or an input that anyone can publish to, does this: check what fills pduCode, and restrict who \
            may publish (security.curve.allowPublishers)
            """)
        e.warning = true
        e.pduCodes = count
        return e
    }

    public static func trackedPublishers(_ count: Int) -> EngineLogEvent {
        var e = EngineLogEvent(message: """
            \(count) distinct publisherIds are tracked; each is remembered for gap detection for the daemon's \
            life (a row in the store and memory per id). A publisher that makes up a new publisherId per message, or \
            an input that anyone can publish to, does this: give each publisher one stable id, and restrict who may \
            publish (security.curve.allowPublishers)
            """)
        e.warning = true
        e.publishers = count
        return e
    }
}

/// The pure engine: message frames in, alert and notice messages out. No I/O, no clock but the one passed in.
/// One instance per processing thread.
public final class Engine {
    public let settings: EngineSettings
    let zone: ZoneCalendar
    let business: BusinessCalendar
    // The engine is confined to one thread and its methods never hold overlapping accesses to its properties. Debug
    // builds (the engine tests) check that at run time; release builds skip the per-access check on the hot ones.
    #if DEBUG
    package internal(set) var state: EngineState
    public internal(set) var counters = EngineCounters()
    package internal(set) var changes = ChangeSet()
    var reader = EventScanner()
    /// Open R1 alerts without an overdue alert, by (deadline, CRN, contactId).
    var overdueQueue = Heap<OverdueItem>()
    /// Remembered contacts by contactStart (see `forgetExpired`).
    var forgetQueue = ForgetQueue()
    /// R7 timers (`state.outcomeTimers`) by (deadline, CRN, contactId); empty while R7 is disabled.
    var outcomeQueue = Heap<OutcomeItem>()
    /// While the watermark is before this instant, step 6 has nothing to raise: its local date is at most the earliest
    /// deadline of `overdueQueue` and `outcomeQueue` (`raiseOverdue`). `.min` until `raiseOverdue` finds nothing due,
    /// and again whenever either queue gains an item.
    var quietUntil: Millis = .min
    /// R7 deadlines of the last dates asked, by date mod 16 (`outcomeDeadline`; a business-day count walks the
    /// holiday set day by day, and a stream's contacts crowd into a few dates).
    var outcomeMemo = OutcomeDeadlineMemo()
    var now: Millis = 0
    /// The alert message being written (`emit`).
    var writer = JSONWriter()
    /// The zone's offset span last used (`localDate`): most instants fall in the same one.
    var zoneSpan = ZoneSpan()
    var zoneSpanBefore = ZoneSpan()
    var zoneSpanOldest = ZoneSpan()
    /// The local dates of the watermark and of the retention cutoff, each with the instants it holds for
    /// (`localDate(_:memo:)`): both move on every event, their dates about once a day.
    var watermarkDay = DayMemo()
    var cutoffDay = DayMemo()
    /// R1 enforcement deadlines of the last dates asked (like `outcomeMemo`).
    var enforcementMemo = OutcomeDeadlineMemo()
    /// Case indexes by CRN key and PDU indexes by code, without `Hasher` (see `IndexTable`).
    var caseTable = IndexTable<UInt32>()
    var pduTable = IndexTable<UInt64>()
    /// Each PDU's code packed in two words (codes of up to 16 bytes), by PDU index: `pduIndex` compares them.
    var pduCodes: [PackedCode] = []
    /// The id of each R6 alert raised and not yet resolved, by its R1 alert's trigger contactId (its resolution
    /// repeats the id; an id not here, e.g. after a restart, is computed again).
    var overdueIds = IDMap<OverdueID>()
    /// Whether `reader` holds the current message's body (false until it parsed successfully).
    var parsedCurrent = false
    /// The last sequence-stamped event's publisherId (`trackSequence`): its decoded bytes (empty: none yet) and the
    /// key `state.publishers` and the change set are keyed by.
    var lastPublisherBytes: [UInt8] = []
    var lastPublisher = ExactString("")
    /// `lastPublisher` is in `changes.publishers` (reset with the change set): a stream of one publisher hashes its id
    /// into the change set once a batch, not once an event.
    var lastPublisherNoted = false
    /// `lastPublisher`'s slot in `state.publishers` (-1: none yet), checked against the id before each use.
    var lastPublisherSlot = -1
    #else
    @exclusivity(unchecked) package internal(set) var state: EngineState
    @exclusivity(unchecked) public internal(set) var counters = EngineCounters()
    @exclusivity(unchecked) package internal(set) var changes = ChangeSet()
    @exclusivity(unchecked) var reader = EventScanner()
    @exclusivity(unchecked) var overdueQueue = Heap<OverdueItem>()
    @exclusivity(unchecked) var forgetQueue = ForgetQueue()
    @exclusivity(unchecked) var outcomeQueue = Heap<OutcomeItem>()
    @exclusivity(unchecked) var quietUntil: Millis = .min
    @exclusivity(unchecked) var outcomeMemo = OutcomeDeadlineMemo()
    @exclusivity(unchecked) var now: Millis = 0
    @exclusivity(unchecked) var writer = JSONWriter()
    @exclusivity(unchecked) var zoneSpan = ZoneSpan()
    @exclusivity(unchecked) var zoneSpanBefore = ZoneSpan()
    @exclusivity(unchecked) var zoneSpanOldest = ZoneSpan()
    @exclusivity(unchecked) var watermarkDay = DayMemo()
    @exclusivity(unchecked) var cutoffDay = DayMemo()
    @exclusivity(unchecked) var enforcementMemo = OutcomeDeadlineMemo()
    @exclusivity(unchecked) var caseTable = IndexTable<UInt32>()
    @exclusivity(unchecked) var pduTable = IndexTable<UInt64>()
    @exclusivity(unchecked) var pduCodes: [PackedCode] = []
    @exclusivity(unchecked) var overdueIds = IDMap<OverdueID>()
    @exclusivity(unchecked) var parsedCurrent = false
    @exclusivity(unchecked) var lastPublisherBytes: [UInt8] = []
    @exclusivity(unchecked) var lastPublisher = ExactString("")
    @exclusivity(unchecked) var lastPublisherNoted = false
    @exclusivity(unchecked) var lastPublisherSlot = -1
    #endif
    public internal(set) var logEvents: [EngineLogEvent] = []
    /// Tests only: the engine as the contract reads, with no index — every event forgets by scanning every contact,
    /// step 6 scans every open alert. Property tests compare it with the engine as it runs (`ReferenceTests`).
    let referenceMode: Bool

    /// A new engine with empty state (the state types are the store's business: `package`).
    public convenience init(settings: EngineSettings) throws(EngineSettings.Problem) {
        try self.init(settings: settings, state: EngineState(), referenceMode: false)
    }

    package convenience init(settings: EngineSettings, state: EngineState = EngineState()) throws(EngineSettings.Problem) {
        try self.init(settings: settings, state: state, referenceMode: false)
    }

    init(settings: EngineSettings, state: EngineState, referenceMode: Bool) throws(EngineSettings.Problem) {
        try settings.validate()
        self.settings = settings
        self.zone = ZoneCalendar(identifier: settings.timeZone)!
        self.business = BusinessCalendar(holidays: settings.bankHolidays)
        self.state = state
        self.referenceMode = referenceMode
        caseTable.reserve(state.cases.count)
        // The cases are read where they lie (through the pointer's addressor): iterating `state.cases` would copy
        // every `CaseState`, retaining and releasing each of its lists.
        state.cases.withUnsafeBufferPointer { cases in
            guard let base = cases.baseAddress else { return }
            for ci in 0..<cases.count { caseTable.insert(base[ci].crn.key, Int32(ci)) }
        }
        for (pi, p) in state.pdus.enumerated() {
            var code = p.code
            pduTable.insert(code.withUTF8 { b in
                let raw = UnsafeRawBufferPointer(b)
                return PackedCode(raw).key ?? IndexTable<UInt64>.fingerprint(raw)
            }, Int32(pi))
        }
        rememberPDUCodes()
        // A PDU handed over prunes at its first contribution here, whatever the engine it came from last pruned with
        // (`PDUState.prunedBefore` is not state).
        for pi in self.state.pdus.indices { self.state.pdus[pi].prunedBefore = .min }
        recomputeEnforcementDeadlines()
        redateContributions()
        guard !referenceMode else { return }
        var overdue: [OverdueItem] = []
        self.state.cases.withUnsafeBufferPointer { cases in
            guard let base = cases.baseAddress else { return }
            for ci in 0..<cases.count where !base[ci].openNonCompliance.isEmpty {
                for a in base[ci].openNonCompliance where !a.overdueRaised {
                    overdue.append(OverdueItem(deadline: a.deadline, crn: base[ci].crn.key, contactId: a.triggerContactId,
                                               version: a.triggerContactVersion, caseIndex: UInt32(ci)))
                }
            }
        }
        overdueQueue = Heap(overdue)
        // The contacts the retention forgets first (the rest are found in the table when their day comes).
        forgetQueue.prepare(cutoff: retentionCutoff, from: state.contacts)
        // Timers armed while R7 was enabled wait (and fire) only while it is enabled.
        if settings.outcomeOverdueEnabled {
            var timers: [OutcomeItem] = []
            for (id, timer) in state.outcomeTimers {
                guard let rec = state.contacts[id] else { continue }
                timers.append(OutcomeItem(deadline: timer.deadline, crn: state.cases[Int(rec.caseIndex)].crn.key, contactId: id,
                                          version: timer.version, caseIndex: rec.caseIndex))
            }
            outcomeQueue = Heap(timers)
        }
    }

    /// An open R1 alert's deadline is the Nth business day after the date of its trigger's `contactStart` under the
    /// settings in force (rules.md, R6), unlike R7's, which is fixed when armed: a state written under another
    /// `enforcementDeadlineBusinessDays`, `bankHolidays` or `timeZone` has the deadlines of its open alerts without an
    /// overdue alert yet computed again (kept when equal, so an unchanged configuration writes nothing; the store keeps
    /// the old value until the case's next commit, and each start computes it again). A fault tester's restart from 8
    /// to 3 business days raised the overdue alert 6 days late, and from 3 to 8 stated "8 business days" of a 3-day one.
    private func recomputeEnforcementDeadlines() {
        // Read in place (no `CaseState` copied), written only where a deadline moved.
        var moved: [(ci: Int, k: Int, deadline: Int32)] = []
        state.cases.withUnsafeBufferPointer { cases in
            guard let base = cases.baseAddress else { return }
            for ci in 0..<cases.count where !base[ci].openNonCompliance.isEmpty {
                base[ci].openNonCompliance.withUnsafeBufferPointer { open in
                    // One whose overdue alert is raised keeps the deadline that alert stated: its resolution repeats
                    // the raise's evidence (alerts.md; reviewer, session 23).
                    for k in open.indices where !open[k].overdueRaised {
                        let deadline = enforcementDeadline(zone.date(of: open[k].triggerStart))
                        if open[k].deadline != deadline { moved.append((ci, k, deadline)) }
                    }
                }
            }
        }
        for m in moved { state.cases[m.ci].openNonCompliance[m.k].deadline = m.deadline }
    }

    /// R5's contributions are kept by the date of their contact's `contactStart` (rules.md), a date in the zone in
    /// force: a state written under another `rules.timeZone` has each remembered contact's contribution dated again,
    /// and every PDU's buckets built again from the remembered contacts (each contribution in the buckets is one of
    /// theirs: a forgotten contact takes its contribution with it). Without it, a restart from Europe/London to
    /// Pacific/Auckland counted the window in Auckland dates over contributions dated in London's, for up to
    /// `windowDays` (a rules auditor, session 43). Changes nothing, and writes nothing, while every date holds; the
    /// contacts and PDUs it changes are in the next commit (the first batch's, or the stop's), and until then each
    /// start does it again.
    private func redateContributions() {
        guard !state.pdus.isEmpty else { return }
        var moved: [(id: UInt64, date: Int32)] = []
        for (id, rec) in state.contacts where rec.pduIndex >= 0 {
            let date = Int32(truncatingIfNeeded: localDate(rec.contactStart).days)
            if date != rec.contributionDate { moved.append((id, date)) }
        }
        guard !moved.isEmpty else { return }
        for m in moved {
            guard var rec = state.contacts[m.id] else { continue }
            rec.contributionDate = m.date
            state.contacts.set(rec, forKey: m.id)
            changes.contacts.append(m.id)
            changes.cases.insert(rec.caseIndex)
        }
        var counts = [[Int32: (compliant: Int32, nonCompliant: Int32)]](repeating: [:], count: state.pdus.count)
        for (_, rec) in state.contacts where rec.pduIndex >= 0 {
            let compliant = rec.flags.contains(.compliant)
            counts[Int(rec.pduIndex)][rec.contributionDate, default: (0, 0)].compliant += compliant ? 1 : 0
            counts[Int(rec.pduIndex)][rec.contributionDate, default: (0, 0)].nonCompliant += compliant ? 0 : 1
        }
        for pi in state.pdus.indices {
            let buckets = counts[pi].sorted { $0.key < $1.key }
                .map { PDUState.Bucket(date: $0.key, compliant: $0.value.compliant, nonCompliant: $0.value.nonCompliant) }
            guard buckets != state.pdus[pi].buckets else { continue }
            state.pdus[pi].replaceBuckets(with: buckets)
            changes.pdus.insert(Int32(pi))
        }
    }

    /// Bytes of the engine's own indexes beside its state, counted as `ContactTable.footprint` counts (storage with a
    /// 32-byte header and 16 bytes of malloc's overhead an allocation): the forgetting queue, the CRN and PDU tables,
    /// the PDU codes, the R1/R7 deadline heaps (by their items: a heap does not tell its room) and the R6 ids.
    package var indexFootprint: Int {
        func heap<T>(_ h: Heap<T>) -> Int { h.isEmpty ? 0 : 48 + h.count * MemoryLayout<T>.stride }
        return forgetQueue.footprint + caseTable.footprint + pduTable.footprint
            + (pduCodes.capacity == 0 ? 0 : 48 + pduCodes.capacity * MemoryLayout<PackedCode>.stride)
            + heap(overdueQueue) + heap(outcomeQueue) + overdueIds.footprint
    }

    /// Bytes of the forgetting queue alone (see `indexFootprint`).
    package var forgetQueueFootprint: Int { forgetQueue.footprint }

    /// Hands over what changed since the last call (for the store).
    package func takeChanges() -> ChangeSet {
        let taken = changes
        changes = ChangeSet()
        lastPublisherNoted = false
        // The next batch is likely as large: its contacts log starts with room for as many.
        changes.contacts.reserveCapacity(taken.contacts.count)
        return taken
    }

    public func takeLogEvents() -> [EngineLogEvent] {
        defer { logEvents.removeAll() }
        return logEvents
    }

    // MARK: - One message

    /// Processes one message: `frameCount` frames, the first (`topic`, when there are two or more) and the last
    /// (`body`). `now` is the wall clock (for `detectedAt` and the future-skew check).
    public func process(frameCount: Int, topic: UnsafeRawBufferPointer?, body: UnsafeRawBufferPointer, now: Millis,
                        into out: inout Outbox) {
        self.now = now
        parsedCurrent = false
        counters.received += 1
        let topicFrame = frameCount >= 2 ? topic : nil
        if frameCount >= 3 {
            return invalid(Invalidity(field: nil, reason: "message has \(frameCount) frames; an event has one or two"),
                           counterKey: "frames", topic: topicFrame, body: body, out: &out)
        }
        if body.count > settings.maxMessageBytes {
            return invalid(Invalidity(field: nil, reason: "body is larger than \(settings.maxMessageBytes) bytes"),
                           counterKey: "size", topic: topicFrame, body: body, out: &out)
        }
        // UTF-8 and JSON syntax in one pass (EventScanner): UTF-8 problems are reported first.
        switch reader.scan(body) {
        case .ok: break
        case .utf8:
            return invalid(Invalidity(field: nil, reason: "body is not valid UTF-8"), counterKey: "utf8",
                           topic: topicFrame, body: body, out: &out)
        case .json(let message):
            return invalid(Invalidity(field: nil, reason: "body is not JSON (\(message))"), counterKey: "json",
                           topic: topicFrame, body: body, out: &out)
        }
        parsedCurrent = true
        let scannedCRN = prefetchSubject()
        // Step 0: sequence tracking, for any JSON object with a valid publisherId and sequenceNumber.
        if let stamp = EventDecoder.sequenceStamp(reader) {
            trackSequence(stamp, out: &out)
        }
        guard reader.rootKind == .object else {
            return invalid(Invalidity(field: nil, reason: "body is not a JSON object"), counterKey: "object",
                           topic: topicFrame, body: body, out: &out)
        }
        let type: EventType
        switch EventDecoder.eventType(reader, topic: topicFrame) {
        case .failure(let e):
            return invalid(e, counterKey: e.field ?? "", topic: topicFrame, body: body, out: &out)
        case .success(nil):
            counters.ignored += 1
            return
        case .success(let t?):
            type = t
        }
        var c = ContactEvent(), g = RegistrationEvent()
        if let e = EventDecoder.decode(reader, type: type, scannedCRN: scannedCRN, contact: &c, registration: &g) {
            return invalid(e, counterKey: e.field ?? "", topic: topicFrame, body: body, out: &out)
        }
        if type == .contactRecorded {
            let knownCase = prefetchCase(c.crn)
            let known = liveContact(c.contactId)
            if let rec = known, state.cases[Int(rec.caseIndex)].crn != c.crn, !forgottenByItsOwnStep1(rec, c) {
                let e = Invalidity(field: "personReference.identifiers", reason: "contactId \(c.contactId) belongs to another CRN")
                return invalid(e, counterKey: "contactId.owner", topic: topicFrame, body: body, out: &out)
            }
            if Self.outcomeBeforeStart(c) {
                let e = Invalidity(field: "additionalInformation.outcome", reason: "outcome recorded more than 5 minutes before contactStart")
                return invalid(e, counterKey: e.field!, topic: topicFrame, body: body, out: &out)
            }
            if let e = futureSkew(c.occurredAt) {
                return invalid(e, counterKey: "occurredAt.skew", topic: topicFrame, body: body, out: &out)
            }
            counters.processed += 1
            counters.contactEvents += 1
            processContact(c, known: known, caseIndex: knownCase, out: &out)
        } else {
            if let e = futureSkew(g.occurredAt) {
                return invalid(e, counterKey: "occurredAt.skew", topic: topicFrame, body: body, out: &out)
            }
            counters.processed += 1
            counters.registrationEvents += 1
            processRegistration(g, out: &out)
        }
    }

    // Memory hints. An event's contact and case are lookups in tables too large for the caches (the contacts alone are
    // 32 bytes each, about ten a case), each a wait of ~150 ns on this machine when it misses. The slots of the
    // contactId and the CRN are asked for as soon as the body is scanned (the scanner has both), so that their loads
    // run while the event is decoded; the case's own lines once the decoded CRN has found its index (in the slot
    // loaded meanwhile), so that they load beside the contact's.

    /// Starts loading the contact table's slot of the scanned body's contactId and the case table's slot of its CRN;
    /// returns that CRN (`EventDecoder.scannedCRN`, for `decode`).
    @inline(__always) func prefetchSubject() -> CRN? {
        let slot = reader.value(EventSlot.contactId)
        if slot >= 0, let id = EventDecoder.integer(reader, slot) { state.contacts.prefetch(id) }
        let crn = EventDecoder.scannedCRN(reader)
        if let crn { caseTable.prefetch(crn.key) }
        return crn
    }

    /// Starts loading the lines of `crn`'s case, if it has one.
    /// Returns the case's index (-1 when it is new), for `processContact`.
    @inline(__always) func prefetchCase(_ crn: CRN) -> Int {
        guard let i = caseTable.find(crn.key) else { return -1 }
        state.prefetchCase(Int(i))
        return Int(i)
    }

    /// Whether the remembered record `rec` is forgotten by this very event's step 1 — the event is otherwise valid, so
    /// it moves W to its `occurredAt`, and that puts `rec` past the retention. A forgotten contact is forgotten
    /// entirely, its CRN included, and staleness is judged with "W as moved by this very event" (events.md): such an
    /// arrival under another CRN is stale, or the first arrival of a new contact — not invalid as another CRN's.
    /// Judged by W before the event, the same arrival was refused when it was itself what carried W past the old
    /// contact and taken when another event had, and a failure moved forward under the new CRN lost its alert (a bug
    /// hunter, session 46). An event invalid for another reason moves no W, so the owner check stands for it, first
    /// in the contract's order. Off the hot path: only for an arrival under another CRN.
    func forgottenByItsOwnStep1(_ rec: ContactRecord, _ c: ContactEvent) -> Bool {
        guard c.occurredAt > state.watermark, !Self.outcomeBeforeStart(c), !isTooFarAhead(c.occurredAt) else { return false }
        return rec.contactStart < retentionCutoff(at: c.occurredAt)
    }

    /// events.md's cross-field rule: an outcome on a contact that starts more than 5 minutes after the event.
    @inline(__always) static func outcomeBeforeStart(_ c: ContactEvent) -> Bool {
        c.hasOutcome && c.contactStart > c.occurredAt + 300_000
    }

    /// An `occurredAt` more than `input.maxFutureSkewSeconds` ahead of the wall clock.
    @inline(__always) func isTooFarAhead(_ occurredAt: Millis) -> Bool {
        occurredAt > now + Millis(settings.maxFutureSkewSeconds) * 1000
    }

    func futureSkew(_ occurredAt: Millis) -> Invalidity? {
        if isTooFarAhead(occurredAt) {
            counters.tooFarAhead += 1
            counters.lastTooFarAhead = (occurredAt, now)
            return Invalidity(field: "occurredAt", reason: "occurredAt is too far ahead of the wall clock")
        }
        return nil
    }

    // MARK: - Step 0 and notices

    func trackSequence(_ stamp: SequenceStamp, out: inout Outbox) {
        // A stream of one publisher (the usual case) builds no String per event: the last publisherId's bytes and
        // String are kept, and its entry is looked up once and updated in place.
        let publisher: ExactString
        if !lastPublisherBytes.isEmpty,
           lastPublisherBytes.withUnsafeBytes({ reader.stringEquals(stamp.publisherId, $0) }) {
            publisher = lastPublisher
        } else {
            publisher = ExactString(reader.string(stamp.publisherId))
            lastPublisher = publisher
            lastPublisherBytes = Array(publisher.value.utf8)
            lastPublisherNoted = false
        }
        let n = stamp.sequenceNumber
        if !state.publishers.slot(lastPublisherSlot, holds: publisher) {
            lastPublisherSlot = state.publishers.slot(of: publisher) ?? -1
        }
        let known = lastPublisherSlot >= 0
        let m = known ? state.publishers[slot: lastPublisherSlot] : 0
        if n == m + 1 {
            // in order
        } else if n > m + 1 {
            // The messages missing are not summed: a gap can be 2^53 − 2 (a new publisherId at the largest
            // sequenceNumber), and a sum of 1,025 such gaps trapped the daemon on arithmetic overflow (an uptime
            // hunter, session 48). The notice and the log line say each gap's size; `gaps` counts them.
            counters.gaps += 1
            logEvents.append(.gap(publisher.value, expected: m + 1, received: n))
            out.append(kind: .streamGap, alertSequence: 0, topic: { JSONOut.raw(&$0, "stream.gap") }) { b in
                JSONOut.raw(&b, "{\"eventType\":\"contactwatch.stream.gap\",\"publisherId\":")
                JSONOut.string(&b, publisher.value)
                JSONOut.raw(&b, ",\"expected\":")
                JSONOut.uint(&b, m + 1)
                JSONOut.raw(&b, ",\"received\":")
                JSONOut.uint(&b, n)
                JSONOut.raw(&b, ",\"missing\":")
                JSONOut.uint(&b, n - m - 1)
                detectedAt(&b)
                b.append(UInt8(ascii: "}"))
            }
        } else if n == 1 {
            counters.publisherRestarts += 1
            logEvents.append(EngineLogEvent(message: "publisher \(publisher) restarted its sequence (last was \(m))"))
        } else {
            counters.repeats += 1
            return
        }
        if known { state.publishers[slot: lastPublisherSlot] = n } else {
            lastPublisherSlot = state.publishers.add(publisher, n)
            noteTrackedPublishers(state.publishers.count)
        }
        if !lastPublisherNoted {
            changes.publishers.insert(publisher)
            lastPublisherNoted = true
        }
    }

    /// alerts.md keeps every publisher's last number for ever (a publisher heard from again after any silence is
    /// checked against it), so each distinct `publisherId` costs memory and a store row for the daemon's life. A
    /// feed does not have thousands of publishers: at 1,000, 10,000, 100,000, … tracked ids say so, once each, as a
    /// warning (a publisher making up a new id per message, or an input anyone can publish to).
    func noteTrackedPublishers(_ count: Int) {
        if Self.isWarnedCount(count) { logEvents.append(.trackedPublishers(count)) }
    }

    /// 1,000, 10,000, 100,000, …: the counts of things kept for good (publisherIds, pduCodes) that are said.
    static func isWarnedCount(_ count: Int) -> Bool {
        guard count >= 1000 else { return false }
        var p = 1000
        while p < count { p *= 10 }
        return p == count
    }

    func detectedAt(_ b: inout [UInt8]) {
        JSONOut.raw(&b, ",\"detectedAt\":")
        JSONOut.time(&b, now)
    }

    /// A field's path as a reason to count by: without the array indices the event gave it
    /// (`personReference.identifiers[].type`). Kept with them, each index an event named was a reason of its own for the
    /// daemon's life, ~135 bytes each, and a publisher choosing the indices grew the table by thousands of keys (a
    /// leak hunter, session 48). The notice keeps the index; only the count loses it.
    static func withoutIndices(_ key: String) -> String {
        guard key.utf8.contains(UInt8(ascii: "[")) else { return key }
        var out = ""
        var inIndex = false
        for c in key {
            if c == "[" { inIndex = true; out.append(c) }
            else if c == "]" { inIndex = false; out.append(c) }
            else if !inIndex { out.append(c) }
        }
        return out
    }

    func invalid(_ e: Invalidity, counterKey: String, topic: UnsafeRawBufferPointer?, body: UnsafeRawBufferPointer, out: inout Outbox) {
        counters.invalid += 1
        counters.invalidByField[Self.withoutIndices(counterKey), default: 0] += 1
        // The notice's topic: the first frame, or for a one-frame message the body's eventType when readable.
        var topicText: [UInt8]? = nil
        if let topic {
            topicText = sanitizedText(topic, limit: 4096)
        } else if parsedCurrent {
            topicText = EventDecoder.eventTypeText(reader)
        }
        let payload = sanitizedText(body, limit: 4096)
        // The CRN and contactId the body names, when readable, for the logs (the notice's body is not re-read).
        let hints: (crn: CRN?, contactId: UInt64?) = parsedCurrent ? EventDecoder.subjectHints(reader) : (crn: nil, contactId: nil)
        out.append(kind: .invalidEvent, alertSequence: 0, crn: hints.crn, contactId: hints.contactId,
                   topic: { JSONOut.raw(&$0, "invalid-event") }) { b in
            JSONOut.raw(&b, "{\"eventType\":\"contactwatch.invalid-event\",\"reason\":")
            JSONOut.string(&b, e.reason)
            JSONOut.raw(&b, ",\"field\":")
            if let f = e.field { JSONOut.string(&b, f) } else { JSONOut.raw(&b, "null") }
            JSONOut.raw(&b, ",\"topic\":")
            if let topicText { topicText.withUnsafeBytes { JSONOut.string(&b, $0) } } else { JSONOut.raw(&b, "null") }
            JSONOut.raw(&b, ",\"payload\":")
            payload.withUnsafeBytes { JSONOut.string(&b, $0) }
            detectedAt(&b)
            b.append(UInt8(ascii: "}"))
        }
    }

    // MARK: - Registration events (steps 1, 2, 6)

    func processRegistration(_ r: RegistrationEvent, out: inout Outbox) {
        advanceWatermark(r.occurredAt)
        let ci = caseIndex(for: r.crn)
        let code = reader.string(r.registerTypeCode)
        let level = r.registerLevelCode >= 0 ? reader.string(r.registerLevelCode) : nil
        // Changed in place (a copy would be copied again on its first change).
        switch r.type {
        case .registrationAdded, .registrationUpdated:
            // (A case's first register: nothing to remove, and `removeAll(where:)` on the empty list still costs
            // ~135 instructions.)
            if !state.cases[ci].registers.isEmpty {
                let rosh = Registers.isRosh(code)
                state.cases[ci].registers.removeAll { $0.code == code || (rosh && Registers.isRosh($0.code)) }
            }
            state.cases[ci].registers.append(Register(code: code, level: level))
        default:
            if !state.cases[ci].registers.isEmpty { state.cases[ci].registers.removeAll { $0.code == code } }
        }
        (state.cases[ci].categories, state.cases[ci].excludedFromRemote) = Registers.classify(state.cases[ci].registers)
        changes.cases.insert(UInt32(ci))
        raiseOverdue(out: &out)
    }

    /// The index of a case, added when new.
    @inline(__always) func caseIndex(for crn: CRN) -> Int {
        if let i = caseTable.find(crn.key) { return Int(i) }
        let i = state.appendCase(crn)
        caseTable.insert(crn.key, Int32(i))
        return i
    }

    /// The index of a PDU by its code's bytes, added when new.
    func pduIndex(for code: UnsafeRawBufferPointer) -> Int32 {
        let packed = PackedCode(code)
        let key = packed.key ?? IndexTable<UInt64>.fingerprint(code)
        if let i = pduTable.find(key) {
            if packed.count >= 0 ? pduCodes[Int(i)] == packed : bytesEqual(code, state.pdus[Int(i)].code) { return i }
            // Two codes with one fingerprint: the table keeps the first; the other goes through the dictionary.
            return newOrKnownPDU(code)
        }
        let i = newOrKnownPDU(code)
        pduTable.insert(key, i)
        rememberPDUCodes()
        return i
    }

    /// `state.pduIndex(for:)`, saying when the number of distinct codes reaches 1,000, 10,000, … (`notePDUCodes`).
    private func newOrKnownPDU(_ code: UnsafeRawBufferPointer) -> Int32 {
        let before = state.pdus.count
        let i = state.pduIndex(for: String(decoding: code, as: UTF8.self))
        if state.pdus.count > before { notePDUCodes(state.pdus.count) }
        return i
    }

    /// Every distinct `pduCode` is a PDU kept for the daemon's life (R5's windows are per PDU; a row in the store and
    /// memory each, the code as long as the message allows): ~0.5 kB a short code, ~2.7 kB and 1 kB of store a
    /// 1,000-byte one (an uptime hunter, session 48, who sent 10,000 distinct ones unsaid). England and Wales have
    /// about a hundred PDUs: at 1,000, 10,000, 100,000, … distinct codes a warning says so, once each, as for
    /// publisherIds (`noteTrackedPublishers`).
    func notePDUCodes(_ count: Int) {
        if Self.isWarnedCount(count) { logEvents.append(.distinctPDUCodes(count)) }
    }

    /// Extends `pduCodes` to every PDU of the state.
    func rememberPDUCodes() {
        while pduCodes.count < state.pdus.count {
            var code = state.pdus[pduCodes.count].code
            pduCodes.append(code.withUTF8 { PackedCode(UnsafeRawBufferPointer($0)) })
        }
    }

    /// The local date of an instant (`zone.date(of:)`, with the offset span of the last one remembered).
    @inline(__always) func localDate(_ t: Millis) -> LocalDate {
        if let d = zoneSpan.date(of: t) { return d }
        if let d = zoneSpanBefore.date(of: t) { return d }
        return localDateMissed(t)
    }

    /// `localDate` outside the last span: tries the one before it (a stream's instants straddle at most a transition
    /// or two: contact starts of last winter, the watermark in summer), else looks the span up.
    @inline(never) func localDateMissed(_ t: Millis) -> LocalDate {
        swap(&zoneSpan, &zoneSpanBefore)
        if let d = zoneSpan.date(of: t) { return d }
        // A third span (the retention cutoff's, a year back): the oldest of the three gives way.
        swap(&zoneSpan, &zoneSpanOldest)
        if let d = zoneSpan.date(of: t) { return d }
        zoneSpan = zone.span(at: t)
        return zoneSpan.date(of: t)!
    }

    /// `localDate(t)`, answered by `memo` while `t` is in the local day (and offset span) it last held: two comparisons
    /// instead of the span's bounds and a division.
    @inline(__always) func localDate(_ t: Millis, memo: inout DayMemo) -> LocalDate {
        if t >= memo.from && t < memo.until { return memo.date }
        return localDateRemembered(t, in: &memo)
    }

    /// `localDate(_:memo:)` outside the memo's day: the date, and the instants that share it within the same span.
    @inline(never) func localDateRemembered(_ t: Millis, in memo: inout DayMemo) -> LocalDate {
        let d = localDate(t)
        // `localDate` leaves the span that answered in `zoneSpan` or `zoneSpanBefore`.
        let span = zoneSpan.date(of: t) != nil ? zoneSpan : zoneSpanBefore
        let dayStart = Millis(d.days) * millisPerDay - span.offset
        memo = DayMemo(from: Swift.max(dayStart, span.from), until: Swift.min(dayStart + millisPerDay, span.until), date: d)
        return d
    }

    func advanceWatermark(_ t: Millis) {
        if t > state.watermark { state.watermark = t }
        forgetExpired()
    }

    // MARK: - Contact events (steps 1–6)

    @inline(__always) func isInPerson(_ m: ContactMode) -> Bool {
        switch m {
        case .office, .homeVisit, .doorstep, .otherInPerson: return true
        case .video: return settings.videoCountsAsFaceToFace
        case .telephone, .textOrOnline: return false
        }
    }

    /// `known`: the contact's remembered record before step 1 (`liveContact`, looked up by the validation);
    /// `knownCase`: the index of the event's case, found by `prefetchCase` (-1: a new case). Cases are never removed,
    /// so it still holds here: the table is not asked twice.
    func processContact(_ e: ContactEvent, known: ContactRecord?, caseIndex knownCase: Int, out: inout Outbox) {
        // Step 1.
        advanceWatermark(e.occurredAt)
        // The record is still remembered unless the watermark just moved the retention past its start (forgetting
        // changes no record it keeps).
        let previous = known.flatMap { $0.contactStart >= retentionCutoff ? $0 : nil }
        assert(previous == liveContact(e.contactId))
        if let previous, e.contactVersion <= previous.version {
            counters.duplicates += 1
            raiseOverdue(out: &out)
            return
        }
        if state.watermark - e.contactStart > Millis(settings.contactRetentionDays) * millisPerDay {
            counters.stale += 1
            raiseOverdue(out: &out)
            return
        }
        let ci = knownCase >= 0 ? knownCase : caseIndex(for: e.crn)
        assert(ci == caseIndex(for: e.crn))
        changes.cases.insert(UInt32(ci))
        changes.contacts.append(e.contactId)
        // Step 2: case facts.
        // (Written only when it changes: nearly every event repeats its case's sentence type, and each write to a case
        // checks the cases array's uniqueness and dirties its line.)
        if let s = e.sentenceType, s != state.cases[ci].sentenceType { state.cases[ci].sentenceType = s }
        // Step 3: replacement.
        let wasFailure = previous?.flags.contains(.failure) ?? false
        var withdrawnPDU: Int32 = -1
        if let old = previous {
            if old.flags.contains(.failure) { state.cases[ci].lists.removeAll(contactId: e.contactId, from: .failures) }
            if old.flags.contains(.attendedRemote) { state.cases[ci].lists.removeAll(contactId: e.contactId, from: .remotes) }
            if old.pduIndex >= 0 {
                state.pdus[Int(old.pduIndex)].add(date: old.contributionDate, compliant: old.flags.contains(.compliant), delta: -1)
                changes.pdus.insert(old.pduIndex)
                withdrawnPDU = old.pduIndex
            }
            if old.actionId != 0 && old.actionId != e.actionId {
                withdrawAction(of: e.contactId, record: old, caseIndex: ci)
            }
            if wasFailure && !e.isFailure {
                resolveReclassified(caseIndex: ci, contactId: e.contactId, event: e, out: &out)
            }
            // R7: the contact's open alert, then the timer the earlier version armed.
            if !state.cases[ci].openOutcomeOverdue.isEmpty {
                resolveOutcomeOverdue(caseIndex: ci, event: e, out: &out)
            }
            if !state.outcomeTimers.isEmpty, state.outcomeTimers.removeValue(forKey: e.contactId) != nil {
                changes.outcomeTimers.insert(e.contactId)
            }
        }
        if settings.outcomeOverdueEnabled && awaitsOutcome(e) { armOutcomeTimer(caseIndex: ci, event: e) }
        // The new version's contributions.
        let inPerson = isInPerson(e.mode)
        // R3 and R4 raise at most once per contactId, across versions.
        var flags = previous?.flags.intersection([.remoteAlertRaised, .privacyAlertRaised]) ?? []
        if e.isFailure {
            flags.insert(.failure)
            state.cases[ci].lists.append(ContactRef(contactId: e.contactId, start: e.contactStart), to: .failures)
        }
        let attended = e.hasOutcome && e.attended
        if attended && !inPerson {
            flags.insert(.attendedRemote)
            state.cases[ci].lists.append(ContactRef(contactId: e.contactId, start: e.contactStart), to: .remotes)
        }
        if attended && inPerson { flags.insert(.attendedInPerson) }
        if e.hasOutcome {
            if e.contactStart < state.cases[ci].firstContactAt { state.cases[ci].firstContactAt = e.contactStart }
            if attended && inPerson && e.contactStart > state.cases[ci].lastInPersonAt {
                state.cases[ci].lastInPersonAt = e.contactStart
            }
        }
        var pdu: Int32 = -1
        let startDate = localDate(e.contactStart)
        if e.hasOutcome && e.pduCode >= 0 && (e.complied || e.isFailure) {
            pdu = reader.withStringBytes(e.pduCode) { pduIndex(for: $0) }
            if e.complied { flags.insert(.compliant) }
            // Dates before the oldest remembered contact can no longer change or be counted. (Both changes in one
            // access to `state.pdus`: one uniqueness check of its buffer, not two.)
            let oldest = localDate(retentionCutoff, memo: &cutoffDay).days
            state.pdus[Int(pdu)].add(date: startDate.days, compliant: e.complied, delta: 1, thenPruneBefore: oldest - 1)
            changes.pdus.insert(pdu)
        }
        let actionUnchanged = previous != nil && previous!.actionId == e.actionId && e.actionId != 0
        var record = ContactRecord(caseIndex: UInt32(ci), actionId: e.actionId, version: e.contactVersion,
                                   contactStart: e.contactStart,
                                   actionTime: actionUnchanged ? previous!.actionTime : e.actionAt,
                                   pduIndex: pdu, contributionDate: startDate.days, flags: flags)
        // Step 4: contact rules R1–R5.
        if e.isFailure && !wasFailure { raiseNonCompliance(caseIndex: ci, event: e, date: startDate, out: &out) }
        if attended && !inPerson { checkTelephoneOnly(caseIndex: ci, event: e, out: &out) }
        if attended && inPerson { resolveTelephoneOnly(caseIndex: ci, event: e, out: &out) }
        if attended && !inPerson && settings.remoteContactEnabled && state.cases[ci].excludedFromRemote
            && !record.flags.contains(.remoteAlertRaised) {
            raiseRemoteContact(caseIndex: ci, event: e, out: &out)
            record.flags.insert(.remoteAlertRaised)
        }
        if attended && !record.flags.contains(.privacyAlertRaised) && checkPrivacy(caseIndex: ci, event: e, out: &out) {
            record.flags.insert(.privacyAlertRaised)
        }
        if withdrawnPDU >= 0 { evaluateRate(pdu: withdrawnPDU, event: e, out: &out) }
        if pdu >= 0 && pdu != withdrawnPDU { evaluateRate(pdu: pdu, event: e, out: &out) }
        state.contacts.set(record, forKey: e.contactId)
        if !referenceMode && previous?.contactStart != record.contactStart {
            forgetQueue.insert(ForgetItem(start: record.contactStart, contactId: e.contactId))
        }
        // Step 5: enforcement action.
        if e.actionId != 0 {
            if !actionUnchanged { recordAction(of: e.contactId, id: e.actionId, at: e.actionAt, caseIndex: ci) }
            resolveByAction(caseIndex: ci, event: e, effectiveTime: record.actionTime, out: &out)
        }
        // Step 6.
        raiseOverdue(out: &out)
    }

    // MARK: - Enforcement actions

    func recordAction(of contactId: UInt64, id: UInt32, at t: Millis, caseIndex ci: Int) {
        switch ActionCodes.actionClass(id) {
        case .warning:
            state.cases[ci].lists.append(ActionRecord(contactId: contactId, start: t), to: .warnings)
        case .breach:
            state.cases[ci].lists.append(ActionRecord(contactId: contactId, start: t), to: .breaches)
        case .withdrawal:
            // Removes the latest warning whose effective time is at or before the withdrawal's.
            var best = -1
            do {
                // (The view's reference to the lists ends with this scope: the removal below then changes them in
                // place instead of copying them.)
                let warnings = state.cases[ci].warnings
                for k in warnings.indices where warnings[k].start <= t {
                    if best < 0 || warnings[k].start >= warnings[best].start { best = k }
                }
            }
            if best >= 0 {
                state.withdrawn[contactId] = state.cases[ci].lists.remove(at: best, from: .warnings)
                changes.withdrawn.insert(contactId)
            }
        case .noFurtherAction, .other:
            break
        }
    }

    func withdrawAction(of contactId: UInt64, record old: ContactRecord, caseIndex ci: Int) {
        switch ActionCodes.actionClass(old.actionId) {
        case .warning:
            state.cases[ci].lists.removeAll(contactId: contactId, from: .warnings)
        case .breach:
            state.cases[ci].lists.removeAll(contactId: contactId, from: .breaches)
        case .withdrawal:
            // Withdrawing a withdrawal puts back the warning it had removed, if its contact still carries it.
            if let w = state.withdrawn.removeValue(forKey: contactId) {
                changes.withdrawn.insert(contactId)
                if let src = state.contacts[w.contactId], ActionCodes.actionClass(src.actionId) == .warning,
                   src.actionTime == w.start {
                    state.cases[ci].lists.append(w, to: .warnings)
                }
            }
        case .noFurtherAction, .other:
            break
        }
    }

    // MARK: - Forgetting old contacts

    /// The earliest contactStart still remembered: contacts before it are forgotten (events.md).
    @inline(__always) var retentionCutoff: Millis { retentionCutoff(at: state.watermark) }

    /// The retention cutoff W = `w` would have.
    @inline(__always) func retentionCutoff(at w: Millis) -> Millis {
        w == .min ? .min : w - Millis(settings.contactRetentionDays) * millisPerDay
    }

    /// The remembered record of a contact, nil when there is none. (`forgetExpired` has already dropped every contact
    /// older than the retention; the check here only keeps that promise local.)
    @inline(__always) func liveContact(_ id: UInt64) -> ContactRecord? {
        guard let rec = state.contacts[id], rec.contactStart >= retentionCutoff else { return nil }
        return rec
    }

    /// Forgets every contact whose contactStart is now more than `input.contactRetentionDays` before W, at once: no
    /// rule or lookup ever sees a forgotten contact or anything it carried (its failure, remote mark, warning or
    /// breach — kept by their own effective time —, withdrawal, compliance-rate contribution). Called whenever W may
    /// have moved. `forgetQueue` yields the remembered contacts by contactStart (the next ones held, the rest found in
    /// the table when the cutoff nears them; entries left behind when a version moved the start are skipped when they
    /// come up), so this costs a comparison or two while nothing expires.
    @inline(__always) func forgetExpired() {
        // While nothing is remembered from before the cutoff (`ForgetQueue.nothingBefore`, the queue's floor): one
        // comparison, inline. (Reference mode scans instead.)
        if !referenceMode && forgetQueue.nothingBefore(retentionCutoff) { return }
        forgetExpiredNow()
    }

    /// `forgetExpired` past its floor check.
    @inline(never) func forgetExpiredNow() {
        let cutoff = retentionCutoff
        if referenceMode {
            let expired = state.contacts.filter { $0.value.contactStart < cutoff }.map { $0.key }.sorted()
            for id in expired { forget(id) }
            counters.forgottenContacts += expired.count
            return
        }
        while true {
            while let first = forgetQueue.popMin(before: cutoff) {
                guard let rec = state.contacts[first.contactId], rec.contactStart == first.start else { continue }
                forget(first.contactId)
                counters.forgottenContacts += 1
            }
            // The queue's window is spent and the cutoff past it: the next contacts are collected from the table.
            guard forgetQueue.needsRefill(before: cutoff) else { break }
            forgetQueue.refill(cutoff: cutoff, from: state.contacts)
        }
    }

    func forget(_ id: UInt64) {
        guard let rec = state.contacts.removeValue(forKey: id) else { return }
        let ci = Int(rec.caseIndex)
        if rec.flags.contains(.failure) { state.cases[ci].lists.removeAll(contactId: id, from: .failures) }
        if rec.flags.contains(.attendedRemote) { state.cases[ci].lists.removeAll(contactId: id, from: .remotes) }
        // What the contact's action recorded goes with it: no rule looks at a forgotten contact (events.md).
        if rec.actionId != 0 {
            state.cases[ci].lists.removeAll(contactId: id, from: .warnings)
            state.cases[ci].lists.removeAll(contactId: id, from: .breaches)
        }
        // So does its compliance-rate contribution (its date can still be inside the window: a window as long as
        // the retention reaches back to the cutoff's date, which starts before the cutoff itself).
        if rec.pduIndex >= 0 {
            state.pdus[Int(rec.pduIndex)].withdraw(date: rec.contributionDate, compliant: rec.flags.contains(.compliant))
            changes.pdus.insert(rec.pduIndex)
        }
        if state.withdrawn.removeValue(forKey: id) != nil { changes.withdrawn.insert(id) }
        // A forgotten contact raises nothing (R7); an R7 alert already open on it stays open in its case.
        if !state.outcomeTimers.isEmpty, state.outcomeTimers.removeValue(forKey: id) != nil { changes.outcomeTimers.insert(id) }
        changes.cases.insert(rec.caseIndex)
        // Left in `changes.contacts` if set earlier in the batch: the store deletes it all the same (see `ContactLog`).
        changes.forgottenContacts.append(id)
    }
}

/// A remembered contact by its contactStart, for `Engine.forgetExpired`.
struct ForgetItem: Comparable {
    var start: Millis
    var contactId: UInt64

    @inline(__always) static func < (a: ForgetItem, b: ForgetItem) -> Bool {
        a.start != b.start ? a.start < b.start : a.contactId < b.contactId
    }
}

/// The R7 deadlines of the last 16 dates asked, direct-mapped by date.
struct OutcomeDeadlineMemo {
    var dates = InlineArray<16, Int32>(repeating: .min)
    var deadlines = InlineArray<16, Int32>(repeating: 0)
}

/// An armed R7 timer (step 6), ordered by (deadline, CRN, contactId).
typealias OutcomeItem = OverdueItem

/// An open R1 alert waiting for its deadline (step 6), ordered by (deadline, CRN, contactId).
struct OverdueItem: Comparable {
    var deadline: Int32
    var crn: UInt32
    var contactId: UInt64
    var version: UInt64
    var caseIndex: UInt32

    @inline(__always) static func < (a: OverdueItem, b: OverdueItem) -> Bool {
        if a.deadline != b.deadline { return a.deadline < b.deadline }
        if a.crn != b.crn { return a.crn < b.crn }
        if a.contactId != b.contactId { return a.contactId < b.contactId }
        return a.version < b.version
    }

    static func == (a: OverdueItem, b: OverdueItem) -> Bool {
        a.deadline == b.deadline && a.crn == b.crn && a.contactId == b.contactId && a.version == b.version
    }
}

/// Integer keys to Int32 values by open addressing (linear probing, Fibonacci hashing, at most half full): the engine's
/// case and PDU lookups, one multiplication a probe instead of `Hasher`'s SipHash. A key and its value share a slot,
/// so a probe reads one cache line (8 bytes a slot for the cases' 32-bit CRN keys). Never removes a key.
struct IndexTable<Key: FixedWidthInteger & UnsignedInteger> {
    struct Slot {
        var key: Key = 0
        /// -1: empty slot.
        var value: Int32 = -1
    }

    private var slots: [Slot] = Array(repeating: Slot(), count: 16)
    private var shift: UInt64 = 60
    private(set) var count = 0

    /// Bytes of the slots (with the array's header and malloc's overhead).
    var footprint: Int { 48 + slots.count * MemoryLayout<Slot>.stride }

    @inline(__always) private func home(_ key: Key) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Starts loading the line of `key`'s home slot (a hint; `mutating` for the reason `ContactTable.prefetch` is).
    /// (The home slot is computed before the closure: a closure that reads `self` made the call retain and release
    /// the slots' buffer, ~45 instructions an event.)
    @inline(__always) mutating func prefetch(_ key: Key) {
        let h = home(key)
        slots.withUnsafeBufferPointer { cw_prefetch($0.baseAddress! + h) }
    }

    @inline(__always) func find(_ key: Key) -> Int32? {
        let h = home(key)
        return slots.withUnsafeBufferPointer { s in
            let mask = s.count &- 1
            var k = h
            while true {
                let slot = s[k]
                if slot.value < 0 { return nil }
                if slot.key == key { return slot.value }
                k = (k &+ 1) & mask
            }
        }
    }

    /// Adds a key that is not there.
    mutating func insert(_ key: Key, _ value: Int32) {
        if (count + 1) * 2 > slots.count { resize(slots.count * 2) }
        put(key, value)
        count += 1
    }

    mutating func reserve(_ n: Int) {
        var size = slots.count
        while n * 2 > size { size *= 2 }
        if size > slots.count { resize(size) }
    }

    private mutating func put(_ key: Key, _ value: Int32) {
        let mask = slots.count - 1
        var k = home(key)
        while slots[k].value >= 0 { k = (k + 1) & mask }
        slots[k] = Slot(key: key, value: value)
    }

    private mutating func resize(_ size: Int) {
        let old = slots
        slots = Array(repeating: Slot(), count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        for slot in old where slot.value >= 0 { put(slot.key, slot.value) }
    }
}

extension IndexTable<UInt64> {
    /// FNV-1a of bytes (a PDU code's key).
    static func fingerprint(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for c in b { h = (h ^ UInt64(c)) &* 0x100_0000_01B3 }
        return h
    }
}

/// A code of up to 16 bytes in two words, zero-padded, with its length (-1: longer, not packed).
struct PackedCode: Equatable {
    var w0: UInt64 = 0
    var w1: UInt64 = 0
    var count = -1

    init(_ b: UnsafeRawBufferPointer) {
        guard b.count <= 16 else { return }
        count = b.count
        if let p = b.baseAddress { (w0, w1) = PackedCode.words(p, b.count) }
    }

    /// The `n` (≤ 16) bytes at `p` as two little-endian words, zero-padded: read by whole loads, two of them
    /// overlapping and shifted, rather than copied into the words (whose loads then waited for the copy's narrower
    /// stores: a failed store-to-load forwarding on every contact event).
    @inline(__always) static func words(_ p: UnsafeRawPointer, _ n: Int) -> (UInt64, UInt64) {
        @inline(__always) func load<T: FixedWidthInteger & UnsignedInteger>(_ offset: Int, _: T.Type) -> UInt64 {
            UInt64(T(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: T.self)))
        }
        // Each case: the first whole word from 0, the last whole word ending at n shifted right past the bytes that
        // the first already holds, then moved up to its place.
        switch n {
        case 8...16: return (load(0, UInt64.self), n == 8 ? 0 : load(n - 8, UInt64.self) >> UInt64(8 * (16 - n)))
        case 4..<8: return (load(0, UInt32.self) | (load(n - 4, UInt32.self) >> UInt64(8 * (8 - n))) << 32, 0)
        case 2..<4: return (load(0, UInt16.self) | (load(n - 2, UInt16.self) >> UInt64(8 * (4 - n))) << 16, 0)
        case 1: return (load(0, UInt8.self), 0)
        default: return (0, 0)
        }
    }

    /// The table key of a packed code (nil when not packed: the FNV fingerprint of the bytes serves).
    var key: UInt64? {
        count < 0 ? nil : (w0 ^ (w1 &* 0x100_0000_01B3) ^ UInt64(count) &<< 59) | 1
    }
}

/// An R6 alert's id, for the version of the trigger contact whose R1 alert it follows, in the case it was raised in
/// (`Engine.overdueIds`, keyed by contactId: a contact forgotten with its alerts open may come back, a new contact,
/// under another case and raise an R6 of its own there).
struct OverdueID: IDMapValue {
    var version: UInt64
    var id: AlertID
    var caseIndex: UInt32
    static var filler: OverdueID { OverdueID(version: 0, id: AlertID(high: 0, low: 0), caseIndex: 0) }
}

extension PDUState {
    /// `add`, then `prune(before:)`, in one mutating access (`Engine.processContact`). The prune runs only when `cut`
    /// differs from the last one: with the same cut it finds nothing, since every date added in between is a remembered
    /// contact's (at or after the cut: the cut is the retention cutoff's local date less one day). So it runs about once
    /// a day per PDU instead of at every contribution (`RetentionTests` pins the day).
    @inline(__always) mutating func add(date: Int32, compliant: Bool, delta: Int32, thenPruneBefore cut: Int32) {
        add(date: date, compliant: compliant, delta: delta)
        if cut != prunedBefore {
            prune(before: cut)
            prunedBefore = cut
        }
    }
}
