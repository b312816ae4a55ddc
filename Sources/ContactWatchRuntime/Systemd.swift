import CSystemd
import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// systemd's notification protocol through libsystemd (`sd_notify`). Every call is a no-op when the daemon was not
/// started by systemd (`NOTIFY_SOCKET` unset).
public enum Systemd {
    /// Sends a state string such as `READY=1`. Returns whether systemd was told. A failure (`NOTIFY_SOCKET` naming
    /// no socket, or one a sandbox hides) is said at `warning`, once per kind of state (`READY`, `WATCHDOG`, …):
    /// it was dropped, and the daemon's log looked healthy while `Type=notify` timed its start out or the watchdog
    /// killed it (an auditor, session 29).
    @discardableResult
    public static func notify(_ state: String, sayFailure: Bool = true) -> Bool {
        let rc = sd_notify(0, state)
        if rc < 0 && sayFailure { reportFailure(of: state, code: -rc) }
        return rc > 0
    }

    /// The kinds of state whose failure was said (`notify`).
    private static let failuresSaid = Mutex<Set<String>>([])

    private static func reportFailure(of state: String, code: Int32) {
        let kind = String(state.prefix { $0 != "=" })
        guard failuresSaid.withLock({ $0.insert(kind).inserted }) else { return }
        let consequence = switch kind {
        case "READY": "with Type=notify systemd takes the start as failed when its timeout passes and stops the daemon"
        case "WATCHDOG": "with WatchdogSec= systemd takes the daemon as hung and restarts it"
        default: "systemctl status shows stale information"
        }
        Logger(label: "contactwatchd").warning("""
            systemd was not told \(kind == "STATUS" ? "the status line" : String(state.prefix { $0 != "\n" })): \(String(cString: strerror(code))) \
            (NOTIFY_SOCKET=\(getenv("NOTIFY_SOCKET").map { String(cString: $0) } ?? "")): \(consequence); check that the \
            socket exists and the unit's sandboxing leaves it reachable
            """, metadata: ["notify": "\(kind)"])
    }

    /// Sends `state` from a serial queue of its own and returns at once: for READY=1 and the stop path, which must
    /// not wait for the notification socket (`sd_notify` blocks while its queue is full: a supervisor that is slow or stopped
    /// reading). Notifications sent this way keep their order.
    public static func notifyWithoutWaiting(_ state: String, sayFailure: Bool = true) {
        background.async { notify(state, sayFailure: sayFailure) }
    }

    private static let background = DispatchQueue(label: "contactwatch.systemd.states")

    /// Waits, at most `timeout` seconds, until the notifications sent without waiting have gone: at the exit, so that
    /// a quick stop's STOPPING=1 (or a failure's reason) cannot still be queued when the process ends. (Not seen lost
    /// in a test; an ordering the exit should not leave to chance, session 38.) Returns whether they all went.
    @discardableResult
    public static func flush(timeout: Double) -> Bool {
        let done = DispatchSemaphore(value: 0)
        background.async { done.signal() }
        return done.wait(timeout: .now() + timeout) == .success
    }

    /// `STOPPING=1` with a `STATUS=` line saying why, for a stop the daemon decides itself on a failure (the store,
    /// a socket), sent as the failure is found: only SIGTERM's stop said STOPPING=1, so for the save and flush after a
    /// failure `systemctl status` still showed the daemon running, and nothing told systemd why (a fault tester,
    /// session 35). The reason is the first line of the message, cut to 200 characters.
    /// `sayFailure`: false before the log is set up (a failed configuration), where a failure to notify would be said
    /// by swift-log's default handler, in neither the log's format nor journald's priority (an adversarial tester,
    /// session 54); the start's own line says why it stopped.
    public static func notifyFailureStop(_ error: DaemonError, sayFailure: Bool = true) {
        // Said once: the first reason is the one (the loop's, before the rethrow in the daemon's thread).
        guard !failureStopSaid.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let first = error.message.split(separator: "\n").first.map(String.init) ?? ""
        let reason = first.count > 200 ? String(first.prefix(199)) + "…" : first
        notifyWithoutWaiting("STOPPING=1\nSTATUS=stopping: \(reason)", sayFailure: sayFailure)
    }

    /// Set once a failure stop was said: the heartbeat's periodic `STATUS=` line would replace its reason in `systemctl
    /// status` within 5 s (a reviewer, session 35), so it sends none after.
    static let failureStopSaid = Atomic<Bool>(false)

    /// Whether systemd asked for notifications (`NOTIFY_SOCKET` is set).
    public static var isSupervised: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// The watchdog interval in microseconds when `WATCHDOG_USEC` asks this process for pings, else nil.
    public static func watchdogMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }
}

/// systemd's periodic notifications — the watchdog ping and the `STATUS=` line `systemctl status` shows — sent from a
/// timer on their own dispatch queue, never from the processing thread: `sd_notify` blocks while the notification
/// socket's queue is full (10 datagrams by default, `net.unix.max_dgram_qlen`), and a reader that is slow or gone must
/// not stop the loop. The watchdog still tracks the loop: it pings only while the loop has turned within the
/// watchdog interval (`RuntimeCounters.lastTurnNanos`, stored once per turn; an idle loop turns every 100 ms), so a
/// stuck loop stops the pings and systemd restarts the daemon.
final class SystemdHeartbeat {
    private let timer: any DispatchSourceTimer

    /// Starts the heartbeat when systemd asked for notifications; nil otherwise (nothing to send).
    static func start(counters: RuntimeCounters) -> SystemdHeartbeat? {
        guard Systemd.isSupervised else { return nil }
        return SystemdHeartbeat(counters: counters, watchdogMicroseconds: Systemd.watchdogMicroseconds())
    }

    private init(counters: RuntimeCounters, watchdogMicroseconds: UInt64?) {
        let statusNanos: UInt64 = 5_000_000_000
        // Pings at half the interval systemd allows; the timer ticks at the shorter of the two periods.
        let watchdogNanos = watchdogMicroseconds.map { $0 * 1000 }
        let tick = min(statusNanos, watchdogNanos.map { max(1_000_000, $0 / 2) } ?? statusNanos)
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "contactwatch.systemd"))
        let last = LastStatus(at: MonotonicClock.nanos())
        timer.setEventHandler {
            let now = MonotonicClock.nanos()
            if let watchdogNanos {
                let turned = counters.lastTurnNanos.load(ordering: .relaxed)
                if Self.pingDue(now: now, lastTurn: turned, watchdogNanos: watchdogNanos) { Systemd.notify("WATCHDOG=1") }
            }
            if Self.statusDue(sinceLast: now - last.at, every: statusNanos, tick: tick) {
                let received = counters.received.load(ordering: .relaxed)
                let rate = Double(received - last.received) / (Double(now - last.at) / 1e9)
                (last.at, last.received) = (now, received)
                if !Systemd.failureStopSaid.load(ordering: .acquiring) {
                    Systemd.notify("STATUS=" + Housekeeping.status(counters, eventsPerSecond: rate))
                }
            }
        }
        timer.schedule(deadline: .now() + .nanoseconds(Int(tick)), repeating: .nanoseconds(Int(tick)))
        timer.resume()
        self.timer = timer
    }

    func stop() { timer.cancel() }

    /// Whether the watchdog ping is due at `now` for a loop that last turned at `lastTurn` (0: not yet), with the
    /// interval systemd allows, `watchdogNanos`: only when the loop turned within half of it (at least 250 ms, more
    /// than the idle loop's 100 ms turn). Pinged while it had turned within the whole interval, a loop stuck just
    /// after a turn was pinged for almost one interval more, and systemd stepped in up to twice the interval after the
    /// last turn; now at most one and a half (a bug hunter, session 45: S3).
    static func pingDue(now: UInt64, lastTurn: UInt64, watchdogNanos: UInt64) -> Bool {
        lastTurn != 0 && now &- lastTurn < max(watchdogNanos / 2, 250_000_000)
    }

    /// Whether the `STATUS=` line is due `sinceLast` nanoseconds after the last one, for a line `every` nanoseconds on a
    /// timer that ticks every `tick`: within half a tick of the period counts. A tick comes a little early or late;
    /// compared with the period itself, a tick 4.99 s after the last line waited for the next one, and the lines came
    /// every 10 s instead of 5 (a README audit, session 24: at 5.27, 15.27, 25.27 s…).
    static func statusDue(sinceLast: UInt64, every period: UInt64, tick: UInt64) -> Bool {
        sinceLast + tick / 2 >= period
    }

    /// When the last `STATUS=` line was sent and the `received` count then; touched only on the timer's queue.
    private final class LastStatus: @unchecked Sendable {
        var at: UInt64
        var received = 0
        init(at: UInt64) { self.at = at }
    }
}

/// While the daemon starts under systemd, until READY=1: `EXTEND_TIMEOUT_USEC=` every second for as long as the start
/// makes progress, with a `STATUS=` line saying what it is doing. Each start checks the whole store (`PRAGMA
/// quick_check`, about 9 s a GB when cached, more from a cold disk) before it loads the state; a store of a few GB (a
/// long journal retention) outlasted the unit's `TimeoutStartSec=60`, and systemd killed a healthy start and restarted
/// it, for ever (an operator audit, session 36). Progress is the process's CPU time: the check and the load use it
/// whether the pages come from the cache or the disk, and a start that is stuck (a read that never returns from a hung
/// network file system, the state directory's lock held by another process) uses none, so systemd's own timeout still
/// ends it. The extension only lengthens the start past `TimeoutStartSec=`, never shortens it (systemd.exec's
/// `EXTEND_TIMEOUT_USEC`): a start that is done within it is unchanged.
final class SystemdStartExtension: @unchecked Sendable {
    /// How often progress is looked at: every second, so that a `TimeoutStartSec=` of a few seconds can be extended too
    /// (at 5 s, one of 3 s never was: systemd 252, session 37).
    static let tickNanos: UInt64 = 1_000_000_000
    /// How long each message extends the start for, counted from its receipt: ten ticks, so that ticks that come late
    /// do not end a start that is progressing.
    static let extendMicroseconds: UInt64 = 10_000_000
    /// The CPU time a tick must have seen used to count as progress...
    static let progressNanos: UInt64 = 10_000_000
    /// ... or the bytes read (`rchar` of `/proc/self/io`): a check of a store on a slow disk waits on its reads and
    /// uses little CPU (at 1 MB/s of reads some seconds saw under 10 ms, and at 256 KB/s a start that was reading
    /// was timed out: systemd 252, session 38). A start stuck on a lock or a hung read reads nothing; the tick's own
    /// read of `/proc/self/io` is a few hundred bytes.
    static let progressBytes: UInt64 = 64 << 10

    private let timer: any DispatchSourceTimer
    /// Set by `stop`: a tick already under way sends nothing after it (its `STATUS=starting` line came after READY=1,
    /// a reviewer, session 37).
    private let stopped: Flag

    /// A flag the timer's handler shares with `stop`.
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// Started when systemd asked for notifications; nil otherwise.
    static func start() -> SystemdStartExtension? {
        guard Systemd.isSupervised else { return nil }
        return SystemdStartExtension(tickNanos: tickNanos, cpuNanos: processCPUNanos, bytesRead: processBytesRead) {
            Systemd.notify($0)
        }
    }

    /// - Parameters:
    ///   - cpuNanos: the process's CPU time so far.
    ///   - bytesRead: the bytes the process has read so far.
    ///   - notify: sends one notification (its own queue: it may block on a full notification socket).
    init(tickNanos: UInt64, cpuNanos: @escaping @Sendable () -> UInt64, bytesRead: @escaping @Sendable () -> UInt64 = { 0 },
         notify: @escaping @Sendable (String) -> Void) {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "contactwatch.systemd.start"))
        let started = MonotonicClock.nanos()
        let last = Mutex<(cpu: UInt64, read: UInt64)>((cpuNanos(), bytesRead()))
        let stopped = Flag()
        timer.setEventHandler {
            let now = (cpu: cpuNanos(), read: bytesRead())
            let used = last.withLock { last in
                defer { last = now }
                return (cpu: now.cpu &- last.cpu, read: now.read &- last.read)
            }
            if let message = Self.message(cpuUsed: used.cpu, bytesRead: used.read,
                                          elapsedNanos: MonotonicClock.nanos() &- started),
               !stopped.value.load(ordering: .acquiring) {
                notify(message)
            }
        }
        timer.schedule(deadline: .now() + .nanoseconds(Int(tickNanos)), repeating: .nanoseconds(Int(tickNanos)))
        timer.resume()
        self.timer = timer
        self.stopped = stopped
    }

    /// Stops the ticks (at READY=1; a tick under way may still send its message, which then extends nothing).
    func stop() {
        stopped.value.store(true, ordering: .releasing)
        timer.cancel()
    }

    /// What a tick sends after `cpuUsed` nanoseconds of CPU time and `bytesRead` bytes read since the last one,
    /// `elapsedNanos` into the start: nil when that is no progress.
    static func message(cpuUsed: UInt64, bytesRead: UInt64 = 0, elapsedNanos: UInt64) -> String? {
        guard cpuUsed >= progressNanos || bytesRead >= progressBytes else { return nil }
        return "EXTEND_TIMEOUT_USEC=\(extendMicroseconds)\nSTATUS=starting: checking and loading the state store "
            + "(\(elapsedNanos / 1_000_000_000) s so far)"
    }

    /// The bytes this process has read (`rchar` in `/proc/self/io`: every `read`, from the page cache or the disk);
    /// 0 when the file cannot be read (then only the CPU time counts).
    static func processBytesRead() -> UInt64 {
        let fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        // "rchar: 6976\n…": the first line.
        let text = buffer[0..<n]
        guard text.starts(with: Array("rchar:".utf8)) else { return 0 }
        var value: UInt64 = 0
        for byte in text.dropFirst(6) where byte != UInt8(ascii: " ") {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            value = value &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// The CPU time this process has used, every thread's.
    static func processCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
