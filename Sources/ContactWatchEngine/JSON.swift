#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A strict, allocation-light JSON reader for event bodies.
//
// It validates RFC 8259 syntax (no BOM, no NaN/Infinity, no duplicate keys, no lone surrogate escapes) and
// records every value as a node in a flat array that the reader owns and reuses from one message to the next,
// so decoding an event allocates nothing once the array has grown to the size of a typical body. Nodes hold
// byte offsets into the body; the body is only valid for the duration of one `parse` + inspection.

@usableFromInline
package enum JSONKind: UInt8 {
    case object, array, string, number, `true`, `false`, null
}

@usableFromInline
package struct JSONNode {
    @usableFromInline package var kind: JSONKind
    /// For strings: the body contains escapes. For numbers: the literal is an integer from 1 to 2^53 - 1.
    @usableFromInline package var flag: Bool
    /// Byte offsets: strings exclude the quotes; containers span their brackets.
    @usableFromInline package var start: Int32
    @usableFromInline package var end: Int32
    /// For containers: the number of members (objects) or elements (arrays).
    @usableFromInline var count: Int32
    /// The index of the node after this value's whole subtree.
    @usableFromInline var next: Int32
    /// For safe integers: the value.
    @usableFromInline package var integer: UInt64
}

package struct JSONSyntaxError: Error {
    package var message: String
}

/// Reads one JSON text at a time. Not thread-safe; one per processing thread.
/// Noncopyable: it owns its node storage (grown by doubling, never shrunk, freed with the reader).
/// The companion tool reads its NDJSON lines with it too (`package`), so there is one JSON parser in the project.
package struct JSONReader: ~Copyable {
    /// The nodes of the last parse: `nodeCount` of them from `nodes`, `capacity` allocated.
    private var nodes: UnsafeMutablePointer<JSONNode>
    private var capacity: Int
    private(set) var nodeCount: Int = 0
    private(set) var base: UnsafePointer<UInt8>? = nil
    private var length: Int = 0
    /// The deepest nesting accepted (the engine: 64, RFC 8259 allows a limit).
    let maxDepth: Int
    /// Whether an object may repeat a key (the engine: no, it is a JSON problem; `replay` sends such a line so the
    /// daemon can judge it).
    let acceptsDuplicateKeys: Bool
    static let maxSafeInteger: UInt64 = 9_007_199_254_740_991

    package init(acceptingDuplicateKeys: Bool = false, maxDepth: Int = 64) {
        self.acceptsDuplicateKeys = acceptingDuplicateKeys
        self.maxDepth = maxDepth
        capacity = 64
        nodes = UnsafeMutablePointer<JSONNode>.allocate(capacity: capacity)
    }

    deinit {
        nodes.deallocate()
    }

    /// Appends a node; returns its index.
    @inline(__always) @discardableResult
    private mutating func appendNode(_ n: JSONNode) -> Int {
        if nodeCount == capacity { grow() }
        let idx = nodeCount
        (nodes + idx).initialize(to: n)
        nodeCount = idx + 1
        return idx
    }

    @inline(never)
    private mutating func grow() {
        let bigger = UnsafeMutablePointer<JSONNode>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: nodes, count: nodeCount)
        nodes.deallocate()
        nodes = bigger
        capacity *= 2
    }

    /// Parses `body`. On success node 0 is the root. The buffer must stay alive while nodes are inspected.
    package mutating func parse(_ body: UnsafeRawBufferPointer) -> JSONSyntaxError? {
        nodeCount = 0
        guard let raw = body.baseAddress, body.count > 0 else {
            base = nil
            length = 0
            return JSONSyntaxError(message: "body is empty")
        }
        // Node offsets are Int32 (bodies are limited by input.maxMessageBytes long before that).
        precondition(body.count < Int(Int32.max), "JSON body of \(body.count) bytes")
        let p = raw.assumingMemoryBound(to: UInt8.self)
        base = p
        length = body.count
        var i = skipWhitespace(p, 0)
        if i >= length { return JSONSyntaxError(message: "body is empty") }
        if let e = parseValue(p, &i, depth: 0) { return e }
        i = skipWhitespace(p, i)
        if i != length { return JSONSyntaxError(message: "unexpected data after the JSON value at byte \(i)") }
        return nil
    }

    @inline(__always)
    private func skipWhitespace(_ p: UnsafePointer<UInt8>, _ start: Int) -> Int { JSONReader.skipWhitespace(p, start, length) }

    /// The index of the first byte at or after `start` in `p[..<n]` that is not JSON whitespace (space, tab, LF, CR).
    @inline(__always)
    static func skipWhitespace(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> Int {
        var i = start
        while i < n {
            let c = p[i]
            if c > 0x20 { break }
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i &+= 1 } else { break }
        }
        return i
    }

    private mutating func parseValue(_ p: UnsafePointer<UInt8>, _ i: inout Int, depth: Int) -> JSONSyntaxError? {
        guard i < length else { return JSONSyntaxError(message: "unexpected end of body") }
        switch p[i] {
        case UInt8(ascii: "\""): return parseString(p, &i)
        case UInt8(ascii: "{"): return parseObject(p, &i, depth: depth)
        case UInt8(ascii: "["): return parseArray(p, &i, depth: depth)
        case UInt8(ascii: "t"): return parseLiteral(p, &i, "true", .true)
        case UInt8(ascii: "f"): return parseLiteral(p, &i, "false", .false)
        case UInt8(ascii: "n"): return parseLiteral(p, &i, "null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return parseNumber(p, &i)
        default: return JSONSyntaxError(message: "unexpected character at byte \(i)")
        }
    }

    private mutating func parseLiteral(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ word: StaticString, _ kind: JSONKind) -> JSONSyntaxError? {
        let n = word.utf8CodeUnitCount
        guard i + n <= length, memcmp(p + i, word.utf8Start, n) == 0 else {
            return JSONSyntaxError(message: "invalid literal at byte \(i)")
        }
        let idx = Int32(truncatingIfNeeded: nodeCount)
        appendNode(JSONNode(kind: kind, flag: false, start: Int32(truncatingIfNeeded: i), end: Int32(truncatingIfNeeded: i &+ n),
                            count: 0, next: idx &+ 1, integer: 0))
        i &+= n
        return nil
    }

    private mutating func parseNumber(_ p: UnsafePointer<UInt8>, _ pos: inout Int) -> JSONSyntaxError? {
        guard let number = Self.scanNumber(p, pos, length) else {
            return JSONSyntaxError(message: "invalid number at byte \(pos)")
        }
        appendNode(JSONNode(kind: .number, flag: number.safe, start: Int32(truncatingIfNeeded: pos),
                            end: Int32(truncatingIfNeeded: number.end), count: 0,
                            next: Int32(truncatingIfNeeded: nodeCount &+ 1), integer: number.safe ? number.value : 0))
        pos = number.end
        return nil
    }

    /// The JSON number (RFC 8259) at `start` (where a `-` or a digit is) in `p[..<n]`: where it ends, and whether it is
    /// a safe positive integer (no sign, fraction or exponent, 1 through 2^53 − 1) with its value; nil when it is not
    /// a number. The one number grammar of the project: the tree reader and the event scanner's general and skip paths
    /// read numbers here (its fast path reads the usual short integers itself, `shortInteger`, and leaves the rest here).
    @inline(__always)
    static func scanNumber(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> (end: Int, safe: Bool, value: UInt64)? {
        @inline(__always) func isDigit(_ c: UInt8) -> Bool { c &- 48 < 10 }
        var i = start
        var negative = false
        if p[i] == UInt8(ascii: "-") { negative = true; i &+= 1 }
        guard i < n, isDigit(p[i]) else { return nil }
        var value: UInt64 = 0
        var digits = 0
        if p[i] == UInt8(ascii: "0") {
            i &+= 1
            digits = 1
        } else {
            while i < n, isDigit(p[i]) {
                if digits < 17 { value = value &* 10 &+ UInt64(p[i] &- 48) }
                digits &+= 1
                i &+= 1
            }
        }
        var integral = true
        if i < n, p[i] == UInt8(ascii: ".") {
            integral = false
            i &+= 1
            guard i < n, isDigit(p[i]) else { return nil }
            while i < n, isDigit(p[i]) { i &+= 1 }
        }
        if i < n, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            integral = false
            i &+= 1
            if i < n, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i &+= 1 }
            guard i < n, isDigit(p[i]) else { return nil }
            while i < n, isDigit(p[i]) { i &+= 1 }
        }
        let safe = integral && !negative && digits <= 16 && value >= 1 && value <= maxSafeInteger
        return (i, safe, value)
    }

    @inline(__always) private static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 48...57: return UInt32(c - 48)
        case 65...70: return UInt32(c - 55)
        case 97...102: return UInt32(c - 87)
        default: return nil
        }
    }

    /// The four hex digits at `at` in `p[..<length]`, nil when they are not.
    static func readHex4(_ p: UnsafePointer<UInt8>, _ at: Int, _ length: Int) -> UInt32? {
        guard at + 4 <= length else { return nil }
        var v: UInt32 = 0
        for k in 0..<4 {
            guard let h = hexValue(p[at + k]) else { return nil }
            v = v << 4 | h
        }
        return v
    }

    /// A byte mask with the high bit set in the first byte of `w` (little-endian order) that is `"`, `\\` or below
    /// 0x20; bits above the first flagged byte may be spurious (borrows), so only the lowest one is meaningful.
    @inline(__always) private static func specialBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let q = w ^ (ones &* 0x22)
        let s = w ^ (ones &* 0x5C)
        let quote = (q &- ones) & ~q
        let backslash = (s &- ones) & ~s
        let control = (w &- ones &* 0x20) & ~w
        return (quote | backslash | control) & 0x8080_8080_8080_8080
    }

    /// Parses a string at `pos` (its opening quote). With `key`, stores the key's fingerprint (see `fingerprint`) in
    /// the node's `integer` field (unused for strings).
    @inline(__always)
    private mutating func parseString(_ p: UnsafePointer<UInt8>, _ pos: inout Int, key: Bool = false) -> JSONSyntaxError? {
        let n = length
        let open = pos
        let start = open &+ 1
        var i = start
        var escapes = false
        while true {
            // Skip plain bytes eight at a time.
            while i &+ 8 <= n {
                let m = JSONReader.specialBytes(UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)))
                if m == 0 { i &+= 8; continue }
                i &+= m.trailingZeroBitCount &>> 3
                break
            }
            guard i < n else { return JSONSyntaxError(message: "unterminated string at byte \(open)") }
            let c = p[i]
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { return JSONSyntaxError(message: "control character in string at byte \(i)") }
            if c == UInt8(ascii: "\\") {
                escapes = true
                if let problem = JSONReader.scanEscape(p, &i, open: open, length: n) { return JSONSyntaxError(message: problem) }
                continue
            }
            i &+= 1
        }
        appendNode(JSONNode(kind: .string, flag: escapes, start: Int32(truncatingIfNeeded: start), end: Int32(truncatingIfNeeded: i),
                            count: 0, next: Int32(truncatingIfNeeded: nodeCount &+ 1),
                            integer: key && !escapes ? fingerprint(p, start, i &- start) : 0))
        pos = i &+ 1
        return nil
    }

    /// Validates the escape at `i` (a backslash in the string opened at `open`, in `p[..<length]`) and moves past it;
    /// the problem when it is not a valid escape. The tree reader and the event scanner both check escapes here.
    @inline(never)
    static func scanEscape(_ p: UnsafePointer<UInt8>, _ i: inout Int, open: Int, length: Int) -> String? {
        guard i + 1 < length else { return "unterminated string at byte \(open)" }
        switch p[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 2
        case UInt8(ascii: "u"):
            guard let u = readHex4(p, i + 2, length) else { return "invalid \\u escape at byte \(i)" }
            i += 6
            if u >= 0xD800 && u <= 0xDBFF {
                guard i + 1 < length, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u"),
                      let low = readHex4(p, i + 2, length), low >= 0xDC00 && low <= 0xDFFF
                else { return "lone surrogate escape at byte \(i - 6)" }
                i += 6
            } else if u >= 0xDC00 && u <= 0xDFFF {
                return "lone surrogate escape at byte \(i - 6)"
            }
        default:
            return "invalid escape at byte \(i)"
        }
        return nil
    }

    /// The first (up to) eight bytes of `p[start..<start+count]`, little-endian, zero-padded: keys of equal length
    /// and different fingerprints differ.
    @inline(__always)
    private func fingerprint(_ p: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> UInt64 {
        if start &+ 8 <= length {
            let w = UInt64(littleEndian: UnsafeRawPointer(p + start).loadUnaligned(as: UInt64.self))
            return count >= 8 ? w : w & ((1 &<< UInt64(truncatingIfNeeded: count &* 8)) &- 1)
        }
        var v: UInt64 = 0
        for k in 0..<min(count, 8) { v |= UInt64(p[start + k]) << UInt64(k * 8) }
        return v
    }

    private mutating func parseArray(_ p: UnsafePointer<UInt8>, _ pos: inout Int, depth: Int) -> JSONSyntaxError? {
        guard depth < maxDepth else { return JSONSyntaxError(message: "nested too deeply") }
        var i = pos
        let idx = appendNode(JSONNode(kind: .array, flag: false, start: Int32(truncatingIfNeeded: i), end: 0, count: 0, next: 0, integer: 0))
        i &+= 1
        var count: Int32 = 0
        i = skipWhitespace(p, i)
        if i < length, p[i] == UInt8(ascii: "]") {
            i &+= 1
        } else {
            while true {
                i = skipWhitespace(p, i)
                if let e = parseValue(p, &i, depth: depth + 1) { return e }
                count &+= 1
                i = skipWhitespace(p, i)
                guard i < length else { return JSONSyntaxError(message: "unterminated array") }
                if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if p[i] == UInt8(ascii: "]") { i &+= 1; break }
                return JSONSyntaxError(message: "expected ',' or ']' at byte \(i)")
            }
        }
        pos = i
        nodes[idx].end = Int32(truncatingIfNeeded: i)
        nodes[idx].count = count
        nodes[idx].next = Int32(truncatingIfNeeded: nodeCount)
        return nil
    }

    private mutating func parseObject(_ p: UnsafePointer<UInt8>, _ pos: inout Int, depth: Int) -> JSONSyntaxError? {
        guard depth < maxDepth else { return JSONSyntaxError(message: "nested too deeply") }
        var i = pos
        let idx = appendNode(JSONNode(kind: .object, flag: false, start: Int32(truncatingIfNeeded: i), end: 0, count: 0, next: 0, integer: 0))
        i &+= 1
        var count: Int32 = 0
        i = skipWhitespace(p, i)
        if i < length, p[i] == UInt8(ascii: "}") {
            i &+= 1
        } else {
            while true {
                i = skipWhitespace(p, i)
                guard i < length, p[i] == UInt8(ascii: "\"") else { return JSONSyntaxError(message: "expected a key at byte \(i)") }
                if let e = parseString(p, &i, key: true) { return e }
                i = skipWhitespace(p, i)
                guard i < length, p[i] == UInt8(ascii: ":") else { return JSONSyntaxError(message: "expected ':' at byte \(i)") }
                i &+= 1
                i = skipWhitespace(p, i)
                if let e = parseValue(p, &i, depth: depth + 1) { return e }
                count &+= 1
                i = skipWhitespace(p, i)
                guard i < length else { return JSONSyntaxError(message: "unterminated object") }
                if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if p[i] == UInt8(ascii: "}") { i &+= 1; break }
                return JSONSyntaxError(message: "expected ',' or '}' at byte \(i)")
            }
        }
        pos = i
        nodes[idx].end = Int32(truncatingIfNeeded: i)
        nodes[idx].count = count
        nodes[idx].next = Int32(truncatingIfNeeded: nodeCount)
        if count > 1, !acceptsDuplicateKeys, let dup = duplicateKey(in: Int32(truncatingIfNeeded: idx)) {
            return JSONSyntaxError(message: JSONSyntaxError.duplicateKey(dup))
        }
        return nil
    }

    // MARK: - Keys

    private func duplicateKey(in object: Int32) -> String? {
        let n = Int(nodes[Int(object)].count)
        if n <= 24 {
            // Pairwise, as the first key with a later duplicate is the one reported. Keys are compared by length and
            // fingerprint first; escaped keys (no fingerprint) fall back to comparing decoded bytes.
            return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 24 + 16) { keys -> String? in
                // keys[24..<40] (as 8 words) is a 512-bit set of key hashes: without a collision there is no duplicate.
                let seen = UnsafeMutableRawPointer(keys.baseAddress! + 24)
                for w in 0..<8 { seen.storeBytes(of: 0, toByteOffset: w &* 8, as: UInt64.self) }
                var anyEscaped = false
                var collision = false
                var k = object + 1
                for j in 0..<n {
                    keys[j] = k
                    let key = nodes[Int(k)]
                    anyEscaped = anyEscaped || key.flag
                    let h = ((key.integer ^ UInt64(truncatingIfNeeded: key.end &- key.start)) &* 0x9E37_79B9_7F4A_7C15) &>> 55
                    let word = Int(truncatingIfNeeded: h &>> 6) &* 8, bit: UInt64 = 1 &<< (h & 63)
                    let w = seen.loadUnaligned(fromByteOffset: word, as: UInt64.self)
                    collision = collision || w & bit != 0
                    seen.storeBytes(of: w | bit, toByteOffset: word, as: UInt64.self)
                    k = nodes[Int(k + 1)].next
                }
                if !anyEscaped && !collision { return nil }
                if anyEscaped {
                    for a in 0..<n {
                        for b in (a + 1)..<n where keysEqual(keys[a], keys[b]) { return string(keys[a]) }
                    }
                    return nil
                }
                for a in 0..<(n - 1) {
                    let na = nodes[Int(keys[a])]
                    let la = na.end &- na.start
                    for b in (a + 1)..<n {
                        let nb = nodes[Int(keys[b])]
                        guard na.integer == nb.integer, la == nb.end &- nb.start else { continue }
                        if la <= 8 || bytesEqual(base! + Int(na.start) + 8, base! + Int(nb.start) + 8, count: Int(la) - 8) {
                            return string(keys[a])
                        }
                    }
                }
                return nil
            }
        }
        // Past 24 keys, counted: the same key as the pairwise check reports (the first, in order, that has a later
        // duplicate). It reported the first key that repeats an earlier one, so `{"x":…,"y":…,"y":…,"x":…}` named `x`
        // below 25 members and `y` from 25 (a mutation tester, session 51).
        var keys: [[UInt8]] = []
        keys.reserveCapacity(n)
        var counts: [[UInt8]: Int] = [:]
        var k = object + 1
        for _ in 0..<n {
            let bytes = decodedBytes(k)
            keys.append(bytes)
            counts[bytes, default: 0] += 1
            k = nodes[Int(k + 1)].next
        }
        return keys.first { counts[$0, default: 0] > 1 }.map { String(decoding: $0, as: UTF8.self) }
    }

    private func keysEqual(_ a: Int32, _ b: Int32) -> Bool {
        let na = nodes[Int(a)], nb = nodes[Int(b)]
        if !na.flag && !nb.flag {
            let la = Int(na.end - na.start)
            return la == Int(nb.end - nb.start) && memcmp(base! + Int(na.start), base! + Int(nb.start), la) == 0
        }
        return decodedBytes(a) == decodedBytes(b)
    }

    // MARK: - Inspection

    @inline(__always) package func node(_ i: Int32) -> JSONNode { nodes[Int(i)] }

    /// The raw bytes of a string node without quotes (escapes not decoded).
    @inline(__always) package func rawBytes(_ i: Int32) -> UnsafeRawBufferPointer {
        let n = nodes[Int(i)]
        return UnsafeRawBufferPointer(start: base! + Int(n.start), count: Int(n.end - n.start))
    }

    /// Calls `body` with each member of an object: the key node and the value node.
    @inline(__always)
    package func forEachMember(_ object: Int32, _ body: (_ key: Int32, _ value: Int32) -> Void) {
        var k = object + 1
        for _ in 0..<Int(nodes[Int(object)].count) {
            body(k, k + 1)
            k = nodes[Int(k + 1)].next
        }
    }

    /// Calls `body` with each element of an array.
    @inline(__always)
    func forEachElement(_ array: Int32, _ body: (_ index: Int, _ value: Int32) -> Void) {
        var e = array + 1
        for j in 0..<Int(nodes[Int(array)].count) {
            body(j, e)
            e = nodes[Int(e)].next
        }
    }

    /// Whether a key node equals `name` (a plain ASCII name).
    @inline(__always)
    package func keyEquals(_ key: Int32, _ name: StaticString) -> Bool {
        let n = nodes[Int(key)]
        if n.flag { return decodedBytes(key).elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) }
        let len = Int(n.end - n.start)
        return len == name.utf8CodeUnitCount && (len == 0 || bytesEqual(base! + Int(n.start), name.utf8Start, count: len))
    }

    /// Whether a string node's decoded value equals the given bytes.
    func stringEquals(_ i: Int32, _ other: UnsafeRawBufferPointer) -> Bool {
        let n = nodes[Int(i)]
        if n.flag { return decodedBytes(i).elementsEqual(other) }
        let len = Int(n.end - n.start)
        return len == other.count && (len == 0 || bytesEqual(base! + Int(n.start), other.baseAddress!, count: len))
    }

    /// The decoded UTF-8 bytes of a string node.
    package func decodedBytes(_ i: Int32) -> [UInt8] {
        let n = nodes[Int(i)]
        return JSONReader.unescape(base!, Int(n.start), Int(n.end))
    }

    /// The decoded bytes of the (valid, checked by `scanEscape`) string body `p[start..<end]`.
    static func unescape(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var j = start
        while j < end {
            let c = p[j]
            if c != UInt8(ascii: "\\") { out.append(c); j += 1; continue }
            let e = p[j + 1]
            j += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var u = readHex4(p, j, end)!
                j += 4
                if u >= 0xD800 && u <= 0xDBFF {
                    let low = readHex4(p, j + 2, end)!
                    j += 6
                    u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                }
                appendUTF8(&out, u)
            default: out.append(e)
            }
        }
        return out
    }

    /// The decoded value of a string node.
    func string(_ i: Int32) -> String {
        let n = nodes[Int(i)]
        if !n.flag { return String(decoding: rawBytes(i), as: UTF8.self) }
        return String(decoding: decodedBytes(i), as: UTF8.self)
    }

    /// Calls `body` with the decoded bytes of a string node, without allocating when there are no escapes.
    @inline(__always)
    func withStringBytes<R>(_ i: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if !nodes[Int(i)].flag { return body(rawBytes(i)) }
        let bytes = decodedBytes(i)
        return bytes.withUnsafeBytes(body)
    }
}

func appendUTF8(_ out: inout [UInt8], _ u: UInt32) {
    switch u {
    case 0..<0x80: out.append(UInt8(u))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | (u >> 6)))
        out.append(UInt8(0x80 | (u & 0x3F)))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | (u >> 12)))
        out.append(UInt8(0x80 | ((u >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (u & 0x3F)))
    default:
        out.append(UInt8(0xF0 | (u >> 18)))
        out.append(UInt8(0x80 | ((u >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((u >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (u & 0x3F)))
    }
}

/// Validates UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
package func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let raw = bytes.baseAddress else { return true }
    let p = raw.assumingMemoryBound(to: UInt8.self)
    let n = bytes.count
    var i = 0
    while i < n {
        // Fast path: 32, then eight ASCII bytes at a time.
        while i &+ 32 <= n {
            let q = UnsafeRawPointer(p + i)
            let w = q.loadUnaligned(as: UInt64.self) | q.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                | q.loadUnaligned(fromByteOffset: 16, as: UInt64.self) | q.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            if w & 0x8080_8080_8080_8080 != 0 { break }
            i &+= 32
        }
        if i == n { break }
        if i + 8 <= n {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            if w & 0x8080_8080_8080_8080 == 0 { i += 8; continue }
        }
        let c = p[i]
        if c < 0x80 { i += 1; continue }
        if c >= 0xC2 && c <= 0xDF {
            guard i + 1 < n, p[i + 1] & 0xC0 == 0x80 else { return false }
            i += 2
        } else if c >= 0xE0 && c <= 0xEF {
            guard i + 2 < n else { return false }
            let c1 = p[i + 1], c2 = p[i + 2]
            guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80 else { return false }
            if c == 0xE0 && c1 < 0xA0 { return false }
            if c == 0xED && c1 > 0x9F { return false }
            i += 3
        } else if c >= 0xF0 && c <= 0xF4 {
            guard i + 3 < n else { return false }
            let c1 = p[i + 1], c2 = p[i + 2], c3 = p[i + 3]
            guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80, c3 & 0xC0 == 0x80 else { return false }
            if c == 0xF0 && c1 < 0x90 { return false }
            if c == 0xF4 && c1 > 0x8F { return false }
            i += 4
        } else {
            return false
        }
    }
    return true
}

extension JSONSyntaxError {
    /// The longest part of a duplicate key the message quotes, in UTF-8 bytes.
    static let quotedKeyBytes = 64

    /// `duplicate key "…"`, quoting at most `quotedKeyBytes` of the key (cut on a character, then `…`): the message is
    /// the `invalid-event` notice's `reason`, beside a payload and a topic cut to 4,096 bytes, and quoted whole a key
    /// of megabytes made a notice of megabytes (a bug hunter, session 46). Both decoders word it so.
    static func duplicateKey(_ key: String) -> String {
        guard key.utf8.count > quotedKeyBytes else { return "duplicate key \"\(key)\"" }
        var cut = ""
        var bytes = 0
        for ch in key {
            bytes += ch.utf8.count
            if bytes > quotedKeyBytes { break }
            cut.append(ch)
        }
        return "duplicate key \"\(cut)…\" (\(key.utf8.count) bytes)"
    }
}
