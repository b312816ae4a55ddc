@testable import ContactWatchRuntime
import ContactWatchStore
import Foundation
import Logging
import Synchronization
import Testing

/// A journal the journal thread cannot read (a damaged row) fails every request a client sends: each is answered
/// `error`, and each wrote a `warning` line, at whatever rate the clients asked.
@Suite("journal read failures")
struct JournalFailureLogTests {
    @Test("50 requests against a damaged journal row: 50 error replies, at most the limit's burst of warnings, the next saying how many were not logged")
    func readFailuresAreRateLimited() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-journal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore(directory: dir)
        let path = store.path
        store.close()
        // A row whose entries do not decode, written behind the store's back (as damage would).
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [path, "INSERT INTO journalChunk VALUES (1, 1, 1, 0, x'FFFFFFFF')"]
        try sqlite.run()
        sqlite.waitUntilExit()
        try #require(sqlite.terminationStatus == 0, "sqlite3 could not damage the journal")

        let reader = try JournalReader(path: path)
        defer { reader.close() }
        let sink = LogLines()
        let logger = Logger(label: "test") { _ in MemoryLogHandler(sink: sink) }
        let clock = Mutex(0.0)
        let lines = LogLimiter(burst: 10, intervalSeconds: 6, now: { clock.withLock { $0 } })
        let request: [[UInt8]] = [Array("client".utf8), Array("fetch".utf8), Array("0".utf8)]
        let counters = RuntimeCounters()
        for _ in 0..<50 {
            let reply = JournalServer.reply(to: request, reader: reader, limits: JournalServer.Limits(), logger: logger,
                                            failureLines: lines, counters: counters)
            #expect(reply.map { String(decoding: $0[1], as: UTF8.self) } == "error")
            // A short reason for the client; the store's path and the advice for its operator only in the log.
            #expect(reply.map { String(decoding: $0[2], as: UTF8.self) } == JournalServer.readFailureReply)
            #expect(reply.map { !String(decoding: $0[2], as: UTF8.self).contains(dir) } == true)
        }
        var logged = sink.entries.withLock { $0 }
        #expect(logged.count == 10, "\(logged.count) warnings for 50 failed requests")
        // Every failure counted, logged or not (40 were counted nowhere before session 29: an auditor).
        #expect(counters.journalReadFailures.load(ordering: .relaxed) == 50)
        #expect(counters.journalRequestsRefused.load(ordering: .relaxed) == 0)
        // A malformed request: answered error, counted apart, not logged.
        let malformed = JournalServer.reply(to: [Array("client".utf8), Array("fetch".utf8), Array("zero".utf8)], reader: reader,
                                            limits: JournalServer.Limits(), logger: logger, failureLines: lines, counters: counters)
        #expect(malformed.map { String(decoding: $0[1], as: UTF8.self) } == "error")
        #expect(counters.journalRequestsRefused.load(ordering: .relaxed) == 1)
        #expect(counters.journalReadFailures.load(ordering: .relaxed) == 50)
        #expect(sink.entries.withLock { $0.count } == 10)
        #expect(logged.allSatisfy { $0.level == .warning && $0.message.hasPrefix("cannot read the journal: ") })
        #expect(logged.allSatisfy { $0.message.contains(path) }, "\(logged.first?.message ?? "")")
        // Said at run time, the store's advice for a start is completed: the daemon goes on (an upgrade tester, session 41).
        #expect(logged.allSatisfy { $0.message.contains("The daemon goes on processing and publishing")
            && !$0.message.contains("move it aside") }, "\(logged.first?.message ?? "")")

        clock.withLock { $0 = 6 }
        _ = JournalServer.reply(to: request, reader: reader, limits: JournalServer.Limits(), logger: logger, failureLines: lines)
        logged = sink.entries.withLock { $0 }
        #expect(logged.count == 11)
        #expect(logged.last?.metadata["notLogged"] == "40")
    }

    @Test("the read failures held back are said once their flood is over, as one line with their number")
    func heldBackSaid() {
        let sink = LogLines()
        let logger = Logger(label: "test") { _ in MemoryLogHandler(sink: sink) }
        let clock = Mutex(0.0)
        let failures = LogLimiter(burst: 10, intervalSeconds: 6, now: { clock.withLock { $0 } })
        let sockets = LogLimiter(burst: 10, intervalSeconds: 6, now: { clock.withLock { $0 } })
        for _ in 0..<50 { _ = failures.admit("journal") }
        for _ in 0..<12 { _ = sockets.admit("socket") }
        JournalServer.sayHeldBack(failureLines: failures, socketLines: sockets, logger: logger)
        #expect(sink.entries.withLock { $0 }.isEmpty, "said while the flood may go on")
        clock.withLock { $0 = 6 }
        JournalServer.sayHeldBack(failureLines: failures, socketLines: sockets, logger: logger)
        let said = sink.entries.withLock { $0 }
        #expect(said.map(\.message) == ["40 more journal read failures not logged at warning (rate limit); the flood is over",
                                         "2 more journal socket failures not logged at error (rate limit); the flood is over"])
        #expect(said.map(\.level) == [.warning, .error])
    }
}
