import ContactWatchEngine
import Foundation
import Testing

/// The spec's example streams, copied into the test fixtures.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/examples")

    static var exampleNames: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".ndjson") && !$0.hasSuffix(".expected.ndjson") }
            .map { String($0.dropLast(".ndjson".count)) }.sorted()
    }

    static func lines(_ file: String) throws -> [String] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            .filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    static func settings(for name: String) throws -> EngineSettings {
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
            default: Issue.record("unhandled setting \(key) in \(name).settings.json")
            }
        }
        return s
    }
}

/// A fixed wall clock for tests: 2026-11-25T00:00:00Z.
let testNow: Millis = RFC3339.parse("2026-11-25T00:00:00Z")!

/// Feeds lines to an engine as the examples README says: two frames when the line is a JSON object with a string
/// eventType, else one frame.
func run(_ engine: Engine, lines: [String], now: Millis = testNow) -> [(topic: String, body: String)] {
    var out = Outbox()
    var result: [(String, String)] = []
    for line in lines {
        let body = Array(line.utf8)
        var topic: [UInt8]? = nil
        if let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let t = obj["eventType"] as? String {
            topic = Array(t.utf8)
        }
        out.removeAll()
        body.withUnsafeBytes { b in
            if let topic {
                topic.withUnsafeBytes { t in engine.process(frameCount: 2, topic: t, body: b, now: now, into: &out) }
            } else {
                engine.process(frameCount: 1, topic: nil, body: b, now: now, into: &out)
            }
        }
        for m in out.messages { result.append((m.topic, m.body)) }
    }
    return result
}

func jsonObject(_ text: String) -> NSDictionary? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? NSDictionary
}

/// A message body without the fields the examples say to ignore.
func comparable(_ body: NSDictionary) -> NSDictionary {
    let m = body.mutableCopy() as! NSMutableDictionary
    m.removeObject(forKey: "detectedAt")
    m.removeObject(forKey: "reason")
    return m
}
