// What the engine, store and integration tests share: the spec's example streams (copied into Tests/Fixtures), a
// fixed wall clock, feeding lines to an engine the way the examples README says, and comparing message bodies.
import ContactWatchEngine
import Foundation

/// A fixed wall clock for tests: 2026-11-25T00:00:00Z.
public let testNow: Millis = RFC3339.parse("2026-11-25T00:00:00Z")!

/// The spec's example streams: `NAME.ndjson`, `NAME.expected.ndjson` and, where present, `NAME.settings.json`.
public enum Fixtures {
    public static let directory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/examples")

    public static var exampleNames: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".ndjson") && !$0.hasSuffix(".expected.ndjson") }
            .map { String($0.dropLast(".ndjson".count)) }.sorted()
    }

    /// The lines of a fixture file, without blank lines and `#` comments.
    public static func lines(_ file: String) throws -> [String] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            .filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    public struct UnknownSetting: Error, CustomStringConvertible {
        public var description: String
    }

    /// The engine settings an example's `.settings.json` asks for (defaults when there is none).
    public static func settings(for name: String) throws -> EngineSettings {
        var s = EngineSettings()
        let url = directory.appendingPathComponent("\(name).settings.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return s }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        for (key, value) in object {
            switch key {
            case "rules.complianceRate.minimumSample": s.complianceRateMinimumSample = value as! Int
            case "rules.complianceRate.windowDays": s.complianceRateWindowDays = value as! Int
            case "rules.complianceRate.threshold": s.complianceRateThreshold = value as! Double
            case "rules.telephoneOnly.limitDays": s.telephoneOnlyLimitDays = value as! Int
            case "rules.outcomeOverdue.enabled": s.outcomeOverdueEnabled = value as! Bool
            case "rules.outcomeOverdue.businessDays": s.outcomeOverdueBusinessDays = value as! Int
            default: throw UnknownSetting(description: "unhandled setting \(key) in \(name).settings.json")
            }
        }
        return s
    }
}

/// Feeds lines to an engine as the examples README says: two frames when the line is a JSON object with a string
/// eventType, else one frame; every message is appended to `outbox`.
public func feed(_ engine: Engine, _ lines: some Sequence<String>, now: Millis = testNow, into outbox: inout Outbox) {
    for line in lines {
        let body = Array(line.utf8)
        var topic: [UInt8]? = nil
        if let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let t = obj["eventType"] as? String {
            topic = Array(t.utf8)
        }
        body.withUnsafeBytes { b in
            if let topic {
                topic.withUnsafeBytes { t in engine.process(frameCount: 2, topic: t, body: b, now: now, into: &outbox) }
            } else {
                engine.process(frameCount: 1, topic: nil, body: b, now: now, into: &outbox)
            }
        }
    }
}

/// Feeds lines (as `feed` does) and returns the published messages as (topic, body) strings.
public func run(_ engine: Engine, lines: [String], now: Millis = testNow) -> [(topic: String, body: String)] {
    var out = Outbox()
    feed(engine, lines, now: now, into: &out)
    return out.messages.map { ($0.topic, $0.body) }
}

public func jsonObject(_ text: String) -> NSDictionary? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? NSDictionary
}

/// A message body without the fields the examples say to ignore.
public func comparable(_ body: NSDictionary) -> NSDictionary {
    let m = body.mutableCopy() as! NSMutableDictionary
    m.removeObject(forKey: "detectedAt")
    m.removeObject(forKey: "reason")
    return m
}
