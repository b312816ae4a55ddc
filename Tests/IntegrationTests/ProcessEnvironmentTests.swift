import Foundation
import Testing

/// The daemon started by `/bin/sh -c "<shell>; exec contactwatchd <arguments>"`, `$2` in both being `dir`'s path (`$1`
/// the daemon): for a umask, a working directory or a signal the shell sets up first.
func daemonUnderShell(_ shell: String, _ arguments: String = "--input \"ipc://$2/in\" --output \"ipc://$2/out\" --state-dir \"$2/state\"",
                      in dir: TemporaryDirectory) throws -> Child {
    try Child("/bin/sh", ["-c", "\(shell) && exec \"$1\" \(arguments)", "sh", Executables.url("contactwatchd").path, dir.path])
}

/// Expects `daemon` to stop by itself with `status` (64: refused at start), having said `saying`, and to have made no
/// `stateDirectory`.
func expectRefusedAtStart(_ daemon: Child, status expected: Int32 = 64, saying: String, stateDirectory: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    let status = daemon.waitForExit(timeout: 60)
    if status == nil { daemon.signal(SIGKILL) }
    #expect(status == expected, "\(daemon.stderr.text)", sourceLocation: sourceLocation)
    #expect(daemon.stderr.text.contains(saying), "\(daemon.stderr.text)", sourceLocation: sourceLocation)
    #expect(!FileManager.default.fileExists(atPath: stateDirectory), sourceLocation: sourceLocation)
}

/// A thread the system refuses (`RLIMIT_NPROC`, `TasksMax=`, a container's pids limit) was not said: Foundation's
/// `Thread.start()` reports nothing, and the daemon waited for ever for a thread that never ran — no `ready`, no line,
/// SIGTERM unanswered (17 of 24 starts under limits of 6–12 threads: a process-environment hunter, session 53).
/// A limit below 64 is refused at start (`ThreadLimit`); above it, a thread refused because the user's other
/// processes hold the rest is said by `SystemThread`, exit 75. The limit counts every thread of the user, so the
/// daemon runs as `nobody` (`setpriv`), which needs root; other processes of `nobody` (`sleep`s) hold all but a few of
/// the 64. libzmq, which asserts when it cannot make its own threads (signal 6), is outside this.
@Suite("a limit on threads", .serialized)
struct ThreadLimitTests {
    static let prlimit = "/usr/bin/prlimit", setpriv = "/usr/bin/setpriv"
    static let asNobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]

    static var usable: Bool {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: prlimit),
              FileManager.default.isExecutableFile(atPath: setpriv) else {
            print("skipped: a limit on threads needs root (to run the daemon as nobody) and util-linux's prlimit and setpriv")
            return false
        }
        return true
    }

    static func daemon(limit: Int, in dir: TemporaryDirectory) throws -> Child {
        try Child(prlimit, ["--nproc=\(limit):\(limit)", "--"] + asNobody + [Executables.url("contactwatchd").path,
                  "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"), "--journal", dir.ipc("journal"),
                  "--metrics", "127.0.0.1:0", "--state-dir", dir.file("state")])
    }

    @Test("a limit on threads below 64 is refused at start, exit 64, naming it, before the state directory is made")
    func lowLimitRefused() throws {
        guard Self.usable else { return }
        let dir = try TemporaryDirectory()
        #expect(chown(dir.path, 65534, 65534) == 0)
        expectRefusedAtStart(try Self.daemon(limit: 13, in: dir), saying: "the limit on processes and threads is 13 (RLIMIT_NPROC",
                             stateDirectory: dir.file("state"))
    }

    @Test("with 8 to 12 of its 64 threads left by other processes, the daemon either ends by itself (75 naming the thread, or libzmq's abort) or gets ready: it never sits silent")
    func refusedThreadsAreSaid() throws {
        guard Self.usable else { return }
        var said: [String] = []
        var outcomes: [String] = []
        for left in 8...12 {
            // `nobody`'s other tasks: one shell and its sleeps, 64 − left in all.
            // Ended once the test writes `release` (it polls for it): not by a signal, which a child of a test thread
            // may inherit blocked, nor by closing its standard input, whose write end a child may hold too.
            let release = FileManager.default.temporaryDirectory.appendingPathComponent("cw-release-\(UUID().uuidString)").path
            let holder = try Child(Self.asNobody[0], Array(Self.asNobody.dropFirst()) + ["/bin/sh", "-c",
                "p=''; i=1; while [ $i -lt $1 ]; do sleep 600 & p=\"$p $!\"; i=$((i+1)); done; echo held; while [ ! -e \"$2\" ]; do sleep 0.05; done; kill -9 $p; wait; exit 0",
                "sh", "\(64 - left)", release])
            defer {
                _ = FileManager.default.createFile(atPath: release, contents: nil)
                if holder.waitForExit(timeout: 30) == nil { holder.signal(SIGKILL) }
                try? FileManager.default.removeItem(atPath: release)
            }
            try #require(holder.stdout.wait(timeout: 30) { $0.contains("held") }, "\(holder.stderr.text)")
            let dir = try TemporaryDirectory()
            #expect(chown(dir.path, 65534, 65534) == 0)
            let daemon = try Self.daemon(limit: 64, in: dir)
            // In slices, so that a daemon that ended is seen at once.
            let deadline = Date().addingTimeInterval(30)
            var ready = false
            while !ready, daemon.process.isRunning, deadline.timeIntervalSinceNow > 0 {
                ready = daemon.stderr.wait(timeout: 0.5) { $0.contains("] ready") }
            }
            let status = ready ? nil : daemon.waitForExit(timeout: 1)
            outcomes.append("\(left): " + (ready ? "ready" : status.map { "exit \($0) (\(daemon.process.terminationReason == .uncaughtSignal ? "signal" : "status"))" } ?? "silent"))
            #expect(ready || status != nil, "\(left) left: neither ready nor ended in 30 s: \(daemon.stderr.text.suffix(1500))")
            if status == 75 { said += daemon.stderr.lines.filter { $0.contains("cannot start the ") } }
            daemon.signal(SIGKILL)
            _ = daemon.waitForProcessExit(timeout: 10)
        }
        print("thread limits: \(outcomes.joined(separator: ", "))")
        // Which thread is refused first depends on the machine (libdispatch's workers follow its cores): here at least
        // one of the five starts exited 75 in every run, but where libzmq or swift-nio always met the limit first the
        // wording goes unchecked, said, and the test rests on "never silent", which is what failed before.
        if said.isEmpty { print("thread limits: no start exited 75 here, so the refusal's wording was not checked") }
        #expect(said.allSatisfy { $0.contains("thread: Resource temporarily unavailable (pthread_create; a limit on threads") },
                "\(outcomes): \(said)")
    }
}

/// A file-size limit (`ulimit -f`) killed `generate` by SIGXFSZ, exit 153, without a word (a process-environment
/// hunter, session 53); the tool ignores the signal, so the write fails with EFBIG and is said, exit 74.
@Suite("a limit on file size")
struct FileSizeLimitTests {
    @Test("generate past `ulimit -f` says the write failed, exit 74, to a file and to standard output",
          arguments: ["--output \"$2/g.ndjson\"", "> \"$2/g.ndjson\""])
    func generatePastTheLimit(output: String) throws {
        let dir = try TemporaryDirectory()
        // Not `exec`: a tool started straight from this process got EFBIG without the fix too (it seems to inherit
        // something of the test process that holds SIGXFSZ back); from the shell it died by the signal, as from a
        // terminal, and the shell's status says which (128 + 25 = 153).
        let c = try Child("/bin/sh", ["-c", "ulimit -f 100; \"$1\" generate --cases 300 --days 200 \(output); exit $?", "sh",
                                      Executables.url("contactwatch").path, dir.path])
        let status = c.waitForExit(timeout: 120)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 74, "\(String(describing: status)): \(c.stderr.text)")
        #expect(c.stderr.text.contains("contactwatch generate: write failed: File too large"), "\(c.stderr.text)")
    }

    /// A store already past the limit was reported ready, and the first write past it then exited 74 (session 53's
    /// note); one exactly at it still takes writes within it (a reviewer, session 54), and starts; a finite limit is
    /// said at start, since the store grows into it.
    @Test("a store past the file-size limit is refused at start, exit 74, untouched; one at it or below it starts with a warning")
    func storeAtTheLimit() throws {
        let prlimit = "/usr/bin/prlimit"
        guard FileManager.default.isExecutableFile(atPath: prlimit) else {
            print("skipped: util-linux's prlimit is needed to start the daemon under a file-size limit")
            return
        }
        let dir = try TemporaryDirectory()
        let arguments = ["--", Executables.url("contactwatchd").path, "--input", dir.ipc("in"), "--output", dir.ipc("out"),
                         "--state-dir", dir.file("state")]
        let first = try Child(Executables.url("contactwatchd").path, Array(arguments.dropFirst(2)))
        #expect(first.stderr.wait(timeout: 60) { $0.contains("] ready") }, "\(first.stderr.text)")
        #expect(first.terminate() == 0)
        let store = dir.file("state/contactwatch.sqlite")
        let before = try Data(contentsOf: URL(fileURLWithPath: store))
        try #require(before.count > 0)

        let refused = try Child(prlimit, ["--fsize=\(before.count - 1)"] + arguments)
        let status = refused.waitForExit(timeout: 60)
        if status == nil { refused.signal(SIGKILL) }
        #expect(status == 74, "\(refused.stderr.text)")
        #expect(refused.stderr.text.contains("the state store at \(store) is \(before.count) bytes, past the daemon's file-size limit "
                                             + "(RLIMIT_FSIZE, `ulimit -f`, the unit's LimitFSIZE=) of \(before.count - 1) bytes"), "\(refused.stderr.text)")
        #expect(!refused.stderr.text.contains("] ready"), "\(refused.stderr.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == before)
        // --check-config from the same shell warns of it (it said "OK": an adversarial tester, session 54).
        let check = try Child(prlimit, ["--fsize=\(before.count - 1)"] + arguments + ["--check-config"])
        #expect(check.waitForExit(timeout: 60) == 0, "\(check.stderr.text)")
        #expect(check.stdout.text.contains("this process would be refused a start from this shell (exit 74")
                && check.stdout.text.contains("past the daemon's file-size limit"), "\(check.stdout.text)")

        let atTheLimit = try Child(prlimit, ["--fsize=\(before.count)"] + arguments)
        #expect(atTheLimit.stderr.wait(timeout: 60) { $0.contains("] ready") }, "\(atTheLimit.stderr.text)")
        #expect(atTheLimit.terminate() == 0, "\(atTheLimit.stderr.text)")

        let limit = before.count * 1000
        let started = try Child(prlimit, ["--fsize=\(limit)"] + arguments)
        #expect(started.stderr.wait(timeout: 60) { $0.contains("] ready") }, "\(started.stderr.text)")
        #expect(started.stderr.text.contains("a file-size limit of \(limit) bytes is set (RLIMIT_FSIZE"), "\(started.stderr.text)")
        #expect(started.terminate() == 0)
    }
}

/// `replay` and `tail` under an open-files limit of 4–12 were aborted by libzmq (`epoll.cpp:65`, 134), trapped (132)
/// or said "Error: zmq_socket: Too many open files", exit 1, by the value (session 53's note): refused below 32.
@Suite("the tool under a low open-files limit")
struct ToolOpenFilesLimitTests {
    @Test("replay and tail under an open-files hard limit below 32 are refused, exit 64, naming the limit",
          arguments: [("replay", 4), ("replay", 10), ("tail", 6), ("tail", 31)])
    func refused(command: String, limit: Int) throws {
        let prlimit = "/usr/bin/prlimit"
        guard FileManager.default.isExecutableFile(atPath: prlimit) else {
            print("skipped: util-linux's prlimit is needed to run the tool under an open-files limit")
            return
        }
        let dir = try TemporaryDirectory()
        let file = dir.file("one.ndjson")
        #expect(FileManager.default.createFile(atPath: file, contents: Data("{\"eventType\":\"x\"}\n".utf8)))
        let rest = command == "replay" ? ["--endpoint", dir.ipc("in"), file] : ["--endpoint", dir.ipc("out"), "--count", "1"]
        let c = try Child(prlimit, ["--nofile=\(limit):\(limit)", "--", Executables.url("contactwatch").path, command] + rest)
        let status = c.waitForExit(timeout: 30)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 64, "\(c.stderr.text)")
        #expect(c.stderr.text.contains("contactwatch \(command): the open-files limit is \(limit) (hard limit \(limit)), below the 32 this tool runs with"),
                "\(c.stderr.text)")
    }
}

/// A umask that takes the owner's own bits made a state directory and a store the daemon could not use, and left them
/// so for every later start (a process-environment hunter, session 53).
@Suite("a umask that takes the owner's own bits")
struct OwnerUmaskTests {
    @Test("a umask taking the owner's read or write bit is refused at start, exit 64, before the state directory is made",
          arguments: ["0277", "0777", "0477"])
    func refused(mask: String) throws {
        let dir = try TemporaryDirectory()
        expectRefusedAtStart(try daemonUnderShell("umask \(mask)", in: dir), saying: "the umask is \(mask), which takes the owner's own read or write permission",
                             stateDirectory: dir.file("state"))
    }

    /// `--check-config` said "configuration OK" where the start then exited 64 (an operator's review, session 53): it
    /// says so as a warning, exit 0 (a shell's umask is not the service's).
    @Test("--check-config under a umask taking the owner's bits warns that a start here would be refused, exit 0")
    func checkConfigWarns() throws {
        let dir = try TemporaryDirectory()
        let c = try daemonUnderShell("umask 0277", "--check-config --input \"ipc://$2/in\" --output \"ipc://$2/out\" --state-dir \"$2/state\"",
                                     in: dir)
        let status = c.waitForExit(timeout: 60)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 0, "\(c.stderr.text)")
        #expect(c.stdout.text.contains("warning: this process would be refused a start from this shell (exit 64")
                && c.stdout.text.contains("the umask is 0277, which takes the owner's own read or write permission"),
                "\(c.stdout.text)")
    }

    @Test("under a umask taking the owner's execute bit (0177) the state directory is made u+rwx and the daemon starts")
    func ownerExecuteBitKept() throws {
        let dir = try TemporaryDirectory()
        let c = try daemonUnderShell("umask 0177", "--input \"ipc://$2/in\" --output \"ipc://$2/out\" --state-dir \"$2/state/d\"", in: dir)
        #expect(c.stderr.wait(timeout: 60) { $0.contains("] ready") }, "\(c.stderr.text)")
        var st = stat()
        #expect(stat(dir.file("state"), &st) == 0 && st.st_mode & 0o777 == 0o700, "\(String(st.st_mode, radix: 8))")
        #expect(stat(dir.file("state/d"), &st) == 0 && st.st_mode & 0o777 == 0o700, "\(String(st.st_mode, radix: 8))")
        #expect(c.terminate() == 0)
    }
}

/// A state directory made by another user (a first run from a root shell, then the service's user) said only
/// `cannot open …/contactwatchd.lock: Permission denied` (a documentation hunter, session 54).
@Suite("a state directory of another user")
struct ForeignStateDirectoryTests {
    @Test("a state directory root made, used as nobody: exit 74 naming the owner and what to do")
    func rootsStateDirectory() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: ThreadLimitTests.setpriv) else {
            print("skipped: a state directory of another user needs root (to run the daemon as nobody) and util-linux's setpriv")
            return
        }
        let dir = try TemporaryDirectory()
        #expect(chown(dir.path, 65534, 65534) == 0)
        try FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        let c = try Child(ThreadLimitTests.asNobody[0], Array(ThreadLimitTests.asNobody.dropFirst()) + [
            Executables.url("contactwatchd").path, "--input", dir.ipc("in"), "--output", dir.ipc("out"), "--state-dir", dir.file("state")])
        let status = c.waitForExit(timeout: 60)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 74, "\(c.stderr.text)")
        #expect(c.stderr.text.contains("contactwatchd.lock: Permission denied (the directory is owned by uid 0, mode 755; the daemon runs as uid 65534)")
                && c.stderr.text.contains("give them to this one (`chown -R`)"), "\(c.stderr.text)")
    }
}

/// A relative state directory under a working directory deleted since the shell entered it said only "No such file or
/// directory" of the path (a process-environment hunter, session 53).
@Suite("a working directory that was deleted")
struct DeletedWorkingDirectoryTests {
    @Test("a relative --state-dir under a deleted working directory says the working directory is gone, exit 74")
    func relativeStateDirectory() throws {
        let dir = try TemporaryDirectory()
        let c = try daemonUnderShell("mkdir \"$2/w\" && cd \"$2/w\" && rmdir \"$2/w\"",
                                     "--input \"ipc://$2/in\" --output \"ipc://$2/out\" --state-dir state", in: dir)
        expectRefusedAtStart(c, status: 74, saying: "cannot create the state directory state (state: No such file or directory; the path is relative, and the working directory it is taken from no longer exists)",
                             stateDirectory: dir.file("w"))
    }

    @Test("replay --bind on a relative ipc:// path under a deleted working directory says the working directory is gone, exit 69")
    func replayBindsRelativeIPC() throws {
        let dir = try TemporaryDirectory()
        #expect(FileManager.default.createFile(atPath: dir.file("one.ndjson"), contents: Data("{\"eventType\":\"x\"}\n".utf8)))
        let c = try Child("/bin/sh", ["-c", "mkdir \"$2/w\" && cd \"$2/w\" && rmdir \"$2/w\" && exec \"$1\" replay --bind --endpoint ipc://rel \"$2/one.ndjson\"",
                                      "sh", Executables.url("contactwatch").path, dir.path])
        let status = c.waitForExit(timeout: 60)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 69, "\(c.stderr.text)")
        #expect(c.stderr.text.contains("the path is relative, and the working directory it is taken from no longer exists"), "\(c.stderr.text)")
    }

    /// A bind failed with "No such file or directory" alone; a connect was taken and never made: ready, and deaf
    /// without a word (a reviewer, session 54).
    @Test("a relative ipc:// endpoint, bound or connected, under a deleted working directory: exit 69 saying the working directory is gone",
          arguments: ["--input \"ipc://$2/in\" --input-bind --output ipc://out", "--input ipc://in --output \"ipc://$2/out\""])
    func relativeIPCEndpoint(endpoints: String) throws {
        let dir = try TemporaryDirectory()
        let c = try daemonUnderShell("mkdir \"$2/w\" && cd \"$2/w\" && rmdir \"$2/w\"", endpoints + " --state-dir \"$2/state\"", in: dir)
        let status = c.waitForExit(timeout: 60)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 69, "\(c.stderr.text)")
        let relative = endpoints.contains("ipc://out") ? "ipc://out" : "ipc://in"
        #expect(c.stderr.text.contains("cannot use the endpoint \(relative): the path is relative, and the working directory it is taken from no longer exists"),
                "\(c.stderr.text)")
        #expect(!c.stderr.text.contains("] ready"), "\(c.stderr.text)")
    }
}
