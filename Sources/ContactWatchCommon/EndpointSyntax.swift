#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The shape of a `tcp://` or `ipc://` endpoint, checked before libzmq sees it. libzmq reads a TCP port with
/// `strtol` into 16 bits: `tcp://127.0.0.1:99999` bound port 34463 without a word (and logged "ready" with 99999),
/// a connect to it went to that port too; a missing port or path came back as a bare "Invalid argument" (exit 69).
public enum EndpointSyntax {
    /// Why `endpoint` cannot be used, or nil. `bind`: the endpoint is bound (port `0` or `*` picks a free one);
    /// a connect needs a port from 1 to 65535. Any other transport is a problem too.
    public static func problem(_ endpoint: String, bind: Bool) -> String? {
        if endpoint.hasPrefix("ipc://") {
            let path = endpoint.utf8.count - "ipc://".utf8.count
            if path == 0 { return "\"\(endpoint)\" has no path (ipc:///run/contactwatch/NAME)" }
            // libzmq copies the path into sockaddr_un.sun_path (108 bytes with its NUL) and fails only at bind or
            // connect ("File name too long", exit 69: under the unit, restarted for ever).
            if path > maxSocketPath {
                return "\"\(endpoint)\": the socket path is \(path) bytes, and a Unix socket path holds at most \(maxSocketPath) "
                    + "(use a shorter directory, e.g. /run/contactwatch)"
            }
            return nil
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
        if bind, let problem = bindHostProblem(String(host)) { return "\"\(endpoint)\": \(problem)" }
        if bind && port == "*" { return nil }
        let range = bind ? 0...65535 : 1...65535
        guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), port.count <= 5, let n = Int(port), range.contains(n) else {
            return "\"\(endpoint)\": the port \"\(port)\" is not a number from \(range.lowerBound) to 65535"
                + (bind ? " (0 or * picks a free port)" : "")
        }
        return nil
    }

    /// Whether `name` is one of this host's network interfaces by name or by index, as libzmq takes it: not an alias
    /// (`lo:0`, which `if_nametoindex` resolves but libzmq's bind does not, "No such device") and not an index of no
    /// interface (`%0`, "Invalid argument") — both passed the check and failed at bind (a fault tester, session 24).
    static func isInterface(_ name: String) -> Bool {
        guard !name.isEmpty, !name.contains(":") else { return false }
        if name.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let index = UInt32(name), index > 0 else { return false }
            var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
            return if_indextoname(index, &buffer) != nil
        }
        return if_nametoindex(name) != 0
    }

    /// Why libzmq cannot bind `host`, or nil. A bind takes `*`, an IP address (IPv6 in brackets) or the name of one of
    /// this host's network interfaces, and never looks a name up: `tcp://ws1.example:7402` passed `--check-config`,
    /// then the bind failed "No such device" (exit 69, restarted for ever under the unit). A connect looks names up.
    /// `localhost` is the one name taken: the socket layer binds it as 127.0.0.1.
    static func bindHostProblem(_ host: String) -> String? {
        // `localhost` is bound as 127.0.0.1 (`ZMQSocket.bindable`).
        if host == "*" || host.lowercased() == "localhost" { return nil }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") {
            // An IPv6 address, with a scope after `%` (an interface or its number), or an IPv4 one in brackets.
            let parts = host.dropFirst().dropLast().split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
            let address = String(parts[0])
            let scopeOK = parts.count == 1 || isInterface(String(parts[1]))
            if scopeOK && (address == "*" || inet_pton(AF_INET6, address, &v6) == 1
                           || (parts.count == 1 && inet_pton(AF_INET, address, &v4) == 1)) {
                return nil
            }
        }
        if isInterface(host) { return nil }
        return "\(host) is not an IP address or a network interface of this host; a bound endpoint needs one (libzmq "
            + "does not look names up to bind): 127.0.0.1, [::1] or localhost for loopback, * for every interface"
    }

    /// The file an `ipc://` endpoint binds: nil for another transport, an abstract socket (`@…`) or a path libzmq
    /// chooses (`*`).
    static func socketFilePath(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("ipc://") else { return nil }
        let path = String(endpoint.dropFirst("ipc://".count))
        guard !path.isEmpty, !path.hasPrefix("@"), path != "*" else { return nil }
        return path
    }

    /// Why binding `endpoint` would destroy a file, or nil: an `ipc://` path that names something other than a socket
    /// (a regular file, a directory, a symbolic link, a pipe). libzmq's bind unlinks whatever is at the path and
    /// puts its socket there: `--journal ipc://…/state/contactwatch.sqlite` silently replaced the state store with a
    /// socket. A socket file (one left by a killed process) is fine; nothing there is fine.
    public static func bindWouldReplace(_ endpoint: String) -> String? {
        guard let path = socketFilePath(endpoint) else { return nil }
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT != S_IFSOCK else { return nil }
        let what = switch st.st_mode & S_IFMT {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a directory"
        case S_IFLNK: "a symbolic link"
        default: "a pipe or device"
        }
        return "\"\(endpoint)\": \(path) is \(what), not a socket; binding would delete it and put the socket in its place. "
            + "Give the socket a path of its own (e.g. /run/contactwatch/NAME)"
    }

    /// For an `ipc://` endpoint to bind whose directory does not exist (now): that directory; nil otherwise. Not a
    /// configuration problem — the unit's `RuntimeDirectory=` creates /run/contactwatch only as it starts the daemon,
    /// so a check from a shell would refuse a good configuration — but a start without it is exit 69, restarted for
    /// ever, so `--check-config` says so (a contract auditor, session 41).
    public static func missingBindDirectory(_ endpoint: String) -> String? {
        guard let path = socketFilePath(endpoint) else { return nil }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dir = directory.isEmpty ? "/" : directory
        var st = stat()
        // Only a directory that is not there: a path through a file (ENOTDIR) or one the daemon may not search
        // (EACCES) is what libzmq's own message says (a reviewer, session 41: both were called missing).
        guard stat(dir, &st) != 0, errno == ENOENT else { return nil }
        return dir
    }

    /// What to add to a failed bind of `endpoint`: the missing directory of an `ipc://` path, said as such (libzmq
    /// says only "No such file or directory"), else nothing.
    public static func bindFailureHint(_ endpoint: String) -> String {
        guard let directory = missingBindDirectory(endpoint) else { return "" }
        return " (the directory \(directory) does not exist: create it for the daemon's user, or bind elsewhere; under "
            + "the unit, /run/contactwatch is its RuntimeDirectory=)"
    }

    /// The longest path an `ipc://` endpoint may name: `sun_path` is 108 bytes on Linux, one of them the final NUL.
    public static let maxSocketPath = 107

    /// Whether a connect to (or bind of) `a` would reach the socket bound at `bound`, as far as their text tells:
    /// the same `ipc://` path, or a `tcp://` endpoint on the same port whose host is the same, or a loopback name
    /// when `bound` binds every interface or loopback. A port `0` or `*` (a free one) never matches.
    public static func reaches(_ a: String, _ bound: String) -> Bool {
        if a.hasPrefix("ipc://") || bound.hasPrefix("ipc://") { return a == bound }
        guard a.hasPrefix("tcp://"), bound.hasPrefix("tcp://") else { return false }
        func split(_ e: String) -> (host: String, port: String)? {
            let address = e.dropFirst("tcp://".count).split(separator: ";", omittingEmptySubsequences: false).last ?? ""
            guard let colon = address.lastIndex(of: ":") else { return nil }
            return (String(address[..<colon]).lowercased(), String(address[address.index(after: colon)...]))
        }
        guard let x = split(a), let y = split(bound), x.port == y.port, x.port != "0", x.port != "*",
              let port = Int(x.port), port > 0 else { return false }
        if x.host == y.host { return true }
        let loopback: Set<String> = ["127.0.0.1", "localhost", "[::1]", "lo"]
        let everywhere: Set<String> = ["*", "0.0.0.0", "[::]", "[*]"]
        return (loopback.contains(x.host) || everywhere.contains(x.host)) && (loopback.contains(y.host) || everywhere.contains(y.host))
    }
}
