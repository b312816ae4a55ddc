import ContactWatchCommon
import Logging
import ZeroMQ

/// The part a socket plays in the daemon.
public enum SocketRole: String, Sendable, CaseIterable {
    /// The SUB socket events arrive on.
    case input
    /// The XPUB socket alerts and notices leave on.
    case output
    /// The ROUTER socket of the journal thread.
    case journal
}

/// The one place where each socket gets its options, by role, before it binds or connects: high-water marks and
/// the input's message-size limit today; security (CURVE, ZAP domain) and monitors plug in here.
struct SocketSetup: Sendable {
    /// The largest frame the daemon takes in on the sockets it only receives small control messages on: a consumer's
    /// subscription on the output (a byte and a topic prefix; topics are under 64 bytes) and a journal request
    /// (`fetch` and two decimal numbers). A peer that sends a larger frame is disconnected by libzmq, as on the input
    /// past `input.maxMessageBytes`. Without it a frame of any size was taken in: a journal request copied by the
    /// journal thread (64 may queue per client); a subscription copied, logged whole, and stored by libzmq's XPUB one
    /// trie node per byte (a 4 MiB prefix: 150–200 MB of resident memory).
    static let maxControlFrameBytes: Int64 = 4096
    /// The largest frame on the output: a subscription is a byte and a topic prefix (topics are under 64 bytes), and
    /// the limit also applies to the handshake's commands, of which CURVE's INITIATE is the largest (about 300 bytes
    /// from a libzmq SUB: 256 refused every CURVE consumer). libzmq's XPUB stores a prefix one trie node per byte (~60
    /// bytes of resident memory each), so with `output.maxSubscriptions` this bounds what consumers can make it hold:
    /// 1,024 × 502 bytes ≈ 31 MB at most, where 4,096-byte subscriptions cost ~250 KB each.
    static let maxSubscriptionFrameBytes: Int64 = 512
    /// Subscription messages libzmq queues from one consumer connection for the processing thread (the XPUB's
    /// `ZMQ_RCVHWM`; libzmq's default is 1,000). libzmq puts a subscription into its trie when it takes it from that
    /// queue, before the daemon reads it (`SubscriptionTracker`), so the queue sets how far a flooding connection gets
    /// ahead of the cap: with 32, `SubscriptionFloodTests`' client had sent 1,800–4,400 of its 60,000 subscriptions
    /// when it was cut (peak +10 to +30 MB); with the default, 47,800 (+386 MB).
    static let subscriptionQueueMessages: Int32 = 32

    let config: DaemonConfiguration
    /// CURVE on the bound sockets (each its own ZAP domain), CURVE client on a connected input with a server key.
    let security: DaemonSecurity

    func configure(_ socket: ZMQSocket, as role: SocketRole) throws {
        // TCP keepalive on every socket: a connection whose peer's host vanished without closing it (a crash, a power
        // loss, a partition, a firewall that forgot an idle flow) is otherwise never seen to end. A connected input
        // then stayed deaf for good, in silence — the publisher's new process never got its subscription, no
        // disconnect was counted, no warning said so — and a lost consumer kept counting as a subscriber, holding
        // its place under `output.maxSubscriptions` (a bug hunter, session 46). About 25 s after the silence the
        // kernel ends it, libzmq reports it and reconnects. No effect on `ipc://`.
        try socket.setDeadPeerKeepalive()
        switch role {
        case .input:
            try socket.setReceiveHighWaterMark(Int32(clamping: config.receiveHighWaterMark))
            try socket.setMaxMessageSize(Int64(config.engine.maxMessageBytes))
            // A bound input's one monitor is read by the processing thread (InputSupervisor), which reports its
            // failed handshakes; the output's and the journal's are read by the ZAP handler's thread.
            if config.inputBind {
                try security.secureServer(socket, as: .input, watchHandshakes: false)
            } else {
                try security.secureInputClient(socket)
            }
        case .output:
            try socket.setSendHighWaterMark(Int32(clamping: config.sendHighWaterMark))
            // XPUB verboser: every subscribe and every unsubscribe is reported (SubscriptionTracker), repeats
            // included; plain verbose reports an unsubscribe only when the last holder of a prefix leaves, so two
            // consumers of `alert.` that both left would still count as one.
            try socket.setXPubVerboser(true)
            try socket.setMaxMessageSize(Self.maxSubscriptionFrameBytes)
            try socket.setReceiveHighWaterMark(Self.subscriptionQueueMessages)
            try security.secureServer(socket, as: .output)
        case .journal:
            // A client that sends requests without reading the replies costs at most this many queued replies
            // (each at most journal.maxReplyBytes); further replies to it are dropped, not queued.
            try socket.setSendHighWaterMark(JournalServer.sendQueueReplies)
            try socket.setReceiveHighWaterMark(JournalServer.receiveQueueRequests)
            try socket.setRouterMandatory(true)
            try socket.setMaxMessageSize(Self.maxControlFrameBytes)
            try security.secureServer(socket, as: .journal)
        }
    }
}

/// What one poll of the processing loop found.
struct PipelineReadiness {
    var input = false
    var output = false
    var durable = false
    var monitor = false
    var outputMonitor = false
}

/// The processing thread's sockets: the input SUB, the alert XPUB, the `inproc` PAIR on which the writer thread
/// reports durable batches, and the input's monitor. Created, used and closed on the processing thread only.
final class PipelineSockets {
    let input: ZMQSocket
    let output: ZMQSocket
    /// Bound here; the writer thread connects its own PAIR socket to it.
    let durable: ZMQSocket
    let durableEndpoint: String
    /// The input's monitor and what it means (reconnects, warnings, counts).
    var supervisor: InputSupervisor
    var monitor: ZMQMonitor { supervisor.monitor }
    /// The output's monitor when no ZAP handler reads it (no CURVE): failed accepts (`AcceptFailureLog`) and failed
    /// handshakes (`DaemonSecurity.handshakeFailed`), as the input's monitor reports them.
    let outputMonitor: ZMQMonitor?
    private let security: DaemonSecurity
    private let outputEndpoint: String
    /// What the bound sockets bound (`ZMQ_LAST_ENDPOINT`: the real port of a `:0` or `:*` bind): the input's when it
    /// binds, and the output's.
    let boundInput: String?
    let boundOutput: String
    private let withInput = ZMQPoller()
    private let withoutInput = ZMQPoller()

    /// Creates, configures, binds and connects the sockets. Throws exit 69 for an endpoint that cannot be bound or
    /// connected, 70 for anything else.
    init(config: DaemonConfiguration, context: ZMQContext, setup: SocketSetup, logger: Logger) throws(DaemonError) {
        var made: [ZMQSocket] = []
        func socket(_ type: ZMQSocketType, _ role: SocketRole?) throws(DaemonError) -> ZMQSocket {
            do {
                let s = try context.socket(type)
                made.append(s)
                if let role { try setup.configure(s, as: role) }
                return s
            } catch {
                for s in made { s.close() }
                throw DaemonError.internal("cannot create the \(role?.rawValue ?? "internal") socket: \(error)")
            }
        }
        input = try socket(.sub, .input)
        output = try socket(.xpub, .output)
        durable = try socket(.pair, nil)
        durableEndpoint = "inproc://contactwatch-durable-\(UInt64.random(in: 0 ... .max))"
        do {
            for prefix in config.subscribe { try input.subscribe(prefix) }
            try durable.bind(durableEndpoint)
        } catch {
            for s in made { s.close() }
            throw DaemonError.internal("cannot set up the internal sockets: \(error)")
        }
        // The input's monitor starts before it binds or connects, so that no connection goes unseen.
        do {
            supervisor = try InputSupervisor(input: input, endpoints: config.inputs, bound: config.inputBind,
                                             receiveHighWaterMark: config.receiveHighWaterMark,
                                             security: setup.security, logger: logger, now: ContinuousClock.now,
                                             maxMessageBytes: config.engine.maxMessageBytes)
        } catch {
            for s in made { s.close() }
            throw DaemonError.internal("cannot monitor the input socket: \(error)")
        }
        // With CURVE the output's one monitor is the ZAP handler's, which reports failed accepts and handshakes itself.
        // Without, its own: a port probe or a peer of another mechanism was counted and logged on the input only (a
        // fault tester, session 35).
        do {
            outputMonitor = setup.security.isCurve ? nil : try output.startMonitor(events: ZMQMonitor.unsecuredServerEvents)
        } catch {
            supervisor.monitor.close()
            for s in made { s.close() }
            throw DaemonError.internal("cannot monitor the output socket: \(error)")
        }
        security = setup.security
        outputEndpoint = config.output
        do {
            try Self.attach(config: config, input: input, output: output)
            boundInput = config.inputBind ? try? input.lastEndpoint : nil
            boundOutput = (try? output.lastEndpoint) ?? config.output
        } catch {
            supervisor.monitor.close()
            outputMonitor?.close()
            for s in made { s.close() }
            throw error
        }
        for poller in [withInput, withoutInput] {
            if poller === withInput { poller.add(input) }
            poller.add(output)
            poller.add(durable)
            poller.add(monitor)
            if let outputMonitor { poller.add(outputMonitor) }
        }
    }

    private static func attach(config: DaemonConfiguration, input: ZMQSocket, output: ZMQSocket) throws(DaemonError) {
        // A relative ipc:// path under a working directory deleted since the start: a bind fails (and says so), but a
        // connect is taken and never made — ready, and deaf without a word (a reviewer, session 54).
        for endpoint in config.inputs + [config.output] + [config.journal].compactMap({ $0 }) {
            if let gone = WorkingDirectory.goneReason(forEndpoint: endpoint) {
                throw DaemonError.endpoint("cannot use the endpoint \(endpoint): \(gone); give an absolute path")
            }
        }
        for endpoint in config.inputs {
            do {
                if config.inputBind { try input.bind(endpoint) } else { try input.connect(endpoint) }
            } catch {
                throw DaemonError.endpoint("cannot \(config.inputBind ? "bind" : "connect") the input endpoint: \(error)"
                    + (config.inputBind ? EndpointSyntax.bindFailureHint(endpoint) : ""))
            }
        }
        do { try output.bind(config.output) } catch {
            throw DaemonError.endpoint("cannot bind the output endpoint \(config.output): \(error)"
                + EndpointSyntax.bindFailureHint(config.output))
        }
    }

    /// Waits up to `timeoutMilliseconds` for a socket to be ready; the input is left out when `acceptingInput` is
    /// false (the batch is full and the writer busy, or alerts of an earlier run are still to be published).
    /// `subscribingNewInputs`: with `acceptingInput` false, whether a publisher that connects now is subscribed all
    /// the same (what it sends waits in the daemon until input is read again).
    func poll(acceptingInput: Bool, subscribingNewInputs: Bool = true,
              timeoutMilliseconds: Int) throws(DaemonError) -> PipelineReadiness {
        let poller = acceptingInput ? withInput : withoutInput
        // Left out of the poll, the input's own commands wait too — among them a new connection's, whose subscription
        // libzmq sends only once the socket handles it: a publisher that connected while the daemon republished after
        // a restart (seconds) was sent no subscription and its PUB dropped every message until then. Handled here each
        // turn (at most `idle` ms apart), still reading none.
        if !acceptingInput && subscribingNewInputs { try? input.processPendingCommands() }
        let result: ZMQPollResult
        do { result = try poller.poll(timeoutMilliseconds: timeoutMilliseconds) } catch {
            if ZMQError.isInterrupted(error) { return PipelineReadiness() }
            throw DaemonError.internal("poll failed: \(error)")
        }
        var r = PipelineReadiness()
        var k = 0
        if acceptingInput {
            r.input = result.isReadable(0)
            k = 1
        }
        r.output = result.isReadable(k)
        r.durable = result.isReadable(k + 1)
        r.monitor = result.isReadable(k + 2)
        r.outputMonitor = outputMonitor != nil && result.isReadable(k + 3)
        return r
    }

    /// Reads the output monitor's events: each failed accept and each failed handshake is counted and logged
    /// (rate-limited).
    func readOutputMonitor() {
        guard let events = try? outputMonitor?.events() else { return }
        security.reportUnsecuredServerEvents(events, on: .output, endpoint: outputEndpoint)
    }

    /// Reads every pending durability report (each is only a wake-up).
    func drainDurable() {
        while (try? durable.receiveMessage(timeoutMilliseconds: 0) { _ in true }) != nil {}
    }

    func close() {
        monitor.close()
        outputMonitor?.close()
        input.close()
        output.close()
        durable.close()
    }
}
