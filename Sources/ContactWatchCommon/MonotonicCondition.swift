#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A lock with a condition whose timed waits run on `CLOCK_MONOTONIC`, for the daemon's threads that wait a while
/// for work: `NSCondition.wait(until:)` on Linux takes a `Date`, so its deadline is on the wall clock, and a wall
/// clock stepped back (an operator's `date -s`, a first NTP sync of a host booted an hour ahead) stretched the wait in
/// progress by the step — the writer's idle check of the store's side files, the background checkpointer's naps and
/// the log's flush at the stop all waited out the step (a clock fault tester, session 24, stepping the clock back one
/// hour: a deleted `-wal` unnoticed until the clock came back). Waits here end after the time asked for, whatever the
/// wall clock does.
///
/// Contract of the unsafe part: the mutex and condition live in memory allocated here and freed in `deinit`, never
/// moved; every method but `init` and `deinit` may be called from any thread; `wait` and `signal`/`broadcast` are
/// called with the lock held, as for `NSCondition`.
public final class MonotonicCondition: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init")
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        precondition(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC) == 0, "pthread_condattr_setclock")
        precondition(pthread_cond_init(condition, &attributes) == 0, "pthread_cond_init")
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }

    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Waits for a signal (the lock held; it is released while waiting and held again on return). May return without
    /// one (a spurious wake-up): test the predicate in a loop.
    public func wait() { pthread_cond_wait(condition, mutex).ignore() }

    /// Waits for a signal until `deadline` (a `Deadline`); false once the deadline has passed. May return true
    /// without a signal: test the predicate in a loop, with the same deadline.
    public func wait(until deadline: Deadline) -> Bool {
        var ts = deadline.asTimespec
        return pthread_cond_timedwait(condition, mutex, &ts) != ETIMEDOUT
    }

    public func signal() { pthread_cond_signal(condition).ignore() }

    public func broadcast() { pthread_cond_broadcast(condition).ignore() }

    /// A point on `CLOCK_MONOTONIC`.
    public struct Deadline: Sendable {
        public let nanoseconds: UInt64

        /// `seconds` from now (negative or NaN: now; at most about 292 years).
        public static func after(seconds: Double) -> Deadline {
            let span = seconds.isNaN || seconds <= 0 ? 0 : UInt64(min(seconds, 9e9) * 1e9)
            return Deadline(nanoseconds: Self.now().nanoseconds &+ span)
        }

        public static func now() -> Deadline {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Deadline(nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
        }

        public var hasPassed: Bool { Self.now().nanoseconds >= nanoseconds }

        var asTimespec: timespec {
            timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        }
    }
}

private extension Int32 {
    /// The pthread calls here fail only on misuse (an uninitialised object): nothing to act on at run time.
    func ignore() {}
}
