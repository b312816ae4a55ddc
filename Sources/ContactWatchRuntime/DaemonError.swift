import ContactWatchCommon
import ContactWatchStore

/// A reason the daemon stops: what kind of failure (which decides the exit status, cli.md) and a message an operator
/// can act on. A store failure keeps the store's own error, so its kind (corrupt, unreadable, disk full, ...) is
/// never flattened into text.
public struct DaemonError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Bad flags or configuration (the message names the key).
        case configuration
        /// An endpoint cannot be bound or connected.
        case endpoint
        /// The state store cannot be opened, read or written.
        case store(StoreError.Kind)
        /// An internal error.
        case `internal`
    }

    public var kind: Kind
    public var message: String
    /// The store's error, when the failure is the store's.
    public var storeError: StoreError?

    public init(_ kind: Kind, _ message: String, storeError: StoreError? = nil) {
        self.kind = kind
        self.message = message
        self.storeError = storeError
    }

    public var description: String { message }

    /// The exit status for this failure (cli.md).
    public var exitStatus: ExitStatus {
        switch kind {
        case .configuration: .usage
        case .endpoint: .unavailable
        case .store(let k): k.isTemporary ? .temporaryFailure : .ioError
        case .internal: .software
        }
    }

    public var exitCode: Int32 { exitStatus.rawValue }

    public static func configuration(key: String, problem: String) -> DaemonError {
        DaemonError(.configuration, "configuration: \(key): \(problem)")
    }
    public static func endpoint(_ message: String) -> DaemonError { DaemonError(.endpoint, message) }
    /// A failure of the state directory itself (not of the store file), reported as an I/O error.
    public static func store(_ message: String) -> DaemonError { DaemonError(.store(.io), message) }
    /// A failure of the state store, with its kind.
    public static func store(_ error: StoreError, while what: String? = nil) -> DaemonError {
        DaemonError(.store(error.kind), what.map { "\($0): \(error.description)" } ?? error.description, storeError: error)
    }
    public static func `internal`(_ message: String) -> DaemonError { DaemonError(.internal, message) }
}
