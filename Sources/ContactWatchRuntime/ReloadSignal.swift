import Dispatch
import Foundation

/// SIGHUP: re-read what can change without a restart (cli.md). The signal is taken on a dispatch queue, never on
/// the processing thread, and never ends the daemon; each one is logged (`received`) and handed to `SerialReloads`.
final class ReloadSignal {
    private let source: any DispatchSourceSignal
    private let reloads: SerialReloads

    init(_ reloads: SerialReloads, received: @escaping @Sendable () -> Void) {
        signal(SIGHUP, SIG_IGN)  // delivered to the dispatch source only
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "contactwatch.reload"))
        source.setEventHandler {
            received()
            reloads.request()
        }
        source.resume()
        self.source = source
        self.reloads = reloads
    }

    func cancel() {
        source.cancel()
        reloads.finish()
    }
}

/// Reloads one at a time, in the order they were asked for. A reload reads files and awaits, so reloads started
/// side by side (a task per SIGHUP) could finish out of order and leave an older file's values in force. Here one
/// task performs them in turn; requests that arrive while one runs collapse into a single reload after it (it reads
/// the files as they are then, which covers every request it replaces).
final class SerialReloads: Sendable {
    private let continuation: AsyncStream<Void>.Continuation
    private let task: Task<Void, Never>

    init(_ perform: @escaping @Sendable () async -> Void) {
        let (requests, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.continuation = continuation
        task = Task {
            for await _ in requests { await perform() }
        }
    }

    /// Asks for a reload; returns at once (callable from a signal handler's queue).
    func request() { continuation.yield() }

    /// No reload after the one in hand, if any.
    func finish() { continuation.finish() }

    /// Until every reload asked for before `finish()` has been performed (tests).
    func finished() async {
        await task.value
    }
}
