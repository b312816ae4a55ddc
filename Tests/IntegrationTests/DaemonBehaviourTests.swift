import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

@Suite("contactwatchd behaviour", .blocking)
struct DaemonBehaviourTests {
    static let event = #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-01-06T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900001"}]},"additionalInformation":{"contactId":9001,"contactStart":"2026-01-06T10:00:00Z","contactType":"COAP","outcome":{"code":"ATTC"},"interviewSetting":"OPEN_BOOTH","pduCode":"N07SUF"}}"#

    @Test("each kind of malformed message gets an invalid-event notice and the daemon keeps running")
    func malformedMessages() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""])
        let context = try ZMQContext()
        defer { context.close() }
        let publisher = try context.socket(.xpub)
        defer { publisher.close() }
        try publisher.connect(daemon.input)
        // The daemon's subscription reaching us is the signal that nothing sent from now on is lost.
        let subscription = try publisher.receiveCopy(timeoutMilliseconds: 10_000)
        try #require(subscription != nil, "the daemon did not subscribe")
        let contact = "probation-case.contact.recorded"
        func body(_ s: String) -> [UInt8] { Array(s.utf8) }
        let skewed = Self.event.replacingOccurrences(of: "\"occurredAt\":\"2026-01-06T11:00:00Z\"", with: "\"occurredAt\":\"2099-01-06T11:00:00Z\"")
        let early = Self.event.replacingOccurrences(of: "\"occurredAt\":\"2026-01-06T11:00:00Z\"", with: "\"occurredAt\":\"2026-01-06T09:00:00Z\"")
        let cases: [(frames: [[UInt8]], field: String?, reasonHas: String)] = [
            ([body(contact), body("x"), body(Self.event)], nil, "frames"),
            ([body(contact), [0x7B, 0xFF, 0xFE, 0x7D]], nil, "UTF-8"),
            ([body(contact), body("{\"eventType\":")], nil, "not JSON"),
            ([body(contact), body("[1,2]")], nil, "not a JSON object"),
            ([body(contact), body("{\"eventType\":\"a\",\"eventType\":\"a\"}")], nil, "duplicate"),
            ([body("probation-case.registration.added"), body(Self.event)], "eventType", "topic"),
            ([body(contact), body(Self.event.replacingOccurrences(of: "\"version\":1", with: "\"version\":\"1\""))], "version", "version"),
            ([body(contact), body(Self.event.replacingOccurrences(of: "X900001", with: "x900001"))], "personReference.identifiers[0].value", "CRN"),
            ([body(contact), body(early)], "additionalInformation.outcome", "5 minutes"),
            ([body(contact), body(skewed)], "occurredAt", "wall clock"),
        ]
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--count", "\(cases.count + 1)"])
        #expect(daemon.waitForSubscribers(1))
        for c in cases { try publisher.send(c.frames) }
        try publisher.send([body(contact), body(Self.event)])
        #expect(tail.waitForExit(timeout: 30) == 0, "tail got: \(tail.stdout.text)")
        let lines = tail.stdout.lines
        try #require(lines.count == cases.count + 1)
        for (k, c) in cases.enumerated() {
            let notice = try #require(jsonObject(lines[k]))
            #expect(notice["eventType"] as? String == "contactwatch.invalid-event", "#\(k): \(lines[k])")
            #expect((notice["field"] as? String) == c.field, "#\(k): \(lines[k])")
            #expect((notice["reason"] as? String)?.contains(c.reasonHas) == true, "#\(k): \(lines[k])")
        }
        let alert = try #require(jsonObject(lines[cases.count]))
        #expect(alert["rule"] as? String == "no-privacy")
        #expect(daemon.child.process.isRunning)
        #expect(daemon.stop() == 0)
        #expect(daemon.child.stderr.text.contains("invalid=\(cases.count)"), "\(daemon.child.stderr.text)")
        // Counted by reason (events.md), in the stop summary: each problem once here (a duplicate key is JSON's).
        let stopped = daemon.child.stderr.lines.last { $0.hasSuffix(" stopped") } ?? ""
        for reason in ["frames:1", "utf8:1", "json:2", "object:1", "eventType:1", "version:1", "occurredAt.skew:1",
                       "personReference.identifiers[].value:1", "additionalInformation.outcome:1"] {
            #expect(stopped.contains(reason), "\(reason): \(stopped)")
        }
        #expect(stopped.contains("invalidBy="), "\(stopped)")
    }

    /// A `stream.gap` notice is at most once and not journaled: a gap seen while no consumer subscribed to it (at a
    /// restart after a crash, with the publisher's queue arriving past what the crash lost) left only a count, and the
    /// README's recovery, "replay from the daemon's position", then resent nothing (a fault tester, session 41).
    @Test("each stream gap is a warning naming the publisher and the missing sequenceNumbers (example 07)")
    func gapsLogged() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let example = Fixtures.directory.appendingPathComponent("07-sequence-gaps.ndjson").path
        let r = try runTool(["replay", example, "--endpoint", daemon.input, "--wait-subscribers", "1", "--linger", "5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("sequenceNumber 2, before 3") }, "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        let gaps = daemon.child.stderr.lines.filter { $0.contains(" warning ") && ($0.contains("messages missing") || $0.contains("message missing")) }
        #expect(gaps.count == 2, "\(gaps)")
        #expect(gaps.first?.contains("publisher feed-A: 2 messages missing (sequenceNumbers 3 to 4, before 5)") == true, "\(gaps)")
        #expect(gaps.first?.contains("expected=3") == true && gaps.first?.contains("publisherId=feed-A") == true, "\(gaps)")
        #expect(gaps.last?.contains("publisher feed-A: 1 message missing (sequenceNumber 2, before 3)") == true, "\(gaps)")
    }

    @Test("bad flags and configuration exit 64 and name the problem")
    func badConfiguration() throws {
        let dir = try TemporaryDirectory()
        func daemon(_ args: [String], env: [String: String] = [:]) throws -> (Int32?, String) {
            let c = try Child("contactwatchd", args + ["--state-dir", dir.file("state"), "--output", dir.ipc("out")], environment: env)
            let status = c.waitForExit(timeout: 20)
            if status == nil { c.signal(SIGKILL) }
            return (status, c.stderr.text)
        }
        var (status, text) = try daemon(["--no-such-flag"])
        #expect(status == 64, "\(text)")
        (status, text) = try daemon(["--input-bind", "--input", dir.ipc("a"), "--input", dir.ipc("b")])
        #expect(status == 64 && text.contains("--input-bind"), "\(text)")
        (status, text) = try daemon([], env: ["CONTACTWATCH_RULES_TELEPHONE_ONLY_LIMIT_DAYS": "soon"])
        #expect(status == 64 && text.contains("rules.telephoneOnly.limitDays"), "\(text)")
        let file = dir.file("bad.yaml")
        try "rules:\n  complianceRate:\n    threshold: 2.5\n".write(toFile: file, atomically: true, encoding: .utf8)
        (status, text) = try daemon(["--config", file])
        #expect(status == 64 && text.contains("rules.complianceRate.threshold"), "\(text)")
        (status, text) = try daemon(["--log-level", "loud"])
        #expect(status == 64 && text.contains("log.level"), "\(text)")
        (status, text) = try daemon(["--input", "http://example"])
        #expect(status == 64 && text.contains("input.endpoints"), "\(text)")
    }

    @Test("an endpoint that cannot be bound exits 69")
    func unbindableEndpoint() throws {
        let dir = try TemporaryDirectory()
        let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--state-dir", dir.file("state"),
                                            "--output", "ipc://\(dir.path)/no/such/dir/out"])
        #expect(c.waitForExit(timeout: 20) == 69, "\(c.stderr.text)")
        #expect(c.stderr.text.contains("output"))
    }

    @Test("systemd notifications: READY=1 once up, WATCHDOG=1 from the loop, STOPPING=1 on SIGTERM")
    func systemdNotifications() throws {
        let dir = try TemporaryDirectory()
        // DaemonUnderTest waits for READY=1 on its NOTIFY_SOCKET; a 200 ms watchdog asks for pings every 100 ms.
        let daemon = try DaemonUnderTest(dir: dir, environment: ["WATCHDOG_USEC": "200000"])
        #expect(daemon.notify.wait(for: "WATCHDOG=1", timeout: 5), "no watchdog ping: \(daemon.child.stderr.text)")
        daemon.child.signal(SIGTERM)
        #expect(daemon.notify.wait(for: "STOPPING=1", timeout: 5))
        #expect(daemon.child.waitForExit(timeout: 5) == 0)
    }

    /// Only failures found once the sockets were being set up told systemd (STOPPING=1 with `STATUS=stopping: …`);
    /// a bad configuration, a store that is not one, the limits refused at start sent nothing (a documentation hunter,
    /// session 54), so `systemctl status` said nothing of why.
    @Test("a start that fails before the sockets (a bad value, a file that is not a store) sends STOPPING=1 with its reason")
    func startFailureTellsSystemd() throws {
        for (extra, status, reason) in [(["--log-level", "loud"], Int32(64), "STATUS=stopping: configuration: log.level"),
                                        ([], Int32(74), "STATUS=stopping: the state store at ")] {
            let dir = try TemporaryDirectory()
            if status == 74 {
                try FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: true)
                #expect(FileManager.default.createFile(atPath: dir.file("state/contactwatch.sqlite"),
                                                       contents: Data(repeating: 0x41, count: 8192)))
            }
            let notify = try NotifySocket(path: dir.file("notify"))
            let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--output", dir.ipc("out"), "--state-dir", dir.file("state")] + extra,
                              environment: ["NOTIFY_SOCKET": notify.path])
            #expect(c.waitForExit(timeout: 30) == status, "\(c.stderr.text)")
            #expect(notify.wait(for: "STATUS=", prefix: true, timeout: 5) { $0.hasPrefix(reason) }, "\(c.stderr.text)")
        }
    }

    @Test("a second daemon on the same state directory waits 5 s for the lock, exits 75 and leaves the first running")
    func stateDirectoryLock() throws {
        let dir = try TemporaryDirectory()
        let first = try DaemonUnderTest(dir: dir)
        let second = try Child("contactwatchd", ["--input", dir.ipc("in2"), "--input-bind", "--output", dir.ipc("out2"),
                                                 "--state-dir", first.stateDir])
        // Said when the wait begins, with the holder's pid, not only when it is over.
        let pid = first.child.process.processIdentifier
        #expect(second.waitForExit(timeout: 30) == 75, "\(second.stderr.text)")
        let log = second.stderr.text
        let waiting = log.range(of: "locked by another process: waiting up to 5 s")
        let gaveUp = log.range(of: "has been using it for 5 s")
        #expect(waiting != nil && log.contains("holderPid=\(pid)"), "no waiting line naming process \(pid): \(log)")
        if let waiting, let gaveUp { #expect(waiting.lowerBound < gaveUp.lowerBound, "the waiting line came after the failure") }
        #expect(second.stderr.text.contains("another process (process \(pid), a contactwatchd still stopping or another one)"), "\(second.stderr.text)")
        #expect(first.child.process.isRunning)
        #expect(first.stop() == 0)
    }

    /// A SIGHUP during the start is ignored (it must not end the daemon), and the start may wait seconds after reading
    /// the file: a file edited then, and signalled, was lost without a word, the old values in force (the
    /// configuration's hunter, session 45). A file changed since the start read it is read again once SIGHUP is handled.
    @Test("the configuration file changed while the start waits for the state directory's lock: read again once the daemon runs, said at notice")
    func configurationChangedDuringStart() throws {
        let dir = try TemporaryDirectory()
        let first = try DaemonUnderTest(dir: dir)
        let config = dir.file("c.yaml")
        try "log:\n  level: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        let second = try Child("contactwatchd", ["--input", dir.ipc("in2"), "--input-bind", "--output", dir.ipc("out2"),
                                                 "--state-dir", first.stateDir, "--config", config])
        defer { if second.process.isRunning { second.signal(SIGKILL); _ = second.waitForExit(timeout: 10) } }
        #expect(second.stderr.wait(timeout: 30) { $0.contains("locked by another process: waiting up to 5 s") }, "\(second.stderr.text)")
        try "log:\n  level: debug\n".write(toFile: config, atomically: true, encoding: .utf8)
        second.signal(SIGHUP)  // as an operator would: ignored during the start
        #expect(first.stop() == 0)
        #expect(second.stderr.wait(timeout: 30) { $0.contains("the configuration file \(config) changed while the daemon started: read again") },
                "\(second.stderr.text)")
        #expect(second.stderr.wait(timeout: 30) { $0.contains("reload: applied log.level info → debug") }, "\(second.stderr.text)")
        #expect(second.terminate() == 0)
        // Unchanged, nothing is read again.
        let third = try DaemonUnderTest(dir: dir, extraArguments: ["--config", config])
        #expect(third.stop() == 0)
        #expect(!third.child.stderr.text.contains("changed while the daemon started"), "\(third.child.stderr.text)")
    }

    /// The same for an allow-list: a key removed while the start waited was still admitted after it (a reviewer,
    /// session 45).
    @Test("a key removed from an allow-list while the start waits for the state directory's lock: the list is read again once the daemon runs")
    func allowListChangedDuringStart() throws {
        let dir = try TemporaryDirectory()
        let certs = dir.file("certs"), consumers = dir.file("consumers"), publishers = dir.file("publishers")
        for path in [certs, consumers, publishers] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        for name in ["daemon", "revoked", "kept"] { #expect(try runTool(["keygen", name, "--dir", certs]).status == 0) }
        for name in ["revoked", "kept"] { try FileManager.default.copyItem(atPath: "\(certs)/\(name).key", toPath: "\(consumers)/\(name).key") }
        let config = dir.file("c.yaml")
        try "security:\n  curve:\n    certificate: \(certs)/daemon.key_secret\n    allowConsumers: \(consumers)\n    allowPublishers: \(publishers)\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let first = try DaemonUnderTest(dir: dir)
        let second = try Child("contactwatchd", ["--input", dir.ipc("in2"), "--input-bind", "--output", dir.ipc("out2"),
                                                 "--state-dir", first.stateDir, "--config", config])
        defer { if second.process.isRunning { second.signal(SIGKILL); _ = second.waitForExit(timeout: 10) } }
        #expect(second.stderr.wait(timeout: 30) { $0.contains("locked by another process: waiting up to 5 s") }, "\(second.stderr.text)")
        try FileManager.default.removeItem(atPath: "\(consumers)/revoked.key")
        #expect(first.stop() == 0)
        #expect(second.stderr.wait(timeout: 30) { $0.contains("the allow-list directory \(consumers) changed while the daemon started: read again") },
                "\(second.stderr.text)")
        #expect(second.stderr.wait(timeout: 30) { text in
            text.split(separator: "\n").contains { $0.contains("allow-list reloaded") && $0.contains("dir=\(consumers)") && $0.contains("removed=1") }
        }, "\(second.stderr.text)")
        #expect(second.terminate() == 0)
    }

    /// A stop during the start (here the lock wait; under systemd, a multi-GB store's check): both signals had their
    /// default action until the service group ran, so the daemon died by the signal without a word, where cli.md asks
    /// for exit 0 within 5 s (systemd 252, session 37).
    @Test("SIGTERM or SIGINT while the start waits for the state directory's lock: exit 0 within 5 s, saying so; the first daemon keeps running",
          arguments: [SIGTERM, SIGINT])
    func stopDuringStart(signal: Int32) throws {
        let dir = try TemporaryDirectory()
        let first = try DaemonUnderTest(dir: dir)
        let second = try Child("contactwatchd", ["--input", dir.ipc("in2"), "--input-bind", "--output", dir.ipc("out2"),
                                                 "--state-dir", first.stateDir])
        defer { if second.process.isRunning { second.signal(SIGKILL); _ = second.waitForExit(timeout: 10) } }
        #expect(second.stderr.wait(timeout: 30) { $0.contains("locked by another process: waiting up to 5 s") }, "\(second.stderr.text)")
        second.signal(signal)
        let status = second.waitForExit(timeout: 5)
        // The reason only once it exited (Foundation traps when asked while the process runs).
        let reason = status == nil ? "still running" : second.process.terminationReason == .exit ? "exit" : "signal"
        #expect(status == 0 && reason == "exit", "exit \(String(describing: status)), reason \(reason): \(second.stderr.text)")
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        #expect(second.stderr.text.contains("stopping: \(name) during start, before the processing loop ran"), "\(second.stderr.text)")
        #expect(!second.stderr.text.contains("has been using it for 5 s"), "\(second.stderr.text)")
        #expect(first.child.process.isRunning)
        #expect(first.stop() == 0)
    }

    /// `contactwatchd … | tee` with tee gone: SIGPIPE at the next log line killed the daemon (signal 13, no clean stop).
    @Test("standard error a pipe whose reader has gone: the daemon starts, runs and stops on SIGTERM with 0 (the lines are dropped)")
    func standardErrorReaderGone() throws {
        let dir = try TemporaryDirectory()
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let notifyPath = dir.file("notify-epipe")
        let notify = try NotifySocket(path: notifyPath)
        let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                            "--state-dir", dir.file("state")],
                          environment: ["NOTIFY_SOCKET": notifyPath], standardError: pipe)
        defer { if c.process.isRunning { c.signal(SIGKILL) } }
        try pipe.fileHandleForWriting.close()
        #expect(notify.wait(for: "READY=1", timeout: 30), "no READY=1 (terminated by signal? \(c.process.isRunning ? "no" : "\(c.process.terminationStatus)"))")
        c.signal(SIGTERM)
        let status = c.waitForExit(timeout: 30)
        #expect(status == 0 && c.process.terminationReason == .exit,
                "exit \(String(describing: status)), reason \(c.process.terminationReason == .exit ? "exit" : "signal")")
    }

    /// `sd_notify`'s result was dropped: with `NOTIFY_SOCKET` naming no socket (a sandbox hiding it, a typo) the daemon
    /// logged `ready` and looked healthy while systemd never heard READY=1 (a start timed out) or a watchdog ping (a
    /// restart for a hang): an auditor, session 29. Now one warning per kind of notification.
    @Test("NOTIFY_SOCKET naming no socket: one warning that systemd was not told READY=1, one for the watchdog's pings; the daemon runs and stops with 0")
    func notificationsThatFail() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.file("no-such-notify-socket")
        let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                            "--state-dir", dir.file("state")],
                          environment: ["NOTIFY_SOCKET": missing, "WATCHDOG_USEC": "200000"])
        defer { if c.process.isRunning { c.signal(SIGKILL) } }
        #expect(c.stderr.wait(timeout: 30) { $0.contains("systemd was not told READY=1") && $0.contains("systemd was not told WATCHDOG=1") },
                "\(c.stderr.text.suffix(2000))")
        c.signal(SIGTERM)
        #expect(c.waitForExit(timeout: 30) == 0, "\(c.stderr.text.suffix(2000))")
        let lines = c.stderr.text.split(separator: "\n")
        let ready = lines.filter { $0.contains("systemd was not told READY=1") }
        #expect(ready.count == 1 && ready.allSatisfy { $0.contains("warning") && $0.contains(missing) }, "\(ready)")
        // Pings every 100 ms for the daemon's life: said once.
        #expect(lines.filter { $0.contains("systemd was not told WATCHDOG=1") }.count == 1)
    }

    /// The lock file deleted under a running daemon (a clean-up job, an operator): a second daemon created a new one,
    /// locked it, and both wrote the same store (the fault tester). The state directory's own lock keeps it out.
    @Test("the lock file deleted under a running daemon: a second daemon on the same state directory still waits, exits 75 naming the first, and leaves it running")
    func stateDirectoryLockFileDeleted() throws {
        let dir = try TemporaryDirectory()
        let first = try DaemonUnderTest(dir: dir)
        try FileManager.default.removeItem(atPath: first.stateDir + "/contactwatchd.lock")
        let second = try Child("contactwatchd", ["--input", dir.ipc("in2"), "--input-bind", "--output", dir.ipc("out2"),
                                                 "--state-dir", first.stateDir])
        let pid = first.child.process.processIdentifier
        let status = second.waitForExit(timeout: 30)
        if status == nil { second.signal(SIGKILL); _ = second.waitForExit(timeout: 10) }
        #expect(status == 75, "exit \(String(describing: status)): \(second.stderr.text.suffix(1500))")
        #expect(second.stderr.text.contains("another process (process \(pid), a contactwatchd still stopping or another one)"), "\(second.stderr.text.suffix(1500))")
        #expect(first.child.process.isRunning)
        #expect(first.stop() == 0)
    }

    @Test("a standard error nobody reads (a full one-page pipe, debug lines) does not stop the daemon: every alert is published, SIGTERM ends it with 0")
    func unreadStandardError() throws {
        let dir = try TemporaryDirectory()
        let chunks = try DurabilityTests.generatedChunks(dir, parts: 1)
        let arguments = DurabilityTests.arguments + ["--log-level", "debug"]
        // The alerts of a daemon whose log is read.
        let reference = try DaemonUnderTest(dir: dir, extraArguments: arguments, environment: DurabilityTests.environment)
        try DurabilityTests.replayThroughSentinel(reference, chunks, sentinel: "reference")
        let expected = try JournalClient(endpoint: reference.journal).fetchAll().bodies
        #expect(reference.stop() == 0)
        try #require(expected.count > 100, "only \(expected.count) alerts")

        let other = try TemporaryDirectory()
        let unread = Pipe()
        // One page: full after a dozen lines. Nothing reads it until the daemon has exited.
        _ = fcntl(unread.fileHandleForWriting.fileDescriptor, 1031 /* F_SETPIPE_SZ */, 4096)
        let daemon = try DaemonUnderTest(dir: other, extraArguments: arguments, environment: DurabilityTests.environment,
                                         standardError: unread)
        try unread.fileHandleForWriting.close()  // the daemon holds its own copy
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert.", "--journal", daemon.journal,
                                              "--from-sequence", "0", "--count", "\(expected.count)"])
        defer { DurabilityTests.stop(tail) }
        let replay = try Child("contactwatch", ["replay"] + chunks + ["--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { DurabilityTests.stop(replay) }
        #expect(replay.waitForProcessExit(timeout: 60) == 0, "replay: \(replay.stderr.text)")
        #expect(tail.waitForExit(timeout: 60) == 0, "tail printed \(tail.stdout.lines.count) of \(expected.count) alerts")
        let got = tail.stdout.lines.compactMap(jsonObject).map(DurabilityTests.withoutDetectedAt)
        #expect(got == expected.map(DurabilityTests.withoutDetectedAt), "the alerts differ from the reference run's")
        daemon.child.signal(SIGTERM)
        let status = daemon.child.waitForProcessExit(timeout: 30)
        #expect(status == 0, "exit \(String(describing: status)) after SIGTERM with its standard error full")
        if status == nil { daemon.child.signal(SIGKILL) }
        let log = String(decoding: unread.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("open files limit"), "the first lines were not written: \(log.prefix(300))")
    }

    @Test("port 0 and * on every bound socket: the ports the system chose are logged, and clients pointed at them are served")
    func freePortsLogged() throws { try freePorts(host: "127.0.0.1") }

    /// `[::1]`: a README audit (session 24) found IPv6 endpoints passing `--check-config` and then failing to bind ("No
    /// such device", exit 69) or never connecting: libzmq takes IPv6 only with `ZMQ_IPV6`, which a socket now sets for
    /// each endpoint whose host is in brackets.
    @Test("the same on the IPv6 loopback [::1]", .enabled(if: HostNetwork.canBindIPv6Loopback, "this host cannot bind ::1"))
    func freePortsLoggedIPv6() throws { try freePorts(host: "[::1]") }

    func freePorts(host: String) throws {
        let dir = try TemporaryDirectory()
        let daemon = try Child("contactwatchd", ["--input", "tcp://\(host):0", "--input-bind", "--output", "tcp://\(host):*",
                                                 "--journal", "tcp://\(host):0", "--state-dir", dir.file("state")])
        defer { _ = daemon.terminate() }
        #expect(daemon.stderr.wait(timeout: 60) { $0.contains(" ready") }, "\(daemon.stderr.text)")
        func bound(_ socket: String) -> String? {
            daemon.stderr.lines.first { $0.hasSuffix("] bound") && $0.contains("socket=\(socket) ") }?
                .split(separator: " ").first { $0.hasPrefix("endpoint=") }.map { String($0.dropFirst("endpoint=".count)) }
        }
        let input = try #require(bound("input"), "\(daemon.stderr.text)")
        let output = try #require(bound("output"), "\(daemon.stderr.text)")
        let journal = try #require(bound("journal"), "\(daemon.stderr.text)")
        for endpoint in [input, output, journal] {
            #expect(endpoint.hasPrefix("tcp://\(host):") && !endpoint.hasSuffix(":0") && !endpoint.hasSuffix(":*"), "\(endpoint)")
        }
        #expect(try JournalClient(endpoint: journal).fetch(after: 0).latest == 0)
        let tail = try Child("contactwatch", ["tail", "--endpoint", output, "--topic", "alert.", "--count", "1"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) } }
        #expect(daemon.stderr.wait(timeout: 30) { $0.contains("subscriber joined") }, "the tail did not reach \(output)")
        let example = Executables.fixtures.appendingPathComponent("01-warning-then-breach.ndjson").path
        let replay = try runTool(["replay", example, "--endpoint", input, "--wait-subscribers", "1"], timeout: 60)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(tail.waitForExit(timeout: 60) == 0, "no alert through \(output)")
    }

    /// Relative `ipc://` paths, taken from the daemon's working directory: the `bound` line says them absolute (what a
    /// peer elsewhere needs), and the subscriptions on such an output are still counted — made absolute in the socket
    /// layer itself, the output's path no longer matched the one the kernel gives its connections, and a relative
    /// output counted no subscriber (a reviewer, session 49).
    @Test("relative ipc:// endpoints: the bound line says them absolute; a consumer of a relative output is counted and served")
    func relativeIPCEndpoints() throws {
        let dir = try TemporaryDirectory()
        let daemon = try Child("contactwatchd", ["--input", "ipc://in.sock", "--input-bind", "--output", "ipc://out.sock",
                                                 "--journal", "ipc://journal.sock", "--state-dir", "state"],
                               currentDirectory: dir.path)
        defer { _ = daemon.terminate() }
        #expect(daemon.stderr.wait(timeout: 60) { $0.contains(" ready") }, "\(daemon.stderr.text)")
        for socket in ["input", "output", "journal"] {
            let name = socket == "input" ? "in" : socket == "output" ? "out" : "journal"
            #expect(daemon.stderr.lines.contains {
                $0.hasSuffix("] bound") && $0.contains("socket=\(socket) ") && $0.contains("endpoint=ipc://\(dir.path)/\(name).sock ")
                    && $0.contains("configured=ipc://\(name).sock")
            }, "\(socket): \(daemon.stderr.text)")
        }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out.sock"), "--topic", "alert.", "--count", "1"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) } }
        #expect(daemon.stderr.wait(timeout: 30) { $0.contains("subscriber joined") }, "not counted: \(daemon.stderr.text)")
        let example = Executables.fixtures.appendingPathComponent("01-warning-then-breach.ndjson").path
        let replay = try runTool(["replay", example, "--endpoint", dir.ipc("in.sock"), "--wait-subscribers", "1"], timeout: 60)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(tail.waitForExit(timeout: 60) == 0, "no alert through the relative output")
    }

    @Test("two consumers of the same prefix that both leave are both counted out (subscribers back to 0)")
    func subscribersLeaving() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let tails = try (0..<2).map { _ in try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert."]) }
        #expect(daemon.waitForSubscribers(2), "\(daemon.child.stderr.text)")
        for t in tails {
            t.signal(SIGKILL)
            _ = t.waitForProcessExit(timeout: 10)
        }
        // Plain XPUB_VERBOSE reports only the last unsubscribe of a prefix: one "left" line, and a count stuck at 1.
        #expect(daemon.child.stderr.wait(timeout: 15) { $0.components(separatedBy: "subscriber left").count - 1 >= 2 },
                "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0)
    }

    @Test("with --log-level debug each published message is logged with its CRN and contactId")
    func debugLogging() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", "", "--log-level", "debug"])
        let stream = dir.file("two.ndjson")
        let wrongVersion = Self.event.replacingOccurrences(of: "\"version\":1", with: "\"version\":2")
        try (wrongVersion + "\n" + Self.event + "\n").write(toFile: stream, atomically: true, encoding: .utf8)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--count", "2"])
        #expect(daemon.waitForSubscribers(1))
        #expect(try runTool(["replay", stream, "--endpoint", daemon.input, "--wait-subscribers", "1"]).status == 0)
        #expect(tail.waitForProcessExit(timeout: 20) == 0)
        #expect(daemon.stop() == 0)
        let lines = daemon.child.stderr.lines
        // The line names the message kind and carries the body (with its reason) as metadata.
        let invalid = lines.first { $0.contains("invalid event") && $0.contains("version must be the integer 1") }
        #expect(invalid?.contains("crn=X900001") == true && invalid?.contains("contactId=9001") == true, "\(lines)")
        let alert = lines.first { $0.contains("Supervision contact held without privacy") }
        #expect(alert?.contains("crn=X900001") == true && alert?.contains("contactId=9001") == true, "\(lines)")
        // One line each.
        #expect(lines.allSatisfy { !$0.isEmpty })
    }

    /// A host clock behind refuses every event as too far ahead (events.md), for good: counted as invalid, and said at
    /// `warning` with the count and the latest occurredAt against the clock (a clock fault tester, session 24: nothing
    /// above `info` said so). Two events in the year 2099, then one of today: one line for the two (or two lines of one:
    /// the loop may drain them apart), none for the valid one.
    @Test("events refused as too far ahead of the host's clock are said at warning, with how many, the latest occurredAt and the clock")
    func tooFarAheadIsSaid() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""])
        let stream = dir.file("ahead.ndjson")
        let ahead = Self.event.replacingOccurrences(of: "\"occurredAt\":\"2026-01-06T11:00:00Z\"",
                                                    with: "\"occurredAt\":\"2099-01-06T11:00:00Z\"")
        try #require(ahead != Self.event)
        try [ahead, ahead.replacingOccurrences(of: "9001", with: "9002"), Self.event].joined(separator: "\n")
            .write(toFile: stream, atomically: true, encoding: .utf8)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--count", "3"])
        #expect(daemon.waitForSubscribers(1))
        #expect(try runTool(["replay", stream, "--endpoint", daemon.input, "--wait-subscribers", "1"]).status == 0)
        #expect(tail.waitForProcessExit(timeout: 20) == 0)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("refusedTotal=2") }, "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0)
        let lines = daemon.child.stderr.lines.filter { $0.contains("ahead of this host's clock") }
        #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(" warning ") && $0.contains("occurredAt=2099-01-06T11:00:00Z") },
                "\(lines)")
        #expect(lines.contains { ($0.contains("2 events refused") || $0.contains("1 event refused")) && $0.contains("timedatectl") })
        #expect(!daemon.child.stderr.text.contains("refusedTotal=3"))
    }

    @Test("a truncated state store exits 74 and is left untouched")
    func truncatedStore() throws {
        let dir = try TemporaryDirectory()
        // A real store first: a daemon that processed an event and stopped cleanly.
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""])
        let stream = dir.file("one.ndjson")
        try (Self.event + "\nend-of-stream\n").write(toFile: stream, atomically: true, encoding: .utf8)
        let done = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "invalid-event", "--count", "1"])
        #expect(daemon.waitForSubscribers(1))
        #expect(try runTool(["replay", stream, "--endpoint", daemon.input, "--wait-subscribers", "1", "--send-invalid"]).status == 0)
        #expect(done.waitForProcessExit(timeout: 20) == 0)
        #expect(daemon.stop() == 0)
        let path = daemon.stateDir + "/contactwatch.sqlite"
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try #require(whole.count > 8192)
        let truncated = whole.prefix(whole.count / 2)
        try truncated.write(to: URL(fileURLWithPath: path))
        for side in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + side) }
        let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                            "--state-dir", daemon.stateDir])
        #expect(c.waitForExit(timeout: 20) == 74, "\(c.stderr.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == truncated)
        #expect(c.stderr.text.contains("has not been modified") || c.stderr.text.contains("not modified"), "\(c.stderr.text)")
    }

    @Test("a garbage state store exits 74 and is left untouched")
    func corruptStore() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: true)
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })
        let path = dir.file("state/contactwatch.sqlite")
        try garbage.write(to: URL(fileURLWithPath: path))
        let c = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                            "--state-dir", dir.file("state")])
        #expect(c.waitForExit(timeout: 20) == 74, "\(c.stderr.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
        #expect(c.stderr.text.lowercased().contains("state store"), "\(c.stderr.text)")
    }
}
