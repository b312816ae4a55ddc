// The project's only door to libzmq.
//
// This file owns every C handle: the context, the sockets, the message parts (`zmq_msg_t`) and
// the poll items. Nothing outside it sees a raw pointer to any of them.
//
// Threading model
// ---------------
// * `ZMQContext` is `Sendable`: libzmq contexts are thread-safe. `shutdown()` may be called from
//   any thread; it makes every blocking call on every socket of the context fail with ETERM.
// * `ZMQSocket` is NOT `Sendable`. A socket has exactly one owning thread: the thread (or actor,
//   or task that stays on one thread) that created it, and it is used and closed there only.
//   Swift's strict concurrency checking enforces that it is never handed to another isolation
//   domain. To use a socket on a worker thread, create it on that thread.
// * `ZMQPoller` and `ZMQMonitor` hold sockets and are bound to the same owning thread.
// * `ZMQAuthenticator` (the ZAP handler, RFC 27) is `Sendable`: it owns one thread of its own, which
//   creates, uses and closes the ZAP ROUTER socket (`inproc://zeromq.zap.01`) and the monitor readers
//   it watches handshakes with. Its allow-lists sit behind a lock and can be swapped from any thread
//   (SIGHUP); its refusal counters are atomics readable from any thread. The handler blocks in `zmq_poll`
//   without a timeout; other threads reach it only through a `WakePipe` (a self-pipe it polls beside its
//   sockets: a new monitor to read, stop), and it answers through one (started, a monitor read) — never
//   by sharing a socket, and with no sleep loop on either side.
//
// Lifetimes
// ---------
// * Every socket keeps its context alive; the context is terminated (`zmq_ctx_term`) when the
//   last reference goes away or on `close()`.
// * Every socket gets `ZMQ_LINGER` at creation (default 200 ms) so that closing a socket or
//   terminating the context can never hang on unsent messages.
// * A socket bound or connected to a `tcp://` endpoint whose host is in brackets (`tcp://[::1]:7402`) gets `ZMQ_IPV6`
//   first: libzmq's default is IPv4 only, and such a bind failed "No such device" after `--check-config` had passed
//   it, a connect never connected, without a word. Only then: with `ZMQ_IPV6` an IPv4 address binds as an IPv6
//   socket, and its last endpoint reads `tcp://[::ffff:127.0.0.1]:PORT`.
// * Received frames are only reachable inside `ZMQSocket.receiveMessage(timeoutMilliseconds:_:)` (and
//   `receiveWaiting(_:)`): libzmq keeps small messages inside the `zmq_msg_t` itself, so no data pointer may
//   escape. A frame's memory is released when the next message received into its slot replaces it, or when the
//   socket closes.
// * Sent frames are copied by libzmq (`zmq_send`), except the last frame of `send(_:lending:from:dontWait:)`: libzmq
//   reads those bytes from the caller's memory until it has written them out, possibly on its I/O thread after the
//   call returned. A `ZMQLoan` accounts for them: the caller keeps the bytes alive and unchanged until
//   `ZMQLoan.isReturned`; libzmq returns each message through `zmq_msg_init_data`'s free function, and the loan
//   keeps itself alive until the last one is back, so a socket closed or a context terminated with lent messages
//   still queued never returns them into freed memory.
// * A `ZMQAuthenticator` must outlive every CURVE server socket of its context: libzmq lets every
//   CURVE client in when no ZAP handler is bound. Create it before the sockets, stop it after closing them.
//   `makeCurveServer` also sets `ZMQ_ZAP_ENFORCE_DOMAIN` (where libzmq has it), so that a handler gone early — its
//   thread ended by an error — refuses every client instead of letting each one in; such an end is reported
//   (`ZMQAuthenticator.unexpectedEnd`).

internal import CZeroMQ
import ContactWatchCommon
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Lent bytes

/// The account of messages whose last frame libzmq reads from the caller's memory (`ZMQSocket.send(_:lending:from:
/// dontWait:)`): made for a number of messages, it is returned once libzmq has released every one of them — written
/// out, dropped, or refused — and until then it keeps itself alive (libzmq may release a message on its own threads
/// after the socket that sent it is closed), and with itself `owner`, the object that holds the lent bytes.
/// `Sendable` because libzmq's threads return messages concurrently with the lender's `isReturned`; `unchecked`
/// only for `owner`, which is retained and released here and never used.
public final class ZMQLoan: @unchecked Sendable {
    private let outstanding: Atomic<Int>
    private let owner: AnyObject

    /// A loan for exactly `messages` sends of bytes held by `owner`; each send returns one, whatever its outcome.
    public init(messages: Int, keeping owner: AnyObject) {
        precondition(messages >= 0, "a loan covers zero or more messages")
        outstanding = Atomic(messages)
        self.owner = owner
        // Kept alive by itself while messages are out: balanced by the release in `giveBack` at zero.
        if messages > 0 { _ = Unmanaged.passRetained(self) }
    }

    /// Whether every message of the loan is back, i.e. libzmq no longer reads the lent bytes (acquiring: what libzmq
    /// did with them happened before).
    public var isReturned: Bool { outstanding.load(ordering: .acquiring) == 0 }

    /// Messages still out.
    public var messagesOut: Int { outstanding.load(ordering: .acquiring) }

    /// Returns one message (libzmq's free function, or a send that did not hand it over).
    fileprivate func giveBack() {
        let (before, _) = outstanding.subtract(1, ordering: .acquiringAndReleasing)
        precondition(before > 0, "a ZMQLoan returned more messages than it covered")
        if before == 1 { Unmanaged.passUnretained(self).release() }
    }
}

/// libzmq's free function for lent frames (`zmq_msg_init_data`), called once per message on whichever thread drops
/// it; `hint` is its `ZMQLoan`, alive until this call returns its last message.
private let zmqLoanReturn: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    guard let hint else { return }
    Unmanaged<ZMQLoan>.fromOpaque(hint).takeUnretainedValue().giveBack()
}

// MARK: - Errors

/// A libzmq failure: the operation that failed and the `zmq_errno()` code it left.
public struct ZMQError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The failing operation, e.g. `"zmq_bind(tcp://127.0.0.1:5555)"`.
    public let operation: String
    /// The error code (`zmq_errno()`, or a code set by this layer, such as `ENOTSOCK` for a closed socket).
    public let code: Int32

    /// Captures `zmq_errno()` for `operation`. Call right after the failing libzmq call.
    init(_ operation: String) {
        self.operation = operation
        self.code = zmq_errno()
        self.reason = nil
    }

    /// What this layer found, when it refused before libzmq was asked (e.g. "another process is listening on that
    /// socket file"); nil for libzmq's own failures.
    public let reason: String?

    /// An error with an explicit code (used for misuse detected by this layer).
    public init(operation: String, code: Int32, reason: String? = nil) {
        self.operation = reason.map { "\(operation) (\($0))" } ?? operation
        self.code = code
        self.reason = reason
    }

    /// The text of `zmq_strerror(code)`.
    public var message: String { String(cString: zmq_strerror(code)) }

    /// `message`, after this layer's reason when there is one: what a tool prints after "cannot bind ENDPOINT: ".
    public var explained: String { reason.map { "\($0) (\(message))" } ?? message }

    public var description: String { "\(operation): \(message) (errno \(code))" }

    /// EINTR: a signal interrupted a blocking call.
    public var isInterrupted: Bool { code == EINTR }
    /// ETERM: the context was shut down or terminated.
    public var isTerminated: Bool { code == ZMQError.ETERM }
    /// EAGAIN: non-blocking mode and nothing to do, or a send/receive timeout expired.
    public var isAgain: Bool { code == EAGAIN }
    /// EHOSTUNREACH: ROUTER_MANDATORY and the peer is unknown.
    public var isHostUnreachable: Bool { code == ZMQError.EHOSTUNREACH }

    /// Whether `error` is a `ZMQError` for which `isTerminated` holds.
    public static func isTerminated(_ error: any Error) -> Bool { (error as? ZMQError)?.isTerminated ?? false }
    /// Whether `error` is a `ZMQError` for which `isInterrupted` holds.
    public static func isInterrupted(_ error: any Error) -> Bool { (error as? ZMQError)?.isInterrupted ?? false }
    /// Whether `error` is a `ZMQError` for which `isAgain` holds.
    public static func isAgain(_ error: any Error) -> Bool { (error as? ZMQError)?.isAgain ?? false }

    // libzmq's own error numbers (ZMQ_HAUSNUMERO based); the macros are expressions Swift may not import.
    static let hausnumero: Int32 = 156_384_712
    /// libzmq's ETERM.
    public static let ETERM: Int32 = hausnumero + 53
    /// libzmq's EFSM (operation not valid in the socket's current state).
    public static let EFSM: Int32 = hausnumero + 51
    /// ENOTSOCK as libzmq reports it, and as this layer reports use of a closed socket.
    public static let ENOTSOCK: Int32 = systemENOTSOCK
    /// EHOSTUNREACH (ROUTER_MANDATORY, unknown peer).
    public static let EHOSTUNREACH: Int32 = systemEHOSTUNREACH
}

private let systemENOTSOCK = Int32(ENOTSOCK)
private let systemEHOSTUNREACH = Int32(EHOSTUNREACH)

/// The libzmq version linked at run time, e.g. `(4, 3, 4)`.
public func zmqVersion() -> (major: Int, minor: Int, patch: Int) {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return (Int(major), Int(minor), Int(patch))
}

// MARK: - Context

/// A libzmq context. Thread-safe; share it freely. Sockets keep it alive.
public final class ZMQContext: @unchecked Sendable {
    // The handle never changes after init; zmq_ctx_* calls on it are thread-safe.
    private let handle: UnsafeMutableRawPointer
    private let terminated = Mutex(false)

    /// Creates a context with `ioThreads` I/O threads.
    public init(ioThreads: Int = 1) throws {
        guard let h = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        handle = h
        if ioThreads != 1, zmq_ctx_set(h, ZMQ_IO_THREADS, Int32(ioThreads)) != 0 {
            let error = ZMQError("zmq_ctx_set(ZMQ_IO_THREADS)")
            zmq_ctx_term(h)
            throw error
        }
    }

    /// Makes every blocking call on every socket of this context, in any thread, return ETERM,
    /// and every later call too (except closing). Callable from any thread, any number of times.
    public func shutdown() {
        _ = zmq_ctx_shutdown(handle)
    }

    /// Shuts down and terminates the context. Blocks until every socket of the context is closed
    /// (sockets keep the context alive, so normally call this only once they are gone).
    /// Idempotent. `deinit` does the same.
    public func close() {
        let first = terminated.withLock { done -> Bool in
            if done { return false }
            done = true
            return true
        }
        guard first else { return }
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    deinit { close() }

    /// Creates a socket owned by the calling thread. See `ZMQSocket.init`.
    public func socket(_ type: ZMQSocketType, lingerMilliseconds: Int32 = ZMQSocket.defaultLingerMilliseconds,
                       framePoolCapacity: Int = ZMQSocket.defaultFramePoolCapacity) throws -> ZMQSocket {
        try ZMQSocket(context: self, type: type, lingerMilliseconds: lingerMilliseconds,
                      framePoolCapacity: framePoolCapacity)
    }

    fileprivate func createSocket(_ type: Int32) throws -> UnsafeMutableRawPointer {
        guard let s = zmq_socket(handle, type) else { throw ZMQError("zmq_socket") }
        return s
    }
}

// MARK: - Socket

/// The libzmq socket types.
public enum ZMQSocketType: Sendable, CaseIterable {
    case pub, sub, xpub, xsub, router, dealer, req, rep, push, pull, pair

    fileprivate var raw: Int32 {
        switch self {
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .xpub: ZMQ_XPUB
        case .xsub: ZMQ_XSUB
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pair: ZMQ_PAIR
        }
    }
}

/// A libzmq socket, owned by exactly one thread (the one that created it): not `Sendable`.
///
/// It owns a pool of `zmq_msg_t` in stable memory, reused for every received message.
public final class ZMQSocket {
    /// Linger given to every socket at creation unless told otherwise.
    public static let defaultLingerMilliseconds: Int32 = 200
    /// Frames kept accessible per received message by default (see `ZMQFrames`).
    public static let defaultFramePoolCapacity = 8

    /// The socket's type.
    public let type: ZMQSocketType
    private let context: ZMQContext
    private var handle: UnsafeMutableRawPointer?
    private let pool: UnsafeMutablePointer<zmq_msg_t>
    private let poolCapacity: Int

    /// Creates a socket and sets `ZMQ_LINGER`.
    /// - Parameter framePoolCapacity: how many frames of one received message stay accessible
    ///   (at least 3: the first `capacity - 1` frames and the last one).
    public init(context: ZMQContext, type: ZMQSocketType,
                lingerMilliseconds: Int32 = ZMQSocket.defaultLingerMilliseconds,
                framePoolCapacity: Int = ZMQSocket.defaultFramePoolCapacity) throws {
        self.type = type
        self.context = context
        let h = try context.createSocket(type.raw)
        var linger = lingerMilliseconds
        if zmq_setsockopt(h, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size) != 0 {
            let error = ZMQError("zmq_setsockopt(ZMQ_LINGER)")
            zmq_close(h)
            throw error
        }
        handle = h
        poolCapacity = max(3, framePoolCapacity)
        pool = .allocate(capacity: poolCapacity)
        for i in 0..<poolCapacity { zmq_msg_init(pool + i) }
    }

    deinit {
        close()
        for i in 0..<poolCapacity { zmq_msg_close(pool + i) }
        pool.deallocate()
    }

    /// Closes the socket (pending outgoing messages linger for at most the linger time). Idempotent.
    public func close() {
        if let h = handle {
            zmq_close(h)
            handle = nil
            // The last message's frames (kept until replaced, see `receiveMessage`) are released with the socket.
            for i in 0..<poolCapacity {
                zmq_msg_close(pool + i)
                zmq_msg_init(pool + i)
            }
        }
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { handle == nil }

    private func live(_ operation: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        guard let h = handle else { throw ZMQError(operation: operation(), code: ZMQError.ENOTSOCK) }
        return h
    }

    // MARK: Endpoints

    /// Binds to `endpoint` (`tcp://`, `ipc://`, `inproc://`).
    /// An `ipc://` path another process is serving is refused with `EADDRINUSE`, as a TCP port in use is: libzmq
    /// unlinks the socket file and binds anew, so a second daemon (or replay --bind) given the same path silently took
    /// over every later connection of the first one's consumers or publishers. A socket file nobody listens on (left
    /// by a process that was killed) is bound as before. A path that names anything but a socket (a regular file, a
    /// directory, a link) is refused with `EEXIST`: libzmq would unlink it — once, the daemon's own state store.
    /// Serialises the umask's change around an `ipc://` bind (`bind`).
    private static let umaskLock = Mutex<Void>(())

    public func bind(_ given: String) throws {
        let h = try live("zmq_bind(\(given))")
        let endpoint = Self.bindable(given)
        try allowIPv6(for: endpoint)
        let ipcPath = endpoint.hasPrefix("ipc://") ? String(endpoint.dropFirst("ipc://".count)) : nil
        if let path = ipcPath {
            if ipcPathIsOtherFile(path) {
                throw ZMQError(operation: "zmq_bind(\(given))", code: EEXIST,
                               reason: "the path names a file that is not a socket; binding would delete it")
            }
            if ipcPathIsServed(path) {
                throw ZMQError(operation: "zmq_bind(\(given))", code: EADDRINUSE, reason: "another process is listening on that socket file")
            }
        }
        // libzmq makes an ipc socket file in this thread, inside `zmq_bind` (its listener's `set_local_address`), with
        // the process's umask: others' bits are masked for that call, so the file never exists open to them, not even
        // for the moment before the chmod below (a connection made in that moment would have outlived the chmod). The
        // umask is the process's, so a file another thread makes meanwhile is at most more private than it would be.
        let bound: (rc: Int32, code: Int32)
        if let path = ipcPath, !path.hasPrefix("@") {
            // One bind at a time in the process: two interleaved would take each other's temporary mask for the
            // previous one and leave it in force for good (a reviewer, session 45). Nothing else here sets the umask.
            bound = Self.umaskLock.withLock { _ in
                let previous = umask(0o077)
                umask(previous | 0o007)
                defer { umask(previous) }
                let rc = zmq_bind(h, endpoint)
                return (rc, rc == 0 ? 0 : zmq_errno())
            }
        } else {
            let rc = zmq_bind(h, endpoint)
            bound = (rc, rc == 0 ? 0 : zmq_errno())
        }
        if bound.rc != 0 {
            // A relative `ipc://` path under a working directory deleted since the start said only "No such file or
            // directory" (session 53's note).
            let gone = bound.code == ENOENT ? ipcPath.flatMap { WorkingDirectory.goneReason(for: $0) } : nil
            throw ZMQError(operation: "zmq_bind(\(given))", code: bound.code, reason: gone)
        }
        // The socket file as the state directory and the store are, whatever the umask: nothing for others. libzmq
        // makes it with the process's umask, and under umask 000 (or 002) any local user connected to a plaintext
        // socket, published forged events and read every alert (a security tester, session 44); connecting needs
        // write permission, so the usual 022 kept them out already. The group's bits stay (a group of trusted
        // peers). An abstract name (`@…`) has no file. `lstat`: a link put in the socket's place is not followed to
        // give a file of the daemon's the socket's bits (a reviewer, session 44). With the umask above this is a second
        // guard, for a libzmq that would make the file elsewhere.
        if let path = ipcPath {
            var st = stat()
            if !path.hasPrefix("@"), lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK, st.st_mode & 0o007 != 0 {
                _ = chmod(path, st.st_mode & 0o770)
            }
        }
    }

    /// `endpoint` as libzmq can bind it: `tcp://localhost:PORT` (any case) as `tcp://127.0.0.1:PORT`, anything else
    /// as it is. libzmq 4.3.4 looks no name up to bind ("No such device"), where 4.3.5 binds the name's IPv4 address
    /// (`ZMQ_IPV6` off); spec/cli.md counts `localhost` among the loopback addresses a plaintext socket may use, bound or
    /// connected (a contract auditor, session 50), and RFC 6761 reserves the name for loopback, so it is not looked up.
    public static func bindable(_ endpoint: String) -> String {
        let prefix = "tcp://localhost:"
        guard endpoint.utf8.count > prefix.utf8.count,
              endpoint.prefix(prefix.count).lowercased() == prefix else { return endpoint }
        return "tcp://127.0.0.1:" + endpoint.dropFirst(prefix.count)
    }

    /// Connects to `endpoint`.
    public func connect(_ endpoint: String) throws {
        let h = try live("zmq_connect(\(endpoint))")
        try allowIPv6(for: endpoint)
        if zmq_connect(h, endpoint) != 0 { throw ZMQError("zmq_connect(\(endpoint))") }
    }

    /// Sets `ZMQ_IPV6` for `endpoint`: on when it is `tcp://` with a bracketed host (an IPv6 address; the file's
    /// header), off otherwise. libzmq reads the option at each bind or connect (and at each reconnect of that
    /// endpoint, from the value it copied then), so it is set every time: left on after a bracketed endpoint, a later
    /// `tcp://127.0.0.1:0` on the same socket bound as `[::ffff:127.0.0.1]`, `*` as `[::]`, and a name was looked up
    /// the IPv6 way (a reviewer, session 24).
    private func allowIPv6(for endpoint: String) throws {
        guard endpoint.hasPrefix("tcp://") else { return }
        // A connect may name a source first ("tcp://src;dst"): either may be IPv6.
        let hosts = endpoint.dropFirst("tcp://".count).split(separator: ";")
        try setInt32(ZMQ_IPV6, "ZMQ_IPV6", hosts.contains(where: { $0.hasPrefix("[") }) ? 1 : 0)
    }

    /// Unbinds from `endpoint` (use `lastEndpoint` for wildcard binds).
    public func unbind(_ endpoint: String) throws {
        let h = try live("zmq_unbind(\(endpoint))")
        if zmq_unbind(h, endpoint) != 0 { throw ZMQError("zmq_unbind(\(endpoint))") }
    }

    /// Disconnects from `endpoint`.
    public func disconnect(_ endpoint: String) throws {
        let h = try live("zmq_disconnect(\(endpoint))")
        if zmq_disconnect(h, endpoint) != 0 { throw ZMQError("zmq_disconnect(\(endpoint))") }
    }

    /// `ZMQ_LAST_ENDPOINT`: the endpoint last bound (with the real port after a `tcp://*:*` bind), as libzmq has it:
    /// a relative `ipc://` path stays relative, as the kernel names the socket's connections (`ZMQPeerConnection`
    /// compares with that). To say it to a person, `ZMQSocket.absolute(_:)`.
    public var lastEndpoint: String {
        get throws {
            let h = try live("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            var buffer = [CChar](repeating: 0, count: 1024)
            var size = buffer.count
            if zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size) != 0 {
                throw ZMQError("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            }
            let bytes = buffer.prefix(max(0, size - 1)).map { UInt8(bitPattern: $0) }
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// `endpoint` with a relative `ipc://` path taken from the working directory; any other endpoint (an absolute
    /// path, an abstract `@name`, `tcp://`) as it is. For what is said: libzmq binds `ipc://*` in a directory it makes
    /// in `$TMPDIR`, or in the working directory when that is unset, and reports it relative (`ipc://tmpZxMoKv/socket`),
    /// which a peer started anywhere else (a systemd unit's working directory is `/`) takes for another path (a
    /// new-operator walk-through, session 49). Made absolute in `lastEndpoint` itself, it no longer matched the path
    /// the kernel gives the socket's connections, and a relative output counted no subscriber (a reviewer, session 49).
    public static func absolute(_ endpoint: String) -> String {
        guard endpoint.hasPrefix("ipc://") else { return endpoint }
        let path = endpoint.dropFirst("ipc://".count)
        guard let first = path.first, first != "/", first != "@", let cwd = getcwd(nil, 0) else { return endpoint }
        defer { free(cwd) }
        let directory = String(cString: cwd)
        return "ipc://" + directory + (directory.hasSuffix("/") ? "" : "/") + path
    }

    // MARK: Options

    private func setInt32(_ option: Int32, _ name: String, _ value: Int32) throws {
        let h = try live("zmq_setsockopt(\(name))")
        var v = value
        if zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size) != 0 { throw ZMQError("zmq_setsockopt(\(name))") }
    }

    private func getInt32(_ option: Int32, _ name: String) throws -> Int32 {
        let h = try live("zmq_getsockopt(\(name))")
        var v: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(h, option, &v, &size) != 0 { throw ZMQError("zmq_getsockopt(\(name))") }
        return v
    }

    private func setBytes(_ option: Int32, _ name: String, _ bytes: some Collection<UInt8>) throws {
        let h = try live("zmq_setsockopt(\(name))")
        let array = Array(bytes)
        let rc = array.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw ZMQError("zmq_setsockopt(\(name))") }
    }

    /// SUB/XSUB: receive messages whose first frame starts with `prefix` (empty: everything).
    public func subscribe(_ prefix: some Collection<UInt8>) throws { try setBytes(ZMQ_SUBSCRIBE, "ZMQ_SUBSCRIBE", prefix) }
    /// SUB/XSUB: `subscribe` with the UTF-8 bytes of `prefix`.
    public func subscribe(_ prefix: String) throws { try subscribe(Array(prefix.utf8)) }
    /// SUB/XSUB: removes one earlier `subscribe` of the same prefix.
    public func unsubscribe(_ prefix: some Collection<UInt8>) throws { try setBytes(ZMQ_UNSUBSCRIBE, "ZMQ_UNSUBSCRIBE", prefix) }
    /// SUB/XSUB: `unsubscribe` with the UTF-8 bytes of `prefix`.
    public func unsubscribe(_ prefix: String) throws { try unsubscribe(Array(prefix.utf8)) }

    /// `ZMQ_LINGER` in ms (-1: forever, 0: drop pending messages at close).
    public func setLinger(milliseconds: Int32) throws { try setInt32(ZMQ_LINGER, "ZMQ_LINGER", milliseconds) }
    /// The current `ZMQ_LINGER` in ms.
    public func linger() throws -> Int32 { try getInt32(ZMQ_LINGER, "ZMQ_LINGER") }
    /// `ZMQ_RCVHWM`: messages queued per peer before dropping/blocking (0: unlimited). Set before bind/connect.
    public func setReceiveHighWaterMark(_ messages: Int32) throws { try setInt32(ZMQ_RCVHWM, "ZMQ_RCVHWM", messages) }
    /// `ZMQ_SNDHWM` (0: unlimited). Set before bind/connect.
    public func setSendHighWaterMark(_ messages: Int32) throws { try setInt32(ZMQ_SNDHWM, "ZMQ_SNDHWM", messages) }
    /// `ZMQ_RCVTIMEO` in ms (-1: block forever, 0: never block). A blocking receive that times out returns nil.
    public func setReceiveTimeout(milliseconds: Int32) throws { try setInt32(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO", milliseconds) }
    /// `ZMQ_SNDTIMEO` in ms (-1: block forever). A blocking send that times out returns false.
    public func setSendTimeout(milliseconds: Int32) throws { try setInt32(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO", milliseconds) }
    /// XPUB: pass every subscription message up, duplicates included.
    public func setXPubVerbose(_ on: Bool) throws { try setInt32(ZMQ_XPUB_VERBOSE, "ZMQ_XPUB_VERBOSE", on ? 1 : 0) }

    /// XPUB: report every unsubscribe too, not only the last one of a prefix (implies `ZMQ_XPUB_VERBOSE`).
    public func setXPubVerboser(_ on: Bool) throws { try setInt32(ZMQ_XPUB_VERBOSER, "ZMQ_XPUB_VERBOSER", on ? 1 : 0) }
    /// ROUTER: a send to an unknown routing id fails with EHOSTUNREACH instead of being dropped.
    public func setRouterMandatory(_ on: Bool) throws { try setInt32(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", on ? 1 : 0) }
    /// `ZMQ_IMMEDIATE`: queue messages only to completed connections.
    public func setImmediate(_ on: Bool) throws { try setInt32(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE", on ? 1 : 0) }
    /// TCP keepalive on each `tcp://` connection (`ZMQ_TCP_KEEPALIVE` and its idle, interval and count): after
    /// `idleSeconds` without traffic the kernel probes the peer every `intervalSeconds`, and ends the connection when
    /// `count` probes in a row go unanswered — a half-open connection (a partition, a peer host gone without closing)
    /// is otherwise kept for ever, and the monitor never reports it. `ipc://` is not affected. Set before connect.
    /// (Not ZMTP heartbeats: with them a SUB lost the messages a dropped connection had already delivered, which
    /// libzmq discards from the pipe when it reconnects; without, they were read first.)
    public func setTCPKeepalive(idleSeconds: Int32, intervalSeconds: Int32, count: Int32) throws {
        try setInt32(ZMQ_TCP_KEEPALIVE, "ZMQ_TCP_KEEPALIVE", 1)
        try setInt32(ZMQ_TCP_KEEPALIVE_IDLE, "ZMQ_TCP_KEEPALIVE_IDLE", idleSeconds)
        try setInt32(ZMQ_TCP_KEEPALIVE_INTVL, "ZMQ_TCP_KEEPALIVE_INTVL", intervalSeconds)
        try setInt32(ZMQ_TCP_KEEPALIVE_CNT, "ZMQ_TCP_KEEPALIVE_CNT", count)
    }
    /// How every long-lived `tcp://` socket of the daemon and the tail finds a peer whose host vanished without
    /// closing the connection: TCP keepalive (`setTCPKeepalive`: a silent connection is probed after 10 s and ended
    /// after 3 probes 5 s apart) and `ZMQ_TCP_MAXRT` (`TCP_USER_TIMEOUT`: data sent and not acknowledged for
    /// `deadPeerMilliseconds` ends it). Keepalive alone covers only a connection with nothing to send: with alerts
    /// queued to a vanished consumer the kernel retransmitted for about 15 minutes, the consumer still counted (a
    /// reviewer, session 46). A peer that is there but does not read still acknowledges (its window is just full), so
    /// it is not ended. About 25–30 s either way.
    public func setDeadPeerKeepalive() throws {
        try setTCPKeepalive(idleSeconds: 10, intervalSeconds: 5, count: 3)
        try setInt32(ZMQ_TCP_MAXRT, "ZMQ_TCP_MAXRT", Self.deadPeerMilliseconds)
    }
    public static let deadPeerMilliseconds: Int32 = 30_000
    /// `ZMQ_TCP_KEEPALIVE_IDLE` and `ZMQ_TCP_MAXRT` as set (tests).
    public var deadPeerSettings: (keepaliveIdleSeconds: Int32, maxRetransmitMilliseconds: Int32) {
        get throws {
            (try getInt32(ZMQ_TCP_KEEPALIVE_IDLE, "ZMQ_TCP_KEEPALIVE_IDLE"), try getInt32(ZMQ_TCP_MAXRT, "ZMQ_TCP_MAXRT"))
        }
    }
    /// `ZMQ_ROUTING_ID`: this socket's identity as a ROUTER peer sees it. Set before connect.
    public func setRoutingID(_ id: some Collection<UInt8>) throws { try setBytes(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", id) }

    /// `ZMQ_MAXMSGSIZE`: the largest inbound frame in bytes (-1: no limit); a peer sending more
    /// is disconnected. Set before bind/connect.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        let h = try live("zmq_setsockopt(ZMQ_MAXMSGSIZE)")
        var v = bytes
        if zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size) != 0 {
            throw ZMQError("zmq_setsockopt(ZMQ_MAXMSGSIZE)")
        }
    }

    // MARK: Security (CURVE, ZAP)

    /// Makes this socket a CURVE server with `secretKey`, authenticated by the ZAP handler under
    /// `zapDomain` (see `ZMQAuthenticator`). Set before bind.
    ///
    /// Also sets `ZMQ_ZAP_ENFORCE_DOMAIN`: without it libzmq lets every CURVE client in while no ZAP handler is bound
    /// (a handler whose thread ended), with it each is refused. Returns false when this libzmq refuses the option (a
    /// build without the draft API: EINVAL), which the caller should say.
    @discardableResult
    public func makeCurveServer(secretKey: CurveKey, zapDomain: String) throws -> Bool {
        try setInt32(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", 1)
        try setBytes(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", secretKey.bytes)
        try setZAPDomain(zapDomain)
        do { try setInt32(ZMQ_ZAP_ENFORCE_DOMAIN, "ZMQ_ZAP_ENFORCE_DOMAIN", 1) } catch let error as ZMQError where error.code == EINVAL {
            return false
        }
        return true
    }

    /// Whether ZAP is enforced for this socket's domain (`ZMQ_ZAP_ENFORCE_DOMAIN`); false where libzmq lacks it.
    public var enforcesZAP: Bool { (try? getInt32(ZMQ_ZAP_ENFORCE_DOMAIN, "ZMQ_ZAP_ENFORCE_DOMAIN")) == 1 }

    /// Makes this socket a CURVE client of a server whose public key is `serverKey`, authenticating
    /// with `keyPair`. Set before connect.
    public func makeCurveClient(keyPair: CurveKeyPair, serverKey: CurveKey) throws {
        try setBytes(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", serverKey.bytes)
        try setBytes(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", keyPair.publicKey.bytes)
        try setBytes(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", keyPair.secretKey.bytes)
    }

    /// `ZMQ_ZAP_DOMAIN`: the domain ZAP requests for this socket carry. Set before bind.
    public func setZAPDomain(_ domain: String) throws { try setBytes(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", Array(domain.utf8)) }

    /// Whether a message can be read now without blocking (`ZMQ_EVENTS` has `ZMQ_POLLIN`).
    public var hasPendingInput: Bool {
        get throws { (try getInt32(ZMQ_EVENTS, "ZMQ_EVENTS") & Int32(ZMQ_POLLIN)) != 0 }
    }

    /// Makes libzmq process the commands its I/O threads have queued for this socket, now (reading `ZMQ_EVENTS` does
    /// that without throttling). Among them are a peer connection's reports of how many messages it has taken from
    /// the send queue: a send refused for a full queue (EAGAIN) may have been refused on a stale count, which a send
    /// retried after this call no longer sees. `zmq_send` itself looks at these commands at most about once a
    /// millisecond, and a receive that finds a message waiting does not look at them at all.
    public func processPendingCommands() throws { _ = try getInt32(ZMQ_EVENTS, "ZMQ_EVENTS") }

    /// Whether the socket uses CURVE (`ZMQ_MECHANISM`).
    public var usesCurve: Bool {
        get throws { try getInt32(ZMQ_MECHANISM, "ZMQ_MECHANISM") == ZMQ_CURVE }
    }

    // MARK: Sending

    /// Sends one message of `frames.count` parts (ZMQ_SNDMORE on all but the last).
    /// - Parameter dontWait: with `true` the call never blocks; it returns `false` when the message
    ///   cannot be queued now (EAGAIN). A PUB socket never blocks anyway: it drops at the HWM.
    /// - Returns: `true` when queued; `false` on EAGAIN (non-blocking, or `ZMQ_SNDTIMEO` expired).
    @discardableResult
    public func send(buffers frames: [UnsafeRawBufferPointer], dontWait: Bool = false) throws -> Bool {
        let h = try live("zmq_send")
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (i, frame) in frames.enumerated() {
            guard try sendPart(h, frame, index: i, of: frames.count, dontWait: dontWait) else { return false }
        }
        return true
    }

    /// Sends part `i` of an `n`-part message; false when the first part met EAGAIN (nothing was queued).
    private func sendPart(_ h: UnsafeMutableRawPointer, _ frame: UnsafeRawBufferPointer, index i: Int, of n: Int,
                          dontWait: Bool) throws -> Bool {
        var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        if i < n - 1 { flags |= ZMQ_SNDMORE }
        while true {
            if zmq_send(h, frame.baseAddress, frame.count, flags) >= 0 { return true }
            let error = ZMQError("zmq_send")
            // Only the first part can meet EAGAIN: libzmq queues the rest of a started message.
            if error.isAgain && i == 0 { return false }
            if error.isInterrupted && i > 0 { continue }
            throw error
        }
    }

    /// Sends a two-part message (`first` with ZMQ_SNDMORE, then `last`): `send(buffers:dontWait:)` without the array,
    /// for a publisher that sends one topic and body per message on its hot path.
    @discardableResult
    public func send(_ first: UnsafeRawBufferPointer, _ last: UnsafeRawBufferPointer, dontWait: Bool = false) throws -> Bool {
        let h = try live("zmq_send")
        let wait: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        if zmq_send(h, first.baseAddress, first.count, wait | ZMQ_SNDMORE) < 0 {
            let error = ZMQError("zmq_send")
            // Only the first part can meet EAGAIN: libzmq queues the rest of a started message.
            if error.isAgain { return false }
            throw error
        }
        while zmq_send(h, last.baseAddress, last.count, wait) < 0 {
            let error = ZMQError("zmq_send")
            if !error.isInterrupted { throw error }
        }
        return true
    }

    /// Sends a two-part message whose last part is not copied: `first` (the topic) is copied as by `zmq_send`, `last`
    /// is handed to libzmq by reference (`zmq_msg_init_data`) and counted against `loan`, which must cover it. Every
    /// call accounts for one of the loan's messages whatever its outcome: sent (libzmq returns it when it has written
    /// it out or dropped it), not queued (EAGAIN: returned here, `false`) or failed (returned here, then thrown).
    /// `last`'s bytes must stay allocated and unchanged until `loan.isReturned`.
    @discardableResult
    public func send(_ first: UnsafeRawBufferPointer, lending last: UnsafeRawBufferPointer, from loan: ZMQLoan,
                     dontWait: Bool = false) throws -> Bool {
        let h: UnsafeMutableRawPointer
        do { h = try live("zmq_send") } catch {
            loan.giveBack()
            throw error
        }
        var msg = zmq_msg_t()
        // The bytes are only read: libzmq's API takes a mutable pointer but never writes through it.
        let data = UnsafeMutableRawPointer(mutating: last.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
        if zmq_msg_init_data(&msg, data, last.count, zmqLoanReturn, Unmanaged.passUnretained(loan).toOpaque()) != 0 {
            let error = ZMQError("zmq_msg_init_data")
            loan.giveBack()
            throw error
        }
        // From here the message owns the loan's share: closing it unsent returns it (the free function runs).
        let wait: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        if zmq_send(h, first.baseAddress, first.count, wait | ZMQ_SNDMORE) < 0 {
            let error = ZMQError("zmq_send")
            zmq_msg_close(&msg)
            // Only the first part can meet EAGAIN: libzmq queues the rest of a started message.
            if error.isAgain { return false }
            throw error
        }
        while zmq_msg_send(&msg, h, wait) < 0 {
            let error = ZMQError("zmq_msg_send")
            if !error.isInterrupted {
                zmq_msg_close(&msg)
                throw error
            }
        }
        return true
    }

    /// Sends a multipart message from byte arrays. See `send(buffers:dontWait:)`.
    /// Each frame is handed to libzmq in turn, within its own `withUnsafeBytes`: gathering every frame's pointer first
    /// took a nested closure per frame, each with a copy of the pointers so far — a stack level and quadratic memory per
    /// frame, so one journal reply of 17,720 alerts held 2.8 GB and a debug build's journal thread overflowed its
    /// stack (a bug hunter, session 46).
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        let h = try live("zmq_send")
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (i, frame) in frames.enumerated() {
            let sent = try frame.withUnsafeBytes { try sendPart(h, $0, index: i, of: frames.count, dontWait: dontWait) }
            guard sent else { return false }
        }
        return true
    }

    /// Sends a multipart message of UTF-8 strings. See `send(buffers:dontWait:)`.
    @discardableResult
    public func send(strings frames: [String], dontWait: Bool = false) throws -> Bool {
        try send(frames.map { Array($0.utf8) }, dontWait: dontWait)
    }

    // MARK: Receiving

    /// Receives one whole message (all its parts) and passes its frames to `body`, which may
    /// only read them during the call.
    ///
    /// - Parameter timeoutMilliseconds: `nil` blocks as `ZMQ_RCVTIMEO` says (forever by default);
    ///   `0` does not block; `> 0` waits at most that long.
    /// - Returns: `body`'s result, or `nil` when no message arrived in time (EAGAIN).
    /// - Throws: `ZMQError` (e.g. `isTerminated` after `ZMQContext.shutdown()`, `isInterrupted` on a signal).
    public func receiveMessage<R>(timeoutMilliseconds: Int? = nil,
                                  _ body: (borrowing ZMQFrames) throws -> R) throws -> R? {
        let h = try live("zmq_msg_recv")
        var flags: Int32 = 0
        if let timeout = timeoutMilliseconds {
            if timeout > 0 {
                var item = zmq_pollitem_t(socket: h, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
                let n = zmq_poll(&item, 1, timeout)
                if n < 0 { throw ZMQError("zmq_poll") }
                if n == 0 { return nil }
            }
            flags = ZMQ_DONTWAIT
        }
        // The pool's slots keep their frames after `body` returns, until the next receive into the same slot or the
        // socket's end: `zmq_msg_recv` deallocates whatever a message held before it stores the next part ("any
        // content previously stored in msg shall be properly deallocated", zmq_msg_recv(3)), and on EAGAIN leaves it
        // empty. So a frame is released by the call that replaces it instead of by a `zmq_msg_close` and
        // `zmq_msg_init` of its own: two library calls fewer per frame on the daemon's input
        // (`Benchmarks/README.md`, "The daemon outside the engine, fourth pass (seventh session)").
        // Frames are still readable only inside `body` (`ZMQFrames` does not escape it).
        if zmq_msg_recv(pool, h, flags) < 0 {
            let error = ZMQError("zmq_msg_recv")
            if error.isAgain { return nil }
            throw error
        }
        let (count, _, totalBytes) = try receiveRest(h)
        let frames = ZMQFrames(pool: pool, capacity: poolCapacity, count: count, totalBytes: totalBytes)
        return try body(frames)
    }

    /// The processing loop's receive: `receiveMessage(timeoutMilliseconds: 0)` for a consumer that reads only the
    /// first and the last frame, without the generic result and the per-frame calls: `body` gets the number of frames,
    /// the first frame when there are two or more (nil for a single frame) and the last frame, valid only during the
    /// call. Never blocks; false when no message is waiting.
    public func receiveWaiting(_ body: (_ frameCount: Int, _ first: UnsafeRawBufferPointer?,
                                        _ last: UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let h = try live("zmq_msg_recv")
        // Frames stay in the pool until replaced, as in `receiveMessage`.
        if zmq_msg_recv(pool, h, ZMQ_DONTWAIT) < 0 {
            let error = ZMQError("zmq_msg_recv")
            if error.isAgain { return false }
            throw error
        }
        let (count, last, _) = try receiveRest(h)
        let lastBytes = Self.bytes(last)
        body(count, count > 1 ? Self.bytes(pool) : nil, lastBytes)
        return true
    }

    /// After the first frame arrived in `pool[0]`: receives the message's other parts into the pool (frames beyond it
    /// share its last slot, so the last frame is always kept). Parts of a message arrive atomically: once the first is
    /// here, the rest are too. Returns the number of frames, the slot of the last and the bytes of all.
    @inline(__always) private func receiveRest(_ h: UnsafeMutableRawPointer) throws
        -> (count: Int, last: UnsafeMutablePointer<zmq_msg_t>, totalBytes: Int) {
        var count = 1
        var last = pool
        var totalBytes = zmq_msg_size(pool)
        while zmq_msg_more(last) != 0 {
            let slot = pool + min(count, poolCapacity - 1)
            if zmq_msg_recv(slot, h, 0) < 0 {
                let error = ZMQError("zmq_msg_recv")
                if error.isInterrupted { continue }
                throw error
            }
            count += 1
            last = slot
            totalBytes += zmq_msg_size(slot)
        }
        return (count, last, totalBytes)
    }

    @inline(__always) private static func bytes(_ msg: UnsafeMutablePointer<zmq_msg_t>) -> UnsafeRawBufferPointer {
        let size = zmq_msg_size(msg)
        guard size > 0, let data = zmq_msg_data(msg) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: data, count: size)
    }

    /// Receives one message (without blocking, or waiting up to `timeoutMilliseconds`), copies its first frame (at most `maxBytes` of it) and tells which
    /// connection it came from; nil when none is waiting. Other frames are received and dropped. For an XPUB's
    /// subscription messages: libzmq hands each up with the metadata of the connection that sent it (its
    /// `Peer-Address` and, for the deprecated `ZMQ_SRCFD`, the descriptor), on `tcp://` and `ipc://`; over `inproc://`
    /// there is none (`source` nil). Unsubscriptions libzmq makes itself when a connection ends carry none either.
    public func receiveFirstFrameWithSource(maxBytes: Int = 4096, timeoutMilliseconds: Int = 0) throws
        -> (first: [UInt8], source: ZMQMessageSource?)? {
        try receiveMessage(timeoutMilliseconds: timeoutMilliseconds) { frames in
            let first = frames.withUnsafeBytes(at: 0) { Array($0.prefix(maxBytes)) }
            return (first, ZMQMessageSource(message: pool))
        }
    }

    /// Receives one message and copies its accessible frames out (convenience for tests and tools).
    /// Frames beyond the pool (other than the last) are returned empty.
    public func receiveCopy(timeoutMilliseconds: Int? = nil) throws -> [[UInt8]]? {
        try receiveMessage(timeoutMilliseconds: timeoutMilliseconds) { frames in
            (0..<frames.count).map { frames.isAccessible($0) ? frames.bytes(at: $0) : [] }
        }
    }

    // MARK: Poll support

    fileprivate var pollHandle: UnsafeMutableRawPointer? { handle }

    // MARK: Monitor

    /// Starts a `zmq_socket_monitor` for this socket, reporting `events` (ZMQ_EVENT_* bits; default
    /// all) over an inproc PAIR socket. The monitor belongs to the same owning thread.
    /// A socket has at most one monitor: starting another replaces the first.
    public func startMonitor(events: Int32 = 0xFFFF) throws -> ZMQMonitor {
        let endpoint = try startMonitorPublisher(events: events)
        return try ZMQMonitor(context: context, endpoint: endpoint)
    }

    /// Stops this socket's monitor (`zmq_socket_monitor(s, NULL, 0)`). libzmq sends each event from its I/O thread
    /// and blocks there once about 2,000 are unread, which stops every connection of the context: a monitor that is
    /// no longer read (and not closed with the socket) must be stopped first. Idempotent.
    public func stopMonitor() {
        guard let h = handle else { return }
        _ = zmq_socket_monitor(h, nil, 0)
    }

    /// Makes libzmq publish this socket's events on a fresh inproc endpoint, returned, for a reader
    /// that may live on another thread (`ZMQAuthenticator.watchHandshakes`).
    fileprivate func startMonitorPublisher(events: Int32) throws -> String {
        let h = try live("zmq_socket_monitor")
        let endpoint = "inproc://contactwatch-monitor-\(monitorCounter.add(1, ordering: .relaxed).newValue)"
        if zmq_socket_monitor(h, endpoint, events) != 0 { throw ZMQError("zmq_socket_monitor(\(endpoint))") }
        return endpoint
    }

    fileprivate var owningContext: ZMQContext { context }
}

private let monitorCounter = Atomic<Int>(0)

// MARK: - Frames

/// The frames of one received message, readable only inside `ZMQSocket.receiveMessage`.
///
/// `count` is the true number of frames. Frames `0 ..< poolCapacity - 1` and the last frame are
/// accessible; frames in between (only for messages with more frames than the pool) were
/// received and released.
public struct ZMQFrames: ~Copyable {
    private let pool: UnsafeMutablePointer<zmq_msg_t>
    private let capacity: Int
    /// The number of frames the message had.
    public let count: Int
    /// The total size of all frames in bytes.
    public let totalBytes: Int

    fileprivate init(pool: UnsafeMutablePointer<zmq_msg_t>, capacity: Int, count: Int, totalBytes: Int) {
        self.pool = pool
        self.capacity = capacity
        self.count = count
        self.totalBytes = totalBytes
    }

    /// Whether frame `index` can be read (first frames and the last one).
    public func isAccessible(_ index: Int) -> Bool {
        index >= 0 && index < count && (index < capacity - 1 || index == count - 1)
    }

    private func slot(_ index: Int) -> UnsafeMutablePointer<zmq_msg_t> {
        precondition(isAccessible(index), "frame \(index) of \(count) is not accessible")
        return pool + (index < capacity - 1 ? index : capacity - 1)
    }

    /// The size in bytes of accessible frame `index`.
    public func size(at index: Int) -> Int { zmq_msg_size(slot(index)) }

    /// Calls `body` with the bytes of accessible frame `index`; the pointer is valid only during the call.
    public func withUnsafeBytes<R>(at index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let msg = slot(index)
        let size = zmq_msg_size(msg)
        guard size > 0, let data = zmq_msg_data(msg) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// A copy of accessible frame `index`.
    public func bytes(at index: Int) -> [UInt8] { withUnsafeBytes(at: index) { Array($0) } }

    /// Accessible frame `index` decoded as UTF-8 (invalid sequences replaced).
    public func string(at index: Int) -> String {
        withUnsafeBytes(at: index) { String(decoding: $0, as: UTF8.self) }
    }
}

// MARK: - Poller

/// Which readiness a poll waits for.
public struct ZMQPollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// `zmq_poll` over sockets owned by the calling thread (and, inside this file, plain descriptors such as a
/// `WakePipe`). Keeps its sockets alive.
public final class ZMQPoller {
    private var sockets: [ZMQSocket?] = []
    private var descriptors: [Int32] = []
    private var interests: [ZMQPollEvents] = []

    public init() {}

    /// Adds `socket`; returns its index in poll results.
    @discardableResult
    public func add(_ socket: ZMQSocket, events: ZMQPollEvents = .readable) -> Int {
        sockets.append(socket)
        descriptors.append(-1)
        interests.append(events)
        return sockets.count - 1
    }

    /// Adds a descriptor to wait on for reading (a `WakePipe`'s read end); returns its index in poll results.
    @discardableResult
    fileprivate func add(readableDescriptor fd: Int32) -> Int {
        sockets.append(nil)
        descriptors.append(fd)
        interests.append(.readable)
        return sockets.count - 1
    }

    /// Adds a monitor's event socket (readable when events are pending).
    @discardableResult
    public func add(_ monitor: ZMQMonitor) -> Int { add(monitor.socket, events: .readable) }

    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: just check) for a socket to be ready.
    /// - Returns: the result (empty on timeout).
    /// - Throws: `ZMQError` (`isTerminated` after shutdown, `isInterrupted` on a signal).
    public func poll(timeoutMilliseconds: Int) throws -> ZMQPollResult {
        var items: [zmq_pollitem_t] = []
        items.reserveCapacity(sockets.count)
        for (i, events) in interests.enumerated() {
            guard let socket = sockets[i] else {
                items.append(zmq_pollitem_t(socket: nil, fd: descriptors[i], events: events.rawValue, revents: 0))
                continue
            }
            guard let h = socket.pollHandle else { throw ZMQError(operation: "zmq_poll", code: ZMQError.ENOTSOCK) }
            items.append(zmq_pollitem_t(socket: h, fd: 0, events: events.rawValue, revents: 0))
        }
        let n = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if n < 0 { throw ZMQError("zmq_poll") }
        return ZMQPollResult(events: items.map { ZMQPollEvents(rawValue: $0.revents) })
    }

    /// Whether `socket` was ready for reading in `result`.
    public func isReadable(_ socket: ZMQSocket, in result: ZMQPollResult) -> Bool {
        guard let i = sockets.firstIndex(where: { $0 === socket && $0 != nil }) else { return false }
        return result.isReadable(i)
    }
}

/// What one `ZMQPoller.poll` found, by the index `add` returned.
public struct ZMQPollResult: Sendable {
    /// Readiness per added socket.
    public let events: [ZMQPollEvents]
    /// Indices of the sockets that are readable.
    public var readable: [Int] { events.indices.filter { events[$0].contains(.readable) } }
    /// Whether socket `index` is readable.
    public func isReadable(_ index: Int) -> Bool { events[index].contains(.readable) }
    /// Whether nothing was ready (timeout).
    public var isEmpty: Bool { events.allSatisfy { $0.isEmpty } }
}

// MARK: - Monitor

/// Counts of socket events read from a monitor.
public struct ZMQMonitorCounts: Sendable, Equatable {
    public var connected = 0
    public var accepted = 0
    /// `ZMQ_EVENT_DISCONNECTED`: a session ended unexpectedly (including peers dropped for
    /// exceeding `ZMQ_MAXMSGSIZE`).
    public var disconnected = 0
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_*` (no detail, protocol, auth).
    public var handshakeFailed = 0
    public var handshakeSucceeded = 0
    public var closed = 0
    public var listening = 0
    /// Anything else (connect delayed/retried, bind/accept/close failed, monitor stopped, ...).
    public var other = 0
    /// All events read.
    public var total: Int { connected + accepted + disconnected + handshakeFailed + handshakeSucceeded + closed + listening + other }

    public init() {}
}

/// One event of a socket monitor.
public struct ZMQSocketEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case connected, connectDelayed, connectRetried, listening, bindFailed, accepted, acceptFailed
        case closed, closeFailed, disconnected, monitorStopped, handshakeSucceeded
        /// `ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL`: e.g. the peer closed during the handshake.
        case handshakeFailedNoDetail
        /// `ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL`: e.g. a plaintext peer against a CURVE socket, a wrong server key.
        case handshakeFailedProtocol
        /// `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`: the ZAP handler refused (value: its status code).
        case handshakeFailedAuth
        case other(Int32)
    }

    public let kind: Kind
    /// The event's value: the file descriptor for connected/accepted/disconnected/closed, the ZAP
    /// status code for an auth failure, the protocol error code for a protocol failure.
    public let value: UInt32
    /// The endpoint libzmq reports: the bound endpoint on a bound socket, the peer's on a connected one.
    public let endpoint: String
    /// For `accepted`/`connected`: the peer's address as seen then; for a handshake failure other than
    /// `handshakeFailedAuth`: the address of the connection that failed, when known (see `ZMQMonitor`).
    public let peerAddress: String?

    public init(kind: Kind, value: UInt32, endpoint: String, peerAddress: String? = nil) {
        self.kind = kind
        self.value = value
        self.endpoint = endpoint
        self.peerAddress = peerAddress
    }

    /// Whether the handshake with a peer failed (for any reason).
    public var isHandshakeFailure: Bool {
        switch kind {
        case .handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth: true
        default: false
        }
    }

    /// Whether this is a protocol failure for a security mechanism mismatch (plaintext against CURVE, or the reverse).
    public var isMechanismMismatch: Bool {
        kind == .handshakeFailedProtocol && Int32(bitPattern: value) == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
    }

    /// A sentence for an operator saying why a handshake failed.
    public var failureReason: String {
        switch kind {
        case .handshakeFailedAuth: return "refused by the ZAP handler (status \(value))"
        case .handshakeFailedNoDetail:
            // Also what a peer that never answers gets when libzmq's handshake timer (30 s) runs out (a fault tester,
            // session 35: "may have closed first" for a peer that had closed nothing).
            return "no detail from libzmq (the peer closed first, or did not complete the handshake within 30 s)"
        case .handshakeFailedProtocol:
            switch Int32(bitPattern: value) {
            case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                // Not only CURVE against plaintext: a peer may name any mechanism (a fault tester, session 35: a
                // plaintext socket said "a plaintext peer against CURVE" to a peer that asked for another one).
                return "security mechanism mismatch (the peer asked for another mechanism than this socket's: CURVE "
                    + "against plaintext, plaintext against CURVE, or an unknown one)"
            case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
                return "CURVE cryptographic failure (a wrong server key?)"
            default:
                return "protocol error 0x\(String(value, radix: 16))"
            }
        default: return "\(kind)"
        }
    }

    init(rawEvent: Int32, value: UInt32, endpoint: String, peerAddress: String?) {
        let kind: Kind = switch rawEvent {
        case ZMQ_EVENT_CONNECTED: .connected
        case ZMQ_EVENT_CONNECT_DELAYED: .connectDelayed
        case ZMQ_EVENT_CONNECT_RETRIED: .connectRetried
        case ZMQ_EVENT_LISTENING: .listening
        case ZMQ_EVENT_BIND_FAILED: .bindFailed
        case ZMQ_EVENT_ACCEPTED: .accepted
        case ZMQ_EVENT_ACCEPT_FAILED: .acceptFailed
        case ZMQ_EVENT_CLOSED: .closed
        case ZMQ_EVENT_CLOSE_FAILED: .closeFailed
        case ZMQ_EVENT_DISCONNECTED: .disconnected
        case ZMQ_EVENT_MONITOR_STOPPED: .monitorStopped
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: .handshakeSucceeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: .handshakeFailedNoDetail
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: .handshakeFailedProtocol
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: .handshakeFailedAuth
        default: .other(rawEvent)
        }
        self.init(kind: kind, value: value, endpoint: endpoint, peerAddress: peerAddress)
    }
}

/// Reads the events of a `zmq_socket_monitor`. Owned by the thread that created it (normally the
/// monitored socket's thread; `ZMQAuthenticator` reads the monitors it watches on its own thread).
///
/// Peer addresses: libzmq's monitor events name the bound endpoint, not the peer, and a failed
/// handshake carries an error code, not the connection's descriptor. The monitor therefore asks the
/// kernel for the peer's address when it reads `accepted`/`connected` (by descriptor: `ip:port` for
/// TCP, `pid N uid N` for IPC), and gives a protocol/no-detail handshake failure the address of the
/// connection whose `disconnected` follows it (libzmq reports the two back to back from the one I/O
/// thread). Best effort: an address is missing when the connection was gone before it was read.
public final class ZMQMonitor {
    /// `ZMQ_EVENT_ACCEPT_FAILED` (its value is the `errno` of the failed `accept`), for `startMonitor(events:)`.
    public static let acceptFailedEvent: Int32 = ZMQ_EVENT_ACCEPT_FAILED
    /// The events of a connection's handshake, for `startMonitor(events:)`: connected, accepted, disconnected (which
    /// names the connection of a failure) and the handshake's outcomes; not the retries of a connect.
    public static let handshakeEvents: Int32 = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED
        | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
    /// A bound socket's events when no ZAP handler watches it (no CURVE): its failed accepts and its handshakes.
    public static let unsecuredServerEvents: Int32 = acceptFailedEvent | handshakeEvents
    fileprivate let socket: ZMQSocket
    /// Peer addresses of live connections, by descriptor.
    private var peers: [UInt32: String] = [:]
    /// A protocol/no-detail handshake failure waiting for the `disconnected` that names its connection.
    private var heldFailure: ZMQSocketEvent?

    /// The most events one `events()` call reads. A bound socket out of descriptors has libzmq's I/O thread retry its
    /// `accept` in a loop, each failure an event (a million in 6 s under the suite's load): read until none was left,
    /// the call did not return while they came faster than it read them, and the thread that called it neither read
    /// its input nor saw a stop — a SIGTERM went unanswered for more than 20 s (`FaultTests`' failed accepts under
    /// the full suite, session 48). The rest is read at the next call: the callers poll the monitor, which stays
    /// readable while events are queued.
    public static let readLimit = 4_096

    /// Internal, not private: tests connect one to a PAIR of their own and send it events.
    init(context: ZMQContext, endpoint: String) throws {
        let pair = try ZMQSocket(context: context, type: .pair, lingerMilliseconds: 0, framePoolCapacity: 3)
        // No limit on the events queued for this reader (inproc: with either side's limit 0 the pipe has none). libzmq
        // sends them from the monitored socket's I/O thread and blocks it once about 2,000 are unread, which stops
        // every connection it serves: a replay waiting for a subscriber never took the one that came after a burst of
        // connections (a reviewer, session 25). Unread events cost memory instead; readers read them as they go.
        try pair.setReceiveHighWaterMark(0)
        try pair.connect(endpoint)
        socket = pair
    }

    /// Reads the pending events without blocking (at most `readLimit`) and returns their counts
    /// (waits up to `timeoutMilliseconds` for the first one when given).
    public func drain(timeoutMilliseconds: Int = 0) throws -> ZMQMonitorCounts {
        var counts = ZMQMonitorCounts()
        for event in try events(timeoutMilliseconds: timeoutMilliseconds) {
            switch event.kind {
            case .connected: counts.connected += 1
            case .accepted: counts.accepted += 1
            case .disconnected: counts.disconnected += 1
            case .handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth: counts.handshakeFailed += 1
            case .handshakeSucceeded: counts.handshakeSucceeded += 1
            case .closed: counts.closed += 1
            case .listening: counts.listening += 1
            default: counts.other += 1
            }
        }
        return counts
    }

    /// Reads the pending events without blocking (waiting up to `timeoutMilliseconds` for the first
    /// one when given), at most `limit` of them (`readLimit`), in the order libzmq reported them, with peer addresses
    /// where known.
    public func events(timeoutMilliseconds: Int = 0, limit: Int = ZMQMonitor.readLimit) throws -> [ZMQSocketEvent] {
        var out: [ZMQSocketEvent] = []
        var wait = timeoutMilliseconds
        var read = 0
        while read < limit {
            read += 1
            let raw: (event: Int32, value: UInt32, endpoint: String)??
            do {
                raw = try socket.receiveMessage(timeoutMilliseconds: wait) { frames -> (Int32, UInt32, String)? in
                    // Frame 1: uint16 event id + uint32 value (native byte order); frame 2: endpoint.
                    let head = frames.withUnsafeBytes(at: 0) { raw -> (Int32, UInt32)? in
                        guard raw.count >= 6 else { return nil }
                        return (Int32(raw.loadUnaligned(as: UInt16.self)), raw.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                    }
                    guard let head else { return nil }
                    return (head.0, head.1, frames.count >= 2 ? frames.string(at: frames.count - 1) : "")
                }
            } catch {
                // The events already read are returned, not dropped with the error (they name peers and connections the
                // callers count: a runtime reviewer, session 50); a lasting failure is thrown by the next call.
                if out.isEmpty { throw error }
                return out
            }
            guard let maybe = raw else { return out }
            wait = 0
            guard let (id, value, endpoint) = maybe else { out.append(ZMQSocketEvent(kind: .other(-1), value: 0, endpoint: "")); continue }
            switch id {
            case ZMQ_EVENT_ACCEPTED, ZMQ_EVENT_CONNECTED:
                let fd = Int32(bitPattern: value)
                let address = descriptor(fd, isConnectionOf: endpoint, accepted: id == ZMQ_EVENT_ACCEPTED)
                    ? peerAddress(ofDescriptor: fd) : nil
                if let address { peers[value] = address }
                out.append(ZMQSocketEvent(rawEvent: id, value: value, endpoint: endpoint, peerAddress: address))
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                if let held = heldFailure { out.append(held) }
                heldFailure = ZMQSocketEvent(rawEvent: id, value: value, endpoint: endpoint, peerAddress: nil)
            case ZMQ_EVENT_DISCONNECTED, ZMQ_EVENT_CLOSED:
                let address = peers.removeValue(forKey: value)
                if let held = heldFailure, id == ZMQ_EVENT_DISCONNECTED {
                    out.append(ZMQSocketEvent(kind: held.kind, value: held.value, endpoint: held.endpoint, peerAddress: address))
                    heldFailure = nil
                }
                out.append(ZMQSocketEvent(rawEvent: id, value: value, endpoint: endpoint, peerAddress: address))
            default:
                out.append(ZMQSocketEvent(rawEvent: id, value: value, endpoint: endpoint, peerAddress: nil))
            }
        }
        return out
    }

    /// Closes the monitor's socket.
    public func close() { socket.close() }
}

// MARK: - Connections of a bound socket

/// One connection of a bound socket as libzmq names it in a received message's metadata: the descriptor it reads the
/// connection from (`ZMQ_SRCFD`) and the peer address (`Peer-Address`: the IP for TCP, `localhost:uid:gid:pid` for
/// IPC), plus the descriptor's socket inode at the time the message was read, which tells this connection from a
/// later one that was given the same descriptor number.
///
/// The descriptor is libzmq's (its I/O thread reads and closes it); `cut` only shuts the connection down, which
/// libzmq then sees as the peer leaving: it ends the connection, closes the descriptor itself and drops what the
/// connection held (an XPUB reports its subscriptions as unsubscriptions). Nothing else here touches it.
public struct ZMQPeerConnection: Hashable, Sendable, CustomStringConvertible {
    public let descriptor: Int32
    public let peerAddress: String
    public let inode: UInt64

    /// The connection a message came from, when the descriptor still is that connection's (libzmq may have closed it,
    /// and the number been given to another socket, since the message arrived). A few system calls: the tracker makes
    /// one per connection, not per message.
    /// With `acceptedBy` (the bound endpoint, its real port), the descriptor must also be a connection that endpoint
    /// accepted: a probe that subscribed and left, whose descriptor number went to another loopback socket of the
    /// process (a `/metrics` scrape, a journal client) before its subscription was read, passed for a live consumer
    /// by its peer host alone (a reviewer, session 46).
    public init?(_ source: ZMQMessageSource, acceptedBy endpoint: String? = nil) {
        guard let inode = Self.socketInode(source.descriptor),
              libzmqPeerAddress(ofDescriptor: source.descriptor) == source.peerAddress,
              endpoint.map({ ZeroMQ.descriptor(source.descriptor, isConnectionOf: $0, accepted: true) }) ?? true else { return nil }
        descriptor = source.descriptor
        peerAddress = source.peerAddress
        self.inode = inode
    }

    private static func socketInode(_ fd: Int32) -> UInt64? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return UInt64(st.st_ino)
    }

    /// Whether the descriptor still is this connection's socket (one `fstat`): false once libzmq has closed it, even
    /// when the number went to a new connection from the same peer (whose peer address is the same: libzmq's names
    /// the host without the port, or the process of a Unix socket).
    public var holdsDescriptor: Bool { Self.socketInode(descriptor) == inode }

    /// Whether a message naming this descriptor and this peer may still be this connection's: the descriptor is its
    /// socket, or not a connection from the same peer (libzmq closed it, and the number is free or went to another
    /// socket: a message naming this peer cannot be that socket's). libzmq may close a connection before every message
    /// it read from it has been received.
    public var mayBeSource: Bool {
        guard let current = Self.socketInode(descriptor), current != inode else { return true }
        return libzmqPeerAddress(ofDescriptor: descriptor) != peerAddress
    }

    /// Whether the descriptor still is this connection (the same socket, the same peer).
    public var isOpen: Bool {
        holdsDescriptor && libzmqPeerAddress(ofDescriptor: descriptor) == peerAddress
    }

    /// Shuts the connection down (`shutdown(2)`, both directions) if the descriptor still is this connection; libzmq
    /// then ends it as if the peer had left. Returns whether it was shut down.
    ///
    /// The descriptor belongs to libzmq's I/O thread, which may close it at any moment, and the number may then go to
    /// another socket: checked and then shut down by number, the check could pass for this connection and the
    /// shutdown hit the socket that took the number in between (a reviewer, session 28). So the number is first
    /// duplicated: the copy is whatever the number named at that instant and stays that socket whatever libzmq does
    /// with the number, and it is the copy that is checked (the socket's inode, its peer) and shut down. No window.
    @discardableResult
    public func cut() -> Bool {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return false }
        defer { close(copy) }
        guard Self.socketInode(copy) == inode, libzmqPeerAddress(ofDescriptor: copy) == peerAddress else { return false }
        return shutdown(copy, Int32(SHUT_RDWR)) == 0
    }

    /// The peer as the log says it (an IPC peer as `pid N uid N`, as everywhere else: a consumer cut at
    /// `output.maxSubscriptions` was `localhost:0:0:904`, read as a host and port: an operator's audit, session 52).
    public var description: String { describePeerAddress(peerAddress) }
}

/// Where a received message came from, as libzmq's metadata says (no system call): the descriptor and the peer address.
public struct ZMQMessageSource: Hashable, Sendable {
    public let descriptor: Int32
    public let peerAddress: String

    /// A source named directly (tests; what a message's metadata would say).
    public init(descriptor: Int32, peerAddress: String) {
        self.descriptor = descriptor
        self.peerAddress = peerAddress
    }

    fileprivate init?(message msg: UnsafeMutablePointer<zmq_msg_t>) {
        let fd = zmq_msg_get(msg, ZMQ_SRCFD)
        guard fd >= 0, let p = zmq_msg_gets(msg, "Peer-Address") else { return nil }
        descriptor = fd
        peerAddress = String(cString: p)
    }
}

/// `getpeername(2)`: the peer of a connected descriptor; nil when it has none (closed, reused, not connected).
private func peerSocketAddress(ofDescriptor fd: Int32) -> (storage: sockaddr_storage, length: socklen_t)? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
    }
    return rc == 0 ? (storage, length) : nil
}

/// `getnameinfo(3)` with `NI_NUMERICHOST` (and `NI_NUMERICSERV` with the port): the numeric host, and the port when
/// asked for (empty otherwise); nil when it fails.
private func numericName(_ peer: (storage: sockaddr_storage, length: socklen_t), withPort: Bool) -> (host: String, port: String)? {
    var storage = peer.storage
    var host = [CChar](repeating: 0, count: 1025)  // NI_MAXHOST
    var port = [CChar](repeating: 0, count: 32)
    let ok = withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            withPort
                ? getnameinfo($0, peer.length, &host, socklen_t(host.count), &port, socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
                : getnameinfo($0, peer.length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
        }
    }
    guard ok == 0 else { return nil }
    func text(_ c: [CChar]) -> String { String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return (text(host), text(port))
}

#if os(Linux)
/// `struct ucred` (only declared with `_GNU_SOURCE`): pid, uid, gid.
private struct PeerCredentials { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }

/// `SO_PEERCRED` of a Unix socket; nil when it fails (the descriptor closed or was reused since).
private func peerCredentials(ofDescriptor fd: Int32) -> PeerCredentials? {
    var cred = PeerCredentials()
    var size = socklen_t(MemoryLayout<PeerCredentials>.size)
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) == 0 ? cred : nil
}
#endif

/// The peer address libzmq 4.3.4 gives a connection (`stream_engine_base.cpp`, `get_peer_address`): the numeric host
/// (`getnameinfo` with `NI_NUMERICHOST`; `localhost` for a Unix socket) and, for a Unix socket, `:uid:gid:pid`.
private func libzmqPeerAddress(ofDescriptor fd: Int32) -> String? {
    guard let peer = peerSocketAddress(ofDescriptor: fd), var address = numericName(peer, withPort: false)?.host else {
        return nil
    }
    #if os(Linux)
    if Int32(peer.storage.ss_family) == AF_UNIX, let cred = peerCredentials(ofDescriptor: fd) {
        address += ":\(cred.uid):\(cred.gid):\(cred.pid)"
    }
    #endif
    return address
}

/// The peer of a connected descriptor: `ip:port` (TCP), `pid N uid N` (a Unix socket), nil when gone.
/// Whether `fd` is still a connection of `endpoint`: its own address (`accepted`: a connection of a bound socket) or
/// its peer's (a connection the socket made) has the endpoint's `ipc://` path or `tcp://` port. The monitor's event
/// comes after the fact, and by the time it is read the connection may be gone and its descriptor number reused by
/// another socket of the process: a soak test (session 44) saw an input drop named after a journal client's process,
/// which never connected to the input. True when the endpoint cannot be judged (another transport, a port that is
/// not a number).
func descriptor(_ fd: Int32, isConnectionOf endpoint: String, accepted: Bool) -> Bool {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accepted ? getsockname(fd, $0, &length) : getpeername(fd, $0, &length) }
    }
    if endpoint.hasPrefix("ipc://") {
        guard rc == 0, Int32(storage.ss_family) == AF_UNIX else { return false }
        var path = String(endpoint.dropFirst("ipc://".count))
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        let count = Int(length) - offset
        guard count > 0 else { return false }
        var bytes = withUnsafeBytes(of: &storage) { Array($0[offset..<(offset + count)]) }
        if bytes.first == 0, path.hasPrefix("@") {
            bytes.removeFirst()  // an abstract name: a NUL, then the name (not NUL-terminated)
            path.removeFirst()
        } else if let end = bytes.firstIndex(of: 0) {
            bytes.removeSubrange(end...)
        }
        if bytes == Array(path.utf8) { return true }
        // A connection the socket made: the kernel gives the path as the publisher bound it, which may be another
        // spelling of the same file (/var/run → /run, a relative bind, `//`): the peer was then `unknown` (a reviewer,
        // session 44). The same socket file by device and inode; a relative name, a stream socket of the same name.
        guard !accepted, !path.hasPrefix("@"), !bytes.isEmpty else { return false }
        let peerPath = String(decoding: bytes, as: UTF8.self)
        var mine = stat(), theirs = stat()
        if peerPath.hasPrefix("/") {
            return stat(path, &mine) == 0 && stat(peerPath, &theirs) == 0 && mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino
        }
        var type: Int32 = 0
        var typeLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) == 0, type == Int32(SOCK_STREAM.rawValue) else { return false }
        return path.split(separator: "/").last.map(String.init) == peerPath.split(separator: "/").last.map(String.init)
    }
    if endpoint.hasPrefix("tcp://") {
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return true }
        guard rc == 0 else { return false }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self).sin_port } == port.bigEndian
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self).sin6_port } == port.bigEndian
        default:
            return false
        }
    }
    return true
}

private func peerAddress(ofDescriptor fd: Int32) -> String? {
    guard let peer = peerSocketAddress(ofDescriptor: fd) else { return nil }
    switch Int32(peer.storage.ss_family) {
    case AF_INET, AF_INET6:
        guard let (h, p) = numericName(peer, withPort: true) else { return nil }
        return peer.storage.ss_family == sa_family_t(AF_INET6) ? "[\(h)]:\(p)" : "\(h):\(p)"
    case AF_UNIX:
        #if os(Linux)
        // Failing here means the descriptor closed (or was reused) after getpeername: libzmq's I/O thread owns it
        // and a refused peer is often gone at once. That is "gone", not an anonymous Unix peer.
        guard let cred = peerCredentials(ofDescriptor: fd) else { return nil }
        return "pid \(cred.pid) uid \(cred.uid)"
        #else
        return "unix socket"
        #endif
    default:
        return nil
    }
}

// MARK: - CURVE keys

/// A CURVE (Curve25519) key: 32 bytes, written as 40 characters of Z85.
public struct CurveKey: Hashable, Sendable, CustomStringConvertible {
    /// The 32 key bytes.
    public let bytes: [UInt8]

    /// A key from its 32 bytes; nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// A key from its 40-character Z85 text; nil when it is not that.
    public init?(z85 text: String) {
        let chars = Array(text.utf8)
        guard chars.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = (chars.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { zmq_z85_decode(&out, $0.baseAddress) != nil }
        guard ok else { return nil }
        bytes = out
    }

    /// The 40-character Z85 text.
    public var z85: String {
        var out = [CChar](repeating: 0, count: 41)
        _ = bytes.withUnsafeBufferPointer { zmq_z85_encode(&out, $0.baseAddress, 32) }
        return String(decoding: out.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The first 8 Z85 characters: enough to tell keys apart in a log line, too few to matter if leaked.
    public var prefix: String { String(z85.prefix(8)) }

    /// The prefix only: a key is never printed whole by accident.
    public var description: String { "\(prefix)…" }
}

/// A CURVE key pair.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: CurveKey
    public let secretKey: CurveKey

    /// A fresh key pair (`zmq_curve_keypair`, libsodium's random source).
    public static func generate() throws -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&pub, &sec) != 0 { throw ZMQError("zmq_curve_keypair") }
        func text(_ c: [CChar]) -> String { String(decoding: c.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        guard let p = CurveKey(z85: text(pub)), let s = CurveKey(z85: text(sec)) else {
            throw ZMQError(operation: "zmq_curve_keypair", code: EINVAL)
        }
        return CurveKeyPair(publicKey: p, secretKey: s)
    }

    /// The pair of `secretKey`, its public key derived (`zmq_curve_public`).
    public init(secretKey: CurveKey) throws {
        var pub = [CChar](repeating: 0, count: 41)
        let sec = secretKey.z85.utf8.map { CChar(bitPattern: $0) } + [0]
        if zmq_curve_public(&pub, sec) != 0 { throw ZMQError("zmq_curve_public") }
        guard let p = CurveKey(z85: String(decoding: pub.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)) else {
            throw ZMQError(operation: "zmq_curve_public", code: EINVAL)
        }
        publicKey = p
        self.secretKey = secretKey
    }

    public init(publicKey: CurveKey, secretKey: CurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

// MARK: - ZAP handler (RFC 27)

/// A peer refused at the handshake.
public struct ZMQRefusal: Sendable, Equatable {
    /// The ZAP domain of the refusing socket (the daemon names its sockets' domains after them).
    public let domain: String
    /// The peer's address when known: `ip` for TCP (ZAP), `ip:port` / `pid N uid N` (monitor), libzmq's
    /// `localhost:uid:gid:pid` for IPC (ZAP).
    public let peerAddress: String?
    /// The first characters of the key the peer offered, when it offered one.
    public let keyPrefix: String?
    /// Why, for an operator.
    public let reason: String

    public init(domain: String, peerAddress: String?, keyPrefix: String?, reason: String) {
        self.domain = domain
        self.peerAddress = peerAddress
        self.keyPrefix = keyPrefix
        self.reason = reason
    }

    /// The peer as a log line says it: libzmq's `localhost:uid:gid:pid` of an IPC peer as the monitor's `pid N uid
    /// N` — said as it came, it read as a TCP peer on localhost, and the same client's other lines named its pid (a
    /// new-operator walk-through, session 49); anything else as it is.
    public var peerDescription: String? { peerAddress.map(describePeerAddress) }
}

/// libzmq's peer address as a log line says it: an IPC peer's `localhost:uid:gid:pid` as the monitor's `pid N uid N`,
/// anything else as it is.
func describePeerAddress(_ peerAddress: String) -> String {
    let parts = peerAddress.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 4, parts[0] == "localhost",
          parts.dropFirst().allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
    else { return peerAddress }
    return "pid \(parts[3]) uid \(parts[1])"
}

/// Refusals counted for one ZAP domain: an atomic, readable from any thread (metrics).
public final class ZMQRefusalCounter: Sendable {
    private let value = Atomic<Int>(0)
    public init() {}
    public var count: Int { value.load(ordering: .relaxed) }
    public func increment() { value.add(1, ordering: .relaxed) }
}

/// The ZAP handler of a context: answers libzmq's authentication requests for every CURVE server
/// socket of the context, one allow-list per ZAP domain, and watches those sockets' handshake failures.
///
/// It runs on a thread of its own that owns the ZAP ROUTER (`inproc://zeromq.zap.01`) and the monitor
/// readers. A CURVE client is allowed when its public key is in the allow-list of the socket's domain;
/// anything else (an unknown key, a key of another domain's list, a domain without a list, a mechanism
/// other than CURVE) is refused with status 400, counted for the domain and reported to `onRefusal`
/// (on the handler's thread). Allow-lists can be replaced at any time from any thread; a replaced list
/// applies to the next handshake (connections already made stay).
public final class ZMQAuthenticator: Sendable {
    /// Where libzmq sends ZAP requests (RFC 27).
    public static let zapEndpoint = "inproc://zeromq.zap.01"
    /// Monitor events watched on CURVE server sockets.
    static let watchedEvents: Int32 = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED
        | ZMQ_EVENT_CLOSED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        | ZMQ_EVENT_MONITOR_STOPPED | ZMQ_EVENT_ACCEPT_FAILED

    private let context: ZMQContext
    private let onRefusal: @Sendable (ZMQRefusal) -> Void
    /// A connection a watched socket could not accept (the domain, the event: its value is the `errno`).
    private let onAcceptFailure: @Sendable (String, ZMQSocketEvent) -> Void
    private let allowLists = Mutex<[String: Set<CurveKey>]>([:])
    private let listNames = Mutex<[String: String]>([:])
    private let counters = Mutex<[String: ZMQRefusalCounter]>([:])
    private let watches = Mutex<[Watch]>([])
    private let requests = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)
    /// Why the handler thread ended when no stop was asked for (`unexpectedEnd`).
    private let ended = Mutex<String?>(nil)
    /// Set once `ended` is: what an owner asks on every turn of a loop (one atomic load, no lock).
    private let endedFlag = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)
    /// Wakes the handler thread out of its poll: a new watch to read, or stop. The handler blocks in `zmq_poll`
    /// on the ZAP socket, the monitors and this pipe, with no timeout: nothing is polled on a timer.
    private let wake: WakePipe

    /// A monitor to start reading: its endpoint, the domain, and 0 → 1 (reading) or -1 (failed), signalled on `done`.
    private final class Watch: Sendable {
        let endpoint: String
        let domain: String
        let state = Atomic<Int>(0)
        let done: WakePipe
        init(endpoint: String, domain: String) throws {
            self.endpoint = endpoint
            self.domain = domain
            done = try WakePipe()
        }

        func finish(_ value: Int) {
            state.store(value, ordering: .releasing)
            done.signal()
        }
    }

    /// Starts the handler thread and returns once the ZAP endpoint is bound.
    /// - Throws: `ZMQError` when the endpoint cannot be bound (another handler in this context).
    public init(context: ZMQContext, onRefusal: @escaping @Sendable (ZMQRefusal) -> Void = { _ in },
                onAcceptFailure: @escaping @Sendable (String, ZMQSocketEvent) -> Void = { _, _ in }) throws {
        self.context = context
        self.onRefusal = onRefusal
        self.onAcceptFailure = onAcceptFailure
        wake = try WakePipe()
        let started = try StartSignal()  // -1 pending, 0 bound, > 0 the errno of the failure
        let box = Unmanaged.passRetained(ThreadBody { [self] in self.loop(started: started) })
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw ZMQError(operation: "pthread_create(ZAP handler)", code: rc)
        }
        thread.withLock { $0 = tid }
        // The thread reports once, right after its bind: block until then (no timeout is needed, nor a spin).
        while started.value.load(ordering: .acquiring) < 0 { _ = started.signalled.wait(timeoutMilliseconds: -1) }
        let code = started.value.load(ordering: .acquiring)
        if code != 0 {
            join()
            throw ZMQError(operation: "zmq_bind(\(Self.zapEndpoint))", code: code)
        }
    }

    deinit { stop() }

    /// Stops the handler thread and closes its sockets. Call after closing the CURVE sockets it serves.
    /// Idempotent; callable from any thread but the handler's own.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake.signal()
        join()
    }

    private func join() {
        guard let tid = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) else { return }
        pthread_join(tid, nil)
    }

    /// Replaces the allow-list of `domain` (the public keys that may complete a handshake). `listName` is how a
    /// refusal names the list (the setting an operator edits; the domain when nil): several domains may share one.
    public func setAllowedKeys(_ keys: Set<CurveKey>, forDomain domain: String, listName: String? = nil) {
        _ = refusalCounter(forDomain: domain)
        allowLists.withLock { $0[domain] = keys }
        listNames.withLock { $0[domain] = listName ?? domain }
    }

    /// Counts `domain`'s refusals in `counter` (one the caller reads, e.g. for metrics) from now on.
    public func useCounter(_ counter: ZMQRefusalCounter, forDomain domain: String) {
        counters.withLock { $0[domain] = counter }
    }

    /// The allow-list of `domain`, nil when it has none.
    public func allowedKeys(forDomain domain: String) -> Set<CurveKey>? { allowLists.withLock { $0[domain] } }

    /// The refusal counter of `domain` (created on first use).
    public func refusalCounter(forDomain domain: String) -> ZMQRefusalCounter {
        counters.withLock { table in
            if let c = table[domain] { return c }
            let c = ZMQRefusalCounter()
            table[domain] = c
            return c
        }
    }

    /// Why the handler thread ended before `stop()` was called (kept after a later stop); nil while it runs, or when
    /// it ended because of a stop. No handshake is answered from then on — refused where `ZMQ_ZAP_ENFORCE_DOMAIN` is
    /// set, let in where libzmq lacks it — so the owner must not go on serving CURVE sockets.
    public var unexpectedEnd: String? { endedFlag.load(ordering: .acquiring) ? ended.withLock { $0 } : nil }

    /// Whether `unexpectedEnd` is set: one atomic load.
    public var endedUnexpectedly: Bool { endedFlag.load(ordering: .acquiring) }

    private func recordEnd(_ why: String) {
        ended.withLock { $0 = why }
        endedFlag.store(true, ordering: .releasing)
    }

    /// Tests: ends the handler thread as an error of its poll would, without a stop.
    func simulateUnexpectedEnd(_ why: String) {
        recordEnd(why)
        stopRequested.store(true, ordering: .releasing)
        wake.signal()
        join()
    }

    /// ZAP requests answered so far (allowed or refused).
    public var requestsAnswered: Int { requests.load(ordering: .relaxed) }

    /// Counts a refusal for its domain and reports it, as the handler does for its own (for handshake
    /// failures seen by a monitor the caller reads itself).
    public func recordRefusal(_ refusal: ZMQRefusal) {
        refusalCounter(forDomain: refusal.domain).increment()
        onRefusal(refusal)
    }

    /// Watches `socket`'s failed handshakes (a plaintext peer, a wrong server key) and reports them as
    /// refusals of `domain`. Call on the socket's owning thread, before it binds; returns once the
    /// handler reads the monitor. ZAP refusals are reported by the handler itself, not again here.
    /// This takes the socket's one monitor: a socket watched here cannot also be monitored elsewhere.
    public func watchHandshakes(of socket: ZMQSocket, domain: String) throws {
        let endpoint = try socket.startMonitorPublisher(events: Self.watchedEvents)
        let watch = try Watch(endpoint: endpoint, domain: domain)
        watches.withLock { $0.append(watch) }
        wake.signal()
        // The handler connects its reader as soon as it wakes; bounded (generously: a busy machine) in case it has
        // stopped, when it reports -1 for every watch left.
        let deadline = WakePipe.nowMilliseconds() + 30_000
        while watch.state.load(ordering: .acquiring) == 0 {
            let left = deadline - WakePipe.nowMilliseconds()
            if left <= 0 { break }
            _ = watch.done.wait(timeoutMilliseconds: Int(left))
        }
        if watch.state.load(ordering: .acquiring) != 1 {
            throw ZMQError(operation: "zmq_connect(\(endpoint)) for the ZAP handler's monitor", code: ZMQError.ETERM)
        }
    }

    // MARK: The handler thread

    private func loop(started: StartSignal) {
        let router: ZMQSocket
        do {
            // A ZAP request has 9 frames with CURVE (routing id, delimiter, 7 ZAP frames): all must be readable.
            router = try context.socket(.router, lingerMilliseconds: 0, framePoolCapacity: 16)
            try router.bind(Self.zapEndpoint)
        } catch {
            started.report(max(1, (error as? ZMQError)?.code ?? EINVAL))
            return
        }
        started.report(0)
        var readers: [(monitor: ZMQMonitor, domain: String)] = []
        defer {
            for r in readers { r.monitor.close() }
            router.close()
            // Whoever still waits for a watch learns that it will not be read.
            for watch in watches.withLock({ w -> [Watch] in defer { w = [] }; return w }) { watch.finish(-1) }
        }
        while !stopRequested.load(ordering: .acquiring) {
            for watch in watches.withLock({ w -> [Watch] in defer { w = [] }; return w }) {
                do {
                    readers.append((try ZMQMonitor(context: context, endpoint: watch.endpoint), watch.domain))
                    watch.finish(1)
                } catch {
                    watch.finish(-1)
                }
            }
            let poller = ZMQPoller()
            poller.add(router)
            poller.add(readableDescriptor: wake.readDescriptor)
            for r in readers { poller.add(r.monitor) }
            let ready: ZMQPollResult
            // No timeout: a ZAP request, a monitor event, or the wake pipe (a watch, stop) ends the wait.
            do { ready = try poller.poll(timeoutMilliseconds: -1) } catch {
                if ZMQError.isInterrupted(error) { continue }
                // ETERM: the context is shutting down. Any other error, or ETERM with no stop asked for, ends the
                // handler while CURVE sockets may still need it: recorded for the owner to act on.
                if !stopRequested.load(ordering: .acquiring) { recordEnd("its poll failed: \(error)") }
                return
            }
            if ready.isReadable(1) { wake.drain() }
            if ready.isReadable(0) {
                while let frames = try? router.receiveCopy(timeoutMilliseconds: 0) { answer(frames, on: router) }
            }
            var stopped: [Int] = []
            for (i, r) in readers.enumerated() where ready.isReadable(i + 2) {
                guard let events = try? r.monitor.events() else { continue }
                for e in events {
                    switch e.kind {
                    case .handshakeFailedProtocol, .handshakeFailedNoDetail:
                        recordRefusal(ZMQRefusal(domain: r.domain, peerAddress: e.peerAddress, keyPrefix: nil,
                                                 reason: e.failureReason))
                    case .acceptFailed:
                        onAcceptFailure(r.domain, e)
                    case .monitorStopped:
                        stopped.append(i)
                    default:
                        break
                    }
                }
            }
            for i in stopped.reversed() {
                readers[i].monitor.close()
                readers.remove(at: i)
            }
        }
    }

    /// Answers one ZAP request: [routing id, "", "1.0", request id, domain, address, identity, mechanism, credentials...].
    private func answer(_ frames: [[UInt8]], on router: ZMQSocket) {
        guard frames.count >= 8 else { return }  // not a ZAP request; libzmq never sends one
        requests.add(1, ordering: .relaxed)
        func text(_ i: Int) -> String { String(decoding: frames[i], as: UTF8.self) }
        let domain = text(4), address = text(5), mechanism = text(7)
        var status = "400", statusText = "", userID = ""
        var key: CurveKey? = nil
        if text(2) != "1.0" {
            status = "500"; statusText = "ZAP version \(text(2)) is not supported"
        } else if mechanism != "CURVE" {
            statusText = "only CURVE is accepted here (the peer used \(mechanism))"
        } else if frames.count < 9 || CurveKey(bytes: frames[8]) == nil {
            statusText = "CURVE request without a 32-byte key"
        } else {
            key = CurveKey(bytes: frames[8])
            let lists = allowLists.withLock { $0 }, names = listNames.withLock { $0 }
            if let list = lists[domain] {
                let name = names[domain] ?? domain
                if list.contains(key!) {
                    status = "200"; statusText = "OK"; userID = key!.z85
                } else if let other = lists.first(where: { $0.key != domain && (names[$0.key] ?? $0.key) != name
                                                         && $0.value.contains(key!) })?.key {
                    statusText = "the key is on the \(names[other] ?? other) allow-list, not on the \(name) one"
                } else {
                    statusText = "the key is not on the \(name) allow-list"
                }
            } else {
                statusText = "no allow-list for ZAP domain \"\(domain)\""
            }
        }
        let reply: [[UInt8]] = [frames[0], frames[1], Array("1.0".utf8), frames[3], Array(status.utf8),
                                Array(statusText.utf8), Array(userID.utf8), []]
        _ = try? router.send(reply, dontWait: true)
        if status != "200" {
            recordRefusal(ZMQRefusal(domain: domain, peerAddress: address.isEmpty ? nil : address,
                                     keyPrefix: key?.prefix, reason: statusText))
        }
    }
}

/// How a thread's start went: -1 pending, 0 ready, > 0 an errno; `signalled` once it is known.
private final class StartSignal: Sendable {
    let value = Atomic<Int32>(-1)
    let signalled: WakePipe
    init() throws { signalled = try WakePipe() }

    /// Records the outcome and wakes the waiting `init` (every path of the thread's start must come here).
    func report(_ code: Int32) {
        value.store(code, ordering: .releasing)
        signalled.signal()
    }
}

/// A self-pipe: any thread may `signal()`; one waiter blocks in `poll(2)` on the read end (or a `ZMQPoller` polls
/// it beside sockets) until a signal arrives — a blocking wait without a condition variable or a sleep loop, which
/// `zmq_poll` can combine with sockets. Both ends are non-blocking and close-on-exec, closed on deinit. A signal
/// sent while the pipe is full is not lost: the pipe is readable already.
final class WakePipe: Sendable {
    let readDescriptor: Int32
    private let writeDescriptor: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ZMQError(operation: "pipe", code: errno) }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readDescriptor = fds[0]
        writeDescriptor = fds[1]
    }

    deinit {
        close(readDescriptor)
        close(writeDescriptor)
    }

    /// Makes the read end readable (a full pipe already is).
    func signal() {
        var byte: UInt8 = 1
        while write(writeDescriptor, &byte, 1) < 0 && errno == EINTR {}
    }

    /// Empties the pipe (the signals read so far are consumed).
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(readDescriptor, &buffer, buffer.count)
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            return
        }
    }

    /// Blocks until a signal arrives (then consumes what is there) or `timeoutMilliseconds` pass (-1: no limit);
    /// returns whether a signal arrived.
    func wait(timeoutMilliseconds: Int) -> Bool {
        var item = pollfd(fd: readDescriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let n = poll(&item, 1, Int32(clamping: timeoutMilliseconds))
            if n < 0 && errno == EINTR { continue }
            if n > 0 { drain() }
            return n > 0
        }
    }

    /// A monotonic clock in milliseconds, for deadlines.
    static func nowMilliseconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1000 + t.tv_nsec / 1_000_000
    }
}

/// A closure to run on a new thread.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Whether `path` names something other than a socket (`lstat`: a link is not followed). An abstract name (`@…`) or
/// a wildcard is not a path (false).
func ipcPathIsOtherFile(_ path: String) -> Bool {
    guard !path.isEmpty, !path.hasPrefix("@"), path != "*" else { return false }
    var st = stat()
    return lstat(path, &st) == 0 && st.st_mode & S_IFMT != S_IFSOCK
}

/// Whether a process accepts connections on the Unix socket at `path` (a connect succeeds). An abstract name
/// (`@…`), a wildcard (`*`) or a path too long for `sun_path` is not probed (false).
func ipcPathIsServed(_ path: String) -> Bool {
    guard !path.isEmpty, !path.hasPrefix("@"), path != "*" else { return false }
    var addr = sockaddr_un()
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { buffer in
        for (i, b) in bytes.enumerated() { buffer[i] = b }
        buffer[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    return connected == 0
}
