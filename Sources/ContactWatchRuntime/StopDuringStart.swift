import Dispatch
import Foundation
import Logging
import Synchronization

/// SIGTERM and SIGINT before the processing loop runs: the start (the state directory's lock wait, the store's check
/// and load, the sockets' set-up) ends at once with exit 0 and a line that says so.
///
/// The service group's own handlers (swift-service-lifecycle) exist only once the group runs; before that both
/// signals had their default action, so a stop during a long start (a multi-GB store is checked at about 9 s a GB)
/// killed the daemon by the signal without a word, where cli.md asks for exit 0 within 5 s (systemd 252, session 37).
/// Nothing has been processed then, and the start is built to survive a `kill -9` at any point (its writes are SQLite
/// transactions, its renames ordered for a crash: `DurabilityTests`), so ending the process is no less safe: no stop
/// of the store's work is needed, only the line and the exit status.
///
/// The sources stay for the daemon's life: cancelled at the hand-over, a signal arriving before the group's sources
/// exist would meet `SIG_IGN` and be lost. After `handOver()` they do nothing and the group's handlers stop the daemon.
final class StopDuringStart: Sendable {
    private final class Flag: Sendable { let value = Atomic<Bool>(false) }
    private let serving: Flag
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]

    /// Installs the handlers. `exit` ends the process (`_exit` in the daemon; tests pass their own).
    init(logger: Logger, exit: @escaping @Sendable (Int32) -> Void = { _exit($0) }) {
        let serving = Flag()
        self.serving = serving
        let queue = DispatchQueue(label: "contactwatch.stop-during-start")
        sources = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { number, name in
            signal(number, SIG_IGN)  // delivered to the dispatch sources only (the group does the same)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                guard !serving.value.load(ordering: .acquiring) else { return }
                logger.notice("stopping: \(name) during start, before the processing loop ran: nothing was processed and the state store is as it was")
                _ = LogOutput.flush(timeout: 2)
                exit(0)
            }
            source.resume()
            return source
        }
    }

    /// From here the service group's handlers stop the daemon (called once the group runs).
    func handOver() { serving.value.store(true, ordering: .releasing) }
}
