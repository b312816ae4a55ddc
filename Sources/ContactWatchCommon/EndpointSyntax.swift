/// The shape of a `tcp://` or `ipc://` endpoint, checked before libzmq sees it. libzmq reads a TCP port with
/// `strtol` into 16 bits: `tcp://127.0.0.1:99999` bound port 34463 without a word (and logged "ready" with 99999),
/// a connect to it went to that port too; a missing port or path came back as a bare "Invalid argument" (exit 69).
public enum EndpointSyntax {
    /// Why `endpoint` cannot be used, or nil. `bind`: the endpoint is bound (port `0` or `*` picks a free one);
    /// a connect needs a port from 1 to 65535. Any other transport is a problem too.
    public static func problem(_ endpoint: String, bind: Bool) -> String? {
        if endpoint.hasPrefix("ipc://") {
            return endpoint.count == "ipc://".count ? "\"\(endpoint)\" has no path (ipc:///run/contactwatch/NAME)" : nil
        }
        guard endpoint.hasPrefix("tcp://") else { return "\"\(endpoint)\" is not a tcp:// or ipc:// endpoint" }
        // A connect may name a source first ("tcp://src;dst"): the destination is what is connected to.
        let address = endpoint.dropFirst("tcp://".count).split(separator: ";", omittingEmptySubsequences: false).last ?? ""
        let example = bind ? "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7402" : "tcp://HOST:PORT, e.g. tcp://127.0.0.1:7401"
        guard let colon = address.lastIndex(of: ":"), !(address.hasPrefix("[") && !address[..<colon].hasSuffix("]")) else {
            return "\"\(endpoint)\" has no port (\(example))"
        }
        let host = address[..<colon], port = address[address.index(after: colon)...]
        if host.isEmpty || host == "[]" { return "\"\(endpoint)\" has no host (\(example)\(bind ? "; * binds every interface" : ""))" }
        if bind && port == "*" { return nil }
        let range = bind ? 0...65535 : 1...65535
        guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), port.count <= 5, let n = Int(port), range.contains(n) else {
            return "\"\(endpoint)\": the port \"\(port)\" is not a number from \(range.lowerBound) to 65535"
                + (bind ? " (0 or * picks a free port)" : "")
        }
        return nil
    }
}
