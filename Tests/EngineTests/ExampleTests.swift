import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
import Foundation
import Testing

@Suite("Spec examples through the engine", .computing)
struct ExampleTests {
    @Test("every example stream publishes exactly its expected messages", arguments: Fixtures.exampleNames)
    func example(_ name: String) throws {
        let engine = try Engine(settings: Fixtures.settings(for: name))
        let got = run(engine, lines: try Fixtures.lines("\(name).ndjson"))
        let expected = try Fixtures.lines("\(name).expected.ndjson").map { jsonObject($0)! }
        #expect(got.count == expected.count, "\(name): \(got.count) messages, expected \(expected.count)")
        for (k, want) in expected.enumerated() where k < got.count {
            let body = try #require(jsonObject(got[k].body), "\(name) #\(k + 1) is not JSON: \(got[k].body)")
            #expect(got[k].topic == want["topic"] as? String, "\(name) #\(k + 1) topic")
            #expect(comparable(body) == comparable(want["body"] as! NSDictionary),
                    "\(name) #\(k + 1):\n got \(got[k].body)\nwant \(want["body"]!)")
            #expect(body["detectedAt"] is String, "\(name) #\(k + 1) has detectedAt")
            // Reasons are not compared by the contract, but the engine writes the examples' sentences word for word;
            // pinned here so that changing one is deliberate. Notices add the parser's detail in brackets.
            let reason = body["reason"] as? String
            let wantReason = (want["body"] as! NSDictionary)["reason"] as? String
            if got[k].topic == "stream.gap" {
                #expect(reason == nil && wantReason == nil, "stream.gap notices have no reason")
            } else if got[k].topic == "invalid-event" {
                #expect(reason?.hasPrefix(wantReason ?? "\u{0}") == true, "\(name) #\(k + 1): \(reason ?? "nil")")
            } else {
                #expect(reason == wantReason, "\(name) #\(k + 1) reason")
            }
        }
    }
}
