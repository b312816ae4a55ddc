import ContactWatchRuntime
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A pipe whose read end collects what a handler wrote.
private final class PipeCapture {
    let readFD: Int32
    let writeFD: Int32
    init() {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        readFD = fds[0]
        writeFD = fds[1]
    }
    /// Closes the write end and returns every byte written.
    func finish() -> String {
        close(writeFD)
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(readFD, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        close(readFD)
        return String(decoding: out, as: UTF8.self)
    }
}

@Suite("Log output")
struct LogOutputTests {
    @Test("syslog priorities follow sd-daemon(3): debug 7 … critical 2")
    func priorities() {
        #expect(LogOutput.syslogPriority(.trace) == 7)
        #expect(LogOutput.syslogPriority(.debug) == 7)
        #expect(LogOutput.syslogPriority(.info) == 6)
        #expect(LogOutput.syslogPriority(.notice) == 5)
        #expect(LogOutput.syslogPriority(.warning) == 4)
        #expect(LogOutput.syslogPriority(.error) == 3)
        #expect(LogOutput.syslogPriority(.critical) == 2)
    }

    @Test("JOURNAL_STREAM matches only the device and inode of the descriptor")
    func journalStreamMatch() throws {
        let path = NSTemporaryDirectory() + "cw-journal-\(UUID().uuidString)"
        let fd = open(path, O_CREAT | O_RDWR, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        var st = stat()
        try #require(fstat(fd, &st) == 0)
        let match = "\(st.st_dev):\(st.st_ino)"
        #expect(LogOutput.standardErrorIsJournal(match, fd: fd))
        #expect(!LogOutput.standardErrorIsJournal("\(st.st_dev):\(st.st_ino + 1)", fd: fd))
        #expect(!LogOutput.standardErrorIsJournal("\(st.st_dev + 1):\(st.st_ino)", fd: fd))
        #expect(!LogOutput.standardErrorIsJournal(nil, fd: fd))
        #expect(!LogOutput.standardErrorIsJournal("", fd: fd))
        #expect(!LogOutput.standardErrorIsJournal("\(st.st_dev)", fd: fd))
        #expect(!LogOutput.standardErrorIsJournal("x:\(st.st_ino)", fd: fd))
        #expect(!LogOutput.standardErrorIsJournal("\(match):1", fd: fd))
    }

    @Test("under the journal each line starts with <N> and has no timestamp; otherwise it starts with the time")
    func textLines() {
        let capture = PipeCapture()
        let journal = ContactWatchLogHandler(label: "contactwatchd", format: .text, journalPrefix: true, fd: capture.writeFD)
        journal.log(event: LogEvent(level: .warning, message: "a peer was refused", metadata: ["socket": "input"], source: "Runtime", file: #file, function: #function, line: #line))
        journal.log(event: LogEvent(level: .info, message: "ready", metadata: nil, source: "Runtime", file: #file, function: #function, line: #line))
        let plain = ContactWatchLogHandler(label: "contactwatchd", format: .text, journalPrefix: false, fd: capture.writeFD)
        plain.log(event: LogEvent(level: .error, message: "oops", metadata: ["b": "2", "a": "1"], source: "Runtime", file: #file, function: #function, line: #line))
        let lines = capture.finish().split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "<4>warning contactwatchd : socket=input [Runtime] a peer was refused")
        #expect(lines[1] == "<6>info contactwatchd : [Runtime] ready")
        // Metadata sorted by key; the line begins with an RFC 3339 UTC time.
        #expect(lines[2].hasSuffix(" error contactwatchd : a=1 b=2 [Runtime] oops"), "\(lines[2])")
        let time = lines[2].split(separator: " ").first.map(String.init) ?? ""
        #expect(time.count == 24 && time.hasSuffix("Z") && time.dropFirst(10).first == "T", "\(time)")
    }

    @Test("text lines keep peer-chosen values on their line: newlines, ESC and C1 controls escaped, in values and messages")
    func textControlCharactersEscaped() {
        let capture = PipeCapture()
        let journal = ContactWatchLogHandler(label: "contactwatchd", format: .text, journalPrefix: true, fd: capture.writeFD)
        // A consumer's subscription prefix and a publisherId, as the fault tester sent them.
        journal.log(event: LogEvent(level: .info, message: "subscriber joined",
                                    metadata: ["prefix": "alert.\n<2>FORGED critical line"], source: "Runtime",
                                    file: #file, function: #function, line: #line))
        journal.log(event: LogEvent(level: .notice, message: "publisher f\r\n2026 critical : FORGED\u{1B}[31m\u{85}\t\u{7F} restarted",
                                    metadata: ["£": "caf\u{E9} \u{1}"], source: "Runtime", file: #file, function: #function, line: #line))
        let text = capture.finish()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 3 && lines[2].isEmpty, "\(lines)")
        #expect(lines[0] == "<6>info contactwatchd : prefix=\"alert.\\\\n<2>FORGED critical line\" [Runtime] subscriber joined")
        #expect(lines[1] == "<5>notice contactwatchd : £=\"café \\\\x01\" [Runtime] publisher f\\r\\n2026 critical : FORGED\\x1b[31m\\u{85}\\t\\x7f restarted",
                "\(lines[1])")
        #expect(!text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) })
    }

    /// A publisherId of `a socket=output key=AAAAAAAA [X] fake` added two fields and a module marker to the line it
    /// was logged in (a security tester, session 44): a value with a space or `"`, or an empty one, is quoted, its quotes
    /// escaped; others (a Z85 key's `=`, an IPv6 address's brackets) are written as they are.
    @Test("text lines quote a metadata value that could read as more fields (a space, a quote) or as none (empty)")
    func textValuesQuoted() {
        let capture = PipeCapture()
        let handler = ContactWatchLogHandler(label: "contactwatchd", format: .text, journalPrefix: true, fd: capture.writeFD)
        handler.log(event: LogEvent(level: .warning, message: "gap",
                                    metadata: ["publisherId": "a socket=output key=AAAAAAAA [X] fake", "expected": "1",
                                               "peer": "[::1]:5555", "key": "a=b[c]", "q": "say \"hi\"", "e": "",
                                               // A backslash could close the quotes where the peer chose (a reviewer,
                                               // session 44): a value with one is quoted, each written \\.
                                               "t": "p q\\", "u": "a\\\" evil=1 [X] fake", "w": "C:\\x"],
                                    source: "Runtime", file: #file, function: #function, line: #line))
        let text = capture.finish()
        #expect(text == "<4>warning contactwatchd : e=\"\" expected=1 key=a=b[c] peer=[::1]:5555 "
                + "publisherId=\"a socket=output key=AAAAAAAA [X] fake\" q=\"say \\\"hi\\\"\" "
                + "t=\"p q\\\\\" u=\"a\\\\\\\" evil=1 [X] fake\" w=\"C:\\\\x\" [Runtime] gap\n", "\(text)")
    }

    /// A right-to-left override made a key read as another, and a line separator is a line break to some viewers (a
    /// fault tester, session 34); other text of the E2 lead byte (typographic quotes, dashes, arrows) is kept.
    @Test("text lines escape the line and paragraph separators and the bidirectional controls; other punctuation is kept")
    func textSeparatorsAndBidiEscaped() {
        let capture = PipeCapture()
        let handler = ContactWatchLogHandler(label: "contactwatchd", format: .text, journalPrefix: false, fd: capture.writeFD)
        handler.log(event: LogEvent(level: .info, message: "a\u{2028}b\u{2029}c\u{202E}d\u{2066}e\u{2069}f\u{200F}\u{061C}\u{200B}\u{AD}\u{FEFF} — “g” → h… café",
                                    metadata: [:], source: "Runtime", file: #file, function: #function, line: #line))
        let text = capture.finish()
        #expect(text.hasSuffix("a\\u{2028}b\\u{2029}c\\u{202e}d\\u{2066}e\\u{2069}f\\u{200f}\\u{61c}\\u{200b}\\u{ad}\\u{feff} — “g” → h… café\n"), "\(text)")
    }

    @Test("--log-format json: one parseable object per line, metadata as fields, reserved names kept apart")
    func jsonLines() throws {
        let capture = PipeCapture()
        let handler = ContactWatchLogHandler(label: "contactwatchd", format: .json, journalPrefix: false, fd: capture.writeFD)
        handler.log(event: LogEvent(level: .notice, message: "quote \" backslash \\ newline \n tab \t bell \u{7}",
                    metadata: ["crn": "X123456", "contactId": "42", "level": "sneaky", "list": ["a", "b"]],
                    source: "Runtime", file: #file, function: #function, line: #line))
        let text = capture.finish()
        #expect(text.hasSuffix("\n") && text.dropLast().contains("\n") == false, "one line: \(text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "notice")
        #expect(object["message"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{7}")
        #expect(object["logger"] as? String == "contactwatchd")
        #expect(object["source"] as? String == "Runtime")
        #expect(object["crn"] as? String == "X123456")
        #expect(object["contactId"] as? String == "42")
        #expect(object["metadata.level"] as? String == "sneaky")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }

    @Test("JSON under the journal keeps the <N> prefix before the object")
    func jsonUnderJournal() {
        let capture = PipeCapture()
        let handler = ContactWatchLogHandler(label: "contactwatchd", format: .json, journalPrefix: true, fd: capture.writeFD)
        handler.log(event: LogEvent(level: .error, message: "x", metadata: nil, source: "s", file: #file, function: #function, line: #line))
        #expect(capture.finish().hasPrefix("<3>{\"time\":"))
    }

    @Test("the level is shared: setting it through one handler changes it for every logger")
    func sharedLevel() {
        let before = LogOutput.level
        defer { LogOutput.level = before }
        var a = ContactWatchLogHandler(label: "a", format: .text, journalPrefix: false)
        let b = ContactWatchLogHandler(label: "b", format: .text, journalPrefix: false)
        a.logLevel = .debug
        #expect(b.logLevel == .debug)
        LogOutput.level = .error
        #expect(a.logLevel == .error && b.logLevel == .error)
    }
}
