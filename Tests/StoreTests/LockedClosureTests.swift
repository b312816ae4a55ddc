import ContactWatchTestThreads
@testable import ContactWatchStore
import GRDB
import Synchronization
import Testing

/// A closure kept in a `Mutex` is read without changing it: a bare closure as a `Mutex`'s value gained two
/// reabstraction thunks at every `withLock` read (swiftlang/swift#91348), so the checkpointer's precheck, read before
/// every checkpoint, grew the daemon by ~1.7 kB a second under load and would have overflowed the thread's stack after
/// ~130,000 checkpoints (session 48). The chain shows as a deeper stack at each call: the closures here note where
/// their own frame sits, which must not move from one call to the next.
@Suite("closures kept in a Mutex are read without growing", .computing)
struct LockedClosureTests {
    /// Where the caller's frame is: lower as the chain of thunks above it grows.
    @inline(never) static func frameAddress() -> Int {
        var local = 0
        return withUnsafeMutablePointer(to: &local) { Int(bitPattern: $0) }
    }

    @Test("the checkpointer's precheck, read before 200 checkpoints, is called from the same depth each time")
    func precheckDoesNotDeepen() throws {
        let record = CheckpointRecord()
        let queue = try DatabaseQueue()
        let frames = Mutex<[Int]>([])
        record.setPrecheck {
            frames.withLock { $0.append(Self.frameAddress()) }
            return true
        }
        for _ in 0..<200 { record.run(on: queue) }
        let seen = frames.withLock { $0 }
        try #require(seen.count == 200, "the precheck was not asked before each checkpoint: \(seen.count)")
        #expect(seen.last == seen.first,
                "the precheck sat \(seen.first! - seen.last!) bytes deeper after 200 reads: the Mutex's closure grows")
    }

    @Test("the lock wait's observer and give-up, read at 100 busy callbacks, are called from the same depth each time")
    func lockWaitClosuresDoNotDeepen() {
        let wait = LockWait(timeoutMilliseconds: 60_000)
        let observed = Mutex<[Int]>([])
        let asked = Mutex<[Int]>([])
        wait.setObserver { _ in observed.withLock { $0.append(Self.frameAddress()) } }
        wait.givingUp(when: {
            asked.withLock { $0.append(Self.frameAddress()) }
            return false
        }) {
            // The first pause is 1 ms: 100 of them take a tenth of a second.
            for _ in 0..<100 { _ = wait.shouldRetry(afterTries: 0) }
        }
        let o = observed.withLock { $0 }, a = asked.withLock { $0 }
        #expect(o.count == 100 && a.count == 100, "observer \(o.count), give-up \(a.count) of 100")
        #expect(o.last == o.first, "the observer sat \((o.first ?? 0) - (o.last ?? 0)) bytes deeper after 100 reads")
        #expect(a.last == a.first, "the give-up sat \((a.first ?? 0) - (a.last ?? 0)) bytes deeper after 100 reads")
    }
}
