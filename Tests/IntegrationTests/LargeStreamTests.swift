import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

@Suite("A large generated stream through the daemon", .blocking)
struct LargeStreamTests {
    /// Reads `key=value` from the daemon's final "stopped" log line.
    static func counter(_ key: String, in log: String) -> Int? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("] stopped") }) else { return nil }
        for field in line.split(separator: " ") where field.hasPrefix("\(key)=") {
            return Int(field.dropFirst(key.count + 1))
        }
        return nil
    }

    @Test("a few hundred thousand generated events are processed without error or loss")
    func largeStream() throws {
        let dir = try TemporaryDirectory()
        let stream = dir.file("stream.ndjson")
        let generated = try runTool(["generate", "--cases", "16000", "--days", "150", "--seed", "3", "--output", stream])
        #expect(generated.status == 0, "\(generated.stderr)")
        let events = try String(contentsOfFile: stream, encoding: .utf8).split(separator: "\n").count
        #expect(events >= 250_000, "only \(events) events generated")
        let sentinel = dir.file("sentinel.ndjson")
        try "end-of-large-stream\n".write(toFile: sentinel, atomically: true, encoding: .utf8)
        // Unlimited input queue: a debug build is slower than replay, and PUB/SUB would otherwise drop.
        // `--subscribe ""`: the sentinel is a one-frame message, so a topic prefix would filter it out.
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""],
                                         environment: ["CONTACTWATCH_INPUT_RECEIVE_HIGH_WATER_MARK": "0"])
        let done = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "invalid-event", "--count", "1"])
        let alerts = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert.raised."])
        #expect(daemon.waitForSubscribers(2))
        let replay = try runTool(["replay", stream, sentinel, "--endpoint", daemon.input, "--wait-subscribers", "1",
                                  "--send-invalid"], timeout: 300)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(done.waitForExit(timeout: 300) == 0, "the sentinel notice did not arrive: \(daemon.child.stderr.text.suffix(2000))")
        #expect(done.stdout.text.contains("end-of-large-stream"))
        // Every rule raised at least once over a stream this size. Awaited before the kill: the sentinel's notice came
        // through another tail, which says nothing of how far this one has printed (a reviewer, session 38).
        let expectedRules: Set<String> = [
            "non-compliance.warning-due", "non-compliance.breach-due", "non-compliance.licence-review",
            "telephone-only", "remote-contact.excluded-case", "no-privacy",
            "compliance-rate.below-threshold", "non-compliance.enforcement-overdue",
        ]
        func rules(_ text: String) -> Set<String> {
            Set(text.split(separator: "\n").compactMap { jsonObject(String($0))?["rule"] as? String })
        }
        _ = alerts.stdout.wait(timeout: 60) { rules($0) == expectedRules }
        // SIGKILL: children inherit the test runner's signal mask, in which SIGTERM is blocked; tail flushes per line.
        alerts.signal(SIGKILL)
        _ = alerts.waitForExit(timeout: 10)
        #expect(daemon.stop() == 0)
        let log = daemon.child.stderr.text
        #expect(Self.counter("received", in: log) == events + 1, "\(log.suffix(600))")
        #expect(Self.counter("processed", in: log) == events)
        #expect(Self.counter("invalid", in: log) == 1)
        let seen = rules(alerts.stdout.text)
        #expect(seen == expectedRules, "\(seen.sorted())")
    }
}
