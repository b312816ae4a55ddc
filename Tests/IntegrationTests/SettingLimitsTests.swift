import ContactWatchTestThreads
import ContactWatchEngine
import ContactWatchTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Settings an operator can type but the daemon cannot run with. Each of these used to pass `--check-config` (exit 0)
/// and then killed the daemon at the first event that used it (a trap on arithmetic overflow: signal 4, exit 132),
/// hung its processing loop (business days counted one at a time), killed it an hour after the start (the journal
/// pruning's cutoff), or left it ready and deaf (no subscription at all).
@Suite("settings beyond what the daemon can compute with are refused at start (exit 64), not at the first event", .blocking)
struct SettingLimitsTests {
    static let tooLarge = "9223372036854775807"
    /// The largest accepted durations (README, *Configuration*): a century in days (business days too), months, seconds.
    static let maxDays = 36_525, maxMonths = 1_200, maxSeconds = 36_525 * 86_400

    /// (environment variable, key, a value just past the limit).
    static let cases: [(String, String, String)] = [
        ("RULES_NON_COMPLIANCE_WINDOW_MONTHS", "rules.nonCompliance.windowMonths", tooLarge),
        ("RULES_NON_COMPLIANCE_ENFORCEMENT_DEADLINE_BUSINESS_DAYS", "rules.nonCompliance.enforcementDeadlineBusinessDays", "2000000000"),
        ("RULES_OUTCOME_OVERDUE_BUSINESS_DAYS", "rules.outcomeOverdue.businessDays", "\(Self.maxDays + 1)"),
        ("RULES_TELEPHONE_ONLY_LIMIT_DAYS", "rules.telephoneOnly.limitDays", tooLarge),
        ("RULES_TELEPHONE_ONLY_PRIORITY_LIMIT_DAYS", "rules.telephoneOnly.priorityLimitDays", tooLarge),
        ("INPUT_CONTACT_RETENTION_DAYS", "input.contactRetentionDays", tooLarge),
        ("INPUT_MAX_FUTURE_SKEW_SECONDS", "input.maxFutureSkewSeconds", tooLarge),
        ("STATE_JOURNAL_RETENTION_DAYS", "state.journalRetentionDays", tooLarge),
        ("INPUT_RECEIVE_HIGH_WATER_MARK", "input.receiveHighWaterMark", "9999999999"),
        ("OUTPUT_SEND_HIGH_WATER_MARK", "output.sendHighWaterMark", "9999999999"),
    ]

    @Test("--check-config names each value too large to compute with, exit 64")
    func tooLargeValues() throws {
        let dir = try TemporaryDirectory()
        for (variable, key, value) in Self.cases {
            let c = try Child("contactwatchd", ["--check-config", "--state-dir", dir.file("state")],
                              environment: ["CONTACTWATCH_\(variable)": value])
            let status = c.waitForExit(timeout: 30)
            #expect(status == 64, "\(key) = \(value) was accepted: \(c.stdout.text)\(c.stderr.text)")
            #expect(c.stderr.text.contains("configuration: \(key): must be an integer from"), "\(key): \(c.stderr.text)")
        }
    }

    @Test("the daemon started with such a value exits 64 before touching its state, instead of dying at the first event")
    func refusedAtStart() throws {
        let dir = try TemporaryDirectory()
        let c = try Child("contactwatchd", ["--state-dir", dir.file("state"), "--input", dir.ipc("in"), "--input-bind",
                                            "--output", dir.ipc("out")],
                          environment: ["CONTACTWATCH_INPUT_MAX_FUTURE_SKEW_SECONDS": Self.tooLarge])
        let status = c.waitForExit(timeout: 30)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 64, "\(c.stderr.text)")
        #expect(c.stderr.text.contains("input.maxFutureSkewSeconds"), "\(c.stderr.text)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "the state directory was created")
    }

    @Test("an empty subscription list (a daemon that would hear nothing), an empty prefix among others (a doubled comma: everything, silently) and an empty state directory are exit 64")
    func deafOrNowhere() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("c.yaml")
        try "input:\n  subscribe: []\n".write(toFile: file, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state")])
        #expect(c.waitForExit(timeout: 30) == 64, "\(c.stdout.text)\(c.stderr.text)")
        #expect(c.stderr.text.contains("configuration: input.subscribe: at least one topic prefix is needed"), "\(c.stderr.text)")

        // A doubled comma in the environment's list: an empty prefix among others subscribed to everything, silently.
        let d = try Child("contactwatchd", ["--check-config", "--state-dir", dir.file("state")],
                          environment: ["CONTACTWATCH_INPUT_SUBSCRIBE": "probation-case.contact.,,probation-case.registration."])
        #expect(d.waitForExit(timeout: 30) == 64, "\(d.stdout.text)\(d.stderr.text)")
        #expect(d.stderr.text.contains("input.subscribe: an empty prefix (\"\") among others"), "\(d.stderr.text)")

        let e = try Child("contactwatchd", ["--check-config", "--state-dir", ""])
        #expect(e.waitForExit(timeout: 30) == 64, "\(e.stdout.text)\(e.stderr.text)")
        #expect(e.stderr.text.contains("configuration: state.dir: must not be empty"), "\(e.stderr.text)")
    }

    @Test("at every largest accepted value the daemon processes a stream that uses each of them, and stops cleanly")
    func largestAccepted() throws {
        let dir = try TemporaryDirectory()
        let days = "\(Self.maxDays)"
        let environment = [
            "CONTACTWATCH_RULES_NON_COMPLIANCE_WINDOW_MONTHS": "\(Self.maxMonths)",
            "CONTACTWATCH_RULES_NON_COMPLIANCE_ENFORCEMENT_DEADLINE_BUSINESS_DAYS": days,
            "CONTACTWATCH_RULES_OUTCOME_OVERDUE_ENABLED": "true",
            "CONTACTWATCH_RULES_OUTCOME_OVERDUE_BUSINESS_DAYS": days,
            "CONTACTWATCH_RULES_TELEPHONE_ONLY_LIMIT_DAYS": days,
            "CONTACTWATCH_RULES_TELEPHONE_ONLY_PRIORITY_LIMIT_DAYS": days,
            "CONTACTWATCH_RULES_COMPLIANCE_RATE_WINDOW_DAYS": days,
            "CONTACTWATCH_INPUT_CONTACT_RETENTION_DAYS": days,
            "CONTACTWATCH_INPUT_MAX_FUTURE_SKEW_SECONDS": "\(Self.maxSeconds)",
            "CONTACTWATCH_STATE_JOURNAL_RETENTION_DAYS": days,
            "CONTACTWATCH_LOG_STATS_INTERVAL_SECONDS": "1",
        ]
        // Subscribed to everything: example 04 has a one-frame message, which a prefix subscription does not match.
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""], environment: environment)
        // Events at both ends of the date range — a failure in year 0000 (first, before W moves on) and contacts a
        // century ahead of the wall clock (the largest skew accepted, last) — around every example stream (each rule).
        func event(_ crn: String, _ id: Int, _ at: String, _ extra: String) -> String {
            #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"\#(at)","personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"additionalInformation":{"contactId":\#(id),"contactStart":"\#(at)",\#(extra)}}"#
        }
        var lines = [event("X900001", 900_001, "0000-01-03T10:00:00Z", #""contactType":"COAP","outcome":{"code":"UAAB"}"#),
                     event("X900001", 900_002, "0000-03-01T10:00:00Z", #""contactType":"COPT","outcome":{"code":"ATTC"}"#)]
        for name in Fixtures.exampleNames { lines += try Fixtures.lines("\(name).ndjson") }
        let future = RFC3339.format(Millis(Date().timeIntervalSince1970 * 1000) + Millis(Self.maxSeconds - 86_400) * 1000)
        lines.append(event("X900002", 900_003, future, #""contactType":"COAP","outcome":{"code":"UAAB"}"#))
        lines.append(event("X900002", 900_004, future, #""contactType":"COPT""#))
        let file = dir.file("stream.ndjson")
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let replay = try runTool(["replay", file, "--endpoint", daemon.input, "--wait-subscribers", "1"])
        #expect(replay.status == 0, "\(replay.stderr)")
        let summary = replay.stderr.split(separator: "\n").last { $0.hasPrefix("replayed ") } ?? ""
        let sent = summary.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? -1
        try #require(sent > lines.count / 2, "\(replay.stderr)")
        // The counters line (every second here) shows when every message sent has been read.
        let read = daemon.child.stderr.wait(timeout: 60) { $0.contains(" received=\(sent) ") }
        #expect(read && daemon.child.process.isRunning, "the daemon did not read the stream: \(daemon.child.stderr.text.suffix(3000))")
        let status = daemon.stop()
        #expect(status == 0, "exit \(String(describing: status)): \(daemon.child.stderr.text.suffix(3000))")
        let received = daemon.child.stderr.lines.last { $0.contains(" stopped") }
        #expect(received?.contains("received=\(sent) ") == true, "sent \(sent): \(received ?? daemon.child.stderr.text.suffix(2000).description)")
    }
}
