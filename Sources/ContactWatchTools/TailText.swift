// `contactwatch tail --format text`: one readable line per message instead of its JSON body.
//
//   <time>  <topic>  <severity>  <subject>  <reason>
//
// time: the alert's `occurredAt` (event time), else the notice's `detectedAt`; subject: the CRN, or `PDU:<code>` for
// an area alert; reason: the alert's or notice's `reason`, or for `stream.gap` the publisher and the numbers. A field
// that is absent shows as `-`. Control characters are replaced by spaces so that each message stays on one line.

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

    /// Control characters (C0, DEL, C1: newlines, escapes a terminal would interpret) become spaces.
    static func clean(_ s: String) -> String {
        func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) }
        guard s.unicodeScalars.contains(where: isControl) else { return s }
        var out = String.UnicodeScalarView()
        for scalar in s.unicodeScalars { out.append(isControl(scalar) ? " " : scalar) }
        return String(out)
    }
}
