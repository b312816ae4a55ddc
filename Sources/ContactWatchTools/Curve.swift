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
