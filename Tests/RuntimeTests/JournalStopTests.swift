@testable import ContactWatchRuntime
import ContactWatchEngine
import ContactWatchStore
import ContactWatchTestThreads
import Foundation
import Logging
import Testing
import ZeroMQ

/// A stop of the journal thread does not wait for the requests already queued: the stop flag is looked at before
/// each request, not once per turn of 64 (a bug hunter, session 46: six clients paging a journal of 17,720 alerts at
/// the largest reply limits made SIGTERM take 17.6 s, past the unit's `TimeoutStopSec`). Counted, not timed: the
/// requests the thread took in by the time `stop()` returned.
@Suite("journal thread stop", .blocking)
struct JournalStopTests {
    @Test("64 large requests queued, stop after the first reply: the thread takes in a few of them, not the turn's 64")
    func stopDoesNotServeTheQueuedTurn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-journal-stop-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir)
        let path = store.path
        // 8,000 alerts of 2 KB: one reply at the largest limits reads and sends 16 MB.
        let padding = String(repeating: "x", count: 2000)
        for batch in 0..<8 {
            let range = UInt64(batch * 1000 + 1)...UInt64(batch * 1000 + 1000)
            var state = EngineState()
            state.alertSequence = range.upperBound
            let entries = range.map { n in
                let id = String(format: "%032x", n)
                return JournalEntry(alertSequence: n, alertId: id, topic: Array("alert.raised.telephone-only".utf8),
                                    body: Array("{\"alertId\":\"\(id)\",\"alertSequence\":\(n),\"pad\":\"\(padding)\"}".utf8))
            }
            try store.commit(changes: ChangeSet(), state: state, journal: entries, publishedThrough: nil, now: 1000)
        }
        store.close()

        let context = try ZMQContext()
        defer { context.close() }
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let counters = RuntimeCounters()
        let setup = SocketSetup(config: DaemonConfiguration(),
                                security: DaemonSecurity(plaintextWith: counters, logger: logger))
        let endpoint = "ipc://\(dir)/journal.sock"
        let server = try JournalServer.start(endpoint: endpoint, storePath: path, context: context, setup: setup,
                                             limits: JournalServer.Limits(maxReplyAlerts: 100_000, maxReplyBytes: 64 << 20),
                                             counters: counters, logger: logger)
        var stopped = false
        defer { if !stopped { server.stop() } }
        let client = try context.socket(.dealer, lingerMilliseconds: 0)
        defer { client.close() }
        try client.connect(endpoint)
        for _ in 0..<64 { #expect(try client.send(strings: ["fetch", "0"])) }
        // The first reply: a full page of 8,000 alerts (the status word, the latest sequence, the bodies).
        let first = try client.receiveMessage(timeoutMilliseconds: 60_000) { frames in
            (frames.count, String(decoding: frames.bytes(at: 0), as: UTF8.self))
        }
        #expect(first?.0 == 8_002 && first?.1 == "alerts", "\(String(describing: first))")
        server.stop()
        stopped = true
        let taken = counters.journalRequests.load(ordering: .relaxed)
        // Each request after the first costs a 16 MB read until the client's queue of 4 replies is full; a stop that
        // waited for the turn took in all 64.
        #expect(taken >= 1 && taken <= 8, "requests taken in by the time the stop returned: \(taken) of 64")
    }
}
