import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// `EventScanner` (one pass: UTF-8, JSON syntax, the known members into slots) and `EventDecoder` against
/// 1. the reference path the engine used before (`isValidUTF8` + `JSONReader` + `ReferenceEventDecoder`): the same
///    decision, the same JSON message, and the same decoded event or invalidity on every line
///    (`ScannerDifferential.difference`);
/// 2. Foundation's `JSONSerialization`: the same accept/reject decision, except where events.md (RFC 8259, strict)
///    asks for more: no byte-order mark, no duplicate key, nesting at most 64, no trailing comma — and where
///    Foundation refuses a number that overflows a Double (valid JSON: such a number is simply not an integer).
/// Lines: the spec's examples, the property tests' random streams, and thousands of seeded mutations of them.
@Suite("EventScanner against the reference reader and JSONSerialization", .computing)
struct EventScannerDifferentialTests {
    static func seedLines() throws -> [String] {
        var lines: [String] = []
        for name in Fixtures.exampleNames { lines += try Fixtures.lines("\(name).ndjson") }
        for seed in 1...6 as ClosedRange<UInt64> { lines += generateStream(seed: seed, events: 150, lateEnforcement: seed % 2 == 0) }
        return lines
    }

    /// One scanner reused over `bodies` (so its memos — the prefix memo, the envelope templates — carry from body to
    /// body) against, for each body, a fresh general-path scanner (the state after the scan) and a fresh scanner (the
    /// decoding, with and without a topic; the fresh one is compared with the reference by
    /// `ScannerDifferential.difference`). Returns on how many bodies `hit` held after the reused scanner's scan;
    /// `memo` names the reused scanner in failure messages.
    static func reusedScannerAgrees(_ bodies: [[UInt8]], memo: String, hit: (borrowing EventScanner) -> Bool) -> Int {
        var scanner = EventScanner()
        var hits = 0
        for body in bodies {
            var general = EventScanner()
            general.fastPathEnabled = false
            let (s, g) = body.withUnsafeBytes { b in
                (scanner.stateDescription(scanner.scan(b)), general.stateDescription(general.scan(b)))
            }
            #expect(s == g, "\(String(decoding: body, as: UTF8.self).debugDescription)")
            if hit(scanner) { hits += 1 }
            var fresh = EventScanner()
            for topic in [nil, Array("probation-case.contact.recorded".utf8)] as [[UInt8]?] {
                let (a, b) = body.withUnsafeBytes { raw in
                    topic.map { t in t.withUnsafeBytes { tb in
                        (ScannerDifferential.describe(&scanner, body: raw, topic: tb), ScannerDifferential.describe(&fresh, body: raw, topic: tb))
                    } } ?? (ScannerDifferential.describe(&scanner, body: raw, topic: nil), ScannerDifferential.describe(&fresh, body: raw, topic: nil))
                }
                #expect(a == b, "\(String(decoding: body, as: UTF8.self).debugDescription)\n\(memo): \(a)\nfresh: \(b)")
            }
        }
        return hits
    }

    /// Byte-level and token-level mutations that reach the parser's and decoder's edges.
    static func mutate(_ line: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var b = line
        let pieces: [[UInt8]] = [
            Array("\"".utf8), Array("\\".utf8), Array("{".utf8), Array("}".utf8), Array("[".utf8), Array("]".utf8),
            Array(":".utf8), Array(",".utf8), Array(" ".utf8), Array("\t\n".utf8), Array("null".utf8), Array("true".utf8),
            Array("-".utf8), Array("0".utf8), Array("1e5".utf8), Array(".5".utf8), Array("1e999".utf8), Array("\\u".utf8),
            Array("\\ud83d\\ude00".utf8), Array("\\ud800".utf8), Array("\\udc00".utf8), Array("\\u0041".utf8), Array("\\n".utf8),
            Array("\\x".utf8), [0x01], [0x7F], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xC3], [0xFF],
            [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xEF, 0xBB, 0xBF], Array("9007199254740991".utf8), Array("9007199254740992".utf8),
            Array("00".utf8), Array("\"version\":1,".utf8), Array("\"eventType\":\"x\",".utf8), Array("\"contactId\":5,".utf8),
            Array("\"code\":\"UAAB\",".utf8), Array("\"type\":\"CRN\",".utf8), Array("\"value\":\"X123456\",".utf8),
            Array("\"contact\\u0049d\":7,".utf8), Array("\"a\":1,\"a\":2,".utf8), Array("\"pduCode\":null,".utf8),
            Array("{\"type\":\"CRN\",\"value\":\"A000001\"},".utf8), Array("2026-02-30T10:00:00Z".utf8),
            Array("2026-03-02t10:00:00.123456789+01:00".utf8), Array("2026-03-02 10:00:00Z".utf8),
        ]
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let at = b.isEmpty ? 0 : Int.random(in: 0...b.count, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0 where !b.isEmpty:  // delete a run
                let end = min(b.count, at + Int.random(in: 1...4, using: &rng))
                if at < end { b.removeSubrange(at..<end) }
            case 1 where !b.isEmpty:  // replace one byte
                if at < b.count { b[at] = UInt8.random(in: 0...255, using: &rng) }
            case 2:  // truncate
                b = Array(b.prefix(at))
            case 3:  // escape one letter of a key or value
                if let q = b[at...].firstIndex(where: { $0 >= 0x61 && $0 <= 0x7A }) {
                    let hex = Array(String(format: "\\u%04X", Int(b[q])).utf8)
                    b.replaceSubrange(q...q, with: hex)
                }
            case 4:  // duplicate a member: copy a `"key":value,` span to just after an opening brace
                if let start = b[at...].firstIndex(of: UInt8(ascii: "\"")),
                   let comma = b[start...].firstIndex(of: UInt8(ascii: ",")),
                   let brace = b.firstIndex(of: UInt8(ascii: "{")) {
                    let member = Array(b[start...comma])
                    b.insert(contentsOf: member, at: brace + 1)
                }
            case 5:  // nest
                let depth = Int.random(in: 60...70, using: &rng)
                let value = Array(repeating: UInt8(ascii: "["), count: depth) + Array(repeating: UInt8(ascii: "]"), count: depth)
                if let colon = b[at...].firstIndex(of: UInt8(ascii: ":")), let end = b[colon...].firstIndex(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "}") }) {
                    b.replaceSubrange((colon + 1)..<end, with: value)
                }
            case 6:  // a value becomes null, a number, a string, an object
                if let colon = b[at...].firstIndex(of: UInt8(ascii: ":")), let end = b[colon...].firstIndex(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "}") }) {
                    let value = rng.pick(["null", "1", "0", "-1", "1.0", "\"\"", "\"x\"", "{}", "[]", "true", "false", "{\"code\":null}", "[{}]", "[\"CRN\"]"])
                    b.replaceSubrange((colon + 1)..<end, with: Array(value.utf8))
                }
            case 7:  // whitespace around tokens, a trailing comma, or a byte-order mark in front
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: b.insert(contentsOf: [0xEF, 0xBB, 0xBF], at: 0)
                case 1:
                    if let close = b[at...].firstIndex(where: { $0 == UInt8(ascii: "}") || $0 == UInt8(ascii: "]") }) {
                        b.insert(UInt8(ascii: ","), at: close)
                    }
                default: b.insert(contentsOf: Array(rng.pick([" ", "\n", "\t", "\r", " \n "]).utf8), at: at)
                }
            default:  // insert a piece
                b.insert(contentsOf: rng.pick(pieces), at: at)
            }
        }
        return b
    }

    /// Whether Foundation and the scanner may disagree on this body, and why (nil: they must agree).
    static func allowedDisagreement(_ body: [UInt8], scanner: ScanOutcome, foundation: Bool) -> String? {
        if foundation, case .json(let message) = scanner {
            if body.starts(with: [0xEF, 0xBB, 0xBF]) { return "byte-order mark" }
            if message.hasPrefix("duplicate key"), hasDuplicateKey(body) { return "duplicate key" }
            if message == "nested too deeply", maxDepth(body) > 64 { return "nesting" }
            if let at = message.split(separator: " ").last.flatMap({ Int($0) }),
               message.hasPrefix("expected a key") || message.hasPrefix("unexpected character"),
               let before = body[..<at].lastIndex(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }),
               body[before] == UInt8(ascii: ","), body[at] == UInt8(ascii: "]") || body[at] == UInt8(ascii: "}") {
                return "trailing comma"
            }
        }
        if !foundation, scanner == .ok, hasOverflowingNumber(body) { return "number beyond Double" }
        return nil
    }

    /// Whether any object repeats a key (decoded), found with the reference reader accepting duplicates.
    static func hasDuplicateKey(_ body: [UInt8]) -> Bool {
        var reader = JSONReader(acceptingDuplicateKeys: true, maxDepth: 1000)
        return body.withUnsafeBytes { raw -> Bool in
            guard reader.parse(raw) == nil else { return false }
            var found = false
            for i in 0..<Int32(reader.nodeCount) where reader.node(i).kind == .object {
                var keys = Set<[UInt8]>()
                reader.forEachMember(i) { key, _ in if !keys.insert(reader.decodedBytes(key)).inserted { found = true } }
            }
            return found
        }
    }

    static func maxDepth(_ body: [UInt8]) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for c in body {
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; deepest = max(deepest, depth)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    static func hasOverflowingNumber(_ body: [UInt8]) -> Bool {
        var reader = JSONReader(acceptingDuplicateKeys: true, maxDepth: 1000)
        return body.withUnsafeBytes { raw -> Bool in
            guard reader.parse(raw) == nil else { return false }
            for i in 0..<Int32(reader.nodeCount) where reader.node(i).kind == .number {
                let n = reader.node(i)
                let text = String(decoding: raw[Int(n.start)..<Int(n.end)], as: UTF8.self)
                if let d = Double(text), d.isInfinite { return true }
            }
            return false
        }
    }

    struct Tally {
        var lines = 0, accepted = 0, utf8 = 0, json = 0, foundationOnly: [String: Int] = [:]
    }

    static func check(_ body: [UInt8], topic: [UInt8]?, _ tally: inout Tally) {
        tally.lines += 1
        let difference = body.withUnsafeBytes { b in
            topic.map { t in t.withUnsafeBytes { ScannerDifferential.difference(body: b, topic: $0) } }
                ?? ScannerDifferential.difference(body: b, topic: nil)
        }
        #expect(difference == nil, "\(String(decoding: body, as: UTF8.self).debugDescription)\n\(difference ?? "")")
        var scanner = EventScanner()
        let outcome = body.withUnsafeBytes { scanner.scan($0) }
        switch outcome {
        case .ok: tally.accepted += 1
        case .utf8: tally.utf8 += 1
        case .json: tally.json += 1
        }
        let foundation = (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) != nil
        if foundation != (outcome == .ok) {
            let why = allowedDisagreement(body, scanner: outcome, foundation: foundation)
            #expect(why != nil, "Foundation \(foundation ? "accepts" : "rejects"), scanner says \(outcome): \(String(decoding: body, as: UTF8.self).debugDescription)")
            if let why { tally.foundationOnly[why, default: 0] += 1 }
        }
    }

    @Test("seed lines: same decisions and decoded events as the reference, same syntax decision as JSONSerialization")
    func seeds() throws {
        var tally = Tally()
        var fast = 0
        var scanner = EventScanner()
        for line in try Self.seedLines() {
            let body = Array(line.utf8)
            Self.check(body, topic: nil, &tally)
            Self.check(body, topic: Array("probation-case.contact.recorded".utf8), &tally)
            if body.withUnsafeBytes({ scanner.scan($0) }) == .ok && scanner.lastScanWasFast { fast += 1 }
        }
        #expect(tally.accepted > 1_000)
        // The generated streams are what the fast path is for (ScannerDifferential.difference compares it with the
        // general path on every line checked here and in the mutations).
        #expect(fast > 800, "fast path taken on \(fast) lines")
    }

    @Test("the scanner's fast path leaves exactly the general path's state, or declines")
    func fastPathEdges() {
        let e = #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-03-02T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]},"additionalInformation":"#
        let cases: [(String, Bool)] = [
            (e + #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP"}}"#, true),
            (e + #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP","outcome":{"code":"UAAB","attended":true,"complied":false,"enforceable":true},"sensitive":false}}"#, true),
            (e + #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP","outcome":null,"enforcementAction":null}}"#, true),
            (" \t" + e + " { \"contactId\": 1 ,\n\"contactStart\":\"2026-03-02T10:00:00Z\",\"contactType\":\"CO\u{e9}AP\"}  }\n ", true),
            // (whitespace between a key and its colon: declined)
            (e + "{\"contactId\" :1}}", false),
            (#"{"eventType":"x","personReference":{"identifiers":[{"type":"PNC","value":"1"},{"type":"CRN","value":"X100001"},{"type":"CRN"}]}}"#, true),
            (#"{"eventType":"x","personReference":{"identifiers":[{"value":"1"}]}}"#, true),
            (#"{"eventType":"x","personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]},"additionalInformation":{"registerTypeCode":"A"}}"#, true),
            // The containers one inside the other (read in one loop with a stack of open containers): whitespace
            // wherever the grammar allows it but between a key and its colon, members after a closed container,
            // several identifiers, identifier types that are not strings.
            ("{ \"eventType\":\"x\",\n \"personReference\" :{}}", false),
            ("{\r\n \"eventType\":\"x\",\t\"personReference\": {\n \"identifiers\": [ {\"type\":\"CRN\",\"value\":\"X100001\"} ,\n { \"type\":\"PNC\" , \"value\":\"1\"}\t] } ,"
                + "\"additionalInformation\":{ \"contactId\":1, \"outcome\":{ \"code\":\"X\" } ,\"enforcementAction\":{\"code\":\"IBR\",\"actionAt\":\"2026-03-02T10:00:00Z\"} } } ", true),
            (#"{"personReference":{"identifiers":[{"type":"CRN","value":"X100001"},{"type":"CRN"},{"value":"2"},{"type":1}]}}"#, true),
            // (a root member after others that come later in the list: read in that order, `reorderedRoots`)
            (#"{"personReference":{"identifiers":[{"type":true,"value":"X100001"},{"type":"CRN","value":"X100001"}]},"eventType":"x"}"#, true),
            (#"{"eventType":"x","personReference":{"identifiers":[{"type":null,"value":7}]},"additionalInformation":{"contactId":1}}"#, true),
            (e + #"{"contactId":1,"outcome":{"code":"X","attended":true,"complied":false},"sensitive":true,"pduCode":"N1","teamCode":"T"}}"#, true),
            (e + #"{"outcome":{"code":"X"},"enforcementAction":{"code":"IBR"}}}"#, true),
            (e + #"{"enforcementAction":{"code":"IBR"},"outcome":{"code":"X"}}}"#, false),
            (e + #"{"outcome":{"code":"X"},"contactId":1}}"#, false),
            (e + #"{"outcome":{"code":"X"},"outcome":{"code":"Y"}}}"#, false),
            (e + #"{"outcome":{}}}"#, false), (e + #"{"outcome":{"code":{"a":1}}}}"#, false),
            (e + #"{"outcome":[{"code":"X"}]}}"#, false), (e + #"{"contactId":[1]}}"#, false),
            (#"{"personReference":{"identifiers":{"type":"CRN"}}}"#, false),
            (#"{"personReference":[{"identifiers":[]}]}"#, false),
            (#"{"personReference":{"identifiers":[{"type":{"a":1}}]}}"#, false),
            (#"{"personReference":{"identifiers":[{"type":"CRN"},]}}"#, false),
            (#"{"personReference":{"identifiers":[{"type":"CRN"}}}"#, false),
            (#"{"personReference":{"identifiers":[{"type":"CRN"}]}"#, false),
            (#"{"personReference":{"identifiers":[{"type":"CRN"}]}}}"#, false),
            (#"{"personReference":{"identifiers":[{"type":"CRN"}"#, false),
            // An unknown member: stepped over (`unknownMembers` has the rest).
            (e + #"{"contactId":1,"x":2}}"#, true),
            // Declined: out of order or repeated key, escapes, other numbers, empty containers, other shapes.
            (e + #"{"contactStart":"2026-03-02T10:00:00Z","contactId":1,"contactType":"COAP"}}"#, false),
            (e + #"{"contactId":1,"contactId":2}}"#, false),
            (e + #"{"contactId":1,"contactType":"CO\u0041P"}}"#, false),
            (e + #"{"contactId":0}}"#, false), (e + #"{"contactId":-1}}"#, false), (e + #"{"contactId":1.5}}"#, false),
            (e + #"{"contactId":12345678901234567}}"#, false), (e + #"{}}"#, false),
            (#"{"eventType":"x","personReference":{"identifiers":[]}}"#, false),
            (#"{"eventType":"x","personReference":{"identifiers":[1]}}"#, false),
            (#"{"eventType":{"a":1}}"#, false), (#"{"eventType":[1]}"#, false), ("{\"eventType\":\"a\u{1}\"}", false),
            // Invalid bodies: declined, then the general path's error.
            (e + #"{"contactId":1}"#, false), (e + #"{"contactId":1}}}"#, false), (e + #"{"contactId":1,}}"#, false),
            (#"{"eventType":"x"#, false), (#"{"eventType":tru}"#, false), (#"{"eventType":"x"} x"#, false),
        ]
        var scanner = EventScanner()
        for (text, fast) in cases {
            let body = Array(text.utf8)
            let difference = body.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
            #expect(difference == nil, "\(text.debugDescription)\n\(difference ?? "")")
            _ = body.withUnsafeBytes { scanner.scan($0) }
            let wasFast = scanner.lastScanWasFast
            #expect(wasFast == fast, "\(text.debugDescription)")
        }
        // Invalid UTF-8 in a string value: declined, and the general path reports UTF-8.
        for bytes in [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xC3, 0xA9, 0x80]] as [[UInt8]] {
            let body = Array(#"{"eventType":""#.utf8) + bytes + Array(#""}"#.utf8)
            let difference = body.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
            #expect(difference == nil, "\(bytes)\n\(difference ?? "")")
            let outcome = body.withUnsafeBytes { scanner.scan($0) }
            let wasFast = scanner.lastScanWasFast
            #expect(outcome == .utf8)
            #expect(!wasFast)
        }
    }

    @Test("lastScanWasFast is false after every scan the fast path did not accept, also when it was not tried")
    func lastScanWasFastResets() {
        let fastBody = #"{"eventType":"x","version":1}"#
        var scanner = EventScanner()
        // Each not taken by the fast path: not an object, empty, whitespace only, declined, invalid UTF-8.
        let others: [[UInt8]] = [Array("[1]".utf8), Array(" 5".utf8), [], Array("  ".utf8), Array(#""x""#.utf8),
                                 Array(#"{"eventType":"x","x":1,"x":2}"#.utf8), [0x7B, 0xFF]]
        for other in others {
            _ = Array(fastBody.utf8).withUnsafeBytes { scanner.scan($0) }
            let before = scanner.lastScanWasFast
            #expect(before)
            _ = other.withUnsafeBytes { scanner.scan($0) }
            let after = scanner.lastScanWasFast
            #expect(!after, "\(String(decoding: other, as: UTF8.self).debugDescription)")
        }
        // Turned off: a body the fast path would take is not fast.
        _ = Array(fastBody.utf8).withUnsafeBytes { scanner.scan($0) }
        scanner.fastPathEnabled = false
        _ = Array(fastBody.utf8).withUnsafeBytes { scanner.scan($0) }
        let off = scanner.lastScanWasFast
        #expect(!off)
    }

    @Test("the fast path's integers (eight digits at a time) read as the general path reads them, or decline")
    func fastPathIntegers() {
        var rng = SeededRandom(seed: 21)
        var scanner = EventScanner()
        var fast = 0, declined = 0
        // 1 to 17 digits, each followed by what may end or extend a number, with at least 17 bytes after its first digit
        // (read eight digits at a time) and at the end of the body (digit by digit).
        for digits in 1...17 {
            for end in [",", "}", " ", "\n", ".", ".5", "e", "E5", "0", "x", "\u{e9}", "/", ":", "\u{1}"] {
                for _ in 0..<6 {
                    var number = String(Int.random(in: 1...9, using: &rng))
                    for _ in 1..<digits { number += String(Int.random(in: 0...9, using: &rng)) }
                    if rng.chance(0.2) { number = "1" + String(repeating: "0", count: digits - 1) }
                    if rng.chance(0.2) { number = String(repeating: "9", count: digits) }
                    if digits == 16 && rng.chance(0.3) { number = rng.pick(["9007199254740991", "9007199254740992"]) }
                    // What follows the number: the next member (long), or the closing braces right away (short).
                    func after(_ next: String, _ close: String) -> String {
                        end == "," ? "," + next + close : end == "}" ? close : end + close
                    }
                    let bodies = [
                        #"{"eventType":"x","version":"# + number + after(#""occurredAt":"2026-03-02T11:00:00Z""#, "}"),
                        #"{"eventType":"x","additionalInformation":{"contactId":"# + number
                            + after(#""contactStart":"2026-03-02T10:00:00Z""#, "}}"),
                        #"{"sequenceNumber":"# + number + after(#""personReference":{"identifiers":[{"type":"CRN"}]}"#, "}"),
                    ]
                    for text in bodies {
                        let body = Array(text.utf8)
                        let difference = body.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
                        #expect(difference == nil, "\(text.debugDescription)\n\(difference ?? "")")
                        _ = body.withUnsafeBytes { scanner.scan($0) }
                        let wasFast = scanner.lastScanWasFast
                        if wasFast { fast += 1 } else { declined += 1 }
                        // At most 16 digits ended by `,`, `}` or whitespace: the fast path's.
                        if digits <= 16 && [",", "}", " ", "\n"].contains(end) {
                            #expect(wasFast, "\(text.debugDescription)")
                        }
                    }
                }
            }
        }
        #expect(fast > 1_000 && declined > 1_000, "fast \(fast), declined \(declined)")
    }

    @Test("the prefix memo: a body that begins as the last one did reads its eventType from the memo, with the same state and decoding")
    func prefixMemo() throws {
        let seeds = try Self.seedLines().map { Array($0.utf8) }
        let rest = #","version":1,"occurredAt":"2026-03-02T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]},"additionalInformation":{"registerTypeCode":"RMRH"}}"#
        let contact = #"{"eventType":"probation-case.contact.recorded"# + "\"" + rest
        // Variants around the memo's edges: whitespace inside the prefix, prefixes of 63, 64 and 65 bytes, unlisted and
        // escaped types, no comma after the value, a short body after a long one, one byte changed in the prefix,
        // a prefix whose next member differs.
        let long = String(repeating: "x", count: 64)
        var crafted: [String] = [
            contact, contact, " {\n\"eventType\" : \"probation-case.contact.recorded\" ,\t" + String(rest.dropFirst()),
            " {\n\"eventType\": \"probation-case.contact.recorded\" ,\t" + String(rest.dropFirst()),
            " {\n\"eventType\": \"probation-case.contact.recorded\" ,\t" + String(rest.dropFirst()),
            #"{"eventType":"probation-case.registration.deregistered"# + "\"" + rest,
            #"{"eventType":"probation-case.registration.deregistered"# + "\"" + rest,
            #"{"eventType":"probation-case.registration.deregistered"# + "\"" + #","eventType":"x"}"#,
            #"{"eventType":"probation-case.registration.deregistereD"# + "\"" + rest,
            #"{"eventType":""# + String(long.prefix(47)) + "\"" + rest, #"{"eventType":""# + String(long.prefix(47)) + "\"" + rest,
            #"{"eventType":""# + String(long.prefix(48)) + "\"" + rest, #"{"eventType":""# + String(long.prefix(48)) + "\"" + rest,
            #"{"eventType":""# + String(long.prefix(49)) + "\"" + rest, #"{"eventType":""# + String(long.prefix(49)) + "\"" + rest,
            #"{"eventType":"probation-case.contact.recorded"}"#, #"{"eventType":"probation-case.contact.recorded"}"#,
            contact, #"{"eventType":"probation-case.contact.recorded","x":1}"#,
            contact, #"{"eventType":"probation-case.contact.recorded","version":1}"#,
            contact, #"{"eventType":"probation-case.contact.recorded","eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-03-02T11:00:00Z"}"#,
            contact, #"{"eventType":"probation-case.contact.recorded","version":2,"occurredAt":"2026-03-02T11:00:00Z","personReference":7}"#,
            #"{"eventType":"probation-case.c\u006fntact.recorded"# + "\"" + rest, #"{"eventType":"probation-case.c\u006fntact.recorded"# + "\"" + rest,
            #"{"eventType":"probation-case.contact.recorded\u0000"# + "\"" + rest,
            contact, #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-03-02T11:00:00Z","a"#,
            contact, #"{"eventType":"probation-case.contact.recorde""# + rest,
            #"{"eventType":"probation-case.registration.added"# + "\"" + rest, #"{"eventType":"probation-case.registration.added"# + "\"" + rest,
            "{\"eventType\":\"probation-case.contact.recorded\u{e9}\"" + rest, "{\"eventType\":\"probation-case.contact.recorded\u{e9}\"" + rest,
        ]
        // The second member, version, in the memo too when it is a number followed by a comma within 64 bytes. (A memo
        // without it is not extended while bodies keep matching it.)
        let head = #"{"eventType":"probation-case.contact.recorded","#
        let tail = #""occurredAt":"2026-03-02T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]}}"#
        for version in [#""version":1,"#, #""version":2,"#, #""version":12,"#, #""version":"1","#, #""version": 1 ,"#,
                        #""version" :1,"#, #""version":9007199254740993,"#, #""version":1,"version":1,"#,
                        #""version":1}"#, #""version":1,"eventType":"x","#, #""version":1.0,"#, #""version":null,"#] {
            // Another type first, so that the standard body misses and leaves a memo with version in it.
            crafted += [#"{"eventType":"probation-case.registration.added","# + tail, head + #""version":1,"# + tail,
                        head + version + tail, head + version + tail]
        }
        crafted.append(#"{"eventType":"probation-case.registration.deregistered","version":1,"# + tail)
        crafted.append(#"{"eventType":"probation-case.registration.deregistered","version":1,"# + tail)
        // The memo's offsets are from the root's `{`, wherever it starts.
        crafted += [" " + head + #""version":1,"# + tail, "\n\t " + head + #""version":7,"# + tail, " " + head + #""version":7,"# + tail]
        var rng = SeededRandom(seed: 13)
        var bodies = crafted.map { Array($0.utf8) }
        for k in 0..<4_000 { bodies.append(k % 3 == 2 ? Self.mutate(rng.pick(seeds), &rng) : seeds[k % seeds.count]) }
        let hits = Self.reusedScannerAgrees(bodies, memo: "memo") { $0.knownEventType != 0 }
        #expect(hits > 1_000, "prefix memo hit on \(hits) of \(bodies.count) bodies")
        // The crafted repeats hit it: the same contact prefix twice, with whitespace, 63 and 64 bytes; 65 does not.
        func hitOn(_ texts: [String]) -> [Bool] {
            var scanner = EventScanner()
            // (The prefix memo's own edges: without envelope templates, which would serve the repeats past 64 bytes.)
            scanner.templatesEnabled = false
            return texts.map { text in
                let body = Array(text.utf8)
                _ = body.withUnsafeBytes { scanner.scan($0) }
                return scanner.knownEventType != 0
            }
        }
        #expect(hitOn([contact, contact]) == [false, true])
        #expect(hitOn([crafted[2], crafted[3], crafted[4]]) == [false, false, true])
        #expect(hitOn([crafted[9], crafted[10], crafted[11], crafted[12], crafted[13], crafted[14]]) == [false, true, false, true, false, false])
        #expect(hitOn([crafted[5], crafted[6], crafted[7]]) == [false, true, false])
    }

    @Test("envelope templates: a body that begins as a remembered envelope (other dates and identifier values) leaves the general path's state and decodes the same")
    func envelopeTemplates() throws {
        let seeds = try Self.seedLines().map { Array($0.utf8) }
        func envelope(_ type: String = "probation-case.contact.recorded", at: String = "2026-03-02T11:00:00Z",
                      crn: String = "X100001", noms: String? = nil, extra: String = "") -> String {
            let ids = #"{"type":"CRN","value":""# + crn + "\"}" + (noms.map { #",{"type":"NOMS","value":""# + $0 + "\"}" } ?? "")
            return #"{"eventType":""# + type + #"","version":1,"occurredAt":""# + at + "\"" + extra
                + #","personReference":{"identifiers":["# + ids + #"]},"additionalInformation":"#
        }
        let info = #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP","interviewSetting":"PRIVATE_ROOM"}}"#
        let registration = #"{"registerTypeCode":"RMRH"}}"#
        let long = "probation-case." + String(repeating: "x", count: 300)
        let past256 = EventScanner.templateMax - 256
        var crafted: [String] = [
            // Hits: the same envelope with other dates and values (the holes), four envelopes in turn.
            envelope() + info, envelope(at: "2027-12-31T23:59:59Z", crn: "A999999") + info,
            envelope(noms: "A1234BC") + info, envelope(at: "2026-03-02T11:00:01Z", crn: "B000001", noms: "Z9999ZZ") + info,
            envelope("probation-case.registration.added") + registration,
            envelope("probation-case.registration.added", crn: "C000002") + registration,
            envelope("probation-case.registration.added", noms: "A1234BC") + registration,
            envelope("probation-case.registration.added", crn: "D000003", noms: "B1234BC") + registration,
            envelope(crn: "E000004") + info, envelope(crn: "E000005", noms: "C1234BC") + info,
            // Holes that the fast path reads otherwise, or declines: a quote, a backslash, an escape, a control
            // character, non-ASCII, invalid UTF-8; a value one byte shorter or longer; an invalid date of the same length.
            envelope(crn: "X1000\"1") + info, envelope(crn: "X1000\\1") + info, envelope(crn: #"X1\u00301"#) + info,
            envelope(crn: "X1000\u{01}1") + info, envelope(crn: "X10000\u{e9}") + info, envelope(crn: "X1000\u{7F}1") + info,
            envelope(crn: "X10001") + info, envelope(crn: "X1000011") + info, envelope(at: "2026-13-45T99:00:00Z") + info,
            envelope(at: "2026-03-02T11:00:00\\") + info, envelope(at: #"2026-03-02T11:00\u0030Z"#) + info,
            envelope(noms: "A1234\"C") + info, envelope(noms: "") + info, envelope(crn: "") + info,
            // The fixed bytes: another type, version, key, whitespace, identifier type; members added.
            envelope("probation-case.contact.recordeD") + info, envelope().replacingOccurrences(of: #""version":1"#, with: #""version":2"#) + info,
            envelope().replacingOccurrences(of: #""type":"CRN""#, with: #""type":"CRM""#) + info,
            envelope().replacingOccurrences(of: "personReference", with: "personReferencf") + info,
            envelope().replacingOccurrences(of: ":[", with: ": [") + info,
            envelope(extra: #","publisherId":"p1","sequenceNumber":7"#) + info,
            envelope(extra: #","publisherId":"p1","sequenceNumber":8"#) + info,
            envelope(extra: #","eventType":"x""#) + info, envelope(extra: #","personReference":{}"#) + info,
            // After the envelope: a short rest (the blocks compared would pass the end), nothing, a broken rest.
            envelope() + "{}}", envelope() + "{}", envelope(), envelope() + "{\"contactId\":1}}x", envelope() + info,
            // The longest envelope remembered (`templateMax`, 384 bytes) and one byte more, each twice; at an offset.
            envelope(String(long.prefix(83 + past256))) + info, envelope(String(long.prefix(83 + past256))) + info,
            envelope(String(long.prefix(84 + past256))) + info, envelope(String(long.prefix(84 + past256))) + info,
            " \n" + envelope() + info, "\t" + envelope(crn: "Q000009") + info,
            // Escaped and non-ASCII text in the fixed bytes.
            envelope("probation-case.c\\u006fntact.recorded") + info, envelope("probation-case.c\\u006fntact.recorded") + info,
            envelope("probation-case.contact.recorded\u{e9}") + info, envelope("probation-case.contact.recorded\u{e9}") + info,
            // Three identifiers, two CRNs, the CRN second.
            envelope().replacingOccurrences(of: "]}", with: #",{"type":"PNC","value":"2001/1A"}]}"#) + info,
            envelope().replacingOccurrences(of: "]}", with: #",{"type":"PNC","value":"2001/1B"}]}"#) + info,
            envelope().replacingOccurrences(of: "]}", with: #",{"type":"CRN","value":"Y100001"}]}"#) + info,
            envelope().replacingOccurrences(of: "]}", with: #",{"type":"CRN","value":"Y100002"}]}"#) + info,
            envelope().replacingOccurrences(of: #"[{"type":"CRN","value":"X100001"}"#, with: #"[{"type":"NOMS","value":"A1"},{"type":"CRN","value":"X100001"}"#) + info,
            envelope().replacingOccurrences(of: #"[{"type":"CRN","value":"X100001"}"#, with: #"[{"type":"NOMS","value":"A2"},{"type":"CRN","value":"X100003"}"#) + info,
            envelope().replacingOccurrences(of: #"[{"type":"CRN","value":"X100001"}"#, with: #"[{"value":"X100001","type":"CRN"}"#) + info,
            envelope().replacingOccurrences(of: #"[{"type":"CRN","value":"X100001"}"#, with: #"[{"value":"X100004","type":"CRN"}"#) + info,
        ]
        crafted += crafted.reversed()
        var rng = SeededRandom(seed: 14)
        var bodies = crafted.map { Array($0.utf8) }
        // The generated streams (four envelopes), and mutations of them between (any byte, often in an envelope).
        for k in 0..<5_000 { bodies.append(k % 3 == 2 ? Self.mutate(rng.pick(seeds), &rng) : seeds[k % seeds.count]) }
        let hits = Self.reusedScannerAgrees(bodies, memo: "template") { $0.lastScanUsedTemplate && $0.lastScanWasFast }
        #expect(hits > 2_500, "envelope template used on \(hits) of \(bodies.count) bodies")
        // Which bodies begin from a template, each scanned after `first` by a new scanner: the same envelope with any
        // plain text of the same length in the holes (DEL included, which JSON leaves unescaped; a date checked only
        // later by the decoder); never another byte, a hole the fast path would read otherwise, a body too short for
        // the blocks compared, or an envelope over `templateMax` (384) bytes.
        func used(after first: String, _ second: String) -> Bool {
            var scanner = EventScanner()
            for text in [first, second] { _ = Array(text.utf8).withUnsafeBytes { scanner.scan($0) } }
            return scanner.lastScanUsedTemplate
        }
        let base = envelope() + info
        for (second, expected) in [
            (envelope(at: "2027-12-31T23:59:59Z", crn: "A999999") + info, true), (envelope(crn: "X1000\u{7F}1") + info, true),
            (envelope(at: "2026-13-45T99:00:00Z") + info, true), (" \n" + envelope(crn: "Q000009") + info, true),
            (envelope() + "{\"contactId\":1}}x", true), (envelope() + "{}}", false), (envelope(), false),
            (envelope(crn: "X1000\"1") + info, false), (envelope(crn: "X1000\\1") + info, false),
            (envelope(crn: #"X1\u00301"#) + info, false), (envelope(crn: "X1000\u{01}1") + info, false),
            (envelope(crn: "X10000\u{e9}") + info, false), (envelope(crn: "X10001") + info, false),
            (envelope(crn: "X1000011") + info, false), (envelope(at: "2026-03-02T11:00:00\\") + info, false),
            (envelope(at: #"2026-03-02T11:00\u0030Z"#) + info, false), (envelope(noms: "A1234BC") + info, false),
            (envelope("probation-case.contact.recordeD") + info, false),
            (envelope().replacingOccurrences(of: #""version":1"#, with: #""version":2"#) + info, false),
            (envelope().replacingOccurrences(of: #""type":"CRN""#, with: #""type":"CRM""#) + info, false),
            (envelope().replacingOccurrences(of: ":[", with: ": [") + info, false),
            (envelope(extra: #","publisherId":"p1""#) + info, false), (envelope(extra: #","sequenceNumber":1"#) + info, false),
        ] as [(String, Bool)] {
            #expect(used(after: base, second) == expected, "\(second.debugDescription)")
        }
        let noms = envelope(noms: "A1234BC") + info
        #expect(used(after: noms, envelope(crn: "B000001", noms: "Z9999ZZ") + info))
        #expect(!used(after: noms, envelope(noms: "A1234\"C") + info) && !used(after: noms, envelope(noms: "") + info))
        #expect(!used(after: base, base.replacingOccurrences(of: #"{"type":"CRN","value":"X100001"}"#, with: #"{"value":"X100001","type":"CRN"}"#)))
        // sequenceNumber's digits vary (as many, the first not 0); the publisherId is fixed, and an identifier before
        // the CRN (only the CRN's value and the last value vary).
        let stamped = envelope(extra: #","publisherId":"p1","sequenceNumber":70"#) + info
        for (seq, expected) in [("70", true), ("99", true), ("10", true), ("7", false), ("700", false), ("07", false),
                                ("7.", false), ("7e", false), ("-7", false), ("7 ", false)] {
            #expect(used(after: stamped, stamped.replacingOccurrences(of: ":70", with: ":" + seq)) == expected, "\(seq)")
        }
        #expect(!used(after: stamped, stamped.replacingOccurrences(of: "p1", with: "p2")))
        let nomsFirst = base.replacingOccurrences(of: #"[{"type":"CRN","value":"X100001"}"#, with: #"[{"type":"NOMS","value":"A1"},{"type":"CRN","value":"X100001"}"#)
        #expect(used(after: nomsFirst, nomsFirst.replacingOccurrences(of: "X100001", with: "X100003")))
        #expect(!used(after: nomsFirst, nomsFirst.replacingOccurrences(of: "A1", with: "A2")))
        // `templateMax` (384) bytes up to additionalInformation's `{` are remembered, 385 are not.
        let longType = "probation-case." + String(repeating: "x", count: 300)
        let atMax = envelope(String(longType.prefix(98 + past256))) + info, pastMax = envelope(String(longType.prefix(99 + past256))) + info
        #expect(Array(atMax.utf8).count - Array(info.utf8).count + 1 == EventScanner.templateMax)
        #expect(used(after: atMax, atMax.replacingOccurrences(of: "X100001", with: "X100002")))
        #expect(!used(after: pastMax, pastMax.replacingOccurrences(of: "X100001", with: "X100002")))
        // Escaped text in the fixed bytes: the fast path declines such a body, and it is never a template; non-ASCII
        // text is read by the fast path and can be.
        let escaped = envelope("probation-case.c\\u006fntact.recorded") + info
        #expect(!used(after: escaped, escaped))
        let accented = envelope("probation-case.contact.recorded\u{e9}") + info
        #expect(used(after: accented, accented.replacingOccurrences(of: "X100001", with: "X100002")))
    }

    @Test("one scanner over many bodies (what earlier bodies left in its slots) leaves what a fresh general path leaves")
    func reusedScanner() throws {
        let seeds = try Self.seedLines().map { Array($0.utf8) }
        var rng = SeededRandom(seed: 12)
        var scanner = EventScanner()
        var fast = 0
        for k in 0..<6_000 {
            // Seed lines (mostly the fast path) between mutations (mostly not).
            let body = k % 2 == 0 ? seeds[(k / 2) % seeds.count] : Self.mutate(rng.pick(seeds), &rng)
            var general = EventScanner()
            general.fastPathEnabled = false
            let (s, g) = body.withUnsafeBytes { b in
                (scanner.stateDescription(scanner.scan(b)), general.stateDescription(general.scan(b)))
            }
            #expect(s == g, "\(String(decoding: body, as: UTF8.self).debugDescription)")
            if scanner.lastScanWasFast { fast += 1 }
        }
        #expect(fast > 2_500 && fast < 5_000, "fast path taken on \(fast) bodies")
    }

    @Test("20,000 seeded mutations: same decisions, messages and decoded events as the reference; JSONSerialization agrees but for the documented extras")
    func mutations() throws {
        let seeds = try Self.seedLines().map { Array($0.utf8) }
        var rng = SeededRandom(seed: 11)
        var tally = Tally()
        for _ in 0..<20_000 {
            let body = Self.mutate(rng.pick(seeds), &rng)
            Self.check(body, topic: rng.chance(0.3) ? Array("probation-case.registration.added".utf8) : nil, &tally)
        }
        // The mutations reach every outcome, and each documented difference with Foundation.
        #expect(tally.accepted > 3_000 && tally.json > 3_000 && tally.utf8 > 300, "\(tally)")
        for why in ["byte-order mark", "duplicate key", "nesting", "trailing comma", "number beyond Double"] {
            #expect(tally.foundationOnly[why, default: 0] > 0, "no case of \(why): \(tally)")
        }
    }

    @Test("hand-picked edges: escapes in keys, duplicates behind escapes, surrogates, numbers, nesting, over 24 keys")
    func edges() {
        let e = #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-03-02T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]},"additionalInformation":"#
        let cases: [String] = [
            e + #"{"contact\u0049d":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP"}}"#,
            e + #"{"contactId":1,"contact\u0049d":2,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP"}}"#,
            e + #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"C\u004fAP","outcome":{"c\u006fde":"UAAB","code":"X"}}}"#,
            e + #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP","outcome":{"code":"UAAB"},"outcome":null}}"#,
            #"{"eventType":"probation-case.contact.recorded","personReference":{"identifiers":[{"type":"C\u0052N","value":"X1\u00300001"},{"type":"NOMS"}]}}"#,
            #"{"personReference":{"identifiers":[{"type":"CRN","value":"X100001"},{"type":"CRN"}]}}"#,
            #"{"personReference":{"identifiers":[{"type":"CRN"},{"type":"CRN","value":"X100001"},5]}}"#,
            #"{"personReference":{"identifiers":[{"value":"X100001"},{"type":"CRN","value":"X100001"}]}}"#,
            #"{"personReference":{"identifiers":{"type":"CRN","value":"X100001"}}}"#,
            #"{"a":{"personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]}},"additionalInformation":{"contactId":3}}"#,
            #"{"b":1,"a":1,"c":1,"b":2,"a":2}"#,
            "{" + (0..<30).map { "\"k\($0 % 27)\":\($0)" }.joined(separator: ",") + "}",
            "{" + (0..<30).map { "\"k\(29 - $0)\":\($0)" }.joined(separator: ",") + ",\"k3\":0,\"k1\":1}",
            #"{"publisherId":"p\u00e9","sequenceNumber":9007199254740991,"eventType":"x"}"#,
            #"{"publisherId":"","sequenceNumber":1}"#,
            #"{"eventType":"probation-case.registration.added","a":"\ud83d\ude00","b":"\ud83d","c":1}"#,
            #"{"a":"\udc00"}"#, #"{"a":-0.0e+1,"b":1E2,"c":0,"d":-}"#, "[" + String(repeating: "[", count: 63) + String(repeating: "]", count: 64),
            "[" + String(repeating: "[", count: 64) + String(repeating: "]", count: 65), "\u{FEFF}{}", "{}", "[]", "\"x\"", "12", "",
            " ", "{\"a\":1}  x", "{\"\":1,\"\":2}", "{\"a\\u0000\":1,\"a\\u0000\":1}",
        ]
        var tally = Tally()
        for c in cases {
            Self.check(Array(c.utf8), topic: nil, &tally)
            Self.check(Array(c.utf8), topic: Array("x".utf8), &tally)
        }
    }

    /// Unknown members of every JSON type, inserted into a body just before `"` + `before` + `"` (its first occurrence)
    /// or, with `before` nil, just before the body's last `}`.
    /// A contact event's root members, each as `"name":value`, in the spec's order with the stamps after occurredAt.
    static let rootMembers: [String: String] = [
        "eventType": #""eventType":"probation-case.contact.recorded""#, "version": #""version":1"#,
        "occurredAt": #""occurredAt":"2026-03-02T11:00:00Z""#, "publisherId": #""publisherId":"cw-publisher-01""#,
        "sequenceNumber": #""sequenceNumber":17"#,
        "personReference": #""personReference":{"identifiers":[{"type":"CRN","value":"X100001"}]}"#,
        "additionalInformation": #""additionalInformation":{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP"}"#,
    ]

    /// A body of the members named (from `rootMembers`, or written out when they contain a colon), in that order.
    static func root(_ names: [String]) -> String {
        "{" + names.map { rootMembers[$0] ?? $0 }.joined(separator: ",") + "}"
    }

    @Test("the root's members in another order (the stamps first, last or apart, and others): read by the fast path, the general path's state, the same decoding as in the spec's order")
    func reorderedRoots() {
        let spec = Self.root(["eventType", "version", "occurredAt", "publisherId", "sequenceNumber", "personReference", "additionalInformation"])
        let layouts: [[String]] = [
            ["publisherId", "sequenceNumber", "eventType", "version", "occurredAt", "personReference", "additionalInformation"],
            ["eventType", "version", "occurredAt", "personReference", "additionalInformation", "publisherId", "sequenceNumber"],
            ["publisherId", "eventType", "version", "occurredAt", "personReference", "additionalInformation", "sequenceNumber"],
            ["sequenceNumber", "eventType", "version", "occurredAt", "personReference", "additionalInformation", "publisherId"],
            ["sequenceNumber", "publisherId", "eventType", "version", "occurredAt", "personReference", "additionalInformation"],
            ["eventType", "version", "personReference", "occurredAt", "publisherId", "additionalInformation", "sequenceNumber"],
            ["occurredAt", "eventType", "version", "publisherId", "sequenceNumber", "personReference", "additionalInformation"],
            ["eventType", "occurredAt", "version", "personReference", "additionalInformation", "sequenceNumber", "publisherId"],
            ["additionalInformation", "personReference", "sequenceNumber", "publisherId", "occurredAt", "version", "eventType"],
            ["publisherId", "sequenceNumber", "personReference", "additionalInformation", "eventType", "version", "occurredAt"],
        ]
        var reference = EventScanner()
        let expected = Array(spec.utf8).withUnsafeBytes { ScannerDifferential.describe(&reference, body: $0, topic: nil) }
        #expect(expected.contains("stamp=cw-publisher-01#17") && expected.contains(" contact="), "\(expected)")
        for members in layouts {
            let body = Array(Self.root(members).utf8)
            let difference = body.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
            #expect(difference == nil, "\(members)\n\(difference ?? "")")
            // A new scanner (its first body is declined by scanFast and read again by scanFastReordering), and one
            // already reading reordered roots.
            for warm in [false, true] {
                var scanner = EventScanner()
                if warm { _ = Array(Self.root(layouts[0]).utf8).withUnsafeBytes { scanner.scan($0) } }
                let decoded = body.withUnsafeBytes { ScannerDifferential.describe(&scanner, body: $0, topic: nil) }
                let wasFast = scanner.lastScanWasFast, reordering = scanner.readsReorderedRoots
                #expect(decoded == expected, "\(members)")
                #expect(wasFast, "\(members)")
                #expect(reordering, "\(members)")
            }
        }
        // The stamps' invalid values: the same invalidity in every layout (the general path reads the numbers that
        // are not positive integers).
        for (publisher, sequence) in [("17", "17"), (#""""#, "17"), ("\"" + String(repeating: "p", count: 65) + "\"", "17"),
                                      (#""cw-publisher-01""#, "0"), (#""cw-publisher-01""#, "-3"), (#""cw-publisher-01""#, "1.5"),
                                      (#""cw-publisher-01""#, #""17""#), (#""cw-publisher-01""#, "9007199254740992"),
                                      ("null", "17"), (#""cw-publisher-01""#, "null"), (#""cw-publisher-\u0030""#, "17")] {
            let stamps = ["\"publisherId\":" + publisher, "\"sequenceNumber\":" + sequence]
            var descriptions: Set<String> = []
            for members in [["eventType", "version", "occurredAt"] + stamps + ["personReference", "additionalInformation"],
                            stamps + ["eventType", "version", "occurredAt", "personReference", "additionalInformation"],
                            ["eventType", "version", "occurredAt", "personReference", "additionalInformation"] + stamps] {
                let body = Array(Self.root(members).utf8)
                let difference = body.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
                #expect(difference == nil, "\(members)\n\(difference ?? "")")
                var scanner = EventScanner()
                descriptions.insert(body.withUnsafeBytes { ScannerDifferential.describe(&scanner, body: $0, topic: nil) })
            }
            #expect(descriptions.count == 1, "\(stamps): \(descriptions)")
        }
    }

    @Test("a root member that comes again, also after a null or out of order, or a reordered key with whitespace before its colon: declined, the general path's error or state")
    func reorderedRootsDecline() {
        let rest = ["version", "occurredAt", "personReference", "additionalInformation"]
        let cases: [(members: [String], error: String?)] = [
            (["publisherId", "sequenceNumber", "eventType"] + rest + [#""publisherId":"x""#], "publisherId"),
            (["eventType"] + rest + ["publisherId", "sequenceNumber", #""publisherId":"x""#], "publisherId"),
            ([#""publisherId":null"#, "sequenceNumber", "eventType"] + rest + [#""publisherId":"x""#], "publisherId"),
            (["eventType"] + rest + [#""publisherId":null"#, "sequenceNumber", #""publisherId":null"#], "publisherId"),
            (["eventType"] + rest + ["sequenceNumber", #""sequenceNumber":18"#], "sequenceNumber"),
            (["publisherId", "sequenceNumber", "eventType"] + rest + ["eventType"], "eventType"),
            ([#""eventType":null"#, "publisherId", "sequenceNumber"] + rest + ["eventType"], "eventType"),
            (["sequenceNumber", "eventType"] + rest + [#""version":null"#], "version"),
            (["eventType"] + rest + ["publisherId", "sequenceNumber", "personReference"], "personReference"),
            (["additionalInformation", "eventType", "version", "occurredAt", "personReference", "additionalInformation"], "additionalInformation"),
            (["eventType"] + rest + [#""publisherId" :"x""#, "sequenceNumber"], nil),
        ]
        for (members, error) in cases {
            let text = Self.root(members)
            let body = Array(text.utf8)
            let difference = body.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
            #expect(difference == nil, "\(text)\n\(difference ?? "")")
            var scanner = EventScanner()
            var general = EventScanner()
            general.fastPathEnabled = false
            let outcome = body.withUnsafeBytes { scanner.scan($0) }
            let wasFast = scanner.lastScanWasFast
            let generalOutcome = body.withUnsafeBytes { general.scan($0) }
            #expect(outcome == generalOutcome, "\(text)")
            if let error {
                #expect(outcome == .json("duplicate key \"\(error)\""), "\(text)")
                #expect(!wasFast, "\(text)")
            } else {
                #expect(outcome == .ok, "\(text)")
            }
        }
    }

    @Test("reading reordered roots: on after a body whose root came in another order, off after 256 bodies in a row that did not, off with the fast path")
    func reorderingMode() {
        let first = Array(Self.root(["publisherId", "sequenceNumber", "eventType", "version", "occurredAt", "personReference", "additionalInformation"]).utf8)
        let spec = Array(Self.root(["eventType", "version", "occurredAt", "publisherId", "sequenceNumber", "personReference", "additionalInformation"]).utf8)
        let invalid = Array(#"{"eventType":"x","version":1,"eventType":"y"}"#.utf8)
        var scanner = EventScanner()
        // (Without envelope templates: a template hit replays the state its body left, reordered or not, so such a
        // body does not count as reordered; the mode is then left, and a body the template does not serve enters it again.)
        scanner.templatesEnabled = false
        func scan(_ body: [UInt8]) -> (fast: Bool, reordering: Bool) {
            _ = body.withUnsafeBytes { scanner.scan($0) }
            return (scanner.lastScanWasFast, scanner.readsReorderedRoots)
        }
        #expect(scan(spec) == (true, false))
        #expect(scan(first) == (true, true))
        for _ in 0..<255 { #expect(scan(spec) == (true, true)) }
        // A reordered body keeps it on; one declined before any member came out of order counts as not reordered.
        #expect(scan(first) == (true, true))
        for _ in 0..<254 { _ = scan(spec) }
        #expect(scan(invalid) == (false, true))
        #expect(scan(spec) == (true, false))
        #expect(scan(spec) == (true, false))
        #expect(scan(first) == (true, true))
        scanner.fastPathEnabled = false
        #expect(scan(first) == (false, false))
        scanner.fastPathEnabled = true
        #expect(scan(spec) == (true, false))
    }

    @Test("stamped streams in every layout, with repeated stamps and nulls, and mutations: one scanner over them agrees with the general path and a fresh scanner")
    func reorderedRootsReused() {
        var rng = SeededRandom(seed: 41)
        // The property tests' generated streams (the examples' lines are mostly not the fast path's).
        let seeds = (1...6 as ClosedRange<UInt64>).flatMap { generateStream(seed: $0, events: 150, lateEnforcement: $0 % 2 == 0) }
        var bodies: [[UInt8]] = []
        var number = 0
        for k in 0..<6_000 {
            var line = seeds[k % seeds.count]
            // (Their own stamps, after occurredAt, taken out.)
            if let r = line.range(of: #","publisherId":"gen","sequenceNumber":"#), let comma = line[r.upperBound...].firstIndex(of: ",") {
                line.removeSubrange(r.lowerBound..<comma)
            }
            guard let open = line.firstIndex(of: "{"), line.hasSuffix("}") else { bodies.append(Array(line.utf8)); continue }
            number += 1
            // Mostly valid stamps (the fast path's), and now and then an escaped id, a null, a number that is not one.
            let publisher = rng.pick([#""publisherId":"cw-publisher-01""#, #""publisherId":"cw-publisher-01""#, #""publisherId":"nDelius""#,
                                      #""publisherId":"nDelius""#, #""publisherId":"cw-publisher-\u0041""#, #""publisherId":null"#])
            let sequence = "\"sequenceNumber\":" + rng.pick(["\(number)", "\(number)", "\(number)", "\(number)", "\(number)", "0", "null", "\"\(number)\""])
            var text = line
            switch Int.random(in: 0..<11, using: &rng) {
            case 0: text.insert(contentsOf: publisher + "," + sequence + ",", at: line.index(after: open))
            case 1: text = Self.insertMember(text, publisher + "," + sequence, before: nil)
            case 2: text = Self.insertMember(Self.insertMember(text, publisher, before: "eventType"), sequence, before: nil)
            case 3: text = Self.insertMember(text, publisher + "," + sequence, before: "personReference")
            case 4: text = Self.insertMember(Self.insertMember(text, sequence, before: "version"), publisher, before: nil)
            case 5: text = Self.insertMember(Self.insertMember(text, publisher, before: "eventType"), publisher, before: nil)
            default: text = Self.insertMember(text, publisher + "," + sequence, before: k % 2 == 0 ? "eventType" : nil)
            }
            let body = Array(text.utf8)
            bodies.append(k % 3 == 2 ? Self.mutate(body, &rng) : body)
        }
        let fast = Self.reusedScannerAgrees(bodies, memo: "reordered roots") { $0.lastScanWasFast }
        #expect(fast > 2_000, "fast path on \(fast) of \(bodies.count) bodies")
        var tally = Tally()
        for body in bodies.prefix(2_000) { Self.check(body, topic: nil, &tally) }
        #expect(tally.json > 200, "\(tally)")
    }

    static func insertMember(_ body: String, _ member: String, before key: String?) -> String {
        if let key, let r = body.range(of: "\"" + key + "\"") { return body.replacingCharacters(in: r.lowerBound..<r.lowerBound, with: member + ",") }
        guard let close = body.lastIndex(of: "}") else { return body }
        return body.replacingCharacters(in: close..<close, with: "," + member)
    }

    @Test("members the fast path does not know: stepped over with the general path's state and decision, or declined; duplicates still found")
    func unknownMembers() {
        let body = #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-03-02T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X100001"},{"type":"NOMS","value":"A1234BC"}]},"additionalInformation":{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP","outcome":{"code":"UAAB","attended":true},"enforcementAction":{"code":"IBR","actionAt":"2026-03-02T10:00:00Z"},"sensitive":false}}"#
        // Values the fast path steps over (true) or declines (false: the general path decides, often an error).
        let values: [(String, Bool)] = [
            (#""https://example.invalid/case/1""#, true), (#""""#, true), ("\"caf\u{e9} \u{20AC}\u{1F600}\"", true),
            (#""a\"b\\c\/d\b\f\n\r\t\u0041\ud83d\ude00""#, true), ("0", true), ("-1", true), ("1.5", true), ("-0.0e+1", true),
            ("1E2", true), ("12345678901234567890123", true), ("true", true), ("false", true), ("null", true), ("{}", true),
            ("[]", true), (" { } ", true), ("[ ]", true), (#"{"a":1,"b":[true,{"c":null}],"d":"x"}"#, true),
            (#"[1,"x",[{}],{"contactId":2,"contactId":3}]"#, false), (#"{"a":1,"a":2}"#, false), (#"{"a":{"a":{"a":1}}}"#, true),
            (#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#, true), (#"{"eventType":"x","version":2}"#, true),
            (String(repeating: "[", count: 16) + String(repeating: "]", count: 16), true),
            (String(repeating: "[", count: 17) + String(repeating: "]", count: 17), false),
            (String(repeating: "{\"a\":", count: 16) + "1" + String(repeating: "}", count: 16), true),
            (String(repeating: "[", count: 70) + String(repeating: "]", count: 70), false),
            // Errors: each the general path's message.
            ("01", false), ("1.", false), ("1.e5", false), ("-", false), ("--1", false), ("1e", false), ("1e+", false), ("+1", false),
            (".5", false), ("tru", false), ("nul", false), ("fals", false), ("True", false), ("[1,]", false), (#"{"a":1,}"#, false),
            ("[1 2]", false), (#"{"a" 1}"#, false), (#"{"a":}"#, false), ("{1:2}", false), ("[", false), ("{", false), ("\"x", false),
            (#""\x""#, false), (#""\u12""#, false), (#""\ud800""#, false), (#""\udc00""#, false), (#""\ud800\u0041""#, false),
            ("\"a\u{1}b\"", false), ("\"a\tb\"", false), (#"{"\u0061":1,"a":2}"#, false), ("}", false), ("]", false), ("", false),
        ]
        // Keys: unknown ones of other forms (true: stepped over), and ones that decline: escaped, known ones out of
        // order or repeated, a known one with whitespace before its colon.
        let keys: [(String, Bool)] = [
            ("detailUrl", true), ("", true), ("contact", true), ("contactIdX", true), ("eventTyp", true), ("versio", true),
            ("typ", true), ("values", true), ("cod", true), ("identifier", true), ("additionalInformationX", true),
            ("k\u{e9}y", true), ("a b", true), ("detail\\u0055rl", false), ("contact\\u0049d", false),
        ]
        // Where: before each member of each object the fast path reads, and at each object's end.
        let places: [String?] = ["eventType", "version", "occurredAt", "personReference", "identifiers", "type", "value",
                                 "additionalInformation", "contactId", "contactStart", "outcome", "code", "attended",
                                 "enforcementAction", "actionAt", "sensitive", nil]
        var scanner = EventScanner()
        var tally = Tally()
        var fast = 0, checked = 0
        func check(_ text: String, fast expected: Bool?) {
            let bytes = Array(text.utf8)
            let difference = bytes.withUnsafeBytes { ScannerDifferential.difference(body: $0, topic: nil) }
            #expect(difference == nil, "\(text.debugDescription)\n\(difference ?? "")")
            let outcome = bytes.withUnsafeBytes { scanner.scan($0) }
            let wasFast = scanner.lastScanWasFast
            if let expected { #expect(wasFast == expected, "\(text.debugDescription): \(outcome)") }
            if wasFast { fast += 1 }
            Self.check(bytes, topic: nil, &tally)
            checked += 1
        }
        for place in places {
            for (value, stepped) in values { check(Self.insertMember(body, "\"detailUrl\":" + value, before: place), fast: stepped) }
            for (key, stepped) in keys { check(Self.insertMember(body, "\"" + key + "\":\"x\"", before: place), fast: stepped) }
            // Whitespace around the member; two unknown members; the same unknown key twice in one object (a
            // duplicate: the general path's error); the same key in another object (fine).
            check(Self.insertMember(body, " \n\"detailUrl\" \t: \r[ 1 , { \"a\" : 2 } ] ", before: place), fast: true)
            check(Self.insertMember(body, #""a":1,"b":"y""#, before: place), fast: true)
            check(Self.insertMember(body, #""a":1,"a":"y""#, before: place), fast: false)
            check(Self.insertMember(Self.insertMember(body, #""a":1"#, before: place), #""a":2"#, before: nil), fast: place == nil ? false : nil)
            check(Self.insertMember(body, #""a":{"a":1}"#, before: place), fast: true)
        }
        // The same unknown key in each pair of objects, and twice in one object far apart.
        let objects = ["eventType", "identifiers", "type", "contactId", "code", "actionAt"]
        for a in objects {
            for b in objects {
                check(Self.insertMember(Self.insertMember(body, #""seen":1"#, before: a), #""seen":2"#, before: b), fast: a == b ? false : true)
            }
        }
        // A known key repeated or out of order after an unknown member; a known key with whitespace before its colon.
        for text in [
            body.replacingOccurrences(of: #""version":1,"#, with: #""x":0,"version":1,"eventType":"y","#),
            body.replacingOccurrences(of: #""contactType":"COAP""#, with: #""contactType":"COAP","x":1,"contactId":2"#),
            body.replacingOccurrences(of: #""contactType":"COAP""#, with: #""x":1,"contactType":"COAP","x2":1,"contactType":"COAP""#),
            body.replacingOccurrences(of: #""value":"X100001""#, with: #""x":1,"value" :"X100001""#),
            body.replacingOccurrences(of: #""code":"UAAB""#, with: #""x":1,"code":"UAAB","code":"UAAB""#),
            body.replacingOccurrences(of: #"{"type":"CRN""#, with: #"{"x":1,"type":"CRN","x":2"#),
        ] { check(text, fast: false) }
        // Over 64 keys stepped over in a body: declined, the same decision.
        let many = (0..<70).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        check(Self.insertMember(body, many, before: "contactId"), fast: false)
        check(Self.insertMember(body, (0..<60).map { "\"k\($0)\":\($0)" }.joined(separator: ","), before: "contactId"), fast: true)
        // A body ending inside or right after a member stepped over.
        for cut in [#"{"x":"#, #"{"x":1"#, #"{"x":"abc"#, #"{"x":[1,{"y":2"#, #"{"eventType":"e","x":1"#, #"{"eventType":"e","x":1}"#] {
            check(cut, fast: cut.hasSuffix("}") ? true : false)
        }
        #expect(checked > 1_000 && fast > 600, "fast on \(fast) of \(checked)")
        #expect(tally.accepted > 600 && tally.json > 300, "\(tally)")
    }

    @Test("members stepped over in envelope templates: their string values are holes, their keys still repeat, one scanner over many bodies agrees")
    func unknownMembersInTemplates() throws {
        let seeds = try Self.seedLines().map { Array($0.utf8) }
        func envelope(url: String? = "https://example.invalid/case/1", crn: String = "X100001", extra: String = "") -> String {
            #"{"eventType":"probation-case.contact.recorded","version":1,"# + (url.map { #""detailUrl":""# + $0 + #"","# } ?? "")
                + #""occurredAt":"2026-03-02T11:00:00Z""# + extra + #","personReference":{"identifiers":[{"type":"CRN","value":""# + crn
                + #""}]},"additionalInformation":"#
        }
        let info = #"{"contactId":1,"contactStart":"2026-03-02T10:00:00Z","contactType":"COAP"}}"#
        func used(after first: String, _ second: String) -> (template: Bool, fast: Bool) {
            var scanner = EventScanner()
            for text in [first, second] { _ = Array(text.utf8).withUnsafeBytes { scanner.scan($0) } }
            return (scanner.lastScanUsedTemplate, scanner.lastScanWasFast)
        }
        let base = envelope() + info
        // The URL's contents are a hole (plain text of the same length); its key and length are fixed.
        #expect(used(after: base, envelope(url: "https://example.invalid/case/7", crn: "X100002") + info) == (true, true))
        #expect(used(after: base, envelope(url: "https://example.invalid/case/10") + info).template == false)
        #expect(used(after: base, envelope(url: "https://example.invalid/case\\/") + info).template == false)
        #expect(used(after: base, envelope(url: "https://example.invalid/case/\u{e9}").replacingOccurrences(of: "case/", with: "case") + info).template == false)
        #expect(used(after: base, base.replacingOccurrences(of: "detailUrl", with: "detailUri")).template == false)
        // An unknown member of another type in the envelope is fixed bytes.
        let numbered = envelope(url: nil, extra: #","detail":17"#) + info
        #expect(used(after: numbered, numbered.replacingOccurrences(of: "X100001", with: "X100002")) == (true, true))
        #expect(used(after: numbered, numbered.replacingOccurrences(of: ":17", with: ":18")).template == false)
        // The root's keys stepped over in a template are still there on a hit: the same key after
        // additionalInformation is a duplicate (the general path's error), another key is not.
        for (after, fast) in [(#","detailUrl":"x"}"#, false), (#","detailUrl2":"x"}"#, true), (#","detail":1}"#, true)] {
            let text = envelope() + String(info.dropLast()) + after
            var scanner = EventScanner()
            var general = EventScanner()
            general.fastPathEnabled = false
            for t in [base, text] {
                let bytes = Array(t.utf8)
                let (s, g) = bytes.withUnsafeBytes { (scanner.stateDescription(scanner.scan($0)), general.stateDescription(general.scan($0))) }
                #expect(s == g, "\(t.debugDescription)")
            }
            let usedTemplate = scanner.lastScanUsedTemplate, wasFast = scanner.lastScanWasFast
            #expect(usedTemplate && wasFast == fast, "\(text.debugDescription)")
            let outcome = Array(text.utf8).withUnsafeBytes { general.scan($0) }
            #expect((outcome == .ok) == fast, "\(outcome)")
        }
        // Five keys stepped over in the root before additionalInformation: no template (at most four are kept).
        let five = envelope(url: nil, extra: #","a":1,"b":2,"c":3,"d":4,"e":5"#) + info
        let four = envelope(url: nil, extra: #","a":1,"b":2,"c":3,"d":4"#) + info
        #expect(used(after: five, five.replacingOccurrences(of: "X100001", with: "X100002")) == (false, true))
        #expect(used(after: four, four.replacingOccurrences(of: "X100001", with: "X100002")) == (true, true))
        // One scanner over crafted bodies, the generated streams with unknown members added everywhere, and mutations
        // of those: the general path's state and the same decoding as a fresh scanner.
        var crafted: [String] = [base, envelope(url: "https://example.invalid/case/2") + info, five, four, numbered]
        for (after, _) in [(#","detailUrl":"x"}"#, false), (#","a":1,"a":2}"#, false), (#","a":1}"#, true)] {
            crafted += [base, envelope(url: "https://example.invalid/case/3") + String(info.dropLast()) + after,
                        four, String(four.replacingOccurrences(of: "X100001", with: "X100003").dropLast()) + after.replacingOccurrences(of: "detailUrl", with: "d")]
        }
        var rng = SeededRandom(seed: 31)
        let members = [#""detailUrl":"https://example.invalid/case/"#, #""note":"a \"b\""#, #""n":-1.5e3"#, #""flag":true"#,
                       #""none":null"#, #""tags":["a",{"b":[1,2]}]"#, #""meta":{"source":"nDelius","at":"x"}"#, #""eventTyp":"x""#]
        func withUnknown(_ seed: [UInt8]) -> [UInt8] {
            var text = String(decoding: seed, as: UTF8.self)
            let places: [String?] = ["version", "occurredAt", "personReference", "type", "value", "contactId", "code", "registerTypeCode", nil]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                var member = rng.pick(members)
                if member.hasSuffix("/case/") { member += String(Int.random(in: 1...99_999, using: &rng)) + "\"" }
                text = Self.insertMember(text, member, before: rng.pick(places))
            }
            return Array(text.utf8)
        }
        var bodies = crafted.map { Array($0.utf8) }
        for k in 0..<5_000 {
            let seed = seeds[k % seeds.count]
            bodies.append(k % 3 == 2 ? Self.mutate(withUnknown(seed), &rng) : k % 3 == 1 ? withUnknown(seed) : seed)
        }
        let hits = Self.reusedScannerAgrees(bodies, memo: "unknown members") { $0.lastScanUsedTemplate && $0.lastScanWasFast }
        var fast = 0
        var tally = Tally()
        var scanner = EventScanner()
        for body in bodies.prefix(3_000) {
            Self.check(body, topic: nil, &tally)
            _ = body.withUnsafeBytes { scanner.scan($0) }
            if scanner.lastScanWasFast { fast += 1 }
        }
        #expect(hits > 1_000, "template used on \(hits) of \(bodies.count) bodies")
        #expect(fast > 1_500, "fast path on \(fast) of 3,000 bodies")
        #expect(tally.json > 200, "\(tally)")
    }

    @Test("RFC3339Fast equals RFC3339.parse on the usual form and its mutations")
    func fastTimes() {
        var rng = SeededRandom(seed: 5)
        let base = Array("2026-03-02T10:00:00Z".utf8)
        var memos = [RFC3339Fast.DateMemo](repeating: RFC3339Fast.DateMemo(), count: RFC3339Fast.memoCount)
        // Valid date-times on 60 dates (more than the memo table holds), revisited in any order.
        let pool: [[UInt8]] = (0..<60).map { (k: Int) -> [UInt8] in
            let year: Int = 20 + k % 9, month: Int = 1 + k % 12, day: Int = 1 + (k * 7) % 28
            let text = String(format: "20%02d-%02d-%02dT%02d:%02d:%02dZ", year, month, day, k % 24, (k * 13) % 60, (k * 31) % 60)
            return Array(text.utf8)
        }
        for k in 0..<50_000 {
            var b = base
            if k % 3 == 1 {
                b = rng.pick(pool)
                if rng.chance(0.3) { b[Int.random(in: 11..<b.count, using: &rng)] = rng.pick(Array("0123456789:Z".utf8)) }
            } else if k % 3 == 0 {
                let y = Int.random(in: 0...9999, using: &rng), m = Int.random(in: 0...13, using: &rng), d = Int.random(in: 0...32, using: &rng)
                let h = Int.random(in: 0...24, using: &rng), mi = Int.random(in: 0...60, using: &rng), s = Int.random(in: 0...61, using: &rng)
                b = Array(String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, s).utf8)
            } else {
                for _ in 0..<Int.random(in: 1...2, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = rng.pick(Array("0123456789-:TtZz .+/".utf8) + [0x00, 0xFF, 0x3A, 0x2F])
                }
            }
            let fast = b.withUnsafeBytes { RFC3339Fast.parse($0) }
            let slow = b.withUnsafeBytes { RFC3339.parse($0) }
            #expect(fast == slow, "\(String(decoding: b, as: UTF8.self))")
            // With the memo table carried from one date-time to the next (the mutations often share the date part).
            let memoised = b.withUnsafeBytes { raw in memos.withUnsafeMutableBufferPointer { RFC3339Fast.parse(raw, memos: $0.baseAddress!) } }
            #expect(memoised == slow, "memo: \(String(decoding: b, as: UTF8.self))")
        }
    }
}

/// `JSONWriter` (the alert bodies' writer: digits two at a time, the last date memoised) against `JSONOut` (the
/// array-based writer it replaced on the hot path), on values and instants in any order.
@Suite("JSONWriter against JSONOut", .computing)
struct JSONWriterTests {
    @Test("uint, time, date and dateText write what JSONOut writes")
    func sameBytes() {
        var rng = SeededRandom(seed: 17)
        var values: [UInt64] = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9_999, 10_000, 2_500_012_345, 9_007_199_254_740_991,
                                UInt64.max, UInt64.max - 1, 10_000_000_000_000_000_000]
        for _ in 0..<5_000 { values.append(rng.next() >> UInt64.random(in: 0...63, using: &rng)) }
        var writer = JSONWriter(capacity: 16)
        for v in values {
            let start = writer.count
            writer.uint(v)
            var expected: [UInt8] = []
            JSONOut.uint(&expected, v)
            #expect(writer.array(start..<writer.count) == expected, "\(v)")
        }
        // Instants: runs on the same day (the memo), jumps, negative and far ones, with and without milliseconds.
        var t: Millis = 1_767_225_600_000  // 2026-01-01
        for k in 0..<20_000 {
            switch k % 7 {
            case 0: t = Millis.random(in: -62_135_596_800_000...253_402_300_799_999, using: &rng)
            case 1: t += Millis.random(in: 0...86_400_000, using: &rng)
            case 2: t -= Millis.random(in: 0...1_000, using: &rng)
            default: t += Millis.random(in: 0...3_600, using: &rng) * 1000
            }
            var start = writer.count
            writer.time(t)
            var expected: [UInt8] = []
            JSONOut.time(&expected, t)
            #expect(writer.array(start..<writer.count) == expected, "\(t)")
            let days = t >= 0 ? t / millisPerDay : (t - millisPerDay + 1) / millisPerDay
            let d = LocalDate(days: Int32(truncatingIfNeeded: days + Int64(k % 3) - 1))
            start = writer.count
            writer.date(d)
            expected = []
            JSONOut.date(&expected, d)
            #expect(writer.array(start..<writer.count) == expected, "\(d)")
            if writer.count > 1 << 20 { writer.reset() }
        }
    }

    /// The writer remembers two dates (an alert writes occurredAt, then detectedAt on another day): instants and
    /// dates drawn from a pool of three days that changes every 100 steps, so that each memo entry is hit, both are
    /// missed, and one is replaced while the other is kept, in every order.
    @Test("instants and dates among a few days write what JSONOut writes")
    func fewDays() {
        var rng = SeededRandom(seed: 23)
        var writer = JSONWriter(capacity: 64)
        var pool: [Int64] = []
        var hits = [0, 0, 0]
        var last: [Int64] = []
        for k in 0..<30_000 {
            if k % 100 == 0 {
                let first = Int64.random(in: -719_000...2_900_000, using: &rng)
                pool = [first, first + Int64.random(in: 1...40, using: &rng), first - Int64.random(in: 1...400, using: &rng)]
            }
            let day = pool[Int.random(in: 0..<(k % 300 < 150 ? 2 : 3), using: &rng)]
            // Which memo entry an ideal two-date memo would serve it from (latest, second, none).
            let slot = last.first == day ? 0 : (last.count > 1 && last[1] == day ? 1 : 2)
            hits[slot] += 1
            if slot != 0 { last = [day] + last.prefix(1).filter { $0 != day } }
            let start = writer.count
            var expected: [UInt8] = []
            if k % 4 == 3 {
                let d = LocalDate(days: Int32(day))
                writer.date(d)
                JSONOut.date(&expected, d)
            } else {
                let t = day * millisPerDay + Millis.random(in: 0..<millisPerDay, using: &rng) / (k % 2 == 0 ? 1000 : 1) * (k % 2 == 0 ? 1000 : 1)
                writer.time(t)
                JSONOut.time(&expected, t)
            }
            #expect(writer.array(start..<writer.count) == expected, "day \(day)")
            if writer.count > 1 << 20 { writer.reset() }
        }
        #expect(hits.allSatisfy { $0 > 2_000 }, "\(hits)")
    }
}
