// Fast, allocation-light helpers for NDJSON streams: a chunked line reader, a JSON syntax check
// that also finds a few top-level members, RFC 3339 timestamps, and cheap field look-ups in
// alert bodies.

import ContactWatchCommon
import ContactWatchEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Lines

/// Reads a file line by line in large chunks. Lines are passed without their `\n` (and `\r`).
public struct LineReader {
    public let path: String

    public init(path: String) { self.path = path }

    /// Why `path` cannot be read as a file of lines, in the system's words ("No such file or directory",
    /// "Permission denied", "is a directory"), or nil when it can (a readable regular file, or a readable FIFO or
    /// device, e.g. `/dev/stdin`).
    ///
    /// A socket (an `ipc://` endpoint named as the file, a plausible slip) and a standard input closed when the tool
    /// started (opened on /dev/null since, `StandardDescriptors`) are said as such: the first said "No such device or
    /// address", the second read nothing and exited 0 (a fault tester, session 35).
    public static func unreadableReason(_ path: String) -> String? {
        if StandardDescriptors.closedAtStart.contains(0), ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"].contains(path) {
            return "standard input is closed (give a file, or a pipe into standard input)"
        }
        var st = stat()
        guard stat(path, &st) == 0 else { return String(cString: strerror(errno)) }
        if st.st_mode & S_IFMT == S_IFSOCK { return "is a socket (an ipc:// endpoint?), not a file of events" }
        if FileKind(mode: st.st_mode) == .directory { return "is a directory, not a file of events" }
        return access(path, R_OK) == 0 ? nil : String(cString: strerror(errno))
    }

    /// The longest line read: far above any event (the daemon takes frames up to `input.maxMessageBytes`, 64 KiB by
    /// default). A file with no newline (`/dev/zero`, a binary file) used to be buffered whole, doubling the buffer
    /// until memory ran out.
    public static let maxLineBytes = 16 << 20

    /// Calls `body` with each line and its 1-based number; stops early when `body` returns false. A line of
    /// `maxLineBytes` or more (its newline not counted) is not buffered: `overlong` gets its number as soon as it is known to be one (a stream without
    /// an end such as `/dev/zero` is then said at once), and it is read through to its end without being kept.
    public func forEachLine(overlong: (Int) -> Void = { _ in },
                            _ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Bool) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw ToolError(exitCode: ToolError.noInput, "\(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var filled = 0
        var lineNumber = 0
        var eof = false
        /// Bytes of an overlong line already dropped (nil: not inside one).
        var dropped: Int? = nil
        while !eof {
            if filled == buffer.count {
                if filled >= Self.maxLineBytes {
                    // A line of more than maxLineBytes without its end: dropped as it is read.
                    if dropped == nil {
                        lineNumber += 1
                        overlong(lineNumber)
                    }
                    dropped = (dropped ?? 0) + filled
                    filled = 0
                } else {
                    buffer += [UInt8](repeating: 0, count: buffer.count)
                }
            }
            let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + filled, raw.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ToolError(exitCode: ToolError.ioError, "\(path): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { eof = true } else { filled += n }
            if dropped != nil {
                // Inside an overlong line: look for its end only.
                if let hit = buffer.withUnsafeBytes({ memchr($0.baseAddress!, 0x0A, filled) }) {
                    let end = buffer.withUnsafeBytes { UnsafeRawPointer(hit) - $0.baseAddress! }
                    dropped = nil
                    buffer.withUnsafeMutableBytes { raw in
                        _ = memmove(raw.baseAddress!, raw.baseAddress! + end + 1, filled - end - 1)
                    }
                    filled -= end + 1
                } else if eof {
                    return
                } else {
                    continue
                }
            }
            var keepGoing = true
            let consumed: Int = try buffer.withUnsafeBufferPointer { all in
                var start = 0
                while start < filled {
                    let rest = UnsafeRawPointer(all.baseAddress! + start)
                    var end: Int
                    if let hit = memchr(rest, 0x0A, filled - start) {
                        end = start + (UnsafeRawPointer(hit) - rest)
                    } else if eof {
                        end = filled
                    } else {
                        break
                    }
                    let next = end + 1
                    if end > start && all[end - 1] == 0x0D { end -= 1 }
                    lineNumber += 1
                    // A UTF-8 byte order mark opening the file (an editor's or a Windows export's) is not part of
                    // the first line: without this, that line was refused as not JSON.
                    var first = start
                    if lineNumber == 1, end - start >= 3, all[start] == 0xEF, all[start + 1] == 0xBB, all[start + 2] == 0xBF {
                        first += 3
                    }
                    if !(try body(UnsafeBufferPointer(rebasing: all[first..<end]), lineNumber)) {
                        keepGoing = false
                        return next
                    }
                    start = next
                }
                return min(start, filled)
            }
            if !keepGoing { return }
            if consumed > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + consumed, filled - consumed)
                }
                filled -= consumed
            }
        }
    }
}

// MARK: - JSON lines

/// What `JSONLines.scan` found in one line.
public enum JSONScanOutcome: Equatable {
    /// Not a JSON text (with the reader's reason, which gives the byte offset where there is one).
    case invalid(reason: String)
    /// Valid JSON, but not an object.
    case notObject
    /// A JSON object; see `JSONObjectSummary`.
    case object(JSONObjectSummary)
}

/// A few facts about a top-level JSON object.
public struct JSONObjectSummary: Equatable {
    /// The value of the first top-level `eventType` member when it is a string (escapes decoded).
    public var eventType: [UInt8]?
    /// The value of the first top-level `occurredAt` member when it is a string without escapes.
    public var occurredAt: Range<Int>?
    /// Byte ranges of every top-level member (`"key": value`), when asked for.
    public var members: [Range<Int>] = []
    /// For each member, what its key names, escapes decoded (`"publisher\u0049d"` is `publisherId`, as the daemon
    /// reads it): what `--publisher-id` replaces and where it goes.
    public var keys: [StampKey] = []
}

/// A top-level key as `replay --publisher-id` sees it.
public enum StampKey: Equatable, Sendable {
    /// `occurredAt`: the stamp follows it.
    case occurredAt
    /// `publisherId` or `sequenceNumber`: replaced by the stamp.
    case stamped
    case other
}

/// Reads NDJSON lines with the engine's JSON reader (strict RFC 8259, UTF-8), so the tools and the daemon agree on
/// what JSON is — except that a line may repeat a key and nest up to 512 levels: such a line is still sent, for the
/// daemon to judge. One reader is reused from line to line.
public struct JSONLines: ~Copyable {
    private var reader = JSONReader(acceptingDuplicateKeys: true, maxDepth: 512)

    public init() {}

    /// Scans one line. With `recordMembers` the top-level members' ranges are recorded.
    public mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, recordMembers: Bool = false) -> JSONScanOutcome {
        let raw = UnsafeRawBufferPointer(bytes)
        guard isValidUTF8(raw) else { return .invalid(reason: "not UTF-8") }
        if let e = reader.parse(raw) { return .invalid(reason: e.message) }
        let root = reader.node(0)
        guard root.kind == .object else { return .notObject }
        var summary = JSONObjectSummary()
        reader.forEachMember(0) { key, value in
            let k = reader.node(key), v = reader.node(value)
            if reader.keyEquals(key, "eventType"), summary.eventType == nil, v.kind == .string {
                summary.eventType = reader.decodedBytes(value)
            } else if reader.keyEquals(key, "occurredAt"), summary.occurredAt == nil, v.kind == .string, !v.flag {
                summary.occurredAt = Int(v.start)..<Int(v.end)
            }
            if recordMembers {
                // Strings' nodes exclude their quotes; containers and scalars span their text.
                let end = Int(v.end) + (v.kind == .string ? 1 : 0)
                summary.members.append((Int(k.start) - 1)..<end)
                summary.keys.append(reader.keyEquals(key, "occurredAt") ? .occurredAt
                    : reader.keyEquals(key, "publisherId") || reader.keyEquals(key, "sequenceNumber") ? .stamped : .other)
            }
        }
        return .object(summary)
    }

    /// The top-level members of a JSON object: each key (escapes decoded) with its value's byte range (a string's
    /// with its quotes), first occurrence kept. nil when `bytes` is not a valid JSON object. (`tail --format text`)
    public static func objectMembers(_ bytes: UnsafeBufferPointer<UInt8>) -> [String: Range<Int>]? {
        var reader = JSONReader(acceptingDuplicateKeys: true, maxDepth: 512)
        let raw = UnsafeRawBufferPointer(bytes)
        guard isValidUTF8(raw), reader.parse(raw) == nil, reader.node(0).kind == .object else { return nil }
        var out: [String: Range<Int>] = [:]
        reader.forEachMember(0) { key, value in
            let name = String(decoding: reader.decodedBytes(key), as: UTF8.self)
            let v = reader.node(value)
            let range = v.kind == .string ? (Int(v.start) - 1)..<(Int(v.end) + 1) : Int(v.start)..<Int(v.end)
            if out[name] == nil { out[name] = range }
        }
        return out
    }

    /// The content of the JSON string at `range` (quotes included), escapes decoded; nil when it is not a string.
    public static func stringValue(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        var reader = JSONReader()
        let raw = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[range])
        guard reader.parse(raw) == nil, reader.node(0).kind == .string else { return nil }
        return String(decoding: reader.decodedBytes(0), as: UTF8.self)
    }

    /// `s` as a JSON string literal (quotes included), written by the engine's JSON writer.
    public static func quoted(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        JSONOut.string(&out, s)
        return out
    }
}


// MARK: - Times

/// Milliseconds since 1970 for an RFC 3339 date-time, or nil when it is not one (the engine's parser).
public func rfc3339Milliseconds(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
    RFC3339.parse(UnsafeRawBufferPointer(b))
}

// MARK: - Alert bodies

/// Look-ups in alert bodies produced by the daemon, through the engine's JSON reader (top-level members only).
public enum AlertBody {
    /// The value of the top-level `alertSequence` member when it is an integer.
    public static func alertSequence(_ body: UnsafeRawBufferPointer) -> UInt64? {
        var reader = JSONReader()
        guard reader.parse(body) == nil, reader.node(0).kind == .object else { return nil }
        var found: UInt64? = nil
        reader.forEachMember(0) { key, value in
            guard found == nil, reader.keyEquals(key, "alertSequence") else { return }
            let v = reader.node(value)
            if v.kind == .number, v.flag { found = v.integer }
        }
        return found
    }

    /// The value of the top-level `key` member when it is a string (escapes decoded).
    public static func stringField(_ body: UnsafeRawBufferPointer, _ key: String) -> String? {
        body.withMemoryRebound(to: UInt8.self) { bytes in
            guard let members = JSONLines.objectMembers(bytes), let range = members[key] else { return nil }
            return JSONLines.stringValue(bytes, range)
        }
    }

    /// The topic the daemon publishes an alert body under: `alert.raised.<rule>` / `alert.resolved.<rule>`.
    public static func topic(_ body: UnsafeRawBufferPointer) -> String? {
        guard let eventType = stringField(body, "eventType"), let rule = stringField(body, "rule") else { return nil }
        if eventType.hasSuffix(".raised") { return "alert.raised.\(rule)" }
        if eventType.hasSuffix(".resolved") { return "alert.resolved.\(rule)" }
        return nil
    }
}
