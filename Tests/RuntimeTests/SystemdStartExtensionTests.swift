@testable import ContactWatchRuntime
import Foundation
import Logging
import Synchronization
import Testing

/// `EXTEND_TIMEOUT_USEC=` while the start makes progress (README, *Start*): a store of a few GB took longer to check
/// than the unit's `TimeoutStartSec=60` (an operator audit, session 36).
@Suite("SystemdStartExtension: the start timeout extended while the start progresses")
struct SystemdStartExtensionTests {
    @Test("a tick that saw 10 ms of CPU time or 64 KiB read extends the start by 10 s and says so; one that saw less of both sends nothing")
    func message() throws {
        #expect(SystemdStartExtension.message(cpuUsed: 9_999_999, elapsedNanos: 30_000_000_000) == nil)
        #expect(SystemdStartExtension.message(cpuUsed: 0, elapsedNanos: 30_000_000_000) == nil)
        let message = try #require(SystemdStartExtension.message(cpuUsed: 10_000_000, elapsedNanos: 65_400_000_000))
        #expect(message == "EXTEND_TIMEOUT_USEC=10000000\nSTATUS=starting: checking and loading the state store (65 s so far)")
        // A check waiting on a slow disk: little CPU, but reading (systemd 252, session 38: timed out at 256 KB/s).
        #expect(SystemdStartExtension.message(cpuUsed: 1_000_000, bytesRead: 64 << 10, elapsedNanos: 3_000_000_000) != nil)
        #expect(SystemdStartExtension.message(cpuUsed: 1_000_000, bytesRead: (64 << 10) - 1, elapsedNanos: 3_000_000_000) == nil)
    }

    @Test("the bytes read are this process's rchar: a read of 1 MB moves them by 1 MB or more")
    func bytesRead() throws {
        let before = SystemdStartExtension.processBytesRead()
        #expect(before > 0)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rchar-\(UUID().uuidString)").path
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try Data(contentsOf: URL(fileURLWithPath: path))
        let after = SystemdStartExtension.processBytesRead()
        #expect(after - before >= 1 << 20, "\(before) → \(after)")
    }

    /// The timer itself, with a short tick and a CPU clock the test moves: stuck for its first readings (a start
    /// waiting on a lock or a read that never returns), then progressing.
    @Test("nothing is sent while the CPU time stands still; once it moves, each tick extends the start")
    func extendsOnlyWhileProgressing() throws {
        let readings = Atomic<Int>(0)
        let stuckReadings = 6
        let sent = Mutex<[(message: String, atReading: Int)]>([])
        let three = DispatchSemaphore(value: 0)
        let extension_ = SystemdStartExtension(tickNanos: 5_000_000, cpuNanos: {
            let n = readings.add(1, ordering: .relaxed).newValue
            // The first reading is the starting point; stuck up to `stuckReadings`, then 20 ms a tick.
            return n <= stuckReadings ? 1_000_000_000 : 1_000_000_000 + UInt64(n - stuckReadings) * 20_000_000
        }) { message in
            let count = sent.withLock { sent in
                sent.append((message, readings.load(ordering: .relaxed)))
                return sent.count
            }
            if count == 3 { three.signal() }
        }
        defer { extension_.stop() }
        #expect(three.wait(timeout: .now() + 30) == .success, "\(sent.withLock { $0.count }) messages")
        let first = try #require(sent.withLock { $0.first })
        #expect(first.atReading == stuckReadings + 1, "the first message came at reading \(first.atReading)")
        #expect(first.message.hasPrefix("EXTEND_TIMEOUT_USEC=10000000\nSTATUS=starting: "))
    }

    @Test("stopped, it sends nothing more")
    func stop() throws {
        let sent = Atomic<Int>(0)
        let ticks = Atomic<Int>(0)
        let tenTicks = DispatchSemaphore(value: 0)
        let extension_ = SystemdStartExtension(tickNanos: 5_000_000, cpuNanos: {
            let n = ticks.add(1, ordering: .relaxed).newValue
            if n == 12 { tenTicks.signal() }
            return UInt64(n) * 20_000_000
        }) { _ in sent.add(1, ordering: .relaxed) }
        #expect(tenTicks.wait(timeout: .now() + 30) == .success)
        extension_.stop()
        // A tick under way when stopped may still send (at most one); then nothing, over the time of 20 more ticks
        // of a timer with the same tick.
        let afterStop = sent.load(ordering: .relaxed)
        let later = DispatchSemaphore(value: 0)
        let probeTicks = Atomic<Int>(0)
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "probe"))
        timer.setEventHandler { if probeTicks.add(1, ordering: .relaxed).newValue == 20 { later.signal() } }
        timer.schedule(deadline: .now() + .milliseconds(5), repeating: .milliseconds(5))
        timer.resume()
        defer { timer.cancel() }
        #expect(later.wait(timeout: .now() + 30) == .success)
        #expect(sent.load(ordering: .relaxed) <= afterStop + 1, "\(sent.load(ordering: .relaxed)) sent, \(afterStop) when stopped")
    }
}

/// The start's long step said in the log as well as to systemd: a 10-minute start on a slow disk logged not a line
/// (the packaging check, session 39).
@Suite("StartProgressNotice: a long start said in the log")
struct StartProgressNoticeTests {
    @Test("the line says what the start does, for how long so far and how much it has read")
    func message() {
        #expect(StartProgressNotice.message(doing: "checking and loading the state store", elapsedNanos: 40_900_000_000,
                                            bytesRead: 1_234_567_890)
                == "still starting: checking and loading the state store (40 s so far, 1.2 GB read)")
        #expect(StartProgressNotice.amount(999) == "999 bytes")
        #expect(StartProgressNotice.amount(65_536) == "65 KB")
        #expect(StartProgressNotice.amount(158_000_000) == "158 MB")
        #expect(StartProgressNotice.amount(12_000_000_000) == "12.0 GB")
    }

    @Test("lines come after the first delay and then at each interval, at notice, with the bytes read since the start, until stopped")
    func lines() {
        let sink = LogLines()
        let read = Atomic<UInt64>(5_000_000)
        let notice = StartProgressNotice(logger: Logger(label: "test") { _ in MemoryLogHandler(sink: sink) },
                                         doing: "checking and loading the state store", first: 20_000_000,
                                         every: 20_000_000, bytesRead: { read.add(3_000_000, ordering: .relaxed).newValue })
        #expect(sink.waitFor(seconds: 30) { $0.message.contains("9 MB read") },
                "\(sink.entries.withLock { $0.map(\.message) })")
        notice.stop()
        let lines = sink.entries.withLock { $0 }
        // The first read (at the start) is the base: 3 MB more at each line.
        #expect(lines.count >= 3)
        for (k, line) in lines.prefix(3).enumerated() {
            #expect(line.message.hasPrefix("still starting: checking and loading the state store (")
                    && line.message.hasSuffix(" s so far, \(3 * (k + 1)) MB read)"), "\(line.message)")
        }
        #expect(lines.allSatisfy { $0.level == .notice })
    }
}
