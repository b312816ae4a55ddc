import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

/// A journal client that reads every reply before it asks again (one request in flight, as REQ and `contactwatch
/// tail --journal` do) must get every reply. The journal used to drop some of them as if the client were not reading:
/// libzmq refused the send (EAGAIN at the 4-reply queue limit) on a count of the client's reads that it had not
/// updated yet, when requests came back to back. Such a client then waits forever (REQ) or gives up (`tail` exits 69
/// after 5 s: "journal … did not answer").
@Suite("journal replies to a client that reads them", .blocking)
struct JournalReplyTests {
    @Test("2,000 requests one at a time, each answered; nothing counted as dropped")
    func everyReplyArrives() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let client = try JournalClient(endpoint: daemon.journal, limit: 1)
        var answered = 0
        var failure: String? = nil
        for _ in 0..<2000 {
            do {
                _ = try client.fetch(after: 0, timeout: 5)
                answered += 1
            } catch {
                failure = "\(error)"
                break
            }
        }
        #expect(failure == nil, "request \(answered + 1): \(failure ?? "")")
        #expect(daemon.stop() == 0)
        let summary = daemon.child.stderr.lines.last { $0.contains(" stopped") } ?? ""
        #expect(summary.contains("journalRepliesDropped=0 "), "\(summary)")
        #expect(summary.contains("journalRequests=\(answered + (failure == nil ? 0 : 1)) "), "\(summary)")
    }
}
