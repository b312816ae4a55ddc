#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Connections libzmq could not accept on a bound socket, as its socket monitors report them
/// (`ZMQ_EVENT_ACCEPT_FAILED`, the value the `errno`): counted (`acceptFailures` in the `counters` and `stopped`
/// lines) and logged at `warning`, at most 10 lines at once then one every 6 s per socket, each saying how many were
/// not logged. On a `tcp://` endpoint with no descriptor left libzmq retries the accept without pause, so this fires
/// thousands of times a second until a descriptor is freed: the count shows how long, the log stays readable. (On an
/// `ipc://` endpoint the same failure aborts the process inside libzmq before any event: nothing to report.)
/// Callable from any thread: the processing thread (input, output), the journal thread, the ZAP handler's.
final class AcceptFailureLog: Sendable {
    private let counters: RuntimeCounters
    private let logger: Logger
    private let limiter: LogLimiter

    init(counters: RuntimeCounters, logger: Logger, limiter: LogLimiter = LogLimiter()) {
        self.counters = counters
        self.logger = logger
        self.limiter = limiter
    }

    /// The failures held back by the rate limit once their flood is over (`LogLimiter.sayHeldBack`).
    func sayHeldBack(stopping: Bool = false) {
        limiter.sayHeldBack(to: logger, level: .warning, stopping: stopping) { "failed accepts of connections on the \($0) socket" }
    }

    func report(_ socket: SocketRole, endpoint: String, code: Int32) {
        counters.acceptFailures.add(1, ordering: .relaxed)
        guard let notLogged = limiter.admit(socket.rawValue) else { return }
        var limit = rlimit()
        let soft = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? "\(limit.rlim_cur)" : "unknown"
        var metadata: Logger.Metadata = [
            "socket": "\(socket.rawValue)", "endpoint": "\(endpoint)", "errno": "\(code)", "openFilesLimit": "\(soft)",
        ]
        if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
        let why = code == EMFILE || code == ENFILE
            ? "no file descriptor left; libzmq retries until one is freed (connections from peers that do not need "
                + "them should be closed, or LimitNOFILE raised)"
            : "the connection is dropped"
        logger.warning("cannot accept a connection on the \(socket.rawValue) socket: \(String(cString: strerror(code))); \(why)",
                       metadata: metadata)
    }
}
