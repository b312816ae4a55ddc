// `contactwatch tail --format text`: one readable line per message instead of its JSON body.
//
//   <time>  <topic>  <severity>  <subject>  <reason>
//
// time: the alert's `occurredAt` (event time), else the notice's `detectedAt`; subject: the CRN, or `PDU:<code>` for
// an area alert; reason: the alert's or notice's `reason`, or for `stream.gap` the publisher and the numbers. A field
// that is absent shows as `-`. Control characters (and the characters that reorder a line on screen) are replaced by
// spaces so that each message stays on one line and shows as it is.

/// How `tail` prints each message.
public enum TailFormat: String, Sendable, CaseIterable {
    /// The message body as one NDJSON line (the default).
    case ndjson
    /// One readable line: time, topic, severity, subject, reason.
    case text
}

public enum TailText {
    /// The text line (without newline) for a message with `topic` (nil: the topic frame is unknown) and `body`.
    public static func line(topic: String?, body: UnsafeRawBufferPointer) -> String {
        body.withMemoryRebound(to: UInt8.self) { line(topic: topic, bytes: $0) }
    }

    static func line(topic: String?, bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard let members = JSONLines.objectMembers(bytes) else {
            let text = String(decoding: bytes.prefix(200), as: UTF8.self)
            return clean("-  \(topic ?? "-")  -  -  (not a JSON object) \(text)")
        }
        func string(_ key: String) -> String? { members[key].flatMap { JSONLines.stringValue(bytes, $0) } }
        func raw(_ key: String) -> String? {
            members[key].map { String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self) }
        }
        let time = string("occurredAt") ?? string("detectedAt") ?? "-"
        let eventType = string("eventType")
        var shownTopic = topic ?? eventType ?? "-"
        if topic == nil, let eventType, let rule = string("rule") {
            if eventType.hasSuffix(".raised") { shownTopic = "alert.raised.\(rule)" }
            if eventType.hasSuffix(".resolved") { shownTopic = "alert.resolved.\(rule)" }
        }
        let severity = string("severity") ?? "-"
        var subject = "-"
        if let range = members["subject"] {
            let inner = UnsafeBufferPointer(rebasing: bytes[range])
            if let fields = JSONLines.objectMembers(inner) {
                let type = fields["type"].flatMap { JSONLines.stringValue(inner, $0) }
                let value = fields["value"].flatMap { JSONLines.stringValue(inner, $0) } ?? "-"
                subject = type == nil || type == "CRN" ? value : "\(type!):\(value)"
            }
        }
        var reason = string("reason") ?? "-"
        if eventType == "contactwatch.stream.gap" {
            reason = "publisher \(string("publisherId") ?? raw("publisherId") ?? "-"): expected \(raw("expected") ?? "-"), "
                + "received \(raw("received") ?? "-"), \(raw("missing") ?? "-") missing"
        } else if eventType == "contactwatch.invalid-event", let field = string("field") {
            reason += " (field \(field))"
        }
        return clean("\(time)  \(shownTopic)  \(severity)  \(subject)  \(reason)")
    }

    /// Text a peer sent that a diagnostic quotes (a journal's `error` reply, a reply's unknown kind): cleaned as a
    /// rendered line is, and cut to `limit` characters. The journal's error text went to the terminal raw, so a hostile
    /// peer set the window's title, the colours or reversed text, up to a frame of 1 MiB (the companion tool's hunter,
    /// session 45).
    static func quoted(_ s: String, limit: Int = 200) -> String {
        let cut = s.count > limit ? String(s.prefix(limit)) + "…" : s
        return "\"" + clean(cut) + "\""
    }

    /// Control characters (C0, DEL, C1: newlines, escapes a terminal would interpret) and the characters that move or
    /// reorder what follows them on screen (line and paragraph separators, bidirectional marks and overrides: a forged
    /// reason could show its text reversed, the companion tool's auditor, session 25) become spaces.
    static func clean(_ s: String) -> String {
        func isControl(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || isLayoutFormat(scalar)
        }
        guard s.unicodeScalars.contains(where: isControl) else { return s }
        var out = String.UnicodeScalarView()
        for scalar in s.unicodeScalars { out.append(isControl(scalar) ? " " : scalar) }
        return String(out)
    }

    /// U+2028/U+2029 (line and paragraph separators) and the bidirectional marks (U+061C, U+200E/F), embeddings,
    /// overrides and isolates.
    static func isLayoutFormat(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x061C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// A body as one NDJSON line that a terminal shows as it is (`tail`'s default format). A body from the daemon is
    /// JSON, and for JSON this changes nothing a parser reads: a line break (whitespace between tokens; never raw
    /// inside a string) becomes a space, and C0 controls other than tab, DEL, C1 controls, the line and paragraph
    /// separators and the bidirectional controls are written as `\uXXXX` escapes (inside a string the same
    /// characters; raw C0 is not JSON anywhere, the rest only inside strings). Bytes that are not UTF-8 (not JSON
    /// either) become U+FFFD. A forged body could otherwise send escape sequences to the terminal (set its title, clear
    /// it: the companion tool's auditor, session 25). Appends to `line`.
    static func appendNDJSON(_ body: UnsafeRawBufferPointer, to line: inout [UInt8]) {
        // The fast path: printable ASCII and tab, as every body the daemon writes in ASCII is.
        if !body.contains(where: { $0 < 0x20 && $0 != 0x09 || $0 >= 0x7F }) {
            line.append(contentsOf: body)
            return
        }
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for scalar in String(decoding: body, as: UTF8.self).unicodeScalars {
            let v = scalar.value
            if v == 0x0A || v == 0x0D {
                line.append(0x20)
            } else if (v < 0x20 && v != 0x09) || (0x7F...0x9F).contains(v) || isLayoutFormat(scalar) {
                line.append(contentsOf: [0x5C, 0x75, hex[Int(v >> 12) & 15], hex[Int(v >> 8) & 15], hex[Int(v >> 4) & 15],
                                         hex[Int(v) & 15]])
            } else {
                line.append(contentsOf: String(scalar).utf8)
            }
        }
    }
}
