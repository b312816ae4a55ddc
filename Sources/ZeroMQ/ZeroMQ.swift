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
//
// Lifetimes
// ---------
// * Every socket keeps its context alive; the context is terminated (`zmq_ctx_term`) when the
//   last reference goes away or on `close()`.
// * Every socket gets `ZMQ_LINGER` at creation (default 200 ms) so that closing a socket or
//   terminating the context can never hang on unsent messages.
// * Received frames are only reachable inside `ZMQSocket.receiveMessage(timeoutMilliseconds:_:)`:
//   libzmq keeps small messages inside the `zmq_msg_t` itself, so no data pointer may escape.

internal import CZeroMQ
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
    }

    /// An error with an explicit code (used for misuse detected by this layer).
    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    /// The text of `zmq_strerror(code)`.
    public var message: String { String(cString: zmq_strerror(code)) }

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
    public func bind(_ endpoint: String) throws {
        let h = try live("zmq_bind(\(endpoint))")
        if zmq_bind(h, endpoint) != 0 { throw ZMQError("zmq_bind(\(endpoint))") }
    }

    /// Connects to `endpoint`.
    public func connect(_ endpoint: String) throws {
        let h = try live("zmq_connect(\(endpoint))")
        if zmq_connect(h, endpoint) != 0 { throw ZMQError("zmq_connect(\(endpoint))") }
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

    /// `ZMQ_LAST_ENDPOINT`: the endpoint last bound (with the real port after a `tcp://*:*` bind).
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
    /// ROUTER: a send to an unknown routing id fails with EHOSTUNREACH instead of being dropped.
    public func setRouterMandatory(_ on: Bool) throws { try setInt32(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", on ? 1 : 0) }
    /// `ZMQ_IMMEDIATE`: queue messages only to completed connections.
    public func setImmediate(_ on: Bool) throws { try setInt32(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE", on ? 1 : 0) }
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
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if i < frames.count - 1 { flags |= ZMQ_SNDMORE }
            while true {
                if zmq_send(h, frame.baseAddress, frame.count, flags) >= 0 { break }
                let error = ZMQError("zmq_send")
                // Only the first part can meet EAGAIN: libzmq queues the rest of a started message.
                if error.isAgain && i == 0 { return false }
                if error.isInterrupted && i > 0 { continue }
                throw error
            }
        }
        return true
    }

    /// Sends a multipart message from byte arrays. See `send(buffers:dontWait:)`.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        try withBuffers(frames, 0, []) { try send(buffers: $0, dontWait: dontWait) }
    }

    /// Sends a multipart message of UTF-8 strings. See `send(buffers:dontWait:)`.
    @discardableResult
    public func send(strings frames: [String], dontWait: Bool = false) throws -> Bool {
        try send(frames.map { Array($0.utf8) }, dontWait: dontWait)
    }

    private func withBuffers<R>(_ frames: [[UInt8]], _ i: Int, _ acc: [UnsafeRawBufferPointer],
                                _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        if i == frames.count { return try body(acc) }
        return try frames[i].withUnsafeBytes { try withBuffers(frames, i + 1, acc + [$0], body) }
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
        // Release whatever the pool still holds, whatever happens.
        defer {
            for i in 0..<poolCapacity {
                zmq_msg_close(pool + i)
                zmq_msg_init(pool + i)
            }
        }
        if zmq_msg_recv(pool, h, flags) < 0 {
            let error = ZMQError("zmq_msg_recv")
            if error.isAgain { return nil }
            throw error
        }
        var count = 1
        var totalBytes = zmq_msg_size(pool)
        var more = zmq_msg_more(pool) != 0
        // Parts of a message arrive atomically: once the first is here, the rest are too.
        while more {
            let slot = pool + min(count, poolCapacity - 1)
            if zmq_msg_recv(slot, h, 0) < 0 {
                let error = ZMQError("zmq_msg_recv")
                if error.isInterrupted { continue }
                throw error
            }
            count += 1
            totalBytes += zmq_msg_size(slot)
            more = zmq_msg_more(slot) != 0
        }
        let frames = ZMQFrames(pool: pool, capacity: poolCapacity, count: count, totalBytes: totalBytes)
        return try body(frames)
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
    public func startMonitor(events: Int32 = 0xFFFF) throws -> ZMQMonitor {
        let h = try live("zmq_socket_monitor")
        let endpoint = "inproc://contactwatch-monitor-\(monitorCounter.add(1, ordering: .relaxed).newValue)"
        if zmq_socket_monitor(h, endpoint, events) != 0 { throw ZMQError("zmq_socket_monitor(\(endpoint))") }
        let pair = try ZMQSocket(context: context, type: .pair, lingerMilliseconds: 0, framePoolCapacity: 3)
        try pair.connect(endpoint)
        return ZMQMonitor(socket: pair)
    }
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

/// `zmq_poll` over sockets owned by the calling thread. Keeps its sockets alive.
public final class ZMQPoller {
    private var sockets: [ZMQSocket] = []
    private var interests: [ZMQPollEvents] = []

    public init() {}

    /// Adds `socket`; returns its index in poll results.
    @discardableResult
    public func add(_ socket: ZMQSocket, events: ZMQPollEvents = .readable) -> Int {
        sockets.append(socket)
        interests.append(events)
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
        for (socket, events) in zip(sockets, interests) {
            guard let h = socket.pollHandle else { throw ZMQError(operation: "zmq_poll", code: ZMQError.ENOTSOCK) }
            items.append(zmq_pollitem_t(socket: h, fd: 0, events: events.rawValue, revents: 0))
        }
        let n = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if n < 0 { throw ZMQError("zmq_poll") }
        return ZMQPollResult(events: items.map { ZMQPollEvents(rawValue: $0.revents) })
    }

    /// Whether `socket` was ready for reading in `result`.
    public func isReadable(_ socket: ZMQSocket, in result: ZMQPollResult) -> Bool {
        guard let i = sockets.firstIndex(where: { $0 === socket }) else { return false }
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

/// Reads the events of a `zmq_socket_monitor`. Owned by the monitored socket's thread.
public final class ZMQMonitor {
    fileprivate let socket: ZMQSocket

    fileprivate init(socket: ZMQSocket) { self.socket = socket }

    /// Reads every pending event without blocking and returns their counts
    /// (waits up to `timeoutMilliseconds` for the first one when given).
    public func drain(timeoutMilliseconds: Int = 0) throws -> ZMQMonitorCounts {
        var counts = ZMQMonitorCounts()
        var wait = timeoutMilliseconds
        while true {
            let event: UInt16?? = try socket.receiveMessage(timeoutMilliseconds: wait) { frames -> UInt16? in
                // Frame 1: uint16 event id + uint32 value (native byte order); frame 2: endpoint.
                frames.withUnsafeBytes(at: 0) { raw -> UInt16? in
                    guard raw.count >= 2 else { return nil }
                    return raw.loadUnaligned(as: UInt16.self)
                }
            }
            guard let maybe = event else { return counts }
            wait = 0
            guard let id = maybe.map(Int32.init) else { counts.other += 1; continue }
            switch id {
            case ZMQ_EVENT_CONNECTED: counts.connected += 1
            case ZMQ_EVENT_ACCEPTED: counts.accepted += 1
            case ZMQ_EVENT_DISCONNECTED: counts.disconnected += 1
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                counts.handshakeFailed += 1
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: counts.handshakeSucceeded += 1
            case ZMQ_EVENT_CLOSED: counts.closed += 1
            case ZMQ_EVENT_LISTENING: counts.listening += 1
            default: counts.other += 1
            }
        }
    }

    /// Closes the monitor's socket.
    public func close() { socket.close() }
}
