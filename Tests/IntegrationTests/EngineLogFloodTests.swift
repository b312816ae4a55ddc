import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// The engine's log events (a publisher restarting its numbering, events.md) reach the log rate-limited: a publisher
/// that sends `sequenceNumber` 1 on every message (a misconfigured feed) made the processing thread write one `info`
/// line per event — a log line per event on the hot path, at the daemon's full rate.
@Suite("engine log events are rate-limited", .blocking)
struct EngineLogFloodTests {
    static func event(sequence: Int, contact: Int) -> String {
        DaemonBehaviourTests.event
            .replacingOccurrences(of: #""version":1,"#, with: #""version":1,"publisherId":"feed-1","sequenceNumber":\#(sequence),"#)
            .replacingOccurrences(of: #""contactId":9001"#, with: #""contactId":\#(contact)"#)
    }

    @Test("300 messages numbered 1 from one publisher: every one processed, a bounded number of restart lines")
    func restartsRateLimited() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        // A notice after the flood says that everything before it was processed (published after its commit).
        let gaps = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "stream.gap", "--count", "1"])
        defer { DurabilityTests.stop(gaps) }
        #expect(DurabilityTests.awaitJoined(daemon, "stream.gap", atLeast: 1), "\(daemon.child.stderr.text.suffix(2000))")
        let publisher = try TestPublisher(endpoint: daemon.input, curve: nil)
        try #require(try publisher.awaitSubscription(ms: 30_000), "the daemon did not subscribe")
        let flood = (0..<300).map { Self.event(sequence: 1, contact: 20_000 + $0) }
        try publisher.send(lines: flood + [Self.event(sequence: 1000, contact: 30_000)])
        #expect(gaps.waitForExit(timeout: 60) == 0, "no stream.gap notice: \(daemon.child.stderr.text.suffix(2000))")
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("more engine lines (publishers restarting their sequence)") },
                "the restarts held back were not said once the flood was over")
        #expect(daemon.stop() == 0)
        let log = daemon.child.stderr.text
        let lines = log.split(separator: "\n").filter { $0.contains("restarted its sequence") }.count
        #expect(FaultTests.stoppedField(log, "received") == 301, "\(log.suffix(1500))")
        #expect(lines >= 1 && lines <= 20, "\(lines) restart lines for 299 restarts")
        // Every restart is a line, or counted in one: the lines' notLogged, and those held back after the last line,
        // said once the flood was over (6 s of quiet; they went unsaid before session 30).
        let restartLines = log.split(separator: "\n").filter { $0.contains("restarted its sequence") }
        let heldBack = log.split(separator: "\n").filter { $0.contains("more engine lines (publishers restarting their sequence) not logged") }
        let notLogged = (restartLines + heldBack).compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("notLogged=") }.flatMap { Int($0.dropFirst("notLogged=".count)) }
        }
        #expect(heldBack.count == 1, "\(log.suffix(1500))")
        #expect(restartLines.count + notLogged.reduce(0, +) == 299, "\(log.suffix(1500))")
        // Those the rate limit kept out of the log are counted all the same (they were counted nowhere before
        // session 29: an auditor).
        #expect(FaultTests.stoppedField(log, "publisherRestarts") == 299, "\(log.suffix(1500))")
    }

    @Test("1,000 distinct publisherIds and pduCodes after a restart flood: one warning each all the same; at the next start the counts are in the load line and warned")
    func manyPublishersWarned() throws {
        let dir = try TemporaryDirectory()
        var daemon = try DaemonUnderTest(dir: dir)
        let gaps = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "stream.gap", "--count", "1"])
        defer { DurabilityTests.stop(gaps) }
        #expect(DurabilityTests.awaitJoined(daemon, "stream.gap", atLeast: 1), "\(daemon.child.stderr.text.suffix(2000))")
        // No send high-water mark: 1,050 messages sent at once past a PUB's default of 1,000 were dropped whenever the
        // daemon read slower than they were sent (a loaded machine: received=1000, no gap notice; session 29).
        let publisher = try TestPublisher(endpoint: daemon.input, curve: nil, sendHighWaterMark: 0)
        try #require(try publisher.awaitSubscription(ms: 30_000), "the daemon did not subscribe")
        // 50 restarts of feed-1 spend the info lines' budget; then 999 more publishers make 1,000; feed-1's jump
        // from 1 to 1000 is the gap notice that says everything before it was processed.
        let flood = (0..<50).map { Self.event(sequence: 1, contact: 20_000 + $0) }
        let many = (1...999).map {
            Self.event(sequence: 1, contact: 40_000 + $0).replacingOccurrences(of: #""feed-1""#, with: #""feed-x\#($0)""#)
                .replacingOccurrences(of: #""N07SUF""#, with: #""P\#($0)""#)
        }
        try publisher.send(lines: flood + many + [Self.event(sequence: 1000, contact: 30_000)])
        #expect(gaps.waitForExit(timeout: 60) == 0, "no stream.gap notice: \(daemon.child.stderr.text.suffix(2000))")
        #expect(daemon.stop() == 0)
        let said = daemon.child.stderr.text.split(separator: "\n").filter { $0.contains("distinct publisherIds are tracked") }
        #expect(said.count == 1 && said.allSatisfy { $0.contains("warning") && $0.contains("publishers=1000") },
                "\(daemon.child.stderr.text.suffix(3000))")
        // N07SUF and 999 more.
        let pdus = daemon.child.stderr.text.split(separator: "\n").filter { $0.contains("distinct pduCodes are remembered") }
        #expect(pdus.count == 1 && pdus.allSatisfy { $0.contains("warning") && $0.contains("pduCodes=1000") },
                "\(daemon.child.stderr.text.suffix(3000))")

        daemon = try DaemonUnderTest(dir: dir)
        #expect(daemon.stop() == 0)
        let log = daemon.child.stderr.text
        #expect(log.split(separator: "\n").contains {
            $0.contains("state loaded") && $0.contains("publishers=1000") && $0.contains("pduCodes=1000")
        }, "\(log.suffix(2000))")
        #expect(log.split(separator: "\n").contains { $0.contains("warning") && $0.contains("distinct publisherIds are tracked") },
                "\(log.suffix(2000))")
        #expect(log.split(separator: "\n").contains { $0.contains("warning") && $0.contains("distinct pduCodes are remembered") },
                "\(log.suffix(2000))")
    }
}
