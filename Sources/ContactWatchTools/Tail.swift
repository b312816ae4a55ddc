// `contactwatch tail`: print the daemon's output messages, one body per line.
//
// With a journal it follows the Clone pattern: subscribe live first (ZeroMQ buffers what arrives),
// fetch every alert after the given sequence from the journal in batches until caught up, then
// read live, printing each alert exactly once in `alertSequence` order. A live alert that leaves a
// gap (because this consumer filters by rule, or because messages were dropped) makes it fetch
// from the journal again; while the live socket is idle it also checks the journal for alerts it
// could have missed while the subscription was being set up.
//
// Journal protocol (DEALER → the daemon's ROUTER):
//   request: "fetch", <afterSequence as ASCII decimal>, [<limit as ASCII decimal>]
//   reply:   "alerts", <latest committed alertSequence>, <alert body>...   (ascending, all > after)
//            "error", <message>
//   An "alerts" reply with no bodies means caught up.

import ContactWatchCommon
import Foundation
import Synchronization
import ZeroMQ

/// What `Tail.run` subscribes to and prints.
public struct TailOptions: Sendable {
    /// The longest topic prefix the daemon's output takes in plaintext: it drops a connection that sends a frame over
    /// 512 bytes (`ZMQ_MAXMSGSIZE`), and libzmq 4.3 sends a subscription as the ZMTP 3.1 command "\u{9}SUBSCRIBE"
    /// followed by the prefix, 10 bytes more (measured against the daemon: 502 joins, 503 is dropped; README,
    /// "Subscriptions").
    public static let maxTopicBytes = 502
    /// The same under CURVE, where a frame also carries 33 bytes of MESSAGE command, nonce and authenticator
    /// (measured: 469 joins, 470 is dropped).
    public static let maxCurveTopicBytes = 469

    public var endpoint: String
    /// Topic prefixes to subscribe to ("" = everything).
    public var topics: [String] = [""]
    /// Stop after printing this many messages.
    public var count: Int?
    /// The daemon's journal endpoint (with `fromSequence`).
    public var journal: String?
    /// Print alerts after this `alertSequence` from the journal first.
    public var fromSequence: UInt64?
    /// How long one journal request may take.
    public var requestTimeoutMilliseconds = 5000
    /// How long a journal request may wait for a connection to send it on: the request timeout, but at least 1 s. A
    /// new connection's handshake after a daemon restart takes longer than a timeout of a few milliseconds, and such a
    /// tail exited 69 at a restart against a journal that answered (a reviewer, session 40).
    public var sendWaitMilliseconds: Int { max(requestTimeoutMilliseconds, 1000) }
    /// Alerts asked for per journal request.
    public var batchLimit = 1000
    /// With a journal: how long the live socket may be idle before the journal is checked again.
    public var idleRecheckMilliseconds = 1000
    /// CURVE client settings for the output and the journal (`.none`: plaintext).
    public var curve: ToolCurve = .none
    /// NDJSON bodies (default) or one readable text line per message.
    public var format: TailFormat = .ndjson
    /// The largest frame taken from the output or the journal (`ZMQ_MAXMSGSIZE`): a peer that sends a larger one is
    /// disconnected (said) rather than held in memory. The daemon's largest body is a few tens of KiB (an
    /// `invalid-event` notice quotes at most 4096 bytes of the event); a hostile publisher at the endpoint grew a tail
    /// to 888 MB with 50 MB frames (the companion tool's auditor, session 25).
    public static let maxFrameBytes: Int64 = 1 << 20

    /// Warn on the diagnostics descriptor when no connection to the endpoint has completed after this long.
    public var connectWarningMilliseconds = 5000

    public init(endpoint: String) { self.endpoint = endpoint }
}

public enum Tail {
    /// Runs until `count` messages were printed (forever without it), or the context is shut down.
    /// - Returns: the number of messages printed.
    /// - Throws: `ToolError` (69: endpoint or journal unavailable).
    @discardableResult
    public static func run(_ options: TailOptions, output: FDWriter = .standardOutput,
                           diagnostics: FDWriter = .standardError, context: ZMQContext? = nil) throws -> Int {
        let ctx = try context ?? ZMQContext()
        let session = try TailSession(options: options, context: ctx, output: output, diagnostics: diagnostics)
        defer { session.close() }
        do {
            try session.run()
        } catch let error as ZMQError where error.isTerminated {
            // Shut down from elsewhere: a clean stop.
        }
        return session.printed
    }
}

/// Thrown inside a session when `--count` is reached.
private struct CountReached: Error {}

/// One tail run. Owns its sockets: single-threaded.
final class TailSession {
    private let options: TailOptions
    private let output: FDWriter
    private let diagnostics: FDWriter
    private let sub: ZMQSocket
    private var dealer: ZMQSocket?
    private let context: ZMQContext
    /// Watches the live socket's connection (handshakes), for the journal catch-up and the "nothing connected" warning.
    private let monitor: ZMQMonitor?
    /// A connection to the live endpoint completed its handshake.
    private var connected = false
    /// Handshakes that brought the live connection back after a loss: a loss and the next handshake read in one batch of
    /// monitor events (a quick restart) leave `connected` as it was, but not this count. The first connection is not
    /// counted: made after a request was sent (a slow start), it was taken for a restart (a reviewer, session 39).
    private var reconnections: UInt64 = 0
    private var warnedNotConnected = false
    /// Whether the endpoint's host name resolves, asked once on a thread of its own (`getaddrinfo` blocks for as long
    /// as the resolver takes: 10 s and more with one that does not answer, which held the loop and the warning: a
    /// reviewer, session 41).
    private let hostCheck: HostCheck
    private var everConnected = false
    /// The handshake failures already explained (each kind once: a refused client retries every 100 ms).
    private var explainedFailures: Set<String> = []
    /// Since when no connection has been up (the start, or the loss of the last one): the "nothing connected" warning
    /// is due `connectWarningMilliseconds` after it.
    private var waitingSince = ToolClock.nanos()
    /// A connection was lost and none has come back yet (its return is said).
    private var lostOne = false
    /// When the live connection last completed its handshake, and how many connections in a row were lost within
    /// `quickCutNanos` of it and followed by the next within `quickReturnNanos`: a daemon cuts a consumer whose
    /// subscriptions take its consumers' total past its `output.maxSubscriptions`, again at each reconnection, and the
    /// tail only ever said "stopped or restarted?" (an operator's audit, session 52: 34 cuts in 5 s, nothing printed,
    /// the cause never named on this side). Fixed times: over a link whose round trip nears 0.5 s the cuts are not
    /// recognised, and only the lost lines are said (a reviewer, session 52).
    private var connectedAt: UInt64 = 0
    private var quickCuts = 0
    /// When the last connection was lost, if it was lost within `quickCutNanos` of being made: a cut counts when the
    /// next handshake follows within `quickReturnNanos` (a daemon that cuts a consumer still listens; one that stopped
    /// takes longer to be back: a reviewer, session 52, saw a daemon restarted four times blamed on the setting).
    private var quickLossAt: UInt64? = nil
    static let quickCutNanos: UInt64 = 500_000_000
    static let quickReturnNanos: UInt64 = 1_000_000_000
    /// Quick cuts in a row before the likely cause is said (once per run of them).
    static let quickCutsToExplain = 3
    /// When the live socket is to be connected afresh: libzmq never retries a connection whose handshake failed on a
    /// protocol error (a mechanism mismatch: plaintext against CURVE), so "still trying" was false and a tail never
    /// came back once the daemon did (reviewer, session 23), nor one it cut on a protocol error (a frame over
    /// `TailOptions.maxFrameBytes`). Set at a failed handshake and at a lost connection, cleared when libzmq retries
    /// by itself (`connectRetried`) or a handshake succeeds.
    private var reconnectDue: UInt64? = nil
    /// How long after a failed handshake the live socket is connected afresh.
    static let retryAfterFailedHandshakeNanos: UInt64 = 1_000_000_000
    /// How long after a journal request's first try the tail waits, when the journal has not answered twice and the
    /// live connection is TCP and still up, to learn whether that connection is cut: TCP keepalive ends a silent one
    /// about 25 s into a partition (see `init`). Cut, the daemon is away and the tail waits for it; still up after
    /// this, the daemon is there but its journal does not answer, and the tail gives up (exit 69).
    static let partitionWaitNanos: UInt64 = 30_000_000_000
    /// Every alertSequence up to this one has been printed or deliberately skipped (journal mode).
    private var covered: UInt64
    /// What each of the last `seenLimit` alertSequences covered was (`AlertMark`), to tell a repeat from another alert
    /// under a number already covered: the daemon's store restored from a backup (its numbers start again below this
    /// tail's) or `--endpoint` and `--journal` on two daemons. Compared by number alone, such alerts were taken for
    /// repeats and dropped without a word when the restored daemon had already numbered past this tail (186 alerts in
    /// a journal fault tester's run, session 36).
    private var seen: [UInt64: AlertMark] = [:]
    private var seenOrder: [UInt64] = []
    private var seenHead = 0
    static let seenLimit = 65_536
    /// The live connection was lost since the last catch-up: the next one first compares the journal's alerts under the
    /// numbers covered with what was printed (`rewindToFirstDifference`).
    private var verifyDue = false
    /// "Another alert under a number this tail covered" warnings said (the first 10).
    private var renumberedSaid = 0
    /// "Neither the alert this tail printed nor the journal's" warnings said (the first 10).
    private var notTheJournalsSaid = 0
    private(set) var printed = 0
    private var line: [UInt8] = []

    init(options: TailOptions, context: ZMQContext, output: FDWriter, diagnostics: FDWriter) throws {
        self.options = options
        hostCheck = HostCheck()
        self.output = output
        self.diagnostics = diagnostics
        covered = options.fromSequence ?? 0
        self.context = context
        sub = try context.socket(.sub, lingerMilliseconds: 0)
        do {
            // No limit on the receive queue: the buffer during a journal catch-up, and a tail that prints every message
            // it is sent. With libzmq's default of 1000, a tail that fell behind (a burst, a slow terminal) made the
            // publisher's queue fill and a daemon's PUB drop what did not fit, and a replay that ended then lost
            // hundreds of messages at its close without a word (libzmq issue 4660; `ReplayLingerTests` saw 91 of
            // 4,605 lost on a loaded CI machine). What a blocked standard output holds back is held here instead.
            try sub.setReceiveHighWaterMark(0)
            try sub.setMaxMessageSize(TailOptions.maxFrameBytes)
            try options.curve.secureClient(sub)
            // A TCP connection that went silent (a partition, the daemon's host gone without closing it) is ended by
            // the kernel and made again, and so seen: without keepalive the tail waited on it for ever, and its
            // journal check after a loss never ran (a reviewer, session 37). About 25 s: 10 s idle, 3 probes 5 s apart.
            try sub.setDeadPeerKeepalive()
            for topic in options.topics { try sub.subscribe(topic) }
            monitor = try sub.startMonitor()
            try sub.connect(options.endpoint)
            hostCheck.start(options.endpoint)
        } catch let error as ZMQError {
            throw ToolError(exitCode: ToolError.unavailable, "cannot connect to \(options.endpoint): \(error.message)")
        }
        dealer = try options.journal.map { try Self.journalSocket(context: context, options: options, journal: $0) }
    }

    /// A DEALER connected to the journal endpoint.
    private static func journalSocket(context: ZMQContext, options: TailOptions, journal: String) throws -> ZMQSocket {
        let d = try context.socket(.dealer, lingerMilliseconds: 0, framePoolCapacity: options.batchLimit + 3)
        do {
            try d.setMaxMessageSize(TailOptions.maxFrameBytes)
            try options.curve.secureClient(d)
            try d.setSendTimeout(milliseconds: Int32(clamping: options.sendWaitMilliseconds))
            // A request waits for a completed connection: queued to a journal endpoint where nothing listens, or to a
            // peer whose handshake failed (an HTTP server, the daemon's XPUB output), it was taken at once and never
            // answered, and after 30 s the tool blamed a restart or a network partition (a fault tester, session 40).
            // Now the send is refused after the request timeout, and once more on a new socket: "took no request …
            // no connection to it".
            try d.setImmediate(true)
            try d.connect(journal)
        } catch let error as ZMQError {
            d.close()
            throw ToolError(exitCode: ToolError.unavailable, "cannot connect to journal \(journal): \(error.message)")
        }
        return d
    }

    func close() {
        monitor?.close()
        dealer?.close()
        sub.close()
    }

    func run() throws {
        do {
            if dealer != nil {
                awaitLiveConnection()
                try catchUp()
            }
            try readLive()
        } catch is CountReached {
            return
        }
    }

    /// Gives the live subscription a moment to reach the publisher before the journal is read
    /// (bounded: the publisher may not be up yet; the idle re-check covers that case).
    private func awaitLiveConnection() {
        guard monitor != nil else { return }
        let deadline = ToolClock.nanos() + 1_000_000_000
        while !connected && ToolClock.nanos() < deadline {
            readMonitor(timeoutMilliseconds: 100)
        }
    }

    /// With the daemon gone (the live connection lost): says so, closes `old`, waits for the live connection to be
    /// back and returns a new journal socket (also kept as `dealer`).
    private func reconnectJournalOnceBack(_ old: ZMQSocket, journal: String) throws -> ZMQSocket {
        diagnostics.line("warning: journal \(journal) did not answer, and the connection to \(options.endpoint) "
            + "is lost (the daemon stopped or restarted?): asking again once it is back")
        old.close()
        waitForLiveConnection()
        return try newJournalSocket(journal: journal)
    }

    /// A new journal socket, kept as `dealer` (the caller has closed the one it replaces).
    private func newJournalSocket(journal: String) throws -> ZMQSocket {
        let fresh = try Self.journalSocket(context: context, options: options, journal: journal)
        dealer = fresh
        return fresh
    }

    /// Whether the live connection was up and is now lost (the monitor's pending events read first).
    private func liveConnectionLost() -> Bool {
        readMonitor()
        return monitor != nil && !connected && lostOne
    }

    /// Waits until the live connection is back (reconnecting as `readLive` does, with its warnings).
    private func waitForLiveConnection() {
        while !connected {
            var timeout = 100
            if let warning = untilConnectWarning() { timeout = min(timeout, warning) }
            if let reconnect = reconnectIfDue() { timeout = min(timeout, reconnect) }
            readMonitor(timeoutMilliseconds: max(1, timeout))
        }
    }

    /// Reads the monitor's pending events; a completed handshake means the live socket reached the publisher, a
    /// failed one is explained (once per kind of failure) with what the operator can do about it.
    private func readMonitor(timeoutMilliseconds: Int = 0) {
        // Everything pending (no `readLimit`): its callers judge the connection by what one call read.
        guard let monitor, let events = try? monitor.events(timeoutMilliseconds: timeoutMilliseconds, limit: .max) else { return }
        for event in events {
            switch event.kind {
            case .handshakeSucceeded, .connectRetried, .connectDelayed: reconnectDue = nil
            case .handshakeFailedProtocol, .handshakeFailedNoDetail, .handshakeFailedAuth:
                if reconnectDue == nil { reconnectDue = ToolClock.nanos() + Self.retryAfterFailedHandshakeNanos }
            default: break
            }
            if event.kind == .handshakeSucceeded && !connected {
                connected = true
                connectedAt = ToolClock.nanos()
                if let lost = quickLossAt, connectedAt &- lost < Self.quickReturnNanos { quickCuts += 1 } else { quickCuts = 0 }
                quickLossAt = nil
                everConnected = true
                if lostOne { reconnections &+= 1 }
                if warnedNotConnected || !explainedFailures.isEmpty || lostOne {
                    diagnostics.line("connected to \(options.endpoint)")
                }
                if quickCuts == Self.quickCutsToExplain {
                    let n = options.topics.count
                    diagnostics.line("warning: the daemon closed this connection within \(Self.quickCutNanos / 1_000_000) ms "
                        + "of its being made and took the next at once, \(quickCuts) times in a row: a daemon cuts a "
                        + "consumer when its consumers' subscriptions together pass its output.maxSubscriptions, again at "
                        + "each reconnection (its log says \"cut a consumer's connection\"; or it is being restarted again "
                        + "and again); this tail subscribes to \(n) topic prefix\(n == 1 ? "" : "es"). Ask the daemon's "
                        + "operator to raise output.maxSubscriptions, or subscribe to fewer topics")
                }
                lostOne = false
            }
            // A connection that was up went (the daemon stopped or restarted): said, and from here on as at the start
            // — failed handshakes explained, the "nothing connected" warning due again. A daemon restarted with CURVE
            // refused a tail that had been connected without a word to it (fault tester, session 23).
            if event.kind == .disconnected && connected {
                connected = false
                warnedNotConnected = false
                explainedFailures = []
                waitingSince = ToolClock.nanos()
                lostOne = true
                verifyDue = true
                // libzmq retries an ordinary loss by itself (a `connectRetried` event follows and clears this), but
                // never one it cut on a protocol error such as a frame over `maxFrameBytes`: connected afresh then.
                reconnectDue = ToolClock.nanos() + Self.retryAfterFailedHandshakeNanos
                let lostAt = ToolClock.nanos()
                quickLossAt = lostAt &- connectedAt < Self.quickCutNanos ? lostAt : nil
                if quickLossAt == nil { quickCuts = 0 }
                diagnostics.line("warning: the connection to \(options.endpoint) was lost (the daemon stopped or "
                    + "restarted? or the peer sent a frame over \(TailOptions.maxFrameBytes / 1024) KiB, which no "
                    + "daemon sends); reconnecting")
                continue
            }
            guard event.isHandshakeFailure, !connected,
                  let text = options.curve.refusalAdvice(event, endpoint: options.endpoint, role: .consumer) else { continue }
            if explainedFailures.insert(text).inserted { diagnostics.line(text) }
        }
    }

    /// Milliseconds until the live socket is to be connected afresh (nil: not due); connects it when due.
    private func reconnectIfDue() -> Int? {
        guard reconnectDue != nil else { return nil }
        // What the monitor holds first: libzmq may have reconnected by itself meanwhile (`connectRetried`, then the
        // handshake), while this tail was busy printing a backlog, and connecting afresh then would drop a connection
        // already back, and what the daemon sends in that moment (the companion tool's hunter, session 45).
        readMonitor()
        guard let due = reconnectDue else { return nil }
        let now = ToolClock.nanos()
        if now < due { return Int((due - now + 999_999) / 1_000_000) }
        reconnectDue = nil
        try? sub.disconnect(options.endpoint)
        do { try sub.connect(options.endpoint) } catch {
            diagnostics.line("warning: cannot connect to \(options.endpoint) again: \((error as? ZMQError)?.message ?? "\(error)")")
        }
        return nil
    }

    /// Milliseconds until the "nothing connected" warning is due; nil once it is no longer wanted.
    private func untilConnectWarning() -> Int? {
        guard !connected, !warnedNotConnected, monitor != nil else { return nil }
        let due = waitingSince + UInt64(max(0, options.connectWarningMilliseconds)) * 1_000_000
        let now = ToolClock.nanos()
        if now >= due {
            warnedNotConnected = true
            // After a refusal was explained the daemon is known to be there: asking whether it runs contradicted the
            // refusal just said (an operator audit, session 26).
            let hint = !explainedFailures.isEmpty ? "the daemon refuses this client, as said above"
                // Only before any connection: the name resolved then, and a verdict taken at start would be stale
                // (a reviewer, session 41).
                : (everConnected ? nil : hostCheck.unresolved).map { "the host name \($0.host) does not resolve: \($0.reason)" }
                ?? "is the daemon running, and is this its --output endpoint?"
            diagnostics.line("warning: nothing connected to \(options.endpoint) after "
                + "\(formatFixed(Double(options.connectWarningMilliseconds) / 1000, 1)) s; still trying (\(hint))")
            return nil
        }
        return Int((due - now + 999_999) / 1_000_000)
    }

    // MARK: Printing

    private func emit(_ body: UnsafeRawBufferPointer, topic: @autoclosure () -> String?) throws {
        line.removeAll(keepingCapacity: true)
        switch options.format {
        case .ndjson:
            // One message, one line, whatever the body holds: a line break in it (a peer that is not the daemon, a
            // body that is not one line of JSON) would print as more than one line, read downstream as separate
            // records. Outside strings a line break is JSON whitespace, inside one it is not valid JSON anyway: a space.
            // Terminal controls are escaped (`TailText.appendNDJSON`).
            TailText.appendNDJSON(body, to: &line)
        case .text: line.append(contentsOf: TailText.line(topic: topic(), body: body).utf8)
        }
        line.append(0x0A)
        try line.withUnsafeBytes { try output.write($0) }
        printed += 1
        if let limit = options.count, printed >= limit { throw CountReached() }
    }

    private func matchesTopics(_ topic: String?) -> Bool {
        guard let topic else { return options.topics.contains("") }
        return options.topics.contains { topic.hasPrefix($0) }
    }

    // MARK: Journal

    /// What to check when the journal neither takes a request nor answers: a refused handshake there is not seen (no
    /// monitor on that socket); a plaintext request to a CURVE daemon once hung for good in its send.
    private var journalHint: String {
        if case .client = options.curve {
            return "is --curve-server-key the daemon's public certificate, and this client's key in its consumers allow-list?"
        }
        // Pointed at the output, the request goes nowhere: the output's PUB takes the connection and no request
        // (a new-operator walk-through, session 49, gave the same endpoint to both).
        if options.journal == options.endpoint {
            return "--journal is the same endpoint as --endpoint: the journal is a socket of its own, the daemon's --journal, "
                + "not its --output"
        }
        return "is the daemon running with this journal endpoint (its --journal, not its --output)? one that uses CURVE "
            + "needs --curve-cert and --curve-server-key"
    }

    /// Fetches and prints alerts after `covered` until the journal has no more.
    ///
    /// A journal whose latest alertSequence is below `covered` has gone back: the daemon's store was reset or restored
    /// from a backup (alertSequence numbers start again below what this tail printed), or `--from-sequence` came from
    /// another daemon. That is said on the diagnostics descriptor, and the tail goes on after `resumeAfter` (the live
    /// alert that showed it, less one) or the journal's latest, instead of waiting — silently — for the new numbers to
    /// pass the old ones. A reply whose alerts are none of them after the position asked for (no `alertSequence`, or
    /// at or below it) ends the tail with 69: a journal that never advances would be asked again for ever. The first
    /// catch-up after the live connection was lost first checks the numbers already covered
    /// (`rewindToFirstDifference`).
    private func catchUp(resumeAfter: UInt64? = nil) throws {
        guard dealer != nil, let journal = options.journal else { return }
        if verifyDue {
            verifyDue = false
            try rewindToFirstDifference(journal: journal)
        }
        while true {
            let asked = covered
            let (bodies, latest) = try ask(after: covered, limit: options.batchLimit) { body in
                guard let sequence = AlertBody.alertSequence(body) else {
                    diagnostics.line("journal \(journal): an alert without alertSequence; skipped")
                    return
                }
                guard sequence > covered else { return }
                if sequence > covered + 1 {
                    // alerts.md: a reply that starts above the requested sequence + 1 says what is gone.
                    diagnostics.line("journal \(journal): alerts \(covered + 1)…\(sequence - 1) are no longer "
                        + "in the journal (pruned by retention)")
                }
                covered = sequence
                remember(sequence, body)
                let topic = AlertBody.topic(body)
                if matchesTopics(topic) { try emit(body, topic: topic) }
            }
            if latest < asked {
                var from = min(resumeAfter ?? latest, latest)
                // Where this tail remembers what it printed under `from`, the journal's alerts up to there are compared
                // with it: a store restored from a backup and already numbering past the backup (but not yet past
                // this tail) had its new alerts under those numbers skipped, said but not printed (a reviewer,
                // session 37). Going on after the last that agrees prints them.
                let compared = from > 0 && seen[from] != nil
                if let difference = try differenceUpTo(from) { from = difference.first - 1 }
                diagnostics.line("warning: journal \(journal): its latest alertSequence is \(latest), below \(asked), "
                    + "where this tail was (printed, or --from-sequence): the daemon's store was reset or restored "
                    + "from a backup, or --from-sequence came from another daemon. Going on after \(from): alerts "
                    + "numbered from \(from + 1) are printed as the journal now has them (numbers printed before may "
                    + "come again)" + (from == 0 ? "" : compared
                        ? "; alerts 1…\(from) are the ones this tail printed under those numbers"
                        : "; alerts 1…\(from) of the journal now are not printed (--from-sequence 0 prints them)"))
                covered = from
                // What was printed under the old numbers is not to be compared with the new history: a later
                // restart's check took it for a restore and printed the alerts the warning said it would not (a
                // reviewer, session 37).
                forgetMarks()
                continue
            }
            if bodies > 0 && covered == asked {
                throw ToolError(exitCode: ToolError.unavailable, "journal \(journal) answered a request for the "
                    + "alerts after \(asked) with \(bodies) bodies, none of them an alert after \(asked): it is not "
                    + "a ContactWatch journal, or a broken one")
            }
            if bodies == 0 || covered >= latest { return }
        }
    }

    /// One journal request: the alerts after `after` (at most `limit`), each body handed to `body` in order.
    /// - Returns: how many bodies the reply held, and the journal's latest alertSequence.
    ///
    /// A request that gets no answer within `--request-timeout` is asked once more on a new connection before the tail
    /// gives up: a daemon killed and restarted (systemd after a crash or a watchdog timeout) with a request in flight
    /// took the request with the old connection, and the tail exited 69 although the new daemon's journal answered at
    /// once (a fault tester, session 35). A new socket, so that a late answer to the first request cannot be read as
    /// the answer to a later one. With the live connection lost too, the daemon is away: the request is asked again
    /// once it is back, however long that takes (`reconnectJournalOnceBack`).
    private func ask(after: UInt64, limit: Int,
                     _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> (bodies: Int, latest: UInt64) {
        guard var dealer, let journal = options.journal else { return (0, 0) }
        let capacity = options.batchLimit + 3
        var askedAgain = false
        /// A send the socket would not take was tried once more on a new socket (apart from `askedAgain`, so that a
        /// restart's refused send does not use up the unanswered request's second chance: a reviewer, session 40).
        var sentAgain = false
        var waitedForKeepalive = false
        /// The wait for a connection to the journal was said (once a request).
        var warnedNoConnection = false
        /// Sends the request, waiting up to `sendWaitMilliseconds` for a connection. A long --request-timeout is as
        /// long a wait, said after the live connection's 5 s (it was silent: 15 s of nothing with --request-timeout 300
        /// and the daemon down, a drift audit, session 50). False: no connection took it in that time.
        func sendRequest(_ dealer: ZMQSocket) throws -> Bool {
            let request = ["fetch", String(after), String(limit)]
            let warnAfter = options.connectWarningMilliseconds, wait = options.sendWaitMilliseconds
            guard !warnedNoConnection, wait > warnAfter else { return try dealer.send(strings: request) }
            let poller = ZMQPoller()
            poller.add(dealer, events: .writable)
            func writable(within milliseconds: Int) throws -> Bool {
                try poller.poll(timeoutMilliseconds: milliseconds).events.first?.contains(.writable) ?? false
            }
            if try !writable(within: warnAfter) {
                warnedNoConnection = true
                let more = wait - warnAfter
                diagnostics.line("warning: no connection to journal \(journal) after \(warnAfter / 1000) s; still "
                    + "trying, for up to \(formatFixed(Double(more) / 1000, more % 1000 == 0 ? 0 : more % 100 == 0 ? 1 : 3)) s more (\(journalHint))")
                guard try writable(within: wait - warnAfter) else { return false }
            }
            return try dealer.send(strings: request)
        }
        var firstAsked = ToolClock.nanos()
        /// Back from a lost connection: the new daemon gets every chance the first had (asked twice, keepalive's wait).
        func afresh() {
            (askedAgain, sentAgain, waitedForKeepalive, firstAsked) = (false, false, false, ToolClock.nanos())
        }
        /// The journal socket replaced by a new one (a late answer to a request on the old one cannot be read as the
        /// answer to a later one; a new socket connects at once instead of after libzmq's reconnect interval).
        func newDealer() throws {
            dealer.close()
            dealer = try newJournalSocket(journal: journal)
        }
        /// The live connection was lost and is back while the request waited (read as one batch: a quick restart):
        /// the request went with the daemon that left. Asked again on a new connection, with every chance the first had.
        func askTheRestartedDaemon() throws {
            diagnostics.line("warning: journal \(journal) did not answer, and the connection to \(options.endpoint) "
                + "was lost and is back (the daemon restarted): asking again")
            try newDealer()
            afresh()
        }
        while true {
            let sentOn = reconnections
            // A DEALER with no connection blocks its send (a refused handshake leaves none): bounded by ZMQ_SNDTIMEO.
            guard try sendRequest(dealer) else {
                if liveConnectionLost() {
                    // The daemon went away before the request could be sent: sent once it is back, as below.
                    dealer = try reconnectJournalOnceBack(dealer, journal: journal)
                    afresh()
                    continue
                }
                if reconnections != sentOn {
                    try askTheRestartedDaemon()
                    continue
                }
                if !sentAgain {
                    // Once more on a new socket, which connects at once: after a daemon restart the live connection
                    // can be back before the journal's, whose socket waits libzmq's reconnect interval (100–200 ms)
                    // before trying again — longer than a short --request-timeout, and the tail exited 69 against a
                    // daemon whose journal answered (a reviewer, session 40).
                    sentAgain = true
                    diagnostics.line("warning: journal \(journal) took no request within "
                        + "\(options.sendWaitMilliseconds) ms (no connection to it yet); trying once more on a "
                        + "new connection")
                    try newDealer()
                    continue
                }
                throw ToolError(exitCode: ToolError.unavailable, "journal \(journal) took no request within "
                    + "\(options.sendWaitMilliseconds) ms: no connection to it (\(journalHint))")
            }
            enum Reply { case batch(bodies: Int, latest: UInt64), error(String), malformed(String) }
            let reply: Reply? = try dealer.receiveMessage(timeoutMilliseconds: options.requestTimeoutMilliseconds) { frames in
                guard frames.count >= 2 else { return .malformed("a reply of \(frames.count) frame(s)") }
                let kind = frames.string(at: 0)
                if kind == "error" { return .error(TailText.quoted(frames.string(at: 1))) }
                guard kind == "alerts" else { return .malformed("a reply of kind \(TailText.quoted(kind))") }
                guard let latest = UInt64(frames.string(at: 1)) else {
                    return .malformed("latest = \(TailText.quoted(frames.string(at: 1)))")
                }
                // Only a contiguous run of bodies can be used when the reply has more frames than the pool.
                let end = frames.count <= capacity ? frames.count : capacity - 1
                var used = 0
                for i in 2..<max(2, end) {
                    try frames.withUnsafeBytes(at: i, body)
                    used += 1
                }
                return .batch(bodies: used, latest: latest)
            }
            switch reply {
            case nil where liveConnectionLost():
                // The daemon is gone (its output connection too): the request went with it. Asked again on a new
                // connection once the daemon is back, however long its restart takes (systemd's RestartSec=10 and the
                // state's load outlast two request timeouts: a reviewer, session 35).
                dealer = try reconnectJournalOnceBack(dealer, journal: journal)
                afresh()
                continue
            case nil where reconnections != sentOn:
                // Judged by `connected` alone this was "still up" and exit 69 (a reviewer, session 38).
                try askTheRestartedDaemon()
                continue
            case nil where !askedAgain:
                askedAgain = true
                diagnostics.line("warning: journal \(journal) did not answer within \(options.requestTimeoutMilliseconds) ms; "
                    + "asking again on a new connection (the daemon restarted with the request in flight?)")
                try newDealer()
                continue
            case nil where !waitedForKeepalive && connected && options.endpoint.hasPrefix("tcp://")
                        && ToolClock.nanos() < firstAsked + Self.partitionWaitNanos:
                // A partition leaves a TCP connection up until keepalive ends it (about 25 s): an idle tail gave up here
                // after two timeouts (10 s by default) and exited 69 where a daemon restart would have been waited for
                // (a reviewer, session 37). Waited until the keepalive has had its time; then as the cases above.
                waitedForKeepalive = true
                let deadline = firstAsked + Self.partitionWaitNanos
                let now = ToolClock.nanos()
                let seconds = (deadline > now ? deadline - now : 0) / 1_000_000_000 + 1
                diagnostics.line("warning: journal \(journal) did not answer within \(options.requestTimeoutMilliseconds) ms, "
                    + "twice; waiting up to \(seconds) s to learn whether the connection to \(options.endpoint) is cut "
                    + "(a network partition: TCP keepalive ends a silent connection in about 25 s) before giving up")
                while connected && reconnections == sentOn && ToolClock.nanos() < deadline {
                    readMonitor(timeoutMilliseconds: 100)
                }
                if liveConnectionLost() {
                    dealer = try reconnectJournalOnceBack(dealer, journal: journal)
                    afresh()
                    continue
                }
                if reconnections != sentOn {
                    try askTheRestartedDaemon()
                    continue
                }
                throw ToolError(exitCode: ToolError.unavailable, "journal \(journal) did not answer within "
                    + "\(options.requestTimeoutMilliseconds) ms, twice, and the connection to \(options.endpoint) is "
                    + "still up (\(journalHint))")
            case nil:
                throw ToolError(exitCode: ToolError.unavailable, "journal \(journal) did not answer within "
                    + "\(options.requestTimeoutMilliseconds) ms, twice (\(journalHint))")
            case .error(let message)?:
                throw ToolError(exitCode: ToolError.unavailable, "journal \(journal) answered: error: \(message)")
            case .malformed(let what)?:
                throw ToolError(exitCode: ToolError.unavailable, "journal \(journal) sent \(what)")
            case .batch(let bodies, let latest)?:
                return (bodies, latest)
            }
        }
    }

    /// What the journal holds under `sequence` now (nil: nothing there, pruned), and its latest alertSequence.
    private func journalMark(at sequence: UInt64) throws -> (mark: AlertMark?, latest: UInt64) {
        var mark: AlertMark?
        let (_, latest) = try ask(after: sequence - 1, limit: 1) { body in
            if AlertBody.alertSequence(body) == sequence { mark = AlertMark(body) }
        }
        return (mark, latest)
    }

    /// After the daemon was away: whether the journal still holds, under the numbers this tail covered, the alerts it
    /// printed there; if not (the store restored from a backup, and the restored daemon numbered past this tail before
    /// it asked), goes back to the first number that differs, with a warning, so that the catch-up prints the journal's
    /// alerts from there. Without it a tail that was away (stopped, partitioned, a slow host) while a backup was restored
    /// asked only for what followed its own number, and the restored daemon's alerts under the numbers it had printed
    /// were never printed (186 in a journal fault tester's run, session 36). The journal's alert under `covered` is
    /// compared first; only when it differs are the remembered numbers searched (`firstDifference`).
    private func rewindToFirstDifference(journal: String) throws {
        guard let (first, unseen) = try differenceUpTo(covered) else { return }
        diagnostics.line("warning: journal \(journal): its alert \(first) is not the alert \(first) this tail printed "
            + "(another alertId): the daemon's store was reset or restored from a backup while this tail was away. "
            + "Going on after \(first - 1) from the journal (alerts printed before may come again)" + unseen)
        covered = first - 1
    }

    /// When the journal's alert under `n` is not the one this tail printed there, the first remembered number up to `n`
    /// that differs (`firstDifference`); nil when `n` is not remembered, the journal holds nothing there (pruned, or
    /// its latest is below: the catch-up says so) or the same alert.
    private func differenceUpTo(_ n: UInt64) throws -> (first: UInt64, unseen: String)? {
        guard n > 0, let here = seen[n] else { return nil }
        let (mark, latest) = try journalMark(at: n)
        guard latest >= n, let mark, mark != here else { return nil }
        return try firstDifference(upTo: n)
    }

    /// The first of the remembered numbers up to `high` whose alert in the journal is not the one this tail printed,
    /// the one under `high` being known to differ; with the words to add when it is the oldest remembered (the
    /// difference may reach further back). Halving: the histories are taken to agree up to the backup and to differ
    /// after it (README, *Journal protocol*: a difference between two stretches that agree is not looked for).
    private func firstDifference(upTo high: UInt64) throws -> (first: UInt64, unseen: String) {
        let numbers = seen.keys.filter { $0 <= high }.sorted()
        guard !numbers.isEmpty else { return (high, "") }
        var (low, top) = (0, numbers.count - 1)  // numbers[top] differs
        while low < top {
            let middle = (low + top) / 2
            let (there, _) = try journalMark(at: numbers[middle])
            // Nothing there (pruned, below the journal's retention): nothing to compare, taken as the same.
            if there == nil || there == seen[numbers[middle]] { low = middle + 1 } else { top = middle }
        }
        let first = numbers[low]
        let unseen = low == 0 && first > 1
            ? "; alerts before \(first) were not compared (this tail remembers the last \(Self.seenLimit))" : ""
        return (first, unseen)
    }

    /// Forgets what the numbers covered were (the journal went back: they were another history's).
    private func forgetMarks() {
        seen = [:]
        seenOrder = []
        seenHead = 0
    }

    // MARK: Live

    private enum LiveAction {
        case done
        /// An alert after a gap: its sequence and a copy of its body.
        case gap(UInt64, [UInt8], String?)
        /// An alert at or below `covered`: a repeat (republished after a restart), or the daemon's numbers started
        /// again (its store reset or restored): the journal says which.
        case behind(UInt64)
        /// An alert under a number this tail covered with another alert (`seen`): the numbers started again.
        case renumbered(UInt64)
    }

    /// What identifies the alert printed under a number: its `alertId` and `eventType` (a raise and its resolution
    /// share the id).
    struct AlertMark: Equatable {
        let alertId: String?
        let eventType: String?
        init(_ body: UnsafeRawBufferPointer) {
            // One parse for both fields.
            (alertId, eventType) = body.withMemoryRebound(to: UInt8.self) { bytes in
                guard let members = JSONLines.objectMembers(bytes) else { return (nil, nil) }
                return (members["alertId"].flatMap { JSONLines.stringValue(bytes, $0) },
                        members["eventType"].flatMap { JSONLines.stringValue(bytes, $0) })
            }
        }
    }

    /// Keeps what `sequence` covered (the last `seenLimit` numbers).
    private func remember(_ sequence: UInt64, _ body: UnsafeRawBufferPointer) {
        // A number covered again (after going back): its place in the order is kept.
        if seen.updateValue(AlertMark(body), forKey: sequence) != nil { return }
        if seenOrder.count < Self.seenLimit {
            seenOrder.append(sequence)
        } else {
            seen[seenOrder[seenHead]] = nil
            seenOrder[seenHead] = sequence
            seenHead = (seenHead + 1) % Self.seenLimit
        }
    }

    private func readLive() throws {
        let poller = ZMQPoller()
        let subIndex = poller.add(sub)
        let monitorIndex = monitor.map { poller.add($0) }
        let journalMode = dealer != nil
        while true {
            var timeout = journalMode ? options.idleRecheckMilliseconds : -1
            if let warning = untilConnectWarning() { timeout = timeout < 0 ? warning : min(timeout, warning) }
            if let reconnect = reconnectIfDue() { timeout = timeout < 0 ? reconnect : min(timeout, reconnect) }
            let ready = try poller.poll(timeoutMilliseconds: timeout)
            if let monitorIndex, ready.isReadable(monitorIndex) {
                readMonitor()
                // Back after a loss (the loss and the return may come in one read): what was published meanwhile is
                // read from the journal now.
                if journalMode && verifyDue && connected { try catchUp() }
            }
            guard ready.isReadable(subIndex) else {
                // Not while the connection is lost: the daemon is away, and each request would time out (twice, then
                // exit 69) during a restart that outlasts them (a reviewer, session 35). The monitor is read first: a
                // poll that ended without events (its time up while this tail was stopped) left the loss unread, and
                // the re-check then waited on a journal that was gone while what the lost connection had delivered
                // stayed unprinted (a reviewer, session 37).
                if journalMode && ready.isEmpty {
                    readMonitor()
                    if !lostOne { try catchUp() }
                }
                continue
            }
            while let action = try sub.receiveMessage(timeoutMilliseconds: 0, { frames in
                try handleLive(frames, journalMode: journalMode)
            }) {
                if case .behind(let sequence) = action {
                    try catchUp(resumeAfter: sequence - 1)
                    continue
                }
                if case .renumbered(let sequence) = action {
                    try renumbered(sequence)
                    continue
                }
                guard case .gap(let sequence, let body, let topic) = action else { continue }
                try catchUp()
                if sequence > covered {
                    if sequence > covered + 1 {
                        diagnostics.line("alerts \(covered + 1)...\(sequence - 1) are not in the journal yet")
                    }
                    covered = sequence
                    try body.withUnsafeBytes { remember(sequence, $0); try emit($0, topic: topic) }
                }
            }
        }
    }

    /// A live alert under `sequence`, a number this tail printed another alert under. When the journal has that other
    /// alert, the live one is not the journal's: an alert of the history before a restore, still queued for this tail
    /// (a slow reader), or `--endpoint` and `--journal` on two daemons; it is said and not printed (it used to make the
    /// tail go back and print the journal's alerts again, once for each such alert). When the journal has another
    /// alert too, the daemon's numbers started again: from the first number that differs the journal's alerts are
    /// printed.
    private func renumbered(_ sequence: UInt64) throws {
        let (there, _) = try journalMark(at: sequence)
        if there == nil || there == seen[sequence] {
            if notTheJournalsSaid < 10 {
                notTheJournalsSaid += 1
                diagnostics.line("warning: alert \(sequence) from the daemon is neither the alert \(sequence) this tail "
                    + "printed nor the journal's: an alert of the daemon's history before its store was restored, still "
                    + "queued for this tail, or --endpoint and --journal are two daemons; not printed"
                    + (notTheJournalsSaid == 10 ? " (not said again)" : ""))
            }
            return
        }
        let (first, unseen) = try firstDifference(upTo: sequence)
        if renumberedSaid < 10 {
            renumberedSaid += 1
            diagnostics.line("warning: alert \(sequence) from the daemon is not the alert \(sequence) this tail printed "
                + "(another alertId): the daemon's store was reset or restored from a backup. Going on after "
                + "\(first - 1) from the journal (alerts printed before may come again)" + unseen
                + (renumberedSaid == 10 ? "; not said again" : ""))
        }
        covered = first - 1
        try catchUp()
    }

    private func handleLive(_ frames: borrowing ZMQFrames, journalMode: Bool) throws -> LiveAction {
        let last = frames.count - 1
        let isAlert = frames.count >= 2 && frames.withUnsafeBytes(at: 0) { $0.starts(with: "alert.".utf8) }
        // The topic frame is only needed for the text format.
        let topicFrame: String? = options.format == .text && frames.count >= 2 ? frames.string(at: 0) : nil
        return try frames.withUnsafeBytes(at: last) { body -> LiveAction in
            guard journalMode, isAlert, let sequence = AlertBody.alertSequence(body) else {
                try emit(body, topic: topicFrame)
                return .done
            }
            // The connection's news is read before each alert, not only between polls: a tail busy with what was
            // queued (a slow reader) read the restarted daemon's first alerts before the monitor's news of the loss,
            // printed them as the next numbers, and the check after the loss then compared the new history with
            // itself — 300 of 500 alerts of a restored journal never printed (a reviewer, session 37). Read while the
            // connection is down too, so that its return is known before the new connection's first alert (read only
            // until the loss was seen, a slow tail printed that alert as one the lost connection had delivered: the
            // second reviewer's B0).
            readMonitor()
            if sequence <= covered {
                guard sequence > 0 else { return .done }
                if let mark = seen[sequence], mark != AlertMark(body) { return .renumbered(sequence) }
                return .behind(sequence)
            }
            // Not printed straight after a loss once connected again: it may be the new connection's, a restored
            // daemon's, and the numbers covered are checked first (the gap's catch-up does). Before the connection is
            // back it can only be one the lost connection delivered: printed, not held until the daemon returns (which
            // it may never do; a reviewer, session 37).
            if sequence == covered + 1 && (!verifyDue || !connected) {
                covered = sequence
                remember(sequence, body)
                try emit(body, topic: topicFrame)
                return .done
            }
            return .gap(sequence, Array(body), topicFrame)
        }
    }
}
