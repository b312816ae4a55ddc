import ContactWatchEngine
import CoreMetrics
import Prometheus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's metrics (cli.md, *Metrics*): swift-metrics handles on a swift-prometheus registry, which the HTTP
/// endpoint renders.
///
/// Nothing here runs per event. The processing loop keeps its counts as it always did (the engine's plain integers,
/// copied into `RuntimeCounters`' atomics once per drain of the input); a scrape (`refresh`, on the HTTP server's
/// thread) reads those atomics and adds what changed since the previous scrape to the Prometheus counters, and sets
/// the gauges. The two histograms are fed one value per commit (writer thread) and one per published batch
/// (processing thread), through `TimingObserver`.
public final class DaemonMetrics: TimingObserver, Sendable {
    public let registry: PrometheusCollectorRegistry
    private let received: CoreMetrics.Counter
    private let processed: CoreMetrics.Counter
    private let invalid: CoreMetrics.Counter
    private let ignored: CoreMetrics.Counter
    private let duplicate: CoreMetrics.Counter
    private let stale: CoreMetrics.Counter
    private let gaps: CoreMetrics.Counter
    private let disconnects: CoreMetrics.Counter
    private let publishFailures: CoreMetrics.Counter
    /// Indexed by `Rule.rawValue`.
    private let raised: [CoreMetrics.Counter]
    private let resolved: [CoreMetrics.Counter]
    /// Indexed like `SocketRole.allCases`.
    private let authRejected: [CoreMetrics.Counter]
    private let commitDuration: CoreMetrics.Timer
    private let publishLatency: CoreMetrics.Timer
    private let cases: CoreMetrics.Gauge
    private let watermark: CoreMetrics.Gauge
    private let alertSequence: CoreMetrics.Gauge
    private let subscribers: CoreMetrics.Gauge
    /// The counts the previous scrape saw (scrapes may overlap: one at a time).
    private let seen = Mutex<[String: Int]>([:])

    /// `contactwatch_commit_duration_seconds` buckets: one batch in one SQLite transaction with `synchronous = FULL`
    /// takes about a millisecond to tens of milliseconds on an SSD (`Benchmarks/README.md`, "The first `make bench`
    /// runs, against issue 11's acceptance": median 8.3 ms, p99 21 ms for batches of 1,000 events); seconds mean
    /// trouble.
    public static let commitBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    /// `contactwatch_event_publish_latency_seconds` buckets: an event waits for the commit in progress (group commit)
    /// or, without group commit, for its batch to fill or for `state.commitIntervalMillis` (5 ms by default), then for
    /// its own commit: milliseconds; seconds when the disk stalls.
    public static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Each metric's `# HELP` text: its meaning in cli.md's table (*Metrics*).
    public static let help: [String: String] = [
        "contactwatch_events_received_total": "messages read from the input",
        "contactwatch_events_processed_total": "valid events applied",
        "contactwatch_events_invalid_total": "messages that got an invalid-event notice",
        "contactwatch_events_ignored_total": "valid messages of unlisted types",
        "contactwatch_events_duplicate_total": "duplicate contact versions",
        "contactwatch_events_stale_total": "stale contact versions",
        "contactwatch_alerts_raised_total": "alerts raised, by rule as in the topic",
        "contactwatch_alerts_resolved_total": "alerts resolved, by rule as in the topic",
        "contactwatch_stream_gaps_total": "stream.gap notices",
        "contactwatch_input_disconnects_total": "input connections dropped (an over-size frame, a peer gone)",
        "contactwatch_auth_rejected_total": "handshakes refused, by socket (input, output or journal)",
        "contactwatch_publish_failures_total":
            "sends on the output that returned an error (ZeroMQ drops for slow consumers are not seen by the sender)",
        "contactwatch_commit_duration_seconds": "one state-store commit",
        "contactwatch_event_publish_latency_seconds": "from reading an event to publishing what it produced",
        "contactwatch_cases": "cases held",
        "contactwatch_watermark_seconds": "W as Unix seconds",
        "contactwatch_alert_sequence": "the latest committed alertSequence",
        "contactwatch_subscribers": "subscriptions on the output (subscribe minus unsubscribe, as the XPUB sees them)",
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var prometheus = PrometheusMetricsFactory(registry: registry)
        func durations(_ seconds: [Double]) -> [Duration] { seconds.map { .nanoseconds(Int64(($0 * 1e9).rounded())) } }
        prometheus.durationHistogramBuckets = [
            "contactwatch_commit_duration_seconds": durations(Self.commitBuckets),
            "contactwatch_event_publish_latency_seconds": durations(Self.latencyBuckets),
        ]
        let factory = DescribedPrometheusFactory(prometheus, help: Self.help)
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        }
        func gauge(_ name: String) -> CoreMetrics.Gauge { CoreMetrics.Gauge(label: name, factory: factory) }
        received = counter("contactwatch_events_received_total")
        processed = counter("contactwatch_events_processed_total")
        invalid = counter("contactwatch_events_invalid_total")
        ignored = counter("contactwatch_events_ignored_total")
        duplicate = counter("contactwatch_events_duplicate_total")
        stale = counter("contactwatch_events_stale_total")
        gaps = counter("contactwatch_stream_gaps_total")
        disconnects = counter("contactwatch_input_disconnects_total")
        publishFailures = counter("contactwatch_publish_failures_total")
        raised = Rule.allCases.map { counter("contactwatch_alerts_raised_total", [("rule", $0.name)]) }
        resolved = Rule.allCases.map { counter("contactwatch_alerts_resolved_total", [("rule", $0.name)]) }
        authRejected = SocketRole.allCases.map { counter("contactwatch_auth_rejected_total", [("socket", $0.rawValue)]) }
        commitDuration = CoreMetrics.Timer(label: "contactwatch_commit_duration_seconds", factory: factory)
        publishLatency = CoreMetrics.Timer(label: "contactwatch_event_publish_latency_seconds", factory: factory)
        cases = gauge("contactwatch_cases")
        watermark = gauge("contactwatch_watermark_seconds")
        alertSequence = gauge("contactwatch_alert_sequence")
        subscribers = gauge("contactwatch_subscribers")
    }

    public func recordCommit(_ duration: Duration) { commitDuration.recordNanoseconds(duration.wholeNanoseconds) }

    public func recordPublishLatency(_ duration: Duration) { publishLatency.recordNanoseconds(duration.wholeNanoseconds) }

    /// Brings the counters and gauges up to `counters` (called for each scrape, off the processing thread, with
    /// `seen` held: `last` is what each counter was brought up to).
    private func refresh(from c: RuntimeCounters, _ last: inout [String: Int]) {
        func add(_ counter: CoreMetrics.Counter, _ key: String, _ value: Int) {
            let delta = value - (last[key] ?? 0)
            if delta > 0 { counter.increment(by: Int64(delta)) }
            last[key] = max(value, last[key] ?? 0)
        }
        // `received` is read last: the processing loop stores it first (`RuntimeCounters.publish`), so a scrape
        // never shows more events processed, invalid and ignored than received (read first, it showed 1–4 more
        // under load: a fault tester, session 33).
        let outcomes = (processed: c.processed.load(ordering: .acquiring), invalid: c.invalid.load(ordering: .acquiring),
                        ignored: c.ignored.load(ordering: .acquiring))
        add(received, "received", c.received.load(ordering: .relaxed))
        add(processed, "processed", outcomes.processed)
        add(invalid, "invalid", outcomes.invalid)
        add(ignored, "ignored", outcomes.ignored)
        add(duplicate, "duplicate", c.duplicates.load(ordering: .relaxed))
        add(stale, "stale", c.stale.load(ordering: .relaxed))
        add(gaps, "gaps", c.gaps.load(ordering: .relaxed))
        add(disconnects, "disconnects", c.disconnections.load(ordering: .relaxed))
        add(publishFailures, "publishFailures", c.publishFailures.load(ordering: .relaxed))
        for k in 0..<min(raised.count, c.raisedByRule.count) {
            add(raised[k], "raised.\(k)", c.raisedByRule[k].value.load(ordering: .relaxed))
        }
        for k in 0..<min(resolved.count, c.resolvedByRule.count) {
            add(resolved[k], "resolved.\(k)", c.resolvedByRule[k].value.load(ordering: .relaxed))
        }
        for (k, role) in SocketRole.allCases.enumerated() {
            add(authRejected[k], "auth.\(role.rawValue)", c.authRejected(role).count)
        }
        cases.record(Double(c.cases.load(ordering: .relaxed)))
        let w = c.watermarkMillis.load(ordering: .relaxed)
        // No event yet (a new store): NaN, "no value", not 0 — 0 read as a lag of 56 years on a dashboard
        // (`time() - contactwatch_watermark_seconds`) until the first event (a bug hunter, session 46; a restart has
        // the loaded W from the start).
        watermark.record(w == Int64.min ? .nan : Double(w) / 1000)
        alertSequence.record(Double(c.committedSequence.load(ordering: .relaxed)))
        subscribers.record(Double(c.subscriptions.load(ordering: .relaxed)))
    }

    /// The Prometheus text exposition after a refresh from `counters`. The refresh and the text are made under one
    /// lock: two scrapes at once (an HA pair of Prometheus servers, a HEAD and a GET) interleaved, and one printed the
    /// `received` of before the other's refresh and the `processed` of after it (a reviewer, session 34).
    public func exposition(_ counters: RuntimeCounters) -> [UInt8] {
        seen.withLock { last in
            refresh(from: counters, &last)
            return registry.emitToBuffer()
        }
    }

    /// The body of /healthz: "ok", or why not; alive but not reading input while the store's save waits for another
    /// process's reader (the status stays 200: the loop turns, as the contract defines alive), it says so.
    public static func healthText(_ counters: RuntimeCounters, alive: Bool) -> String {
        guard alive else { return "the processing loop has not turned for 10 s\n" }
        if counters.storeWaitingForReaders.load(ordering: .relaxed) {
            return "ok, but no input is read: a side file of the state store was deleted and the save waits for another "
                + "process's reader of the store (see the log)\n"
        }
        return "ok\n"
    }

    /// Whether the processing loop turned within `limit` (10 s for /healthz).
    public static func isAlive(_ counters: RuntimeCounters, within limit: Duration = .seconds(10),
                               now: UInt64 = MonotonicClock.nanos()) -> Bool {
        let last = counters.lastTurnNanos.load(ordering: .relaxed)
        guard last > 0 else { return false }
        return now < last || now - last <= UInt64(limit.wholeNanoseconds)
    }
}

/// swift-prometheus's swift-metrics factory, with a `# HELP` text for the metrics named in `help`.
/// `PrometheusMetricsFactory` registers every handle with an empty help text, and the registry stops the process when
/// one name is registered with two different texts, so a text cannot be added beside the handles: every handle of a
/// named metric, of whatever kind, is made here through the registry's descriptor API with its text (as swift-prometheus
/// makes them: a floating-point counter is a counter, a meter a gauge, an aggregating recorder a value histogram), so
/// that no path registers one of those names without it; any other label, and every `destroy`, goes to the wrapped
/// factory unchanged.
struct DescribedPrometheusFactory: CoreMetrics.MetricsFactory {
    let prometheus: PrometheusMetricsFactory
    let help: [String: String]

    init(_ prometheus: PrometheusMetricsFactory, help: [String: String]) {
        self.prometheus = prometheus
        self.help = help
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        guard let text = help[label] else { return nil }
        // The full name as the metric name and no unit: `name` joins only the non-empty parts.
        return MetricNameDescriptor(metricName: label, unitName: "", helpText: text)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let d = descriptor(label) else { return prometheus.makeCounter(label: label, dimensions: dimensions) }
        return prometheus.registry.makeCounter(descriptor: d, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let d = descriptor(label) else { return prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return prometheus.registry.makeCounter(descriptor: d, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let d = descriptor(label) else {
            return prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        guard aggregate else { return prometheus.registry.makeGauge(descriptor: d, labels: dimensions) }
        let buckets = prometheus.valueHistogramBuckets[label] ?? prometheus.defaultValueHistogramBuckets
        return prometheus.registry.makeValueHistogram(descriptor: d, labels: dimensions, buckets: buckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let d = descriptor(label) else { return prometheus.makeMeter(label: label, dimensions: dimensions) }
        return prometheus.registry.makeGauge(descriptor: d, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let d = descriptor(label) else { return prometheus.makeTimer(label: label, dimensions: dimensions) }
        let buckets = prometheus.durationHistogramBuckets[label] ?? prometheus.defaultDurationHistogramBuckets
        return prometheus.registry.makeDurationHistogram(descriptor: d, labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        prometheus.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC), shared by the loop and the health check.
public enum MonotonicClock {
    public static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

extension Duration {
    /// Whole nanoseconds (saturating).
    var wholeNanoseconds: Int64 {
        let (s, a) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : ns &+ a / 1_000_000_000
    }
}
