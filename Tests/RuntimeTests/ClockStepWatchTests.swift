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
            let step = watch.observe(wall: { reads += 1; return wall }, at: t0 + .milliseconds(Int64(seconds * 1000)))
            #expect(step == nil || step?.count == 1)
            return step?.millis
        }
        #expect(observe(1_000_500, after: 0.5) == nil && reads == 0, "read before a second passed")
        #expect(observe(1_002_000, after: 2) == nil)            // two seconds, two seconds on the wall
        #expect(observe(1_062_000, after: 3) == nil)            // 59 s more than the monotonic second: not said alone
        #expect(observe(1_063_000 + 3_600_000, after: 4) == 3_600_000)  // an hour forward
        #expect(observe(4_664_000, after: 5) == nil)            // said once: time passes normally after it
        #expect(observe(4_665_000 - 86_400_000 * 500, after: 6) == -86_400_000 * 500)  // 500 days back
        #expect(reads == 5)
    }

    @Test("steps of under a minute each are said once they come to more than a minute; the comparison's own error is not added up")
    func smallSteps() {
        let t0 = ContinuousClock.now
        var watch = ClockStepWatch(wall: 0, at: t0)
        var wall: Int64 = 0
        var said: [ClockStepWatch.Step] = []
        // A day of looks a second apart, each off by 999 ms (under the floor): 86 s in all, never said.
        for k in 1...86_400 {
            wall += 1_000 + (k.isMultiple(of: 2) ? 999 : -999)
            if let step = watch.observe(wall: { wall }, at: t0 + .seconds(k)) { said.append(step) }
        }
        #expect(said.isEmpty, "the comparison's error added up: \(said)")
        // Then steps of 30 s forward, one every 10 s: the third makes 90 s, said as one, with the count; then anew.
        var k = 86_400
        for _ in 0..<6 {
            for _ in 0..<10 {
                k += 1
                wall += 1_000
                if let step = watch.observe(wall: { wall }, at: t0 + .seconds(k)) { said.append(step) }
            }
            wall += 30_000
        }
        k += 1
        wall += 1_000
        if let step = watch.observe(wall: { wall }, at: t0 + .seconds(k)) { said.append(step) }
        #expect(said == [ClockStepWatch.Step(millis: 90_000, count: 3), ClockStepWatch.Step(millis: 90_000, count: 3)])
        // Steps back and forth that cancel out are not said.
        said = []
        for j in 0..<20 {
            k += 1
            wall += 1_000 + (j.isMultiple(of: 2) ? 40_000 : -40_000)
            if let step = watch.observe(wall: { wall }, at: t0 + .seconds(k)) { said.append(step) }
        }
        #expect(said.isEmpty, "\(said)")
        // …and are not counted in a drift said after them: three steps of 30 s make it, "in 3 steps" (it said 23).
        for _ in 0..<3 {
            k += 1
            wall += 1_000 + 30_000
            if let step = watch.observe(wall: { wall }, at: t0 + .seconds(k)) { said.append(step) }
        }
        #expect(said == [ClockStepWatch.Step(millis: 90_000, count: 3)], "\(said)")
    }

    /// A residue of small steps joined a later big step's aftermath: +50 s, then an hour forward (said), then +15 s was
    /// said as "1 min 5 s in 2 steps" (a reviewer, session 33).
    @Test("a step of more than a minute leaves behind what small steps had added up")
    func bigStepClearsTheSmallSum() {
        let t0 = ContinuousClock.now
        var watch = ClockStepWatch(wall: 0, at: t0)
        var said: [ClockStepWatch.Step] = []
        for (k, wall) in [(1, 1_000 + 50_000), (2, 52_000 + 3_600_000), (3, 3_653_000 + 15_000), (4, 3_669_000)] as [(Int, Int64)] {
            if let step = watch.observe(wall: { wall }, at: t0 + .seconds(k)) { said.append(step) }
        }
        #expect(said == [ClockStepWatch.Step(millis: 3_600_000, count: 1)], "\(said)")
    }

    @Test("the step is written in days, hours, minutes and seconds")
    func text() {
        #expect(ClockStepWatch.text(61_000) == "1 min 1 s")
        #expect(ClockStepWatch.text(-3_600_000) == "1 h 0 min 0 s")
        #expect(ClockStepWatch.text(401 * 86_400_000 + 5_000) == "401 d 0 h 0 min 5 s")
    }
}
