import Dispatch
import Foundation
import Synchronization

/// `EndpointExposure.lookUp` of a `tcp://` endpoint, worked out on a thread of its own so that a slow resolver never
/// holds the caller (`getaddrinfo` blocks for as long as the resolver takes: 10 s and more with one that does not
/// answer). `tail` and the daemon's connected input name a host that does not resolve in their "nothing connected"
/// warnings, where libzmq itself only retries; the addresses a name resolves to tell the daemon which configured
/// endpoint a connection libzmq names by address belongs to (`InputWatch`).
public final class HostCheck: Sendable {
    /// Whether the lookup is done, and its result (nil for another endpoint, a wildcard, or no verdict).
    private let result = Mutex<(known: Bool, lookup: EndpointExposure.HostLookup?)>((false, nil))
    private let done = DispatchSemaphore(value: 0)

    public init() {}

    /// Starts the lookup; `lookUp` is the resolver (tests give one of their own).
    public func start(_ endpoint: String,
                      lookUp: @escaping @Sendable (String) -> EndpointExposure.HostLookup? = { EndpointExposure.lookUp($0) }) {
        guard endpoint.hasPrefix("tcp://") else {
            result.withLock { $0.known = true }
            done.signal()
            return
        }
        do {
            try SystemThread.start(name: "cw-lookup") { [self] in
                let found = lookUp(endpoint)
                result.withLock { $0 = (true, found) }
                done.signal()
            }
        } catch {
            // No thread to spare (SystemThread): no verdict, as a lookup that never answers. Not looked up here: the
            // caller may be the processing loop, which must not wait on a resolver (a reviewer, session 53).
            result.withLock { $0 = (true, nil) }
            done.signal()
        }
    }

    /// The host and the resolver's reason when the name does not resolve; nil otherwise and until known.
    public var unresolved: (host: String, reason: String)? {
        result.withLock { r in r.lookup.flatMap { found in found.failure.map { (found.host, $0) } } }
    }

    /// Whether the lookup is done, and what it found.
    public var lookup: (known: Bool, found: EndpointExposure.HostLookup?) { result.withLock { ($0.known, $0.lookup) } }

    /// Waits up to `seconds` for the answer (tests); whether it came.
    public func waitUntilKnown(seconds: Double) -> Bool {
        guard done.wait(timeout: .now() + seconds) == .success else { return false }
        done.signal()
        return true
    }
}
