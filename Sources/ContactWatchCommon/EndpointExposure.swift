// Where plaintext is acceptable, shared by the daemon's security check and the companion tool's warning.

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
        let host: Substring
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return false }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            return host == "::1" || host.lowercased() == "0:0:0:0:0:0:0:1"
        }
        guard let colon = hostPort.lastIndex(of: ":") else { return false }
        host = hostPort[..<colon]
        if host.lowercased() == "localhost" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { p in !p.isEmpty && p.count <= 3 && p.allSatisfy(\.isASCII) && p.allSatisfy(\.isNumber) && Int(p)! <= 255 }
    }
}
