import Dispatch
import Logging
import Synchronization

/// A `notice` line while a long step of the start goes on: 10 s into it, then every 30 s, until `stop`. Each start
/// checks the whole store and loads the state before it is ready; a store of a few GB takes minutes, and that was told
/// only to systemd (`STATUS=starting: … (N s so far)`, `SystemdStartExtension`): the log showed `open files limit`, then
/// nothing for the whole start, and a daemon started from a shell said nothing at all (the packaging check, session 39:
/// a 10-minute start on a slow disk logged not a line). The lines say how long so far and how much has been read
/// (`rchar`), so a stalled start (nothing more read) can be told from a slow one.
/// `@unchecked Sendable`: the timer is set up in `init` and only cancelled after (`cancel` is thread-safe).
final class StartProgressNotice: @unchecked Sendable {
    static let firstNanos: UInt64 = 10_000_000_000
    static let everyNanos: UInt64 = 30_000_000_000

    private let timer: any DispatchSourceTimer
    private let stopped = Stopped()

    /// Set by `stop`, read by the timer's handler.
    private final class Stopped: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// - Parameters:
    ///   - doing: what the step does, as the line says it ("checking and loading the state store").
    ///   - bytesRead: the bytes the process has read so far (`rchar`).
    init(logger: Logger, doing: String, first: UInt64 = firstNanos, every: UInt64 = everyNanos,
         bytesRead: @escaping @Sendable () -> UInt64 = SystemdStartExtension.processBytesRead) {
        let started = MonotonicClock.nanos()
        let readBefore = bytesRead()
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "contactwatch.start.progress"))
        self.timer = timer
        timer.setEventHandler { [stopped] in
            guard !stopped.value.load(ordering: .acquiring) else { return }
            logger.notice("\(Self.message(doing: doing, elapsedNanos: MonotonicClock.nanos() &- started, bytesRead: bytesRead() &- readBefore))")
        }
        timer.schedule(deadline: .now() + .nanoseconds(Int(first)), repeating: .nanoseconds(Int(every)))
        timer.resume()
    }

    /// Ends the lines (a tick already past its check may still write one).
    func stop() {
        stopped.value.store(true, ordering: .releasing)
        timer.cancel()
    }

    /// "still starting: checking and loading the state store (40 s so far, 1.2 GB read)".
    static func message(doing: String, elapsedNanos: UInt64, bytesRead: UInt64) -> String {
        "still starting: \(doing) (\(elapsedNanos / 1_000_000_000) s so far, \(amount(bytesRead)) read)"
    }

    /// Bytes in the largest unit that keeps a whole number ahead: "512 bytes", "64 KB", "158 MB", "1.2 GB".
    static func amount(_ bytes: UInt64) -> String {
        switch bytes {
        case ..<1_000: return "\(bytes) bytes"
        case ..<1_000_000: return "\(bytes / 1_000) KB"
        case ..<1_000_000_000: return "\(bytes / 1_000_000) MB"
        default: return "\(bytes / 1_000_000_000).\(bytes / 100_000_000 % 10) GB"
        }
    }
}
