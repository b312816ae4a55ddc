import ContactWatchTestThreads
import Foundation
import Testing

/// `contactwatch replay` reads its files line by line. A line without an end (a binary file, `/dev/zero`) used to be
/// buffered whole, the buffer doubling until memory ran out (1.1 GB after 3 s of `/dev/zero`, without a word).
@Suite("replay: a line longer than 16 MiB", .blocking)
struct ReplayLongLineTests {
    static let event = #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"2026-01-06T11:00:00Z","personReference":{"identifiers":[{"type":"CRN","value":"X900001"}]},"additionalInformation":{"contactId":1,"contactStart":"2026-01-06T10:00:00Z","contactType":"COAP","outcome":{"code":"ATTC"},"interviewSetting":"OPEN_BOOTH"}}"#

    @Test("a 20 MiB line then an event: the long line is said (its number) and not sent, read through without being kept, and counted as long, not as not JSON; the event after it is sent")
    func longLineThenAnEvent() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("long.ndjson")
        var data = Data(repeating: UInt8(ascii: "x"), count: 20 << 20)
        data.append(contentsOf: Array(("\n" + Self.event + "\n").utf8))
        try data.write(to: URL(fileURLWithPath: file))
        let c = try Child("contactwatch", ["replay", file, "--endpoint", dir.ipc("in"), "--linger", "0"])
        let status = c.waitForExit(timeout: 60)
        if status == nil { c.signal(SIGKILL) }
        // Nobody subscribes: the one message sent is dropped, and said (exit 69).
        #expect(status == 69, "exit \(String(describing: status)): \(c.stderr.text.suffix(1000))")
        let text = c.stderr.text
        #expect(text.contains("long.ndjson:1: a line of 16777216 bytes or more"), "\(text.suffix(1000))")
        #expect(text.contains("the 1 messages were dropped"), "\(text.suffix(1000))")
        // Counted as what it is: such a line may well be JSON (a bug hunter, session 45: N2).
        #expect(text.contains("skipped 1 line of 16777216 bytes or more"), "\(text.suffix(1000))")
        #expect(!text.contains("not JSON"), "\(text.suffix(1000))")
        #expect(!text.contains("long.ndjson:2:"), "the event after the long line was refused: \(text.suffix(1000))")
    }
}
