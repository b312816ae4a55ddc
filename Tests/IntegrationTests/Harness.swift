import ContactWatchTestSupport
import Foundation
import Synchronization
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// Where the built executables are: beside the test bundle, else in the package's .build/debug (an absolute path as is).
enum Executables {
    static func url(_ name: String) -> URL {
        if name.hasPrefix("/") { return URL(fileURLWithPath: name) }  // a system program, e.g. /usr/bin/script
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return packageRoot.appendingPathComponent(".build/debug/\(name)")
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = Fixtures.directory
}

/// A temporary directory (short path, for ipc:// endpoints), removed when the test is done.
final class TemporaryDirectory {
    let path: String
    init() throws {
        var template = Array("/tmp/cwtest-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: p)
    }
    func file(_ name: String) -> String { "\(path)/\(name)" }
    func ipc(_ name: String) -> String { "ipc://\(path)/\(name)" }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Bytes a child process writes, with a signal for every chunk so waits need no fixed sleeps.
final class CapturedOutput: Sendable {
    private let data = Mutex<[UInt8]>([])
    private let closed = Mutex(false)
    private let arrived = DispatchSemaphore(value: 0)

    /// The writer closed its end (end of file).
    func finish() {
        closed.withLock { $0 = true }
        arrived.signal()
    }

    var isClosed: Bool { closed.withLock { $0 } }

    /// Waits for end of file, at most `timeout` seconds.
    func waitClosed(timeout: Double) {
        let deadline = DispatchTime.now() + timeout
        while !isClosed && arrived.wait(timeout: deadline) != .timedOut {}
    }

    func append(_ chunk: Data) {
        data.withLock { $0.append(contentsOf: chunk) }
        arrived.signal()
    }

    var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    var lines: [String] { text.split(separator: "\n").map(String.init) }

    /// Waits until `predicate` holds for the text so far, at most `timeout` seconds.
    @discardableResult
    func wait(timeout: Double, until predicate: (String) -> Bool) -> Bool {
        let deadline = DispatchTime.now() + timeout
        while true {
            if predicate(text) { return true }
            if arrived.wait(timeout: deadline) == .timedOut { return predicate(text) }
        }
    }
}

/// A running executable with captured standard output and error.
final class Child {
    let process = Process()
    let stdout = CapturedOutput()
    let stderr = CapturedOutput()
    private let exited = DispatchSemaphore(value: 0)

    /// Opened by `releaseOutput()` when standard output is held: nothing of it is read until then.
    private let outputGate: DispatchSemaphore?

    /// `input`: a pipe whose write end the test keeps (and writes to); standard input is /dev/null otherwise.
    /// `standardError`: where standard error goes instead of being captured (then `stderr` stays empty), e.g. a pipe
    /// the test does not read.
    /// `holdOutput`: standard output is not read until `releaseOutput()` (a reader that is slow to take it: the
    /// process blocks writing once the pipe's buffer is full).
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: Pipe? = nil,
         standardError: Pipe? = nil, holdOutput: Bool = false, currentDirectory: String? = nil) throws {
        let gate = holdOutput ? DispatchSemaphore(value: 0) : nil
        outputGate = gate
        process.executableURL = Executables.url(executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "WATCHDOG_USEC")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = standardError ?? Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input ?? FileHandle.nullDevice
        if standardError != nil { stderr.finish() }
        // One reader thread per pipe, blocking in read(2) until end of file: Foundation's readabilityHandler now and
        // then lost the last chunk of a child's output under load (a test saw a tail's output end mid-line).
        // The thread holds the read end's FileHandle, so its descriptor stays open until end of file.
        for (pipe, sink) in [(out, stdout)] + (standardError == nil ? [(err, stderr)] : []) {
            let handle = pipe.fileHandleForReading
            let held = sink === stdout ? gate : nil
            let reader = Thread {
                held?.wait()
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                    if n > 0 {
                        sink.append(Data(buffer[0..<n]))
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                sink.finish()
            }
            reader.name = "child-output"
            reader.start()
        }
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
    }

    /// Waits for the process to exit, at most `timeout` seconds; returns its status, or nil if still running.
    func waitForExit(timeout: Double) -> Int32? {
        if exited.wait(timeout: .now() + timeout) == .timedOut { return nil }
        exited.signal()
        // Let the pipes drain what the process wrote last (end of file on both).
        stdout.waitClosed(timeout: 5)
        stderr.waitClosed(timeout: 5)
        return process.terminationStatus
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Starts reading standard output when it was held (`holdOutput`).
    func releaseOutput() { outputGate?.signal() }

    /// Waits for the process to exit, at most `timeout` seconds, without awaiting end of file on its output (now and
    /// then the test process holds a stray copy of a pipe's write end, and `waitForExit` then waits its full 5 s);
    /// returns its status, or nil if still running. For children whose output is not needed in full.
    func waitForProcessExit(timeout: Double) -> Int32? {
        if exited.wait(timeout: .now() + timeout) == .timedOut { return nil }
        exited.signal()
        return process.terminationStatus
    }

    /// SIGTERM, then the exit status (nil if it did not stop in time, after which it is killed). The bound is
    /// generous: cli.md's 5 s stop is a property of a machine that is not shared by a whole test suite, and the
    /// tests do not time it.
    func terminate(timeout: Double = 30) -> Int32? {
        signal(SIGTERM)
        let status = waitForExit(timeout: timeout)
        if status == nil { signal(SIGKILL) }
        return status
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// `contactwatch replay` of example 01 bound at an `ipc://` endpoint in `dir`, waiting for `waitSubscribers`
/// subscribers (up to 120 s), with `--linger` and any `extra` flags as given: the child and its endpoint.
func startBoundReplay(in dir: TemporaryDirectory, waitSubscribers: Int, linger: String, extra: [String] = []) throws -> (Child, String) {
    let stream = Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path
    let endpoint = dir.ipc("replay")
    let replay = try Child("contactwatch", ["replay", stream, "--endpoint", endpoint, "--bind", "--wait-subscribers",
                                            "\(waitSubscribers)", "--wait-timeout", "120", "--linger", linger] + extra)
    return (replay, endpoint)
}

/// The `sockaddr_un` of a Unix-domain socket at `path` (cut to what `sun_path` holds, NUL-terminated).
func unixAddress(_ path: String) -> sockaddr_un {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { buf in
        for (i, b) in path.utf8.enumerated() where i < buf.count - 1 { buf[i] = b }
    }
    return addr
}

/// A systemd-style notification socket (`NOTIFY_SOCKET`), to await the daemon's `READY=1` instead of sleeping.
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var addr = unixAddress(path)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    /// Waits for a datagram containing `state` (e.g. "READY=1"), at most `timeout` seconds.
    func wait(for state: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&p, 1, Int32(left * 1000))
            if n <= 0 { continue }
            let got = recv(fd, &buffer, buffer.count, 0)
            if got > 0, String(decoding: buffer[0..<got], as: UTF8.self).split(separator: "\n").contains(Substring(state)) {
                return true
            }
        }
    }

    /// Waits for a datagram line starting with `state` (e.g. "STATUS=") for which `matches` holds.
    func wait(for state: String, prefix: Bool, timeout: Double, matches: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(left * 1000)) <= 0 { continue }
            let got = recv(fd, &buffer, buffer.count, 0)
            guard got > 0 else { continue }
            for line in String(decoding: buffer[0..<got], as: UTF8.self).split(separator: "\n")
            where line.hasPrefix(state) && matches(String(line)) {
                return true
            }
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

/// A daemon started for a test, ready (READY=1 received) on ipc:// endpoints in a temporary directory.
final class DaemonUnderTest {
    let dir: TemporaryDirectory
    let child: Child
    let notify: NotifySocket
    let input: String
    var output: String { dir.ipc("out") }
    var journal: String { dir.ipc("journal") }
    var stateDir: String { dir.file("state") }

    /// `launcher`: a program (absolute path) and its arguments that run the daemon, e.g. `prlimit --nofile=64:4096`.
    /// `input`: the endpoint the input binds (default: `in` in `dir` over `ipc://`).
    init(dir: TemporaryDirectory, extraArguments: [String] = [], environment: [String: String] = [:],
         launcher: [String] = [], input: String? = nil, standardError: Pipe? = nil) throws {
        self.dir = dir
        self.input = input ?? dir.ipc("in")
        let notifyPath = dir.file("notify-\(UUID().uuidString.prefix(8))")
        notify = try NotifySocket(path: notifyPath)
        var env = environment
        env["NOTIFY_SOCKET"] = notifyPath
        let arguments = [
            "--input", self.input, "--input-bind", "--output", dir.ipc("out"), "--journal", dir.ipc("journal"),
            "--state-dir", dir.file("state"),
        ] + extraArguments
        if let program = launcher.first {
            child = try Child(program, Array(launcher.dropFirst()) + [Executables.url("contactwatchd").path] + arguments,
                              environment: env)
        } else {
            child = try Child("contactwatchd", arguments, environment: env, standardError: standardError)
        }
        // In slices, so that a daemon that exits instead (a refused store, a bad flag) fails the test at once, not
        // after the whole minute.
        let deadline = Date().addingTimeInterval(60)
        var ready = false
        while !ready, child.process.isRunning, deadline.timeIntervalSinceNow > 0 {
            ready = notify.wait(for: "READY=1", timeout: min(0.5, max(0.01, deadline.timeIntervalSinceNow)))
        }
        if !ready && !child.process.isRunning {
            ready = notify.wait(for: "READY=1", timeout: 0.01)  // sent just before it stopped
            child.stderr.waitClosed(timeout: 5)
        }
        let state = child.process.isRunning ? "still running after 60 s" : "exited with \(child.process.terminationStatus)"
        try #require(ready, "daemon did not become ready (\(state)): \(child.stderr.text)")
        // READY=1 is sent before the `ready` line is even queued, and the log's lines are written on a thread of their
        // own: a start-up line read right after READY=1 could still be missing (CI, session 38). Every start-up line
        // is queued before `ready` (text or JSON), so once it is read they all are.
        if standardError == nil {
            try #require(child.stderr.wait(timeout: 30) { $0.contains("] ready") || $0.contains("\"message\":\"ready\"") },
                         "no ready line after READY=1: \(child.stderr.text.suffix(2000))")
        }
    }

    /// Waits until `n` subscriptions have reached the alert socket (the daemon logs each one).
    func waitForSubscribers(_ n: Int, timeout: Double = 30) -> Bool {
        child.stderr.wait(timeout: timeout) { $0.components(separatedBy: "subscriber joined").count - 1 >= n }
    }

    func stop() -> Int32? { child.terminate() }
}

/// Runs `contactwatch` to completion (bounded) and returns its exit status and output.
@discardableResult
func runTool(_ arguments: [String], timeout: Double = 120) throws -> (status: Int32?, stdout: String, stderr: String) {
    let c = try Child("contactwatch", arguments)
    let status = c.waitForExit(timeout: timeout)
    if status == nil { c.signal(SIGKILL) }
    return (status, c.stdout.text, c.stderr.text)
}

/// The topic the daemon publishes a body under (alerts.md), derived from the body.
func topic(of body: NSDictionary) -> String? {
    switch body["eventType"] as? String {
    case "probation-case.supervision-alert.raised": return "alert.raised.\(body["rule"] as? String ?? "")"
    case "probation-case.supervision-alert.resolved": return "alert.resolved.\(body["rule"] as? String ?? "")"
    case "contactwatch.stream.gap": return "stream.gap"
    case "contactwatch.invalid-event": return "invalid-event"
    default: return nil
    }
}

/// A client of the daemon's journal (README, "Journal protocol"): a DEALER sends "fetch", after, limit and gets
/// "alerts", the latest committed alertSequence, then the bodies after `after` in ascending order.
final class JournalClient {
    private let context: ZMQContext
    private let socket: ZMQSocket
    let limit: Int

    init(endpoint: String, limit: Int = 500) throws {
        self.limit = limit
        context = try ZMQContext()
        socket = try context.socket(.dealer, lingerMilliseconds: 0, framePoolCapacity: limit + 3)
        try socket.connect(endpoint)
    }

    /// One request; throws when the daemon does not answer within `timeout` seconds or answers otherwise.
    func fetch(after: Int, timeout: Double = 10) throws -> (latest: Int, bodies: [[UInt8]]) {
        _ = try socket.send(strings: ["fetch", String(after), String(limit)])
        guard let frames = try socket.receiveCopy(timeoutMilliseconds: Int(timeout * 1000)) else {
            throw JournalClientError("the journal did not answer within \(timeout) s")
        }
        guard frames.count >= 2, String(decoding: frames[0], as: UTF8.self) == "alerts",
              let latest = Int(String(decoding: frames[1], as: UTF8.self)) else {
            throw JournalClientError("unexpected reply: \(frames.map { String(decoding: $0, as: UTF8.self) })")
        }
        return (latest, Array(frames.dropFirst(2)))
    }

    /// Every alert after `after`, fetched batch by batch until a batch is empty; `latest` from the last reply.
    func fetchAll(after: Int = 0) throws -> (latest: Int, bodies: [NSDictionary]) {
        var out: [NSDictionary] = []
        var cursor = after
        while true {
            let (latest, bodies) = try fetch(after: cursor)
            if bodies.isEmpty { return (latest, out) }
            for b in bodies {
                guard let body = (try? JSONSerialization.jsonObject(with: Data(b))) as? NSDictionary,
                      let sequence = (body["alertSequence"] as? NSNumber)?.intValue, sequence > cursor else {
                    throw JournalClientError("a journal body without a greater alertSequence: \(String(decoding: b, as: UTF8.self))")
                }
                out.append(body)
                cursor = sequence
            }
        }
    }

    deinit {
        socket.close()
        context.close()
    }
}

struct JournalClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
