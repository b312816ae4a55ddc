// Tests that hold their thread for long — waiting for a child process, a socket or a semaphore, or computing for
// seconds — run on a thread of their own, not on one of Swift concurrency's cooperative threads. That pool has as
// many threads as the machine has cores (two on the build machine), and Swift Testing runs a synchronous test on one
// of them: two tests waiting for a daemon held back every other test of the run, and two computing ones held back
// the runner itself (no test could start or finish meanwhile), so the suites that block were serialized and the run
// took as long as the longest of them (the fault tests, ~290 s of a ~10 min `make test`). With `.blocking` or
// `.computing` on a suite each of its tests runs on a new thread, and the suites run side by side: at most
// `CWTEST_WIDTH` blocking tests at once (default 6; 1 runs them one at a time), so that the machine is not flooded
// with daemons, and at most `CWTEST_CPU_WIDTH` computing ones (default: the number of processors, at most 4).
// `CWTEST_TIMES=1` prints each test's own time. (Not `CONTACTWATCH_…`: the executables the tests start inherit the
// environment, and the daemon refuses a `CONTACTWATCH_` variable it does not know.)
//
// How: the trait waits for a place (suspended: no thread held), then calls the test with a task executor preference
// for an executor that runs each job it is given on a new thread; the synchronous body is one such job.

import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Runs every job on a thread of its own (tests only: a thread per job is cheap beside a test that starts a daemon).
/// A plain detached pthread, so that a thread that cannot be made stops the run saying why (`Thread.start()` returns
/// nothing to check): a job that never runs is a test run that never ends.
final class ThreadPerJobExecutor: TaskExecutor {
    static let shared = ThreadPerJobExecutor()

    private final class Work {
        let job: UnownedJob
        let executor: UnownedTaskExecutor
        init(_ job: UnownedJob, _ executor: UnownedTaskExecutor) {
            self.job = job
            self.executor = executor
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let work = Unmanaged.passRetained(Work(UnownedJob(job), asUnownedTaskExecutor())).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 8 << 20)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        var status: Int32 = 0
        // EAGAIN (a process or container at its thread limit for a moment) is waited out for up to 2 s.
        for _ in 0..<200 {
            status = pthread_create(&thread, &attributes, { argument in
                let work = Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue()
                work.job.runSynchronously(on: work.executor)
                return nil
            }, work)
            guard status == EAGAIN else { break }
            usleep(10_000)
        }
        if status != 0 { fatalError("ThreadPerJobExecutor: pthread_create failed: \(String(cString: strerror(status)))") }
    }
}

/// At most `width` holders at once; a waiter suspends (it holds no thread) and is let in first come, first served.
final class Places: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(width: Int) { state = Mutex(State(free: width)) }

    func take() async {
        let taken = state.withLock { s -> Bool in
            guard s.free > 0 else { return false }
            s.free -= 1
            return true
        }
        if taken { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            // Given a place since the check above: take it at once.
            let waits = state.withLock { s -> Bool in
                if s.free > 0 {
                    s.free -= 1
                    return false
                }
                s.waiting.append(c)
                return true
            }
            if !waits { c.resume() }
        }
    }

    /// Passes the place to the first waiter, if any.
    func give() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty {
                s.free += 1
                return nil
            }
            return s.waiting.removeFirst()
        }
        next?.resume()
    }

    static func width(_ variable: String, default value: Int) -> Int {
        guard let text = ProcessInfo.processInfo.environment[variable] else { return value }
        guard let n = Int(text), n >= 1 else {
            FileHandle.standardError.write(Data("\(variable)=\(text) is not a whole number from 1; using \(value)\n".utf8))
            return value
        }
        return n
    }

    static let blocking = Places(width: width("CWTEST_WIDTH", default: 6))
    /// The processors, at most 4: a container limited to two CPUs by a quota may still count the host's (64, say),
    /// and 64 computing tests at once would starve the daemons of the waiting ones.
    static let computing = Places(width: width("CWTEST_CPU_WIDTH",
                                               default: min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))))
}

/// See the file's comment. On a suite it applies to every test in it (and in its nested suites).
package struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    let computing: Bool

    package var isRecursive: Bool { true }

    package func provideScope(for test: Test, testCase: Test.Case?,
                              performing function: @Sendable () async throws -> Void) async throws {
        // A suite's own scope, or a test function's outside its cases: nothing to run here.
        guard testCase != nil else { return try await function() }
        // Applied twice (a suite's trait and its test's, or `.blocking` and `.computing`): one place is enough, and a
        // second wait for one while holding the first could wait for ever.
        guard !Self.holdsPlace else { return try await function() }
        // The place first, where the runner is (a waiting case holds no thread, and needs none of its own), then the
        // test on threads of its own.
        let places = computing ? Places.computing : Places.blocking
        await places.take()
        defer { places.give() }
        try await withTaskExecutorPreference(ThreadPerJobExecutor.shared) {
            let start = ContinuousClock.now
            defer { Self.report(test, since: start) }
            try await Self.$holdsPlace.withValue(true) { try await function() }
        }
    }

    @TaskLocal private static var holdsPlace = false

    /// `CWTEST_TIMES=1`: one line per test case with its own time, without its wait for a place (Swift Testing's
    /// "passed after" counts that wait too), to find the tests that make a run long.
    private static let reportsTimes = ProcessInfo.processInfo.environment["CWTEST_TIMES"] == "1"

    private static func report(_ test: Test, since start: ContinuousClock.Instant) {
        guard reportsTimes else { return }
        let d = (ContinuousClock.now - start).components
        let seconds = Double(d.seconds) + Double(d.attoseconds) / 1e18
        let line = "test-time \(String(format: "%.2f", seconds)) s \(test.sourceLocation.fileName):\(test.sourceLocation.line) \(test.name)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

extension Trait where Self == OwnThreadTrait {
    /// The tests wait (for processes, sockets, semaphores): each on a thread of its own, at most `CWTEST_WIDTH` at once.
    package static var blocking: OwnThreadTrait { OwnThreadTrait(computing: false) }
    /// The tests compute for long: each on a thread of its own, at most `CWTEST_CPU_WIDTH` at once.
    package static var computing: OwnThreadTrait { OwnThreadTrait(computing: true) }
}
