#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard input, output and error as the process found them: both executables call `reopenClosed` first thing.
public enum StandardDescriptors {
    /// Which of descriptors 0, 1 and 2 were closed at start (`reopenClosed`).
    nonisolated(unsafe) public private(set) static var closedAtStart: Set<Int32> = []

    /// Opens each of descriptors 0–2 that is closed on /dev/null, before anything else opens a descriptor: otherwise
    /// the next one opened took the number and what was written to standard output or error went into it — the
    /// daemon's log lines into an eventfd or the state directory's lock file (a fault tester, session 34), `tail`'s
    /// lines into a libzmq eventfd, where an 8-byte line aborted it (`mailbox.cpp:99`; session 35). Called once.
    public static func reopenClosed() {
        for fd in Int32(0)...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            closedAtStart.insert(fd)
            _ = open("/dev/null", O_RDWR)
        }
    }

    /// Exits 64 with a line on standard error when the process cannot see its own command line. Swift on Linux reads
    /// the arguments from /proc/self/cmdline: without /proc (a chroot or a stripped-down container that does not
    /// mount it) `CommandLine.arguments` is empty — not even the program's name — and every flag given was dropped
    /// without a word: the daemon started on its defaults, answering on tcp://127.0.0.1:7401 and 7402 with ./state
    /// (a reviewer, session 39). An empty list is refused whatever its cause: even the program's name is
    /// missing (Linux 5.18 and later add an empty one when a program is started with no arguments at all; earlier
    /// kernels passed none, and that start is refused too, which no launcher does). Called once, at start, before the
    /// arguments are parsed; `linePrefix` is the daemon's `<3>` under journald.
    public static func exitWhenArgumentsAreUnreadable(program: String, linePrefix: String = "") {
        guard CommandLine.arguments.isEmpty else { return }
        let proc = access("/proc/self/cmdline", R_OK) == 0 ? "" : " (/proc is not mounted)"
        let text = "\(linePrefix)\(program): cannot read its command line from /proc/self/cmdline\(proc), so the flags "
            + "given are unknown; refusing to run on the defaults instead: mount /proc (mount -t proc proc /proc)\n"
        _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        _exit(64)
    }

    /// The executable's name for `failExitWhenStandardOutputIsLost`'s line.
    nonisolated(unsafe) private static var programName = ""

    /// Makes the process's exit report what it wrote through stdio to standard output and could not write: a line on
    /// standard error and exit 74 instead of the exit it was making. argument-parser prints `--help` and `--version`
    /// with `print` and exits 0, so `contactwatch --version > /dev/full` exited 0 without a word (a fault tester,
    /// session 35); the lines the executables write themselves check each write. Called once, at start.
    public static func failExitWhenStandardOutputIsLost(program: String) {
        programName = program
        atexit {
            // The C stream `stdout` itself is never reassigned; read once, at exit, on the exiting thread.
            nonisolated(unsafe) let out = stdout
            let flushed = fflush(out) == 0
            let error = errno
            guard !flushed || ferror(out) != 0 else { return }
            let why = flushed ? "a write failed" : String(cString: strerror(error))
            let text = "\(StandardDescriptors.programName): standard output could not be written (\(why)): what was "
                + "printed is incomplete\n"
            _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            _exit(74)
        }
    }
}
