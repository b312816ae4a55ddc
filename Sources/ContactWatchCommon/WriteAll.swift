#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes all of `bytes` to `fd` with write(2), retrying on EINTR and partial writes, and waiting for room when the
/// descriptor is non-blocking and full (`EAGAIN`): a parent may hand its child a non-blocking pipe, and `generate` or
/// `tail` then stopped with exit 74 as soon as the pipe filled ("Resource temporarily unavailable"; the companion tool's
/// hunter, session 45). `waitMilliseconds` bounds each such wait (-1: for ever, as the tools' output waits); the
/// daemon's own direct writes (a log line before the log's thread, a fatal message before an exit) pass a bound, so a
/// parent that never drains cannot hold its exit (a reviewer, session 45). Returns nil when everything was written,
/// else the errno of the write that failed (`EAGAIN` when the wait ran out; the caller decides: the tools stop, the
/// log drops a line).
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, waitMilliseconds: Int32 = -1) -> Int32? {
    guard var p = bytes.baseAddress else { return nil }
    var left = bytes.count
    while left > 0 {
        #if canImport(Glibc)
        let n = Glibc.write(fd, p, left)
        #elseif canImport(Musl)
        let n = Musl.write(fd, p, left)
        #else
        let n = Darwin.write(fd, p, left)
        #endif
        if n < 0 {
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                // As a blocking write would: wait until the reader makes room (or goes away: POLLERR, then EPIPE).
                var room = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&room, 1, waitMilliseconds)
                if ready < 0 && errno != EINTR { return errno }
                if ready == 0 { return EAGAIN }
                continue
            }
            return errno
        }
        p += n
        left -= n
    }
    return nil
}

/// Writes `text` to standard error, whatever becomes of it: Foundation's `FileHandle.standardError.write(_:)` traps
/// when the descriptor is closed or its pipe's reader is gone (`EPIPE`, `EBADF`), and a configuration problem was
/// a crash (signal 4) instead of exit 64 under `… 2>&1 | head -1` or a broken journal stream (a fault tester,
/// session 34). SIGPIPE is ignored first, so a write to a pipe nobody reads fails with `EPIPE` instead of killing the
/// process; the failure itself is ignored (there is nowhere left to say it).
public func writeStandardError(_ text: String) {
    signal(SIGPIPE, SIG_IGN)
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { writeAll(2, UnsafeRawBufferPointer($0), waitMilliseconds: 2000) }
}
