import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

/// A TCP connection whose peer's host vanished without closing it (a crash, a power loss, a partition) is never seen
/// to end unless the kernel probes it: a connected input stayed deaf for good, in silence (the publisher's next process
/// never got its subscription), and a lost consumer kept counting as a subscriber (a bug hunter, session 46, proved
/// both in a network namespace whose loopback went down while the peer died). The daemon's sockets now set TCP
/// keepalive: probed after 10 s of silence, ended after 3 probes 5 s apart. Shown here from the kernel's own table
/// (`/proc/net/tcp`): the daemon's end of each connection has its keepalive timer running, due within 10 s.
@Suite("TCP keepalive on the daemon's connections", .blocking)
struct KeepaliveTests {
    /// One row of `/proc/net/tcp`: local and remote port, state, timer kind and clock ticks until it fires.
    struct Row {
        let localPort: Int, remotePort: Int, state: Int, timer: Int, ticks: Int
    }

    static func rows() throws -> [Row] {
        // Read to its end with read(2): the file's size is 0, and a reader that trusts it may stop after the first
        // page (a full test run has hundreds of sockets, and only listeners were in the first).
        let fd = open("/proc/net/tcp", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(.ENOENT) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 5 else { return nil }
            func port(_ s: Substring) -> Int? { s.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
            let timer = f[5].split(separator: ":")
            guard let l = port(f[1]), let r = port(f[2]), let st = Int(f[3], radix: 16), timer.count == 2,
                  let kind = Int(timer[0], radix: 16), let ticks = Int(timer[1], radix: 16) else { return nil }
            return Row(localPort: l, remotePort: r, state: st, timer: kind, ticks: ticks)
        }
    }

    static func port(of endpoint: String) -> Int? { endpoint.split(separator: ":").last.flatMap { Int($0) } }

    @Test("the connected input's connection and an output consumer's connection have the kernel's keepalive timer, due within 10 s")
    func keepaliveOnInputAndOutput() throws {
        let dir = try TemporaryDirectory()
        let context = try ZMQContext()
        defer { context.close() }
        let publisher = try context.socket(.xpub, lingerMilliseconds: 0)
        defer { publisher.close() }
        try publisher.bind("tcp://127.0.0.1:*")
        let inputPort = try #require(Self.port(of: publisher.lastEndpoint))
        let daemon = try Child("contactwatchd", ["--input", publisher.lastEndpoint, "--output", "tcp://127.0.0.1:*",
                                                 "--state-dir", dir.file("state")])
        defer { _ = daemon.terminate() }
        #expect(daemon.stderr.wait(timeout: 60) { $0.contains(" ready") }, "\(daemon.stderr.text)")
        // The daemon's subscription reaches the publisher: its connection is up.
        let subscription = try publisher.receiveCopy(timeoutMilliseconds: 30_000)
        try #require(subscription != nil, "the daemon never subscribed: \(daemon.stderr.text)")
        let output = try #require(daemon.stderr.lines.first { $0.hasSuffix("] bound") && $0.contains("socket=output ") }?
            .split(separator: " ").first { $0.hasPrefix("endpoint=") }.map { String($0.dropFirst("endpoint=".count)) })
        let outputPort = try #require(Self.port(of: output))
        let consumer = try context.socket(.sub, lingerMilliseconds: 0)
        defer { consumer.close() }
        try consumer.subscribe("alert.")
        try consumer.connect(output)
        #expect(daemon.stderr.wait(timeout: 30) { $0.contains("subscriber joined") }, "\(daemon.stderr.text)")

        let established = 1, keepaliveTimer = 2, ticksPerSecond = 100  // USER_HZ
        // The daemon's end of its input connection (the publisher's port is the remote one) and of the consumer's
        // connection (the output's port is the local one). Just after a send the kernel shows the retransmit timer
        // (kind 1) until the peer's ACK: the table is read again until both are idle (at most 10 s).
        var ends: [(String, Row)] = []
        let deadline = Date().addingTimeInterval(10)
        repeat {
            let rows = try Self.rows()
            let input = rows.filter { $0.remotePort == inputPort && $0.state == established }
            let accepted = rows.filter { $0.localPort == outputPort && $0.state == established }
            try #require(input.count == 1 && accepted.count == 1, "\(rows.filter { $0.state == established })")
            ends = [("input", input[0]), ("output", accepted[0])]
            if ends.allSatisfy({ $0.1.timer != 1 }) { break }
            usleep(20_000)
        } while Date() < deadline
        for (what, row) in ends {
            #expect(row.timer == keepaliveTimer, "\(what): no keepalive timer (timer kind \(row.timer))")
            #expect(row.ticks <= 10 * ticksPerSecond, "\(what): keepalive due in \(row.ticks) ticks, more than 10 s")
        }
        #expect(daemon.terminate() == 0)
    }
}
