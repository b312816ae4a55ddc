// Where plaintext is acceptable, shared by the daemon's security check and the companion tool's warning.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where plaintext is acceptable: `ipc://`, `inproc://`, or `tcp://` on a loopback address (cli.md, *Security*).
public enum EndpointExposure {
    /// Whether nobody on another host can reach `endpoint`.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        let address = endpoint.dropFirst("tcp://".count)
        // A connect endpoint may name a source address first ("tcp://src;dst"): judge both.
        return address.split(separator: ";", omittingEmptySubsequences: false).allSatisfy { isLoopbackHostPort($0) }
    }

    private static func isLoopbackHostPort(_ hostPort: Substring) -> Bool {
        guard let (host, bracketed) = host(of: hostPort) else { return false }
        if !bracketed && host.lowercased() == "localhost" { return true }
        return isLoopbackAddress(String(host))
    }

    /// The host of `host:port` or `[address]:port`, and whether it was in brackets; nil without a port's colon or
    /// with an unclosed bracket.
    private static func host(of hostPort: Substring) -> (host: Substring, bracketed: Bool)? {
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            return (hostPort[hostPort.index(after: hostPort.startIndex)..<close], true)
        }
        guard let colon = hostPort.lastIndex(of: ":") else { return nil }
        return (hostPort[..<colon], false)
    }

    /// Whether `host` is a numeric address that libzmq reads as loopback only. libzmq reads an address with
    /// `getaddrinfo`, so every spelling it takes is judged as it reads it: `127.1`, `2130706433`, `0177.0.0.1`,
    /// `::ffff:127.0.0.1` (an IPv4-mapped address) are loopback; a name other than `localhost` (the resolver
    /// decides it) and an interface name (`lo`: any address may be added to an interface) are not judged local.
    /// The companion tool's fault tester saw `tcp://127.1:…` and `tcp://[::ffff:127.0.0.1]:…` called exposed
    /// (session 25). (The metrics endpoint judges a host name by every address it resolves to, with
    /// `isLoopbackOnly`, from the configuration's one lookup: `MetricsAddress.lookUp`.)
    public static func isLoopbackAddress(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return false }
        defer { freeaddrinfo(list) }
        return isLoopbackOnly(first)
    }

    /// For a `tcp://` endpoint whose host (the destination's, after any `src;`) does not resolve: the host and the
    /// resolver's reason; nil otherwise (another transport, a numeric address, a name that resolves). libzmq resolves
    /// a connecting endpoint's name on each try and only says that the connection was retried, so `tail` pointed at a
    /// mistyped host warned "is the daemon running?" and tried for ever (a contract auditor, session 41).
    public static func unresolvedHost(_ endpoint: String) -> (host: String, reason: String)? {
        guard let found = lookUp(endpoint), let reason = found.failure else { return nil }
        return (found.host, reason)
    }

    /// What the resolver says of a `tcp://` endpoint's destination host (after any `src;`).
    public struct HostLookup: Sendable, Equatable {
        /// The host as written (without brackets).
        public var host: String
        /// Its addresses in numeric form (`127.0.0.1`, `::1`), as libzmq names a connection's peer; empty when it
        /// does not resolve.
        public var addresses: [String]
        /// The resolver's reason when the name does not resolve; nil when it does.
        public var failure: String?

        public init(host: String, addresses: [String], failure: String? = nil) {
            self.host = host
            self.addresses = addresses
            self.failure = failure
        }
    }

    /// The destination host of a `tcp://` endpoint and what the resolver says of it; nil for another transport, a
    /// wildcard, or when the resolver gives no verdict (`EAI_AGAIN`: no answer yet; `EAI_SYSTEM`). A numeric address
    /// resolves to itself. Blocks for as long as the resolver takes (`HostCheck` asks on a thread of its own).
    public static func lookUp(_ endpoint: String) -> HostLookup? {
        guard let (host, _) = destination(of: endpoint), !host.isEmpty, host != "*" else { return nil }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(String(host), nil, &hints, &list)
        if status == 0 {
            defer { freeaddrinfo(list) }
            var addresses: [String] = []
            var node = list
            while let info = node {
                var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if let address = info.pointee.ai_addr,
                   getnameinfo(address, info.pointee.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST) == 0 {
                    let numeric = String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if !addresses.contains(numeric) { addresses.append(numeric) }
                }
                node = info.pointee.ai_next
            }
            return HostLookup(host: String(host), addresses: addresses, failure: nil)
        }
        // EAI_AGAIN (no answer from the resolver yet) is not a verdict on the name.
        guard status != EAI_AGAIN, status != EAI_SYSTEM else { return nil }
        return HostLookup(host: String(host), addresses: [], failure: String(cString: gai_strerror(status)))
    }

    /// The host and port of a `tcp://` endpoint's destination (after any `src;`), the host without brackets; nil for
    /// another transport or without a port.
    public static func destination(of endpoint: String) -> (host: Substring, port: Substring)? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let destination = endpoint.dropFirst("tcp://".count).split(separator: ";", omittingEmptySubsequences: false).last ?? ""
        guard let (host, _) = host(of: destination), let colon = destination.lastIndex(of: ":") else { return nil }
        return (host, destination[destination.index(after: colon)...])
    }

    /// Whether every address of a `getaddrinfo` result is a loopback one (IPv4 127/8, `::1`, or `::ffff:127.…`).
    public static func isLoopbackOnly(_ first: UnsafeMutablePointer<addrinfo>) -> Bool {
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node {
            guard let address = info.pointee.ai_addr else { return false }
            switch Int32(info.pointee.ai_family) {
            case AF_INET:
                let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                guard ip >> 24 == 127 else { return false }
            case AF_INET6:
                let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                    withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) }
                }
                let isLoopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
                let isMappedLoopback = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
                    && bytes[12] == 127
                guard isLoopback || isMappedLoopback else { return false }
            default:
                return false
            }
            node = info.pointee.ai_next
        }
        return true
    }
}
