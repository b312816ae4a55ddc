import Dispatch
import Foundation

/// SIGHUP: re-read what can change without a restart (cli.md). Today the CURVE allow-lists; the handler runs on a
/// dispatch queue, never on the processing thread, and never ends the daemon.
final class ReloadSignal {
    private let source: any DispatchSourceSignal

    init(_ reload: @escaping @Sendable () -> Void) {
        signal(SIGHUP, SIG_IGN)  // delivered to the dispatch source only
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "contactwatch.reload"))
        source.setEventHandler(handler: reload)
        source.resume()
        self.source = source
    }

    func cancel() { source.cancel() }
}
