import ContactWatchEngine
import ContactWatchStore

/// The decisions of the processing loop as a plain value (the shape of swift-kafka-client's
/// `KafkaConsumer.StateMachine`): the loop tells it what happened (an event was processed, a batch became durable,
/// a consumer subscribed, time passed) and it answers with what to do next. It performs no I/O and reads no clock,
/// so its invariants are tested in-process (RuntimeTests):
///
/// - a message is handed out for publication only by `batchDurable()`, i.e. after the writer reported the batch
///   that made it durable; batches become durable and are published in the order they were submitted;
/// - alerts committed before a crash but never published (`unpublished`) go out before any new event is read, once
///   a consumer has subscribed to alert topics or the republish grace has passed;
/// - at most `maxInFlight` batches are with the writer; past `hardLimit` pending events the loop stops reading input
///   until the writer catches up (`acceptsInput`).
struct CommitPipeline {
    typealias Instant = ContinuousClock.Instant

    struct Limits: Sendable {
        /// `state.commitMaxEvents`: a batch is due once it holds this many events...
        var maxEvents: Int
        /// ... or once its first event is this old (`state.commitIntervalMillis`).
        var interval: Duration
        /// Batches handed to the writer and not yet durable, at most.
        var maxInFlight = 2
        /// A due batch waits for a free writer up to this many events (then it goes to the writer as a second batch
        /// in flight); past it with `maxInFlight` batches in flight the input is not read.
        var hardLimit: Int
        /// The default `hardLimit`, in batches of `maxEvents`: 200 (200,000 events with the default 1000, about
        /// 25 MB of pending messages). Under overload the writer's batches grow to this bound, and a commit costs
        /// per case it touches, not per event: a bench batch of 50,000 events already touches most of the 20,000
        /// cases, so at the former 50 the second batch in flight every 50,000 events only multiplied commits of the
        /// same rows (`Benchmarks/README.md`, "The daemon outside the engine, second pass": in three interleaved
        /// pairs of runs, 10 / 12 / 10 commits per run → 7 / 6 / 7, writer CPU 0.86 / 1.01 / 0.73 s → 0.68 / 0.76 /
        /// 0.54 s, 21–26% less).
        static let batchesPerHardLimit = 200
        /// `output.republishGraceMillis`: the longest alerts left unpublished by a crash wait for a consumer.
        var republishGrace: Duration = .milliseconds(2000)
        /// With nothing pending and nothing with the writer, how long after the last publication the highest
        /// alertSequence published is recorded on its own (an empty batch): otherwise it waits for the next event's
        /// commit, and a crash or a backup of an idle daemon republishes every alert published since its last commit
        /// (an operator audit, session 26: 123 delivered alerts republished after a kill of an idle daemon).
        var markDelay: Duration = .seconds(1)
        /// `state.groupCommit`: the events in hand go to an idle writer at once, when the loop has read the input
        /// waiting (`tick`), instead of waiting for `interval` or `maxEvents`. While the writer is busy a batch grows
        /// as before and goes as soon as the writer is free, so under load batches are as large as without it; at a
        /// steady rate the writer commits back to back, each batch holding the events that came during the previous
        /// commit (`Benchmarks/README.md`, "Latency, thirteenth session": at 10,000 ev/s p50 ~6 → ~1.3 ms).
        var groupCommit: Bool

        init(maxEvents: Int, interval: Duration, hardLimit: Int? = nil, republishGrace: Duration = .milliseconds(2000),
             groupCommit: Bool = true) {
            self.maxEvents = max(1, maxEvents)
            self.interval = interval
            let (bound, overflow) = self.maxEvents.multipliedReportingOverflow(by: Self.batchesPerHardLimit)
            self.hardLimit = hardLimit ?? (overflow ? Int.max : bound)
            self.republishGrace = republishGrace
            self.groupCommit = groupCommit
        }
    }

    /// What the loop does next.
    enum Action: Equatable, Sendable {
        /// Nothing now.
        case none
        /// Hand the current batch to the writer: call `submit(alertSequence:)` and write what it returns.
        case submit
        /// Publish `unpublished` (a consumer subscribed or the grace passed), then call `republished()`.
        case republish
    }

    enum Phase: Equatable, Sendable {
        /// Alerts of an earlier run wait for a consumer (or the deadline); no input is read.
        case republishing(deadline: Instant)
        /// Reading input.
        case running
        /// Stopping: everything pending was submitted; only durability reports are awaited.
        case stopping
    }

    /// A batch handed to the writer.
    struct Submission {
        /// The messages of the batch (its alerts are journaled with it, all are published once it is durable).
        var outbox: Outbox
        /// The highest alertSequence published so far, recorded with the batch.
        var publishedThrough: UInt64
    }

    let limits: Limits
    private(set) var phase: Phase { didSet { running = Self.isRunning(phase) } }
    /// `phase == .running`, kept beside it: `Phase` holds a `ContinuousClock.Instant`, whose layout the compiler does
    /// not know, so reading `phase` once per message went through runtime value witnesses.
    private var running: Bool
    /// The messages of the events processed since the last submission; the engine writes into it.
    var outbox: Outbox
    /// Events processed since the last submission.
    private(set) var pendingEvents = 0
    private var batchStarted: Instant? = nil
    /// Batches with the writer, oldest first, with the alertSequence the state had when each was submitted.
    private var inFlight: [(outbox: Outbox, sequence: UInt64, started: Instant?, recorded: UInt64)] = []
    /// When the first event of the batch `batchDurable` last returned was processed (its publish latency's start).
    private(set) var lastDurableStarted: Instant? = nil
    private var spare: [Outbox] = []
    /// Alerts committed by an earlier run and not yet published.
    private(set) var unpublished: [JournalEntry]
    /// The highest alertSequence handed out for publication.
    private(set) var publishedThrough: UInt64
    /// The `publishedThrough` recorded with the last submission (or loaded): the store's, once that batch is durable.
    private(set) var recordedPublished: UInt64
    /// When an idle daemon records `publishedThrough` on its own (`markDelay` after it was seen idle with more
    /// published than recorded); nil when not due.
    private var markDue: Instant? = nil
    /// The alertSequence of the newest durable batch.
    private(set) var committedSequence: UInt64
    /// The `publishedThrough` the store holds: recorded by the newest durable batch (or loaded, or by the republish).
    private(set) var durablePublished: UInt64
    /// Batches submitted / made durable, for counters.
    private(set) var submittedBatches = 0
    private(set) var durableBatches = 0

    /// - Parameters:
    ///   - committedSequence: the alertSequence of the loaded state.
    ///   - publishedThrough: the highest alertSequence known published.
    ///   - unpublished: journal entries committed but not published (above `publishedThrough`), in order.
    ///   - now: the start time (the republish grace counts from it).
    init(limits: Limits, committedSequence: UInt64, publishedThrough: UInt64, unpublished: [JournalEntry], now: Instant) {
        self.limits = limits
        self.committedSequence = committedSequence
        self.publishedThrough = publishedThrough
        recordedPublished = publishedThrough
        durablePublished = publishedThrough
        self.unpublished = unpublished
        outbox = Self.newOutbox(limits)
        phase = unpublished.isEmpty ? .running : .republishing(deadline: now + limits.republishGrace)
        running = Self.isRunning(phase)
    }

    /// Whether the writer waits for another process's reader to let go of the store (`writerWaiting(_:)`).
    private(set) var writerIsWaiting = false

    /// Whether the loop may read input now (asked once per message: a pattern match, not `==` on `Phase`).
    var acceptsInput: Bool {
        guard running, !writerIsWaiting else { return false }
        return pendingEvents < limits.hardLimit || inFlight.count < limits.maxInFlight
    }

    /// The writer's commit waits for another process's reader (a side file of the store was deleted under it): no
    /// input is read from then on. What it would read could not be committed before the daemon stops — the wait ends
    /// with the commit failing — and held in memory it would be dropped then; left unread it stays with the sender
    /// (up to the socket's high-water mark).
    mutating func writerWaiting(_ waiting: Bool) { writerIsWaiting = waiting }

    /// How many batches the writer holds.
    var batchesInFlight: Int { inFlight.count }

    /// Whether everything submitted is durable and published and nothing is pending.
    var isIdle: Bool { inFlight.isEmpty && pendingEvents == 0 && outbox.isEmpty }

    // MARK: - Events from the loop

    /// The engine processed one event into `outbox`.
    /// `now` is read only when it matters (the first event of a batch, a full batch), not once per event.
    /// With `groupCommit` an idle writer gets the events at the next `tick`, once the loop has read what was waiting
    /// (a batch of all of it), not at each event; a full batch still goes at once.
    mutating func eventProcessed(at now: @autoclosure () -> Instant) -> Action {
        if pendingEvents == 0 { batchStarted = now() }
        pendingEvents += 1
        guard pendingEvents >= limits.maxEvents else { return .none }
        // Full while the writer holds a batch and the hard limit is not reached (or no writer slot is free): what
        // `decide` would answer, without reading the clock or the phase (this is every event while the writer is busy).
        if !inFlight.isEmpty && (pendingEvents < limits.hardLimit || inFlight.count >= limits.maxInFlight) { return .none }
        return decide(at: now())
    }

    /// Time passed (the loop woke up): a batch may be due, the republish grace over, or an idle daemon's record of
    /// what it published (an empty batch, `markDelay`).
    mutating func tick(at now: Instant) -> Action {
        if case .republishing(let deadline) = phase { return now >= deadline ? .republish : .none }
        let action = decide(at: now)
        guard action == .none else { return action }
        guard running, inFlight.isEmpty, pendingEvents == 0, outbox.isEmpty, publishedThrough > recordedPublished else {
            markDue = nil
            return .none
        }
        guard let due = markDue else {
            markDue = now + limits.markDelay
            return .none
        }
        return now >= due ? .submit : .none
    }

    /// A consumer subscribed to alert topics (the XPUB reported a prefix of or under `alert.`).
    mutating func alertSubscriberJoined() -> Action {
        if case .republishing = phase { return .republish }
        return .none
    }

    /// The loop published `unpublished`; from now on input is read. Returns the sequence to record as published.
    mutating func republished() -> UInt64 {
        if let last = unpublished.last { publishedThrough = max(publishedThrough, last.alertSequence) }
        recordedPublished = publishedThrough  // the loop records it at once
        durablePublished = publishedThrough
        unpublished = []
        if case .republishing = phase { phase = .running }
        return publishedThrough
    }

    /// Takes the current batch for the writer. `alertSequence`: the engine state's, after the batch's events.
    mutating func submit(alertSequence: UInt64) -> Submission {
        largestBatchBytes = max(largestBatchBytes, outbox.byteCount)
        let batch = outbox
        inFlight.append((batch, alertSequence, batchStarted, publishedThrough))
        outbox = spare.popLast() ?? Self.newOutbox(limits)
        pendingEvents = 0
        batchStarted = nil
        markDue = nil
        submittedBatches += 1
        recordedPublished = publishedThrough
        return Submission(outbox: batch, publishedThrough: publishedThrough)
    }

    /// The writer reported the oldest batch durable: its messages are to be published now, in order. Returns nil
    /// when no batch was in flight (a report the loop did not expect).
    mutating func batchDurable() -> Outbox? {
        guard !inFlight.isEmpty else { return nil }
        let batch = inFlight.removeFirst()
        committedSequence = batch.sequence
        durablePublished = max(durablePublished, batch.recorded)
        lastDurableStarted = batch.started
        batch.outbox.forEach { entry, _, _ in
            if entry.alertSequence > publishedThrough { publishedThrough = entry.alertSequence }
        }
        durableBatches += 1
        return batch.outbox
    }

    /// Gives back an outbox whose messages were published, to be reused for a later batch. `inout`, so that the
    /// caller's copy (the only one once `batchDurable` returned it) is emptied in place and keeps its capacity: a
    /// `removeAll(keepingCapacity:)` on a shared copy would allocate (and page in) a fresh buffer for every batch.
    mutating func recycle(_ outbox: inout Outbox) {
        outbox.removeAll()
        if spare.count < limits.maxInFlight + 1 { spare.append(outbox) }
    }

    /// The largest batch (bytes of topics and bodies) submitted since the outboxes' pages were last given back
    /// (`releasePages`): what an outbox may hold resident.
    private var largestBatchBytes = 0
    /// A batch this large since the last release makes the release worth it (below it the outboxes hold at most a
    /// few MB, and a steady trickle of small batches would trim the heap after each).
    static let releaseWorthBytes = 4 << 20

    /// Whether a batch since the last release was large enough for its pages to be given back (`releasePages`).
    var pagesWritten: Bool { largestBatchBytes >= Self.releaseWorthBytes }

    /// Idle (`isIdle`): gives back the pages the batches wrote into the outboxes kept for reuse (the current one, empty,
    /// and the spares), keeping their reserved room. Returns the bytes advised.
    @discardableResult
    mutating func releasePages() -> Int {
        guard isIdle else { return 0 }
        largestBatchBytes = 0
        var released = outbox.releasePages()
        for o in spare { released += o.releasePages() }
        return released
    }

    /// Stop: no more input. Returns true when the events in hand (if any) are to be submitted now, whatever the
    /// number of batches in flight.
    mutating func stop() -> Bool {
        phase = .stopping
        return pendingEvents > 0 || !outbox.isEmpty
    }

    // MARK: - Timing

    /// How long the loop may sleep in its poll before the next decision is due (milliseconds, at most `idle`).
    func pollTimeout(at now: Instant, idle: Int = 100) -> Int {
        var until: Instant? = nil
        switch phase {
        case .republishing(let deadline): until = deadline
        case .running:
            if pendingEvents > 0, inFlight.isEmpty, let started = batchStarted {
                until = limits.groupCommit ? now : started + limits.interval
            } else if let markDue {
                until = markDue
            }
        case .stopping: break
        }
        guard let until else { return idle }
        let left = until - now
        if left <= .zero { return 0 }
        let ms = left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int(min(Int64(idle), ms))
    }

    // MARK: - Private

    /// A batch's outbox, with room reserved for the messages of a batch at the hard limit (at most 2^18 events) at
    /// `reservedBytesPerEvent` bytes an event and a message every `reservedEventsPerMessage` events: address space
    /// only until written (`Benchmarks/README.md`, "The daemon outside the engine, third pass: page faults of the
    /// processing thread"). A batch that needs more grows it as before.
    static func newOutbox(_ limits: Limits) -> Outbox {
        let events = min(limits.hardLimit, 1 << 18)
        return Outbox(reservingBytes: events * reservedBytesPerEvent, messages: events / reservedEventsPerMessage)
    }

    /// The bench stream's messages average 122 bytes an event (93,363 messages of ~500 bytes for 386,456 events),
    /// more late in the stream, where its largest batches are: at 128 its last batch still doubled its buffer once.
    static let reservedBytesPerEvent = 256
    static let reservedEventsPerMessage = 4

    private static func isRunning(_ phase: Phase) -> Bool {
        if case .running = phase { return true }
        return false
    }

    /// A batch is due when it is full or old enough, or at once with `groupCommit`; it goes to the writer when the
    /// writer is free, or when it has grown past `hardLimit` and fewer than `maxInFlight` batches are with the writer.
    private func decide(at now: @autoclosure () -> Instant) -> Action {
        guard case .running = phase, pendingEvents > 0 else { return .none }
        if limits.groupCommit && inFlight.isEmpty { return .submit }
        let due = pendingEvents >= limits.maxEvents || (batchStarted.map { now() - $0 >= limits.interval } ?? true)
        guard due else { return .none }
        if inFlight.isEmpty { return .submit }
        if pendingEvents >= limits.hardLimit && inFlight.count < limits.maxInFlight { return .submit }
        return .none
    }
}
