import ContactWatchCommon
import Dispatch
import Foundation
import Synchronization

/// SIGHUP: re-read what can change without a restart (cli.md). The signal is taken on a dispatch queue, never on
/// the processing thread, and never ends the daemon; each one is logged (`received`) and handed to `SerialReloads`.
final class ReloadSignal {
    private let source: any DispatchSourceSignal
    private let reloads: SerialReloads
    private let queue = DispatchQueue(label: "contactwatch.reload")

    init(_ reloads: SerialReloads, received: @escaping @Sendable () -> Void) {
        // Delivered to the dispatch source only. Not waited for: with the system's threads used up, libdispatch may
        // register it late or never (a loaded run with the wait saw ThreadLimitTests' start sit silent 30 s once,
        // session 54; the cause not proven); a SIGHUP in that moment is covered as one during the start is (the files'
        // stamps are compared once the handler is installed).
        let source = SignalSource.make(SIGHUP, queue: queue, waitForRegistration: false) {
            received()
            reloads.request()
        }
        self.source = source
        self.reloads = reloads
    }

    /// Asks for a reload as a SIGHUP does.
    func request() { reloads.request() }

    /// No SIGHUP is taken from here on, and no reload asked for is started (one in progress finishes).
    func cancel() {
        source.cancel()
        // A handler already running (its `received` line said) ends before the halt, so that its request is either
        // performed or said to be dropped (`SerialReloads`' `dropped`), before `stop()` returns: it was dropped
        // without a word, its `SIGHUP received` line sometimes after `stopped` (a bug hunter, session 47: F2).
        queue.sync {}
        reloads.halt()
    }

    /// `cancel()`, then waits for a reload in progress to end: at the stop, before the `stopped` line, the ZAP handler's
    /// stop and the context's close. A SIGHUP taken during the stop ran its reload beside them, and its lines came
    /// after `stopped` (a runtime reviewer, session 45, under a storm of SIGHUPs).
    func stop() async {
        cancel()
        await reloads.finished()
    }
}

/// Reloads one at a time, in the order they were asked for. A reload reads files and awaits, so reloads started
/// side by side (a task per SIGHUP) could finish out of order and leave an older file's values in force. Here one
/// task performs them in turn; requests that arrive while one runs collapse into a single reload after it (it reads
/// the files as they are then, which covers every request it replaces).
final class SerialReloads: Sendable {
    private let continuation: AsyncStream<Void>.Continuation
    private let task: Task<Void, Never>
    private let halted = Halted()

    /// The flag `halt()` sets, shared with the consuming task.
    private final class Halted: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// `dropped`: called once when requests asked for were not performed because of `halt()` (the daemon says so).
    init(dropped: @escaping @Sendable () -> Void = {}, _ perform: @escaping @Sendable () async -> Void) {
        let (requests, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.continuation = continuation
        let halted = self.halted
        task = Task {
            for await _ in requests {
                if halted.value.load(ordering: .acquiring) {
                    dropped()
                    break
                }
                await perform()
            }
        }
    }

    /// Asks for a reload; returns at once (callable from a signal handler's queue).
    func request() { continuation.yield() }

    /// No request from here on: those already asked for are still performed (`finished()` waits for them).
    func finish() { continuation.finish() }

    /// No request from here on, and none asked for is started any more: only a reload in progress ends.
    func halt() {
        halted.value.store(true, ordering: .releasing)
        continuation.finish()
    }

    /// Until every reload asked for before `finish()` has been performed (tests).
    func finished() async {
        await task.value
    }
}
