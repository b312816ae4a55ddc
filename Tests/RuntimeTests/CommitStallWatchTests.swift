@testable import ContactWatchRuntime
import Testing

/// A commit of the state store that does not end (a frozen file system): the loop kept turning, the watchdog was
/// pinged, and nothing said that nothing was published (a fault tester, session 35). `CommitStallWatch` decides what
/// to say from the writer's commit start and the clock.
@Suite("CommitStallWatch: a commit that does not end is said at warning, again every minute, and its end")
struct CommitStallWatchTests {
    static let s: UInt64 = 1_000_000_000

    @Test("nothing for commits under 10 s; a warning at 10 s, again after a minute, not between; the end said once")
    func stalledCommit() {
        var watch = CommitStallWatch()
        let start = 1_000 * Self.s
        #expect(watch.observe(started: nil, now: start) == nil)
        #expect(watch.observe(started: start, now: start + 9 * Self.s) == nil)
        #expect(watch.observe(started: nil, now: start + 9 * Self.s + 1) == nil, "a commit of 9 s ended: nothing to say")
        #expect(watch.observe(started: start, now: start + 10 * Self.s) == .waiting(seconds: 10))
        #expect(watch.observe(started: start, now: start + 30 * Self.s) == nil)
        #expect(watch.observe(started: start, now: start + 69 * Self.s) == nil)
        #expect(watch.observe(started: start, now: start + 70 * Self.s) == .waiting(seconds: 70))
        #expect(watch.observe(started: nil, now: start + 75 * Self.s) == .ended(seconds: 75))
        #expect(watch.observe(started: nil, now: start + 80 * Self.s) == nil)
    }

    @Test("a new commit that starts right after a stalled one ended: the end is said, the new one watched afresh")
    func nextCommitAfterAStall() {
        var watch = CommitStallWatch()
        let start = 50 * Self.s
        #expect(watch.observe(started: start, now: start + 12 * Self.s) == .waiting(seconds: 12))
        let next = start + 13 * Self.s
        #expect(watch.observe(started: next, now: next + 1) == .ended(seconds: 13))
        #expect(watch.observe(started: next, now: next + 5 * Self.s) == nil)
        #expect(watch.observe(started: next, now: next + 10 * Self.s) == .waiting(seconds: 10))
    }
}
