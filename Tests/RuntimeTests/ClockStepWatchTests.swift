@testable import ContactWatchRuntime
import Testing

/// A step of the wall clock is told from time passing by the monotonic clock (a clock fault tester, session 24:
/// steps of days were silent).
@Suite("ClockStepWatch: steps of the wall clock against the monotonic clock")
struct ClockStepWatchTests {
    @Test("time passing is no step; a step of more than a minute either way is, once; the clock is read at most once a second")
    func steps() {
        let t0 = ContinuousClock.now
        var watch = ClockStepWatch(wall: 1_000_000, at: t0)
        var reads = 0
        func observe(_ wall: Int64, after seconds: Double) -> Int64? {
            watch.observe(wall: { reads += 1; return wall }, at: t0 + .milliseconds(Int64(seconds * 1000)))
        }
        #expect(observe(1_000_500, after: 0.5) == nil && reads == 0, "read before a second passed")
        #expect(observe(1_002_000, after: 2) == nil)            // two seconds, two seconds on the wall
        #expect(observe(1_062_000, after: 3) == nil)            // 59 s more than the monotonic second: a slew, not said
        #expect(observe(1_063_000 + 3_600_000, after: 4) == 3_600_000)  // an hour forward
        #expect(observe(4_664_000, after: 5) == nil)            // said once: time passes normally after it
        #expect(observe(4_665_000 - 86_400_000 * 500, after: 6) == -86_400_000 * 500)  // 500 days back
        #expect(reads == 5)
    }

    @Test("the step is written in days, hours, minutes and seconds")
    func text() {
        #expect(ClockStepWatch.text(61_000) == "1 min 1 s")
        #expect(ClockStepWatch.text(-3_600_000) == "1 h 0 min 0 s")
        #expect(ClockStepWatch.text(401 * 86_400_000 + 5_000) == "401 d 0 h 0 min 5 s")
    }
}
