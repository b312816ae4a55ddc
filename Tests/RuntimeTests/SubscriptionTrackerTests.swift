@testable import ContactWatchRuntime
import Foundation
import Logging
import Synchronization
import Testing
import ZeroMQ

/// What a consumer can make the daemon log: the alert socket reports every subscription and unsubscription (XPUB
/// verboser, repeats included), and each was an `info` line — a consumer subscribing in a loop wrote one per message.
@Suite("subscription lines")
struct SubscriptionTrackerTests {
    @Test("500 subscriptions from one consumer: every one counted, at most the limit's burst logged, the next line says how many were not")
    func subscriptionFloodIsRateLimited() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let output = try context.socket(.xpub, lingerMilliseconds: 0)
        defer { output.close() }
        try output.setXPubVerboser(true)
        try output.bind("inproc://subscription-flood")
        let consumer = try context.socket(.xsub, lingerMilliseconds: 0)
        defer { consumer.close() }
        try consumer.connect("inproc://subscription-flood")

        let sink = LogLines()
        var logger = Logger(label: "test") { _ in MemoryLogHandler(sink: sink) }
        logger.logLevel = .info
        let clock = Mutex(0.0)
        var tracker = SubscriptionTracker(logger: logger, counters: RuntimeCounters(),
                                          lines: LogLimiter(burst: 10, intervalSeconds: 1, now: { clock.withLock { $0 } }))
        let n = 500
        for i in 0..<n { try consumer.send([[1] + Array("p\(i).".utf8)]) }
        let deadline = ContinuousClock.now + .seconds(30)
        while tracker.subscriptions < n && ContinuousClock.now < deadline { _ = tracker.readAll(output) }
        #expect(tracker.subscriptions == n)
        var lines = sink.entries.withLock { $0 }
        #expect(lines.count == 10, "\(lines.count) lines for \(n) subscriptions")
        #expect(lines.allSatisfy { $0.message == "subscriber joined" && $0.level == .info })

        // A second later one more line, carrying the count held back; an alert subscription still releases the loop.
        clock.withLock { $0 = 1 }
        try consumer.send([[1] + Array("alert.".utf8)])
        var alertJoined = false
        while !alertJoined && ContinuousClock.now < deadline { alertJoined = tracker.readAll(output) }
        #expect(alertJoined)
        lines = sink.entries.withLock { $0 }
        #expect(lines.count == 11)
        #expect(lines.last?.metadata["notLogged"] == "\(n - 10)")
        #expect(lines.last?.metadata["prefix"] == "alert.")
    }
}
