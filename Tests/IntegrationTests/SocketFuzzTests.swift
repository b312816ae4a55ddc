import ContactWatchTestThreads
import ContactWatchEngine
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// A malformed-message fuzz pass over the real socket (issue 8's fault suite): a fixed seed mutates valid events
/// (bytes flipped, cut, repeated, spliced with JSON tokens; wrong, missing and extra frames; wrong topics), the daemon
/// reads them all, and then must still raise on a valid event. Its counters at stop must equal those of an
/// in-process engine fed the same messages: nothing lost, nothing counted twice, no crash or stall.
@Suite("socket fuzz pass", .blocking)
struct SocketFuzzTests {
    static let seeds = [
        DaemonBehaviourTests.event,
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-01-07T11:00:00Z","publisherId":"fuzz","sequenceNumber":7,"personReference":{"identifiers":[{"type":"CRN","value":"X900002"}]},"additionalInformation":{"contactId":9002,"contactVersion":2,"contactStart":"2026-01-07T10:00:00Z","contactType":"COPT","outcome":{"code":"UAAB"},"enforcementAction":{"code":"EA01","actionAt":"2026-01-07T12:00:00Z"},"sentenceType":"COMMUNITY_ORDER","pduCode":"N07SUF"}}"#,
        #"{"eventType":"probation-case.registration.added","version":1,"occurredAt":"2026-01-05T09:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900003"}]},"additionalInformation":{"registerTypeCode":"MAPP","registerLevelCode":"M2"}}"#,
    ]
    static let tokens = ["{", "}", "[", "]", "\"", ",", ":", "null", "true", "1e999", "-0", "\\u0000", "\\ud800",
                         "\u{FEFF}", "\"eventType\":1", "\"version\":1", "99999999999999999999", "\u{7F}", "\\"]

    static func messages(count: Int, seed: UInt64) -> [[[UInt8]]] {
        var random = SplitMix64(seed: seed)
        var out: [[[UInt8]]] = []
        for _ in 0..<count {
            var body = Array(seeds[random.below(seeds.count)].utf8)
            for _ in 0...random.below(3) {
                let at = random.below(body.count)
                switch random.below(5) {
                case 0: body[at] = UInt8(truncatingIfNeeded: random.next())
                case 1: body.removeSubrange(at...)
                case 2: body.insert(contentsOf: body[at..<min(body.count, at + 1 + random.below(40))], at: at)
                case 3: body.insert(contentsOf: Array(tokens[random.below(tokens.count)].utf8), at: at)
                default: body.removeSubrange(at..<min(body.count, at + 1 + random.below(12)))
                }
                if body.isEmpty { body = [UInt8(ascii: "{")] }
            }
            let topics = ["probation-case.contact.recorded", "probation-case.registration.added", "probation-case.", "x"]
            switch random.below(10) {
            case 0: out.append([body])
            case 1: out.append([Array(topics[random.below(topics.count)].utf8), [], body])
            default: out.append([Array(topics[random.below(topics.count)].utf8), body])
            }
        }
        return out
    }

    static func counter(_ name: String, in text: String) -> Int? {
        guard let line = text.split(separator: "\n").last(where: { $0.contains("stopped") }),
              let range = line.range(of: "\(name)=") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    @Test("3,000 seeded malformed messages: counted exactly as the engine counts them, then a valid event still raises")
    func malformedOverTheSocket() throws {
        let fuzz = Self.messages(count: 3000, seed: 0xC0_47AC_7)
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""])
        let context = try ZMQContext()
        defer { context.close() }
        let publisher = try context.socket(.xpub)
        defer { publisher.close() }
        try publisher.setSendHighWaterMark(0)  // never drop on our side: every message must reach the daemon
        try publisher.connect(daemon.input)
        try #require(try publisher.receiveCopy(timeoutMilliseconds: 10_000) != nil, "the daemon did not subscribe")
        let canary = DaemonBehaviourTests.event.replacingOccurrences(of: "X900001", with: "X977777")
            .replacingOccurrences(of: "9001", with: "9777")
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert.raised.no-privacy"])
        #expect(daemon.waitForSubscribers(1))
        for frames in fuzz { try publisher.send(frames) }
        try publisher.send([Array("probation-case.contact.recorded".utf8), Array(canary.utf8)])
        #expect(tail.stdout.wait(timeout: 60) { $0.contains("X977777") }, "no alert for the valid event after the fuzz pass")
        tail.signal(SIGKILL)
        #expect(daemon.child.process.isRunning)
        #expect(daemon.stop() == 0)
        let log = daemon.child.stderr.text

        // The same messages through an in-process engine, with the wall clock of now.
        let engine = try Engine(settings: EngineSettings())
        var outbox = Outbox()
        let now = Millis(Date().timeIntervalSince1970 * 1000)
        for frames in fuzz + [[Array("probation-case.contact.recorded".utf8), Array(canary.utf8)]] {
            frames.last!.withUnsafeBytes { body in
                frames[0].withUnsafeBytes { topic in
                    engine.process(frameCount: frames.count, topic: frames.count >= 2 ? topic : nil, body: body,
                                   now: now, into: &outbox)
                }
            }
            outbox.removeAll()
        }
        let expected = engine.counters
        #expect(expected.invalid > 1000, "the mutations should mostly be invalid (\(expected.invalid))")
        #expect(Self.counter("received", in: log) == fuzz.count + 1, "\(log)")
        #expect(Self.counter("received", in: log) == expected.received)
        #expect(Self.counter("invalid", in: log) == expected.invalid)
        #expect(Self.counter("processed", in: log) == expected.processed)
        #expect(Self.counter("ignored", in: log) == expected.ignored)
    }
}
