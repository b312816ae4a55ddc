import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

/// events.md: a date-time is RFC 3339; output times are UTC with `Z`. An offset can move a local time at either end of
/// the years 0000–9999 out of them in UTC: `0000-01-01T00:00:00+01:00` is 31 December of year −1, and
/// `9999-12-31T23:59:59-23:59` is in year 10000. The daemon used to accept both and publish them as
/// `"occurredAt":"000/-12-31T23:00:00Z"` and `"occurredAt":"0000-01-01T23:58:59Z"` (the year's last four digits): a
/// time no consumer can read, and one silently 10,000 years wrong. They are invalid now, reported at their field.
@Suite("date-times whose instant falls outside the years 0000–9999 in UTC", .blocking)
struct InstantRangeTests {
    static func contact(_ crn: String, id: Int, version: Int = 1, occurredAt: String, start: String, _ extra: String) -> String {
        #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"\#(occurredAt)","personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"additionalInformation":{"contactId":\#(id),"contactVersion":\#(version),"contactStart":"\#(start)",\#(extra)}}"#
    }

    @Test("are invalid events at their field; every time the daemon publishes is a four-digit-year UTC time")
    func refusedAndNeverPublished() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--subscribe", ""])
        let lines = [
            // Year −1 in UTC: an attended contact in an open booth (it raised no-privacy at that time).
            Self.contact("X900001", id: 1, occurredAt: "0000-01-01T00:00:00+01:00", start: "0000-01-01T00:00:00+01:00",
                         #""contactMode":"OFFICE","interviewSetting":"OPEN_BOOTH","outcome":{"code":"ATTC"}"#),
            // A failure (warning due), then its warning letter with an action time in year 10000 in UTC (it resolved
            // the alert at that time).
            Self.contact("X900002", id: 2, occurredAt: "2026-11-30T10:00:00Z", start: "2026-11-30T09:00:00Z",
                         #""contactType":"COAP","outcome":{"code":"UAAB"}"#),
            Self.contact("X900002", id: 2, version: 2, occurredAt: "2026-11-30T11:00:00Z", start: "2026-11-30T09:00:00Z",
                         #""contactType":"COAP","outcome":{"code":"UAAB"},"enforcementAction":{"code":"EA02","actionAt":"9999-12-31T23:59:59-23:59"}"#),
            "sentinel-instants",
        ]
        let file = dir.file("stream.ndjson")
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--count", "4"])
        #expect(daemon.waitForSubscribers(1), "tail did not subscribe: \(daemon.child.stderr.text)")
        let replay = try runTool(["replay", file, "--endpoint", daemon.input, "--wait-subscribers", "1", "--send-invalid"])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(tail.waitForExit(timeout: 30) == 0, "\(tail.stdout.text)\n\(daemon.child.stderr.text)")
        let got = try tail.stdout.lines.map { try #require(jsonObject($0), "not JSON: \($0)") }
        try #require(got.count == 4, "\(tail.stdout.text)")

        let utc = try Regex(#"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$"#)
        for (k, body) in got.enumerated() {
            for key in ["occurredAt", "detectedAt"] {
                if let time = body[key] as? String {
                    #expect(time.wholeMatch(of: utc) != nil, "#\(k + 1) \(key) \(time): \(tail.stdout.lines[k])")
                }
            }
            #expect(!tail.stdout.lines[k].contains("0000-01-01T23:58:59"), "#\(k + 1): \(tail.stdout.lines[k])")
        }
        #expect(got[0]["eventType"] as? String == "contactwatch.invalid-event")
        #expect(got[0]["field"] as? String == "occurredAt", "\(tail.stdout.lines[0])")
        #expect(got[1]["eventType"] as? String == "probation-case.supervision-alert.raised")
        #expect(got[1]["rule"] as? String == "non-compliance.warning-due")
        #expect(got[2]["eventType"] as? String == "contactwatch.invalid-event")
        #expect(got[2]["field"] as? String == "additionalInformation.enforcementAction.actionAt", "\(tail.stdout.lines[2])")
        #expect(got[3]["payload"] as? String == "sentinel-instants")
        #expect(daemon.stop() == 0)
    }
}
