import ContactWatchCommon
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How the daemon's own threads share a small machine: two cores, three busy threads (README, *Design*: threads
/// placed for two cores; measured in `Benchmarks/README.md`, "Thread placement").
///
/// Names: Linux keeps at most 15 bytes of a thread's name (a longer one is refused and the thread keeps the name of
/// the thread that created it), so the names are short; `top -H`, `ps -L` and `perf` show them. The store's checkpoint
/// thread names itself `cw-checkpoint` (`Checkpointer`).
///
/// Priorities: the processing thread is the one every event waits for; the writer's work can be deferred (its
/// batches grow) and libzmq's I/O thread feeds the processing thread, so only the writer is lowered.
enum ThreadPlacement {
    static let pipeline = "cw-pipeline"
    static let writer = "cw-writer"
    static let journal = "cw-journal"

    /// Lowers the calling thread's scheduling priority by `steps` nice levels. On Linux the nice value belongs to
    /// the thread and `setpriority(PRIO_PROCESS, 0, …)` sets the caller's (never above 19). Lowering needs no
    /// privilege; a failure only leaves the priority as it was.
    static func lowerPriority(by steps: Int32) {
        guard steps > 0 else { return }
        errno = 0
        let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        if current == -1 && errno != 0 { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, min(19, current + steps))
    }

    /// Names the calling thread (`nameCurrentThread`: `/proc/thread-self/comm`). A failure leaves the inherited name.
    static func name(_ name: String) {
        nameCurrentThread(name)
    }

    /// The writer thread runs 5 nice levels below the processing thread (CFS then gives it about a quarter of a
    /// core it contends for with the processing thread, instead of half). On a saturated machine the processing
    /// thread keeps reading while the writer's batches grow — fewer, larger commits, each cheaper per event — up to
    /// `CommitPipeline`'s bound (200 × `state.commitMaxEvents` pending events), the only point at which the loop
    /// waits for the writer. With a core to spare the nice value changes nothing. Measured in
    /// `Benchmarks/README.md`, "Thread placement".
    static let writerNiceSteps: Int32 = 5

    /// libzmq I/O threads of the daemon's context: one. The daemon has one input connection per publisher and one
    /// per consumer; libzmq serves each connection on one I/O thread whatever their number, and on two cores a
    /// second I/O thread is one more thread to schedule beside the processing and writer threads, with nothing to do
    /// in parallel (measured in `Benchmarks/README.md`, "Thread placement"). `inproc://` (the durability signal) needs no
    /// I/O thread.
    static let ioThreads = 1
}
