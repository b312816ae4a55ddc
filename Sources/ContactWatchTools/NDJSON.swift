// Fast, allocation-light helpers for NDJSON streams: a chunked line reader, a JSON syntax check
// that also finds a few top-level members, RFC 3339 timestamps, and cheap field look-ups in
// alert bodies.

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

    /// Whether `path` names a readable regular file (or a readable FIFO/device, e.g. `/dev/stdin`).
    public static func canRead(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        if (st.st_mode & S_IFMT) == S_IFDIR { return false }
        return access(path, R_OK) == 0
    }

    /// Calls `body` with each line and its 1-based number; stops early when `body` returns false.
    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Bool) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw ToolError(exitCode: ToolError.noInput, "\(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var filled = 0
        var lineNumber = 0
        var eof = false
        while !eof {
            if filled == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
            let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + filled, raw.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ToolError(exitCode: ToolError.ioError, "\(path): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { eof = true } else { filled += n }
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
                    if !(try body(UnsafeBufferPointer(rebasing: all[start..<end]), lineNumber)) {
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

// MARK: - JSON scan

/// What `JSONScan.scan` found in one line.
public enum JSONScanOutcome: Equatable {
    /// Not a JSON text (with the reason and byte offset).
    case invalid(reason: String, offset: Int)
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
    /// For each member, the byte range of its key's content (between the quotes).
    public var keys: [Range<Int>] = []
}

/// A strict RFC 8259 syntax check of one JSON text (UTF-8, no BOM, no NaN/Infinity).
public enum JSONScan {
    static let maxDepth = 512

    /// Scans `bytes`. With `recordMembers` the top-level members' ranges are recorded.
    public static func scan(_ bytes: UnsafeBufferPointer<UInt8>, recordMembers: Bool = false) -> JSONScanOutcome {
        var s = Scanner(b: bytes, recordMembers: recordMembers)
        s.skipWS()
        guard s.i < bytes.count else { return .invalid(reason: "empty", offset: 0) }
        let isObject = bytes[s.i] == UInt8(ascii: "{")
        if let e = s.value(depth: 0, top: true) { return .invalid(reason: e, offset: s.i) }
        s.skipWS()
        if s.i != bytes.count { return .invalid(reason: "unexpected data after the JSON value", offset: s.i) }
        // RFC 8259: UTF-8 text. Only check when a non-ASCII byte is present.
        if bytes.contains(where: { $0 >= 0x80 }), String(validating: bytes, as: UTF8.self) == nil {
            return .invalid(reason: "not UTF-8", offset: 0)
        }
        return isObject ? .object(s.summary) : .notObject
    }

    /// The top-level members of a JSON object: each key (escapes decoded) with its value's byte range, first
    /// occurrence kept. nil when `bytes` is not a valid JSON object.
    public static func objectMembers(_ bytes: UnsafeBufferPointer<UInt8>) -> [String: Range<Int>]? {
        guard case .object(let summary) = scan(bytes, recordMembers: true) else { return nil }
        var out: [String: Range<Int>] = [:]
        for (member, key) in zip(summary.members, summary.keys) {
            var s = Scanner(b: bytes, recordMembers: false)
            s.i = key.upperBound + 1  // after the key's closing quote
            s.skipWS()
            s.i += 1  // ':'
            s.skipWS()
            let name = String(decoding: s.decodeString(key), as: UTF8.self)
            if out[name] == nil { out[name] = s.i..<member.upperBound }
        }
        return out
    }

    /// The content of the JSON string at `range` (quotes included), escapes decoded; nil when it is not a string.
    public static func stringValue(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String? {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\""),
              bytes[range.upperBound - 1] == UInt8(ascii: "\"") else { return nil }
        let s = Scanner(b: bytes, recordMembers: false)
        return String(decoding: s.decodeString((range.lowerBound + 1)..<(range.upperBound - 1)), as: UTF8.self)
    }

    private struct Scanner {
        let b: UnsafeBufferPointer<UInt8>
        let recordMembers: Bool
        var i = 0
        var summary = JSONObjectSummary()

        init(b: UnsafeBufferPointer<UInt8>, recordMembers: Bool) {
            self.b = b
            self.recordMembers = recordMembers
        }

        mutating func skipWS() {
            while i < b.count {
                let c = b[i]
                if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
            }
        }

        mutating func value(depth: Int, top: Bool = false) -> String? {
            guard depth < JSONScan.maxDepth else { return "nested too deeply" }
            skipWS()
            guard i < b.count else { return "unexpected end" }
            switch b[i] {
            case UInt8(ascii: "{"): return object(depth: depth, top: top)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string().error
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }

        mutating func literal(_ word: StaticString) -> String? {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { return "unexpected end" }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { return "invalid literal" }
            i += n
            return nil
        }

        mutating func number() -> String? {
            let start = i
            if i < b.count && b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { return i == start ? "unexpected character" : "invalid number" }
            if b[i] == UInt8(ascii: "0") { i += 1 } else { while i < b.count && isDigit(b[i]) { i += 1 } }
            if i < b.count && b[i] == UInt8(ascii: ".") {
                i += 1
                guard i < b.count, isDigit(b[i]) else { return "invalid number" }
                while i < b.count && isDigit(b[i]) { i += 1 }
            }
            if i < b.count && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
                i += 1
                if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
                guard i < b.count, isDigit(b[i]) else { return "invalid number" }
                while i < b.count && isDigit(b[i]) { i += 1 }
            }
            return nil
        }

        /// Scans a string at `i` (on the quote). Returns its content range and whether it had escapes.
        mutating func string() -> (error: String?, content: Range<Int>, escaped: Bool) {
            i += 1
            let start = i
            var escaped = false
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    let r = start..<i
                    i += 1
                    return (nil, r, escaped)
                }
                if c < 0x20 { return ("control character in string", start..<i, escaped) }
                if c == UInt8(ascii: "\\") {
                    escaped = true
                    i += 1
                    guard i < b.count else { break }
                    switch b[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        guard i + 4 < b.count, (1...4).allSatisfy({ isHex(b[i + $0]) }) else {
                            return ("invalid \\u escape", start..<i, escaped)
                        }
                        i += 5
                    default:
                        return ("invalid escape", start..<i, escaped)
                    }
                    continue
                }
                i += 1
            }
            return ("unterminated string", start..<i, escaped)
        }

        mutating func object(depth: Int, top: Bool) -> String? {
            i += 1
            skipWS()
            if i < b.count && b[i] == UInt8(ascii: "}") { i += 1; return nil }
            while true {
                skipWS()
                guard i < b.count else { return "unexpected end" }
                guard b[i] == UInt8(ascii: "\"") else { return "expected a member name" }
                let memberStart = i
                let key = string()
                if let e = key.error { return e }
                skipWS()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return "expected ':'" }
                i += 1
                skipWS()
                let valueStart = i
                let isString = i < b.count && b[i] == UInt8(ascii: "\"")
                if let e = value(depth: depth + 1) { return e }
                if top {
                    if recordMembers {
                        summary.members.append(memberStart..<i)
                        summary.keys.append(key.content)
                    }
                    if isString && !key.escaped {
                        let content = (valueStart + 1)..<(i - 1)
                        if summary.eventType == nil && equals(key.content, "eventType") {
                            summary.eventType = decodeString(content)
                        } else if summary.occurredAt == nil && equals(key.content, "occurredAt") {
                            summary.occurredAt = content
                        }
                    }
                }
                skipWS()
                guard i < b.count else { return "unexpected end" }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return nil }
                return "expected ',' or '}'"
            }
        }

        mutating func array(depth: Int) -> String? {
            i += 1
            skipWS()
            if i < b.count && b[i] == UInt8(ascii: "]") { i += 1; return nil }
            while true {
                if let e = value(depth: depth + 1) { return e }
                skipWS()
                guard i < b.count else { return "unexpected end" }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return nil }
                return "expected ',' or ']'"
            }
        }

        func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
            guard r.count == s.utf8CodeUnitCount else { return false }
            for k in 0..<r.count where b[r.lowerBound + k] != s.utf8Start[k] { return false }
            return true
        }

        /// The content of an already validated string, escapes decoded.
        func decodeString(_ r: Range<Int>) -> [UInt8] {
            guard b[r].contains(UInt8(ascii: "\\")) else { return Array(b[r]) }
            var scalars = String.UnicodeScalarView()
            var out: [UInt8] = []
            var k = r.lowerBound
            var pendingHigh: UInt32? = nil
            func flushScalars() { out += Array(String(scalars).utf8); scalars = String.UnicodeScalarView() }
            while k < r.upperBound {
                let c = b[k]
                if c != UInt8(ascii: "\\") {
                    if let _ = pendingHigh { scalars.append("\u{FFFD}"); pendingHigh = nil }
                    flushScalars()
                    out.append(c)
                    k += 1
                    continue
                }
                let e = b[k + 1]
                k += 2
                var scalar: UInt32
                switch e {
                case UInt8(ascii: "b"): scalar = 8
                case UInt8(ascii: "f"): scalar = 12
                case UInt8(ascii: "n"): scalar = 10
                case UInt8(ascii: "r"): scalar = 13
                case UInt8(ascii: "t"): scalar = 9
                case UInt8(ascii: "u"):
                    scalar = 0
                    for h in 0..<4 { scalar = scalar << 4 | hexValue(b[k + h]) }
                    k += 4
                default: scalar = UInt32(e)
                }
                if let high = pendingHigh {
                    pendingHigh = nil
                    if (0xDC00...0xDFFF).contains(scalar) {
                        let combined = 0x10000 + ((high - 0xD800) << 10) + (scalar - 0xDC00)
                        scalars.append(Unicode.Scalar(combined) ?? "\u{FFFD}")
                        continue
                    }
                    scalars.append("\u{FFFD}")
                }
                if (0xD800...0xDBFF).contains(scalar) { pendingHigh = scalar; continue }
                scalars.append(Unicode.Scalar(scalar) ?? "\u{FFFD}")
            }
            if pendingHigh != nil { scalars.append("\u{FFFD}") }
            flushScalars()
            return out
        }
    }
}

@inline(__always) fileprivate func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
@inline(__always) fileprivate func isHex(_ c: UInt8) -> Bool {
    isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}
@inline(__always) fileprivate func hexValue(_ c: UInt8) -> UInt32 {
    if isDigit(c) { return UInt32(c - 0x30) }
    if c >= 0x61 { return UInt32(c - 0x61 + 10) }
    return UInt32(c - 0x41 + 10)
}

extension JSONScan {
    /// `s` as a JSON string literal (quotes included).
    public static func quoted(_ s: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }
}

// MARK: - Times

/// Milliseconds since 1970 for an RFC 3339 date-time, or nil when it is not one (the engine's parser).
public func rfc3339Milliseconds(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
    RFC3339.parse(UnsafeRawBufferPointer(b))
}

// MARK: - Alert bodies

/// Cheap look-ups in alert bodies produced by the daemon (no full parse).
public enum AlertBody {
    /// The value of the first `"alertSequence":` number in `body`.
    public static func alertSequence(_ body: UnsafeRawBufferPointer) -> UInt64? {
        guard let at = find(body, "\"alertSequence\"") else { return nil }
        var k = skipToValue(body, at)
        guard k < body.count, isDigit(body[k]) else { return nil }
        var v: UInt64 = 0
        while k < body.count, isDigit(body[k]) {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(body[k] - 0x30))
            if o1 || o2 { return nil }
            v = a
            k += 1
        }
        return v
    }

    /// The value of the first `"key":"..."` string member in `body` (raw, escapes not decoded).
    public static func stringField(_ body: UnsafeRawBufferPointer, _ key: String) -> String? {
        guard let at = find(body, "\"\(key)\"") else { return nil }
        var k = skipToValue(body, at)
        guard k < body.count, body[k] == UInt8(ascii: "\"") else { return nil }
        k += 1
        let start = k
        while k < body.count, body[k] != UInt8(ascii: "\"") {
            if body[k] == UInt8(ascii: "\\") { k += 1 }
            k += 1
        }
        guard k <= body.count else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: body[start..<k]), as: UTF8.self)
    }

    /// The topic the daemon publishes an alert body under: `alert.raised.<rule>` / `alert.resolved.<rule>`.
    public static func topic(_ body: UnsafeRawBufferPointer) -> String? {
        guard let eventType = stringField(body, "eventType"), let rule = stringField(body, "rule") else { return nil }
        if eventType.hasSuffix(".raised") { return "alert.raised.\(rule)" }
        if eventType.hasSuffix(".resolved") { return "alert.resolved.\(rule)" }
        return nil
    }

    /// After the key ending at `at`: skip whitespace, ':' and whitespace.
    private static func skipToValue(_ body: UnsafeRawBufferPointer, _ at: Int) -> Int {
        var k = at
        while k < body.count, body[k] == 0x20 || body[k] == 0x09 || body[k] == 0x0A || body[k] == 0x0D { k += 1 }
        guard k < body.count, body[k] == UInt8(ascii: ":") else { return body.count }
        k += 1
        while k < body.count, body[k] == 0x20 || body[k] == 0x09 || body[k] == 0x0A || body[k] == 0x0D { k += 1 }
        return k
    }

    /// The index just after the first occurrence of `needle` in `body`.
    private static func find(_ body: UnsafeRawBufferPointer, _ needle: String) -> Int? {
        let n = Array(needle.utf8)
        guard let first = n.first, body.count >= n.count, let base = body.baseAddress else { return nil }
        var k = 0
        let lastStart = body.count - n.count
        while k <= lastStart {
            guard let hit = memchr(base + k, Int32(first), lastStart - k + 1) else { return nil }
            k = UnsafeRawPointer(hit) - base
            if memcmp(base + k, n, n.count) == 0 { return k + n.count }
            k += 1
        }
        return nil
    }
}
