import ContactWatchCommon
import Foundation
import Testing

/// The waits of the writer, the checkpointer and the log's flush run on `CLOCK_MONOTONIC` (a clock fault tester,
/// session 24: on `NSCondition`'s wall-clock deadlines a clock stepped back one hour stretched the writer's idle check
/// of the store's side files by that hour). A step of the wall clock cannot be made here without privileges over the
/// whole machine; what can fail is the clock the condition waits on: a monotonic deadline (seconds since boot) read
/// on the wall clock lies in 1970, and a timed wait on it ends at once.
@Suite("MonotonicCondition: timed waits on the monotonic clock")
struct MonotonicConditionTests {
    @Test("a timed wait with nobody signalling ends by timing out, and not before its deadline on the monotonic clock")
    func waitsOutItsDeadline() {
        let condition = MonotonicCondition()
        let start = MonotonicCondition.Deadline.now()
        let deadline = MonotonicCondition.Deadline.after(seconds: 0.2)
        condition.lock()
        while condition.wait(until: deadline) {}  // a spurious wake-up waits again
        condition.unlock()
        let waited = Double(MonotonicCondition.Deadline.now().nanoseconds - start.nanoseconds) / 1e9
        #expect(deadline.hasPassed)
        #expect(waited >= 0.2, "the wait ended after \(waited) s: its deadline was read on another clock")
    }

    @Test("a signal ends a wait before its deadline, and the predicate it guards is seen")
    func signalEndsTheWait() {
        let condition = MonotonicCondition()
        nonisolated(unsafe) var ready = false
        let thread = Thread {
            condition.lock()
            ready = true
            condition.signal()
            condition.unlock()
        }
        let deadline = MonotonicCondition.Deadline.after(seconds: 60)
        condition.lock()
        thread.start()
        var inTime = true
        while !ready && inTime { inTime = condition.wait(until: deadline) }
        let seen = ready
        condition.unlock()
        #expect(seen && !deadline.hasPassed)
    }

    @Test("a deadline of zero, negative or NaN seconds has passed at once; a huge one is far ahead, not wrapped")
    func deadlineEdges() {
        #expect(MonotonicCondition.Deadline.after(seconds: 0).hasPassed)
        #expect(MonotonicCondition.Deadline.after(seconds: -5).hasPassed)
        #expect(MonotonicCondition.Deadline.after(seconds: .nan).hasPassed)
        #expect(!MonotonicCondition.Deadline.after(seconds: .infinity).hasPassed)
        #expect(!MonotonicCondition.Deadline.after(seconds: 1e300).hasPassed)
    }
}
