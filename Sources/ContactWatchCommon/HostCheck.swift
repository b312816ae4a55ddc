import Dispatch
import Foundation
import Synchronization

/// `EndpointExposure.unresolvedHost` of a `tcp://` endpoint, worked out on a thread of its own so that a slow resolver
/// never holds the caller (`getaddrinfo` blocks for as long as the resolver takes: 10 s and more with one that does
/// not answer): nil until it is known (and for any other endpoint, or a name that resolves). `tail` and the daemon's
/// connected input name a host that does not resolve in their "nothing connected" warnings, where libzmq itself only
/// retries.
public final class HostCheck: Sendable {
    private let result = Mutex<(host: String, reason: String)?>(nil)
    private let done = DispatchSemaphore(value: 0)

    public init() {}

    public func start(_ endpoint: String) {
        guard endpoint.hasPrefix("tcp://") else {
            done.signal()
            return
        }
        Thread.detachNewThread { [self] in
            let found = EndpointExposure.unresolvedHost(endpoint)
            result.withLock { $0 = found }
            done.signal()
        }
    }

    public var unresolved: (host: String, reason: String)? { result.withLock { $0 } }

    /// Waits up to `seconds` for the answer (tests); whether it came.
    public func waitUntilKnown(seconds: Double) -> Bool {
        guard done.wait(timeout: .now() + seconds) == .success else { return false }
        done.signal()
        return true
    }
}
