import ContactWatchEngine
import ContactWatchStore
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The processing loop. It runs on one dedicated thread that owns every socket (input SUB, alert PUB, journal
/// ROUTER, input monitor): events in → engine → batched commit (state + alert journal in one transaction) →
/// publish after commit. Nothing on the per-event path allocates a class, logs, or waits on the disk.
final class Pipeline: @unchecked Sendable {
    // Set before the thread starts, read-only afterwards.
    let config: DaemonConfiguration
    let logger: Logger
    let context: ZMQContext
    // Owned by the loop thread once it runs.
    private let engine: Engine
    private let store: StateStore
    private var unpublished: [JournalEntry]
    private let stopRequested = Atomic<Bool>(false)
    /// Counts the loop keeps besides the engine's (read after the loop ends).
    private(set) var disconnections = 0
    private(set) var publishFailures = 0
    private(set) var commits = 0
    private(set) var journalRequests = 0
    /// Subscriptions currently held on the alert socket.
    private(set) var subscribers = 0

    init(config: DaemonConfiguration, logger: Logger, context: ZMQContext, engine: Engine, store: StateStore,
         unpublished: [JournalEntry]) {
        self.config = config
        self.logger = logger
        self.context = context
        self.engine = engine
        self.store = store
        self.unpublished = unpublished
    }

    /// Asks the loop to stop after the message in hand; callable from any thread.
    func requestStop() { stopRequested.store(true, ordering: .releasing) }

    var counters: EngineCounters { engine.counters }

    static func wallClockMillis() -> Millis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Millis(ts.tv_sec) * 1000 + Millis(ts.tv_nsec / 1_000_000)
    }

    /// Runs the whole life of the sockets on the calling thread. `ready` is called once every socket is bound or
    /// connected and subscribed, and alerts left unpublished by a crash have been published.
    func run(ready: () -> Void) throws(DaemonError) {
        // Sockets are created, used and closed on this thread only.
        let input: ZMQSocket
        let output: ZMQSocket
        var journal: ZMQSocket? = nil
        do {
            input = try context.socket(.sub)
            try input.setReceiveHighWaterMark(Int32(clamping: config.receiveHighWaterMark))
            try input.setMaxMessageSize(Int64(config.engine.maxMessageBytes))
            for prefix in config.subscribe { try input.subscribe(prefix) }
            // XPUB: a PUB that also tells us when consumers subscribe (logged, so operators and tests can see it).
            output = try context.socket(.xpub)
            try output.setSendHighWaterMark(Int32(clamping: config.sendHighWaterMark))
            try output.setXPubVerbose(true)
        } catch {
            throw DaemonError.internal("cannot create sockets: \(error)")
        }
        defer {
            input.close()
            output.close()
            journal?.close()
        }
        do {
            for endpoint in config.inputs {
                if config.inputBind { try input.bind(endpoint) } else { try input.connect(endpoint) }
            }
        } catch {
            throw DaemonError.endpoint("cannot \(config.inputBind ? "bind" : "connect") the input endpoint: \(error)")
        }
        do { try output.bind(config.output) } catch {
            throw DaemonError.endpoint("cannot bind the output endpoint \(config.output): \(error)")
        }
        if let endpoint = config.journal {
            do {
                let router = try context.socket(.router)
                journal = router
                try router.bind(endpoint)
            } catch {
                throw DaemonError.endpoint("cannot bind the journal endpoint \(endpoint): \(error)")
            }
        }
        let monitor = try? input.startMonitor()
        defer { monitor?.close() }

        // Alerts committed before a crash but never published go out first, with their ids and sequences.
        var publishedThrough: UInt64 = 0
        for entry in unpublished {
            entry.topic.withUnsafeBytes { t in
                entry.body.withUnsafeBytes { b in
                    if (try? output.send(buffers: [t, b], dontWait: true)) != true { publishFailures += 1 }
                }
            }
            publishedThrough = entry.alertSequence
        }
        if !unpublished.isEmpty {
            logger.notice("published \(unpublished.count) alerts committed before the last stop but not yet published")
            do { try store.markPublished(through: publishedThrough) } catch {
                throw DaemonError.store("cannot write the state store: \(error)")
            }
            unpublished = []
        }

        let poller = ZMQPoller()
        let inputIndex = poller.add(input)
        let outputIndex = poller.add(output)
        let journalIndex = journal.map { poller.add($0) } ?? -1
        let monitorIndex = monitor.map { poller.add($0) } ?? -1
        ready()

        var outbox = Outbox()
        var pendingEvents = 0
        var batchStarted = ContinuousClock.now
        let clock = ContinuousClock()
        let commitInterval = Duration.milliseconds(config.commitIntervalMillis)
        let watchdogInterval = Systemd.watchdogMicroseconds().map { Duration.microseconds(Int64($0 / 2)) }
        var lastWatchdog = clock.now
        var lastPrune = clock.now
        var committedSequence = engine.state.alertSequence
        let drainLimit = max(1, min(config.commitMaxEvents, 4096))
        // Batches handed to the writer thread, oldest first, with the messages to publish once each is durable.
        let writer = CommitWriter(store: store)
        var writerClosed = false
        defer { if !writerClosed { writer.close() } }
        var inFlight: [(outbox: Outbox, sequence: UInt64)] = []
        var spare: [Outbox] = []
        var publishedBatches = 0
        let traceMessages = logger.logLevel <= .debug
        // A batch waits for a free writer up to this size; past it, the loop waits for the disk.
        let hardLimit = config.commitMaxEvents * 50

        /// Hands the events processed since the last batch to the writer.
        func submit() {
            let changes = engine.takeChanges()
            if pendingEvents == 0 && outbox.isEmpty && changes.isEmpty { return }
            let entries = StateStore.journalEntries(from: outbox)
            writer.submit(StateStore.prepare(changes: changes, state: engine.state, journal: entries,
                                             publishedThrough: publishedThrough, now: Pipeline.wallClockMillis()))
            commits += 1
            inFlight.append((outbox, engine.state.alertSequence))
            outbox = spare.popLast() ?? Outbox()
            pendingEvents = 0
        }

        /// Publishes every batch the writer has made durable; a PUB socket never blocks.
        func publishDurable() throws(DaemonError) {
            if let error = writer.error { throw DaemonError.store("cannot write the state store: \(error)") }
            let done = writer.completedCount
            while publishedBatches < done, !inFlight.isEmpty {
                var batch = inFlight.removeFirst()
                batch.outbox.forEach { entry, topic, body in
                    if (try? output.send(buffers: [topic, body], dontWait: true)) != true { publishFailures += 1 }
                    if entry.alertSequence > 0 { publishedThrough = entry.alertSequence }
                    // Only with --log-level debug (or trace): one line per published message.
                    if traceMessages { logPublished(entry.kind, topic: topic, body: body) }
                }
                committedSequence = batch.sequence
                batch.outbox.removeAll()
                spare.append(batch.outbox)
                publishedBatches += 1
            }
            for e in engine.takeLogEvents() {
                var metadata: Logger.Metadata = [:]
                if let crn = e.crn { metadata["crn"] = "\(crn)" }
                if let id = e.contactId { metadata["contactId"] = "\(id)" }
                logger.info("\(e.message)", metadata: metadata)
            }
        }

        /// Starts a batch when it is due and the writer is free (or the batch has grown too large to wait).
        func submitIfDue() throws(DaemonError) {
            guard pendingEvents > 0 else { return }
            let due = pendingEvents >= config.commitMaxEvents || clock.now - batchStarted >= commitInterval
            guard due else { return }
            if inFlight.isEmpty || pendingEvents >= hardLimit {
                while inFlight.count >= 2 {
                    try publishDurable()
                    if inFlight.count >= 2 { Thread.sleep(forTimeInterval: 0.0005) }
                }
                submit()
            }
        }

        while !stopRequested.load(ordering: .acquiring) {
            var timeout = 100
            if !inFlight.isEmpty {
                timeout = 1
            } else if pendingEvents > 0 {
                let left = commitInterval - (clock.now - batchStarted)
                timeout = max(0, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            }
            let result: ZMQPollResult
            do { result = try poller.poll(timeoutMilliseconds: timeout) } catch {
                if ZMQError.isInterrupted(error) { continue }
                throw DaemonError.internal("poll failed: \(error)")
            }
            if result.isReadable(inputIndex) {
                for _ in 0..<drainLimit {
                    let now = Pipeline.wallClockMillis()
                    let got: Bool?
                    do {
                        got = try input.receiveMessage(timeoutMilliseconds: 0) { frames -> Bool in
                            frames.withUnsafeBytes(at: frames.count - 1) { body in
                                if frames.count >= 2 {
                                    frames.withUnsafeBytes(at: 0) { topic in
                                        engine.process(frameCount: frames.count, topic: topic, body: body, now: now, into: &outbox)
                                    }
                                } else {
                                    engine.process(frameCount: 1, topic: nil, body: body, now: now, into: &outbox)
                                }
                            }
                            return true
                        }
                    } catch {
                        if ZMQError.isInterrupted(error) { break }
                        throw DaemonError.internal("receive failed: \(error)")
                    }
                    guard got != nil else { break }
                    if pendingEvents == 0 { batchStarted = clock.now }
                    pendingEvents += 1
                    if pendingEvents >= config.commitMaxEvents { try submitIfDue() }
                }
            }
            try publishDurable()
            try submitIfDue()
            if result.isReadable(outputIndex) { readSubscriptions(output) }
            if journalIndex >= 0, result.isReadable(journalIndex), let router = journal {
                try serveJournal(router, latest: committedSequence)
            }
            if monitorIndex >= 0, result.isReadable(monitorIndex), let monitor {
                if let counts = try? monitor.drain() { disconnections += counts.disconnected + counts.handshakeFailed }
            }
            let now = clock.now
            if let interval = watchdogInterval, now - lastWatchdog >= interval {
                Systemd.notify("WATCHDOG=1")
                lastWatchdog = now
            }
            if now - lastPrune >= .seconds(3600) {
                lastPrune = now
                pruneJournal()
            }
        }
        // Stop: finish what is in hand, make it durable, publish it, record that it was published.
        submit()
        writer.close()
        writerClosed = true
        try publishDurable()
        do { try store.markPublished(through: publishedThrough) } catch {
            throw DaemonError.store("cannot write the state store: \(error)")
        }
    }

    /// Logs one published message at debug level, with the CRN and contactId it concerns as metadata. Off the
    /// normal path: only called when the log level is debug or trace.
    private func logPublished(_ kind: MessageKind, topic: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) {
        guard let message = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return }
        var metadata: Logger.Metadata = ["topic": "\(String(decoding: topic, as: UTF8.self))"]
        switch kind {
        case .alertRaised, .alertResolved:
            let subject = message["subject"] as? [String: Any]
            if subject?["type"] as? String == "CRN", let crn = subject?["value"] as? String { metadata["crn"] = "\(crn)" }
            if let id = (message["evidence"] as? [String: Any])?["triggerContactId"] { metadata["contactId"] = "\(id)" }
            metadata["alertSequence"] = "\(message["alertSequence"] ?? "")"
            logger.debug("\(message["reason"] as? String ?? "alert")", metadata: metadata)
        case .invalidEvent:
            if let payload = message["payload"] as? String,
               let event = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] {
                let ids = (event["personReference"] as? [String: Any])?["identifiers"] as? [[String: Any]]
                if let crn = ids?.first(where: { $0["type"] as? String == "CRN" })?["value"] as? String { metadata["crn"] = "\(crn)" }
                if let id = (event["additionalInformation"] as? [String: Any])?["contactId"] { metadata["contactId"] = "\(id)" }
            }
            metadata["field"] = "\(message["field"] as? String ?? "-")"
            logger.debug("invalid event: \(message["reason"] as? String ?? "")", metadata: metadata)
        case .streamGap:
            logger.debug("stream gap: \(message["missing"] ?? "?") messages missing from \(message["publisherId"] ?? "?")",
                         metadata: metadata)
        }
    }

    /// Reads the XPUB socket's subscription messages: byte 1 = subscribe, 0 = unsubscribe, then the prefix.
    private func readSubscriptions(_ output: ZMQSocket) {
        while let frames = try? output.receiveCopy(timeoutMilliseconds: 0), let first = frames.first, !first.isEmpty {
            let prefix = String(decoding: first.dropFirst(), as: UTF8.self)
            if first[0] == 1 {
                subscribers += 1
                logger.info("subscriber joined", metadata: ["prefix": "\(prefix)"])
            } else {
                subscribers -= 1
                logger.info("subscriber left", metadata: ["prefix": "\(prefix)"])
            }
        }
    }

    private func pruneJournal() {
        let cutoff = Pipeline.wallClockMillis() - Millis(config.journalRetentionDays) * millisPerDay
        do {
            let n = try store.pruneJournal(recordedBefore: cutoff)
            if n > 0 { logger.info("pruned \(n) journal entries older than \(config.journalRetentionDays) days") }
        } catch {
            logger.warning("journal pruning failed: \(error)")
        }
    }

    /// Answers journal requests (README, "Journal"): `fetch`, after-sequence, optional limit →
    /// `alerts`, latest committed sequence, then the alert bodies.
    private func serveJournal(_ router: ZMQSocket, latest: UInt64) throws(DaemonError) {
        while true {
            let request: [[UInt8]]?
            do { request = try router.receiveCopy(timeoutMilliseconds: 0) } catch {
                if ZMQError.isInterrupted(error) { return }
                throw DaemonError.internal("journal receive failed: \(error)")
            }
            guard let frames = request, frames.count >= 2 else { return }
            journalRequests += 1
            var reply: [[UInt8]] = [frames[0]]
            var k = 1
            if frames[k].isEmpty { reply.append([]); k += 1 } // a REQ peer's envelope delimiter
            let words = frames[k...].map { String(decoding: $0, as: UTF8.self) }
            if words.count >= 2, words[0] == "fetch", let after = UInt64(words[1]),
               words.count < 3 || Int(words[2]) != nil {
                let limit = min(max(words.count >= 3 ? Int(words[2])! : 1000, 1), 10_000)
                do {
                    let entries = try store.journal(after: after, limit: limit)
                    reply.append(Array("alerts".utf8))
                    reply.append(Array(String(latest).utf8))
                    for e in entries { reply.append(e.body) }
                } catch {
                    reply.append(Array("error".utf8))
                    reply.append(Array("cannot read the journal: \(error)".utf8))
                }
            } else {
                reply.append(Array("error".utf8))
                reply.append(Array("expected: fetch <afterSequence> [<limit>]".utf8))
            }
            _ = try? router.send(reply, dontWait: true)
        }
    }
}
