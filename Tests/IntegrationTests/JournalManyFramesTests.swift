import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// A journal request of very many frames: `ZMQ_MAXMSGSIZE` limits each frame, not their number, and libzmq holds the
/// whole message before the journal thread reads its first frame (4 requests of 1,000,000 empty frames: +309 MB). The
/// journal thread copies only the frames a request can have, drops the rest as it reads them, refuses the request as
/// malformed, and gives the heap back afterwards.
@Suite("a journal request of very many frames", .blocking)
struct JournalManyFramesTests {
    static let frames = 1_000_000

    @Test("two requests of 1,000,000 empty frames: refused as malformed with the true frame count; the memory libzmq took is given back; other requests are served")
    func manyFramesRefusedAndGivenBack() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let pid = daemon.child.process.processIdentifier
        let before = try #require(OversizeFrameTests.residentKilobytes(pid))

        let context = try ZMQContext()
        defer { context.close() }
        let client = try context.socket(.dealer, lingerMilliseconds: 0)
        defer { client.close() }
        try client.connect(daemon.journal)
        let fetch = Array("fetch".utf8)
        for _ in 0..<2 {
            try fetch.withUnsafeBytes { f in
                let empty = UnsafeRawBufferPointer(start: nil, count: 0)
                _ = try client.send(buffers: [f] + Array(repeating: empty, count: Self.frames - 1))
            }
        }
        for _ in 0..<2 {
            let reply = try #require(try client.receiveCopy(timeoutMilliseconds: 120_000),
                                     "no reply: \(daemon.child.stderr.text.suffix(1000))")
            let text = reply.map { String(decoding: $0, as: UTF8.self) }
            #expect(text.count == 2 && text[0] == "error" && text[1].contains("got \(Self.frames) frames, the first \"fetch\""),
                    "\(text.map { $0.prefix(200) })")
        }
        let peak = try #require(FaultTests.peakRSSKilobytes(pid))
        // The premise: libzmq did hold the messages.
        #expect(peak - before > 50_000, "peak \(peak) kB, \(before) kB before: the messages were not held whole?")
        // Given back: a bounded wait on what the kernel reports.
        let now = OversizeFrameTests.residentGivenBack(pid, before: before, slack: 30_000)
        #expect(now <= before + 30_000, "resident \(now) kB after the requests, \(before) kB before (peak \(peak) kB)")
        // A well-formed request is still answered.
        #expect(try JournalClient(endpoint: daemon.journal).fetch(after: 0).latest == 0)
        #expect(daemon.stop() == 0)
        print("journal many frames: resident \(before) kB before, peak \(peak) kB, \(now) kB after")
    }
}
