import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// Refusals that arrive while the daemon stops are told like any other: logged, or counted in a held-back line, so
/// that the lines add up to the stop summary's counters. The held-back lines were said as the processing loop ended,
/// while the ZAP handler still refused peers until the sockets closed: 22 and 18 refusals existed only in the
/// counters (a bug hunter, session 46: zmq F6).
@Suite("refusals during a stop", .blocking)
struct StopRefusalTests {
    @Test("CURVE peers with an unknown key keep arriving across SIGTERM: the refusal lines and held-back counts of each socket add up to its counter")
    func refusalsDuringStopAddUp() throws {
        let dir = try TemporaryDirectory()
        let d = try Deployment(dir: dir, pyzmq: false)
        let output = "tcp://127.0.0.1:\(try freeLoopbackPort())", journal = "tcp://127.0.0.1:\(try freeLoopbackPort())"
        let daemon = try EndpointDaemon(dir: dir, input: dir.ipc("in"), output: output, journal: journal,
                                        arguments: d.daemonArguments)
        let stranger = try d.pair("stranger"), server = try d.serverKey
        let flooding = Atomic<Bool>(true)
        let done = DispatchGroup()
        for n in 0..<3 {
            done.enter()
            Thread {
                defer { done.leave() }
                guard let context = try? ZMQContext() else { return }
                defer { context.close() }
                var i = n
                while flooding.load(ordering: .relaxed) {
                    guard let s = try? context.socket(.sub, lingerMilliseconds: 0) else { return }
                    try? s.makeCurveClient(keyPair: stranger, serverKey: server)
                    try? s.connect(i % 2 == 0 ? output : journal)
                    // Long enough for the handshake to reach the daemon's ZAP handler.
                    _ = try? s.receiveMessage(timeoutMilliseconds: 2) { _ in () }
                    s.close()
                    i += 1
                }
            }.start()
        }
        defer {
            flooding.store(false, ordering: .relaxed)
            done.wait()
        }
        // Past the warning lines' burst on both sockets, so that what follows is held back.
        let burstSpent = daemon.child.stderr.wait(timeout: 60) { log in
            ["output", "journal"].allSatisfy { socket in
                log.split(separator: "\n").count { $0.contains("refused a peer") && $0.contains("socket=\(socket)") } >= 10
            }
        }
        try #require(burstSpent, "\(daemon.child.stderr.text.suffix(3000))")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text.suffix(3000))")
        let lines = daemon.child.stderr.lines
        for socket in ["output", "journal"] {
            let logged = lines.count { $0.contains("refused a peer") && $0.contains("socket=\(socket)") }
            let heldBack = lines.filter { $0.contains("refusals at the handshake on the \(socket) socket not logged") }
                .compactMap { line in
                    line.components(separatedBy: "notLogged=").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
                }.reduce(0, +)
            let counted = daemon.stoppedField(socket == "output" ? "authRejectedOutput" : "authRejectedJournal")
            #expect(counted != nil && logged + heldBack == counted, "\(socket): \(logged) lines + \(heldBack) held back, counted \(String(describing: counted))")
            #expect(heldBack > 0, "\(socket): the flood was not held back at all")
        }
        // The held-back lines come before the stop summary.
        let summary = lines.lastIndex { $0.hasSuffix("stopped") }
        let lastHeldBack = lines.lastIndex { $0.contains("refusals at the handshake on the") && $0.contains("not logged") }
        #expect(summary != nil && lastHeldBack != nil && lastHeldBack! < summary!, "\(lines.suffix(10))")
    }
}
