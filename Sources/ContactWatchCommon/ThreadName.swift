#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Names the calling thread as the kernel sees it (`top -H`, `ps -L`, `perf`, `/proc/PID/task/TID/comm`) by writing
/// `/proc/thread-self/comm`: Foundation's `Thread.name` does not reliably reach the kernel, and `pthread_setname_np`
/// is not visible to Swift here. Linux keeps at most 15 bytes (a longer name is refused), so the name is cut there.
/// A failure (no `/proc`, another OS) leaves the inherited name.
public func nameCurrentThread(_ name: String) {
    #if os(Linux)
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var bytes = Array(name.utf8.prefix(15))
    _ = write(fd, &bytes, bytes.count)
    #endif
}
