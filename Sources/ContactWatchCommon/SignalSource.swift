import Dispatch
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A signal taken by a dispatch source instead of its default action.
public enum SignalSource {
    /// Sets `number` to SIG_IGN (the source takes it) and returns a resumed source running `handler` on `queue`, once
    /// libdispatch has registered it (at most 5 s) when `waitForRegistration`. libdispatch registers a source later, on
    /// its own thread, where it installs its own handler: a signal in between met SIG_IGN and was dropped — a replay
    /// interrupted right after its first messages ran on (a clean clone's run, session 54). Keep the source alive
    /// while it applies.
    public static func make(_ number: Int32, queue: DispatchQueue, waitForRegistration: Bool = true,
                            handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler(handler: handler)
        let registered = DispatchSemaphore(value: 0)
        if waitForRegistration { source.setRegistrationHandler { registered.signal() } }
        source.resume()
        if waitForRegistration { _ = registered.wait(timeout: .now() + 5) }
        return source
    }
}
