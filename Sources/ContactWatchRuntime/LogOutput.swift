import ContactWatchCommon
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How log lines are written to standard error (`log.format`, `--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// One readable line: `<time> <level> <label> : <key=value ...> [<source>] <message>` (swift-log's stream format).
    case text
    /// One JSON object per line (`time`, `level`, `logger`, `source`, `message`, then the metadata), for log shippers.
    case json
}

/// The daemon's log output: a swift-log handler writing one line per record to standard error.
///
/// Under systemd (`JOURNAL_STREAM` names the device and inode of standard error, as systemd sets it when it connects
/// standard error to the journal) every line starts with its syslog priority, `<N>` (sd-daemon(3)), so that
/// `journalctl -p warning` filters by level; the timestamp is left out there, as the journal records its own.
///
/// The level is shared by every logger and can change while the daemon runs (SIGHUP): `LogOutput.level`.
public enum LogOutput {
    private static let levelStorage = Atomic<UInt8>(levelCode(.info))

    /// The level in force for every logger the handler made.
    public static var level: Logger.Level {
        get { levelFromCode(levelStorage.load(ordering: .relaxed)) }
        set { levelStorage.store(levelCode(newValue), ordering: .relaxed) }
    }

    /// The writer thread of standard error, once `bootstrap` ran.
    nonisolated(unsafe) private static var writer: LogWriter?

    /// Installs the handler for the process (once, at start): lines go to standard error through a thread of their
    /// own (`LogWriter`), so that a reader of standard error that stops reading never stops the daemon.
    public static func bootstrap(level: Logger.Level, format: LogFormat, environment: [String: String]) {
        self.level = level
        let journal = standardErrorIsJournal(environment["JOURNAL_STREAM"])
        // The writer's own lines (the refused thread, the lines dropped), as the log's warnings are.
        let warning: @Sendable (String, Logger.Metadata) -> String = { message, metadata in
            ContactWatchLogHandler.render(label: "contactwatchd", format: format, journalPrefix: journal, level: .warning,
                                          message: message, metadata: metadata, source: "ContactWatchRuntime")
        }
        let writer = LogWriter(fd: 2, warningLine: { warning($0, [:]) }) { dropped, seconds in
            warning("standard error was not read: \(dropped) log lines were dropped (the queue of "
                        + "\(LogWriter.defaultLimitBytes / 1024) KiB was full for \(seconds) s)",
                    ["droppedLogLines": "\(dropped)"])
        }
        self.writer = writer
        LoggingSystem.bootstrap { label in
            ContactWatchLogHandler(label: label, format: format, journalPrefix: journal, writer: writer)
        }
    }

    /// Waits, at most `timeout` seconds, until every line logged so far is on standard error (before the process
    /// exits: the last lines say why it stopped). False when standard error is not being read.
    @discardableResult
    public static func flush(timeout: Double) -> Bool { writer?.flush(timeout: timeout) ?? true }

    /// Whether `JOURNAL_STREAM` (`<device>:<inode>`, decimal) names the file standard error is open on.
    public static func standardErrorIsJournal(_ journalStream: String?, fd: Int32 = 2) -> Bool {
        guard let value = journalStream else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }

    /// The syslog priority of a swift-log level (sd-daemon(3) `<N>` prefixes).
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func levelCode(_ level: Logger.Level) -> UInt8 {
        UInt8(Logger.Level.allCases.firstIndex(of: level) ?? 2)
    }

    static func levelFromCode(_ code: UInt8) -> Logger.Level {
        let all = Logger.Level.allCases
        return Int(code) < all.count ? all[Int(code)] : .info
    }
}

/// One line per record on standard error; see `LogOutput`.
public struct ContactWatchLogHandler: LogHandler {
    public let label: String
    public let format: LogFormat
    /// Prefix each line with `<N>` and leave out the timestamp (standard error is the journal).
    public let journalPrefix: Bool
    public var metadata: Logger.Metadata = [:]
    /// Where lines go (standard error; a test may pass another descriptor).
    let fd: Int32
    /// The thread that writes them (the daemon's); nil: written by the logging thread itself (tests).
    let writer: LogWriter?

    public init(label: String, format: LogFormat, journalPrefix: Bool, fd: Int32 = 2) {
        self.label = label
        self.format = format
        self.journalPrefix = journalPrefix
        self.fd = fd
        writer = nil
    }

    init(label: String, format: LogFormat, journalPrefix: Bool, writer: LogWriter) {
        self.label = label
        self.format = format
        self.journalPrefix = journalPrefix
        self.fd = writer.fd
        self.writer = writer
    }

    /// The shared level (`LogOutput.level`): setting it on one logger sets it for all, as a reload wants.
    public var logLevel: Logger.Level {
        get { LogOutput.level }
        set { LogOutput.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        let line = Self.render(label: label, format: format, journalPrefix: journalPrefix, level: event.level,
                               message: event.message.description, metadata: merged, source: event.source)
        if let writer { writer.enqueue(line) } else { Self.write(line, to: fd) }
    }

    /// One record as its line (with its newline), in `format`.
    static func render(label: String, format: LogFormat, journalPrefix: Bool, level: Logger.Level, message: String,
                       metadata merged: Logger.Metadata, source: String) -> String {
        var out = journalPrefix ? "<\(LogOutput.syslogPriority(level))>" : ""
        switch format {
        case .text:
            if !journalPrefix { out += Self.timestamp() + " " }
            out += "\(level) \(label) :"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                out += " \(Self.textSafe(key))=\(Self.quotedIfNeeded(Self.textSafe(value.description)))"
            }
            out += " [\(source)] \(Self.textSafe(message))\n"
        case .json:
            out += "{\"time\":\(Self.jsonString(Self.timestamp())),\"level\":\(Self.jsonString(level.rawValue))"
            out += ",\"logger\":\(Self.jsonString(label)),\"source\":\(Self.jsonString(source))"
            out += ",\"message\":\(Self.jsonString(message))"
            let reserved: Set<String> = ["time", "level", "logger", "source", "message"]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                let name = reserved.contains(key) ? "metadata.\(key)" : key
                out += ",\(Self.jsonString(name)):\(Self.jsonValue(value))"
            }
            out += "}\n"
        }
        return out
    }

    /// `s` with every control character escaped (`\n`, `\r`, `\t`, else `\xNN` or `\u{NN}`): the text format's
    /// values come from peers too (a consumer's subscription prefix, an event's publisherId, a peer address), and a
    /// newline in one would start a line of the peer's choosing — under the journal with its own `<N>` priority —
    /// and an escape sequence would reach the operator's terminal. A store's own multi-line message (quick_check's
    /// report) stays on its one line too. The JSON format escapes as JSON does.
    /// Also the line and paragraph separators (U+2028, U+2029) and the invisible format characters (Unicode's Cf:
    /// the bidirectional controls `contactwatch tail` escapes, zero-width spaces, the soft hyphen, U+FEFF), which a terminal or a log viewer may show as a line break or use to make a key read as another
    /// (a right-to-left override: a fault tester, session 34).
    static func textSafe(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" : "") + hex
            case 0x80...0x9F, 0x2028, 0x2029:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            // Invisible format characters — the bidirectional controls, zero-width space and joiners, the soft hyphen,
            // a byte order mark: `level\u{200B}` printed as `level` in "log.level: unknown key" (a fault tester,
            // session 34), pasted from a web page.
            case _ where scalar.properties.generalCategory == .format:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A text-format metadata value (already `textSafe`) in double quotes, when it is empty or holds a space, `"` or
    /// `\`, with `\` written `\\` and `"` written `\"` inside; as it is otherwise (logfmt's reading: fields are split
    /// at spaces, so `=`, `[` and `]` — in Z85 keys and IPv6 addresses — stay unquoted). Values come from peers (an
    /// event's publisherId, a consumer's subscription prefix), and unquoted `a socket=output key=AAAA [X] fake` added
    /// fields and a module marker of the peer's choosing to the line (a security tester, session 44); a backslash
    /// left as it was inside the quotes let a value ending in one, or holding `\"`, close them where the peer chose
    /// (a reviewer, session 44). So `textSafe`'s escapes read `\\n`, `\\x1b` inside quotes: what a logfmt reader
    /// unquotes is `textSafe`'s text.
    static func quotedIfNeeded(_ v: String) -> String {
        guard v.isEmpty || v.utf8.contains(where: { $0 == 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return v }
        var out = "\""
        for c in v.unicodeScalars {
            if c == "\"" || c == "\\" { out += "\\" }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }

    /// One write(2) (repeated only when the kernel takes part of it) of one or more whole lines.
    static func write(_ line: String, to fd: Int32) {
        var s = line
        // A log line that cannot be written (stderr closed, a full pipe's EPIPE) is dropped; logging never fails.
        s.withUTF8 { _ = writeAll(fd, UnsafeRawBufferPointer($0), waitMilliseconds: 2000) }
    }

    /// UTC, RFC 3339 with milliseconds: `2026-03-04T10:20:00.012Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): jsonString(s)
        case .stringConvertible(let c): jsonString(c.description)
        case .array(let a): "[" + a.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let d):
            "{" + d.sorted(by: { $0.key < $1.key }).map { "\(jsonString($0.key)):\(jsonValue($0.value))" }
                .joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (RFC 8259: quote, backslash and control characters escaped).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Lines on their way to standard error, written by a thread of their own (`cw-log`): the threads that log only queue
/// a line. Standard error is a pipe or socket that can fill (a terminal paused, `| less`, a stalled journald): written
/// by the logging thread itself, a full pipe stopped the processing thread in write(2) — no event read, /healthz
/// failing, and SIGTERM unanswered until someone read the pipe (a fault tester's find at `debug`). Now the queue holds
/// at most `limitBytes` of lines; past that a line is dropped and counted, and once the writer gets through, a
/// `warning` says how many were dropped and for how long.
final class LogWriter: @unchecked Sendable {
    static let defaultLimitBytes = 1 << 20
    static let threadName = "cw-log"

    let fd: Int32
    private let limitBytes: Int
    /// The line that reports `dropped` lines lost over `seconds` seconds.
    private let dropNotice: @Sendable (_ dropped: Int, _ seconds: Int) -> String
    private let condition = MonotonicCondition()
    private var pending: [String] = []
    private var pendingBytes = 0
    private var dropped = 0
    private var firstDrop: ContinuousClock.Instant?
    /// The thread is writing a batch taken from `pending`.
    private var writing = false

    /// Where the thread's writes go instead of `fd` (tests: a sink that blocks, as a full pipe does).
    private let sink: (@Sendable (String) -> Void)?

    /// `startThread` is `SystemThread.start` (a seam for tests); `warningLine` renders the refusal's own line as the
    /// log's `warning`s are (it was plain text whatever the format, with no journald priority: session 53's note).
    init(fd: Int32, limitBytes: Int = LogWriter.defaultLimitBytes, sink: (@Sendable (String) -> Void)? = nil,
         startThread: (String, @escaping @Sendable () -> Void) throws(SystemThread.Refused) -> Void = SystemThread.start,
         warningLine: @Sendable (String) -> String = { $0 + "\n" },
         dropNotice: @escaping @Sendable (_ dropped: Int, _ seconds: Int) -> String) {
        self.fd = fd
        self.limitBytes = limitBytes
        self.sink = sink
        self.dropNotice = dropNotice
        // A thread the system refuses (`SystemThread`: a limit on threads) leaves the lines to be written where they
        // are logged, as before the thread existed (a full pipe then holds the logging thread back): queued for a
        // thread that never ran, every line — the refusal's own included — was lost.
        do {
            try startThread(Self.threadName) { [self] in run() }
        } catch {
            threadless = true
            write(warningLine("\(error): lines are written by the threads that log them"))
        }
    }

    /// The system refused the writing thread: `enqueue` writes.
    private var threadless = false

    /// Queues `line` (with its newline), or drops and counts it when the queue is full.
    func enqueue(_ line: String) {
        condition.lock()
        defer { condition.unlock() }
        if threadless {
            write(line)
            return
        }
        let n = line.utf8.count
        if pendingBytes + n > limitBytes {
            if dropped == 0 { firstDrop = .now }
            dropped += 1
            return
        }
        pending.append(line)
        pendingBytes += n
        condition.signal()
    }

    /// Waits until every line queued so far has been written, at most `timeout` seconds; false when it has not.
    func flush(timeout: Double) -> Bool {
        let deadline = MonotonicCondition.Deadline.after(seconds: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !pending.isEmpty || writing || dropped > 0 {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    private func write(_ chunk: String) {
        if let sink { sink(chunk) } else { ContactWatchLogHandler.write(chunk, to: fd) }
    }

    private func run() {
        while true {
            condition.lock()
            while pending.isEmpty && dropped == 0 { condition.wait() }
            var batch = pending
            pending = []
            pendingBytes = 0
            let lost = dropped, since = firstDrop
            dropped = 0
            firstDrop = nil
            writing = true
            condition.unlock()
            // The dropped lines came after those queued before them: the notice goes after the batch.
            if lost > 0 {
                let seconds = since.map { Int(($0.duration(to: .now)).components.seconds) } ?? 0
                batch.append(dropNotice(lost, seconds))
            }
            // Lines gathered into writes of at most PIPE_BUF (4096) bytes, which a pipe takes whole: a line is never
            // split by another writer of standard error (libdispatch's messages); a longer line goes alone.
            var chunk = ""
            for line in batch {
                if !chunk.isEmpty && chunk.utf8.count + line.utf8.count > 4096 {
                    write(chunk)
                    chunk = ""
                }
                chunk += line
            }
            if !chunk.isEmpty { write(chunk) }
            condition.lock()
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
