import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

/// The environment variable for a configuration key, as swift-configuration maps it, with the daemon's prefix:
/// `rules.complianceRate.minimumSample` → `CONTACTWATCH_RULES_COMPLIANCE_RATE_MINIMUM_SAMPLE`.
func environmentName(_ key: String) -> String {
    var out = "CONTACTWATCH_"
    var previousLower = false
    for ch in key {
        if ch == "." { out += "_"; previousLower = false; continue }
        if ch.isUppercase && previousLower { out += "_" }
        out += ch.uppercased()
        previousLower = ch.isLowercase || ch.isNumber
    }
    return out
}

@Suite("Spec examples through the real executables", .blocking)
struct ExamplesThroughDaemonTests {
    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: Executables.fixtures.path)) ?? [])
            .filter { $0.hasSuffix(".ndjson") && !$0.hasSuffix(".expected.ndjson") }
            .map { String($0.dropLast(".ndjson".count)) }.sorted()
    }

    @Test("environment names follow swift-configuration's mapping")
    func environmentNames() {
        #expect(environmentName("rules.complianceRate.minimumSample") == "CONTACTWATCH_RULES_COMPLIANCE_RATE_MINIMUM_SAMPLE")
        #expect(environmentName("input.maxMessageBytes") == "CONTACTWATCH_INPUT_MAX_MESSAGE_BYTES")
    }

    @Test("contactwatch replay → contactwatchd → contactwatch tail publishes each example's expected messages", arguments: names)
    func example(_ name: String) throws {
        let dir = try TemporaryDirectory()
        // Settings files are applied through the environment, the way an operator would override a default.
        var env: [String: String] = [:]
        let settingsURL = Executables.fixtures.appendingPathComponent("\(name).settings.json")
        if let data = try? Data(contentsOf: settingsURL),
           let settings = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            for (key, value) in settings { env[environmentName(key)] = "\(value)" }
        }
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""], environment: env)
        let expectedLines = try String(contentsOf: Executables.fixtures.appendingPathComponent("\(name).expected.ndjson"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        // A sentinel (not JSON) replayed after the stream proves nothing else was published in between.
        let sentinel = dir.file("sentinel.ndjson")
        try "sentinel-\(name)\n".write(toFile: sentinel, atomically: true, encoding: .utf8)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--count", "\(expectedLines.count + 1)"])
        #expect(daemon.waitForSubscribers(1), "tail did not subscribe: \(daemon.child.stderr.text)")
        let replay = try runTool(["replay", Executables.fixtures.appendingPathComponent("\(name).ndjson").path, sentinel,
                                  "--endpoint", daemon.input, "--wait-subscribers", "1", "--send-invalid"])
        #expect(replay.status == 0, "replay failed: \(replay.stderr)")
        let tailStatus = tail.waitForExit(timeout: 30)
        #expect(tailStatus == 0, "tail did not get \(expectedLines.count + 1) messages: \(tail.stdout.text)\n\(daemon.child.stderr.text)")
        let got = tail.stdout.lines
        try #require(got.count == expectedLines.count + 1, "\(got.count) lines: \(got)")
        for (k, line) in expectedLines.enumerated() {
            let want = try #require(jsonObject(line))
            let body = try #require(jsonObject(got[k]), "not JSON: \(got[k])")
            #expect(topic(of: body) == want["topic"] as? String, "\(name) #\(k + 1) topic")
            #expect(comparable(body) == comparable(want["body"] as! NSDictionary), "\(name) #\(k + 1):\n got \(got[k])\nwant \(line)")
            #expect(body["detectedAt"] is String)
        }
        let last = try #require(jsonObject(got[expectedLines.count]))
        #expect(last["eventType"] as? String == "contactwatch.invalid-event")
        #expect(last["payload"] as? String == "sentinel-\(name)")
        #expect(daemon.stop() == 0, "daemon did not stop cleanly: \(daemon.child.stderr.text)")
        // The stop summary counts the publishers' gaps and repeats (repeats were counted, never shown: an operator
        // audit, session 26). Example 07: 1, 2, 5 (a gap), 1 (a restart), 3 (a gap), 3 (a repeat).
        let log = daemon.child.stderr.text
        let sequenced = name == "07-sequence-gaps"
        #expect(FaultTests.stoppedField(log, "gaps") == (sequenced ? 2 : 0), "\(log.suffix(1500))")
        #expect(FaultTests.stoppedField(log, "repeats") == (sequenced ? 1 : 0), "\(log.suffix(1500))")
    }
}
