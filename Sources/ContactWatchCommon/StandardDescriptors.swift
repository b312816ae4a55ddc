#if canImport(Glibc)
import Glibc
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
}
