@testable import ContactWatchEngine
@testable import ContactWatchRuntime
import ContactWatchStore
import ContactWatchTestSupport
import Testing

/// `CommitPipeline` driven in-process against a fake writer (a FIFO of submitted batches that the test makes durable
/// when it chooses) and a fake consumer. Every schedule is generated from a seed, so a failure reproduces.
@Suite("CommitPipeline: the commit/publish state machine")
struct CommitPipelineTests {
    typealias Instant = ContinuousClock.Instant

    /// The store as the writer leaves it: alerts journaled by durable batches, and publishedThrough as recorded.
    struct FakeStore {
        var journal: [UInt64] = []
        var publishedThrough: UInt64 = 0
        var unpublished: [JournalEntry] {
            journal.filter { $0 > publishedThrough }.map {
                JournalEntry(alertSequence: $0, alertId: String(repeating: "0", count: 32), topic: Array("alert.raised.x".utf8),
                             body: Array("{\"alertSequence\":\($0)}".utf8))
            }
        }
    }

    /// One run of the loop's effects around a state machine, with a fake engine, writer and consumer.
    struct Simulation {
        var machine: CommitPipeline
        var store: FakeStore
        /// Submitted and not yet durable, oldest first: each batch's alert sequences.
        var writerQueue: [(alerts: [UInt64], publishedThrough: UInt64)] = []
        /// What the consumer received, in order.
        var published: [UInt64] = []
        var nextSequence: UInt64
        var now: Instant
        var violations: [String] = []

        init(limits: CommitPipeline.Limits, store: FakeStore, now: Instant) {
            self.store = store
            self.now = now
            nextSequence = store.journal.last ?? 0
            machine = CommitPipeline(limits: limits, committedSequence: nextSequence, publishedThrough: store.publishedThrough,
                                     unpublished: store.unpublished, now: now)
        }

        /// The engine processed one event; with `alert` it wrote an alert message (and a notice half the time).
        mutating func event(alert: Bool) {
            precondition(machine.acceptsInput)
            if alert {
                nextSequence += 1
                let s = nextSequence
                machine.outbox.append(kind: .alertRaised, alertSequence: s, alertId: AlertID(high: s, low: s),
                                      topic: { $0 += Array("alert.raised.x".utf8) }, body: { $0 += Array("\(s)".utf8) })
            } else {
                machine.outbox.append(kind: .invalidEvent, alertSequence: 0, topic: { $0 += Array("invalid-event".utf8) },
                                      body: { $0 += Array("{}".utf8) })
            }
            perform(machine.eventProcessed(at: now))
        }

        mutating func perform(_ action: CommitPipeline.Action) {
            switch action {
            case .none: break
            case .submit:
                let batch = machine.submit(alertSequence: nextSequence)
                var alerts: [UInt64] = []
                batch.outbox.forEach { e, _, _ in if e.alertSequence > 0 { alerts.append(e.alertSequence) } }
                writerQueue.append((alerts, batch.publishedThrough))
            case .republish:
                for e in machine.unpublished { consume(e.alertSequence) }
                store.publishedThrough = machine.republished()
            }
        }

        /// The writer makes its oldest batch durable and reports it; the loop publishes what the machine hands out.
        mutating func writerCompletes(publish: Bool = true) {
            guard !writerQueue.isEmpty else { return }
            let done = writerQueue.removeFirst()
            store.journal += done.alerts
            store.publishedThrough = max(store.publishedThrough, done.publishedThrough)
            guard publish else { return }
            guard var outbox = machine.batchDurable() else {
                violations.append("a durable batch was not handed out")
                return
            }
            outbox.forEach { e, _, _ in if e.alertSequence > 0 { consume(e.alertSequence) } }
            machine.recycle(&outbox)
        }

        mutating func consume(_ sequence: UInt64) {
            if !store.journal.contains(sequence) { violations.append("alert \(sequence) published before its commit") }
            published.append(sequence)
        }

        mutating func advance(milliseconds: Int) {
            now += .milliseconds(milliseconds)
            perform(machine.tick(at: now))
        }

        /// Stop as the loop does: submit what is in hand, let the writer finish, publish.
        mutating func stop() {
            if machine.stop() { perform(.submit) }
            while !writerQueue.isEmpty { writerCompletes() }
        }

        /// A random schedule of events, durability reports and time.
        mutating func runRandom(steps: Int, rng: inout SplitMix64) {
            for _ in 0..<steps {
                switch rng.below(10) {
                case 0...5 where machine.acceptsInput: event(alert: rng.below(3) == 0)
                case 6, 7: writerCompletes()
                default: advance(milliseconds: rng.below(4))
                }
            }
        }
    }

    static let limits = CommitPipeline.Limits(maxEvents: 4, interval: .milliseconds(3), hardLimit: 9,
                                              republishGrace: .milliseconds(50))

    @Test("no alert is handed out for publication before the batch that holds it is durable", arguments: 0..<40)
    func noAlertBeforeCommit(seed: UInt64) {
        Self.checkNoAlertBeforeCommit(limits: Self.limits, seed: seed)
    }

    /// One random schedule of 400 steps under `limits`: no alert handed out before its batch is durable, every alert
    /// the engine made published exactly once in alertSequence order, and the machine idle after the stop.
    static func checkNoAlertBeforeCommit(limits: CommitPipeline.Limits, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var sim = Simulation(limits: limits, store: FakeStore(), now: .now)
        sim.runRandom(steps: 400, rng: &rng)
        sim.stop()
        #expect(sim.violations.isEmpty, "\(sim.violations.prefix(3))")
        #expect(sim.published == Array(1...max(1, sim.nextSequence)).filter { $0 <= sim.nextSequence })
        #expect(sim.machine.isIdle)
    }

    @Test("batches are published in the order they were submitted, even when two are with the writer")
    func twoInFlightPublishInOrder() {
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        for _ in 0..<4 { sim.event(alert: true) }        // full batch → submitted at once
        #expect(sim.machine.batchesInFlight == 1)
        for _ in 0..<9 { sim.event(alert: true) }        // past hardLimit → a second batch while the first is written
        #expect(sim.machine.batchesInFlight == 2)
        #expect(sim.published.isEmpty)
        sim.writerCompletes()
        #expect(sim.published == [1, 2, 3, 4])
        sim.writerCompletes()
        #expect(sim.published == Array(1...13))
        #expect(sim.violations.isEmpty, "\(sim.violations)")
    }

    @Test("past hardLimit with the writer full the input is not read until a batch is durable")
    func backPressure() {
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        for _ in 0..<4 { sim.event(alert: false) }
        for _ in 0..<9 { sim.event(alert: false) }
        #expect(sim.machine.batchesInFlight == 2)
        for _ in 0..<9 { sim.event(alert: false) }
        #expect(!sim.machine.acceptsInput)
        sim.writerCompletes()
        // A slot is free: the waiting batch goes at the next decision, then the input is read again.
        sim.advance(milliseconds: 0)
        #expect(sim.machine.batchesInFlight == 2)
        #expect(sim.machine.acceptsInput)
    }

    @Test("while the writer waits for another process's reader of the store no input is read, whatever is in flight")
    func writerWaitingStopsInput() {
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        for _ in 0..<4 { sim.event(alert: true) }
        #expect(sim.machine.acceptsInput)
        sim.machine.writerWaiting(true)
        #expect(!sim.machine.acceptsInput, "input read while the commit cannot finish: applied in memory, dropped at exit")
        sim.writerCompletes()
        sim.advance(milliseconds: 10)
        #expect(!sim.machine.acceptsInput)
        sim.machine.writerWaiting(false)
        #expect(sim.machine.acceptsInput)
        #expect(sim.violations.isEmpty, "\(sim.violations)")
    }

    @Test("by default a batch grows to 200 × maxEvents behind a busy writer before a second one is queued")
    func defaultBound() {
        let limits = CommitPipeline.Limits(maxEvents: 4, interval: .milliseconds(3))
        #expect(limits.hardLimit == 800)
        #expect(CommitPipeline.Limits(maxEvents: .max, interval: .milliseconds(3)).hardLimit == .max)
        var sim = Simulation(limits: limits, store: FakeStore(), now: .now)
        for _ in 0..<4 { sim.event(alert: true) }        // full batch → submitted at once
        #expect(sim.machine.batchesInFlight == 1)
        for _ in 0..<799 { sim.event(alert: true) }      // one short of the bound: still one batch, input still read
        #expect(sim.machine.batchesInFlight == 1)
        #expect(sim.machine.acceptsInput)
        sim.event(alert: true)                           // the bound: queued as the second batch in flight
        #expect(sim.machine.batchesInFlight == 2)
        sim.writerCompletes()
        sim.writerCompletes()
        #expect(sim.published == Array(1...804))
        #expect(sim.violations.isEmpty, "\(sim.violations)")
    }

    /// `limits` without group commit: a batch waits for the interval or `maxEvents` even when the writer is idle.
    static let batchingLimits = CommitPipeline.Limits(maxEvents: 4, interval: .milliseconds(3), hardLimit: 9,
                                                      republishGrace: .milliseconds(50), groupCommit: false)

    @Test("without group commit: no alert is handed out before its batch is durable", arguments: 0..<20)
    func noAlertBeforeCommitWithoutGroupCommit(seed: UInt64) {
        Self.checkNoAlertBeforeCommit(limits: Self.batchingLimits, seed: seed)
    }

    @Test("group commit: an idle writer gets the events in hand at the next tick, before the interval; behind a busy writer they wait and go when it is free")
    func groupCommitIdleWriter() {
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        sim.event(alert: true)
        // Not at each event (the loop reads what is waiting first), but the poll does not sleep before the tick.
        #expect(sim.machine.batchesInFlight == 0)
        #expect(sim.machine.pollTimeout(at: sim.now) == 0)
        sim.advance(milliseconds: 0)
        #expect(sim.machine.batchesInFlight == 1)
        // The writer is busy: the next events wait, past the interval, and are not a second batch in flight.
        for _ in 0..<3 { sim.event(alert: true) }
        sim.advance(milliseconds: 5)
        #expect(sim.machine.batchesInFlight == 1)
        #expect(sim.machine.pendingEvents == 3)
        #expect(sim.published.isEmpty)
        sim.writerCompletes()
        #expect(sim.published == [1])
        // Free again: the three go together at the next tick, whatever their age.
        sim.advance(milliseconds: 0)
        #expect(sim.machine.batchesInFlight == 1)
        #expect(sim.machine.pendingEvents == 0)
        sim.writerCompletes()
        #expect(sim.published == [1, 2, 3, 4])
        #expect(sim.machine.pollTimeout(at: sim.now) == 100)
        #expect(sim.violations.isEmpty, "\(sim.violations)")
    }

    /// The mark was written only with the next commit: a crash or a backup of an idle daemon republished every alert
    /// published since (an operator audit, session 26).
    @Test("an idle daemon records what it published markDelay after it was seen idle, in an empty batch; nothing more while nothing new is published")
    func idleMark() {
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        sim.event(alert: true)
        sim.event(alert: true)
        sim.advance(milliseconds: 0)
        sim.writerCompletes()
        #expect(sim.published == [1, 2] && sim.store.publishedThrough == 0)
        sim.advance(milliseconds: 0)  // seen idle: the mark is due a second later
        #expect(sim.machine.batchesInFlight == 0)
        sim.advance(milliseconds: 950)
        #expect(sim.machine.batchesInFlight == 0)
        #expect(sim.machine.pollTimeout(at: sim.now) == 50, "the poll does not sleep past the mark")
        sim.advance(milliseconds: 50)
        #expect(sim.machine.batchesInFlight == 1)
        sim.writerCompletes()
        #expect(sim.store.publishedThrough == 2 && sim.published == [1, 2])
        sim.advance(milliseconds: 0)
        sim.advance(milliseconds: 5000)
        #expect(sim.machine.batchesInFlight == 0, "a mark with nothing new to record")
        // An event before the mark is due: its batch carries the mark, and no empty batch follows it.
        sim.event(alert: true)
        sim.advance(milliseconds: 0)
        sim.writerCompletes()
        sim.advance(milliseconds: 0)
        sim.event(alert: false)
        sim.advance(milliseconds: 0)
        #expect(sim.writerQueue.last?.publishedThrough == 3)
        sim.writerCompletes()
        sim.advance(milliseconds: 0)
        sim.advance(milliseconds: 5000)
        #expect(sim.machine.batchesInFlight == 0)
        #expect(sim.store.publishedThrough == 3)
        #expect(sim.violations.isEmpty, "\(sim.violations)")
    }

    @Test("group commit: a full batch goes to an idle writer at once, within a drain")
    func groupCommitFullBatch() {
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        for _ in 0..<3 { sim.event(alert: false) }
        #expect(sim.machine.batchesInFlight == 0)
        sim.event(alert: false)
        #expect(sim.machine.batchesInFlight == 1)
        #expect(sim.machine.pendingEvents == 0)
    }

    @Test("without group commit a batch is due after commitIntervalMillis even when not full; pollTimeout says when")
    func intervalDue() {
        var sim = Simulation(limits: Self.batchingLimits, store: FakeStore(), now: .now)
        sim.event(alert: true)
        #expect(sim.machine.batchesInFlight == 0)
        #expect(sim.machine.pollTimeout(at: sim.now) == 3)
        sim.advance(milliseconds: 2)
        #expect(sim.machine.batchesInFlight == 0)
        sim.advance(milliseconds: 1)
        #expect(sim.machine.batchesInFlight == 1)
        #expect(sim.machine.pollTimeout(at: sim.now) == 100)
    }

    @Test("crash between commit and publish: the restart republishes exactly the durable, unpublished alerts, before any input",
          arguments: 0..<30)
    func crashBetweenCommitAndPublish(seed: UInt64) {
        var rng = SplitMix64(seed: seed &+ 1000)
        var sim = Simulation(limits: Self.limits, store: FakeStore(), now: .now)
        sim.runRandom(steps: 200, rng: &rng)
        // The crash: the writer's last batches become durable, but the process dies before publishing them.
        while !sim.writerQueue.isEmpty { sim.writerCompletes(publish: false) }
        let before = sim.published
        #expect(sim.violations.isEmpty, "\(sim.violations.prefix(3))")

        var restarted = Simulation(limits: Self.limits, store: sim.store, now: sim.now)
        let pending = sim.store.unpublished.map(\.alertSequence)
        if pending.isEmpty {
            #expect(restarted.machine.acceptsInput)
            return
        }
        // Nothing is read and nothing new can overtake them until they are out.
        #expect(!restarted.machine.acceptsInput)
        #expect(restarted.machine.tick(at: restarted.now + .milliseconds(49)) == .none)
        restarted.perform(restarted.machine.alertSubscriberJoined())
        #expect(restarted.machine.acceptsInput)
        #expect(restarted.store.publishedThrough == pending.last)
        // The consumer connected throughout has every durable alert, without a gap (duplicates dropped by sequence).
        let received = Set(before + restarted.published)
        #expect(received == Set(sim.store.journal), "missing \(Set(sim.store.journal).subtracting(received).sorted())")
        #expect(restarted.published == pending)
        #expect(restarted.violations.isEmpty)
        // New alerts continue the sequence after the republished ones.
        restarted.event(alert: true)
        restarted.stop()
        #expect(restarted.published.last == (sim.store.journal.last ?? 0) + 1)
    }

    @Test("with no consumer the republish happens when the grace has passed")
    func republishAfterGrace() {
        let start = ContinuousClock.now
        var store = FakeStore()
        store.journal = [1, 2, 3]
        store.publishedThrough = 1
        var m = CommitPipeline(limits: Self.limits, committedSequence: 3, publishedThrough: 1, unpublished: store.unpublished,
                               now: start)
        #expect(m.phase == .republishing(deadline: start + .milliseconds(50)))
        #expect(m.pollTimeout(at: start + .milliseconds(20)) == 30)
        #expect(m.tick(at: start + .milliseconds(49)) == .none)
        #expect(m.tick(at: start + .milliseconds(50)) == .republish)
        #expect(m.republished() == 3)
        #expect(m.phase == .running)
        #expect(m.alertSubscriberJoined() == .none)
    }

    @Test("which subscriptions count as alert subscriptions")
    func alertSubscriptions() {
        for p in ["", "a", "alert", "alert.", "alert.raised.", "alert.resolved.telephone-only"] {
            #expect(SubscriptionTracker.coversAlerts(Array(p.utf8)), "\(p)")
        }
        for p in ["invalid-event", "stream.gap", "alerts", "b"] {
            #expect(!SubscriptionTracker.coversAlerts(Array(p.utf8)), "\(p)")
        }
    }

    @Test("journal requests: fetch <after> [<limit>]")
    func journalRequests() {
        #expect(JournalRequest(["fetch", "5"]) == JournalRequest(["fetch", "5", "x"].dropLast().map { $0 }))
        #expect(JournalRequest(["fetch", "5", "7"])?.limit == 7)
        #expect(JournalRequest(["fetch", "5", "18446744073709551615"])?.limit == Int.max)
        #expect(JournalRequest(["fetch", "-1"]) == nil)
        #expect(JournalRequest(["get", "1"]) == nil)
        #expect(JournalRequest(["fetch"]) == nil)
        #expect(JournalRequest(["fetch", "1", "many"]) == nil)
    }

    @Test("journal requests the protocol does not allow are refused saying why: a limit of 0 or below, a sign, extra frames")
    func journalRequestsRefused() {
        let refused: [([String], String)] = [
            (["fetch", "0", "0"], "limit must be ASCII decimal digits from 1 to 18446744073709551615 (got \"0\")"),
            (["fetch", "0", "-5"], "limit must be ASCII decimal digits from 1 to 18446744073709551615 (got \"-5\")"),
            (["fetch", "0", "+5"], "limit must be ASCII decimal digits from 1 to 18446744073709551615 (got \"+5\")"),
            (["fetch", "0", "18446744073709551616"], "limit must be ASCII decimal digits from 1 to 18446744073709551615 (got \"18446744073709551616\")"),
            (["fetch", "+1"], "afterSequence must be ASCII decimal digits"),
            (["fetch", " 1"], "afterSequence must be ASCII decimal digits"),
            (["fetch", "18446744073709551616"], "afterSequence must be ASCII decimal digits"),
            (["fetch", "1", "2", "3"], "expected: fetch <afterSequence> [<limit>] (got 4 frames"),
        ]
        for (words, reason) in refused {
            guard case .failure(let problem) = JournalRequest.parse(words) else {
                Issue.record("\(words) accepted")
                continue
            }
            #expect(problem.description.contains(reason), "\(words): \(problem)")
        }
        #expect(JournalRequest.parse(["fetch", "18446744073709551615", "1"]) == .success(JournalRequest(after: .max, limit: 1)))
    }
}
