import ContactWatchEngine
import Synchronization
import ZeroMQ

/// Every count the daemon keeps, as atomics in one place: written by the thread that owns each fact (the processing
/// loop, the journal thread), readable from any thread at any time (metrics, the stop summary, tests).
///
/// The engine's own counters live in the engine (plain integers on the processing thread, no atomics per event);
/// the loop copies them here after each batch of input (`publish(engine:)`), so a reader sees them at most one
/// drain old.
public final class RuntimeCounters: Sendable {
    // From the engine (copied by the processing loop).
    public let received = Atomic<Int>(0)
    public let processed = Atomic<Int>(0)
    public let invalid = Atomic<Int>(0)
    public let ignored = Atomic<Int>(0)
    public let duplicates = Atomic<Int>(0)
    public let stale = Atomic<Int>(0)
    public let gaps = Atomic<Int>(0)
    /// Messages whose sequenceNumber was at or below the publisher's last, other than 1 (alerts.md: a repeat).
    public let repeats = Atomic<Int>(0)
    /// Messages numbered 1 other than their publisher's first (alerts.md: the publisher restarted its numbering; no
    /// gap is reported across a restart). Logged at `info`, rate-limited; counted here so none goes unseen.
    public let publisherRestarts = Atomic<Int>(0)
    public let alertsRaised = Atomic<Int>(0)
    public let alertsResolved = Atomic<Int>(0)
    // The processing loop's own.
    /// Batches made durable.
    public let commits = Atomic<Int>(0)
    /// Messages the PUB socket refused (it never blocks).
    public let publishFailures = Atomic<Int>(0)
    /// Alerts of an earlier run published at start.
    public let republished = Atomic<Int>(0)
    /// While the start waits for a consumer before republishing: how many alerts wait (0 otherwise). Read by the
    /// `STATUS=` line, which says the wait instead of looking like a daemon that simply has no input.
    public let republishWaiting = Atomic<Int>(0)
    /// The most durable batches whose bodies were on loan to libzmq at once (`LentOutboxes`: at most its limit, 8).
    /// A consumer that stops reading keeps its queued messages' batches on loan; past the limit batches are copied.
    public let lentBatchesPeak = Atomic<Int>(0)
    /// Durable batches published by copy because `LentOutboxes.limit` batches were already on loan: more than 0
    /// means a consumer held a batch's messages unread (stalled, slow, or not reading at all).
    public let copiedBatches = Atomic<Int>(0)
    /// `contactwatch_input_disconnects_total`: input connections dropped (an over-size frame, a peer gone), as the
    /// input's monitor reports them.
    public let disconnections = Atomic<Int>(0)
    /// `contactwatch_auth_rejected_total{socket}`: handshakes refused per socket, counted by the ZAP handler (its
    /// thread) and the sockets' monitors. Read with `authRejected(_:).count`.
    private let rejected: [SocketRole: ZMQRefusalCounter] = Dictionary(uniqueKeysWithValues: SocketRole.allCases.map { ($0, ZMQRefusalCounter()) })
    /// Subscriptions held on the alert socket (all topics), and those that cover alert topics.
    public let subscriptions = Atomic<Int>(0)
    public let alertSubscriptions = Atomic<Int>(0)
    /// Consumer connections cut because the output's subscriptions would exceed `output.maxSubscriptions`.
    public let subscribersCut = Atomic<Int>(0)
    /// Per rule (indexed by `Rule.rawValue`), copied from the engine like the totals above.
    public let raisedByRule: [AtomicCount] = Rule.allCases.map { _ in AtomicCount() }
    public let resolvedByRule: [AtomicCount] = Rule.allCases.map { _ in AtomicCount() }
    /// Cases held and W (milliseconds since the epoch; `Int64.min` before any event), copied with the engine's counts.
    public let cases = Atomic<Int>(0)
    public let watermarkMillis = Atomic<Int64>(Int64.min)
    /// The latest committed `alertSequence` (its batch is durable).
    public let committedSequence = Atomic<UInt64>(0)
    /// The highest alertSequence the store records as published (`publishedThrough`, as of the newest durable batch).
    public let publishedRecorded = Atomic<UInt64>(0)
    /// Monotonic nanoseconds of the processing loop's last turn (0: not turning yet), for /healthz.
    public let lastTurnNanos = Atomic<UInt64>(0)
    /// Where commit durations and publish latencies go (the metrics' histograms), when metrics are served.
    public let timings: (any TimingObserver)?
    // The journal thread's.
    public let journalRequests = Atomic<Int>(0)
    /// Journal replies dropped because the client was not reading them (its send queue was full) or had gone.
    public let journalRepliesDropped = Atomic<Int>(0)
    /// Polls and receives of the journal socket that failed (a signal's EINTR aside).
    public let journalSocketErrors = Atomic<Int>(0)
    // The writer thread's.
    /// Journal entries deleted by retention (`state.journalRetentionDays`), and prunes that failed.
    public let journalPruned = Atomic<Int>(0)
    public let journalPruneFailures = Atomic<Int>(0)
    /// Connections libzmq could not accept on a bound socket (`AcceptFailureLog`; mostly no descriptor left).
    public let acceptFailures = Atomic<Int>(0)
    /// Set once a commit's save after a lost side file of the store waits for another process's reader (the writer
    /// thread's; read by the processing loop, which then reads no input, and by /healthz). Never cleared: the wait
    /// ends with the daemon stopping.
    public let storeWaitingForReaders = Atomic<Bool>(false)

    public init(timings: (any TimingObserver)? = nil) { self.timings = timings }

    /// The refusal counter of `socket` (`contactwatch_auth_rejected_total{socket}`).
    public func authRejected(_ socket: SocketRole) -> ZMQRefusalCounter { rejected[socket]! }

    /// Invalid messages by reason (events.md: an invalid event "is counted by reason"): the engine's count per
    /// problem (the field's path, or `frames`, `size`, `utf8`, `json`, `object`, `contactId.owner`, `occurredAt.skew`),
    /// copied when the invalid count moved. Kept but shown nowhere until session 41 (a validation tester): an operator
    /// could not tell a publisher sending `version: 2` from a clock skew without tailing the notices.
    private let invalidByReason = Mutex<[String: Int]>([:])

    /// The counts by reason for a log line, most frequent first (at most 10, then how many more reasons): nil when
    /// nothing was invalid.
    public var invalidReasons: String? {
        let all = invalidByReason.withLock { $0 }
        guard !all.isEmpty else { return nil }
        let sorted = all.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var text = sorted.prefix(10).map { "\($0.key):\($0.value)" }.joined(separator: ",")
        if sorted.count > 10 { text += ",…(\(sorted.count - 10) more reasons)" }
        return text
    }

    /// Copies the engine's counters (called by the processing loop, the engine's owner).
    func publish(engine c: EngineCounters) {
        if c.invalid != invalid.load(ordering: .relaxed) { invalidByReason.withLock { $0 = c.invalidByField } }
        // `received` first, the outcomes after it with release: a reader that loads an outcome (acquiring) and then
        // `received` sees at least the `received` stored with it (the metrics' invariant: outcomes ≤ received).
        received.store(c.received, ordering: .relaxed)
        processed.store(c.processed, ordering: .releasing)
        invalid.store(c.invalid, ordering: .releasing)
        ignored.store(c.ignored, ordering: .releasing)
        duplicates.store(c.duplicates, ordering: .relaxed)
        stale.store(c.stale, ordering: .relaxed)
        gaps.store(c.gaps, ordering: .relaxed)
        repeats.store(c.repeats, ordering: .relaxed)
        publisherRestarts.store(c.publisherRestarts, ordering: .relaxed)
        alertsRaised.store(c.raisedByRule.reduce(0, +), ordering: .relaxed)
        alertsResolved.store(c.resolvedByRule.reduce(0, +), ordering: .relaxed)
        for (k, n) in c.raisedByRule.enumerated() where k < raisedByRule.count { raisedByRule[k].value.store(n, ordering: .relaxed) }
        for (k, n) in c.resolvedByRule.enumerated() where k < resolvedByRule.count { resolvedByRule[k].value.store(n, ordering: .relaxed) }
    }

    /// Copies what the metrics' gauges show of the engine's state (called by the processing loop with `publish`).
    func publish(cases: Int, watermark: Int64) {
        self.cases.store(cases, ordering: .relaxed)
        watermarkMillis.store(watermark, ordering: .relaxed)
    }

    /// SIGHUP reloads whose configuration was read and applied (as far as it applies without a restart), and those
    /// whose file or values were refused, every old value kept (each also logged at `warning`). Counted so that the
    /// counters line and the stop summary say whether the last edits ever took (they were not counted before).
    public let reloads = Atomic<Int>(0)
    public let reloadsRefused = Atomic<Int>(0)
    /// Journal requests answered `error` because they were malformed (not `fetch AFTER [LIMIT]`), and those answered
    /// `error` because the journal could not be read (each of those also logged, rate-limited).
    public let journalRequestsRefused = Atomic<Int>(0)
    public let journalReadFailures = Atomic<Int>(0)
    /// The state store's WAL checkpoints that failed (`CheckpointWatch`, which copies the store's count once a second).
    public let checkpointFailures = Atomic<Int>(0)

    /// The counts as log metadata values (the stop summary).
    public var summary: [(String, Int)] {
        [
            ("received", received.load(ordering: .relaxed)), ("processed", processed.load(ordering: .relaxed)),
            ("invalid", invalid.load(ordering: .relaxed)), ("ignored", ignored.load(ordering: .relaxed)),
            ("duplicates", duplicates.load(ordering: .relaxed)), ("stale", stale.load(ordering: .relaxed)),
            ("gaps", gaps.load(ordering: .relaxed)), ("repeats", repeats.load(ordering: .relaxed)),
            ("publisherRestarts", publisherRestarts.load(ordering: .relaxed)),
            ("alertsRaised", alertsRaised.load(ordering: .relaxed)),
            ("alertsResolved", alertsResolved.load(ordering: .relaxed)),
            ("disconnections", disconnections.load(ordering: .relaxed)), ("commits", commits.load(ordering: .relaxed)),
            ("authRejectedInput", authRejected(.input).count), ("authRejectedOutput", authRejected(.output).count),
            ("authRejectedJournal", authRejected(.journal).count),
            ("publishFailures", publishFailures.load(ordering: .relaxed)), ("republished", republished.load(ordering: .relaxed)),
            ("lentBatchesPeak", lentBatchesPeak.load(ordering: .relaxed)),
            ("copiedBatches", copiedBatches.load(ordering: .relaxed)),
            ("subscribersCut", subscribersCut.load(ordering: .relaxed)),
            ("journalRequests", journalRequests.load(ordering: .relaxed)),
            ("journalRepliesDropped", journalRepliesDropped.load(ordering: .relaxed)),
            ("journalRequestsRefused", journalRequestsRefused.load(ordering: .relaxed)),
            ("journalReadFailures", journalReadFailures.load(ordering: .relaxed)),
            ("journalSocketErrors", journalSocketErrors.load(ordering: .relaxed)),
            ("journalPruned", journalPruned.load(ordering: .relaxed)),
            ("journalPruneFailures", journalPruneFailures.load(ordering: .relaxed)),
            ("acceptFailures", acceptFailures.load(ordering: .relaxed)),
            ("reloads", reloads.load(ordering: .relaxed)), ("reloadsRefused", reloadsRefused.load(ordering: .relaxed)),
            ("checkpointFailures", checkpointFailures.load(ordering: .relaxed)),
        ]
    }
}

/// An atomic count that can sit in an array (`Atomic` itself cannot be copied into one).
public final class AtomicCount: Sendable {
    public let value = Atomic<Int>(0)
    public init() {}
}

/// Receives the durations the daemon measures, off the per-event path: one per commit (the writer thread), one per
/// published batch (the processing thread).
public protocol TimingObserver: Sendable {
    /// One state-store commit took `duration`.
    func recordCommit(_ duration: Duration)
    /// A published batch's first (oldest) event was read `duration` before its messages were published.
    func recordPublishLatency(_ duration: Duration)
}
