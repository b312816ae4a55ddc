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
        guard endpoint.hasPrefix("tcp://") else { return nil }
        let destination = endpoint.dropFirst("tcp://".count).split(separator: ";", omittingEmptySubsequences: false).last ?? ""
        guard let (host, _) = host(of: destination), !host.isEmpty, host != "*" else { return nil }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(String(host), nil, &hints, &list)
        if status == 0 { freeaddrinfo(list); return nil }
        // EAI_AGAIN (no answer from the resolver yet) is not a verdict on the name.
        guard status != EAI_AGAIN, status != EAI_SYSTEM else { return nil }
        return (String(host), String(cString: gai_strerror(status)))
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
