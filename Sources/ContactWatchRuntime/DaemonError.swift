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
        /// The system refused a resource a restart may find again (a thread: `SystemThread`): temporary.
        case resources
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
        case .resources: .temporaryFailure
        }
    }

    public var exitCode: Int32 { exitStatus.rawValue }

    /// One line, whatever the problem quotes: a value can hold any character, and a newline in one started a line of
    /// the configuration's choosing among the problems (`log.level: "info\nconfiguration OK"`: a reviewer, session
    /// 34), so control characters are escaped as the log's text format escapes them.
    public static func configuration(key: String, problem: String) -> DaemonError {
        DaemonError(.configuration, "configuration: \(ContactWatchLogHandler.textSafe(key)): \(ContactWatchLogHandler.textSafe(problem))")
    }
    /// A problem of several lines (a YAML parser's report, which quotes the line and marks the column under it): each
    /// line escaped as `configuration(key:problem:)` escapes its one.
    public static func configuration(key: String, problemLines: String) -> DaemonError {
        let lines = problemLines.split(separator: "\n", omittingEmptySubsequences: false)
            .map { ContactWatchLogHandler.textSafe(String($0)) }.joined(separator: "\n")
        return DaemonError(.configuration, "configuration: \(ContactWatchLogHandler.textSafe(key)): \(lines)")
    }
    public static func endpoint(_ message: String) -> DaemonError { DaemonError(.endpoint, message) }
    /// A failure of the state directory itself (not of the store file), reported as an I/O error.
    public static func store(_ message: String) -> DaemonError { DaemonError(.store(.io), message) }
    /// A failure of the state store, with its kind.
    public static func store(_ error: StoreError, while what: String? = nil) -> DaemonError {
        DaemonError(.store(error.kind), what.map { "\($0): \(error.description)" } ?? error.description, storeError: error)
    }
    public static func `internal`(_ message: String) -> DaemonError { DaemonError(.internal, message) }
    /// The system refused a thread (exit 75: the limit is shared with other processes, whose threads may end).
    public static func threadRefused(_ refused: SystemThread.Refused, while what: String) -> DaemonError {
        DaemonError(.resources, "\(what): \(refused)")
    }
}
