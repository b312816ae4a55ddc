import ContactWatchTestSupport
import ContactWatchTools
import Foundation
import Synchronization
import Testing
import ZeroMQ

@Suite("tail --format text and progress lines")
struct ToolOutputTests {
    private func text(_ topic: String?, _ body: String) -> String {
        Array(body.utf8).withUnsafeBytes { TailText.line(topic: topic, body: $0) }
    }

    @Test("every example's expected message gives time, topic, severity, subject and reason on one line")
    func examplesAsText() throws {
        var checked = 0
        for name in Fixtures.exampleNames {
            for line in try Fixtures.lines("\(name).expected.ndjson") {
                let message = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let topic = try #require(message["topic"] as? String)
                let body = try #require(message["body"] as? [String: Any])
                let bodyText = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
                let shown = text(topic, bodyText)
                #expect(!shown.contains("\n"))
                let fields = shown.components(separatedBy: "  ")
                try #require(fields.count >= 5, "\(shown)")
                #expect(fields[0] == (body["occurredAt"] as? String ?? body["detectedAt"] as? String ?? "-"), "\(shown)")
                #expect(fields[1] == topic)
                #expect(fields[2] == (body["severity"] as? String ?? "-"))
                if let subject = body["subject"] as? [String: Any] {
                    let value = subject["value"] as? String ?? "-"
                    #expect(fields[3] == (subject["type"] as? String == "CRN" ? value : "PDU:\(value)"), "\(shown)")
                } else {
                    #expect(fields[3] == "-")
                }
                if topic == "stream.gap" {
                    #expect(fields[4].contains("expected \(body["expected"]!)") && fields[4].contains("\(body["missing"]!) missing"),
                            "\(shown)")
                } else {
                    let reason = try #require(body["reason"] as? String)
                    #expect(fields.dropFirst(4).joined(separator: "  ").hasPrefix(reason.replacingOccurrences(of: "\n", with: " ")),
                            "\(shown)")
                }
                checked += 1
            }
        }
        #expect(checked > 30, "only \(checked) example messages")
    }

    @Test("escapes in the reason are decoded; control characters cannot break the line or reach the terminal")
    func hostileBody() {
        let shown = text("alert.raised.no-privacy", #"""
            {"occurredAt":"2026-01-01T00:00:00Z","severity":"low","subject":{"type":"CRN","value":"X1"},"reason":"a \"quoted\" line\nwith \u001b[31mred\u009b and é"}
            """#)
        #expect(shown == "2026-01-01T00:00:00Z  alert.raised.no-privacy  low  X1  a \"quoted\" line with  [31mred  and é")
        // What reorders or breaks a line on screen (the companion tool's auditor, session 25): a right-to-left override,
        // the line and paragraph separators, the bidi isolates.
        let reordered = text("alert.raised.no-privacy", #"""
            {"occurredAt":"t","severity":"low","reason":"a\u202Eexe.gnp b\u2028c\u2029d\u2066e\u200Ff"}
            """#)
        #expect(reordered == "t  alert.raised.no-privacy  low  -  a exe.gnp b c d e f")
    }

    @Test("without a topic frame the topic comes from the body; a body that is not JSON is shown as such")
    func fallbacks() {
        let fromBody = text(nil, #"{"eventType":"probation-case.supervision-alert.resolved","rule":"telephone-only","occurredAt":"t","severity":"high","reason":"r"}"#)
        #expect(fromBody == "t  alert.resolved.telephone-only  high  -  r")
        #expect(text("invalid-event", "not json").hasPrefix("-  invalid-event  -  -  (not a JSON object) not json"))
    }

    @Test("replay --publisher-id stamps right after occurredAt (the spec example's order), first without one, replacing any stamp")
    func stampedOrder() throws {
        func stamp(_ line: String, _ n: UInt64 = 7) throws -> String {
            var lines = JSONLines()
            let bytes = Array(line.utf8)
            return try bytes.withUnsafeBufferPointer { b in
                guard case .object(let summary) = lines.scan(b, recordMembers: true) else { throw CancellationError() }
                return String(decoding: Replay.stamped(b, members: summary.members, keys: summary.keys,
                                                       publisherId: Array(#""feed-1""#.utf8), sequenceNumber: n), as: UTF8.self)
            }
        }
        #expect(try stamp(#"{"eventType":"t","version":1,"occurredAt":"2026-01-01T00:00:00Z","personReference":{}}"#)
                == #"{"eventType":"t","version":1,"occurredAt":"2026-01-01T00:00:00Z","publisherId":"feed-1","sequenceNumber":7,"personReference":{}}"#)
        #expect(try stamp(#"{"publisherId":"old","eventType":"t","occurredAt":"x","sequenceNumber":99}"#, 8)
                == #"{"eventType":"t","occurredAt":"x","publisherId":"feed-1","sequenceNumber":8}"#)
        #expect(try stamp(#"{"eventType":"t"}"#) == #"{"publisherId":"feed-1","sequenceNumber":7,"eventType":"t"}"#)
        #expect(try stamp(#"{}"#) == #"{"publisherId":"feed-1","sequenceNumber":7}"#)
        #expect(try stamp(#"{"sequenceNumber":1}"#) == #"{"publisherId":"feed-1","sequenceNumber":7}"#)
        // A key written with JSON escapes is the same key (RFC 8259; the daemon reads it so): replaced too, where it
        // was kept beside the stamp and the daemon refused the event for a duplicate key (a fault tester, session 35).
        #expect(try stamp(#"{"eventType":"t","publisher\u0049d":"old","occurred\u0041t":"x","sequence\u004eumber":3}"#, 9)
                == #"{"eventType":"t","occurred\u0041t":"x","publisherId":"feed-1","sequenceNumber":9}"#)
    }

    @Test("progress line: done/total, percentage, rate, ETA; without a total no percentage or ETA")
    func progressLine() {
        #expect(ProgressMeter.line(done: 250, total: 1000, unit: "messages", elapsed: 2)
                == "250/1000 messages (25.0%), 125 messages/s, ETA 0:06")
        #expect(ProgressMeter.line(done: 30, total: 120, unit: "days", elapsed: 1.5, rateCount: 9000, rateUnit: "events")
                == "30/120 days (25.0%), 9000 events, 6000 events/s, ETA 0:05")
        #expect(ProgressMeter.line(done: 500, total: nil, unit: "messages", elapsed: 0.5) == "500 messages, 1000 messages/s")
        #expect(ProgressMeter.duration(3725) == "1:02:05")
        #expect(ProgressMeter.duration(59.2) == "1:00")
    }

    /// A parent may hand its child a non-blocking pipe: `generate` and `tail` stopped with exit 74 ("Resource temporarily
    /// unavailable") as soon as it filled (the companion tool's hunter, session 45). A write now waits for room, as a
    /// blocking one does; a reader that goes away is still a failure (EPIPE), not a wait for ever.
    @Test("writes to a full non-blocking pipe wait for the reader and lose nothing; a reader gone is EPIPE")
    func nonBlockingPipe() throws {
        signal(SIGPIPE, SIG_IGN)  // as the tools do (main.swift)
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 4096)
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        let total = 1 << 20
        let received = Mutex(0)
        let readEnd = fds[0]
        let finished = DispatchSemaphore(value: 0)
        let reader = Thread {
            defer { finished.signal() }
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let n = read(readEnd, &buffer, buffer.count)
                if n <= 0 { break }
                received.withLock { $0 += n }
            }
        }
        reader.start()
        let bytes = [UInt8](repeating: 0x78, count: total)
        var failure: (any Error)? = nil
        do { try bytes.withUnsafeBytes { try FDWriter(fd: fds[1]).write($0) } } catch { failure = error }
        close(fds[1])
        #expect(finished.wait(timeout: .now() + 30) == .success, "the reader never saw the end")
        #expect(failure == nil, "\(String(describing: failure))")
        #expect(received.withLock { $0 } == total)
        close(fds[0])

        var gone: [Int32] = [0, 0]
        try #require(pipe(&gone) == 0)
        _ = fcntl(gone[1], F_SETFL, fcntl(gone[1], F_GETFL) | O_NONBLOCK)
        close(gone[0])
        let error = #expect(throws: ToolError.self) { try bytes.withUnsafeBytes { try FDWriter(fd: gone[1]).write($0) } }
        #expect(error?.exitCode == ToolError.ioError && "\(error?.message ?? "")".contains("went away"), "\(String(describing: error))")
        close(gone[1])
    }

    @Test("a meter on a descriptor that is not a terminal writes nothing")
    func silentWhenNotATerminal() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let meter = ProgressMeter(writer: FDWriter(fd: fds[1]))
        #expect(!meter.enabled)
        var called = false
        meter.tick { called = true; return "x" }
        meter.finish()
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(read(fds[0], &buffer, 16) == 0)
        #expect(!called)
        close(fds[0])
    }
    /// The daemon refuses plaintext where others can listen; replay said nothing (the companion tool's auditor,
    /// session 25, bound tcp://0.0.0.0 without a word). Judged without binding anything.
    @Test("replay warns of plaintext on an endpoint others can reach, bound or connected; not on loopback, ipc:// or with CURVE")
    func replayPlaintextWarning() throws {
        func warning(_ endpoint: String, bind: Bool) -> String? {
            var options = ReplayOptions(files: [], endpoint: endpoint)
            options.bind = bind
            return Replay.plaintextWarning(options)
        }
        #expect(warning("tcp://0.0.0.0:7401", bind: true)?.contains("anyone who can reach it can subscribe and read") == true)
        #expect(warning("tcp://*:7401", bind: true)?.contains("--curve-allow DIR") == true)
        #expect(warning("tcp://10.1.2.3:7401", bind: false)?.contains("--curve-server-key") == true)
        #expect(warning("tcp://ingest.example:7401", bind: false) != nil)
        for local in ["tcp://127.0.0.1:7401", "tcp://[::1]:7401", "tcp://localhost:7401", "ipc:///run/cw/in", "inproc://x"] {
            #expect(warning(local, bind: true) == nil && warning(local, bind: false) == nil, "\(local)")
        }
        var curve = ReplayOptions(files: [], endpoint: "tcp://0.0.0.0:7401")
        curve.bind = true
        curve.curve = .server(keyPair: try CurveKeyPair.generate(), allowed: [])
        #expect(Replay.plaintextWarning(curve) == nil)
    }
}

/// The tool's commands under a low open-files limit: refused before libzmq is asked, and a socket the system refuses
/// all the same said with libzmq's words, exit 69 — argument-parser printed it as "Error: …", exit 1 (session 53's note).
@Suite("the tool and the open-files limit")
struct ToolDescriptorLimitTests {
    @Test("a libzmq failure no command caught is exit 69 with libzmq's words; any other error is not taken for one")
    func socketFailure() throws {
        let failure = try #require(ToolError.socketFailure(ZMQError(operation: "zmq_socket", code: EMFILE)))
        #expect(failure.exitCode == .unavailable)
        #expect(failure.message == "zmq_socket: Too many open files")
        #expect(ToolError.socketFailure(CocoaError(.fileNoSuchFile)) == nil)
    }

    @Test("below toolMinimum (after raising the soft limit to the hard one) the refusal names the limit; at it, none")
    func refusal() {
        let low = DescriptorLimit.Raised(before: 8, now: 31, hard: 31, failure: nil)
        #expect(DescriptorLimit.toolRefusal(low)?.contains("the open-files limit is 31 (hard limit 31), below the 32") == true)
        #expect(DescriptorLimit.toolRefusal(DescriptorLimit.Raised(before: 8, now: 32, hard: 32, failure: nil)) == nil)
        // Free ones too: 40 of 48 open already (inherited) aborted it all the same (session 54).
        let at48 = DescriptorLimit.Raised(before: 48, now: 48, hard: 48, failure: nil)
        #expect(DescriptorLimit.toolRefusal(at48, open: 40)?.contains("40 of the open-files limit of 48 are open already") == true)
        #expect(DescriptorLimit.toolRefusal(at48, open: 24) == nil)
        #expect(DescriptorLimit.toolRefusal(at48, open: 25) != nil)
        #expect(DescriptorLimit.openCount().map { $0 >= 3 } == true, "stdin, stdout, stderr at least")
    }
}
