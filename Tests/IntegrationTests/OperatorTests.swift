import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchCommon
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// What an operator meets first: versions, the unit's sandbox score, the tool's warnings and progress, log lines
/// that journald can filter.
@Suite("Operating the executables", .blocking)
struct OperatorTests {
    @Test("--version prints the one version constant on both executables", arguments: ["contactwatchd", "contactwatch"])
    func version(_ executable: String) throws {
        let c = try Child(executable, ["--version"])
        #expect(c.waitForExit(timeout: 30) == 0)
        #expect(c.stdout.text == ContactWatchVersion.string + "\n", "\(c.stdout.text)")
    }

    @Test("systemd-analyze security --offline=true scores the unit at most 1.5")
    func unitExposure() throws {
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let analyze else {
            print("skipped: systemd-analyze is not installed (apt-get install systemd to measure the unit)")
            return
        }
        let unit = Executables.packageRoot.appendingPathComponent("Deploy/contactwatchd.service").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: analyze)
        p.arguments = ["security", "--offline=true", "--no-pager", unit]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // "→ Overall exposure level for contactwatchd.service: 1.1 OK 🙂"
        let line = try #require(text.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(text)")
        let score = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }, "\(line)")
        #expect(score <= 1.5, "\(line)")
        // The directives libzmq needs stay: netlink sockets, and no ~@resources filter.
        let unitText = try String(contentsOfFile: unit, encoding: .utf8)
        let directives = unitText.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(directives.contains { $0.hasPrefix("RestrictAddressFamilies=") && $0.contains("AF_NETLINK") })
        #expect(!directives.contains { $0.hasPrefix("SystemCallFilter=") && $0.contains("@resources") })
    }

    @Test("the unit's ExecReload= reaches a running daemon with no kill executable on the PATH (a minimal Debian has none)")
    func unitReloadWithoutProcps() throws {
        let unit = Executables.packageRoot.appendingPathComponent("Deploy/contactwatchd.service").path
        let lines = try String(contentsOfFile: unit, encoding: .utf8).split(separator: "\n")
        let reload = try #require(lines.first { $0.hasPrefix("ExecReload=") }).dropFirst("ExecReload=".count)
        // The one form the unit uses: /bin/sh -c "SCRIPT" (sh is essential on Debian; SCRIPT uses the shell's kill).
        let prefix = "/bin/sh -c \""
        #expect(reload.hasPrefix(prefix) && reload.hasSuffix("\""), "ExecReload=\(reload)")
        let script = String(reload.dropFirst(prefix.count).dropLast())

        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/sh")
        sh.arguments = ["-c", script]
        // As systemd runs it: MAINPID set; and no directory on the PATH, so that no kill executable can be found.
        sh.environment = ["MAINPID": "\(daemon.child.process.processIdentifier)", "PATH": dir.file("no-such-directory")]
        try sh.run()
        sh.waitUntilExit()
        #expect(sh.terminationStatus == 0)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("reload: SIGHUP received") }, "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
    }

    @Test("tail warns when nothing has connected after a few seconds, and keeps waiting")
    func tailWarnsWhenNothingConnects() throws {
        let dir = try TemporaryDirectory()
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("nobody-here")])
        let warned = tail.stderr.wait(timeout: 30) { $0.contains("nothing connected to \(dir.ipc("nobody-here"))") }
        #expect(warned, "\(tail.stderr.text)")
        #expect(tail.process.isRunning, "tail gave up instead of waiting")
        tail.signal(SIGKILL)
        _ = tail.waitForProcessExit(timeout: 10)
    }

    /// Exit 69, not 0 after "replayed N messages": a script could not tell it from a replay that reached a daemon (the
    /// companion tool's auditor, session 25).
    @Test("replay to an endpoint nobody subscribes at fails (exit 69) saying that the messages went nowhere")
    func replayWarnsWithoutSubscribers() throws {
        let dir = try TemporaryDirectory()
        let file = Executables.fixtures.appendingPathComponent("03-no-privacy.ndjson").path
        let connect = try runTool(["replay", file, "--endpoint", dir.ipc("nobody")], timeout: 60)
        #expect(connect.status == 69)
        #expect(connect.stderr.contains("contactwatch replay: no subscriber was seen on \(dir.ipc("nobody")): the 10 messages were dropped"),
                "\(connect.stderr)")
        #expect(connect.stderr.contains("replayed 10 messages"), "the summary line comes first: \(connect.stderr)")
        let bind = try runTool(["replay", file, "--endpoint", dir.ipc("bound"), "--bind"], timeout: 60)
        #expect(bind.status == 69)
        #expect(bind.stderr.contains("no subscriber was seen") && bind.stderr.contains("is a daemon connected to this endpoint?"),
                "\(bind.stderr)")
        // Not on a terminal: no progress line (no carriage return) in what a pipe receives.
        #expect(!connect.stderr.contains("\r"))
    }

    @Test("replay with a subscriber that was seen does not warn")
    func replayWithSubscriberDoesNotWarn() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let file = Executables.fixtures.appendingPathComponent("03-no-privacy.ndjson").path
        let replay = try runTool(["replay", file, "--endpoint", daemon.input, "--wait-subscribers", "1"], timeout: 60)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(!replay.stderr.contains("no subscriber"), "\(replay.stderr)")
        #expect(daemon.stop() == 0)
    }

    @Test("on a terminal replay shows done/total, rate and ETA, erases its row before a diagnostic and counts a line not sent as done, then clears the line for its summary")
    func replayProgressOnATerminal() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            print("skipped: no /usr/bin/script to give replay a terminal")
            return
        }
        let dir = try TemporaryDirectory()
        // Line 13 is not JSON: said while the row is shown, and not sent (25 lines, 24 messages).
        var events = (1...24).map { #"{"eventType":"probation-case.test","n":\#($0)}"# }
        events.insert("not json", at: 12)
        let lines = events.joined(separator: "\n") + "\n"
        let file = dir.file("paced.ndjson")
        try lines.write(toFile: file, atomically: true, encoding: .utf8)
        let tool = Executables.url("contactwatch").path
        // script(1) runs the command on a pseudo-terminal; --rate 24 makes the replay last about a second, long
        // enough for the quarter-second progress line.
        // A subscriber: a replay that reaches nobody fails (69) instead of printing its summary.
        let context = try ZMQContext()
        defer { context.close() }
        let subscriber = try context.socket(.sub, lingerMilliseconds: 0)
        defer { subscriber.close() }
        try subscriber.subscribe("")
        try subscriber.connect(dir.ipc("x"))  // libzmq connects again until replay has bound
        let command = "\(tool) replay \(file) --endpoint \(dir.ipc("x")) --bind --rate 24 --wait-subscribers 1"
        let c = try Child("/usr/bin/script", ["-qefc", command, "/dev/null"])
        #expect(c.waitForExit(timeout: 60) == 0, "\(c.stdout.text)")
        let text = c.stdout.text
        #expect(text.contains("/25 lines ("), "\(text.debugDescription)")
        // The diagnostic takes the row's place: before, it was written after the unfinished row ("ETA 0:01\e[K/tmp/…").
        #expect(text.contains("paced.ndjson:13: not JSON"), "\(text.debugDescription)")
        #expect(!text.contains("\u{1B}[K\(file):13:") || text.contains("\r\u{1B}[K\(file):13:"), "\(text.debugDescription)")
        #expect(text.contains("\r\u{1B}[K\(file):13:"), "the row was not shown before line 13: \(text.debugDescription)")
        #expect(text.contains("ETA "), "\(text.debugDescription)")
        #expect(text.contains("\r\u{1B}[K"), "the progress line is erased before the summary")
        #expect(text.contains("replayed 24 messages"), "\(text.debugDescription)")
    }

    @Test("generate ends with a summary line on standard error counting the events it wrote")
    func generateSummary() throws {
        let dir = try TemporaryDirectory()
        let r = try runTool(["generate", "--cases", "20", "--days", "10", "--output", dir.file("stream.ndjson")], timeout: 60)
        #expect(r.status == 0)
        let events = try String(contentsOfFile: dir.file("stream.ndjson"), encoding: .utf8).split(separator: "\n").count
        #expect(events > 0)
        #expect(r.stderr.hasPrefix("generated \(events) events (20 cases over 10 days) in "), "\(r.stderr)")
        #expect(!r.stderr.contains("\r"))
    }

    /// A file to give a daemon as its standard error, and the `JOURNAL_STREAM` value (`device:inode`) naming it, as
    /// systemd sets it when standard error is the journal.
    static func journalLog(_ dir: TemporaryDirectory) throws -> (path: String, handle: FileHandle, journalStream: String) {
        let path = dir.file("stderr.log")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var st = stat()
        try #require(fstat(handle.fileDescriptor, &st) == 0)
        return (path, handle, "\(st.st_dev):\(st.st_ino)")
    }

    @Test("under journald (JOURNAL_STREAM names standard error) every log line starts with its <N> priority")
    func journalPriorities() throws {
        let dir = try TemporaryDirectory()
        let (logPath, log, journalStream) = try Self.journalLog(dir)
        let notify = try NotifySocket(path: dir.file("notify"))
        let p = Process()
        p.executableURL = Executables.url("contactwatchd")
        p.arguments = ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"), "--state-dir", dir.file("state"),
                       "--log-format", "text"]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = notify.path
        env["JOURNAL_STREAM"] = journalStream
        p.environment = env
        p.standardError = log
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        try #require(notify.wait(for: "READY=1", timeout: 30))
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 3, "\(lines)")
        for line in lines { #expect(line.hasPrefix("<6>info ") || line.hasPrefix("<5>notice ") || line.hasPrefix("<4>warning "), "\(line)") }
        #expect(lines.contains { $0.hasPrefix("<6>info contactwatchd") && $0.hasSuffix(" ready") })
    }

    /// A configuration problem is written before the log is set up; under journald it carries `<3>` as the log's lines
    /// carry their priority (a README audit, session 24: stored at `info`, hidden from `journalctl -p warning`). So do
    /// argument-parser's own refusals (an unknown flag, a missing value), which its exit path wrote without one.
    @Test("under journald a problem that stops the start is written at error priority (<3>), every line of it",
          arguments: [(["--state-dir"], "CONTACTWATCH_LOG_LEVL"),
                      (["--check-config", "--state-dir"], "CONTACTWATCH_LOG_LEVL"),
                      (["--inptu", "ipc:///x", "--state-dir"], "Unknown option '--inptu'"),
                      (["--output", "ipc:///x", "--input"], "Missing value for '--input")])
    func journalPriorityOfAConfigurationProblem(arguments: [String], expected: String) throws {
        let dir = try TemporaryDirectory()
        let (logPath, log, journalStream) = try Self.journalLog(dir)
        let p = Process()
        p.executableURL = Executables.url("contactwatchd")
        p.arguments = arguments + (arguments.last == "--state-dir" ? [dir.file("state")] : [])
        var env = ProcessInfo.processInfo.environment
        env["JOURNAL_STREAM"] = journalStream
        env["CONTACTWATCH_LOG_LEVL"] = "debug"
        p.environment = env
        p.standardError = log
        p.standardOutput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        try p.run()
        // Bounded: a refusal that regressed would leave a daemon running.
        if exited.wait(timeout: .now() + 30) == .timedOut {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            Issue.record("the daemon did not refuse to start: \(arguments)")
        }
        #expect(p.terminationStatus == 64)
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.contains(expected) }, "\(lines)")
        #expect(!lines.isEmpty)
        let prefix = expected.hasPrefix("CONTACTWATCH") ? "<3>contactwatchd: " : "<3>"
        for line in lines { #expect(line.hasPrefix(prefix), "\(line)") }
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "nothing made on a refused start")
    }

    @Test("--log-format json: every line the daemon writes is one JSON object")
    func jsonLogs() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--log-format", "json"])
        #expect(daemon.stop() == 0)
        let lines = daemon.child.stderr.lines
        #expect(lines.count >= 3)
        for line in lines {
            let object = jsonObject(line)
            #expect(object?["level"] is String && object?["message"] is String && object?["time"] is String, "\(line)")
        }
        // The ready line names the version that started (an upgrade's restart is told by it).
        let ready = try #require(lines.compactMap(jsonObject).first { $0["message"] as? String == "ready" }, "\(lines)")
        let versionRun = try Child("contactwatchd", ["--version"])
        #expect(versionRun.waitForExit(timeout: 30) == 0)
        let version = versionRun.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!version.isEmpty && ready["version"] as? String == version, "\(ready) \(version)")
        // And the executable's build ID, which tells two builds of one version apart.
        let build = ready["build"] as? String ?? ""
        #expect(build.count >= 16 && build.allSatisfy(\.isHexDigit), "\(ready)")
    }

    @Test("a log format that does not exist is exit 64 naming log.format")
    func badLogFormat() throws {
        let dir = try TemporaryDirectory()
        let c = try Child("contactwatchd", ["--log-format", "xml", "--state-dir", dir.file("state")])
        #expect(c.waitForExit(timeout: 30) == 64)
        #expect(c.stderr.text.contains("log.format"), "\(c.stderr.text)")
    }

    @Test("tail --format text prints one readable line per message from a running daemon")
    func tailText() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let expected = try Fixtures.lines("03-no-privacy.expected.ndjson")
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--format", "text", "--count", "\(expected.count)"])
        #expect(daemon.waitForSubscribers(1), "\(daemon.child.stderr.text)")
        let replay = try runTool(["replay", Executables.fixtures.appendingPathComponent("03-no-privacy.ndjson").path,
                                  "--endpoint", daemon.input, "--wait-subscribers", "1"])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(tail.waitForExit(timeout: 30) == 0, "\(tail.stdout.text)")
        let got = tail.stdout.lines
        try #require(got.count == expected.count, "\(got)")
        for (line, want) in zip(got, expected) {
            let message = try #require(jsonObject(want))
            let body = try #require(message["body"] as? NSDictionary)
            #expect(line.hasPrefix("\(body["occurredAt"] as? String ?? "-")  \(message["topic"] as? String ?? "")  "), "\(line)")
            if let reason = body["reason"] as? String { #expect(line.hasSuffix(reason), "\(line)") }
        }
        #expect(daemon.stop() == 0)
    }
}
