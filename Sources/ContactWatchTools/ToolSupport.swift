// Small pieces shared by the companion tool's commands: errors with exit codes, unbuffered
// output to file descriptors, a monotonic clock.

@_exported import ContactWatchCommon
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure that ends a command with a specific exit code (sysexits.h values).
public struct ToolError: Error, CustomStringConvertible, Sendable {
    /// 64 usage, 66 no input file, 69 endpoint/peer unavailable, 70 internal, 73 cannot create output, 74 I/O.
    public let exitCode: ExitStatus
    public let message: String

    public init(exitCode: ExitStatus, _ message: String) {
        self.exitCode = exitCode
        self.message = message
    }

    public var description: String { message }

    /// A libzmq failure no command turned into a `ToolError` itself — a socket the system refused (`zmq_socket: Too
    /// many open files` under a low open-files limit) — as exit 69 with libzmq's words; nil for any other error.
    /// argument-parser printed it as "Error: …", exit 1, a status the README does not list (session 53's note).
    public static func socketFailure(_ error: any Error) -> ToolError? {
        guard let error = error as? ZMQError else { return nil }
        return ToolError(exitCode: unavailable, "\(error.operation): \(error.message)")
    }

    public static let usage = ExitStatus.usage
    public static let noInput = ExitStatus.noInput
    public static let unavailable = ExitStatus.unavailable
    public static let software = ExitStatus.software
    public static let cantCreate = ExitStatus.cantCreate
    public static let ioError = ExitStatus.ioError
}

extension DescriptorLimit {
    /// Raises the open-files limit to the hard one and throws exit 64 when it stays below `toolMinimum`, or leaves
    /// fewer than `toolMinimumFree` free: the commands that open sockets (`replay`, `tail`) call it first. A limit
    /// that cannot be read is left to the commands.
    public static func requireForSockets() throws {
        if case .success(let limit) = raiseToHard(), let refusal = toolRefusal(limit, open: openCount()) {
            throw ToolError(exitCode: ToolError.usage, refusal)
        }
    }
}

extension StandardDescriptors {
    /// Throws exit 74 when standard output was closed at start: what a command would write there cannot be written.
    public static func requireStandardOutput() throws {
        if closedAtStart.contains(1) {
            throw ToolError(exitCode: ToolError.ioError, "standard output is closed: nothing could be written there "
                + "(redirect it to a file, or to /dev/null to discard it)")
        }
    }
}

/// Writes straight to a file descriptor (no stdio buffering, so each call is visible at once).
public struct FDWriter: Sendable {
    public let fd: Int32

    public init(fd: Int32) { self.fd = fd }

    public static let standardOutput = FDWriter(fd: 1)
    public static let standardError = FDWriter(fd: 2)

    /// Whether the descriptor is a terminal.
    public var isTerminal: Bool { isatty(fd) == 1 }

    /// Writes all of `bytes`, retrying on EINTR and partial writes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let error = writeAll(fd, bytes) {
            // The tool ignores SIGPIPE (main.swift): a reader that went away is said and exit 74, as documented.
            let why = error == EPIPE ? "the reader of \(fd == 1 ? "standard output" : "the output") went away (a closed pipe)"
                : String(cString: strerror(error))
            throw ToolError(exitCode: ToolError.ioError, "write failed: \(why)")
        }
    }

    public func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Writes a line to this descriptor, ignoring failures (for diagnostics).
    public func line(_ string: String) {
        try? write(string + "\n")
    }
}

/// A buffered writer to a file descriptor, for bulk output (e.g. `generate`).
public final class BufferedFDWriter {
    private let out: FDWriter
    private var buffer: [UInt8] = []
    private let limit: Int

    public init(fd: Int32, bufferSize: Int = 1 << 20) {
        out = FDWriter(fd: fd)
        limit = bufferSize
        buffer.reserveCapacity(bufferSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > limit { try flush() }
        if bytes.count >= limit { try out.write(bytes); return }
        buffer.append(contentsOf: bytes)
    }

    public func flush() throws {
        if buffer.isEmpty { return }
        try buffer.withUnsafeBytes { try out.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// The monotonic clock, for pacing and timing.
public enum ToolClock {
    /// Monotonic time in nanoseconds.
    public static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// `nanos` as a whole number of nanoseconds, saturating: 0 for a negative or NaN value, `UInt64.max` from 2^64
    /// (about 584 years) and for infinity. A plain `UInt64(_:)` traps there (a pause computed from input).
    public static func saturating(nanos: Double) -> UInt64 {
        guard nanos > 0 else { return 0 }
        guard nanos < 0x1p64 else { return .max }
        return UInt64(nanos)
    }

    /// `a + b`, or `UInt64.max` when that does not fit (a deadline far in the future).
    public static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Sleeps the calling thread for `nanos` nanoseconds (resuming after signals).
    public static func sleep(nanos: UInt64) {
        guard nanos > 0 else { return }
        var request = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// Opens `path` for writing (created or truncated), or throws exit 73.
public func openForWriting(_ path: String) throws -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 {
        let e = errno
        let why = e == ENOENT && directoryPartIsMissing(of: path) ? "the directory \(directoryPart(of: path)) does not exist"
            : String(cString: strerror(e))
        throw ToolError(exitCode: ToolError.cantCreate, "cannot create \(path): \(why)")
    }
    return fd
}

/// Closes a descriptor opened by `openForWriting`.
public func closeDescriptor(_ fd: Int32) throws {
    if close(fd) != 0 {
        throw ToolError(exitCode: ToolError.ioError, "close failed: \(String(cString: strerror(errno)))")
    }
}
