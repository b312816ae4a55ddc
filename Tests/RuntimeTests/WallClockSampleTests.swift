import ContactWatchEngine
@testable import ContactWatchRuntime
import Testing

/// The drain loop's wall clock (`WallClockSample`): one reading per `eventsPerRead` messages, a fresh one for the
/// first message of every drain, and never a value from before the previous one.
@Suite("WallClockSample: the wall clock of a drain")
struct WallClockSampleTests {
    /// A clock that advances by one millisecond at each reading, counting them.
    final class CountingClock {
        var readings = 0
        func read() -> Millis {
            readings += 1
            return 1_796_000_000_000 + Millis(readings)
        }
    }

    @Test("reads the clock once per eventsPerRead messages, the first message included")
    func readsOncePerGroup() {
        let clock = CountingClock()
        var sample = WallClockSample()
        let k = WallClockSample.eventsPerRead
        #expect(k > 1)
        var values: [Millis] = []
        for _ in 0..<(2 * k + 3) { values.append(sample.now(clock.read)) }
        #expect(clock.readings == 3)
        #expect(values[0] == 1_796_000_000_001)
        #expect(values[0..<k].allSatisfy { $0 == values[0] })
        #expect(values[k] == 1_796_000_000_002)
        #expect(values[k..<(2 * k)].allSatisfy { $0 == values[k] })
        #expect(values[2 * k] == 1_796_000_000_003)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test("a new drain's sample reads the clock for its first message")
    func freshPerDrain() {
        let clock = CountingClock()
        var first = WallClockSample()
        _ = first.now(clock.read)
        _ = first.now(clock.read)
        var next = WallClockSample()  // the next drain
        #expect(next.now(clock.read) == 1_796_000_000_002)
        #expect(clock.readings == 2)
    }

    @Test("the real clock: a first reading lies between two clock_gettime readings around it")
    func realClock() {
        var sample = WallClockSample()
        let before = Pipeline.wallClockMillis()
        let now = sample.now()
        let after = Pipeline.wallClockMillis()
        #expect(before <= now && now <= after)
    }
}
