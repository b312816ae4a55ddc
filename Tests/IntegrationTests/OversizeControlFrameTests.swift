import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// The sockets on which the daemon only receives small control messages — a journal request (`fetch`, two decimal
/// numbers), a consumer's subscription (a byte and a topic prefix) — refuse a frame over
/// `SocketSetup.maxControlFrameBytes` by dropping the connection, as the input does past `input.maxMessageBytes`.
/// Without the limit a peer could make the daemon take in a frame of any size: libzmq assembles it, the journal
/// thread copies it (and up to 64 such requests queue per client), the processing thread copies a subscription and
/// logs its prefix whole.
@Suite("over-size frames on the journal and output sockets", .blocking)
struct OversizeControlFrameTests {
    /// Sends `frames` from a fresh socket of `type` connected to `endpoint` (for a SUB, `subscription` instead) and
    /// waits (bounded) for the first of: a reply, the daemon dropping the connection (the client's monitor reports
    /// `disconnected`), or `logged` appearing in the daemon's log. Returns which.
    enum Outcome: Equatable { case replied, disconnected, logged, nothing }

    static func probe(_ daemon: DaemonUnderTest, type: ZMQSocketType, endpoint: String, frames: [[UInt8]] = [],
                      subscription: [UInt8]? = nil, logged: String? = nil) throws -> Outcome {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.socket(type, lingerMilliseconds: 0)
        defer { socket.close() }
        let monitor = try socket.startMonitor(events: 0xFFFF)
        defer { monitor.close() }
        if let subscription { try socket.subscribe(subscription) }
        try socket.connect(endpoint)
        if !frames.isEmpty { try socket.send(frames) }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if try monitor.events(timeoutMilliseconds: 20).contains(where: { $0.kind == .disconnected }) { return .disconnected }
            if type != .sub, try socket.receiveCopy(timeoutMilliseconds: 0) != nil { return .replied }
            if let logged, daemon.child.stderr.text.contains(logged) { return .logged }
        }
        return .nothing
    }

    @Test("a journal request with a frame over the limit: the connection is dropped, no reply; other clients are served")
    func oversizeJournalRequest() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        let big = [UInt8](repeating: UInt8(ascii: "7"), count: 64 << 10)
        let outcome = try Self.probe(daemon, type: .dealer, endpoint: daemon.journal,
                                     frames: [Array("fetch".utf8), Array("0".utf8), big])
        #expect(outcome == .disconnected, "a 64 KiB journal request frame was taken in (\(outcome))")
        // A well-formed request is still answered.
        let client = try JournalClient(endpoint: daemon.journal)
        #expect(try client.fetch(after: 0).latest == 0)
        #expect(daemon.stop() == 0)
    }

    @Test("a subscription with a prefix over the limit: the connection is dropped, the prefix is never logged")
    func oversizeSubscription() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir)
        // 12 KiB: far over the limit, yet short enough for libzmq's recursive trie to free on the client's side (a
        // prefix of a megabyte overflows the stack of the client's reaper thread when its socket closes, in libzmq
        // 4.3.4). In the daemon's XPUB a 4 MiB prefix cost 150–200 MB of resident memory before the limit.
        let prefix = Array("alert.".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 12 << 10)
        let outcome = try Self.probe(daemon, type: .sub, endpoint: daemon.output, subscription: prefix,
                                     logged: "subscriber joined")
        #expect(outcome == .disconnected, "a 12 KiB subscription was taken in (\(outcome))")
        // An ordinary consumer still subscribes.
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert."])
        defer { DurabilityTests.stop(tail) }
        #expect(DurabilityTests.awaitJoined(daemon, "alert.", atLeast: 1), "\(daemon.child.stderr.text.suffix(2000))")
        #expect(daemon.stop() == 0)
        #expect(!daemon.child.stderr.text.contains("xxxxxxxxxxxxxxxx"), "the over-size prefix reached the log")
    }
}
