import CMalloc
import ContactWatchCommon
import ContactWatchEngine
import ContactWatchStore
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The processing pipeline: events in → engine → batched commit (state and alert journal in one transaction, on the
/// writer thread) → publish after commit. `run` owns the processing thread's sockets (`PipelineSockets`), starts the
/// writer thread (`CommitWriter`) and the journal thread (`JournalServer`), then runs `PipelineLoop`.
final class Pipeline: @unchecked Sendable {
    // Set before the thread starts, read-only afterwards.
    let config: DaemonConfiguration
    let logger: Logger
    let context: ZMQContext
    let counters: RuntimeCounters
    let setup: SocketSetup
    private let engine: Engine
    private let store: StateStore
    private let publishedThrough: UInt64
    private let unpublished: [JournalEntry]
    private let stopRequested = Atomic<Bool>(false)

    init(config: DaemonConfiguration, logger: Logger, context: ZMQContext, engine: Engine, store: StateStore,
         publishedThrough: UInt64, unpublished: [JournalEntry], counters: RuntimeCounters = RuntimeCounters(),
         security: DaemonSecurity? = nil) {
        self.config = config
        self.logger = logger
        self.context = context
        self.engine = engine
        self.store = store
        self.publishedThrough = publishedThrough
        self.unpublished = unpublished
        self.counters = counters
        setup = SocketSetup(config: config, security: security ?? DaemonSecurity(plaintextWith: counters, logger: logger))
    }

    /// Asks the loop to stop after the message in hand; callable from any thread. From here a wait for another
    /// process's lock on the store (the stop's commit, the record of what was published, a commit already waiting)
    /// ends within `stopLockWaitSeconds`, not at the 5 s busy timeout, which with the stop's own work made a stop
    /// take 4.8–5.1 s (a fault tester, session 28; cli.md: within 5 seconds).
    func requestStop() {
        store.endLockWaits(within: Self.stopLockWaitSeconds)
        stopRequested.store(true, ordering: .releasing)
        journalServer.withLock { $0 }?.requestStop()
    }

    /// The journal thread while `run` runs, for `requestStop`.
    private let journalServer = Mutex<JournalServer?>(nil)

    /// How long the stop waits for a lock another process holds on the store (the rest of the 5 s goes to closing).
    static let stopLockWaitSeconds = 3.5

    var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    static func wallClockMillis() -> Millis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Millis(ts.tv_sec) * 1000 + Millis(ts.tv_nsec / 1_000_000)
    }

    /// Runs the whole life of the sockets on the calling thread. `ready` is called once every socket is bound or
    /// connected and subscribed, the store has been written to, and alerts left unpublished by a crash have been
    /// published (after a consumer subscribed to alert topics, or the republish grace).
    func run(ready: @escaping () -> Void) throws(DaemonError) {
        let settings = RuleSettingsRecord.text(config.engine)
        let settingsBefore: String?
        do { settingsBefore = try store.checkWritable(settings: settings) } catch {
            throw DaemonError.store(error, while: "the state store cannot be written")
        }
        if let settingsBefore, settingsBefore != settings {
            // The notice first, on standard error, then the record: the other way round, a crash in between (a few
            // milliseconds: the log is written by its own thread) lost the notice for good (a crash-consistency
            // tester, session 36). Now a crash in between says it again at the next start.
            var said = true
            if let line = RuleSettingsRecord.changeLine(before: settingsBefore, now: config.engine) {
                logger.warning("\(line)")
                // Not recorded when the line could not be written within 2 s (standard error a stalled pipe): the
                // next start says it again (a reviewer, session 36).
                said = LogOutput.flush(timeout: 2)
            }
            if said {
                do { try store.recordRuleSettings(settings) } catch {
                    throw DaemonError.store(error, while: "the state store cannot be written")
                }
            }
        }
        let sockets = try PipelineSockets(config: config, context: context, setup: setup, logger: logger)
        defer { sockets.close() }
        var journal: JournalServer? = nil
        if let endpoint = config.journal {
            journal = try JournalServer.start(endpoint: endpoint, storePath: store.path, context: context, setup: setup,
                                              limits: config.journalLimits, counters: counters, logger: logger)
        }
        defer { journal?.stop() }
        journalServer.withLock { $0 = journal }
        defer { journalServer.withLock { $0 = nil } }
        // A stop asked while the journal started.
        if isStopRequested { journal?.requestStop() }
        // A port 0 or * is chosen by the system: said, so that clients can be pointed at it (and anything else that
        // binds differently from its text, e.g. tcp://*:7402 as tcp://0.0.0.0:7402).
        for (socket, bound, configured) in [("input", sockets.boundInput, config.inputBind ? config.inputs.first : nil),
                                            ("output", sockets.boundOutput, config.output),
                                            ("journal", journal?.boundEndpoint, config.journal)] {
            if let bound = bound.map(ZMQSocket.absolute), let configured, bound != configured {
                logger.info("bound", metadata: ["socket": "\(socket)", "endpoint": "\(bound)", "configured": "\(configured)"])
            }
        }
        let writer = try CommitWriter(store: store, context: context, signalEndpoint: sockets.durableEndpoint,
                                      timings: counters.timings, logger: logger, counters: counters)
        defer { writer.close() }
        let limits = CommitPipeline.Limits(maxEvents: config.commitMaxEvents,
                                           interval: .milliseconds(config.commitIntervalMillis),
                                           republishGrace: .milliseconds(config.republishGraceMillis),
                                           groupCommit: config.groupCommit)
        let machine = CommitPipeline(limits: limits, committedSequence: engine.state.alertSequence,
                                     publishedThrough: publishedThrough, unpublished: unpublished,
                                     now: ContinuousClock.now)
        var loop = PipelineLoop(engine: engine, store: store, sockets: sockets, writer: writer, machine: machine,
                                config: config, logger: logger, counters: counters, ready: ready)
        let server = journal, security = setup.security
        loop.failure = { server?.failure ?? security.failure }
        try loop.run(until: { [self] in isStopRequested })
    }
}

/// The processing thread's loop: poll → dispatch. Every decision is `CommitPipeline`'s; this only performs the
/// effects it asks for (read input into the engine, hand a batch to the writer, publish what is durable, republish
/// an earlier run's alerts) and the housekeeping (systemd watchdog, journal retention).
struct PipelineLoop {
    let engine: Engine
    let store: StateStore
    let sockets: PipelineSockets
    let writer: CommitWriter
    var machine: CommitPipeline
    let config: DaemonConfiguration
    let logger: Logger
    let counters: RuntimeCounters
    var ready: (() -> Void)?
    /// Another thread's failure that must stop the daemon (the journal socket unusable), asked every turn: the loop
    /// then stops as on SIGTERM (commit and publish what is in hand) and throws it.
    var failure: () -> DaemonError? = { nil }
    var tracker: SubscriptionTracker
    var housekeeping: Housekeeping
    let clock = ContinuousClock()
    let drainLimit: Int
    let messageLog: MessageLog?
    /// Published outboxes whose bodies libzmq may still be reading, oldest first, a bounded number
    /// (`publish`, `reclaimLent`).
    var lent = LentOutboxes()
    /// The engine's log events (a publisher restarting its numbering) reach the log at most 10 at once, then one every
    /// 6 s with how many were not logged: a feed that numbers every message 1 wrote a line per event.
    let engineLog = LogLimiter()
    /// When the lines the rate limits held back were last looked at (`sayHeldBackLines`): once a second.
    var heldBackCheck = Throttle(every: .seconds(1))
    /// `EngineCounters.tooFarAhead` when the last warning about it was logged (`reportTooFarAhead`).
    var tooFarAheadLogged = 0
    /// When the pipeline was first seen idle since the last batch (`releaseIdlePages`).
    var idleSince: ContinuousClock.Instant? = nil

    init(engine: Engine, store: StateStore, sockets: PipelineSockets, writer: CommitWriter, machine: CommitPipeline,
         config: DaemonConfiguration, logger: Logger, counters: RuntimeCounters, ready: @escaping () -> Void) {
        self.engine = engine
        self.store = store
        self.sockets = sockets
        self.writer = writer
        self.machine = machine
        self.config = config
        self.logger = logger
        self.counters = counters
        self.ready = ready
        tracker = SubscriptionTracker(logger: logger, counters: counters, maxSubscriptions: config.maxSubscriptions,
                                      outputEndpoint: sockets.boundOutput)
        housekeeping = Housekeeping(config: config, now: ContinuousClock.now)
        drainLimit = max(1, min(config.commitMaxEvents, 4096))
        // Only at debug (or trace) level, checked once per published batch (the level can change on SIGHUP).
        messageLog = MessageLog(logger: logger)
    }

    mutating func run(until stop: () -> Bool) throws(DaemonError) {
        // Alive from here (/healthz): stored before READY=1, so that a check right after READY cannot find the loop
        // not yet turned (a 503 that MetricsTests saw under load).
        counters.lastTurnNanos.store(MonotonicClock.nanos(), ordering: .relaxed)
        // The gauges from the loaded state, before READY=1: after a restart a scrape showed 0 cases, a watermark of 0
        // (a lag of 56 years on a dashboard) and alert sequence 0 until the first event (the soak test, session 25).
        counters.publish(cases: engine.state.cases.count, watermark: engine.state.watermark)
        counters.committedSequence.store(machine.committedSequence, ordering: .relaxed)
        counters.publishedRecorded.store(machine.durablePublished, ordering: .relaxed)
        housekeeping.socketFiles.start(at: clock.now)
        if machine.phase == .running { becomeReady() } else { announceRepublishWait() }
        let heartbeat = SystemdHeartbeat.start(counters: counters)
        defer { heartbeat?.stop() }
        var failed: DaemonError? = nil
        // However the loop ends (a stop, a failure, a throw), what the rate limits still hold back is said.
        defer { sayHeldBackLines(stopping: true) }
        while !stop() {
            counters.lastTurnNanos.store(MonotonicClock.nanos(), ordering: .relaxed)  // /healthz: one store per turn
            machine.writerWaiting(writer.isWaitingForReaders)
            // Not while a commit waits for another process's reader: that wait ends only with the stop, which would lose
            // what a newly subscribed publisher sent; unsubscribed, one that waits for a subscription keeps waiting.
            let readiness = try sockets.poll(acceptingInput: machine.acceptsInput,
                                             subscribingNewInputs: !machine.writerIsWaiting,
                                             timeoutMilliseconds: machine.pollTimeout(at: clock.now))
            try dispatch(readiness)
            failed = failure()
            if let failed {
                Systemd.notifyFailureStop(failed)
                break
            }
        }
        try finish()
        if let failed { throw failed }
    }

    private mutating func dispatch(_ r: PipelineReadiness) throws(DaemonError) {
        if r.input { try drainInput() }
        if !machine.acceptsInput { housekeeping.inputNotPolled(at: clock.now) }
        // Every turn, not only after a drain: a count the rate limit held back is said once it allows, input or not.
        if engine.counters.tooFarAhead != tooFarAheadLogged { reportTooFarAhead() }
        if r.durable { try publishDurable() }
        if r.output {
            if tracker.read(sockets.output) { try perform(machine.alertSubscriberJoined()) }
        }
        tracker.sweepIfDue(at: clock.now)
        if tracker.takeMemoryFreed() { housekeeping.memoryToReturn() }
        if r.monitor { sockets.supervisor.readEvents(input: sockets.input, now: clock.now) }
        if r.outputMonitor { sockets.readOutputMonitor() }
        sockets.supervisor.tick(input: sockets.input, now: clock.now, received: engine.counters.received)
        try perform(machine.tick(at: clock.now))
        releaseIdlePages()
        housekeeping.run(at: clock.now, writer: writer, store: store, logger: logger, counters: counters)
        if heldBackCheck.allows(at: clock.now) { sayHeldBackLines(stopping: false) }
    }

    /// Every rate-limited line this thread can reach, held back and not yet said, once its flood is over
    /// (`LogLimiter.sayHeldBack`): the engine's, the input's dropped connections, the subscription lines and cuts,
    /// the refusals and failed accepts (the journal thread says its own).
    /// With `stopping` (as the loop ends), every count held back, flood over or not: no later turn would say it.
    private func sayHeldBackLines(stopping: Bool) {
        // "too-far-ahead" says its own count (`reportTooFarAhead`); its bucket counts the turns that asked.
        for (key, count) in engineLog.takeHeldBack(stopping: stopping) where key != Self.tooFarAheadKey {
            let warning = key == Self.engineWarningKey || key == Self.gapKey
            let what = key == Self.gapKey ? "warnings (stream gaps: the count is contactwatch_stream_gaps_total)"
                : warning ? "warnings (publisherIds tracked, distinct pduCodes)" : "lines (publishers restarting their sequence)"
            let level: Logger.Level = warning ? .warning : .info
            logger.log(level: level, "\(count) more engine \(what) not logged at \(level) (rate limit); \(LogLimiter.ending(stopping))",
                       metadata: ["notLogged": "\(count)"])
        }
        tracker.sayHeldBack(stopping: stopping)
        sockets.supervisor.sayHeldBack(stopping: stopping)
        sockets.supervisor.security.sayHeldBack(stopping: stopping)
    }

    /// How long the pipeline stays idle (nothing pending, nothing with the writer) before the pages a burst wrote are
    /// given back (`releaseIdlePages`).
    static let idleRelease = Duration.seconds(2)
    /// How long an outbox on loan holds the release back.
    static let idleReleaseDespiteLoans = Duration.seconds(30)

    /// Once the pipeline has been idle for `idleRelease` after writing batches: the outboxes kept for reuse give back
    /// the pages their batches wrote, the writer drops its spare batch, and the heap is trimmed. One comparison a turn
    /// while no large batch was written since; never on the event path.
    private mutating func releaseIdlePages() {
        guard machine.pagesWritten else { return }
        guard machine.isIdle else { idleSince = nil; return }
        let now = clock.now
        guard let since = idleSince else { idleSince = now; return }
        guard now - since >= Self.idleRelease else { return }
        reclaimLent()
        // An outbox still on loan (a consumer that does not read holds it) is waited for a while, then the others give
        // theirs back without it: one such consumer turned the whole release off (a reviewer, session 38).
        guard lent.count == 0 || now - since >= Self.idleReleaseDespiteLoans else { return }
        idleSince = nil
        machine.releasePages()
        writer.dropSpare()
        housekeeping.memoryToReturn()
    }

    static let engineWarningKey = "engine-warning"
    static let gapKey = "stream-gap"
    static let tooFarAheadKey = "too-far-ahead"

    private mutating func perform(_ action: CommitPipeline.Action) throws(DaemonError) {
        switch action {
        case .none: break
        case .submit: submit(changes: engine.takeChanges())
        case .republish: try republish()
        }
    }

    /// Reads up to `drainLimit` messages into the engine, handing batches to the writer as they become due.
    ///
    /// The per-message path is `receiveInto` (a static function: the receive closure captures only the engine, the
    /// outbox and the wall-clock sample, not `self`), `CommitPipeline.eventProcessed` and, rarely, a submit: no copy
    /// of the state machine, no allocation, and the wall clock read once per `WallClockSample.eventsPerRead` messages
    /// (`Benchmarks/README.md`, "The daemon outside the engine, fifth pass (eighth session)": the wall clock once
    /// per 16 messages).
    private mutating func drainInput() throws(DaemonError) {
        let engine = self.engine
        let input = sockets.input
        var wallClock = WallClockSample()  // a fresh reading for the first message of every drain
        var n = 0
        var framesOver = false
        var bytes = 0
        while n < drainLimit, machine.acceptsInput {
            let got: Bool
            do {
                got = try Self.receiveInto(&machine.outbox, from: input, engine: engine, wallClock: &wallClock,
                                           framesOver: &framesOver, bytes: &bytes)
            } catch {
                if ZMQError.isInterrupted(error) { break }
                throw DaemonError.internal("receive failed: \(error)")
            }
            guard got else { break }
            n += 1
            // A save after a lost side file started by the writer meanwhile (its commit of an earlier batch, its idle
            // check): read no more from here, within 256 events rather than the rest of the drain (one atomic load).
            if n & 0xFF == 0 { machine.writerWaiting(writer.isWaitingForReaders) }
            let action = machine.eventProcessed(at: ContinuousClock.now)
            if action != .none {
                try perform(action)
                wallClock = WallClockSample()  // a submit encodes a batch (milliseconds): read the clock afresh
            }
        }
        if framesOver { housekeeping.memoryToReturn() }
        housekeeping.inputRead(bytes: bytes, at: clock.now)
        counters.publish(engine: engine.counters)
        counters.publish(cases: engine.state.cases.count, watermark: engine.state.watermark)
        for e in engine.takeLogEvents() {
            // Rate-limited: a publisher that numbers every message 1 restarts its sequence on every event.
            // Warnings have a budget of their own, so that a restart storm cannot hold one back.
            // Gaps have a budget of their own too: a publisher numbering topics the daemon does not take gaps on
            // every message.
            let key = e.gap != nil ? Self.gapKey : e.warning ? Self.engineWarningKey : "engine"
            guard let notLogged = engineLog.admit(key) else { continue }
            var metadata: Logger.Metadata = [:]
            if let crn = e.crn { metadata["crn"] = "\(crn)" }
            if let id = e.contactId { metadata["contactId"] = "\(id)" }
            if let n = e.publishers { metadata["publishers"] = "\(n)" }
            if let n = e.pduCodes { metadata["pduCodes"] = "\(n)" }
            if let g = e.gap {
                metadata["publisherId"] = "\(g.publisher)"
                metadata["expected"] = "\(g.expected)"
                metadata["received"] = "\(g.received)"
            }
            if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
            if e.warning { logger.warning("\(e.text)", metadata: metadata) } else { logger.info("\(e.text)", metadata: metadata) }
        }
    }

    /// Events refused as too far ahead of this host's clock (events.md: `input.maxFutureSkewSeconds`) are counted as
    /// invalid like any other, but a host clock that is behind refuses every event of every publisher — lost for good,
    /// since a publisher does not resend what was refused — and nothing above `info` said so (a clock fault tester,
    /// session 24, with the clock three days and 56 years behind). A `warning` says how many and the latest `occurredAt`
    /// against the clock, rate-limited (10 at once, then one every 6 s with the count since the previous line; asked
    /// every turn of the loop, so a count held back is said within 6 s even when no more input comes).
    private mutating func reportTooFarAhead() {
        guard engineLog.admit(Self.tooFarAheadKey) != nil else { return }
        let c = engine.counters
        let n = c.tooFarAhead - tooFarAheadLogged
        tooFarAheadLogged = c.tooFarAhead
        let skew = Int64(config.engine.maxFutureSkewSeconds)
        logger.warning("\(n) event\(n == 1 ? "" : "s") refused: occurredAt more than input.maxFutureSkewSeconds (\(skew) s) ahead of this host's clock. If every publisher's events are refused, this host's clock is behind: check it (timedatectl); otherwise the publisher's clock is ahead",
                       metadata: ["occurredAt": "\(RFC3339.format(c.lastTooFarAhead.occurredAt))",
                                  "clock": "\(RFC3339.format(c.lastTooFarAhead.clock))", "refusedTotal": "\(c.tooFarAhead)"])
    }

    /// Reads one message, if one is waiting, into the engine (frames read in scope, nothing copied); false when none.
    /// (`receiveWaiting`: the first and last frame straight to the engine, no generic result or nested closures.) The
    /// wall clock is taken from `wallClock` only once a message is in hand.
    /// `framesOver` is set when the message had more than two frames (refused by the engine as invalid; its frames,
    /// each up to `input.maxMessageBytes`, may have been many: see `Housekeeping.memoryToReturn`).
    /// `bytes` grows by the body's size (see `Housekeeping.inputRead`).
    private static func receiveInto(_ outbox: inout Outbox, from input: ZMQSocket, engine: Engine,
                                    wallClock: inout WallClockSample, framesOver: inout Bool, bytes: inout Int) throws -> Bool {
        try input.receiveWaiting { count, topic, body in
            if count > 2 { framesOver = true }
            bytes &+= body.count
            engine.process(frameCount: count, topic: topic, body: body, now: wallClock.now(), into: &outbox)
        }
    }

    /// Hands the events processed since the last batch to the writer.
    private mutating func submit(changes: ChangeSet) {
        reclaimLent()  // an outbox libzmq has finished with can hold the next batch
        let batch = machine.submit(alertSequence: engine.state.alertSequence)
        // The journal rows are read by the writer from the batch's outbox (shared, not copied; see CommitWriter).
        var spare = writer.takeSpare()
        writer.submit(StateStore.prepare(changes: changes, state: engine.state, journalFrom: batch.outbox,
                                         publishedThrough: batch.publishedThrough, now: Pipeline.wallClockMillis(),
                                         reusing: &spare))
    }

    /// Publishes every batch the writer has made durable, in order; then reports a write failure, if any. A PUB
    /// socket never blocks.
    private mutating func publishDurable() throws(DaemonError) {
        sockets.drainDurable()
        let done = writer.completedCount
        while machine.durableBatches < done, var outbox = machine.batchDurable() {
            if lent.canLend {
                lent.append(publish(outbox))
                if lent.count > counters.lentBatchesPeak.load(ordering: .relaxed) {
                    counters.lentBatchesPeak.store(lent.count, ordering: .relaxed)
                }
            } else {
                // A consumer holds older batches' bodies (it stopped reading): copy, so it pins no more outboxes.
                publishCopying(outbox)
                machine.recycle(&outbox)
                counters.copiedBatches.add(1, ordering: .relaxed)
            }
            if let timings = counters.timings, let started = machine.lastDurableStarted {
                timings.recordPublishLatency(clock.now - started)
            }
        }
        reclaimLent()
        counters.commits.store(machine.durableBatches, ordering: .relaxed)
        counters.committedSequence.store(machine.committedSequence, ordering: .relaxed)
        counters.publishedRecorded.store(machine.durablePublished, ordering: .relaxed)
        if let error = writer.error { throw DaemonError.store(error, while: "cannot write the state store") }
    }

    /// Publishes a durable batch's messages: each topic copied, each body lent to libzmq in place (no copy, no
    /// allocation of its size; `Benchmarks/README.md`, "The daemon outside the engine, fifth pass (eighth
    /// session)": publishing without copies). The outbox stays with the returned
    /// `LentOutbox` until libzmq has released every body.
    private func publish(_ outbox: consuming Outbox) -> LentOutbox {
        let lent = LentOutbox(outbox)
        if let lentOutbox = lent.box.outbox { send(lentOutbox, lending: lent.loan) }
        return lent
    }

    /// Publishes a durable batch's messages with each body copied by libzmq (`zmq_send`): when `lent` is full.
    private func publishCopying(_ outbox: Outbox) {
        send(outbox, lending: nil)
    }

    /// Sends every message of `outbox`, each body lent against `loan` or, without one, copied; counts what a full or
    /// failing socket refused.
    private func send(_ outbox: Outbox, lending loan: ZMQLoan?) {
        let output = sockets.output
        let messageLog = logger.logLevel <= .debug ? self.messageLog : nil
        outbox.forEach { entry, topic, body in
            let sent: Bool?
            if let loan { sent = try? output.send(topic, lending: body, from: loan, dontWait: true) } else {
                sent = try? output.send(topic, body, dontWait: true)
            }
            if sent != true { counters.publishFailures.add(1, ordering: .relaxed) }
            messageLog?.published(entry, topic: topic, body: body)
        }
    }

    /// Takes back, oldest first, the published outboxes libzmq no longer reads, for the state machine to reuse.
    private mutating func reclaimLent() {
        while var outbox = lent.takeReturned() { machine.recycle(&outbox) }
    }

    /// Publishes the alerts an earlier run committed but did not publish, records them published, then reports
    /// ready: only now is the input read, so no new alert overtakes them.
    private mutating func republish() throws(DaemonError) {
        let output = sockets.output
        for entry in machine.unpublished {
            entry.topic.withUnsafeBytes { t in
                entry.body.withUnsafeBytes { b in
                    if (try? output.send(t, b, dontWait: true)) != true {
                        counters.publishFailures.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        let count = machine.unpublished.count
        let through = machine.republished()
        counters.republished.add(count, ordering: .relaxed)
        // "Not recorded as published", not "not yet published": the mark trails the sends by up to a second, so after a
        // kill some of these reached their consumers before it (a differential tester, session 44, read the old words
        // as a claim that none had).
        let line = "published \(count) alerts committed before the last stop and not recorded as published (a "
            + "consumer may have had some already: delivery is at least once)"
        logger.notice("\(line)", metadata: [
            "alertSubscriptions": "\(tracker.alertSubscriptions)", "publishedThrough": "\(through)",
        ])
        do { try store.markPublished(through: through) } catch {
            throw DaemonError.store(error, while: "cannot write the state store")
        }
        counters.publishedRecorded.store(through, ordering: .relaxed)
        becomeReady()
    }

    /// The start waits, input unread and READY=1 not sent, for a consumer to subscribe to alert topics or the grace to
    /// pass: said at `notice`, and to systemd, whose start timeout (the unit's 60 s) is extended past the grace. The
    /// wait used neither CPU nor reads, so the start's own extension stopped; with a grace above the unit's
    /// `TimeoutStartSec` systemd killed the start and restarted it into the same wait, for ever, the input never read,
    /// and the log said only that no publisher had connected (a runtime reviewer, session 45).
    private mutating func announceRepublishWait() {
        let count = machine.unpublished.count
        let grace = config.republishGraceMillis
        counters.republishWaiting.store(count, ordering: .relaxed)
        let line = RepublishWait.notice(alerts: count, graceMillis: grace)
        logger.notice("\(line)", metadata: ["unpublished": "\(count)", "republishGraceMillis": "\(grace)"])
        if Systemd.isSupervised { Systemd.notifyWithoutWaiting(RepublishWait.systemdState(alerts: count, graceMillis: grace)) }
    }

    private mutating func becomeReady() {
        counters.republishWaiting.store(0, ordering: .relaxed)
        ready?()
        ready = nil
    }

    /// Stop: finish what is in hand, make it durable, publish it, record that it was published.
    private mutating func finish() throws(DaemonError) {
        let changes = engine.takeChanges()
        if machine.stop() || !changes.isEmpty { submit(changes: changes) }
        writer.close()
        try publishDurable()
        do { try store.markPublished(through: machine.publishedThrough) } catch {
            throw DaemonError.store(error, while: "cannot write the state store")
        }
    }
}

/// The published outboxes on loan to libzmq, oldest first, and at most `limit` of them. A subscriber that stops
/// reading keeps up to its high-water mark of messages queued in libzmq, and each lent message holds its whole batch's
/// outbox (reserved for a batch at the hard limit, `CommitPipeline.newOutbox`): unbounded, a stalled or hostile
/// consumer would pin an outbox per queued message. Past `limit` the loop publishes by copy and recycles the outbox
/// at once, as before lending, until the oldest loans come back.
struct LentOutboxes {
    /// Enough for the batches a reading consumer has in hand at the daemon's full rate (two to three in the bench).
    static let defaultLimit = 8

    let limit: Int
    private(set) var queue: [LentOutbox] = []

    init(limit: Int = LentOutboxes.defaultLimit) {
        precondition(limit >= 0, "a limit of zero or more outboxes on loan")
        self.limit = limit
    }

    /// Whether another batch may be published by lending its bodies.
    var canLend: Bool { queue.count < limit }

    /// Outboxes on loan.
    var count: Int { queue.count }

    mutating func append(_ lent: LentOutbox) {
        precondition(canLend, "more outboxes lent than the limit")
        queue.append(lent)
    }

    /// The oldest outbox on loan if its loan is returned, for reuse; nil while it is still out (batches are taken
    /// back in order, so a consumer holding an old batch holds back the later ones, within `limit`).
    mutating func takeReturned() -> Outbox? {
        guard let first = queue.first, first.loan.isReturned else { return nil }
        queue.removeFirst()
        return first.take()
    }
}

/// A published batch's outbox while libzmq reads its bodies in place (`ZMQSocket.send(_:lending:from:dontWait:)`),
/// with the loan that counts them. The loan holds the outbox's box (and the loop holds both: no cycle), so the bytes
/// stay allocated as long as any body is out, even past the loop's end (a socket closed with messages queued
/// releases them later, on libzmq's threads); nothing writes them until `take()`, which needs `loan.isReturned`.
struct LentOutbox {
    final class Box {
        var outbox: Outbox?
        init(_ outbox: consuming Outbox) { self.outbox = outbox }
    }

    let box: Box
    let loan: ZMQLoan

    init(_ outbox: consuming Outbox) {
        let count = outbox.count
        box = Box(outbox)
        loan = ZMQLoan(messages: count, keeping: box)
    }

    /// The outbox, for reuse: only once libzmq has returned every body.
    func take() -> Outbox {
        precondition(loan.isReturned, "an outbox taken back while libzmq may still read it")
        let taken = box.outbox ?? Outbox()
        box.outbox = nil  // `taken` is now the only reference to the storage: emptied in place, not copied
        return taken
    }
}

/// The wall clock as the drain loop hands it to the engine (`detectedAt`, the future-skew check): read for the first
/// message of a drain and then once every `eventsPerRead` messages, instead of once per message (`clock_gettime` was
/// 1.3–3.4% of the processing thread's samples). Within one drain the messages are read back to back without
/// waiting (the receive never blocks; after a batch is handed to the writer the sample starts afresh), so a
/// message's `now` is the reading taken at most `eventsPerRead − 1` messages before it, tens of microseconds at the
/// daemon's full rate, against `detectedAt`'s millisecond resolution; it is never later than the message's processing, and successive values never go backwards unless
/// the system clock itself is set back (`Benchmarks/README.md`, "The daemon outside the engine, fifth pass (eighth
/// session)": the wall clock once per 16 messages).
struct WallClockSample {
    static let eventsPerRead = 16
    private var millis: Millis = 0
    private var left = 0

    /// The wall clock for the next message: a fresh reading (`read`) every `eventsPerRead` calls, the first included.
    @inline(__always) mutating func now(_ read: () -> Millis = Pipeline.wallClockMillis) -> Millis {
        if left == 0 {
            millis = read()
            left = Self.eventsPerRead
        }
        left -= 1
        return millis
    }
}

/// The processing loop's periodic chores: asking for journal retention (at the first turn, then every
/// `state.journalPruneIntervalSeconds`; the writer thread does it, `CommitWriter.requestPrune`) and the periodic
/// `info` line with the counters (`log.statsIntervalSeconds`, 60 by default). The systemd watchdog ping and `STATUS=`
/// line are `SystemdHeartbeat`'s, off this thread.
struct Housekeeping {
    let retentionDays: Int
    let pruneInterval: Duration
    /// nil until the first turn: a daemon restarted more often than the interval still prunes.
    var lastPrune: ContinuousClock.Instant?
    let statsInterval: Duration?
    var lastStats: (at: ContinuousClock.Instant, received: Int)
    /// Heap memory freed by a refused message of many frames, to be given back to the system (`memoryToReturn`).
    var trim = HeapTrim()
    /// Steps of the wall clock, said at `warning` (`ClockStepWatch`).
    var clockWatch: ClockStepWatch
    /// The bound `ipc://` endpoints' socket files, deleted or replaced under the daemon (`SocketFileWatch`).
    var socketFiles: SocketFileWatch
    /// The state store's WAL checkpoints failing (`CheckpointWatch`).
    var checkpoints = CheckpointWatch()
    /// A commit that does not end (`CommitStallWatch`).
    var commitStall = CommitStallWatch()
    /// The events past the last year of `rules.bankHolidays` (`HolidayCoverage`).
    var holidays: HolidayCoverage
    /// The state store's `-wal` file grown far past its bound (`WALSizeWatch`).
    var walSize = WALSizeWatch()

    init(config: DaemonConfiguration, now: ContinuousClock.Instant) {
        clockWatch = ClockStepWatch(wall: Pipeline.wallClockMillis(), at: now)
        holidays = HolidayCoverage(config.engine.bankHolidays)
        socketFiles = SocketFileWatch(config: config)
        retentionDays = config.journalRetentionDays
        pruneInterval = .seconds(config.journalPruneIntervalSeconds)
        lastPrune = nil
        statsInterval = config.statsIntervalSeconds > 0 ? .seconds(config.statsIntervalSeconds) : nil
        lastStats = (now, 0)
    }

    /// A message of more than two frames was read (and refused). ZeroMQ's `ZMQ_MAXMSGSIZE` (`input.maxMessageBytes`)
    /// limits each frame, not a message's number of frames, and libzmq holds a whole message before it hands over its
    /// first frame: one message of 3,000 frames of 60 KB took 180 MB, which glibc kept after the message was freed
    /// (the daemon's resident memory went from 41 to 207 MB and stayed). `malloc_trim(0)` gives the free pages back;
    /// done from the next turn, at most once a second, so a stream of such messages costs a trim a second, not one
    /// each.
    mutating func memoryToReturn() { trim.request() }

    /// Bytes read from the input since the heap was last given back on their account, and when input was last read.
    private var intake = 0
    private var lastInput: ContinuousClock.Instant? = nil
    /// How much input read makes the heap be given back once the input goes quiet (`inputRead`).
    static let intakeTrimBytes = 64 << 20
    /// How long the input must have been quiet (nothing read) for that.
    static let intakeQuiet = Duration.seconds(1)

    /// A drain of the input read `bytes` of message bodies. A backlog that libzmq queued while the daemon was busy (up
    /// to `input.receiveHighWaterMark` messages of up to `input.maxMessageBytes` each) is heap that glibc kept once it
    /// was read and freed: 60,000 queued messages of 60 KB left the daemon at 2.6 GB resident for good (a fault tester,
    /// session 35). Once `intakeTrimBytes` have been read and the input has then been quiet for `intakeQuiet`, the heap
    /// is given back as after a message of many frames (`memoryToReturn`). Quiet, not merely empty: a queue emptied
    /// half-way through a backlog trimmed there, and what the rest of the backlog took stayed (the test, run beside
    /// the whole suite). A steady stream never trims this way; what it holds is its working set.
    mutating func inputRead(bytes: Int, at now: ContinuousClock.Instant) {
        guard bytes > 0 else { return }
        intake &+= bytes
        lastInput = now
    }

    /// A turn that left the input unread (the batches full behind a busy writer, republishing): not quiet, only not
    /// looked at — a backlog may still be queued (a reviewer, session 35).
    mutating func inputNotPolled(at now: ContinuousClock.Instant) {
        if intake > 0 { lastInput = now }
    }

    mutating func returnMemory(at now: ContinuousClock.Instant) {
        if intake >= Self.intakeTrimBytes, let last = lastInput, now - last >= Self.intakeQuiet {
            intake = 0
            trim.request()
        }
        trim.run(at: now)
    }

    /// `events/s`, cases, W, the latest alert sequence, subscriptions: one line; first, while the start waits to
    /// republish, that it waits.
    static func status(_ c: RuntimeCounters, eventsPerSecond: Double) -> String {
        let w = c.watermarkMillis.load(ordering: .relaxed)
        let watermark = w == Int64.min ? "none yet" : RFC3339.format(w)
        let waiting = c.republishWaiting.load(ordering: .relaxed)
        return (waiting > 0 ? RepublishWait.status(alerts: waiting) + "; " : "")
            + "\(Int(eventsPerSecond.rounded())) events/s, \(c.received.load(ordering: .relaxed)) received, "
            + "\(c.cases.load(ordering: .relaxed)) cases, W \(watermark), alertSequence \(c.committedSequence.load(ordering: .relaxed)), "
            + "\(c.subscriptions.load(ordering: .relaxed)) subscriptions"
    }

    static func rate(_ received: Int, since last: (at: ContinuousClock.Instant, received: Int), now: ContinuousClock.Instant) -> Double {
        let seconds = Double((now - last.at).components.seconds) + Double((now - last.at).components.attoseconds) / 1e18
        return seconds > 0 ? Double(received - last.received) / seconds : 0
    }

    mutating func run(at now: ContinuousClock.Instant, writer: CommitWriter, store: StateStore, logger: Logger,
                      counters: RuntimeCounters) {
        returnMemory(at: now)
        if let step = clockWatch.observe(wall: { Pipeline.wallClockMillis() }, at: now) {
            let by = ClockStepWatch.text(step.millis) + (step.count > 1 ? " in all, in \(step.count) steps of under a minute each" : "")
            var metadata: Logger.Metadata = ["stepSeconds": "\(step.millis / 1000)", "clock": "\(RFC3339.format(Pipeline.wallClockMillis()))"]
            if step.count > 1 { metadata["steps"] = "\(step.count)" }
            logger.warning("the wall clock was stepped \(step.millis > 0 ? "forward" : "back") by \(by) (against the monotonic clock: a date set by hand, a first NTP sync, a virtual machine resumed): alerts' detectedAt, the future-skew check of events and the journal's retention follow the wall clock (README: The host's clock)",
                           metadata: metadata)
        }
        if let year = holidays.passed(watermark: counters.watermarkMillis.load(ordering: .relaxed)) {
            let last = holidays.lastYear ?? year
            logger.warning("events have reached \(year), past \(last), the last year rules.bankHolidays lists: every weekday after it counts as a business day for R1's enforcement deadline and R7's outcome deadline until the bank holidays of the years after it are configured (README: Configuration)",
                           metadata: ["lastListedYear": "\(last)", "eventYear": "\(year)"])
        }
        socketFiles.check(at: now, logger: logger)
        checkpoints.check(at: now, store: store, logger: logger, counters: counters)
        commitStall.check(writer: writer, store: store, logger: logger)
        walSize.check(at: now, store: store, logger: logger)
        if let interval = statsInterval, now - lastStats.at >= interval {
            let received = counters.received.load(ordering: .relaxed)
            var metadata: Logger.Metadata = [:]
            for (key, value) in counters.summary { metadata[key] = "\(value)" }
            if let reasons = counters.invalidReasons { metadata["invalidBy"] = "\(reasons)" }
            metadata["eventsPerSecond"] = "\(Int(Self.rate(received, since: lastStats, now: now).rounded()))"
            metadata["cases"] = "\(counters.cases.load(ordering: .relaxed))"
            metadata["alertSequence"] = "\(counters.committedSequence.load(ordering: .relaxed))"
            metadata["publishedRecorded"] = "\(counters.publishedRecorded.load(ordering: .relaxed))"
            metadata["subscriptions"] = "\(counters.subscriptions.load(ordering: .relaxed))"
            logger.info("counters", metadata: metadata)
            lastStats = (now, received)
        }
        if lastPrune.map({ now - $0 >= pruneInterval }) ?? true {
            lastPrune = now
            // Off this thread: a prune waits for the store's write lock (up to the busy timeout when another process
            // holds it) and may delete many rows; the writer does it between batches, in bounded steps.
            writer.requestPrune(recordedBefore: Pipeline.wallClockMillis() - Millis(retentionDays) * millisPerDay,
                                retentionDays: retentionDays)
        }
    }
}

/// The socket files of the bound `ipc://` endpoints (the output, the journal, a bound input). One deleted or replaced
/// under the running daemon (a clean-up of its directory, an operator's `rm`) takes the endpoint away for good: no
/// consumer, journal client or publisher can connect again, the connections already made go on, and nothing said so
/// (a fault tester, session 28). Each file is looked at every 5 s (one `stat`) against the file first seen there;
/// a change is said at `warning` once, and again should it change back and then again.
struct SocketFileWatch {
    static let interval: Duration = .seconds(5)
    private var files: [(socket: String, endpoint: String, path: String, identity: FileIdentity?, reported: Bool)] = []
    private var last: ContinuousClock.Instant? = nil

    init(config: DaemonConfiguration) {
        var bound = [("output", config.output)]
        if let journal = config.journal { bound.append(("journal", journal)) }
        if config.inputBind { bound += config.inputs.map { ("input", $0) } }
        for (socket, endpoint) in bound where endpoint.hasPrefix("ipc://") {
            let path = String(endpoint.dropFirst("ipc://".count))
            if path.hasPrefix("@") { continue }  // the abstract namespace: no file
            files.append((socket, endpoint, path, nil, false))
        }
    }

    /// Takes each file as it is: once every socket is bound, before READY=1 (a file deleted right after READY=1 was
    /// taken as none there at the loop's first turn).
    mutating func start(at now: ContinuousClock.Instant) {
        for i in files.indices { files[i].identity = FileIdentity(path: files[i].path) }
        last = now
    }

    mutating func check(at now: ContinuousClock.Instant, logger: Logger) {
        guard !files.isEmpty, let last, now - last >= Self.interval else { return }
        self.last = now
        for i in files.indices {
            let current = FileIdentity(path: files[i].path)
            guard let identity = files[i].identity else { continue }
            if current == identity { files[i].reported = false; continue }
            guard !files[i].reported else { continue }
            files[i].reported = true
            logger.warning("""
                the \(files[i].socket) socket's file was \(current == nil ? "deleted" : "replaced by another file"): no new \
                connection can reach \(files[i].endpoint) (those made before go on); restart the daemon to bind it again, \
                and keep other programs from cleaning its directory
                """, metadata: ["socket": "\(files[i].socket)", "endpoint": "\(files[i].endpoint)"])
        }
    }
}

/// A commit of the state store that does not end: the disk holding it frozen (`fsfreeze`, a snapshot), failing or far
/// too slow. The processing loop goes on turning (so the watchdog is pinged and `/healthz` says 200), reads input until
/// the batches are full, and publishes nothing — and nothing said so (a fault tester, session 35: 42 s of a frozen file
/// system without a line). Said at `warning` once a commit has taken `after`, again every `repeatAfter` while it goes
/// on, and at `notice` when it ends. Plain values: `observe` decides, `check` reads the writer and logs.
struct CommitStallWatch {
    static let after: UInt64 = 10_000_000_000
    static let repeatAfter: UInt64 = 60_000_000_000
    /// The commit last said to be waiting (its start), and when that was said.
    private var said: (started: UInt64, at: UInt64)? = nil

    enum Saying: Equatable {
        /// The commit in progress has taken `seconds` so far.
        case waiting(seconds: UInt64)
        /// The commit said to be waiting ended after about `seconds`.
        case ended(seconds: UInt64)
    }

    /// `started`: when the commit in progress started (nil: none is); `now`: the monotonic clock, both in nanoseconds.
    mutating func observe(started: UInt64?, now: UInt64) -> Saying? {
        if let said, said.started != started {
            self.said = nil
            return .ended(seconds: (now &- said.started) / 1_000_000_000)
        }
        guard let started, now >= started, now - started >= Self.after else { return nil }
        if let said, now - said.at < Self.repeatAfter { return nil }
        said = (started, now)
        return .waiting(seconds: (now - started) / 1_000_000_000)
    }

    mutating func check(writer: CommitWriter, store: StateStore, logger: Logger) {
        // A save waiting for another process's reader has its own, accurate line every minute (and reads no input):
        // the disk is not at fault then (a reviewer, session 35).
        let started = writer.isWaitingForReaders ? nil : writer.busySinceNanos
        guard let saying = observe(started: started, now: MonotonicClock.nanos()) else { return }
        switch saying {
        case .waiting(let seconds):
            logger.warning("a write to the state store (a commit, a checkpoint or a prune) has been waiting for \(seconds) s: the disk holding \(store.path) does not answer (a frozen file system, a failing or overloaded disk?), or another process holds a lock on its write-ahead log, which SQLite waits out for ~10 s (`fuser -v \(store.path)-wal \(store.path)-shm` names it). Nothing is published until it ends; input is read until the batches in hand are full",
                           metadata: ["waitedSeconds": "\(seconds)"])
        case .ended(let seconds):
            if writer.error != nil {
                logger.notice("the write to the state store that was waiting has ended after about \(seconds) s, with an error (below)",
                              metadata: ["waitedSeconds": "\(seconds)"])
            } else {
                logger.notice("the write to the state store that was waiting has ended (after about \(seconds) s); publishing resumes",
                              metadata: ["waitedSeconds": "\(seconds)"])
            }
        }
    }
}

/// The state store's WAL checkpoints (`StateStore.checkpoints`), looked at once a second. A checkpoint failure does
/// not fail a commit (commits append to the WAL), so one that keeps failing — an I/O error writing the database file —
/// would grow the `-wal` file without a word (a reviewer, session 28). New failures are said at `warning`, at most
/// once a minute while they go on (with how many since the last line); once a checkpoint succeeds after a warning,
/// an `info` line says so. The count is `checkpointFailures` in the counters and stop lines. Plain values: `observe`
/// decides, `check` reads the store and logs.
struct CheckpointWatch {
    static let interval: Duration = .seconds(1)
    static let repeatAfter: Duration = .seconds(60)
    /// Failures already said.
    private var said = 0
    private var lastSaid: ContinuousClock.Instant? = nil
    /// Whether the last line said the checkpoints were still failing.
    private var failing = false
    private var looks = Throttle(every: CheckpointWatch.interval)

    enum Saying: Equatable {
        /// `new` failures since the last line (`total` since the store was opened); whether the last one failed too.
        case failed(new: Int, total: Int, stillFailing: Bool, last: String, fileSizeLimit: Bool)
        /// A checkpoint succeeded after a line that said they were failing.
        case recovered(total: Int)
    }

    init() {}

    mutating func observe(_ o: CheckpointOutcomes, at now: ContinuousClock.Instant) -> Saying? {
        let stillFailing = o.failingInARow > 0
        if o.failures > said, lastSaid.map({ now - $0 >= Self.repeatAfter }) ?? true {
            defer { said = o.failures; lastSaid = now; failing = stillFailing }
            return .failed(new: o.failures - said, total: o.failures, stillFailing: stillFailing,
                           last: o.lastFailure ?? "no detail", fileSizeLimit: o.lastFailureIsFileSizeLimit)
        }
        if failing && !stillFailing {
            failing = false
            said = o.failures
            return .recovered(total: o.failures)
        }
        return nil
    }

    mutating func check(at now: ContinuousClock.Instant, store: StateStore, logger: Logger, counters: RuntimeCounters) {
        guard looks.allows(at: now) else { return }
        let outcomes = store.checkpoints
        counters.checkpointFailures.store(outcomes.failures, ordering: .relaxed)
        guard let saying = observe(outcomes, at: now) else { return }
        switch saying {
        case let .failed(new, total, stillFailing, last, fileSizeLimit):
            let times = new == 1 ? "once" : "\(new) times"
            // The file-size limit is not the disk: "Check the disk" sent the operator to one that was fine (a
            // reviewer, session 54, under `prlimit --fsize` a little above the store).
            let remedy = fileSizeLimit
                ? "the daemon's file-size limit (\(StoreError.fileSizeLimitKnobs)) is \(StoreError.fileSizeLimitBytes().map { "\($0) bytes" } ?? "set"), which the database file cannot pass; the disk is not at fault. Raise or remove the limit (`prlimit --pid \(getpid()) --fsize=unlimited` on the running daemon)"
                : "Check the disk and file system holding \(store.path) (free space, I/O errors in the kernel log)"
            logger.warning("""
                the state store's WAL checkpoint failed \(times)\(total > new ? " more" : "") (\(last)); \(stillFailing
                    ? "it is still failing: commits go on, appended to \(store.path)-wal, which grows until a checkpoint succeeds. \(remedy)"
                    : "the next one succeeded")
                """, metadata: ["checkpointFailures": "\(total)"])
        case let .recovered(total):
            logger.info("the state store's WAL checkpoints succeed again (\(total) failed since the store was opened)",
                        metadata: ["checkpointFailures": "\(total)"])
        }
    }
}

/// The state store's `-wal` file, looked at every 5 s (one `stat`). SQLite can restart the WAL from its start only when
/// no reader is using it: commits keep it near 40 MB and SQLite cuts the file back to 64 MiB at a restart
/// (`StateStore.walSizeLimitBytes`), and the daemon's own journal reads (one short transaction at a time) do not stop
/// the restarts. Another process's read transactions that always overlap do (a backup, a monitoring script, an sqlite3
/// shell left in a transaction): a fault tester (session 29) saw the file grow from 55 MB to 2.9 GB in 60 s with two
/// such readers, and nothing said so — a PASSIVE checkpoint that cannot finish is no error. Past 4 × that size the
/// daemon says so at `warning`, again each time the file doubles, and at `info` once a restart cut it back.
struct WALSizeWatch {
    static let interval: Duration = .seconds(5)
    static let threshold = 4 * StateStore.walSizeLimitBytes
    /// The size the next warning waits for (doubles after each).
    private var next = WALSizeWatch.threshold
    private var warned = false
    private var looks = Throttle(every: WALSizeWatch.interval)

    enum Saying: Equatable {
        case grown(bytes: Int)
        case cutBack(bytes: Int)
    }

    init() {}

    mutating func observe(walBytes: Int) -> Saying? {
        if walBytes >= next {
            while next <= walBytes { next *= 2 }
            warned = true
            return .grown(bytes: walBytes)
        }
        if warned && walBytes <= StateStore.walSizeLimitBytes {
            warned = false
            next = Self.threshold
            return .cutBack(bytes: walBytes)
        }
        return nil
    }

    mutating func check(at now: ContinuousClock.Instant, store: StateStore, logger: Logger) {
        guard looks.allows(at: now) else { return }
        switch observe(walBytes: store.walFileBytes) {
        case .grown(let bytes)?:
            logger.warning("""
                the state store's write-ahead log \(store.path)-wal has grown to \(bytes / 1_048_576) MiB (it is cut back \
                to \(StateStore.walSizeLimitBytes / 1_048_576) MiB when SQLite can restart it): another process's read \
                transactions keep SQLite from restarting it (a backup, a monitoring script, an sqlite3 shell left in a \
                transaction: `fuser -v \(store.path) \(store.path)-wal` names them); it grows with every commit until \
                they end. Nothing is lost
                """, metadata: ["walBytes": "\(bytes)"])
        case .cutBack(let bytes)?:
            logger.info("the state store's write-ahead log was restarted and cut back to \(bytes / 1_048_576) MiB",
                        metadata: ["walBytes": "\(bytes)"])
        case nil:
            break
        }
    }
}

/// Whether the events have passed the last year `rules.bankHolidays` lists. The default list ends with 2028 (rules.md);
/// from an event of 2029 on, every weekday counted as a business day — deadlines a holiday would have moved came a day
/// early (76 R1 and 50 R7 deadlines in the default list's first year without it, an uptime hunter's count, session 48)
/// — and nothing said so. Said once per run, at `warning`, when the watermark's UTC year is past the last listed
/// year; an empty list (no holidays, on purpose) is never said. Plain value: the caller reads the watermark.
struct HolidayCoverage {
    /// The last year with a listed holiday; nil for an empty list.
    let lastYear: Int?
    /// The first instant (UTC) of the year after `lastYear`: a watermark before it is one comparison a loop turn.
    private let uncovered: Int64?
    private var said = false

    init(_ holidays: [LocalDate]) {
        lastYear = holidays.map { $0.components.year }.max()
        uncovered = lastYear.flatMap { LocalDate(year: $0 + 1, month: 1, day: 1) }.map { Int64($0.days) * millisPerDay }
    }

    /// The watermark's year, once, when it is past `lastYear`; else nil.
    mutating func passed(watermark: Int64) -> Int? {
        guard !said, let uncovered, watermark >= uncovered else { return nil }
        said = true
        return LocalDate(days: Int32(clamping: floorDays(watermark))).components.year
    }
}

/// Notices a step of the wall clock: compared with the monotonic clock about once a second, a difference of more than
/// a minute (NTP slews at most half a millisecond a second; it steps a clock that is off by more than 128 ms, and a
/// person's `date -s` or a first sync after a boot with a wrong date steps it by hours or years). The daemon's rules
/// run on event time, but alerts' `detectedAt`, the future-skew check of events (a clock behind refuses every event)
/// and the journal's retention read the wall clock, and a clock fault tester (session 24) found steps of days
/// silent. Steps of under a minute each (but of a second or more: the comparison itself is off by a few milliseconds)
/// are added up, and said once they come to more than a minute together. Plain values: the caller reads the clocks.
struct ClockStepWatch {
    static let threshold: Millis = 60_000
    /// The least step added up towards `threshold`: below it, the comparison's own error.
    static let smallStepFloor: Millis = 1_000
    static let interval = Duration.seconds(1)
    private var wall: Millis
    private var at: ContinuousClock.Instant
    /// Steps of under a minute since the last said: their sum and number.
    private var small: (sum: Millis, count: Int) = (0, 0)

    /// A step to say: `millis` (positive: forward), in `count` steps (1: one step of more than a minute; more: steps of
    /// under a minute each that came to more than a minute together).
    struct Step: Equatable {
        var millis: Millis
        var count: Int
    }

    init(wall: Millis, at: ContinuousClock.Instant) {
        self.wall = wall
        self.at = at
    }

    /// The step when the wall clock moved more than `threshold` away from the time the monotonic clock says passed
    /// since the last look, or smaller steps since the last said came to more than `threshold`; nil otherwise, or when
    /// less than `interval` passed (the wall clock is then not read).
    mutating func observe(wall read: () -> Millis, at now: ContinuousClock.Instant) -> Step? {
        let elapsed = now - at
        guard elapsed >= Self.interval else { return nil }
        let wallNow = read()
        let (s, atto) = elapsed.components
        let expected = wall &+ s &* 1000 &+ atto / 1_000_000_000_000_000
        wall = wallNow
        at = now
        let step = wallNow &- expected
        if step > Self.threshold || step < -Self.threshold {
            // What small steps had added up is left behind: a residue of days before joined a later step and was said
            // with it (a reviewer, session 33).
            small = (0, 0)
            return Step(millis: step, count: 1)
        }
        guard step >= Self.smallStepFloor || step <= -Self.smallStepFloor else { return nil }
        // Counted since the sum last came back to zero or crossed it: steps that cancelled out are not in the count
        // of a drift said later ("in 23 steps" where 3 made it: the same review).
        let sum = small.sum &+ step
        let crossed = sum == 0 || (small.sum != 0 && (small.sum > 0) != (sum > 0))
        small = sum == 0 ? (0, 0) : (sum, crossed ? 1 : small.count + 1)
        guard small.sum > Self.threshold || small.sum < -Self.threshold else { return nil }
        defer { small = (0, 0) }
        return Step(millis: small.sum, count: small.count)
    }

    /// `3 d 4 h 5 min 6 s` (the larger units only when non-zero), of the absolute value.
    static func text(_ millis: Millis) -> String {
        var s = millis.magnitude / 1000
        var parts: [String] = []
        for (unit, size) in [("d", UInt64(86_400)), ("h", 3_600), ("min", 60)] where s >= size || !parts.isEmpty {
            parts.append("\(s / size) \(unit)")
            s %= size
        }
        parts.append("\(s) s")
        return parts.joined(separator: " ")
    }
}

/// "At most once per `interval`": the first call allows, and then one at least `interval` after the last allowed.
struct Throttle {
    let interval: Duration
    private var last: ContinuousClock.Instant? = nil

    init(every interval: Duration) { self.interval = interval }

    /// Whether `now` is allowed (it then counts as the last).
    mutating func allows(at now: ContinuousClock.Instant) -> Bool {
        guard last.map({ now - $0 >= interval }) ?? true else { return false }
        last = now
        return true
    }
}

/// Gives free heap memory back to the system (`malloc_trim(0)`) once it has been asked to, at most once per `interval`
/// (a stream of requests costs a trim a second, not one each): after a message of many frames (the processing
/// thread, `Housekeeping`; the journal thread) or a consumer connection cut with its subscriptions.
struct HeapTrim {
    static let interval = Duration.seconds(1)
    private(set) var due = false
    private var throttle = Throttle(every: HeapTrim.interval)

    mutating func request() { due = true }

    /// Trims if asked to and the last trim is at least `interval` ago; returns whether it did.
    @discardableResult
    mutating func run(at now: ContinuousClock.Instant) -> Bool {
        guard due, throttle.allows(at: now) else { return false }
        due = false
        malloc_trim(0)
        return true
    }
}

/// Whether the heap's free bytes (glibc's `mallinfo2`, every arena) grew by `threshold` since the lowest seen, looked at
/// at most once a second: memory freed where no request or message shows it. libzmq frees the replies it had
/// queued for journal clients when they disconnect, and 2,000 clients that never read, gone after their budgets had
/// expired (and the trim that follows had run, with their replies still queued), left the daemon at 150 MB instead of
/// 60 until some later journal request (a journal fault tester, session 36). A trim leaves what it gave back counted as
/// free, so the base is the lowest seen since the last growth, not the count after the trim.
///
/// At most one trim per `cooldown`: the watch sees the whole process, and a trim holds each arena's lock while it
/// walks it, so a heap that churns by more than the threshold every second under load (a backlog of input drained)
/// would otherwise be trimmed every second beside the processing thread's own allocations (a reviewer, session 37).
struct FreedHeapWatch {
    static let threshold = 32 << 20
    static let cooldown = Duration.seconds(10)
    private var lowest: Int
    private var throttle = Throttle(every: HeapTrim.interval)
    private var lastTrim: ContinuousClock.Instant? = nil
    private let freeBytes: () -> Int

    init(freeBytes: @escaping () -> Int = FreedHeapWatch.heapFreeBytes) {
        self.freeBytes = freeBytes
        lowest = freeBytes()
    }

    /// Whether enough was freed since the lowest count seen to be worth a trim (the count then becomes the base).
    mutating func freed(at now: ContinuousClock.Instant) -> Bool {
        guard throttle.allows(at: now) else { return false }
        let free = freeBytes()
        if free < lowest { lowest = free }
        guard free - lowest >= Self.threshold, lastTrim.map({ now - $0 >= Self.cooldown }) ?? true else { return false }
        lowest = free
        lastTrim = now
        return true
    }

    /// Free bytes in the heap's arenas: in chunks and at their tops, given back to the system or not.
    static func heapFreeBytes() -> Int { Int(mallinfo2().fordblks) }

    /// Watches the heap once a second from a timer on its own queue, never the processing thread (a trim of a large
    /// heap takes milliseconds), and trims when `freed` says so; whatever freed it (journal clients gone, a burst
    /// of input under the input's own 64 MB trim, a reload), with or without a journal.
    final class Timer: @unchecked Sendable {
        private let timer: any DispatchSourceTimer

        /// Every 5 s: `mallinfo2` walks each arena's free chunks under its lock (72–83 ms on a synthetic heap of a
        /// million free chunks, a reviewer's measurement, session 37), so it is not asked every second.
        init(interval: Duration = .seconds(5)) {
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "contactwatch.heap"))
            let watch = Mutex(FreedHeapWatch())
            timer.setEventHandler {
                if watch.withLock({ $0.freed(at: .now) }) { malloc_trim(0) }
            }
            let nanos = Int(interval.components.seconds) * 1_000_000_000 + Int(interval.components.attoseconds / 1_000_000_000)
            timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos))
            timer.resume()
            self.timer = timer
        }

        func stop() { timer.cancel() }
    }
}

/// One debug-level line per published message, from the facts the engine recorded beside it (no body is re-read):
/// the topic, the CRN and contactId it concerns, and for alerts their sequence and id; the body itself as `body`.
struct MessageLog {
    let logger: Logger

    func published(_ entry: Outbox.Entry, topic: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) {
        var metadata: Logger.Metadata = ["topic": "\(String(decoding: topic, as: UTF8.self))"]
        if let crn = entry.crn { metadata["crn"] = "\(crn)" }
        if let id = entry.contactId { metadata["contactId"] = "\(id)" }
        if entry.alertSequence > 0 { metadata["alertSequence"] = "\(entry.alertSequence)" }
        if let id = entry.alertId { metadata["alertId"] = "\(id)" }
        metadata["body"] = "\(String(decoding: body, as: UTF8.self))"
        let what = switch entry.kind {
        case .alertRaised: "alert raised"
        case .alertResolved: "alert resolved"
        case .invalidEvent: "invalid event"
        case .streamGap: "stream gap"
        }
        logger.debug("published: \(what)", metadata: metadata)
    }
}

/// What the start says while alerts an earlier run committed and did not record as published wait for a consumer of
/// alert topics (alerts.md: until one subscribes or `output.republishGraceMillis` has passed; the input is not read
/// and READY=1 is not sent meanwhile).
enum RepublishWait {
    /// The `notice` line as the wait begins.
    static func notice(alerts: Int, graceMillis: Int) -> String {
        "waiting up to \(seconds(graceMillis)) (output.republishGraceMillis) for a consumer to subscribe to alert topics "
            + "before publishing \(alerts) alert\(alerts == 1 ? "" : "s") committed before the last stop and not recorded as "
            + "published; the input is not read until then"
    }

    /// The start's timeout extended past the grace (with 10 s for what follows it), and the status line.
    static func systemdState(alerts: Int, graceMillis: Int) -> String {
        "EXTEND_TIMEOUT_USEC=\((UInt64(max(0, graceMillis)) + 10_000) * 1000)\nSTATUS=" + status(alerts: alerts)
    }

    static func status(alerts: Int) -> String {
        "starting: waiting for a consumer of alert topics before republishing \(alerts) alert\(alerts == 1 ? "" : "s")"
            + " (input not read until then)"
    }

    /// 2000 → "2 s", 2500 → "2.5 s", 120000 → "120 s".
    static func seconds(_ millis: Int) -> String {
        millis % 1000 == 0 ? "\(millis / 1000) s" : "\(Double(millis) / 1000) s"
    }
}
