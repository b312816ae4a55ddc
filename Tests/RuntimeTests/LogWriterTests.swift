@testable import ContactWatchRuntime
import ContactWatchCommon
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's standard error writer (`LogWriter`): a reader that stops reading costs log lines, counted and
/// reported, never the thread that logs.
@Suite("LogWriter: a bounded queue in front of standard error")
struct LogWriterTests {
    @Test("a standard error that blocks (a full pipe nobody reads): enqueue never blocks, lines past the bound are dropped and counted, a flush cannot complete; once it takes writes again, every kept line arrives in order and a notice says how many were dropped")
    func blockedWriter() throws {
        let sink = BlockingSink()
        let writer = LogWriter(fd: -1, limitBytes: 4096, sink: { sink.write($0) }) { dropped, _ in "dropped \(dropped)\n" }
        writer.enqueue("line 0000 " + String(repeating: "x", count: 89) + "\n")
        // The writer thread is now stuck in its first write, as in write(2) on a full pipe.
        #expect(sink.waitEntered(timeout: 30), "the writer thread never wrote")
        // 100 bytes a line: far more than the queue's 4 KiB.
        for i in 1..<500 { writer.enqueue("line \(String(format: "%04d", i)) " + String(repeating: "x", count: 89) + "\n") }
        #expect(!writer.flush(timeout: 0.2), "a flush completed while the writer was blocked")
        sink.release()
        #expect(writer.flush(timeout: 30))
        let lines = sink.text.split(separator: "\n").map(String.init)
        let kept = lines.filter { $0.hasPrefix("line ") }.compactMap { Int($0.dropFirst(5).prefix(4)) }
        let dropped = lines.filter { $0.hasPrefix("dropped ") }.compactMap { Int($0.dropFirst(8)) }
        #expect(kept == kept.sorted() && Set(kept).count == kept.count, "lines out of order or repeated")
        #expect(kept.first == 0 && kept.count > 1, "\(kept.prefix(5))")
        #expect(dropped.count == 1 && dropped[0] > 400, "drop notices: \(dropped)")
        #expect(kept.count + dropped.reduce(0, +) == 500, "\(kept.count) kept + \(dropped) dropped")
        #expect(lines.last?.hasPrefix("dropped ") == true, "the notice comes after the lines kept before it")
    }

    /// The refusal's own line was plain text whatever the log's format, with no journald priority (session 53's note).
    @Test("a writing thread the system refuses: the refusal is said as a warning line of the log's format, and lines are written where they are logged")
    func threadRefused() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let received = ReceivedBytes(reading: fds[0])
        let writer = LogWriter(fd: fds[1], startThread: { name, _ throws(SystemThread.Refused) in
            throw SystemThread.Refused(name: name, code: EAGAIN)
        }, warningLine: { "<4>W \($0)\n" }) { dropped, _ in "dropped \(dropped)\n" }
        writer.enqueue("after\n")
        #expect(writer.flush(timeout: 5))
        close(fds[1])
        #expect(received.waitClosed(timeout: 30))
        #expect(received.text == "<4>W cannot start the cw-log thread: Resource temporarily unavailable (pthread_create; a limit on "
                + "threads or processes: ulimit -u, TasksMax= of the unit or its slice, a container's pids limit): lines are "
                + "written by the threads that log them\nafter\n", "\(received.text)")
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

/// A writer's sink that blocks its first write until `release()`, as a full pipe nobody reads does.
private final class BlockingSink: @unchecked Sendable {
    private let lock = NSCondition()
    private var released = false
    private var entered = false
    private var chunks: [String] = []

    func write(_ chunk: String) {
        lock.lock()
        entered = true
        lock.broadcast()
        while !released { lock.wait() }
        chunks.append(chunk)
        lock.unlock()
    }

    func waitEntered(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        lock.lock(); defer { lock.unlock() }
        while !entered { if !lock.wait(until: deadline) { return false } }
        return true
    }

    func release() {
        lock.lock(); released = true; lock.broadcast(); lock.unlock()
    }

    var text: String {
        lock.lock(); defer { lock.unlock() }
        return chunks.joined()
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
