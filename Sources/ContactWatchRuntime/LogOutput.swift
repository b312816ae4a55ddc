import ContactWatchCommon
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

    /// Installs the handler for the process (once, at start).
    public static func bootstrap(level: Logger.Level, format: LogFormat, environment: [String: String]) {
        self.level = level
        let journal = standardErrorIsJournal(environment["JOURNAL_STREAM"])
        LoggingSystem.bootstrap { label in
            ContactWatchLogHandler(label: label, format: format, journalPrefix: journal)
        }
    }

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

    public init(label: String, format: LogFormat, journalPrefix: Bool, fd: Int32 = 2) {
        self.label = label
        self.format = format
        self.journalPrefix = journalPrefix
        self.fd = fd
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
        let level = event.level, message = event.message, source = event.source
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        var out = journalPrefix ? "<\(LogOutput.syslogPriority(level))>" : ""
        switch format {
        case .text:
            if !journalPrefix { out += Self.timestamp() + " " }
            out += "\(level) \(label) :"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                out += " \(Self.textSafe(key))=\(Self.textSafe(value.description))"
            }
            out += " [\(source)] \(Self.textSafe(message.description))\n"
        case .json:
            out += "{\"time\":\(Self.jsonString(Self.timestamp())),\"level\":\(Self.jsonString(level.rawValue))"
            out += ",\"logger\":\(Self.jsonString(label)),\"source\":\(Self.jsonString(source))"
            out += ",\"message\":\(Self.jsonString(message.description))"
            let reserved: Set<String> = ["time", "level", "logger", "source", "message"]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                let name = reserved.contains(key) ? "metadata.\(key)" : key
                out += ",\(Self.jsonString(name)):\(Self.jsonValue(value))"
            }
            out += "}\n"
        }
        Self.write(out, to: fd)
    }

    /// `s` with every control character escaped (`\n`, `\r`, `\t`, else `\xNN` or `\u{NN}`): the text format's
    /// values come from peers too (a consumer's subscription prefix, an event's publisherId, a peer address), and a
    /// newline in one would start a line of the peer's choosing — under the journal with its own `<N>` priority —
    /// and an escape sequence would reach the operator's terminal. A store's own multi-line message (quick_check's
    /// report) stays on its one line too. The JSON format escapes as JSON does.
    static func textSafe(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 }) else { return s }
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
            case 0x80...0x9F: out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// One write(2) per line, so lines from several threads do not interleave.
    static func write(_ line: String, to fd: Int32) {
        var s = line
        // A log line that cannot be written (stderr closed, a full pipe's EPIPE) is dropped; logging never fails.
        s.withUTF8 { _ = writeAll(fd, UnsafeRawBufferPointer($0)) }
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
