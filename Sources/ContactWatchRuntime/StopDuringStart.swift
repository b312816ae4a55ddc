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
/// One state decides who stops the daemon, changed by compare-and-exchange on both sides (a reviewer, session 38):
/// `starting` → `exiting` by a signal's handler (it exits), or → `serving` by `handOver()` (the loop may run), or →
/// `ended` by `startEnded()` (the start failed: its own exit status stands, not 0). A handler that finds `serving`
/// sends its signal again, once: libdispatch reads a signal once and hands it only to the sources that exist then, so
/// one read just before the group's sources existed reached this handler alone, and was lost. The group takes a
/// duplicate as the stop it already is.
///
/// The sources stay for the daemon's life: cancelled at the hand-over, a signal arriving before the group's sources
/// exist would be lost. No `SIG_IGN` is set: libdispatch installs its own handler when it registers a source, and a
/// signal ignored before that is dropped by the kernel; with the default action it still ends the daemon, by the signal.
final class StopDuringStart: Sendable {
    private enum State: Int { case starting = 0, serving = 1, exiting = 2, ended = 3 }
    private final class Shared: Sendable {
        let state = Atomic<Int>(State.starting.rawValue)
        let resent = Atomic<Bool>(false)
    }
    private let shared: Shared
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]

    /// Installs the handlers. `exit` ends the process (`_exit` in the daemon; tests pass their own).
    init(logger: Logger, exit: @escaping @Sendable (Int32) -> Void = { _exit($0) }) {
        let shared = Shared()
        self.shared = shared
        let queue = DispatchQueue(label: "contactwatch.stop-during-start")
        sources = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { number, name in
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                let (exchanged, found) = shared.state.compareExchange(
                    expected: State.starting.rawValue, desired: State.exiting.rawValue, ordering: .acquiringAndReleasing)
                if exchanged {
                    logger.notice("stopping: \(name) during start, before the processing loop ran: nothing was processed and the state store is as it was")
                    _ = LogOutput.flush(timeout: 2)
                    exit(0)
                } else if found == State.serving.rawValue,
                          !shared.resent.exchange(true, ordering: .acquiringAndReleasing) {
                    kill(getpid(), number)  // for the group's handler, which may not have seen this one
                }
            }
            source.resume()
            return source
        }
    }

    /// From here the service group's handlers stop the daemon (called once the group runs). False when a signal's
    /// handler is already ending the process: the loop must not start.
    func handOver() -> Bool {
        shared.state.compareExchange(expected: State.starting.rawValue, desired: State.serving.rawValue,
                                     ordering: .acquiringAndReleasing).exchanged
    }

    /// Whether a signal's handler is ending the process (the start's lines after its `stopping` would read wrong).
    var isStopping: Bool { shared.state.load(ordering: .acquiring) == State.exiting.rawValue }

    /// The start failed before the hand-over: its exit status stands, and a signal from here on changes nothing.
    func startEnded() {
        _ = shared.state.compareExchange(expected: State.starting.rawValue, desired: State.ended.rawValue,
                                         ordering: .acquiringAndReleasing)
    }
}
