import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchCommon
import Foundation
import Testing

/// A fault tester's findings in the companion tool's flags, with the real executable: values that crashed it
/// (SIGILL: a pause converted to more nanoseconds than UInt64 holds), wrote wrong output, wrote in the root directory,
/// or hung silently are usage errors (exit 64) whose one-line message names the flag and its real range.
@Suite("contactwatch flags out of range: exit 64 naming the flag and its range, never a crash", .blocking)
struct ToolFlagRangeTests {
    static func event(_ occurredAt: String) -> String {
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"\#(occurredAt)"}"#
    }

    /// `arguments` exits 64 and its first line of standard error contains each of `words`.
    static func refused(_ arguments: [String], _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try runTool(arguments, timeout: 30)
        #expect(r.status == 64, "\(arguments): status \(r.status.map(String.init) ?? "none"): \(r.stderr)",
                sourceLocation: sourceLocation)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        for word in words {
            #expect(first.contains(word), "\(arguments): \(r.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// `tail >&-` wrote its lines into whatever descriptor took number 1 — an eventfd of libzmq's, where an 8-byte line
    /// aborted the tool (`mailbox.cpp:99`, exit 134) and any other said `write failed: Invalid argument` (a fault
    /// tester, session 35). Descriptors 0–2 are now opened on /dev/null at start, and a command that writes to
    /// standard output says it is closed.
    @Test("tail and generate with standard output closed: exit 74 saying so; generate --output FILE still works")
    func closedStandardOutput() throws {
        let dir = try TemporaryDirectory()
        let tool = Executables.url("contactwatch").path
        let script = """
            "$1" tail --endpoint "$2" --count 1 2>&1 >&-; echo "tail $?"
            "$1" generate --cases 2 --days 2 2>&1 >&-; echo "generate $?"
            "$1" generate --cases 2 --days 2 --output "$3" 0<&- 1>&- 2>/dev/null; echo "file $?"
            """
        let c = try Child("/bin/bash", ["-c", script, "bash", tool, dir.ipc("nobody"), dir.file("g.ndjson")])
        #expect(c.waitForExit(timeout: 60) == 0, "\(c.stderr.text)")
        let lines = c.stdout.text.split(separator: "\n").map(String.init)
        let closed = "standard output is closed: nothing could be written there"
        #expect(lines == ["contactwatch tail: \(closed) (redirect it to a file, or to /dev/null to discard it)", "tail 74",
                          "contactwatch generate: \(closed) (redirect it to a file, or to /dev/null to discard it)", "generate 74",
                          "file 0"], "\(c.stdout.text)")
        #expect(FileManager.default.fileExists(atPath: dir.file("g.ndjson")))
    }

    /// A pipe whose reader went away killed the tool by SIGPIPE: exit 141 without a word, where the help and the README
    /// promise 74 for an output that cannot be written (a fault tester, session 36).
    @Test("generate into a pipe whose reader exits: exit 74 saying the reader went away")
    func readerOfThePipeGoesAway() throws {
        let script = #""$1" generate --cases 2000 --days 30 2>"$2" | head -c 10 >/dev/null; echo "generate ${PIPESTATUS[0]}""#
        let dir = try TemporaryDirectory()
        let c = try Child("/bin/bash", ["-c", script, "bash", Executables.url("contactwatch").path, dir.file("err")])
        #expect(c.waitForExit(timeout: 60) == 0)
        #expect(c.stdout.text == "generate 74\n", "\(c.stdout.text)")
        let said = (try? String(contentsOfFile: dir.file("err"), encoding: .utf8)) ?? ""
        #expect(said.contains("contactwatch generate: write failed: the reader of standard output went away (a closed pipe)"), "\(said)")
    }

    /// argument-parser prints `--help` and `--version` with `print` (C's buffered standard output) and exits 0: to a
    /// full device both executables exited 0 without a word (a fault tester, session 35).
    @Test("--help, --version and keygen to a full device: exit 74 saying standard output could not be written")
    func helpAndVersionToAFullDevice() throws {
        let dir = try TemporaryDirectory()
        let script = """
            "$1" --version > /dev/full 2>"$3/e1"; echo "version $?"
            "$1" generate --help > /dev/full 2>"$3/e2"; echo "help $?"
            "$1" keygen k --dir "$3" > /dev/full 2>"$3/e3"; echo "keygen $?"
            "$2" --version > /dev/full 2>"$3/e4"; echo "daemon $?"
            "$1" --version > /dev/null 2>"$3/e5"; echo "null $?"
            """
        let c = try Child("/bin/bash", ["-c", script, "bash", Executables.url("contactwatch").path,
                                        Executables.url("contactwatchd").path, dir.path])
        #expect(c.waitForExit(timeout: 60) == 0, "\(c.stderr.text)")
        #expect(c.stdout.text.split(separator: "\n") == ["version 74", "help 74", "keygen 74", "daemon 74", "null 0"],
                "\(c.stdout.text)")
        for (k, program) in ["contactwatch", "contactwatch", "contactwatch", "contactwatchd"].enumerated() {
            let said = (try? String(contentsOfFile: dir.file("e\(k + 1)"), encoding: .utf8)) ?? ""
            #expect(said == "\(program): standard output could not be written (No space left on device): what was printed is incomplete\n",
                    "e\(k + 1): \(said)")
        }
        #expect(((try? String(contentsOfFile: dir.file("e5"), encoding: .utf8)) ?? "x").isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir.file("k.key_secret")))
    }

    /// `tail` ends with 66 when a certificate or key file cannot be read, as the README says; its `--help` listed 64,
    /// 69 and 74 only, so a script branching on the documented codes missed it (an operator's audit, session 52).
    @Test("tail's help names exit 66, which an unreadable certificate or server key ends it with")
    func tailHelpNamesEveryExitCode() throws {
        let dir = try TemporaryDirectory()
        let keygen = try runTool(["keygen", "server", "--dir", dir.path], timeout: 60)
        #expect(keygen.status == 0, "\(keygen.stderr)")
        for (cert, serverKey) in [(dir.file("missing.key_secret"), dir.file("server.key")),
                                  (dir.file("server.key_secret"), dir.file("missing.key"))] {
            let r = try runTool(["tail", "--endpoint", dir.ipc("out"), "--curve-cert", cert, "--curve-server-key", serverKey],
                                timeout: 60)
            #expect(r.status == 66 && r.stderr.contains("missing.key"), "\(String(describing: r.status)) \(r.stderr)")
        }
        let help = try runTool(["tail", "--help"], timeout: 60)
        // (Words as argument-parser wraps them: any run of spaces and line breaks read as one space.)
        let words = help.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        let codes = words.components(separatedBy: "Exit codes:").last ?? ""
        for code in ["64 bad", "66 a certificate", "69 the journal", "74 standard output"] {
            #expect(codes.contains(code), "\(code): \(help.stdout)")
        }
    }

    /// A file to be created in a directory that does not exist: the tool said "No such file or directory" of the file
    /// (an operator's audit, session 52); it names the directory.
    @Test("keygen and generate into a missing directory: exit 73 naming the directory that does not exist")
    func createInAMissingDirectory() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.file("not-here")
        let keygen = try runTool(["keygen", "bob", "--dir", missing], timeout: 60)
        #expect(keygen.status == 73 && keygen.stderr.contains("cannot create: the directory \(missing) does not exist; create it first"),
                "\(keygen.stderr)")
        let generate = try runTool(["generate", "--cases", "1", "--days", "1", "--output", missing + "/s.ndjson"], timeout: 60)
        #expect(generate.status == 73 && generate.stderr.contains("cannot create \(missing)/s.ndjson: the directory \(missing) does not exist"),
                "\(generate.stderr)")
        #expect(directoryPart(of: "x") == "." && directoryPart(of: "/x") == "/" && directoryPart(of: "a/b/c") == "a/b")
        // A dangling symbolic link in a directory that exists: not said to be a missing directory (a reviewer,
        // session 52: "the directory . does not exist").
        let link = dir.file("dangling.ndjson")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: missing + "/target")
        let dangling = try runTool(["generate", "--cases", "1", "--days", "1", "--output", link], timeout: 60)
        #expect(dangling.status == 73 && dangling.stderr.contains("cannot create \(link): No such file or directory")
                && !dangling.stderr.contains("does not exist"), "\(dangling.stderr)")
    }

    /// `--speed` waits the stream's gaps: one of 5 s or more is said before it is waited (a scripted replay printed
    /// nothing for minutes and looked hung: an operator's audit, session 52), and one past the longest pause (7 days)
    /// is not waited but said, the events after it paced from it.
    @Test("replay --speed says a pause of 5 s or more before it, and one past 7 days instead of waiting it")
    func replaySpeedSaysItsPauses() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("gaps.ndjson")
        try [Self.event("2026-01-05T10:00:00Z"), Self.event("2026-01-05T10:00:05.200Z"), Self.event("2026-02-04T10:00:05.200Z")]
            .joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runTool(["replay", file, "--endpoint", dir.ipc("nobody"), "--bind", "--speed", "1", "--linger", "0"], timeout: 60)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let pausing = lines.filter { $0.contains("pausing") }
        #expect(pausing.count == 1 && pausing[0].hasPrefix("\(file):2: pausing 5.")
                && pausing[0].hasSuffix(" s before this event (its occurredAt, at --speed 1)"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(file):3: occurredAt is 30.0 days after") && $0.contains("sent without it") }, "\(lines)")
    }

    /// The daemon's three endpoints sit side by side; a replay pointed at its output said only "0 of 1 subscribers
    /// joined", and at its journal asked whether both sides agree on CURVE (a fault tester, session 35).
    @Test("replay pointed at the daemon's output or journal asks whether the endpoint is the daemon's --input")
    func replayToTheWrongEndpoint() throws {
        let dir = try TemporaryDirectory()
        let daemon = try EndpointDaemon(dir: dir, input: dir.ipc("in"), output: dir.ipc("out"), journal: dir.ipc("journal"),
                                        arguments: [])
        let file = dir.file("one.ndjson")
        try (Self.event("2026-01-05T10:00:00Z") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let toOutput = try runTool(["replay", file, "--endpoint", daemon.output, "--wait-subscribers", "1",
                                    "--wait-timeout", "2", "--linger", "0"], timeout: 60)
        #expect(toOutput.status == 69, "\(toOutput.stderr)")
        // Either message libzmq leads to: the connection closed with no failure reported, or a failure without detail.
        #expect(toOutput.stderr.contains("is this the daemon's --input endpoint"), "\(toOutput.stderr)")
        let toJournal = try runTool(["replay", file, "--endpoint", daemon.journal, "--linger", "0"], timeout: 60)
        #expect(toJournal.status == 69, "\(toJournal.stderr)")
        #expect(toJournal.stderr.contains("is this the daemon's --input endpoint"), "\(toJournal.stderr)")
        #expect(daemon.stop() == 0)
    }

    /// Three slips whose messages were the system's raw words, or nothing (a fault tester, session 35).
    @Test("replay of a socket file or of a closed standard input, and generate --output \"\", say what is wrong")
    func slipsSaidPlainly() throws {
        let dir = try TemporaryDirectory()
        let socketPath = dir.file("stale.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = unixAddress(socketPath)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let ofSocket = try runTool(["replay", socketPath, "--endpoint", dir.ipc("pub"), "--bind", "--linger", "0"], timeout: 30)
        #expect(ofSocket.status == 66, "\(ofSocket.stderr)")
        #expect(ofSocket.stderr.contains("is a socket (an ipc:// endpoint?), not a file of events"), "\(ofSocket.stderr)")
        let script = #""$1" replay /dev/stdin --endpoint "$2" --bind --linger 0 <&- 2>&1; echo "stdin $?""#
        let c = try Child("/bin/bash", ["-c", script, "bash", Executables.url("contactwatch").path, dir.ipc("pub2")])
        #expect(c.waitForExit(timeout: 30) == 0)
        #expect(c.stdout.text == "contactwatch replay: /dev/stdin: cannot be read: standard input is closed (give a file, or a pipe into standard input)\nstdin 66\n",
                "\(c.stdout.text)")
        try Self.refused(["generate", "--cases", "1", "--days", "1", "--output", ""], ["--output must not be empty"])
    }

    /// `replay --bind` on a port or path the system chooses never said which it got, so no daemon could be pointed at
    /// it (a fault tester, session 35).
    @Test("replay --bind on port 0 says the address it bound")
    func boundAddressSaid() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("one.ndjson")
        try (Self.event("2026-01-05T10:00:00Z") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runTool(["replay", file, "--endpoint", "tcp://127.0.0.1:0", "--bind", "--linger", "0"], timeout: 60)
        let line = r.stderr.split(separator: "\n").first { $0.hasPrefix("bound tcp://127.0.0.1:0 at tcp://127.0.0.1:") }
        #expect(line.flatMap { Int($0.split(separator: ":").last ?? "") }.map { $0 > 0 } == true, "\(r.stderr)")
    }

    /// Flags that mean something only with another were ignored without it, without a word, and a pipe named twice
    /// was read at its end the second time (a fault tester, session 35).
    @Test("--wait-timeout without --wait-subscribers, --resume-after without --publisher-id, --request-timeout without --journal, the same pipe named twice: exit 64 saying why")
    func flagsThatNeedAnother() throws {
        let dir = try TemporaryDirectory()
        let base = try Self.replayOfOneEvent(dir)
        try Self.refused(base + ["--wait-timeout", "5"], ["--wait-timeout needs --wait-subscribers N"])
        try Self.refused(base + ["--resume-after", "3"], ["--resume-after needs --publisher-id ID"])
        // A position beyond the files is not theirs: nothing sent, and no success for a recovery script (a reviewer).
        try Self.refused(base + ["--publisher-id", "p", "--resume-after", "2", "--linger", "0"],
                         ["--resume-after 2: the files hold only 1 numbered message, so they are not what this publisher sent"])
        try Self.refused(["tail", "--endpoint", dir.ipc("out"), "--request-timeout", "2"], ["--request-timeout needs --journal"])
        let script = """
            echo '{"eventType":"x"}' | "$1" replay /dev/stdin /proc/self/fd/0 --endpoint "$2" --linger 0 2>&1; echo "twice $?"
            """
        let c = try Child("/bin/bash", ["-c", script, "bash", Executables.url("contactwatch").path, dir.ipc("nobody")])
        #expect(c.waitForExit(timeout: 60) == 0, "\(c.stderr.text)")
        #expect(c.stdout.text.contains("/proc/self/fd/0: named twice (as /dev/stdin before), and it is not a regular file")
                    && c.stdout.text.hasSuffix("twice 64\n"), "\(c.stdout.text)")
    }

    /// `replay` of a file of one event, bound at an `ipc://` endpoint in `dir` that nobody subscribes to.
    static func replayOfOneEvent(_ dir: TemporaryDirectory) throws -> [String] {
        let file = dir.file("one.ndjson")
        try (Self.event("2026-01-05T10:00:00Z") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return ["replay", file, "--endpoint", dir.ipc("pub"), "--bind"]
    }

    @Test("replay: --rate and --speed from 0.001 to 1e9, --wait-timeout from 0 to 86400 (1e-12, 1e-300, 1e300, inf crashed it)")
    func replayPaceFlags() throws {
        let dir = try TemporaryDirectory()
        let base = try Self.replayOfOneEvent(dir)
        for value in ["1e-12", "1e-300", "0.0009", "2e9"] {
            try Self.refused(base + ["--rate=\(value)"], ["--rate", "from 0.001 to 1000000000"])
            try Self.refused(base + ["--speed=\(value)"], ["--speed", "from 0.001 to 1000000000"])
        }
        for value in ["1e300", "86401", "-1"] {
            try Self.refused(base + ["--wait-subscribers", "1", "--wait-timeout=\(value)"], ["--wait-timeout", "from 0 to 86400"])
        }
        // The ends of the ranges are taken (one message: no pause at all; nobody subscribes, so it is dropped: 69).
        for flags in [["--rate", "0.001"], ["--rate", "1e9"], ["--speed", "0.001"], ["--speed", "1e9"]] {
            let r = try runTool(base + flags, timeout: 60)
            #expect(r.status == 69, "\(flags): \(r.stderr)")
            #expect(r.stderr.contains("the 1 messages were dropped") && !r.stderr.contains("must be from"), "\(flags): \(r.stderr)")
        }
    }

    /// `Double(_:)` took `--rate 0x10` as 16 messages per second, and `inf`, `nan` and hexadecimal floats too (a
    /// note of session 30). The six fractional flags now take decimal numbers only, and say so naming the flag.
    @Test("the fractional flags take decimal numbers only: 0x10, 0x1p3, inf, nan, 1_0 are refused naming the flag; .5, 2., 1E2, +3 are taken")
    func decimalOnly() throws {
        let dir = try TemporaryDirectory()
        let base = try Self.replayOfOneEvent(dir)
        for value in ["0x10", "0x1p3", "inf", "-inf", "nan", "1_0", "1e", "e3", "1.2.3", "٣"] {
            for flag in ["--rate", "--speed", "--wait-timeout", "--linger"] {
                try Self.refused(base + ["\(flag)=\(value)"], ["'\(flag) <", "'\(value)' is not a decimal number"])
            }
            try Self.refused(["tail", "--endpoint", dir.ipc("out"), "--request-timeout=\(value)"],
                             ["'--request-timeout <", "'\(value)' is not a decimal number"])
            try Self.refused(["generate", "--cases", "1", "--days", "1", "--late-enforcement=\(value)"],
                             ["'--late-enforcement <", "'\(value)' is not a decimal number"])
        }
        // Decimal forms are taken (one message, nobody subscribes: dropped, 69).
        for value in [".5", "2.", "1E2", "+3"] {
            let r = try runTool(base + ["--rate=\(value)"], timeout: 60)
            #expect(r.status == 69 && r.stderr.contains("the 1 messages were dropped"), "--rate=\(value): \(r.stderr)")
        }
    }

    /// A negative number given as the next argument was taken for a flag: "Missing value for '--rate <rate>'" (the
    /// companion tool's auditor, session 25). Now the range, as for `--rate=-1`.
    @Test("a negative number after a numeric flag is refused with the flag's range, not as a missing value")
    func negativeValues() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("one.ndjson")
        try (Self.event("2026-01-05T10:00:00Z") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let replay = ["replay", file, "--endpoint", dir.ipc("pub")]
        try Self.refused(replay + ["--rate", "-1"], ["--rate must be from 0.001"])
        try Self.refused(replay + ["--speed", "-2"], ["--speed must be from 0.001"])
        try Self.refused(replay + ["--loop", "-1"], ["--loop must be 1 or more"])
        try Self.refused(replay + ["--linger", "-1"], ["--linger must be from 0 to 86400"])
        try Self.refused(replay + ["--wait-subscribers", "-1"], ["--wait-subscribers must be 0 or more"])
        try Self.refused(replay + ["--wait-timeout", "-1"], ["--wait-timeout must be from 0 to 86400"])
        try Self.refused(["generate", "--cases", "-5"], ["--cases must be from 1 to 1000000"])
        try Self.refused(["generate", "--days", "-5"], ["--days must be from 1 to 3660"])
        try Self.refused(["tail", "--endpoint", dir.ipc("out"), "--count", "-1"], ["--count must be 1 or more"])
        try Self.refused(["tail", "--endpoint", dir.ipc("out"), "--request-timeout", "-1"], ["--request-timeout must be from 0.001"])
    }

    @Test("replay: a file that opens with a UTF-8 byte order mark (an editor's, a Windows export's) sends its first line; a mark on a later line is still not JSON")
    func replayByteOrderMark() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("bom.ndjson")
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let lines = [Self.event("2026-01-05T10:00:00Z"), Self.event("2026-01-05T11:00:00Z"), Self.event("2026-01-05T12:00:00Z")]
        try Data(bom + Array(lines[0].utf8) + [0x0A] + Array(lines[1].utf8) + [0x0A] + bom + Array(lines[2].utf8) + [0x0A])
            .write(to: URL(fileURLWithPath: file))
        let r = try runTool(["replay", file, "--endpoint", dir.ipc("pub"), "--bind"], timeout: 60)
        #expect(r.status == 69, "\(r.stderr)")  // nobody subscribes: the 2 messages sent are dropped
        #expect(r.stderr.contains("the 2 messages were dropped"), "\(r.stderr)")
        let refused = r.stderr.split(separator: "\n").filter { $0.contains(": not JSON (") }
        #expect(refused.count == 1 && refused.first?.hasPrefix("\(file):3: ") == true, "\(r.stderr)")
    }

    @Test("replay --speed 1: a pause too long to wait (2026 to 9999) is reported with its line and skipped, not a crash")
    func replayHugeGap() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("two.ndjson")
        try [Self.event("2026-01-05T10:00:00Z"), Self.event("9999-12-31T10:00:00Z"), Self.event("9999-12-31T10:00:00Z")]
            .joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runTool(["replay", file, "--endpoint", dir.ipc("pub"), "--bind", "--speed", "1"], timeout: 60)
        // Nobody subscribes: the 3 messages sent are dropped (69).
        #expect(r.status == 69, "status \(r.status.map(String.init) ?? "none"): \(r.stderr)")
        #expect(r.stderr.contains("the 3 messages were dropped"), "\(r.stderr)")
        let reports = r.stderr.split(separator: "\n").filter { $0.contains("sent without it") }
        #expect(reports.count == 1, "\(r.stderr)")
        #expect(reports.first?.hasPrefix("\(file):2: ") == true, "\(r.stderr)")
        #expect(reports.first?.contains("longer than 7.0 days") == true, "\(r.stderr)")
    }

    @Test("generate: a stream that would reach past 9999-12-31 is refused (it wrote year 10000 as 0000); the latest one stays in 9999")
    func generateYear9999() throws {
        let dir = try TemporaryDirectory()
        let output = dir.file("stream.ndjson")
        try Self.refused(["generate", "--cases", "20", "--days", "40", "--start", "9999-12-25", "--output", output],
                         ["--start 9999-12-25", "--days 40", "9999-11-30"])
        #expect(!FileManager.default.fileExists(atPath: output), "refused, yet --output was created")
        try Self.refused(["generate", "--cases", "20", "--days", "31", "--start", "9999-11-01"], ["--start", "--days"])
        // The last day allowed: every time in the stream is in 9999, in order.
        let r = try runTool(["generate", "--cases", "200", "--days", "30", "--start", "9999-11-01", "--output", output], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count > 100)
        let time = try Regex(#""(occurredAt|contactStart|actionAt)":"([0-9]{4})-([0-9]{2}-[0-9]{2}T[0-9:]{8}Z)""#)
        var last = ""
        for line in lines {
            let times = line.matches(of: time)
            #expect(!times.isEmpty, "\(line)")
            for match in times {
                let year = match.output[2].substring.map(String.init) ?? ""
                #expect(year == "9999", "\(line)")
                if match.output[1].substring == "occurredAt" {
                    let at = "\(year)-\(match.output[3].substring ?? "")"
                    #expect(at >= last, "not sorted: \(at) after \(last)")
                    last = at
                }
            }
        }
    }

    @Test("generate --cases and --days: one message with the real range, below it and above it")
    func generateCountsRange() throws {
        for value in ["0", "-1", "1000001", "1000000000"] {
            try Self.refused(["generate", "--cases=\(value)"], ["--cases must be from 1 to 1000000"])
        }
        for value in ["0", "3661"] {
            try Self.refused(["generate", "--days=\(value)"], ["--days must be from 1 to 3660"])
        }
    }

    @Test("tail --request-timeout: the message gives the real range, 0.001 to 86400 seconds")
    func tailRequestTimeoutRange() throws {
        for value in ["1e6", "86401", "0", "-1"] {
            try Self.refused(["tail", "--endpoint", "ipc:///nonexistent/out", "--request-timeout=\(value)"],
                             ["--request-timeout must be from 0.001 to 86400 seconds"])
        }
    }

    @Test("keygen --dir '' is refused (it wrote NAME.key and NAME.key_secret in /)")
    func keygenEmptyDirectory() throws {
        let name = "cw-test-\(UUID().uuidString.prefix(8))"
        defer {
            try? FileManager.default.removeItem(atPath: "/\(name).key")
            try? FileManager.default.removeItem(atPath: "/\(name).key_secret")
        }
        try Self.refused(["keygen", name, "--dir", ""], ["--dir"])
        #expect(!FileManager.default.fileExists(atPath: "/\(name).key"))
    }

    /// Waits until the daemon logs a subscription of exactly `prefix`.
    static func joined(_ daemon: DaemonUnderTest, _ prefix: String) -> Bool {
        daemon.child.stderr.wait(timeout: 30) { $0.contains("prefix=\(prefix) ") && $0.contains("subscriber joined") }
    }

    @Test("tail --topic: at most 502 bytes (469 under CURVE), the longest the daemon takes; one more hung silently")
    func tailTopicLimit() throws {
        let dir = try TemporaryDirectory()
        let plain = try DaemonUnderTest(dir: dir)
        let longest = String(repeating: "a", count: 502)
        try Self.refused(["tail", "--endpoint", plain.output, "--topic", "alert.", "--topic", longest + "b"],
                         ["--topic", "at most 502 bytes", "503"])
        let tail = try Child("contactwatch", ["tail", "--endpoint", plain.output, "--topic", longest])
        #expect(Self.joined(plain, longest), "502 bytes did not join: \(plain.child.stderr.text)\n\(tail.stderr.text)")
        tail.signal(SIGKILL)
        _ = tail.waitForProcessExit(timeout: 10)
        #expect(plain.stop() == 0)

        let curveDir = try TemporaryDirectory()
        let deployment = try Deployment(dir: curveDir, pyzmq: true)
        let curve = try DaemonUnderTest(dir: curveDir, extraArguments: deployment.daemonArguments)
        let keys = ["--curve-cert", deployment.secret("consumer"), "--curve-server-key", deployment.daemonPublic]
        let longestCurve = String(repeating: "c", count: 469)
        try Self.refused(["tail", "--endpoint", curve.output, "--topic", longestCurve + "d"] + keys,
                         ["--topic", "at most 469 bytes under CURVE", "470"])
        let curveTail = try Child("contactwatch", ["tail", "--endpoint", curve.output, "--topic", longestCurve] + keys)
        #expect(Self.joined(curve, longestCurve), "469 bytes did not join: \(curve.child.stderr.text)\n\(curveTail.stderr.text)")
        curveTail.signal(SIGKILL)
        _ = curveTail.waitForProcessExit(timeout: 10)
        #expect(curve.stop() == 0)
    }
}
