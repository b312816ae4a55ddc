/// The exit statuses of both executables (cli.md; the values are sysexits.h's). One named constant per reason, used
/// by `contactwatchd`, `contactwatch`, their help texts and the tests, so no bare number stands for a reason.
public struct ExitStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// 0: a clean stop / the command did what it was asked.
    public static let success = ExitStatus(rawValue: 0)
    /// 64 (EX_USAGE): bad flags or configuration; the message names the key and the problem.
    public static let usage = ExitStatus(rawValue: 64)
    /// 66 (EX_NOINPUT): an input file cannot be read.
    public static let noInput = ExitStatus(rawValue: 66)
    /// 69 (EX_UNAVAILABLE): an endpoint cannot be bound or connected, or a peer is missing.
    public static let unavailable = ExitStatus(rawValue: 69)
    /// 70 (EX_SOFTWARE): an internal error.
    public static let software = ExitStatus(rawValue: 70)
    /// 73 (EX_CANTCREAT): an output file cannot be created (or would be overwritten).
    public static let cantCreate = ExitStatus(rawValue: 73)
    /// 74 (EX_IOERR): the state store cannot be opened, is corrupt or cannot be written; an I/O error. Permanent:
    /// the unit does not restart on it.
    public static let ioError = ExitStatus(rawValue: 74)
    /// 75 (EX_TEMPFAIL): a temporary failure a restart can cure (disk full, store locked by another process).
    public static let temporaryFailure = ExitStatus(rawValue: 75)

    /// The statuses with their meaning, for help texts.
    public static let all: [(ExitStatus, String)] = [
        (.success, "clean stop"),
        (.usage, "bad flags or configuration, or limits the start refuses (open files or threads below 64, a umask "
            + "taking the owner's bits, an argument that is not UTF-8)"),
        (.noInput, "an input file cannot be read"),
        (.unavailable, "an endpoint cannot be bound or connected"),
        (.software, "internal error"),
        (.cantCreate, "an output file cannot be created"),
        (.ioError, "the state store cannot be opened, is corrupt or cannot be written (also past the file-size limit)"),
        (.temporaryFailure, "temporary failure (disk full, store locked, out of memory, a thread refused); a restart can cure it"),
    ]

    public var description: String { String(rawValue) }

    /// The daemon's statuses for its help text ("0 clean stop, 64 bad flags or configuration, ...").
    public static var daemonHelp: String {
        let daemon: [ExitStatus] = [.success, .usage, .unavailable, .software, .ioError, .temporaryFailure]
        return all.filter { daemon.contains($0.0) }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }
}
