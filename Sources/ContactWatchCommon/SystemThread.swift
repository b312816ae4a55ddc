#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A detached thread started with `pthread_create`, whose failure is said. Foundation's `Thread.start()` reports
/// nothing when the system refuses a thread (`EAGAIN`: a limit on processes or threads, `ulimit -u`, systemd's
/// `TasksMax=`, a container's pids limit): the body never ran, and a daemon waiting for it to say it had started
/// waited for ever — no `ready`, no line, and SIGTERM unanswered (the journal server, the writer and the state's
/// loader, under `RLIMIT_NPROC` 6–12: a process-environment hunter, session 53).
public enum SystemThread {
    /// The system refused a thread: `pthread_create`'s words and what to do.
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var name: String
        public var code: Int32
        public init(name: String, code: Int32) {
            self.name = name
            self.code = code
        }
        public var description: String {
            "cannot start the \(name) thread: \(String(cString: strerror(code))) (pthread_create"
                + (code == EAGAIN ? "; a limit on threads or processes: ulimit -u, TasksMax= of the unit or its slice, a container's pids limit)" : ")")
        }
    }

    /// Starts `body` on a new thread named `name` (`nameCurrentThread`), or throws `Refused`.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(Refused) {
        let box = Unmanaged.passRetained(Box(name: name, body: body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let code = pthread_create(&thread, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            nameCurrentThread(box.name)
            box.body()
            return nil
        }, box.toOpaque())
        guard code == 0 else {
            box.release()
            throw Refused(name: name, code: code)
        }
    }

    private final class Box: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
}
