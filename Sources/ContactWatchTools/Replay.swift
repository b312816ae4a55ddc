// `contactwatch replay`: publish NDJSON files as ZeroMQ messages.
//
// Each line goes as a two-frame message, topic = the line's `eventType`, body = the line's bytes.
// A line that is JSON but not an object with a string `eventType` goes as a one-frame message (the
// body alone), as the conformance examples expect. A line that is not JSON at all is reported on
// standard error with its file and line number and not sent, unless `sendInvalid` is set, in which
// case it too goes as a one-frame message (so the daemon's handling of it can be tested).

import ContactWatchCommon
import Dispatch
import Synchronization
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How `Replay.run` paces and publishes.
public struct ReplayOptions: Sendable {
    public var files: [String]
    public var endpoint: String
    /// Bind the endpoint instead of connecting to it.
    public var bind = false
    /// Messages per second (nil: as fast as possible).
    public var rate: Double?
    /// Follow the gaps between `occurredAt` values, this many times faster.
    public var speed: Double?
    /// With `speed`: a pause longer than this (nanoseconds) is not waited but reported, and the events after it are
    /// paced from the event that came after it (two streams of different years in one file, or a wrong year).
    public var maxPauseNanoseconds: UInt64 = ReplayOptions.maxPause
    /// The default `maxPauseNanoseconds`: 7 days, so that a weekend or Christmas in a stream replayed in real time
    /// (`--speed 1`) is still waited.
    public static let maxPause: UInt64 = 7 * 86_400 * 1_000_000_000
    /// A `--speed` pause at least this long (nanoseconds) is said before it is waited.
    public static let announcedPause: UInt64 = 5_000_000_000
    /// Wait for this many subscription messages (XPUB) before the first message.
    public var waitSubscribers: Int?
    /// How long to wait for them.
    public var waitTimeoutSeconds: Double = 30
    /// Stamp `publisherId` and `sequenceNumber` (1, 2, 3, ...) on each JSON object.
    public var publisherId: String?
    /// With `publisherId`: the messages numbered up to this one (the daemon's stored position for that publisher) are
    /// not sent, and the next is sent as this + 1 — a resend after a crash from where the daemon stopped, numbered
    /// as the first run numbered it. Lines without a number (one-frame messages) up to that message are left out too;
    /// those after it are sent, as the daemon's position does not say whether it had them. 0: none.
    public var resumeAfter: UInt64 = 0
    /// Replay the files this many times.
    public var loop = 1
    /// Send lines that are not JSON as one-frame messages instead of skipping them.
    public var sendInvalid = false
    /// Linger on close so that queued messages are delivered. Generous: the send queue has no limit, so after a
    /// fast replay most of the stream may still be queued for a subscriber that reads slowly (a busy machine). What
    /// is left when the linger ends is dropped by libzmq; `run` then says so (`ReplaySummary.undelivered`). A
    /// subscriber that goes away ends the wait at once.
    public var lingerMilliseconds: Int32 = 60_000
    /// Show progress on standard error (nil: when standard error is a terminal).
    public var progress: Bool?
    /// CURVE: a client of the daemon (connect), or a server with an allow-list (bind).
    public var curve: ToolCurve = .none
    /// Counts the messages handed to libzmq, for another thread (the tool's SIGINT handler says how many).
    public var queued: ReplayCounter? = nil
    /// The largest subscription frame taken from a subscriber (`ZMQ_MAXMSGSIZE`), as the daemon's control sockets.
    public static let maxSubscriptionBytes: Int64 = 4096

    public init(files: [String], endpoint: String) {
        self.files = files
        self.endpoint = endpoint
    }
}

/// The messages a running replay has handed to libzmq so far, readable from any thread.
public final class ReplayCounter: Sendable {
    public let messages = Atomic<Int>(0)
    public init() {}
}

/// What a replay did.
public struct ReplaySummary: Sendable, Equatable {
    public var messages = 0
    /// Lines not sent because they are not JSON.
    public var skippedInvalid = 0
    /// Lines not sent because they are `LineReader.maxLineBytes` or longer (JSON or not: they are not read whole).
    public var skippedOverlong = 0
    /// Lines sent as one-frame messages.
    public var oneFrame = 0
    /// Lines passed over, not sent or reported, because they come up to the message numbered
    /// `ReplayOptions.resumeAfter`; and the last number passed over (less than `resumeAfter` when the files hold fewer).
    public var resumedPast = 0
    public var lastNumberPassed: UInt64 = 0
    public var seconds = 0.0
    /// Subscriptions the socket saw (it is an XPUB), those withdrawn or ended later included.
    public var subscriptionsSeen = 0
    /// Subscriptions still held at the end.
    public var subscriptionsHeld = 0
    /// The close waited out the whole linger: messages were still queued for a subscriber when it ended, and libzmq
    /// dropped them (it says no more, nor how many).
    public var undelivered = false
    /// Messages were sent and no subscription was held while they were: every one was dropped (`run`'s caller fails
    /// with 69).
    public var noSubscriber = false
    /// Some messages, not all, were certainly dropped: sent while no subscription was held (before the first subscriber
    /// joined, or after the last one left; `SubscriberLedger.dropped`, a lower bound). `run`'s caller fails with 75.
    public var droppedUnheld = 0
    /// Messages sent while subscriptions were held, none matching their topic (`SubscriberLedger.unmatched`): said,
    /// not a failure — the subscribers' filters left them out. With the first such topic.
    public var unmatched = 0
    /// nil when none is known (every topic kept was later wanted by a subscriber; past `maxUnmatchedTopics` the
    /// topics are counted, not kept).
    public var firstUnmatchedTopic: String? = nil
    /// Whether `firstUnmatchedTopic` is the first `SubscriberLedger.maxTopicBytes` of a longer topic.
    public var firstUnmatchedTopicCut = false

    public init() {}

    /// `replayed <messages> messages in <s> s (<rate> msg/s)`.
    public var line: String {
        let rate = seconds > 0 ? Double(messages) / seconds : 0
        return "replayed \(messages) messages in \(formatFixed(seconds, 3)) s (\(formatFixed(rate, 0)) msg/s)"
    }
}

/// How one line of input is published.
public enum ReplayLineKind: Equatable, Sendable {
    /// Blank or a `#` comment: skipped.
    case skip
    /// A JSON object with a string `eventType`: two frames.
    case event(topic: [UInt8])
    /// JSON, but not an object with a string `eventType`: one frame.
    case oneFrame
    /// Not JSON (reason): reported, sent as one frame only with `sendInvalid`.
    case notJSON(String)
}

public enum Replay {
    /// Classifies one line (without its newline).
    public static func classify(_ line: UnsafeBufferPointer<UInt8>) -> ReplayLineKind {
        var lines = JSONLines()
        return classifyScan(line, recordMembers: false, with: &lines).kind
    }

    static func classifyScan(_ line: UnsafeBufferPointer<UInt8>, recordMembers: Bool, with lines: inout JSONLines)
        -> (kind: ReplayLineKind, summary: JSONObjectSummary?) {
        var k = 0
        while k < line.count, line[k] == 0x20 || line[k] == 0x09 { k += 1 }
        if k == line.count || line[k] == UInt8(ascii: "#") { return (.skip, nil) }
        switch lines.scan(line, recordMembers: recordMembers) {
        case .invalid(let reason): return (.notJSON(reason), nil)
        case .notObject: return (.oneFrame, nil)
        case .object(let summary):
            if let topic = summary.eventType { return (.event(topic: topic), summary) }
            return (.oneFrame, summary)
        }
    }

    /// The body with `publisherId` and `sequenceNumber` where the spec's example has them, right after `occurredAt`
    /// (first when the object has no `occurredAt`), replacing any the object had. That is the member order the
    /// daemon's scanner reads on its fast path; stamps before `eventType` would send every body down its general path.
    public static func stamped(_ line: UnsafeBufferPointer<UInt8>, members: [Range<Int>], keys: [StampKey],
                               publisherId: [UInt8], sequenceNumber: UInt64) -> [UInt8] {
        var stamp: [UInt8] = Array(#""publisherId":"#.utf8)
        stamp += publisherId
        stamp += Array(#","sequenceNumber":"#.utf8)
        stamp += Array(String(sequenceNumber).utf8)
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(line.count + stamp.count + 2)
        var pending = keys.contains(.occurredAt)
        if !pending { out += stamp }
        for (member, key) in zip(members, keys) {
            if key == .stamped { continue }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out += line[member]
            if pending && key == .occurredAt {
                out.append(UInt8(ascii: ","))
                out += stamp
                pending = false
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Publishes the files. Diagnostics and the progress/summary lines go to `diagnostics`.
    /// - Throws: `ToolError` with exit 66 (a file cannot be read), 69 (endpoint, subscribers).
    public static func run(_ options: ReplayOptions, diagnostics: FDWriter = .standardError) throws -> ReplaySummary {
        var onceOnly: [(identity: FileIdentity, name: String)] = []
        for file in options.files {
            if let reason = LineReader.unreadableReason(file) {
                throw ToolError(exitCode: ToolError.noInput, "\(file): cannot be read: \(reason)")
            }
            // A pipe or a terminal is read once: the second pass would send nothing, silently.
            guard FileKind(path: file) != .regular else { continue }
            if options.loop > 1 {
                throw ToolError(exitCode: ToolError.usage, "\(file): --loop \(options.loop) needs regular files, and this "
                    + "is not one (a pipe, a terminal or another device: not read again from its start)")
            }
            // Likewise one named twice (`replay /dev/stdin /dev/stdin`): the second was read at its end, without a word
            // (a fault tester, session 35).
            guard let identity = FileIdentity(path: file) else { continue }
            if let first = onceOnly.first(where: { $0.identity == identity }) {
                throw ToolError(exitCode: ToolError.usage, "\(file): named twice (as \(first.name) before), and it is not a "
                    + "regular file (a pipe, a terminal or another device): it is read once, so the second time would send nothing")
            }
            onceOnly.append((identity, file))
        }
        let context = try ZMQContext()
        var summary: ReplaySummary
        do {
            summary = try publishAll(options, context: context, diagnostics: diagnostics)
        } catch {
            context.close()
            throw error
        }
        // The context's end waits for the socket's linger: until every queued message is delivered, or the linger
        // runs out and libzmq drops the rest without a word. Only the latter takes the whole linger.
        let closing = ToolClock.nanos()
        // On a terminal a wait of more than a second is said: the tool sat silent for up to the whole linger (60 s by
        // default) after sending, and looked hung (a fault tester, session 35).
        let notice = summary.messages > 0 && options.lingerMilliseconds > 1000 && isatty(diagnostics.fd) == 1
            ? DispatchWorkItem { [linger = options.lingerMilliseconds] in
                diagnostics.line("waiting up to \(formatFixed(Double(linger) / 1000, linger % 1000 == 0 ? 0 : 3)) s "
                    + "(--linger) for subscribers to take the messages still queued …")
            } : nil
        if let notice { DispatchQueue.global().asyncAfter(deadline: .now() + 1, execute: notice) }
        context.close()
        notice?.cancel()
        let waited = Double(ToolClock.nanos() - closing) / 1e6
        if summary.messages > 0 && options.lingerMilliseconds > 0
            && waited >= Double(options.lingerMilliseconds) - min(500, Double(options.lingerMilliseconds) / 10) {
            summary.undelivered = true
        }
        return summary
    }

    /// `run`'s work on `context`: the socket, its linger started by its close on the way out.
    private static func publishAll(_ options: ReplayOptions, context: ZMQContext, diagnostics: FDWriter) throws -> ReplaySummary {
        // A CURVE server needs its ZAP handler before the socket exists and until it is closed.
        var authenticator: ZMQAuthenticator? = nil
        defer { authenticator?.stop() }
        var summary = ReplaySummary()
        do {
            // Always an XPUB: it sees the subscriptions, so a replay that reached nobody can say so.
            let socket = try context.socket(.xpub, lingerMilliseconds: options.lingerMilliseconds)
            defer { socket.close() }  // lingers: what is queued is still delivered
            try socket.setSendHighWaterMark(0)
            // What comes in are subscriptions (a topic prefix each): a peer sending 20 MB ones grew a replay --bind
            // to 1 GB (the companion tool's auditor, session 25). libzmq drops a peer that sends a larger frame.
            try socket.setMaxMessageSize(ReplayOptions.maxSubscriptionBytes)
            // Every subscription and every unsubscription, a peer's repeats and a leaving peer's included, so that the
            // ledger keeps each connection's prefixes as libzmq does (`SubscriberLedger`).
            try socket.setXPubVerboser(true)
            switch options.curve {
            case .none: break
            case .client: try options.curve.secureClient(socket)
            case .server(let keyPair, let allowed):
                // The first 10 refusals, then the 16th, 32nd, 64th…, with the count: a peer retrying every 100 ms
                // wrote 26 lines in 4 s (the companion tool's auditor, session 25).
                let refusals = Atomic<Int>(0)
                let auth = try ZMQAuthenticator(context: context) { refusal in
                    let n = refusals.add(1, ordering: .relaxed).newValue
                    guard n <= 10 || n & (n - 1) == 0 else { return }
                    diagnostics.line("refused a subscriber (\(refusal.peerDescription ?? "address unknown")"
                                     + "\(refusal.keyPrefix.map { ", key \($0)…" } ?? "")): \(refusal.reason)"
                                     + (n > 10 ? " (\(n) refusals so far)" : ""))
                }
                authenticator = auth
                auth.setAllowedKeys(allowed, forDomain: "replay")
                try socket.makeCurveServer(secretKey: keyPair.secretKey, zapDomain: "replay")
                try auth.watchHandshakes(of: socket, domain: "replay")
            }
            if let warning = plaintextWarning(options) { diagnostics.line(warning) }
            // The handshakes, to say why a peer was refused (a CURVE server's authenticator watches its own); read as
            // the replay goes and stopped once a subscriber came (`HandshakeWatch`). Stopped before the socket closes.
            let watch = authenticator == nil ? HandshakeWatch(socket: try socket.startMonitor(events: ZMQMonitor.handshakeEvents),
                                                              of: socket, options: options) : nil
            defer { watch?.stop() }
            do {
                if options.bind { try socket.bind(options.endpoint) } else { try socket.connect(options.endpoint) }
            } catch let error as ZMQError {
                throw ToolError(exitCode: ToolError.unavailable,
                                "cannot \(options.bind ? "bind" : "connect to") \(options.endpoint): \(error.explained)")
            }
            // A port or path the system chose (`:0`, `:*`, `ipc://*`) is said, as the daemon says its own: otherwise no
            // daemon could be pointed at it (a fault tester, session 35).
            var endpoint = options.endpoint
            if options.bind, let bound = (try? socket.lastEndpoint).map(ZMQSocket.absolute), bound != options.endpoint {
                diagnostics.line("bound \(options.endpoint) at \(bound)")
                endpoint = bound
            }
            var ledger = SubscriberLedger()
            if let wanted = options.waitSubscribers {
                do {
                    try waitForSubscribers(socket, wanted, timeout: options.waitTimeoutSeconds, endpoint: endpoint,
                                           ledger: &ledger, watch: watch, reconnect: !options.bind, diagnostics: diagnostics)
                } catch {
                    if watch?.refusalSaid != true {
                        for text in watch?.explanations(waitMilliseconds: 0) ?? [] { diagnostics.line(text) }
                    }
                    throw error
                }
                if wanted > 0 { watch?.stop() }
            }
            summary = try publish(options, on: socket, ledger: &ledger, watch: watch, diagnostics: diagnostics)
            drainSubscriptions(socket, into: &ledger)
            summary.subscriptionsSeen = ledger.joined
            summary.subscriptionsHeld = ledger.live
            if ledger.reached {
                summary.droppedUnheld = ledger.dropped
                summary.unmatched = ledger.unmatched
                summary.firstUnmatchedTopic = ledger.firstUnmatchedTopic.map { String(decoding: $0, as: UTF8.self) }
                summary.firstUnmatchedTopicCut = ledger.firstUnmatchedTopicCut
            }
            if !ledger.reached && summary.messages > 0 {
                // A failure, not a warning then exit 0: a script could not tell it from a replay that reached a daemon
                // (the companion tool's auditor, session 25). The caller prints the summary line, then fails.
                for text in watch?.explanations(waitMilliseconds: 3000) ?? [] { diagnostics.line(text) }
                summary.noSubscriber = true
            }
        }
        return summary
    }

    /// Why `summary.noSubscriber` fails the replay (exit 69).
    public static func noSubscriberMessage(_ options: ReplayOptions, _ summary: ReplaySummary) -> String {
        if summary.subscriptionsHeld > 0 {
            return "no subscription on \(options.endpoint) matched the messages' topics (\(summary.subscriptionsHeld) held, "
                + "to other prefixes): the \(summary.messages) messages were dropped"
        }
        guard summary.subscriptionsSeen == 0 else {
            return "no subscriber was left on \(options.endpoint) when the first message was sent (\(summary.subscriptionsSeen) "
                + "subscription\(summary.subscriptionsSeen == 1 ? " was" : "s were") made and withdrawn before it: a "
                + "subscriber left, or was dropped for a subscription over \(ReplayOptions.maxSubscriptionBytes - 10) bytes): "
                + "the \(summary.messages) messages were dropped"
        }
        return "no subscriber was seen on \(options.endpoint): the \(summary.messages) messages were dropped (is a daemon "
            + "\(options.bind ? "connected to" : "bound at") this endpoint? --wait-subscribers N waits for one)"
    }

    /// Why `summary.droppedUnheld` fails the replay (exit 75).
    public static func droppedMessage(_ options: ReplayOptions, _ summary: ReplaySummary) -> String {
        "\(summary.droppedUnheld) of the \(summary.messages) messages were sent while no subscriber held a subscription "
            + "on \(options.endpoint) (before the first one joined, or after the last one left): they were dropped"
            + (options.waitSubscribers == nil ? " (--wait-subscribers N waits for subscribers before the first message)" : "")
    }

    /// The note for `summary.unmatched` (not a failure).
    public static func unmatchedMessage(_ options: ReplayOptions, _ summary: ReplaySummary) -> String {
        "\(summary.unmatched) of the \(summary.messages) messages had a topic no subscriber on \(options.endpoint) "
            + "subscribes to\(summary.firstUnmatchedTopic.map { " (the first: \(String(decoding: JSONLines.quoted($0), as: UTF8.self))\(summary.firstUnmatchedTopicCut ? " cut" : ""))" } ?? ""): the subscribers' filters left "
            + "them out (a daemon takes the prefixes of its input.subscribe, probation-case. by default)"
    }

    /// The warning for plaintext where others can listen (nil: CURVE, or `ipc://`, `inproc://`, loopback). The daemon
    /// refuses such an endpoint; replay, a test tool, says so and goes on (it said nothing: the companion tool's
    /// auditor, session 25, bound `tcp://0.0.0.0:…` without a word).
    public static func plaintextWarning(_ options: ReplayOptions) -> String? {
        guard case .none = options.curve, !EndpointExposure.isLocal(options.endpoint) else { return nil }
        return "warning: \(options.endpoint) is not loopback and this replay uses no CURVE: anyone who can reach it can "
            + "\(options.bind ? "subscribe and read" : "read") these events in plaintext (give --curve-cert and "
            + "\(options.bind ? "--curve-allow DIR" : "--curve-server-key") to encrypt them)"
    }

    /// Reads the (un)subscription messages queued on the XPUB without waiting into `ledger`.
    static func drainSubscriptions(_ socket: ZMQSocket, into ledger: inout SubscriberLedger) {
        ledger.readStarts()
        while let (first, source) = try? socket.receiveFirstFrameWithSource() {
            ledger.note(message: first, source: source, isClosed: { ZMQPeerConnection($0) == nil })
        }
        ledger.readEnds()
    }

    /// The lines `replay` would send from regular files (not blank, not a `#` comment), times `loop`; nil when a
    /// file is not a regular file (a pipe cannot be read twice). Read only to show progress on a terminal.
    static func countLines(_ files: [String], loop: Int) -> Int? {
        var total = 0
        for file in files {
            guard FileKind(path: file) == .regular else { return nil }
            do {
                try LineReader(path: file).forEachLine { line, _ in
                    var k = 0
                    while k < line.count, line[k] == 0x20 || line[k] == 0x09 { k += 1 }
                    if k < line.count && line[k] != UInt8(ascii: "#") { total += 1 }
                    return true
                }
            } catch {
                return nil
            }
        }
        let (all, overflow) = total.multipliedReportingOverflow(by: max(1, loop))
        return overflow ? nil : all
    }

    /// Reads (un)subscription messages on an XPUB until `wanted` subscriptions are held at once. One withdrawn
    /// while it waits (its subscriber left, or was dropped for an over-size subscription) is said — the first 10, then
    /// the 16th, 32nd… — and waited for again.
    ///
    /// With `reconnect` (a replay that connects), a refusal the handshake named (a key not in the daemon's allow-list,
    /// CURVE on one side only) is said at once and the endpoint connected afresh every second until the wait ends:
    /// libzmq never retries such a connection, so the advice given — add the key and SIGHUP the daemon — could not work
    /// within the run, and the replay ended 69 after the daemon had accepted the key (a fault tester, session 35). `tail`
    /// does the same.
    static func waitForSubscribers(_ socket: ZMQSocket, _ wanted: Int, timeout: Double, endpoint: String,
                                   ledger: inout SubscriberLedger, watch: HandshakeWatch? = nil, reconnect: Bool = false,
                                   diagnostics: FDWriter = .standardError) throws {
        guard wanted > 0 else { return }
        let deadline = ToolClock.saturatingSum(ToolClock.nanos(), ToolClock.saturating(nanos: timeout * 1e9))
        var retryAt: UInt64? = nil
        // The monitor is read on every turn below, so it may run on after a named refusal (it shows whether each
        // retry is refused again); stopped when the wait ends.
        if reconnect { watch?.keepsWatchingAfterRefusal = true }
        while ledger.subscribers < wanted {
            let now = ToolClock.nanos()
            guard now < deadline else {
                let withdrawn = ledger.left > 0 ? " (\(ledger.left) of the \(ledger.joined) subscriptions made were withdrawn)" : ""
                let retried = retryAt == nil ? "" : watch?.lastAttemptRefused == true ? " (the last try was refused too, as said above)"
                    : " (after a refusal, as said above)"
                throw ToolError(exitCode: ToolError.unavailable, "only \(ledger.subscribers) of \(wanted) subscribers joined "
                                + "\(endpoint) within \(formatFixed(timeout, 1)) s\(withdrawn)\(retried)")
            }
            watch?.read()
            if reconnect, let watch, watch.refusedByName {
                if let due = retryAt {
                    // Only while the latest try was refused by name: one under way, or accepted (a daemon that holds
                    // fewer subscriptions than wanted), is left alone (a reviewer, session 36: every try was cut).
                    if now >= due && watch.lastAttemptRefused {
                        watch.lastAttemptRefused = false
                        try? socket.disconnect(endpoint)
                        try? socket.connect(endpoint)
                        retryAt = now + HandshakeWatch.retryNanos
                    } else if now >= due {
                        // Not refused (yet): looked at again a second later. Left in the past, the due time bounded
                        // the receive's wait to 1 ms and the loop spun (a reviewer, session 36).
                        retryAt = now + HandshakeWatch.retryNanos
                    }
                } else {
                    retryAt = now + HandshakeWatch.retryNanos
                    let texts = watch.explanations(waitMilliseconds: 0)
                    for (k, text) in texts.enumerated() {
                        diagnostics.line(k < texts.count - 1 ? text : text + "; trying again every second until "
                            + "--wait-timeout (\(formatFixed(timeout, 1)) s) runs out")
                    }
                    watch.refusalSaid = true
                }
            }
            var waitMs = min(max(1, Int((deadline - now) / 1_000_000)), 500)
            if let due = retryAt { waitMs = min(waitMs, max(1, Int((due &- min(due, now)) / 1_000_000))) }
            guard let (first, source) = try socket.receiveFirstFrameWithSource(timeoutMilliseconds: waitMs)
            else { continue }
            let withdrawnBefore = ledger.left
            ledger.note(message: first, source: source, isClosed: { ZMQPeerConnection($0) == nil })
            let n = ledger.left
            if n > withdrawnBefore && (n <= 10 || n & (n - 1) == 0) {
                diagnostics.line("a subscription on \(endpoint) was withdrawn before the first message (its subscriber "
                    + "left, or was dropped for a subscription over \(ReplayOptions.maxSubscriptionBytes - 10) bytes): "
                    + "\(ledger.subscribers) of \(wanted) subscribers now; still waiting"
                    + (n > 10 ? " (\(n) withdrawn so far)" : ""))
            }
        }
    }

    private static func publish(_ options: ReplayOptions, on socket: ZMQSocket, ledger: inout SubscriberLedger,
                                watch: HandshakeWatch?, diagnostics: FDWriter) throws -> ReplaySummary {
        func pause(_ nanos: UInt64) { if let watch { watch.sleep(nanos: nanos) } else { ToolClock.sleep(nanos: nanos) } }
        var summary = ReplaySummary()
        let stampID = options.publisherId.map { JSONLines.quoted($0) }
        var lines = JSONLines()
        var sequence: UInt64 = 0
        let progress = ProgressMeter(writer: diagnostics, enabled: options.progress)
        let total = progress.enabled ? countLines(options.files, loop: options.loop) : nil
        // A line said while the meter's row is shown takes that row's place, the row drawn again at the next tick.
        func say(_ text: String) {
            progress.clear()
            diagnostics.line(text)
        }
        /// When the first message was (is to be) sent: the base of --rate's pacing and of the summary's rate.
        var start = ToolClock.nanos()
        let rateInterval = options.rate.map { 1e9 / $0 }
        let paced = options.rate != nil || options.speed != nil
        // A subscriber that left while the replay waited is known gone before the first message.
        drainSubscriptions(socket, into: &ledger)

        for _ in 0..<max(1, options.loop) {
            // --speed: the wall-clock start of this pass and the first occurredAt seen in it.
            var speedBase: (wall: UInt64, event: Int64)? = nil
            for file in options.files {
                try LineReader(path: file).forEachLine(overlong: { number in
                    say("\(file):\(number): a line of \(LineReader.maxLineBytes) bytes or more (not an "
                        + "event stream?); not sent, read through to its end")
                    summary.skippedOverlong += 1
                }) { line, number in
                    let (kind, object) = classifyScan(line, recordMembers: stampID != nil, with: &lines)
                    var topic: [UInt8]? = nil
                    if case .skip = kind { return true }
                    // --resume-after: what the daemon has seen already is passed over, numbered as it was sent.
                    if sequence < options.resumeAfter {
                        if stampID != nil, object != nil { sequence += 1 }
                        summary.resumedPast += 1
                        summary.lastNumberPassed = sequence
                        return true
                    }
                    // The lines passed over took time to read: paced from here, they were a burst of that time's
                    // worth of messages at --rate (a reviewer, session 50: 18 of the first 40 within 10 ms).
                    if summary.messages == 0 && summary.resumedPast > 0 { start = ToolClock.nanos() }
                    switch kind {
                    case .skip:
                        return true
                    case .event(let t):
                        topic = t
                    case .oneFrame:
                        say("\(file):\(number): not a JSON object with a string eventType; sent as a one-frame message")
                        summary.oneFrame += 1
                    case .notJSON(let reason):
                        if options.sendInvalid {
                            say("\(file):\(number): not JSON (\(reason)); sent as a one-frame message")
                            summary.oneFrame += 1
                        } else {
                            say("\(file):\(number): not JSON (\(reason)); not sent")
                            summary.skippedInvalid += 1
                            return true
                        }
                    }

                    // Pace.
                    if let interval = rateInterval {
                        let due = ToolClock.saturatingSum(start, ToolClock.saturating(nanos: Double(summary.messages) * interval))
                        let now = ToolClock.nanos()
                        if due > now { pause(due - now) }
                    } else if let speed = options.speed, let object, let range = object.occurredAt,
                              let at = rfc3339Milliseconds(UnsafeBufferPointer(rebasing: line[range])) {
                        if let base = speedBase {
                            if at > base.event {
                                // Both are milliseconds of the years 0000-9999: the difference cannot overflow, but
                                // the pause can exceed what UInt64 nanoseconds hold (2026 to 9999 at --speed 1).
                                let due = ToolClock.saturatingSum(
                                    base.wall, ToolClock.saturating(nanos: Double(at - base.event) * 1e6 / speed))
                                let now = ToolClock.nanos()
                                if due > now {
                                    if due - now > options.maxPauseNanoseconds {
                                        say("\(file):\(number): occurredAt is \(describeGap(milliseconds: at - base.event)) "
                                            + "after this pass's first paced event: at --speed \(formatSpeed(speed)) the pause before it "
                                            + "would be longer than \(describeGap(milliseconds: Int64(options.maxPauseNanoseconds / 1_000_000))); "
                                            + "sent without it, and the events after it are paced from it")
                                        speedBase = (now, at)
                                    } else {
                                        // A long pause is said: a scripted replay (no progress row) printed nothing
                                        // for minutes and looked hung (an operator's audit, session 52).
                                        if due - now >= ReplayOptions.announcedPause {
                                            say("\(file):\(number): pausing \(describeGap(milliseconds: Int64((due - now) / 1_000_000))) "
                                                + "before this event (its occurredAt, at --speed \(formatSpeed(speed)))")
                                        }
                                        pause(due - now)
                                    }
                                }
                            }
                        } else {
                            speedBase = (ToolClock.nanos(), at)
                        }
                    }

                    // Send. Counted first: a signal handler reading the count then has every message a subscriber
                    // may have received (the one being sent included).
                    options.queued?.messages.store(summary.messages + 1, ordering: .relaxed)
                    if let id = stampID, let object {
                        sequence += 1
                        let body = stamped(line, members: object.members, keys: object.keys,
                                           publisherId: id, sequenceNumber: sequence)
                        try send(socket, topic: topic, body: body)
                        if let topic { ledger.noteSent(topic) } else { ledger.noteSent(body) }
                    } else {
                        try send(socket, topic: topic, body: UnsafeRawBufferPointer(line))
                        if let topic { ledger.noteSent(topic) } else { ledger.noteSent(line) }
                    }
                    summary.messages += 1

                    // Every 256 messages at full speed; every message when paced (a slow rate still shows progress)
                    // or while no subscription is held (so the messages dropped then are counted to within one).
                    if summary.messages & 255 == 0 || paced || ledger.live == 0 {
                        drainSubscriptions(socket, into: &ledger)
                        if ledger.joined > 0 { watch?.stop() } else { watch?.read() }
                        // The total counts every line that is not blank or a comment: those not sent count as done.
                        let done = summary.messages + summary.skippedInvalid + summary.skippedOverlong + summary.resumedPast
                        progress.tick {
                            ProgressMeter.line(done: done, total: total, unit: "lines", elapsed: progress.elapsedSeconds)
                        }
                    }
                    return true
                }
            }
        }
        summary.seconds = Double(ToolClock.nanos() - start) / 1e9
        progress.finish()
        return summary
    }

    private static func send(_ socket: ZMQSocket, topic: [UInt8]?, body: [UInt8]) throws {
        try body.withUnsafeBytes { try send(socket, topic: topic, body: $0) }
    }

    private static func send(_ socket: ZMQSocket, topic: [UInt8]?, body: UnsafeRawBufferPointer) throws {
        if let topic {
            try topic.withUnsafeBytes { _ = try socket.send(buffers: [$0, body]) }
        } else {
            _ = try socket.send(buffers: [body])
        }
    }
}

/// A duration in milliseconds for a message: days (one decimal) from a day up, seconds below.
func describeGap(milliseconds: Int64) -> String {
    milliseconds >= 86_400_000 ? "\(formatFixed(Double(milliseconds) / 86_400_000, 1)) days"
        : "\(formatFixed(Double(milliseconds) / 1000, 3)) s"
}

/// `--speed`'s value as given (no trailing `.0`).
func formatSpeed(_ speed: Double) -> String {
    speed == speed.rounded() && abs(speed) < 1e15 ? String(Int64(speed)) : "\(speed)"
}

/// `value` with `decimals` digits after the point.
public func formatFixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "0" }
    // Int64 holds about 9.2e18: larger values (a huge duration) are written as Swift writes a Double.
    guard abs(value) < 9e18 / pow(10, Double(decimals)) else { return "\(value)" }
    if decimals == 0 { return String(Int64(value.rounded())) }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int64((value * scale).rounded())
    let whole = scaled / Int64(scale)
    var frac = String(scaled % Int64(scale))
    while frac.count < decimals { frac = "0" + frac }
    return "\(whole).\(frac)"
}

/// The replay socket's handshakes, watched to say why a daemon refused the replay (a key not in its allow-list, CURVE
/// against plaintext): it said only "0 subscribers", or "is a daemon bound at this endpoint?" when one was (the
/// companion tool's auditor, session 25). libzmq sends each monitor event from its I/O thread and blocks there once
/// about 2,000 are unread, which stops every connection of the replay (a reviewer, session 25): so the monitor is read
/// wherever the replay waits (for subscribers, between paced messages, every 256 messages) and stopped as soon as it is
/// no longer needed — a subscriber came, or a refusal was named. Owned by the replay's thread.
final class HandshakeWatch {
    private let socket: ZMQSocket
    private var monitor: ZMQMonitor?
    private let options: ReplayOptions
    /// Refusals libzmq named (ZAP, a mechanism mismatch) and those it did not, each said once.
    private var named: [String] = [], unnamed: [String] = []
    /// A connection was seen (a handshake follows); a handshake ended with a named failure or a success.
    private var connection = false, ended = false
    /// The refusals were said while waiting for subscribers (not to be said again when the wait fails).
    var refusalSaid = false
    /// Whether a refusal was named (a ZAP refusal, a mechanism mismatch): libzmq will not retry that connection.
    var refusedByName: Bool { !named.isEmpty }
    /// Whether the latest handshake ended in a named refusal (set by the monitor; a retry clears it, a success too).
    var lastAttemptRefused = false
    /// Whether the monitor runs on after a named refusal (a connecting replay waiting for subscribers retries).
    var keepsWatchingAfterRefusal = false
    /// How long after a named refusal a connecting replay connects afresh (as `tail`).
    static let retryNanos: UInt64 = 1_000_000_000

    init(socket monitor: ZMQMonitor, of socket: ZMQSocket, options: ReplayOptions) {
        self.monitor = monitor
        self.socket = socket
        self.options = options
    }

    /// A connection is up whose handshake has not ended yet (no success, no failure reported).
    private var handshaking = false
    /// Connections the peer closed during the handshake without any failure reported: what libzmq does when the
    /// socket at the other end cannot take a publisher (the daemon's XPUB output, its ROUTER journal), which the replay
    /// said nothing of (a fault tester, session 35).
    private var closedInHandshake = 0

    /// Reads what the monitor holds, waiting up to `timeoutMilliseconds` for a first event.
    func read(timeoutMilliseconds: Int = 0) {
        guard let monitor else { return }
        // Everything pending (no `readLimit`): `explanations()` reads once more and then judges what it holds.
        for event in (try? monitor.events(timeoutMilliseconds: timeoutMilliseconds, limit: .max)) ?? [] {
            switch event.kind {
            case .connected, .accepted: handshaking = true
            case .handshakeSucceeded: handshaking = false
            case .disconnected:
                if handshaking { closedInHandshake += 1 }
                handshaking = false
            default: if event.isHandshakeFailure { handshaking = false }
            }
            if event.kind == .connected || event.kind == .accepted || event.isHandshakeFailure { connection = true }
            let isNamed = event.kind == .handshakeFailedAuth || event.isMechanismMismatch
            if event.kind == .handshakeSucceeded || isNamed { ended = true }
            if isNamed { lastAttemptRefused = true } else if event.kind == .handshakeSucceeded { lastAttemptRefused = false }
            guard event.isHandshakeFailure, let text = options.curve.refusalAdvice(
                event, endpoint: options.endpoint, role: .publisher, bound: options.bind) else { continue }
            if isNamed { if !named.contains(text) { named.append(text) } }
            else if !unnamed.contains(text) { unnamed.append(text) }
        }
        if !named.isEmpty && !keepsWatchingAfterRefusal { stop() }
    }

    /// Waits `nanos` (a paced replay's pause), reading the monitor meanwhile.
    func sleep(nanos: UInt64) {
        guard monitor != nil else { return ToolClock.sleep(nanos: nanos) }
        let due = ToolClock.saturatingSum(ToolClock.nanos(), nanos)
        while monitor != nil {
            let now = ToolClock.nanos()
            guard now < due else { return }
            read(timeoutMilliseconds: Int(min((due - now + 999_999) / 1_000_000, 1000)))
        }
        let now = ToolClock.nanos()
        if now < due { ToolClock.sleep(nanos: due - now) }
    }

    /// What to say, waiting up to `waitMilliseconds` for a handshake under way to end (1 s at most when no connection
    /// was seen at all). libzmq often reports a mismatch first without detail, then by name: the named reasons, else
    /// the unnamed one.
    func explanations(waitMilliseconds: Int) -> [String] {
        let start = ToolClock.nanos()
        while monitor != nil && !ended {
            let elapsed = Int((ToolClock.nanos() - start) / 1_000_000)
            let wait = (connection ? waitMilliseconds : min(waitMilliseconds, 1000)) - elapsed
            guard wait > 0 else { break }
            read(timeoutMilliseconds: wait)
        }
        read()
        if named.isEmpty && unnamed.isEmpty && closedInHandshake > 0 && !options.bind {
            return ["warning: \(options.endpoint) took the connection and closed it during the handshake without a reason "
                + "(\(closedInHandshake == 1 ? "once" : "\(closedInHandshake) times")), as a ZeroMQ socket that cannot take a "
                + "publisher does: is this the daemon's --input endpoint, not its --output or --journal?"]
        }
        return named.isEmpty ? unnamed : named
    }

    /// Stops the monitor for good (a subscriber came, a refusal was named, or the replay is closing its socket).
    func stop() {
        guard let monitor else { return }
        socket.stopMonitor()
        monitor.close()
        self.monitor = nil
    }
}
