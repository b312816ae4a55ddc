import ContactWatchEngine

/// One alert message as it was published (or is about to be): the durable journal's row.
public struct JournalEntry: Sendable, Equatable {
    public var alertSequence: UInt64
    /// The alert's 32 lowercase hex digits.
    public var alertId: String
    /// The topic frame (`alert.raised.<rule>` or `alert.resolved.<rule>`).
    public var topic: [UInt8]
    /// The JSON body, exactly as published.
    public var body: [UInt8]

    public init(alertSequence: UInt64, alertId: String, topic: [UInt8], body: [UInt8]) {
        self.alertSequence = alertSequence
        self.alertId = alertId
        self.topic = topic
        self.body = body
    }
}

extension StateStore {
    /// The journal entries for the alert messages of `outbox` (raises and resolutions, in order; notices are not
    /// journaled). The alert id is read from the body's `"alertId":"<32 hex digits>"` member.
    public static func journalEntries(from outbox: Outbox) -> [JournalEntry] {
        var out: [JournalEntry] = []
        outbox.forEach { entry, topic, body in
            guard entry.kind == .alertRaised || entry.kind == .alertResolved else { return }
            out.append(JournalEntry(alertSequence: entry.alertSequence, alertId: alertId(in: body) ?? "",
                                    topic: Array(topic), body: Array(body)))
        }
        return out
    }

    /// The value of the first `"alertId":"…"` member of a JSON body written by the engine (32 hex digits), if any.
    static func alertId(in body: UnsafeRawBufferPointer) -> String? {
        let key = Array("\"alertId\":\"".utf8)
        let n = body.count, k = key.count
        guard n >= k + 32 else { return nil }
        var i = 0
        while i + k + 32 <= n {
            if body[i] == key[0] {
                var match = true
                for j in 1..<k where body[i + j] != key[j] {
                    match = false
                    break
                }
                if match {
                    let start = i + k
                    let hex = UnsafeRawBufferPointer(rebasing: body[start..<(start + 32)])
                    guard hex.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
                    return String(decoding: hex, as: UTF8.self)
                }
            }
            i += 1
        }
        return nil
    }
}
