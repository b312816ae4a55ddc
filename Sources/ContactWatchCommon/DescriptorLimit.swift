#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's limit on open descriptors (`RLIMIT_NOFILE`), raised at start from its soft value to its hard one.
///
/// Each connection to a bound endpoint costs the daemon one descriptor, and libzmq 4.3.4 does not survive running out
/// of them on every path: a connection accepted on an `ipc://` endpoint when none is left aborts the process
/// (`src/ipc_listener.cpp:325`: the `errno_assert` after `accept` allows `ENFILE` but not `EMFILE`; still so in
/// libzmq's master), and on a `tcp://` endpoint the failed accept is ignored but the listener stays readable, so
/// libzmq's I/O thread retries it without pause until a descriptor is freed. A soft limit of 1024 (the usual default
/// outside systemd) is a thousand consumers or idle connections away from that; the hard limit (systemd's default
/// is 524288, the unit asks for 65536) is not. Raising the soft limit needs no privilege.
public enum DescriptorLimit {
    public struct Raised: Equatable, Sendable {
        /// The soft limit before, and after (the hard limit, or the soft one when raising failed).
        public var before: UInt64
        public var now: UInt64
        public var hard: UInt64
        /// Why the soft limit could not be raised, if it could not (the system's words).
        public var failure: String?

        public init(before: UInt64, now: UInt64, hard: UInt64, failure: String?) {
            self.before = before
            self.now = now
            self.hard = hard
            self.failure = failure
        }
    }

    public static let ceiling: UInt64 = 1 << 20

    /// The least open-files limit the daemon starts with. With its input, output, journal and metrics endpoints it
    /// holds about 40 descriptors at `ready`, before any consumer (the store and its side files, three SQLite
    /// connections, the state directory's locks, libzmq's context, sockets and monitors, the metrics server's event
    /// loop). Below that it failed at whichever open came first, and on some of them crashed: under `prlimit
    /// --nofile=N:N` with N from 10 to 40, libzmq aborted it (`epoll.cpp:65`, N 23–25, exit 134), swift-nio trapped
    /// (N 17–20, exit 132), and elsewhere it blamed the store (exit 74 "cannot be opened", N 10 and 36) or a bind
    /// ("Resource temporarily unavailable", N 33) — a process-environment hunter, session 53. 64 leaves a couple of
    /// dozen for consumers and clients.
    public static let startMinimum: UInt64 = 64

    /// The refusal to start under a limit below `startMinimum` (after raising it to the hard one), or nil.
    public static func refusal(_ limit: Raised) -> String? {
        belowMinimum(limit, startMinimum, "the daemon starts with: it holds about 40 descriptors before its first "
            + "consumer (store, sockets, libzmq's and the metrics server's event loops), and with fewer it would fail at "
            + "whichever open came first, or libzmq would abort it; raise LimitNOFILE= (the packaged unit sets 65536) or "
            + "`ulimit -n` (hard limit) before the start")
    }

    /// The least open-files limit `contactwatch` runs under (after raising it to the hard one). A command holds about
    /// ten (libzmq's context, one or two sockets, a file); under `prlimit --nofile=N:N` with N from 4 to 12 libzmq
    /// aborted it (`epoll.cpp:65`, exit 134) or Swift trapped (exit 132), by the value and the command (session 53's
    /// note, measured again in session 54).
    public static let toolMinimum: UInt64 = 32

    /// The least descriptors `contactwatch` wants free under its limit: with 40 of 48 already open, inherited from its
    /// parent, libzmq aborted it all the same (an adversarial tester, session 54). A shell passes three or four.
    public static let toolMinimumFree: UInt64 = 24

    /// `contactwatch`'s refusal to run under a limit below `toolMinimum` (after raising it to the hard one), or with
    /// fewer than `toolMinimumFree` of it free (`open`: the descriptors open now, nil when unknown), or nil.
    public static func toolRefusal(_ limit: Raised, open: UInt64? = nil) -> String? {
        let why = "with fewer, libzmq would abort it part way; raise `ulimit -n` (hard limit)"
        if let refused = belowMinimum(limit, toolMinimum, "this tool runs with: " + why) { return refused }
        guard let open, limit.now < open + toolMinimumFree else { return nil }
        return "\(open) of the open-files limit of \(limit.now) are open already (inherited from the program that "
            + "started this one), leaving fewer than the \(toolMinimumFree) this tool needs free: \(why), or close them"
    }

    /// "the open-files limit is N (hard limit H), below the M " + `what`, when it is.
    private static func belowMinimum(_ limit: Raised, _ minimum: UInt64, _ what: String) -> String? {
        guard limit.now < minimum else { return nil }
        return "the open-files limit is \(limit.now) (hard limit \(limit.hard)), below the \(minimum) " + what
    }

    /// The descriptors this process has open (the entries of /proc/self/fd, less the one reading it), nil without /proc.
    public static func openCount() -> UInt64? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var n: UInt64 = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { $0.first }
            if name != UInt8(ascii: ".") { n += 1 }
        }
        return n > 0 ? n - 1 : 0
    }

    /// The limits could not be read (`getrlimit` failed): the system's words. The limit stays as it is.
    public struct Unreadable: Error, Equatable, Sendable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }

    /// Raises the soft `RLIMIT_NOFILE` to the hard one. `read` is `getrlimit` (a seam for tests: it returns 0, or
    /// the `errno` of its failure).
    public static func raiseToHard(
        read: (inout rlimit) -> Int32 = { getrlimit(Int32(RLIMIT_NOFILE.rawValue), &$0) == 0 ? 0 : errno }
    ) -> Result<Raised, Unreadable> {
        var limit = rlimit()
        let failure = read(&limit)
        guard failure == 0 else { return .failure(Unreadable(reason: String(cString: strerror(failure)))) }
        let before = UInt64(limit.rlim_cur), hard = UInt64(limit.rlim_max)
        if limit.rlim_cur >= min(limit.rlim_max, rlim_t(Self.ceiling)) {
            return .success(Raised(before: before, now: before, hard: hard, failure: nil))
        }
        // An unlimited hard limit cannot be the soft one (the kernel caps descriptors at fs.nr_open, 1048576 by default).
        var raised = limit
        raised.rlim_cur = min(limit.rlim_max, rlim_t(Self.ceiling))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 {
            return .success(Raised(before: before, now: before, hard: hard, failure: String(cString: strerror(errno))))
        }
        return .success(Raised(before: before, now: UInt64(raised.rlim_cur), hard: hard, failure: nil))
    }
}
