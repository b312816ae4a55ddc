import ContactWatchTestSupport
import ContactWatchEngine
import Foundation
import Testing

/// The examples' `reason` texts are not part of the comparison the contract asks for, but the engine writes the
/// same sentences; this pins them so a change to a reason is a deliberate one.
@Suite("Reasons match the spec examples' wording")
struct ReasonTests {
    @Test("every reason in the examples is reproduced word for word", arguments: Fixtures.exampleNames)
    func reasons(_ name: String) throws {
        let engine = try Engine(settings: Fixtures.settings(for: name))
        let got = run(engine, lines: try Fixtures.lines("\(name).ndjson"))
        let expected = try Fixtures.lines("\(name).expected.ndjson").map { jsonObject($0)! }
        try #require(got.count == expected.count)
        for (k, want) in expected.enumerated() {
            let body = try #require(jsonObject(got[k].body))
            let wantReason = (want["body"] as! NSDictionary)["reason"] as? String
            let reason = body["reason"] as? String
            if got[k].topic == "stream.gap" {
                #expect(reason == nil && wantReason == nil, "stream.gap notices have no reason")
            } else if got[k].topic == "invalid-event" {
                // Notices add the parser's detail in brackets: "body is not JSON (expected a key at byte 59)".
                #expect(reason?.hasPrefix(wantReason ?? "\u{0}") == true, "\(name) #\(k + 1): \(reason ?? "nil")")
            } else {
                #expect(reason == wantReason, "\(name) #\(k + 1)")
            }
        }
    }
}
