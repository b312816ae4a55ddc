@testable import ContactWatchRuntime
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's standard error writer (`LogWriter`): a reader that stops reading costs log lines, counted and
/// reported, never the thread that logs.
@Suite("LogWriter: a bounded queue in front of standard error")
struct LogWriterTests {
    @Test("a pipe nobody reads: enqueue never blocks, lines past the bound are dropped and counted; once read, every kept line arrives in order and a notice says how many were dropped")
    func unreadPipe() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let (readFD, writeFD) = (fds[0], fds[1])
        _ = fcntl(writeFD, 1031 /* F_SETPIPE_SZ */, 4096)
        let writer = LogWriter(fd: writeFD, limitBytes: 4096) { dropped, _ in "dropped \(dropped)\n" }
        // 100 bytes a line, 50 kB in all: far more than the pipe and the queue hold together.
        for i in 0..<500 { writer.enqueue("line \(String(format: "%04d", i)) " + String(repeating: "x", count: 89) + "\n") }
        // Nothing reads the pipe: the writer thread is stuck in write(2), so a flush cannot complete.
        #expect(!writer.flush(timeout: 0.2))
        // Read everything from another thread, then the flush completes.
        let received = ReceivedBytes(reading: readFD)
        #expect(writer.flush(timeout: 30))
        close(writeFD)
        #expect(received.waitClosed(timeout: 30))
        let lines = received.text.split(separator: "\n").map(String.init)
        let kept = lines.filter { $0.hasPrefix("line ") }.compactMap { Int($0.dropFirst(5).prefix(4)) }
        let dropped = lines.filter { $0.hasPrefix("dropped ") }.compactMap { Int($0.dropFirst(8)) }
        #expect(kept == kept.sorted() && Set(kept).count == kept.count, "lines out of order or repeated")
        #expect(!dropped.isEmpty && dropped.allSatisfy { $0 > 0 }, "no drop notice: \(lines.suffix(3))")
        #expect(kept.count + dropped.reduce(0, +) == 500, "\(kept.count) kept + \(dropped) dropped")
        #expect(kept.first == 0, "the first line was not written first")
    }

    @Test("a pipe that is read: nothing is dropped, flush returns once all is written")
    func readPipe() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let received = ReceivedBytes(reading: fds[0])
        let writer = LogWriter(fd: fds[1]) { dropped, _ in "dropped \(dropped)\n" }
        for i in 0..<2000 { writer.enqueue("\(i)\n") }
        #expect(writer.flush(timeout: 30))
        close(fds[1])
        #expect(received.waitClosed(timeout: 30))
        #expect(received.text == (0..<2000).map { "\($0)\n" }.joined())
    }
}

/// What a thread reading `fd` to end of file collected.
private final class ReceivedBytes: @unchecked Sendable {
    private let lock = NSCondition()
    private var bytes: [UInt8] = []
    private var done = false

    /// Starts the reader thread on `fd` (it closes `fd` at end of file).
    init(reading fd: Int32) {
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                lock.lock(); bytes += buffer[0..<n]; lock.unlock()
            }
            close(fd)
            lock.lock(); done = true; lock.broadcast(); lock.unlock()
        }.start()
    }

    var text: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits (at most `timeout` seconds) for end of file.
    func waitClosed(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        lock.lock(); defer { lock.unlock() }
        while !done { if !lock.wait(until: deadline) { return false } }
        return true
    }
}
