// CURVE for the companion tool: loading certificates into exit codes, securing sockets, keygen.
//
// `replay` and `tail` connect as CURVE clients with their own secret certificate (`--curve-cert`)
// and the daemon's public certificate (`--curve-server-key`). `replay --bind` with `--curve-cert`
// and `--curve-allow DIR` is a CURVE server (for a daemon that connects with
// `--input-curve-server-key`), with a ZAP handler that lets in the keys of DIR's `*.key` files.

import ZeroMQ

/// How a tool socket is secured.
public enum ToolCurve: Sendable {
    /// Plaintext.
    case none
    /// A CURVE client: its own key pair, the server's public key.
    case client(keyPair: CurveKeyPair, serverKey: CurveKey)
    /// A CURVE server: its own key pair, the public keys allowed to connect.
    case server(keyPair: CurveKeyPair, allowed: Set<CurveKey>)

    /// Loads the certificates the flags name. Flag combinations are checked by the commands.
    /// - Throws: `ToolError` 66 when a file cannot be read, 64 when a certificate cannot be used.
    public static func load(cert: String?, serverKey: String?, allow: String?) throws -> ToolCurve {
        guard let cert else { return .none }
        let keyPair = try certificate { () throws(CurveCertificateError) in try CurveCertificate.readKeyPair(path: cert) }
        if let serverKey {
            return .client(keyPair: keyPair, serverKey: try certificate { () throws(CurveCertificateError) in
                try CurveCertificate.readPublicKey(path: serverKey)
            })
        }
        if let allow {
            let list = try certificate { () throws(CurveCertificateError) in try CurveCertificate.readAllowList(directory: allow) }
            return .server(keyPair: keyPair, allowed: Set(list.map(\.key)))
        }
        return .none
    }

    private static func certificate<T>(_ body: () throws(CurveCertificateError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw ToolError(exitCode: error.kind == .unreadable ? ToolError.noInput : ToolError.usage, error.description)
        }
    }

    /// Makes `socket` a CURVE client (before connect).
    func secureClient(_ socket: ZMQSocket) throws {
        if case .client(let keyPair, let serverKey) = self {
            try socket.makeCurveClient(keyPair: keyPair, serverKey: serverKey)
        }
    }
}

/// `contactwatch keygen`.
public enum Keygen {
    /// Writes `NAME.key` (0644) and `NAME.key_secret` (0600) in `directory`; never overwrites.
    /// - Returns: the two paths and the public key.
    /// - Throws: `ToolError` 73 when a file exists or cannot be created.
    public static func run(name: String, directory: String) throws -> (publicPath: String, secretPath: String, publicKey: CurveKey) {
        let keyPair: CurveKeyPair
        do { keyPair = try CurveKeyPair.generate() } catch {
            throw ToolError(exitCode: ToolError.software, "cannot generate a key pair: \(error)")
        }
        do {
            let paths = try CurveCertificate.write(keyPair, name: name, directory: directory)
            return (paths.publicPath, paths.secretPath, keyPair.publicKey)
        } catch {
            throw ToolError(exitCode: ToolError.cantCreate, error.description)
        }
    }
}

/// What a tool is to the daemon whose handshake failed: `tail` a consumer (it keeps trying), `replay` a publisher.
enum HandshakeRole {
    case consumer, publisher

    /// "this client's CURVE key", "the daemon's consumers allow-list".
    var who: String { self == .consumer ? "client" : "publisher" }
    var allowList: String { self == .consumer ? "consumers" : "publishers" }
    /// A tail keeps trying for ever; a replay until its wait ends.
    var suffix: String { self == .consumer ? "; still trying" : "" }
    /// The daemon's endpoint this role belongs on (a socket of the wrong type also fails the handshake).
    var endpointFlag: String { self == .consumer ? "--output" : "--input" }
}

extension ToolCurve {
    /// What an operator reads when a handshake with the daemon at `endpoint` fails: why, and what to change (libzmq
    /// keeps retrying, so a key added to the daemon's allow-list and a SIGHUP there are enough). `bound`: the tool
    /// bound the endpoint and the daemon connects (`replay --bind`). Shared by `tail` and `replay`.
    func refusalAdvice(_ event: ZMQSocketEvent, endpoint: String, role: HandshakeRole, bound: Bool = false) -> String? {
        let clientKey: String? = if case .client(let keyPair, _) = self { keyPair.publicKey.z85 } else { nil }
        switch event.kind {
        case .handshakeFailedAuth:
            return "error: the daemon at \(endpoint) refused this \(role.who)'s CURVE key \(clientKey.map { "\($0) " } ?? "")"
                + "(ZAP status \(event.value)): its public certificate (the .key beside --curve-cert) must be in the "
                + "daemon's \(role.allowList) allow-list (--curve-allow-\(role.allowList) DIR), followed by a SIGHUP to the "
                + "daemon\(role.suffix)"
        case .handshakeFailedProtocol where event.isMechanismMismatch:
            if bound {
                return "error: a peer that connected to \(endpoint) uses CURVE (security mechanism mismatch): a daemon "
                    + "connecting with --input-curve-server-key needs this replay to be its CURVE server: give "
                    + "--curve-cert (the secret certificate that key belongs to) and --curve-allow DIR\(role.suffix)"
            }
            return clientKey == nil
                ? "error: the daemon at \(endpoint) requires CURVE (security mechanism mismatch): give --curve-cert "
                    + "(this \(role.who)'s secret certificate) and --curve-server-key (the daemon's public certificate)"
                    + role.suffix
                : "error: the daemon at \(endpoint) does not use CURVE (security mechanism mismatch): leave out "
                    + "--curve-cert and --curve-server-key\(role.suffix)"
        case .handshakeFailedProtocol, .handshakeFailedNoDetail:
            // Often the first event of a mechanism mismatch, before the one that names it (a README audit, session 24:
            // "is --curve-server-key the daemon's public certificate?" came first for a CURVE tail against a plaintext
            // daemon, the wrong remedy): what to check, in both directions.
            // With no detail it is also what a daemon stopped or restarted mid-handshake leaves (a crash tester,
            // session 50: once in 40 restarts, and the question alone sent an operator after CURVE); said after the
            // question, which a wrong --curve-server-key (also no detail, said once) needs first (a reviewer).
            let restart = event.kind == .handshakeFailedNoDetail
                ? " (a daemon that stopped or restarted mid-handshake ends it so too; this \(role.who) connects again by itself)"
                : ""
            return "warning: the handshake with \(endpoint) failed (\(event.failureReason)): do the daemon and this "
                + "\(role.who) agree on CURVE (both or neither)"
                + "\(clientKey == nil ? "" : ", and is --curve-server-key the daemon's public certificate")"
                + "\(bound ? "" : ", and is this the daemon's \(role.endpointFlag) endpoint")?\(restart)\(role.suffix)"
        default:
            return nil
        }
    }
}
