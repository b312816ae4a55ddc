import ContactWatchCommon
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
/// gone is dropped and counted, never queued. Many clients share `ReplyBudget`: the more clients asked recently, the
/// smaller each reply's bodies (never below `ReplyBudget.floorBytes`, always one alert), so that many clients that
/// never read hold a few budgets' worth of replies, not `sendQueueReplies` full replies each; when clients go away,
/// the heap their queues took is given back (`HeapTrim`), also when they disconnect after that (`FreedHeapWatch`).
///
/// A poll or receive of the socket that fails is not ignored (`SocketFailures`): a signal's EINTR is retried at once;
/// any other error is logged (rate-limited) and counted, and retried after 100 ms; a socket that keeps failing for 10 s,
/// or that is gone (ETERM, ENOTSOCK, EFAULT), makes the journal unusable: `failure` is set, logged at `critical`, and
/// the processing loop stops the daemon (commit and publish what is in hand, exit 70, restarted by the unit). A
/// journal that is silently deaf would leave every consumer that catches up from it waiting for ever.
///
/// Threads: `start` returns once the thread has bound its socket (or failed to); `stop` and `failure` from any
/// thread.
final class JournalServer: @unchecked Sendable {
    struct Limits: Sendable {
        var maxReplyAlerts = 1000
        var maxReplyBytes = 1 << 20
    }

    /// Replies queued per client (ROUTER send high-water mark).
    static let sendQueueReplies: Int32 = 4
    /// Requests queued per client (ROUTER receive high-water mark).
    static let receiveQueueRequests: Int32 = 64
    /// The most frames a valid request has: the client's routing id, a REQ client's empty delimiter, `fetch`, the
    /// sequence and the limit. A message of more is malformed; only its first `maxRequestFrames + 1` are copied.
    static let maxRequestFrames = 5
    /// The read and socket failures held back by their rate limits, once each flood is over (`LogLimiter`).
    static func sayHeldBack(failureLines: LogLimiter, socketLines: LogLimiter, logger: Logger, stopping: Bool = false) {
        failureLines.sayHeldBack(to: logger, level: .warning, stopping: stopping) { _ in "journal read failures" }
        socketLines.sayHeldBack(to: logger, level: .error, stopping: stopping) { _ in "journal socket failures" }
    }

    /// The `error` reply's reason when the journal cannot be read (the whole error is logged, rate-limited).
    static let readFailureReply = "cannot read the journal (the daemon's log says why)"

    private let stopRequested = Atomic<Bool>(false)
    /// Signalled by `stop`: ends a backoff wait at once.
    private let wake = DispatchSemaphore(value: 0)
    private let failed = Atomic<Bool>(false)
    private let failureError = Mutex<DaemonError?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    private let started = DispatchSemaphore(value: 0)
    private let startResult = Mutex<DaemonError?>(nil)
    private let bound = Mutex<String?>(nil)
    /// The endpoint the ROUTER socket bound (`ZMQ_LAST_ENDPOINT`: the real port of a `:0` or `:*` bind).
    var boundEndpoint: String? { bound.withLock { $0 } }

    private init() {}

    /// Starts the journal thread: it opens the store read-only, binds `endpoint`, then serves until `stop()`.
    static func start(endpoint: String, storePath: String, context: ZMQContext, setup: SocketSetup, limits: Limits,
                      counters: RuntimeCounters, logger: Logger) throws(DaemonError) -> JournalServer {
        let server = JournalServer()
        // A thread the system refuses is said (SystemThread): `Thread.start()` said nothing, and the wait below never
        // ended.
        do {
            try SystemThread.start(name: ThreadPlacement.journal) {
                server.run(endpoint: endpoint, storePath: storePath, context: context, setup: setup, limits: limits,
                           counters: counters, logger: logger)
            }
        } catch {
            throw DaemonError.threadRefused(error, while: "cannot serve the journal")
        }
        server.started.wait()
        if let error = server.startResult.withLock({ $0 }) {
            server.finished.wait()
            throw error
        }
        return server
    }

    /// Asks the thread to stop, without waiting: it takes no request after this, and a read waiting for a lock another
    /// process holds ends now. The daemon's stop asks at once, so the journal's last read overlaps the loop's finish:
    /// asked only after it, a stop with a store lock held by another process took 19.7 s instead of 10 (a runtime
    /// reviewer, session 50). Any thread; idempotent.
    func requestStop() {
        if stopRequested.exchange(true, ordering: .acquiringAndReleasing) { return }
        openReader.withLock { $0 }?.endLockWaits(within: 0)
        wake.signal()
    }

    /// Stops the thread and waits until it has closed its socket and connection. Idempotent; one thread.
    func stop() {
        requestStop()
        if joined.exchange(true, ordering: .acquiringAndReleasing) { return }
        finished.wait()
    }

    private let joined = Atomic<Bool>(false)
    /// The thread's store connection, for `requestStop` from another thread.
    private let openReader = Mutex<JournalReader?>(nil)

    /// Set once the journal socket is unusable (the thread has then ended): the daemon must stop (exit 70). One
    /// atomic load while nothing failed (the processing loop asks every turn).
    var failure: DaemonError? {
        guard failed.load(ordering: .acquiring) else { return nil }
        return failureError.withLock { $0 }
    }

    /// The daemon logs `error` at `critical` as it exits (`Daemon.run`).
    private func fail(_ error: DaemonError) {
        failureError.withLock { $0 = error }
        failed.store(true, ordering: .releasing)
    }

    private func run(endpoint: String, storePath: String, context: ZMQContext, setup: SocketSetup, limits: Limits,
                     counters: RuntimeCounters, logger: Logger) {
        defer { finished.signal() }
        let reader: JournalReader
        let router: ZMQSocket
        do {
            reader = try JournalReader(path: storePath)
            openReader.withLock { $0 = reader }
            // A stop asked before the reader was known.
            if stopRequested.load(ordering: .acquiring) { reader.endLockWaits(within: 0) }
        } catch {
            startResult.withLock { $0 = DaemonError.store(error, while: "cannot open the journal") }
            started.signal()
            return
        }
        defer { reader.close() }
        // Without CURVE nobody else monitors the journal socket: its failed accepts and handshakes are read here.
        var monitor: ZMQMonitor? = nil
        do {
            router = try context.socket(.router)
            do {
                try setup.configure(router, as: .journal)
                if !setup.security.isCurve { monitor = try router.startMonitor(events: ZMQMonitor.unsecuredServerEvents) }
                try router.bind(endpoint)
                let last = try router.lastEndpoint
                bound.withLock { $0 = last }
            } catch {
                monitor?.close()
                router.close()
                throw error
            }
        } catch {
            startResult.withLock { $0 = DaemonError.endpoint("cannot bind the journal endpoint \(endpoint): \(error)"
                + EndpointSyntax.bindFailureHint(endpoint)) }
            started.signal()
            return
        }
        defer {
            monitor?.close()
            router.close()
        }
        started.signal()
        let poller = ZMQPoller()
        poller.add(router)
        if let monitor { poller.add(monitor) }
        var blocked = BlockedClients()
        var budget = ReplyBudget(total: ReplyBudget.totalReplies * limits.maxReplyBytes)
        var trim = HeapTrim()
        let failureLines = LogLimiter()
        var failures = SocketFailures()
        let socketLines = LogLimiter()
        var heldBackCheck = Throttle(every: .seconds(1))
        // However the loop ends (the stop, or the socket given up), what the limits still hold back is said.
        defer { Self.sayHeldBack(failureLines: failureLines, socketLines: socketLines, logger: logger, stopping: true) }
        /// A failed poll or receive: retried, after a backoff, or the end of the journal (false).
        func survive(_ error: any Error, _ operation: String) -> Bool {
            let code = (error as? ZMQError)?.code ?? EINVAL
            let action = failures.failed(code: code, at: ContinuousClock.now)
            if action == .retryNow { return true }
            counters.journalSocketErrors.add(1, ordering: .relaxed)
            if action == .giveUp {
                let why = failures.isGone(code) ? "the socket is gone" : "it has failed for \(SocketFailures.giveUpAfter)"
                fail(DaemonError(.internal, "the journal socket (\(endpoint)) is unusable: \(operation): \(error); "
                    + "\(why): stopping so that a restart binds it anew"))
                return false
            }
            if let notLogged = socketLines.admit("socket") {
                var metadata: Logger.Metadata = ["endpoint": "\(endpoint)"]
                if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
                logger.error("the journal socket failed, retrying: \(operation): \(error)", metadata: metadata)
            }
            _ = wake.wait(timeout: .now() + .milliseconds(SocketFailures.backoffMillis))
            return true
        }
        while !stopRequested.load(ordering: .acquiring) {
            if budget.expire(at: ContinuousClock.now) > 0 { trim.request() }
            trim.run(at: ContinuousClock.now)
            if heldBackCheck.allows(at: ContinuousClock.now) {
                Self.sayHeldBack(failureLines: failureLines, socketLines: socketLines, logger: logger)
            }
            let ready: ZMQPollResult
            do { ready = try poller.poll(timeoutMilliseconds: 100) } catch {
                if survive(error, "zmq_poll") { continue } else { return }
            }
            failures.succeeded()
            if let monitor, ready.isReadable(1), let events = try? monitor.events() {
                setup.security.reportUnsecuredServerEvents(events, on: .journal, endpoint: endpoint)
            }
            guard ready.isReadable(0) else { continue }
            // A bounded turn (the trim, the budget's expiry and the held-back lines come between turns); the stop
            // flag is looked at before each request: looked at once a turn, a stop waited for up to 64 full replies
            // to be read and queued — 17.6 s with six clients paging a journal of 17,720 alerts at the largest
            // reply limits, past the unit's TimeoutStopSec (a bug hunter, session 46).
            for _ in 0..<64 {
                if stopRequested.load(ordering: .acquiring) { break }
                // libzmq has the whole message before the first frame is read, however many frames it has (no option
                // limits that); the frames past what a request can hold are received and dropped one by one, never
                // copied (a million empty frames were a million array entries, and as many strings), and the heap
                // they took is given back afterwards, as after a message of many frames on the input.
                let received: (frames: [[UInt8]], count: Int)?
                do {
                    received = try router.receiveMessage(timeoutMilliseconds: 0) { frames in
                        ((0..<min(frames.count, Self.maxRequestFrames + 1)).map { frames.bytes(at: $0) }, frames.count)
                    }
                } catch {
                    if survive(error, "zmq_msg_recv") { break } else { return }
                }
                guard let (request, frameCount) = received else { break }
                if frameCount > Self.maxRequestFrames { trim.request() }
                counters.journalRequests.add(1, ordering: .relaxed)
                guard let client = request.first else { continue }
                let now = ContinuousClock.now
                // A client whose last reply could not be queued is not read from the store again for a while: its
                // requests cost nothing until it reads.
                if blocked.isBlocked(client, at: now) {
                    counters.journalRepliesDropped.add(1, ordering: .relaxed)
                    continue
                }
                var shared = limits
                shared.maxReplyBytes = budget.replyBytes(for: client, at: now, limit: limits.maxReplyBytes)
                guard let reply = Self.reply(to: request, frameCount: frameCount, reader: reader, limits: shared,
                                             logger: logger, failureLines: failureLines, counters: counters) else { continue }
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

    /// What the journal thread does about a failed poll or receive of its socket: EINTR (a signal) is retried at once;
    /// a socket that is gone (ETERM: the context terminated; ENOTSOCK, EFAULT) is given up at once; anything else is
    /// retried after `backoffMillis` until it has failed without a success between for `giveUpAfter`.
    struct SocketFailures {
        enum Action: Equatable { case retryNow, retryAfterBackoff, giveUp }
        static let backoffMillis = 100
        static let giveUpAfter = Duration.seconds(10)
        private(set) var failingSince: ContinuousClock.Instant? = nil

        func isGone(_ code: Int32) -> Bool { code == ZMQError.ETERM || code == ZMQError.ENOTSOCK || code == EFAULT }

        mutating func failed(code: Int32, at now: ContinuousClock.Instant) -> Action {
            if code == EINTR { return .retryNow }
            if isGone(code) { return .giveUp }
            let since = failingSince ?? now
            failingSince = since
            return now - since >= Self.giveUpAfter ? .giveUp : .retryAfterBackoff
        }

        mutating func succeeded() { failingSince = nil }
    }

    /// The bytes of bodies one reply may hold, shared among the clients (routing ids) that asked within `window`:
    /// `total / (clients × sendQueueReplies)`, at most the configured `journal.maxReplyBytes` and at least
    /// `floorBytes` (a reply still holds one alert when that is larger). A client that sends requests and never reads
    /// holds `sendQueueReplies` replies in the daemon's memory until it goes; with every client's replies sized for the
    /// clients asking at that time, n such clients hold about `total × ln n` (the k-th got `total / k`), not
    /// `n × sendQueueReplies × maxReplyBytes`: 200 of them took 490 MB of the daemon's memory at the default 1 MiB.
    /// `totalReplies` full replies' worth is shared, so up to 4 clients catching up at once page at full size.
    struct ReplyBudget {
        static let window = Duration.seconds(10)
        static let totalReplies = 16
        static let floorBytes = 16 << 10
        /// Routing ids followed at most; past it, each new client counts as one more without an entry.
        static let capacity = 4096
        let total: Int
        private var askedAt: [[UInt8]: ContinuousClock.Instant] = [:]
        private var untracked = 0
        private var expiredAt: ContinuousClock.Instant? = nil

        init(total: Int) { self.total = total }

        /// The clients that asked within `window` (as of the last `expire`), this one included.
        var clients: Int { askedAt.count + untracked }

        mutating func replyBytes(for client: [UInt8], at now: ContinuousClock.Instant, limit: Int) -> Int {
            if askedAt.count < Self.capacity || askedAt[client] != nil {
                askedAt[client] = now
            } else {
                untracked += 1
            }
            let share = total / max(1, clients * Int(JournalServer.sendQueueReplies))
            return min(limit, max(Self.floorBytes, share))
        }

        /// Forgets the clients that have not asked within `window` (looked at once a second); returns how many went.
        mutating func expire(at now: ContinuousClock.Instant) -> Int {
            if let last = expiredAt, now - last < .seconds(1) { return 0 }
            expiredAt = now
            let before = clients
            askedAt = askedAt.filter { now - $0.value < Self.window }
            untracked = 0
            return before - clients
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
    ///
    /// `frames` may be the first frames only of a message of `frameCount` (the journal thread copies at most
    /// `maxRequestFrames + 1`); such a message is refused as having too many frames.
    /// `counters`: the requests refused as malformed (`journalRequestsRefused`) and those the journal could not be read
    /// for (`journalReadFailures`) are counted there; both are answered `error`, and only the second is logged.
    static func reply(to frames: [[UInt8]], frameCount: Int? = nil, reader: JournalReader, limits: Limits,
                      logger: Logger, failureLines: LogLimiter, counters: RuntimeCounters? = nil) -> [[UInt8]]? {
        guard frames.count >= 2 else { return nil }
        var reply: [[UInt8]] = [frames[0]]
        var k = 1
        if frames[k].isEmpty {
            reply.append([]) // a REQ peer's envelope delimiter
            k += 1
        }
        let words = frames[k...].map { String(decoding: $0, as: UTF8.self) }
        let request: JournalRequest
        switch JournalRequest.parse(words, wordCount: (frameCount ?? frames.count) - k) {
        case .success(let r): request = r
        case .failure(let problem):
            counters?.journalRequestsRefused.add(1, ordering: .relaxed)
            reply.append(Array("error".utf8))
            reply.append(Array(problem.description.utf8))
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
            counters?.journalReadFailures.add(1, ordering: .relaxed)
            if let notLogged = failureLines.admit("journal") {
                // The store's message is a start's ("restore … or move it aside"): said at run time it needs the
                // rest, or an operator would move aside a store the daemon goes on using (an upgrade tester, session 41).
                let corrupt = error.kind == .corrupt
                let text = corrupt
                    ? "\(error)".replacingOccurrences(of: " " + StoreError.corruptAdvice, with: "")
                        + " The daemon goes on processing and publishing; only catch-up requests that reach the damaged "
                        + "part of the journal fail. Plan a stop to restore the store from a backup."
                    : "\(error)"
                logger.warning("cannot read the journal: \(text)", metadata: notLogged > 0 ? ["notLogged": "\(notLogged)"] : [:])
            }
            // The client gets a short reason only: the store's error names its path and tells the operator what to do
            // with the file, which is the daemon's log's business, not any journal client's.
            reply.append(Array("error".utf8))
            reply.append(Array(Self.readFailureReply.utf8))
        }
        return reply
    }
}

/// `fetch <afterSequence> [<limit>]`: both ASCII decimal digits (no sign, no space), the limit at least 1 (larger
/// than `journal.maxReplyAlerts` is capped to it). *Decision (README, Journal protocol):* `fetch 0 0` and `fetch 0 -5`
/// are refused with an `error` reply saying why: they used to be taken as a limit of 1 — not what the client asked
/// for — and a reply of no alerts would have told the client it had caught up.
struct JournalRequest: Equatable {
    var after: UInt64
    var limit: Int?

    struct Problem: Error, Equatable, CustomStringConvertible {
        let description: String
    }

    init?(_ words: [String]) {
        guard case .success(let r) = Self.parse(words) else { return nil }
        self = r
    }

    init(after: UInt64, limit: Int?) {
        self.after = after
        self.limit = limit
    }

    static let usage = "expected: fetch <afterSequence> [<limit>]"

    /// `wordCount`: how many words the request had, when `words` holds only its first ones.
    static func parse(_ words: [String], wordCount: Int? = nil) -> Result<JournalRequest, Problem> {
        let count = max(wordCount ?? words.count, words.count)
        guard (2...3).contains(count), words.first == "fetch" else {
            return .failure(Problem(description: "\(usage) (got \(count) frames\(words.first.map { ", the first \"\(clip($0))\"" } ?? ""))"))
        }
        guard let after = decimal(words[1]) else {
            return .failure(Problem(description: "afterSequence must be ASCII decimal digits from 0 to \(UInt64.max) (got \"\(clip(words[1]))\"); \(usage)"))
        }
        guard words.count == 3 else { return .success(JournalRequest(after: after, limit: nil)) }
        guard let n = decimal(words[2]), n >= 1 else {
            // The range said whole: past 2^64 − 1 "1 or more" was no reason (a fault tester, session 33).
            return .failure(Problem(description: "limit must be ASCII decimal digits from 1 to \(UInt64.max) (got \"\(clip(words[2]))\"); \(usage)"))
        }
        return .success(JournalRequest(after: after, limit: Int(clamping: n)))
    }

    /// Digits only (`UInt64("+5")` is 5, `Int("-5")` is -5: neither is what the protocol allows).
    private static func decimal(_ word: String) -> UInt64? {
        guard !word.isEmpty, word.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(word)
    }

    /// A word as quoted in an error reply: at most 40 characters, control characters as `?`.
    private static func clip(_ word: String) -> String {
        String(word.prefix(40).map { $0.isASCII && ($0.asciiValue! < 0x20 || $0.asciiValue! == 0x7f) ? "?" : $0 })
    }
}
