import ContactWatchCommon
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `metrics.address` (`--metrics`): `HOST:PORT`, `[IPv6]:PORT`; port 0 picks a free port (logged).
public struct MetricsAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    /// nil when `text` is not HOST:PORT with a port from 0 to 65535 in decimal digits. A bracket is only the pair
    /// around a whole host: `[::1:9464` and `127.0.0.1]:9464` passed `--check-config` and failed the start with exit
    /// 69 (a fault tester, session 34), and a port such as `+80`, `080` or `-0` (0: a random port) was taken.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = String(text[text.index(after: colon)...])
        guard portText.first?.isASCII == true, portText.first?.isNumber == true, DecimalSyntax.isWholeNumber(portText),
              let port = Int(portText), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(" "), !host.contains("["), !host.contains("]") else { return nil }
        if host.contains(":") && !text.hasPrefix("[") { return nil }  // IPv6 needs brackets
        self.host = host
        self.port = port
    }
}

extension MetricsAddress {
    /// The host as the configuration judges it, from one lookup (a name is resolved once, for both answers).
    struct HostLookup: Sendable, Equatable {
        /// Why the host cannot be served on, as far as the configuration can tell; nil when it can. Left to the bind,
        /// a host that is no address passed `--check-config` and the start was exit 69, restarted for ever; `*` was
        /// looked up as a name and served on `::1` alone; `0177.0.0.1` was octal 127.0.0.1 (a fault tester, session 34).
        var problem: String?
        /// Whether every address it stands for is a loopback one: no other host can reach the endpoint. A host name
        /// mapped to 127.0.1.1 in `/etc/hosts`, as Debian does, is (it was warned of as exposed: a reviewer, session 37).
        var loopbackOnly: Bool
        /// A name the resolver did not answer for within `lookUp(within:)`'s bound: not known to resolve.
        var undecided = false
    }

    /// Why the host cannot be served on, and whether it is loopback only, with at most one `getaddrinfo` of a name.
    /// Asked separately, a name was resolved twice on the start path, before the start's timeout extension runs (the
    /// configuration's check, then the exposure warning: a dead resolver's wait twice over, a reviewer, session 38);
    /// now `resolve` asks once.
    func lookUp() -> HostLookup {
        if let problem = numericProblem { return HostLookup(problem: problem, loopbackOnly: false) }
        guard isName else {
            return HostLookup(problem: nil, loopbackOnly: EndpointExposure.isLoopbackAddress(host))
        }
        // A name: looked up now, as the bind will.
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result else {
            if let result { freeaddrinfo(result) }
            return HostLookup(problem: "\"\(host)\" cannot be resolved (\(String(cString: gai_strerror(rc))))", loopbackOnly: false)
        }
        defer { freeaddrinfo(first) }
        return HostLookup(problem: nil, loopbackOnly: host.lowercased() == "localhost" || EndpointExposure.isLoopbackOnly(first))
    }

    /// How long a reload waits for the lookup of a new `metrics.address` name (the address is used from the next start).
    static let reloadLookupSeconds = 2.0

    /// `lookUp()` on a thread of its own, waited for `seconds` at most: a name the resolver has not answered for by
    /// then is taken as no problem (the start that uses it looks it up again; `getaddrinfo` cannot be cancelled, so
    /// the thread ends when the resolver gives up).
    func lookUp(within seconds: Double) -> HostLookup {
        guard isName else { return lookUp() }
        let result = Mutex<HostLookup?>(nil)
        let done = DispatchSemaphore(value: 0)
        let address = self
        do {
            try SystemThread.start(name: "cw-lookup") {
                let found = address.lookUp()
                result.withLock { $0 = found }
                done.signal()
            }
        } catch {
            // No thread to spare (SystemThread): undecided, as a resolver that has not answered in time (the start
            // that uses the name looks it up again); not looked up here, where a reload waits.
            return HostLookup(problem: nil, loopbackOnly: false, undecided: true)
        }
        _ = done.wait(timeout: .now() + .milliseconds(Int(seconds * 1000)))
        return result.withLock { $0 } ?? HostLookup(problem: nil, loopbackOnly: false, undecided: true)
    }

    /// Whether the host is a name (not an IPv4 or IPv6 address, nor meant as one).
    private var isName: Bool {
        if host.contains(":") { return false }
        let lower = host.lowercased()
        let digitsAndDots = host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }
        let hexadecimal = lower.hasPrefix("0x")
            && lower.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || $0 == 0x78 || $0 == 0x2E }
        return !(digitsAndDots || hexadecimal)
    }

    /// Why an address (or `*`) cannot be served on, found without the resolver; nil for a usable address and for a name.
    private var numericProblem: String? {
        if host == "*" { return "\"*\" is not a host here: give 0.0.0.0 (every IPv4 interface) or [::] (every interface)" }
        var v4 = in_addr(), v6 = in6_addr()
        if host.contains(":") {
            let parts = host.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
            guard inet_pton(AF_INET6, String(parts[0]), &v6) == 1 else { return "\"\(host)\" is not an IPv6 address" }
            guard parts.count == 2 else { return nil }
            let linkLocal = withUnsafeBytes(of: v6) { $0[0] == 0xFE && $0[1] & 0xC0 == 0x80 }
            if !linkLocal { return "\"\(host)\": a zone (%\(parts[1])) only goes with a link-local address (fe80::…)" }
            if if_nametoindex(String(parts[1])) == 0 {
                return "\"\(host)\": this host has no network interface named \"\(parts[1])\""
            }
            return nil
        }
        // Digits and dots, or a hexadecimal `0x…` form (what `inet_aton` takes): meant as an IPv4 address, which must
        // be four decimal numbers. A name such as `db1` or `cafe2` is a name.
        if !isName {
            return inet_pton(AF_INET, host, &v4) == 1 ? nil : "\"\(host)\" is not an IPv4 address of four decimal numbers (such as 127.0.0.1)"
        }
        return nil
    }
}

/// A one-shot signal from the metrics server to the pipeline: "bound" (with the port) or never. The pipeline
/// waits for it before it opens its sockets, so READY=1 means the metrics endpoint is up too.
public final class MetricsBound: Sendable {
    private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int?, Never>])>((nil, []))

    public init() {}

    func succeed(port: Int) {
        let waiters = state.withLock { s -> [CheckedContinuation<Int?, Never>] in
            s.port = port
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(returning: port) }
    }

    /// The bound port, or nil when the task was cancelled first (the server failed and the group is stopping).
    public func wait() async -> Int? {
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Int?, Never>) in
                let port: Int?? = state.withLock { s in
                    if let p = s.port { return .some(p) }
                    if Task.isCancelled { return .some(nil) }
                    s.waiters.append(c)
                    return .none
                }
                if let port { c.resume(returning: port) }
            }
        } onCancel: {
            let waiters = state.withLock { s -> [CheckedContinuation<Int?, Never>] in
                defer { s.waiters = [] }
                return s.waiters
            }
            for w in waiters { w.resume(returning: nil) }
        }
    }
}

/// Serves `GET /metrics` (Prometheus text format) and `GET /healthz` (200 while the processing loop turned within
/// the last 10 s, else 503) with Hummingbird, on one event-loop thread of its own: never on the processing thread.
///
/// The endpoint has no authentication, so what one client can take is bounded: at most `maxConnections` connections
/// are held at once (further ones wait in the listen backlog, not in the daemon), and one that sends or receives
/// nothing for `idleTimeout` is closed. Without these, each connection that never finished its request held a
/// descriptor for ever, and once the daemon's descriptors ran out libzmq aborted it at the next consumer's connection.
struct MetricsService: Service, CustomStringConvertible {
    /// ServiceLifecycle names each service in its debug lines: the default description dumped every stored property
    /// (300 characters and more a line; an operator audit, session 43).
    var description: String { "metrics" }
    /// The most HTTP connections held at once (a scraper uses one; a few more for people with curl).
    static let maxConnections = 32
    /// A connection idle this long (a request never finished, a kept-alive connection unused) is closed.
    static let idleTimeout: TimeAmount = .seconds(10)
    /// A connection open this long is closed after its next answer (`NonPersistentRequestMarker`): a client that
    /// keeps asking cannot hold a slot for ever.
    static let maxConnectionAge: TimeAmount = .seconds(10)
    /// A connection whose answers stay backed up (unwritable) this long is closed (`StalledConnectionCloser`).
    static let stalledWriteTimeout: TimeAmount = .seconds(10)
    /// A connection open this long is closed whatever it is doing (`StalledConnectionCloser`): the age and then the
    /// idle timeout bound a client that finishes its requests, but not one whose request never ends — a body trickled
    /// a byte or a chunk a second is never idle and never answered, and 32 of them held every slot for as long as they
    /// liked, `/healthz` unanswered (a security tester, session 44). A client that asks just under every
    /// `idleTimeout` makes its last request (the first after `maxConnectionAge`) up to 20 s after it connected, so that
    /// request has `stalledWriteTimeout` more for its answer (at 20 s the cap cut it: a reviewer, session 44).
    static let maxConnectionLifetime: TimeAmount = maxConnectionAge + idleTimeout + stalledWriteTimeout
    /// After the daemon's stop has begun, a connection still open this long is closed (`StalledConnectionCloser`): the
    /// daemon stops within 5 s of SIGTERM (cli.md).
    static let stopGrace: TimeAmount = .seconds(1)

    let address: MetricsAddress
    let metrics: DaemonMetrics
    let counters: RuntimeCounters
    let logger: Logger
    let bound: MetricsBound

    func run() async throws {
        let router = Router()
        let metrics = self.metrics
        let counters = self.counters
        router.get("metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition(counters))))
        }
        // HEAD as GET without the body (a monitor's "is it there?"; it used to be 404). Its Content-Length is the
        // length GET would send (RFC 9110 §8.6; it said 0 — a fault tester, session 33), so the exposition is built.
        router.head("metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            headers[.contentLength] = String(metrics.exposition(counters).count)
            return Response(status: .ok, headers: headers)
        }
        router.get("healthz") { _, _ -> Response in
            let alive = DaemonMetrics.isAlive(counters)
            return Response(status: alive ? .ok : .serviceUnavailable,
                            body: .init(byteBuffer: ByteBuffer(string: DaemonMetrics.healthText(counters, alive: alive))))
        }
        // HEAD as GET without the body, as for /metrics: a load balancer's or monitor's HEAD check got 404 (a fault
        // tester, session 35).
        router.head("healthz") { _, _ -> Response in
            let alive = DaemonMetrics.isAlive(counters)
            var headers = HTTPFields()
            headers[.contentLength] = String(DaemonMetrics.healthText(counters, alive: alive).utf8.count)
            return Response(status: alive ? .ok : .serviceUnavailable, headers: headers)
        }
        // Any other method on either path: 405 with the methods it takes (RFC 9110 §15.5.6), not 404 as if the path
        // did not exist (a metrics endpoint attacker, session 37).
        for path in ["metrics", "healthz"] {
            for method in [HTTPRequest.Method.post, .put, .delete, .patch, .options, .trace, .connect] {
                router.on(RouterPath(path), method: method) { _, _ -> Response in
                    var headers = HTTPFields()
                    headers[.allow] = "GET, HEAD"
                    return Response(status: .methodNotAllowed, headers: headers)
                }
            }
        }
        let group = Self.group
        let address = self.address
        let logger = self.logger
        let bound = self.bound
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                ClosingHTTP1Channel(inner: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: Self.idleTimeout)),
                                    logger: logger)
            },
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "contactwatchd",
                                 availableConnectionsDelegate: .maximum(Self.maxConnections, logger: logger)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                let host = address.host.contains(":") ? "[\(address.host)]" : address.host
                logger.info("metrics served", metadata: ["url": "http://\(host):\(port)/metrics"])
                bound.succeed(port: port)
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger
        )
        // The close lines held back are said once the closes have stopped for an interval, and at the stop: they were
        // said only with the next close's line, so a flood's last closes went unsaid (systemd 252, session 37).
        @Sendable func sayClosesHeldBack(stopping: Bool) {
            ClosingHTTP1Channel.closedLines.sayHeldBack(to: logger, level: .notice, stopping: stopping) { _ in
                "lines about metrics connections closed"
            }
        }
        let heldBack = group.next().scheduleRepeatedTask(initialDelay: .seconds(2), delay: .seconds(2)) { _ in
            sayClosesHeldBack(stopping: false)
        }
        defer {
            heldBack.cancel()
            sayClosesHeldBack(stopping: true)
        }
        do {
            try await app.run()
        } catch is CancellationError {
        } catch {
            throw DaemonError.endpoint("cannot serve metrics on \(address.host):\(address.port): \(Self.explain(error))")
        }
    }

    /// The endpoint's event loop: one thread, for the life of the process, never shut down (as NIO's own singleton
    /// groups are). Shut down when the server's run returned, it was sometimes shut down before a connection that had
    /// just been served finished closing, and NIO wrote `ERROR: Cannot schedule tasks on an EventLoop that has already
    /// shut down. This will be upgraded to a forced crash in future SwiftNIO versions.` on standard error, raw, between
    /// `stopping` and `stopped` (a README audit, session 24: 4 stops in 17 after a scrape; here 4 in 60, and 0 in 100
    /// with the group kept).
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// A bind failure as an operator reads it: NIO's `IOError` describes itself as
    /// "bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)", a call signature and a stray parenthesis.
    static func explain(_ error: any Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        let reason = String(cString: strerror(io.errnoCode))
        switch io.errnoCode {
        case EADDRINUSE: return "\(reason): another process is listening on that port; choose another metrics.address (--metrics)"
        case EADDRNOTAVAIL: return "\(reason): no interface of this host has that address"
        case EACCES: return "\(reason): a port below 1024 needs CAP_NET_BIND_SERVICE"
        default: return "\(reason) (errno \(io.errnoCode))"
        }
    }
}

/// Hummingbird's HTTP/1 channel, with a connection closed after the answer to a request that does not ask to keep it.
///
/// Hummingbird closes only on a `Connection` header that is exactly `close`: it reads requests as HTTP types, which
/// carry no version, so an HTTP/1.0 request without keep-alive (RFC 9112 §9.3: not persistent) or a `Connection:
/// Close` kept its connection open after the answer until the idle timeout, holding one of the `maxConnections`
/// slots for 10 s (a fault tester, session 35: 32 shell health checks delayed a scrape by 9.5 s). A handler between
/// NIO's decoder and Hummingbird's conversion marks such a request `Connection: close`, judged by NIO's own
/// `isKeepAlive` (version, and the header's tokens in any case); and likewise every request on a connection open
/// for `MetricsService.maxConnectionAge`.
///
/// It also puts a `StalledConnectionCloser` first in each connection's pipeline.
struct ClosingHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    /// The daemon's logger, for the stalled connections closed (rate-limited).
    let logger: Logger

    /// The lines about connections closed, shared by every connection: at most 10 at once, then one per 6 s. What it
    /// holds back is said once the closes stop for 6 s, and at the stop (`MetricsService.run`).
    static let closedLines = LogLimiter()

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let daemonLogger = self.logger
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(NonPersistentRequestMarker(maxAge: MetricsService.maxConnectionAge),
                                     position: .after(decoder))
            try operations.addHandler(StalledConnectionCloser(
                stalledWriteTimeout: MetricsService.stalledWriteTimeout, stopGrace: MetricsService.stopGrace,
                lifetime: MetricsService.maxConnectionLifetime
            ) { why, peer in
                guard let notLogged = Self.closedLines.admit("closed") else { return }
                var metadata: Logger.Metadata = ["peer": "\(peer)"]
                if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
                daemonLogger.notice("metrics: closed a connection \(why)", metadata: metadata)
            }, position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Marks each request head that does not keep its connection with `Connection: close` (see `ClosingHTTP1Channel`),
/// and so every request once its connection has been open for `maxAge`, and every `CONNECT`: the answer is the
/// connection's last, and says so (`Connection: close` on the response head too; Hummingbird closed without it, and a
/// client learnt of the close only by reading the end of the stream — a reviewer, session 40).
///
/// Without the age, 32 keep-alive clients that each asked for `/healthz` every 8 s (4 requests a second in all, each
/// answer read) held every one of the `maxConnections` slots for as long as they liked — never idle, never backed up —
/// and a scrape waiting in the listen backlog got nothing for as long as they stayed (a fault tester, session 40).
/// Closed at their first request after `maxAge`, each gives its slot back within `maxAge` plus the idle timeout, and
/// the listen backlog hands it to the connection that has waited longest. A scraper that keeps its connection
/// (Prometheus does) opens a new one at its next scrape after that: one TCP handshake.
///
/// After a `CONNECT` head NIO's decoder parses nothing more (what follows would be a tunnel's bytes) and kept every byte
/// the client sent after it, read after read, so the idle timeout never fired: one client took the daemon from 50 MB
/// to 1 GB resident, and the 405's answer, with no length, held its slot until the idle timeout (a reviewer, session
/// 40). A `CONNECT`'s connection now reads nothing more and is closed here once its answer is written: Hummingbird,
/// waiting for the end of a request the decoder never ends, kept it open until the idle timeout.
///
/// Event-loop bound: every method runs on the connection's event loop.
final class NonPersistentRequestMarker: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let maxAge: TimeAmount
    private var opened = NIODeadline.now()
    /// What follows a request's answer.
    private enum Ending {
        /// The connection stays open.
        case keepOpen
        /// Hummingbird closes it (the request was marked `Connection: close`).
        case closed
        /// It is closed here once the answer's end is written (a `CONNECT`, marked too).
        case closedHere
    }
    /// Per request head read and not yet answered, in order.
    private var endings: [Ending] = []
    /// The answer being written is a `CONNECT`'s: the connection is closed once its end is written.
    private var closeAtEnd = false

    init(maxAge: TimeAmount) { self.maxAge = maxAge }

    func handlerAdded(context: ChannelHandlerContext) { opened = .now() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let ending: Ending = head.method == .CONNECT ? .closedHere
            : !head.isKeepAlive || NIODeadline.now() - opened >= maxAge ? .closed : .keepOpen
        endings.append(ending)
        if ending == .closedHere {
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
        if ending != .keepOpen {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.fireChannelRead(wrapInboundOut(.head(head)))
        } else {
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), closeAtEnd {
            closeAtEnd = false
            let written = promise ?? context.eventLoop.makePromise()
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
            context.write(data, promise: written)
            return
        }
        guard case .head(var head) = unwrapOutboundIn(data), !endings.isEmpty else {
            context.write(data, promise: promise)
            return
        }
        // An interim answer (100 Continue) is not the request's answer.
        if head.status.code < 200 && head.status != .switchingProtocols {
            context.write(data, promise: promise)
            return
        }
        let ending = endings.removeFirst()
        closeAtEnd = ending == .closedHere
        if ending != .keepOpen {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        } else {
            context.write(data, promise: promise)
        }
    }
}

/// Closes a metrics connection that holds the endpoint without reading: one whose answers have stayed backed up for
/// `stalledWriteTimeout` (NIO marks it unwritable once more than its high-water mark waits to be sent: a client that
/// pipelines requests and never reads the answers, or reads them far slower than it asks), one open for `lifetime`
/// (`MetricsService.maxConnectionLifetime`: a request that never ends), and, once the daemon's stop has begun (the
/// server's quiesce event), one still open after `stopGrace`.
///
/// Hummingbird's idle timeout watches reads only, and its handler waits, suspended, for the socket to take the answer:
/// 32 clients that each sent 2,000 requests and read nothing held every one of the `maxConnections` slots for as long
/// as they stayed (60 s and more; scrapes and `/healthz` unanswered, 142 MB more resident), and the graceful stop
/// waited for them: SIGTERM's stop took 15–25 s, or never ended until the unit's `TimeoutStopSec=` killed it (a metrics
/// endpoint attacker, session 37).
///
/// Event-loop bound: every method runs on the connection's event loop.
final class StalledConnectionCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let stalledWriteTimeout: TimeAmount
    let stopGrace: TimeAmount
    let lifetime: TimeAmount
    /// Told why a connection was closed, with its peer address.
    let closed: @Sendable (_ why: String, _ peer: String) -> Void
    private var stalledClose: Scheduled<Void>?
    private var stopClose: Scheduled<Void>?
    private var lifetimeClose: Scheduled<Void>?

    init(stalledWriteTimeout: TimeAmount, stopGrace: TimeAmount, lifetime: TimeAmount,
         closed: @escaping @Sendable (_ why: String, _ peer: String) -> Void) {
        self.stalledWriteTimeout = stalledWriteTimeout
        self.stopGrace = stopGrace
        self.lifetime = lifetime
        self.closed = closed
    }

    /// Added as the connection is set up, once it is active.
    func handlerAdded(context: ChannelHandlerContext) {
        lifetimeClose = schedule(in: lifetime, on: context, why: "still open "
                                 + "\(lifetime.nanoseconds / 1_000_000_000) s after it was accepted (a request that never ended)")
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stalledClose?.cancel()
            stalledClose = nil
        } else if stalledClose == nil {
            stalledClose = schedule(in: stalledWriteTimeout, on: context, why: "whose answers backed up unread for "
                                    + "\(stalledWriteTimeout.nanoseconds / 1_000_000_000) s")
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, stopClose == nil {
            stopClose = schedule(in: stopGrace, on: context, why: "still open "
                                 + "\(stopGrace.nanoseconds / 1_000_000_000) s after the daemon's stop began")
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stalledClose?.cancel()
        stopClose?.cancel()
        lifetimeClose?.cancel()
        (stalledClose, stopClose, lifetimeClose) = (nil, nil, nil)
        context.fireChannelInactive()
    }

    private func schedule(in delay: TimeAmount, on context: ChannelHandlerContext, why: String) -> Scheduled<Void> {
        let channel = context.channel
        let closed = self.closed
        return context.eventLoop.scheduleTask(in: delay) {
            guard channel.isActive else { return }
            let peer = channel.remoteAddress.map { address in
                address.ipAddress.map { ip in (ip.contains(":") ? "[\(ip)]" : ip) + ":\(address.port ?? 0)" } ?? "\(address)"
            }
            closed(why, peer ?? "unknown")
            channel.close(promise: nil)
        }
    }
}
