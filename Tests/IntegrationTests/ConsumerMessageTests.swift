import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// What a consumer sends to the alert socket that is not a subscription (an XSUB may send its own messages upstream;
/// libzmq's XPUB hands them to the daemon) is ignored: it used to be counted and logged as a consumer leaving — the
/// subscriptions gauge driven down by any peer, and one `info` line per message.
@Suite("consumer messages that are not subscriptions")
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
}
