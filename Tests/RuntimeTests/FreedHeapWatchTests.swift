@testable import ContactWatchRuntime
import Synchronization
import Testing

/// A trim when memory was freed where no request shows it (journal clients that disconnect after their budgets
/// expired: a journal fault tester, session 36).
@Suite("FreedHeapWatch: a trim once the heap's free bytes grew")
struct FreedHeapWatchTests {
    final class Counts: @unchecked Sendable {
        var values: [Int]
        var reads = 0
        init(_ values: [Int]) { self.values = values }
        func read() -> Int {
            defer { reads += 1 }
            return values[min(reads, values.count - 1)]
        }
    }

    @Test("growth of 32 MiB over the lowest count seen asks for a trim, once; less, or a count that only falls, does not")
    func growth() {
        let mb = 1 << 20
        // The first count is the base; then: a fall (a new low), growth of 31 MiB over it, 32 over it (a trim), the
        // same count again (no more growth: no second trim), and 32 MiB more.
        let counts = Counts([100 * mb, 80 * mb, 111 * mb, 112 * mb, 112 * mb, 144 * mb])
        var watch = FreedHeapWatch(freeBytes: counts.read)
        var now = ContinuousClock.now
        var asked: [Bool] = []
        for step in [1, 1, 1, 1, 10] {
            now += .seconds(step)
            asked.append(watch.freed(at: now))
        }
        #expect(asked == [false, false, true, false, true])
    }

    @Test("after a trim, growth asks for none for 10 s, then does")
    func cooldown() {
        let mb = 1 << 20
        // A heap that churns by 64 MiB every second: trims 10 s apart, not every second.
        let counts = Counts([0] + (0..<30).map { $0 % 2 == 0 ? 64 * mb : 0 })
        var watch = FreedHeapWatch(freeBytes: counts.read)
        var now = ContinuousClock.now
        var trims: [Int] = []
        for second in 1...30 {
            now += .seconds(1)
            if watch.freed(at: now) { trims.append(second) }
        }
        #expect(trims == [1, 11, 21], "\(trims)")
    }

    @Test("looked at at most once a second")
    func throttled() {
        let counts = Counts([0, 64 << 20])
        var watch = FreedHeapWatch(freeBytes: counts.read)
        let now = ContinuousClock.now
        let first = watch.freed(at: now)
        #expect(first)
        #expect(counts.reads == 2)
        let second = watch.freed(at: now + .milliseconds(500))
        #expect(!second)
        #expect(counts.reads == 2, "the count was read again within the second")
    }

    @Test("the count it reads is glibc's: it grows when a large block is freed")
    func realHeap() {
        let before = FreedHeapWatch.heapFreeBytes()
        // 100 KiB blocks, below the mmap threshold, come from the arena; the last one, kept until the count is read, keeps
        // the others from joining the top of the heap (given back by free itself).
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<100 { blocks.append(UnsafeMutableRawPointer.allocate(byteCount: 100_000, alignment: 16)) }
        let held = FreedHeapWatch.heapFreeBytes()
        for block in blocks.dropLast() { block.deallocate() }
        let after = FreedHeapWatch.heapFreeBytes()
        blocks.last?.deallocate()
        #expect(after - held >= 90 * 100_000, "free bytes \(before) → \(held) while held → \(after) once freed")
    }
}
