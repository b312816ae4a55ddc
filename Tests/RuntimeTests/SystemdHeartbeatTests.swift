@testable import ContactWatchRuntime
import Testing

/// The `STATUS=` line every 5 s (README, *Start*), from a timer whose ticks come a little early or late.
@Suite("SystemdHeartbeat: when the STATUS= line is due")
struct SystemdHeartbeatTests {
    static let second: UInt64 = 1_000_000_000

    @Test("a tick a little before or after the period sends the line; a tick half a period early does not", arguments: [
        (UInt64(4_990_000_000), UInt64(5_000_000_000), true),   // the 5 s timer's tick 10 ms early (it waited 5 s more)
        (5_270_000_000, 5_000_000_000, true),
        (2_400_000_000, 5_000_000_000, false),
        (4_400_000_000, 1_000_000_000, false),                  // a 1 s tick (a short watchdog): the fifth tick sends
        (4_600_000_000, 1_000_000_000, true),
    ])
    func statusDue(sinceLast: UInt64, tick: UInt64, due: Bool) {
        #expect(SystemdHeartbeat.statusDue(sinceLast: sinceLast, every: 5 * Self.second, tick: tick) == due)
    }

    /// A loop stuck just after a turn: pinged while it had turned within the whole interval, systemd stepped in up to
    /// twice the interval after the last turn.
    @Test("the watchdog ping stops half an interval after the loop's last turn (at least 250 ms), so systemd steps in within 1.5 intervals", arguments: [
        // (seconds since the last turn, watchdog interval in seconds, pinged)
        (0.1, 10.0, true),    // an idle loop's 100 ms turn
        (4.9, 10.0, true),
        (5.0, 10.0, false),
        (9.0, 10.0, false),   // pinged until the interval's end, systemd waited another whole interval from that ping
        (0.24, 0.2, true),    // a 200 ms watchdog: the 250 ms floor still pings an idle loop
        (0.26, 0.2, false),
    ])
    func pingDue(sinceTurn: Double, watchdog: Double, ping: Bool) {
        let lastTurn: UInt64 = 1_000 * Self.second
        let now = lastTurn + UInt64(sinceTurn * 1e9)
        #expect(SystemdHeartbeat.pingDue(now: now, lastTurn: lastTurn, watchdogNanos: UInt64(watchdog * 1e9)) == ping)
    }

    @Test("no watchdog ping before the loop's first turn")
    func noPingBeforeFirstTurn() {
        #expect(!SystemdHeartbeat.pingDue(now: 5 * Self.second, lastTurn: 0, watchdogNanos: 10 * Self.second))
    }

    /// While the start waits to republish, the status line says that first: it looked like a daemon with no input.
    @Test("the STATUS= line says the republish wait while it lasts, and only then; the wait extends the start past the grace")
    func republishWait() {
        let counters = RuntimeCounters()
        #expect(Housekeeping.status(counters, eventsPerSecond: 0).hasPrefix("0 events/s, 0 received"))
        counters.republishWaiting.store(5, ordering: .relaxed)
        #expect(Housekeeping.status(counters, eventsPerSecond: 0).hasPrefix(
            "starting: waiting for a consumer of alert topics before republishing 5 alerts (input not read until then); 0 events/s"))
        #expect(RepublishWait.systemdState(alerts: 1, graceMillis: 120_000)
                == "EXTEND_TIMEOUT_USEC=130000000\nSTATUS=starting: waiting for a consumer of alert topics before republishing 1 alert (input not read until then)")
        #expect(RepublishWait.notice(alerts: 3, graceMillis: 2500).hasPrefix("waiting up to 2.5 s (output.republishGraceMillis)"))
    }
}
