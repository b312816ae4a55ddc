import ContactWatchStore
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// Serves the alert journal (README, "Journal") on its own thread, with its own ROUTER socket and its own read-only
/// store connection, so catch-up requests never slow event processing (alerts.md, *Delivery guarantees*).
///
/// Protocol: `fetch <afterSequence> [<limit>]` → `alerts`, the latest committed alertSequence, then the alert bodies
/// after `afterSequence` in order: at most `min(limit, journal.maxReplyAlerts)` of them and at most
/// `journal.maxReplyBytes` bytes of bodies, but always one when there is one. Anything else → `error`, a sentence.
///
/// Memory is bounded whatever a client does: requests queue at most `receiveQueueRequests` deep, replies to one
/// client at most `sendQueueReplies` deep; a reply to a client whose queue is full (it is not reading) or who has
/// gone is dropped and counted, never queued.
///
/// Threads: `start` returns once the thread has bound its socket (or failed to); `stop` from any thread.
final class JournalServer: @unchecked Sendable {
    struct Limits: Sendable {
        var maxReplyAlerts = 1000
        var maxReplyBytes = 1 << 20
    }

    /// Replies queued per client (ROUTER send high-water mark).
    static let sendQueueReplies: Int32 = 4
    /// Requests queued per client (ROUTER receive high-water mark).
    static let receiveQueueRequests: Int32 = 64

    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = DispatchSemaphore(value: 0)
    private let startResult = Mutex<DaemonError?>(nil)

    private init() {}

    /// Starts the journal thread: it opens the store read-only, binds `endpoint`, then serves until `stop()`.
    static func start(endpoint: String, storePath: String, context: ZMQContext, setup: SocketSetup, limits: Limits,
                      counters: RuntimeCounters, logger: Logger) throws(DaemonError) -> JournalServer {
        let server = JournalServer()
        let thread = Thread {
            ThreadPlacement.name(ThreadPlacement.journal)
            server.run(endpoint: endpoint, storePath: storePath, context: context, setup: setup, limits: limits,
                       counters: counters, logger: logger)
        }
        thread.name = ThreadPlacement.journal
        thread.start()
        server.started.wait()
        if let error = server.startResult.withLock({ $0 }) {
            server.finished.wait()
            throw error
        }
        return server
    }

    /// Stops the thread and waits until it has closed its socket and connection. Idempotent.
    func stop() {
        if stopRequested.exchange(true, ordering: .acquiringAndReleasing) { return }
        finished.wait()
    }

    private func run(endpoint: String, storePath: String, context: ZMQContext, setup: SocketSetup, limits: Limits,
                     counters: RuntimeCounters, logger: Logger) {
        defer { finished.signal() }
        let reader: JournalReader
        let router: ZMQSocket
        do {
            reader = try JournalReader(path: storePath)
        } catch {
            startResult.withLock { $0 = DaemonError.store(error, while: "cannot open the journal") }
            started.signal()
            return
        }
        defer { reader.close() }
        do {
            router = try context.socket(.router)
            do {
                try setup.configure(router, as: .journal)
                try router.bind(endpoint)
            } catch {
                router.close()
                throw error
            }
        } catch {
            startResult.withLock { $0 = DaemonError.endpoint("cannot bind the journal endpoint \(endpoint): \(error)") }
            started.signal()
            return
        }
        defer { router.close() }
        started.signal()
        let poller = ZMQPoller()
        poller.add(router)
        var blocked = BlockedClients()
        let failureLines = LogLimiter()
        while !stopRequested.load(ordering: .acquiring) {
            guard let ready = try? poller.poll(timeoutMilliseconds: 100), ready.isReadable(0) else { continue }
            // A bounded turn, then the stop flag is looked at again.
            for _ in 0..<64 {
                guard let request = try? router.receiveCopy(timeoutMilliseconds: 0) else { break }
                counters.journalRequests.add(1, ordering: .relaxed)
                guard let client = request.first else { continue }
                let now = ContinuousClock.now
                // A client whose last reply could not be queued is not read from the store again for a while: its
                // requests cost nothing until it reads.
                if blocked.isBlocked(client, at: now) {
                    counters.journalRepliesDropped.add(1, ordering: .relaxed)
                    continue
                }
                guard let reply = Self.reply(to: request, reader: reader, limits: limits, logger: logger,
                                             failureLines: failureLines) else { continue }
                var sent = (try? router.send(reply, dontWait: true)) ?? false
                if !sent {
                    // The refusal may rest on libzmq's stale count of what this client has read (its reports are
                    // commands the socket had not processed yet, as when requests arrive back to back): with them
                    // processed, a client that reads its replies is served; one that does not is still refused.
                    try? router.processPendingCommands()
                    sent = (try? router.send(reply, dontWait: true)) ?? false
                }
                if !sent {
                    counters.journalRepliesDropped.add(1, ordering: .relaxed)
                    blocked.block(client, at: now)
                }
            }
        }
    }

    /// Clients (by routing id) whose replies could not be queued recently, with when they may be served again.
    struct BlockedClients {
        static let backoff = Duration.milliseconds(200)
        static let capacity = 1024
        private var until: [[UInt8]: ContinuousClock.Instant] = [:]

        func isBlocked(_ client: [UInt8], at now: ContinuousClock.Instant) -> Bool {
            guard let t = until[client] else { return false }
            return now < t
        }

        mutating func block(_ client: [UInt8], at now: ContinuousClock.Instant) {
            if until.count >= Self.capacity { until = until.filter { $0.value > now } }
            if until.count < Self.capacity { until[client] = now + Self.backoff }
        }
    }

    /// The reply to one request (routing id first), or nil for a message that has no routing id and request. A journal
    /// that cannot be read is logged through `failureLines` (10 at once, then one every 6 s with `notLogged=N`): every
    /// request a client sends then fails, and each wrote a warning at whatever rate the clients asked.
    static func reply(to frames: [[UInt8]], reader: JournalReader, limits: Limits, logger: Logger,
                      failureLines: LogLimiter) -> [[UInt8]]? {
        guard frames.count >= 2 else { return nil }
        var reply: [[UInt8]] = [frames[0]]
        var k = 1
        if frames[k].isEmpty {
            reply.append([]) // a REQ peer's envelope delimiter
            k += 1
        }
        let words = frames[k...].map { String(decoding: $0, as: UTF8.self) }
        guard let request = JournalRequest(words) else {
            reply.append(Array("error".utf8))
            reply.append(Array("expected: fetch <afterSequence> [<limit>]".utf8))
            return reply
        }
        do {
            let page = try reader.page(after: request.after, maxAlerts: min(request.limit ?? limits.maxReplyAlerts,
                                                                            limits.maxReplyAlerts),
                                       maxBytes: limits.maxReplyBytes)
            reply.append(Array("alerts".utf8))
            reply.append(Array(String(page.latest).utf8))
            for e in page.entries { reply.append(e.body) }
        } catch {
            if let notLogged = failureLines.admit("journal") {
                logger.warning("cannot read the journal: \(error)", metadata: notLogged > 0 ? ["notLogged": "\(notLogged)"] : [:])
            }
            reply.append(Array("error".utf8))
            reply.append(Array("cannot read the journal: \(error)".utf8))
        }
        return reply
    }
}

/// `fetch <afterSequence> [<limit>]`.
struct JournalRequest: Equatable {
    var after: UInt64
    var limit: Int?

    init?(_ words: [String]) {
        guard words.count >= 2, words[0] == "fetch", let after = UInt64(words[1]) else { return nil }
        self.after = after
        if words.count >= 3 {
            guard let n = Int(words[2]) else { return nil }
            limit = max(1, n)
        }
    }
}
