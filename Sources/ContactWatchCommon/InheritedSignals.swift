#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A process inherits its parent's blocked-signal mask across `exec`: a supervisor, a test runner or a script that
/// spawns from a thread blocking SIGTERM (libdispatch's workers do, and many runtimes block signals in their pools)
/// started a `contactwatch tail` that SIGTERM and SIGINT never ended — the signals stayed pending for ever, and the
/// tool ran on (the fifty-second session's tail test; reproduced from Python with `pthread_sigmask` in `preexec_fn`).
/// `unblock` clears the block on the signals a program gives a meaning to, from its first instruction, before any
/// thread is made (threads inherit the mask of the thread that makes them). Dispositions are left as inherited: a
/// signal the parent chose to ignore (`nohup`'s SIGHUP, SIGINT of a background job) stays ignored, as for any program.
public enum InheritedSignals {
    /// The signals the programs act on: ending (SIGINT, SIGTERM; SIGHUP ends a tool at the terminal's hang-up) and
    /// the daemon's reload (SIGHUP).
    public static let acted: [Int32] = [SIGHUP, SIGINT, SIGTERM]

    /// Removes `signals` from the calling thread's blocked mask. Returns those that were blocked (for the tests).
    @discardableResult
    public static func unblock(_ signals: [Int32] = acted) -> [Int32] {
        var set = sigset_t(), old = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        guard pthread_sigmask(SIG_UNBLOCK, &set, &old) == 0 else { return [] }
        return signals.filter { sigismember(&old, $0) == 1 }
    }
}
