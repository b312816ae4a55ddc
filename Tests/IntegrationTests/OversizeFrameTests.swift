import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// events.md, over-size frames: after a frame over input.maxMessageBytes the daemon is never left deaf. In the
/// default topology (the daemon connects, the publisher binds) it re-establishes the connection itself; when it
/// binds, the publisher's side reconnects. Either way the next events from the same publisher are processed
/// exactly as if the over-size message had not been sent, and a warning names the endpoint.
@Suite("Fault: an over-size frame on the input", .serialized)
struct OversizeFrameTests {
    @Test("the next events from the same publisher are processed; a warning names the endpoint", arguments: [false, true])
    func oversizeFrame(daemonBinds: Bool) throws {
        let dir = try TemporaryDirectory()
        let endpoint = dir.ipc("events")
        // Default topology: the publisher binds first and the daemon connects to it.
        let publisher = daemonBinds ? nil : try TestPublisher(endpoint: endpoint, curve: nil, bind: true)
        let daemon = try EndpointDaemon(dir: dir, input: endpoint, output: dir.ipc("out"), journal: dir.ipc("journal"),
                                        bind: daemonBinds, arguments: [])
        let pub = try publisher ?? TestPublisher(endpoint: endpoint, curve: nil)
        try #require(try pub.awaitSubscription(ms: 10_000), "the daemon did not subscribe: \(daemon.child.stderr.text)")

        let stream = try SecurityTests.lines(SecurityTests.stream)
        let expected = try SecurityTests.expected(SecurityTests.stream)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--count", "\(expected.count)"])
        #expect(daemon.child.stderr.wait(timeout: 15) { $0.contains("subscriber joined") })

        let half = stream.count / 2
        try pub.send(lines: Array(stream[..<half]))
        // One frame over input.maxMessageBytes (65536 by default).
        let oversize = "{\"eventType\":\"probation-case.contact.recorded\",\"pad\":\"" + String(repeating: "x", count: 70_000) + "\"}"
        try pub.send(lines: [oversize])
        #expect(daemon.child.stderr.wait(timeout: 15) { log in
            log.split(separator: "\n").contains { $0.contains("warning") && $0.contains("input connection dropped") && $0.contains("endpoint=\(endpoint)") }
        }, "no warning naming the endpoint: \(daemon.child.stderr.text)")
        // The connection comes back (the daemon's subscription arrives again on the new connection).
        try #require(try pub.awaitSubscription(ms: 10_000), "the input did not come back: \(daemon.child.stderr.text)")
        try pub.send(lines: Array(stream[half...]))

        #expect(tail.waitForExit(timeout: 30) == 0, "tail: \(tail.stdout.text)\n\(daemon.child.stderr.text)")
        let got = tail.stdout.lines.compactMap { jsonObject($0) }
        try #require(got.count == expected.count)
        for (g, w) in zip(got, expected) { #expect(comparable(g) == comparable(w["body"] as! NSDictionary)) }
        #expect(daemon.stop() == 0)
        #expect(daemon.child.stderr.text.contains("disconnections=1"), "\(daemon.child.stderr.text)")
    }
}
