import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// What `replay` does with messages still queued for a subscriber when it ends (README, *The companion tool*): it
/// waits up to `--linger` seconds for them to be taken, and when libzmq drops the rest it says so with exit 75; a
/// fault tester's replay to a stopped daemon lost 72,000 messages and exited 0 without a word.
@Suite("replay: messages a subscriber never took are reported, not dropped silently", .blocking)
struct ReplayLingerTests {
    @Test("a subscriber that never reads: the linger runs out, exit 75 saying the rest were dropped; one that reads: exit 0")
    func undeliveredReported() throws {
        let dir = try TemporaryDirectory()
        let stream = dir.file("stream.ndjson")
        let generated = try runTool(["generate", "--cases", "300", "--days", "120", "--seed", "5", "--output", stream])
        try #require(generated.status == 0, "\(generated.stderr)")

        // A subscriber that takes one message into its queue and then stops reading: what libzmq has not sent when
        // the linger ends stays in replay's queue.
        let context = try ZMQContext()
        defer { context.close() }
        let stalled = try context.socket(.sub, lingerMilliseconds: 0)
        defer { stalled.close() }
        try stalled.setReceiveHighWaterMark(1)
        try stalled.subscribe("")
        try stalled.connect(dir.ipc("stalled"))  // libzmq connects again until replay has bound
        let lost = try runTool(["replay", stream, "--endpoint", dir.ipc("stalled"), "--bind", "--wait-subscribers", "1",
                                "--linger", "1"], timeout: 60)
        #expect(lost.status == 75, "status \(lost.status.map(String.init) ?? "none"): \(lost.stderr)")
        #expect(lost.stderr.contains("replayed ") && lost.stderr.contains("the 1 s linger ran out: the rest were dropped"),
                "\(lost.stderr)")

        // A subscriber that reads everything (a tail): nothing is left when the socket closes. Its standard output is
        // not read until replay has ended, as with a slow terminal: the tail falls behind, and with a bounded receive
        // queue libzmq lost messages at replay's close (issue 4660; 91 of 4,605 in CI, 2 runs in 4 here).
        let lines = try String(contentsOfFile: stream, encoding: .utf8).split(separator: "\n").count
        let reader = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("reader"), "--count", "\(lines)"],
                               holdOutput: true)
        defer { reader.releaseOutput(); if reader.process.isRunning { reader.signal(SIGKILL) } }
        // A generous linger: the wait ends as soon as the queue is empty, and a tail slowed by a busy machine must not
        // look like a subscriber that stopped.
        let delivered = try runTool(["replay", stream, "--endpoint", dir.ipc("reader"), "--bind", "--wait-subscribers", "1",
                                     "--linger", "50"], timeout: 90)
        #expect(delivered.status == 0 && !delivered.stderr.contains("dropped"), "\(delivered.stderr)")
        reader.releaseOutput()
        #expect(reader.waitForExit(timeout: 60) == 0, "the tail printed \(reader.stdout.lines.count) of \(lines)")
    }

    /// libzmq makes `ipc://*`'s directory in `$TMPDIR`, or in the working directory when no such variable names a
    /// directory, and reports that path relative: said as it was, a daemon started anywhere else could not be pointed
    /// at it (a new-operator walk-through, session 49).
    @Test("replay --bind ipc://* says the path it bound as an absolute one, which a peer started elsewhere reaches")
    func wildcardIPCSaidAbsolute() throws {
        let dir = try TemporaryDirectory()
        let run = dir.file("run")
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: false)
        let stream = Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path
        let replay = try Child("contactwatch", ["replay", stream, "--endpoint", "ipc://*", "--bind", "--wait-subscribers", "1",
                                                "--wait-timeout", "60"],
                               environment: ["TMPDIR": "", "TEMPDIR": "", "TMP": ""], currentDirectory: run)
        defer { if replay.process.isRunning { replay.signal(SIGKILL) } }
        replay.stderr.wait(timeout: 30) { $0.contains("bound ipc://* at ") && $0.split(separator: "\n").count >= 1 }
        let said = replay.stderr.lines.first { $0.hasPrefix("bound ipc://* at ") }
        let bound = try #require(said.map { String($0.dropFirst("bound ipc://* at ".count)) }, "\(replay.stderr.text)")
        #expect(bound.hasPrefix("ipc://\(run)/tmp"), "\(bound)")
        // A tail started in another directory (the test's) reaches it.
        let tail = try Child("contactwatch", ["tail", "--endpoint", bound, "--count", "1"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) } }
        #expect(tail.waitForExit(timeout: 60) == 0, "\(tail.stderr.text)")
        #expect(tail.stdout.lines.count == 1)
        #expect(replay.waitForExit(timeout: 60) == 0, "\(replay.stderr.text)")
    }

    /// A daemon subscribes to `probation-case.` by default: a feed's other topics are its filter's choice, and counted
    /// as dropped they failed the replay with exit 75, a temporary failure no retry cures (a contract auditor, session 41).
    @Test("a topic the daemon does not subscribe to is said, not a failure: exit 0, the event it takes is processed")
    func unsubscribedTopicSaid() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let file = dir.file("mixed.ndjson")
        try """
            {"eventType":"other.thing","version":1}
            {"eventType":"probation-case.contact.recorded","version":1}

            """.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runTool(["replay", file, "--endpoint", daemon.input, "--wait-subscribers", "1", "--linger", "5"])
        #expect(r.status == 0, "status \(r.status.map(String.init) ?? "none"): \(r.stderr)")
        #expect(r.stderr.contains("1 of the 2 messages had a topic no subscriber on \(daemon.input) subscribes to (the first: \"other.thing\")"),
                "\(r.stderr)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        let stopped = daemon.child.stderr.lines.last { $0.hasSuffix(" stopped") } ?? ""
        #expect(stopped.contains("received=1 ") && stopped.contains("invalid=1 "), "\(stopped)")
    }

    /// cli.md: `--wait-subscribers N` waits until N subscribers have joined. A subscriber holding two prefixes (a
    /// daemon with two `--subscribe`) counted as two, so a replay waiting for a redundant pair of daemons started once
    /// the first had joined (a contract auditor, session 41).
    @Test("--wait-subscribers counts subscribers: one holding two prefixes is one (exit 69 waiting for 2); a second makes 2")
    func subscribersNotSubscriptions() throws {
        let dir = try TemporaryDirectory()
        let stream = Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path
        let context = try ZMQContext()
        defer { context.close() }
        // Subscribers made afresh for each replay: a SUB whose thread does not call into it meanwhile (these do not)
        // sends its subscriptions again after a reconnection only when that thread next does (libzmq runs a socket's
        // commands on its own thread); a daemon's input, read all the time, does so at once.
        func subscriber(_ prefixes: [String], endpoint: String) throws -> ZMQSocket {
            let s = try context.socket(.sub, lingerMilliseconds: 0)
            for p in prefixes { try s.subscribe(p) }
            try s.connect(endpoint)  // libzmq connects again until replay has bound
            return s
        }
        let first = try subscriber(["probation-case.contact.", "probation-case.registration."], endpoint: dir.ipc("one"))
        defer { first.close() }
        let one = try runTool(["replay", stream, "--endpoint", dir.ipc("one"), "--bind", "--wait-subscribers", "2",
                               "--wait-timeout", "2"], timeout: 60)
        #expect(one.status == 69, "status \(one.status.map(String.init) ?? "none"): \(one.stderr)")
        #expect(one.stderr.contains("only 1 of 2 subscribers joined"), "\(one.stderr)")
        let a = try subscriber(["probation-case.contact.", "probation-case.registration."], endpoint: dir.ipc("two"))
        defer { a.close() }
        let b = try subscriber([""], endpoint: dir.ipc("two"))
        defer { b.close() }
        let two = try runTool(["replay", stream, "--endpoint", dir.ipc("two"), "--bind", "--wait-subscribers", "2",
                               "--wait-timeout", "60"], timeout: 90)
        #expect(two.status == 0, "status \(two.status.map(String.init) ?? "none"): \(two.stderr)")
    }

    /// A replay interrupted while libzmq still held messages for a subscriber died without a word (its subscriber had
    /// 2,651 of 29,891: the companion tool's auditor, session 25). The lines come through a pipe kept open, so the
    /// replay is still running, with 3 messages handed over, when the signal comes.
    @Test("SIGTERM or SIGINT during a replay: exit 143 or 130, saying how many messages had been queued",
          arguments: [(SIGTERM, Int32(143), "SIGTERM"), (SIGINT, Int32(130), "SIGINT")])
    func interruptSaid(signal: Int32, status: Int32, name: String) throws {
        let dir = try TemporaryDirectory()
        let context = try ZMQContext()
        defer { context.close() }
        let subscriber = try context.socket(.sub, lingerMilliseconds: 0)
        defer { subscriber.close() }
        try subscriber.subscribe("")
        try subscriber.bind(dir.ipc("sub"))
        let input = Pipe()
        let replay = try Child("contactwatch", ["replay", "/dev/stdin", "--endpoint", dir.ipc("sub"), "--wait-subscribers", "1"],
                               input: input)
        defer { if replay.process.isRunning { replay.signal(SIGKILL) }; _ = replay.waitForProcessExit(timeout: 10) }
        let event = #"{"eventType":"probation-case.contact.recorded","version":1}"#
        try input.fileHandleForWriting.write(contentsOf: Data(String(repeating: event + "\n", count: 3).utf8))
        var received = 0
        while received < 3, try subscriber.receiveCopy(timeoutMilliseconds: 30_000) != nil { received += 1 }
        try #require(received == 3, "\(replay.stderr.text)")
        replay.signal(signal)
        #expect(replay.waitForExit(timeout: 30) == status, "\(replay.stderr.text)")
        #expect(replay.stderr.text.contains("contactwatch replay: interrupted by \(name) after 3 messages were queued: "
            + "those a subscriber had not yet taken are lost"), "\(replay.stderr.text)")
        try? input.fileHandleForWriting.close()
    }

    /// The replay's handshake monitor (it says why a daemon refused it): libzmq sends each event from the I/O thread and
    /// blocked it for good once about 2,000 were unread, so a subscriber that came after a burst of connections never
    /// got a message (a reviewer, session 25). 1,200 connections opened and closed (accepted, handshake failed,
    /// disconnected: 3,600 events) while replay waits, then a real subscriber.
    @Test("replay --bind waiting for a subscriber takes it after 1,200 connections came and went (its monitor never blocks libzmq)")
    func subscriberAfterABurstOfConnections() throws {
        let dir = try TemporaryDirectory()
        let (replay, endpoint) = try startBoundReplay(in: dir, waitSubscribers: 1, linger: "10")
        defer { if replay.process.isRunning { replay.signal(SIGKILL) }; _ = replay.waitForProcessExit(timeout: 10) }
        let path = String(endpoint.dropFirst("ipc://".count))
        var opened = 0
        let deadline = Date().addingTimeInterval(30)  // connects are refused until replay has bound
        while opened < 1200 && Date() < deadline {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            var addr = unixAddress(path)
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            close(fd)
            if ok == 0 { opened += 1 }
        }
        try #require(opened == 1200, "\(opened) connections: \(replay.stderr.text)")
        let context = try ZMQContext()
        defer { context.close() }
        let subscriber = try context.socket(.sub, lingerMilliseconds: 0)
        defer { subscriber.close() }
        try subscriber.subscribe("")
        try subscriber.connect(endpoint)
        var received = 0
        while received < 6, try subscriber.receiveCopy(timeoutMilliseconds: 30_000) != nil { received += 1 }
        #expect(received == 6, "\(replay.stderr.text)")
        #expect(replay.waitForExit(timeout: 60) == 0, "\(replay.stderr.text)")
    }

    @Test("--loop 2 over a pipe (/dev/stdin) is exit 64 naming the file: the second pass would send nothing, silently")
    func loopOverAPipe() throws {
        let dir = try TemporaryDirectory()
        let input = Pipe()
        let replay = try Child("contactwatch", ["replay", "/dev/stdin", "--endpoint", dir.ipc("x"), "--loop", "2"],
                               input: input)
        try input.fileHandleForWriting.close()
        #expect(replay.waitForExit(timeout: 30) == 64)
        #expect(replay.stderr.text.contains("/dev/stdin: --loop 2 needs regular files"), "\(replay.stderr.text)")
    }

    @Test("--linger out of range is exit 64 naming it")
    func lingerRange() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("one.ndjson")
        try "{}\n".write(toFile: file, atomically: true, encoding: .utf8)
        for value in ["-1", "86401", "1e400"] {
            let r = try runTool(["replay", file, "--endpoint", dir.ipc("x"), "--linger=\(value)"], timeout: 30)
            #expect(r.status == 64 && r.stderr.contains("--linger must be from 0 to 86400 seconds"), "\(value): \(r.stderr)")
        }
        // Not numbers at all (ToolFlagRangeTests.decimalOnly has the rest).
        for value in ["nan", "inf"] {
            let r = try runTool(["replay", file, "--endpoint", dir.ipc("x"), "--linger=\(value)"], timeout: 30)
            #expect(r.status == 64 && r.stderr.contains("'\(value)' is not a decimal number"), "\(value): \(r.stderr)")
        }
    }
}
