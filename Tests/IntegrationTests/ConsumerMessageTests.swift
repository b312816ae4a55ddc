import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// What a consumer sends to the alert socket that is not a subscription (an XSUB may send its own messages upstream;
/// libzmq's XPUB hands them to the daemon) is ignored: it used to be counted and logged as a consumer leaving — the
/// subscriptions gauge driven down by any peer, and one `info` line per message.
@Suite("consumer messages that are not subscriptions", .blocking)
struct ConsumerMessageTests {
    @Test("50 plain messages then a subscription from an XSUB: the subscription is seen, no consumer is said to leave")
    func plainMessagesIgnored() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let context = try ZMQContext()
        defer { context.close() }
        let consumer = try context.socket(.xsub, lingerMilliseconds: 0)
        defer { consumer.close() }
        try consumer.connect(daemon.output)
        for _ in 0..<50 { try consumer.send([Array("hello".utf8)]) }
        try consumer.send([[1] + Array("alert.".utf8)])
        // Messages of one connection arrive in order: once the subscription is logged, the 50 were read before it.
        #expect(DurabilityTests.awaitJoined(daemon, "alert.", atLeast: 1), "\(daemon.child.stderr.text.suffix(2000))")
        #expect(daemon.stop() == 0)
        let left = daemon.child.stderr.text.split(separator: "\n").filter { $0.contains("subscriber left") }
        #expect(left.isEmpty, "\(left.count) consumers said to leave: \(left.prefix(3))")
    }
    @Test("a consumer subscribing and unsubscribing 1,000 times: at most 100 lines of each kind and one a second, saying how many were not logged; the counts stay right")
    func subscriptionChurnRateLimited() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, environment: ["CONTACTWATCH_LOG_STATS_INTERVAL_SECONDS": "1"])
        let context = try ZMQContext()
        defer { context.close() }
        let consumer = try context.socket(.xsub, lingerMilliseconds: 0)
        defer { consumer.close() }
        try consumer.setSendHighWaterMark(0)  // nothing dropped before the connection is up
        try consumer.connect(daemon.output)
        try consumer.send([[1] + Array("connected".utf8)])
        try #require(DurabilityTests.awaitJoined(daemon, "connected", atLeast: 1), "\(daemon.child.stderr.text.suffix(2000))")
        let started = Date()
        for _ in 0..<1_000 {
            try consumer.send([[1] + Array("alert.".utf8)])
            try consumer.send([[0] + Array("alert.".utf8)])
        }
        try consumer.send([[1] + Array("alert.".utf8)])
        try consumer.send([[1] + Array("stream.gap".utf8)])
        // Three held only once the churn is over (messages of one connection arrive in order).
        #expect(daemon.child.stderr.wait(timeout: 30) { log in
            log.split(separator: "\n").contains { $0.hasSuffix("counters") && $0.contains("subscriptions=3 ") }
        }, "\(daemon.child.stderr.text.suffix(2000))")
        // The next line admitted says how many were held back: subscribe again until one is logged (bounded).
        var said = false
        for k in 0..<15 where !said {
            try consumer.send([[1] + Array("probe-\(k)".utf8)])
            said = daemon.child.stderr.wait(timeout: 2) { $0.contains("notLogged=") }
        }
        #expect(said, "no line said how many were not logged: \(daemon.child.stderr.text.suffix(2000))")
        let seconds = Date().timeIntervalSince(started)
        #expect(daemon.stop() == 0)
        let lines = daemon.child.stderr.text.split(separator: "\n").filter {
            $0.hasSuffix("subscriber joined") || $0.hasSuffix("subscriber left")
        }
        // "joined" and "left" are limited apart (SubscriptionTracker): 100 each at once, then one a second each.
        #expect(lines.count <= 2 * (100 + Int(seconds.rounded(.up)) + 1), "\(lines.count) lines in \(seconds) s for 2,002 messages")
    }
}
