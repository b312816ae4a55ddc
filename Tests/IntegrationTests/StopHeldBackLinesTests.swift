import ContactWatchTestThreads
import Foundation
import Testing

/// The rate limits' held-back lines are said once a flood has been quiet for a whole interval (6 s for dropped
/// input connections); a stop within that interval ended the loop first, and the flood's tail went unsaid (a reviewer,
/// session 33: publishers that leave just before the daemon is stopped, as in a whole stack's shutdown).
@Suite("The daemon's stop says what its rate limits held back", .blocking)
struct StopHeldBackLinesTests {
    @Test("14 publishers leave at once (10 lines, 4 held back), SIGTERM at once: the 4 are said before it stops")
    func droppedConnectionsSaidAtStop() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--metrics", "127.0.0.1:0"])
        let port = try MetricsTests.metricsPort(daemon)
        var publishers: [TestPublisher] = []
        for _ in 0..<14 {
            let publisher = try TestPublisher(endpoint: daemon.input, curve: nil)
            try #require(try publisher.awaitSubscription(ms: 30_000), "not subscribed: \(daemon.child.stderr.text)")
            publishers.append(publisher)
        }
        publishers.removeAll()  // each closes its socket: 14 dropped connections in a moment
        // The daemon reads the last of them after this: its quiet interval cannot end before `removed` + 6 s.
        let removed = Date()
        let dropped = "input connection dropped"
        try #require(daemon.child.stderr.wait(timeout: 30) { $0.components(separatedBy: dropped).count - 1 >= 10 },
                     "\(daemon.child.stderr.text)")
        // All 14 read by the daemon before the stop (a bounded wait on its own count): stopped after the tenth line
        // alone, it had read 12 once on a loaded machine, and said "2 more" (a clean clone's run, session 35).
        let deadline = Date().addingTimeInterval(30)
        var read = 0.0
        while read < 14 && Date() < deadline {
            read = Exposition(try httpGet(port: port, path: "/metrics").body)["contactwatch_input_disconnects_total"] ?? 0
            if read < 14 { usleep(10_000) }
        }
        try #require(read == 14, "the daemon read \(read) of the 14 disconnections")
        #expect(daemon.stop() == 0)
        // Measured from the drops, not from when the test had counted them (the waits above can take seconds on a
        // loaded machine, while the daemon's interval runs from its last drop: a reviewer, session 38).
        let stoppedAfter = Date().timeIntervalSince(removed)
        let log = daemon.child.stderr.text
        #expect(log.components(separatedBy: dropped).count - 1 == 10, "the burst is 10 lines: \(log)")
        let held = log.split(separator: "\n").filter {
            $0.contains("4 more dropped input connections on \(daemon.input) not logged at warning (rate limit)")
        }
        #expect(held.count == 1, "\(log)")
        // Said because the daemon stopped — unless the machine was so slow that a whole quiet interval (6 s) passed
        // first, when the flood's own end says it, as before.
        if stoppedAfter < 5 {
            #expect(held.first?.hasSuffix("the daemon is stopping") == true, "\(log)")
        }
        // Said before the stop's summary.
        if let at = log.range(of: "4 more dropped input connections"), let stopped = log.range(of: " stopped") {
            #expect(at.lowerBound < stopped.lowerBound, "\(log)")
        }
    }
}
