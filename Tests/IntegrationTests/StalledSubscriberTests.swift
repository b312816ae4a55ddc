import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// An output subscriber that connects, subscribes and never reads, beside one that reads everything: the daemon's
/// published batches are lent to libzmq (`ZMQLoan`, `Benchmarks/README.md`, "The daemon outside the engine, fifth
/// pass (eighth session)": publishing without copies), and a message queued for the stalled subscriber keeps its whole batch on loan. The daemon must go on processing, committing and
/// publishing to the reader, keep at most `LentOutboxes.defaultLimit` (8) batches on loan (then publish by copy), and
/// stop cleanly on SIGTERM with the stalled subscriber still connected.
@Suite("A subscriber that never reads", .blocking)
struct StalledSubscriberTests {
    /// `LentOutboxes.defaultLimit` (the daemon's bound; not imported, so that this test states it independently).
    static let lentLimit = 8

    @Test("the daemon keeps processing and publishing, its loans stay bounded, and it stops on SIGTERM")
    func stalledSubscriber() throws {
        let dir = try TemporaryDirectory()
        let stream = dir.file("stream.ndjson")
        let generated = try runTool(["generate", "--cases", "1500", "--days", "120", "--seed", "11", "--output", stream])
        #expect(generated.status == 0, "\(generated.stderr)")
        let events = try String(contentsOfFile: stream, encoding: .utf8).split(separator: "\n").count
        let sentinel = dir.file("sentinel.ndjson")
        try "end-of-stalled-stream\n".write(toFile: sentinel, atomically: true, encoding: .utf8)

        // Small batches (10 events when the writer is free, 2,000 at most while it is busy), so that the stream makes many more batches than the bound; the input
        // queue unlimited, so that a debug daemon slower than replay loses nothing. The output's high-water mark
        // stays at its default (100,000 messages), which holds every message queued for the stalled subscriber.
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""], environment: [
            "CONTACTWATCH_INPUT_RECEIVE_HIGH_WATER_MARK": "0", "CONTACTWATCH_STATE_COMMIT_MAX_EVENTS": "10",
        ])
        let context = try ZMQContext()
        defer { context.close() }
        // The stalled subscriber: everything subscribed, nothing ever read; its own queue one message deep, so that
        // libzmq stops taking messages off the connection at once and they queue in the daemon.
        let stalled = try context.socket(.sub, lingerMilliseconds: 0)
        defer { stalled.close() }
        try stalled.setReceiveHighWaterMark(1)
        try stalled.connect(daemon.output)
        try stalled.subscribe("")
        // The reader: every alert and the sentinel's notice, with an unlimited queue of its own (read after replay).
        let reader = try context.socket(.sub, lingerMilliseconds: 0)
        defer { reader.close() }
        try reader.setReceiveHighWaterMark(0)
        try reader.connect(daemon.output)
        try reader.subscribe("alert.")
        try reader.subscribe("invalid-event")
        #expect(daemon.waitForSubscribers(3), "\(daemon.child.stderr.text)")

        let replay = try runTool(["replay", stream, sentinel, "--endpoint", daemon.input, "--wait-subscribers", "1",
                                  "--send-invalid"], timeout: 300)
        #expect(replay.status == 0, "\(replay.stderr)")

        // Everything before the sentinel's notice is published before it (in order): read up to it, bounded.
        var sequences: [Int] = []
        var sawSentinel = false
        let deadline = Date().addingTimeInterval(300)
        while !sawSentinel, Date() < deadline {
            guard let frames = try reader.receiveCopy(timeoutMilliseconds: 1000) else { continue }
            let topic = String(decoding: frames.first ?? [], as: UTF8.self)
            if topic == "invalid-event" {
                sawSentinel = String(decoding: frames.last ?? [], as: UTF8.self).contains("end-of-stalled-stream")
                continue
            }
            let body = try #require(jsonObject(String(decoding: frames.last ?? [], as: UTF8.self)), "\(frames)")
            sequences.append(try #require((body["alertSequence"] as? NSNumber)?.intValue, "\(body)"))
        }
        #expect(sawSentinel, "the sentinel's notice did not arrive: \(daemon.child.stderr.text.suffix(2000))")
        // The stalled subscriber held its messages the whole time: the daemon is still alive and answers the journal.
        #expect(daemon.child.process.isRunning)
        let journal = try JournalClient(endpoint: daemon.journal).fetchAll()

        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text.suffix(2000))")
        let log = daemon.child.stderr.text
        let processed = try #require(FaultTests.stoppedField(log, "processed"), "\(log.suffix(2000))")
        let raised = try #require(FaultTests.stoppedField(log, "alertsRaised"))
        let resolved = try #require(FaultTests.stoppedField(log, "alertsResolved"))
        let commits = try #require(FaultTests.stoppedField(log, "commits"))
        let peak = try #require(FaultTests.stoppedField(log, "lentBatchesPeak"), "\(log.suffix(2000))")
        let copied = try #require(FaultTests.stoppedField(log, "copiedBatches"))
        #expect(FaultTests.stoppedField(log, "publishFailures") == 0)

        // Every event processed (the sentinel is the one invalid message), every alert committed and published once,
        // in order, to the reader.
        #expect(processed == events)
        #expect(FaultTests.stoppedField(log, "invalid") == 1)
        let alerts = raised + resolved
        #expect(alerts >= 1_000, "the stream made too few alerts to queue many batches: \(alerts)")
        #expect(sequences == Array(1...max(1, alerts)), "the reader got \(sequences.count) alerts of \(alerts)")
        #expect(journal.latest == alerts && journal.bodies.count == alerts)
        // The stall engaged the bound: many more batches than it were published, at most `lentLimit` of them on
        // loan at once, the rest by copy.
        #expect(commits > 2 * Self.lentLimit, "too few batches (\(commits)) to test the bound")
        #expect(peak == Self.lentLimit, "batches on loan at most: \(peak)")
        #expect(copied > 0 && copied < commits, "batches published by copy: \(copied) of \(commits)")
    }
}
