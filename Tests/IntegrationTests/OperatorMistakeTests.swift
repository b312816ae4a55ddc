import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Mistakes an operator makes with files and directories, against the real `contactwatchd`: each must be refused
/// (or accepted) with a message that says what is wrong in the system's own words, naming the file.
@Suite("Operator mistakes: configuration file, state directory, allow-list directories", .blocking)
struct OperatorMistakeTests {
    /// `contactwatchd ARGS` run to its end (bounded); status and standard error.
    static func daemon(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32?, stderr: String, stdout: String) {
        let c = try Child("contactwatchd", arguments, environment: environment)
        let status = c.waitForExit(timeout: 30)
        if status == nil { c.signal(SIGKILL) }
        return (status, c.stderr.text, c.stdout.text)
    }

    /// Foundation's `FileHandle.standardError.write` traps on `EPIPE`/`EBADF`: a configuration problem under
    /// `… 2>&1 | head -1`, or with standard error closed (a broken journal stream), was signal 4 instead of exit 64,
    /// and an unknown flag written to a pipe nobody read was SIGPIPE (a fault tester, session 34).
    @Test("a configuration problem or an unknown flag is exit 64 even when standard error is closed or nobody reads it; --check-config's report lost to a full disk is said on standard error")
    func exit64WithoutStandardError() throws {
        let daemon = Executables.url("contactwatchd").path
        let script = """
            d="$1"
            "$d" --check-config --output bogus --state-dir /nonexistent/x 2>&-; echo "closed $?"
            "$d" --check-config --output bogus --state-dir /nonexistent/x 2>&1 | true; echo "pipe ${PIPESTATUS[0]}"
            "$d" --no-such-flag 2>&1 | true; echo "flag ${PIPESTATUS[0]}"
            JOURNAL_STREAM=1:1 "$d" --no-such-flag 2>&-; echo "journal $?"
            { "$d" --check-config --state-dir /nonexistent/x > /dev/full 2>&3; echo "report $?"; } 3>&1
            """
        let c = try Child("/bin/bash", ["-c", script, "bash", daemon])
        #expect(c.waitForExit(timeout: 60) == 0, "\(c.stderr.text)")
        // And a usable configuration whose report cannot be written says so (exit 0: cli.md allows 0 or 64).
        #expect(c.stdout.text.split(separator: "\n") == ["closed 64", "pipe 64", "flag 64", "journal 64",
                "contactwatchd: the configuration is usable, but its report could not be written: No space left on device",
                "report 0"], "\(c.stdout.text)")
    }

    /// Started with standard input, output and error closed (`0<&- 1>&- 2>&-`, as some supervisors do), the next
    /// descriptors the daemon opened took the numbers 0–2 (an eventfd, the state directory's lock file) and every log
    /// line was written into them (a fault tester, session 34). They are opened on /dev/null first.
    /// A state directory a daemon has used, whose store was deleted: a new store starts at alertSequence 1, numbers
    /// consumers may hold. It was a silent `state loaded … alertSequence=0` (a fault tester, session 41).
    @Test("a store deleted from a state directory a daemon has used is a warning at the next start; the first start says nothing")
    func deletedStoreSaid() throws {
        let dir = try TemporaryDirectory()
        let marker = "no state store was found at"
        var daemon = try DaemonUnderTest(dir: dir)
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        #expect(!daemon.child.stderr.text.contains(marker), "\(daemon.child.stderr.text)")
        daemon = try DaemonUnderTest(dir: dir)
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        #expect(!daemon.child.stderr.text.contains(marker), "\(daemon.child.stderr.text)")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("state/contactwatch.sqlite\(suffix)")) }
        daemon = try DaemonUnderTest(dir: dir)
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        let line = daemon.child.stderr.lines.first { $0.contains(marker) } ?? ""
        #expect(line.contains(" warning ") && line.contains("a new, empty store was started") && line.contains("restore the store from a backup"),
                "\(daemon.child.stderr.text)")
        // A -wal left without its store is refused (exit 74), and not announced as a new store first (a reviewer,
        // session 41: the warning came before the refusal).
        for suffix in ["", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("state/contactwatch.sqlite\(suffix)")) }
        try Data("not a wal".utf8).write(to: URL(fileURLWithPath: dir.file("state/contactwatch.sqlite-wal")))
        let refused = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                                 "--state-dir", dir.file("state")])
        #expect(refused.waitForExit(timeout: 30) == 74, "\(refused.stderr.text)")
        #expect(!refused.stderr.text.contains(marker), "\(refused.stderr.text)")
    }

    @Test("started with descriptors 0–2 closed, the daemon opens them on /dev/null before anything else and runs")
    func closedStandardDescriptors() throws {
        let dir = try TemporaryDirectory()
        let notify = try NotifySocket(path: dir.file("notify"))
        // `exec` keeps the shell's process: the child's pid is the daemon's.
        let script = """
            exec "$1" --input "$2" --input-bind --output "$3" --journal "$4" --state-dir "$5" 0<&- 1>&- 2>&-
            """
        let c = try Child("/bin/bash", ["-c", script, "bash", Executables.url("contactwatchd").path, dir.ipc("in"),
                                        dir.ipc("out"), dir.ipc("journal"), dir.file("state")],
                          environment: ["NOTIFY_SOCKET": notify.path])
        defer { if c.process.isRunning { c.signal(SIGKILL) } }
        #expect(notify.wait(for: "READY=1", timeout: 60), "the daemon did not become ready")
        let pid = c.process.processIdentifier
        for fd in 0...2 {
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
            #expect(target == "/dev/null", "descriptor \(fd) is \(target ?? "closed")")
        }
        // The lock file kept its own descriptor and nothing was written into it by the log: it holds the marker of a
        // store made (`StateDirectoryLock.noteStoreMade`) and nothing else.
        let lock = try? String(contentsOfFile: dir.file("state/contactwatchd.lock"), encoding: .utf8)
        #expect(lock == "a contactwatchd state store has been made in this directory\n", "the lock file holds \(lock ?? "nothing")")
        c.signal(SIGTERM)
        #expect(c.waitForExit(timeout: 30) == 0)
    }

    /// A value quoted in a problem reached the terminal raw: an escape sequence cleared it, and a `\r\n` (one Swift
    /// Character, so never split as a line) started a line of the file's choosing without the journal's `<3>` (a
    /// fault tester, session 33).
    @Test("control characters in a configuration value are escaped in the problems and in --check-config's summary")
    func controlCharactersEscaped() throws {
        let dir = try TemporaryDirectory()
        try "log:\n  level: \"\\e[2Jx\\r\\nbar\"\n".write(toFile: dir.file("c.yaml"), atomically: true, encoding: .utf8)
        let bad = try Self.daemon(["--check-config", "--config", dir.file("c.yaml"), "--state-dir", dir.file("state")],
                                  environment: ["JOURNAL_STREAM": "0:0"])
        #expect(bad.status == 64, "\(bad.stderr)")
        #expect(bad.stderr.contains(#"(got "\x1b[2Jx\r\nbar")"#), "\(bad.stderr)")
        #expect(!bad.stderr.utf8.contains(0x1B) && !bad.stderr.utf8.contains(0x0D), "\(bad.stderr)")
        let good = try Self.daemon(["--check-config", "--state-dir", dir.file("a\u{1B}b")])
        #expect(good.status == 0 && good.stdout.contains(#"a\x1bb"#) && !good.stdout.utf8.contains(0x1B), "\(good.stdout)")
        // A lone newline in a value, in a problem, in a key's name and in the summary: no line of the value's choosing
        // (each was split into a line of its own, `contactwatchd: configuration OK (forged)`: a reviewer, session 34).
        try "log:\n  level: \"info\\nconfiguration OK (forged)\"\n\"a\\nforged key\": 1\n".write(toFile: dir.file("n.yaml"), atomically: true, encoding: .utf8)
        let forged = try Self.daemon(["--check-config", "--config", dir.file("n.yaml"), "--state-dir", dir.file("state")])
        #expect(forged.status == 64, "\(forged.stderr)")
        #expect(forged.stderr.contains(#"(got "info\nconfiguration OK (forged)")"#) && forged.stderr.contains(#"a\nforged key: unknown key"#),
                "\(forged.stderr)")
        #expect(!forged.stderr.split(separator: "\n").contains { $0.hasPrefix("contactwatchd: configuration OK") || $0.hasPrefix("contactwatchd: forged") },
                "\(forged.stderr)")
        let summary = try Self.daemon(["--check-config", "--state-dir", "/tmp/a\n  CURVE: on (forged)"])
        #expect(summary.status == 0 && summary.stdout.contains(#"  state: /tmp/a\n  CURVE: on (forged)"#), "\(summary.stdout)")
        #expect(summary.stdout.split(separator: "\n").filter { $0.hasPrefix("  CURVE:") } == ["  CURVE: off"], "\(summary.stdout)")
    }

    @Test("--config naming a directory, a missing file, a path through a file or non-UTF-8 text: exit 64 saying why")
    func unreadableConfigurationFile() throws {
        let dir = try TemporaryDirectory()
        let state = ["--state-dir", dir.file("state")]
        try FileManager.default.createDirectory(atPath: dir.file("conf.d"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir.file("plain")))
        // Latin-1 "é" (0xE9) in a comment on line 3, as an editor set to ISO-8859-1 saves it.
        try Data("log:\n  level: info\n# caf\u{E9}\n".utf8).write(to: URL(fileURLWithPath: dir.file("utf8.yaml")))
        var latin1 = Array("log:\n  level: info\n# caf".utf8)
        let offset = latin1.count
        latin1 += [0xE9, 0x0A]
        try Data(latin1).write(to: URL(fileURLWithPath: dir.file("latin1.yaml")))

        let cases: [(String, String)] = [
            (dir.file("conf.d"), "it is a directory"),
            (dir.file("missing.yaml"), "No such file or directory"),
            (dir.file("plain/contactwatchd.yaml"), "Not a directory"),
            (dir.file("latin1.yaml"), "is not valid UTF-8 text: byte offset \(offset) (line 3)"),
        ]
        for (file, reason) in cases {
            for check in [true, false] {
                let r = try Self.daemon((check ? ["--check-config"] : []) + ["--config", file] + state)
                #expect(r.status == 64, "\(file): \(r.stderr)")
                #expect(r.stderr.contains("--config") && r.stderr.contains(file) && r.stderr.contains(reason),
                        "\(file) (\(check ? "--check-config" : "start")): expected \"\(reason)\" in: \(r.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "a refused configuration touched the state")
        // The same text in UTF-8 is fine.
        let ok = try Self.daemon(["--check-config", "--config", dir.file("utf8.yaml")] + state)
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test("a configuration file with nothing but comments, whitespace or an empty document means every default; a list or a value at the top is exit 64")
    func emptyConfigurationFile() throws {
        let dir = try TemporaryDirectory()
        let state = ["--state-dir", dir.file("state")]
        let empty: [(String, String)] = [
            ("comments.yaml", "# contactwatchd configuration\n# log:\n#   level: debug\n"),
            ("empty.yaml", ""),
            ("blank.yaml", "  \n\n   \n"),
            ("document.yaml", "---\n# nothing set yet\n"),
        ]
        for (name, text) in empty {
            try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8)
            let r = try Self.daemon(["--check-config", "--config", dir.file(name)] + state)
            #expect(r.status == 0, "\(name) was refused: \(r.stderr)")
            #expect(r.stdout.contains("log: info (text)") && r.stdout.contains("output: tcp://127.0.0.1:7402"),
                    "\(name): not the defaults: \(r.stdout)")
            // The usual checks still apply: a misspelt environment variable beside it is exit 64.
            let typo = try Self.daemon(["--check-config", "--config", dir.file(name)] + state,
                                       environment: ["CONTACTWATCH_LOG_LEVLE": "debug"])
            #expect(typo.status == 64 && typo.stderr.contains("CONTACTWATCH_LOG_LEVLE"), "\(name): \(typo.stderr)")
        }
        // A daemon started with the comments-only file runs on the defaults (the ipc endpoints from flags).
        let started = try DaemonUnderTest(dir: dir, extraArguments: ["--config", dir.file("comments.yaml")])
        #expect(started.stop() == 0, "\(started.child.stderr.text)")

        for (name, text, what) in [("list.yaml", "- log.level: debug\n", "a list"), ("value.yaml", "log.level=debug\n", "a single value")] {
            try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8)
            let r = try Self.daemon(["--check-config", "--config", dir.file(name)] + state)
            #expect(r.status == 64 && r.stderr.contains(dir.file(name)) && r.stderr.contains("its top level is \(what), not a mapping of keys (e.g. \"log:\", then \"  level: info\" on the next line)")
                    && !r.stderr.contains("…"),
                    "\(name): \(r.stderr)")
        }
    }

    /// swift-configuration's own text named the key as its provider spells it and the Swift type: `(Config value for
    /// key 'RULES_VIDEO_COUNTS_AS_FACE_TO_FACE' failed to convert to type bool.)` (an operator audit, session 26).
    @Test("a value of the wrong type, from the environment (named with its value) or a file (a quoted number), is told in the key's own terms")
    func wrongTypeSaidPlainly() throws {
        let dir = try TemporaryDirectory()
        let state = ["--state-dir", dir.file("state")]
        let env = try Self.daemon(["--check-config"] + state,
                                  environment: ["CONTACTWATCH_RULES_VIDEO_COUNTS_AS_FACE_TO_FACE": "maybe",
                                                "CONTACTWATCH_STATE_JOURNAL_RETENTION_DAYS": "a year"])
        #expect(env.status == 64, "\(env.stderr)")
        // Told by the variable and its value, without the hint about YAML files (there was none).
        #expect(env.stderr.contains("rules.videoCountsAsFaceToFace: CONTACTWATCH_RULES_VIDEO_COUNTS_AS_FACE_TO_FACE is not true or false (got \"maybe\")"),
                "\(env.stderr)")
        #expect(env.stderr.contains("state.journalRetentionDays: CONTACTWATCH_STATE_JOURNAL_RETENTION_DAYS is not a whole number (got \"a year\")"),
                "\(env.stderr)")
        #expect(!env.stderr.contains("YAML"), "\(env.stderr)")
        // A quoted number, a quoted "0" alike (a fault tester, session 34: "0" was taken where "60" was not), and a
        // quoted boolean, which had no hint.
        try "rules:\n  telephoneOnly:\n    limitDays: \"28\"\n  videoCountsAsFaceToFace: \"true\"\nlog:\n  statsIntervalSeconds: \"0\"\ninput:\n  receiveHighWaterMark: '-0'\n"
            .write(toFile: dir.file("quoted.yaml"), atomically: true, encoding: .utf8)
        let file = try Self.daemon(["--check-config", "--config", dir.file("quoted.yaml")] + state)
        #expect(file.status == 64, "\(file.stderr)")
        #expect(file.stderr.contains("rules.telephoneOnly.limitDays: the value is not a whole number (in a YAML file, without quotes)"),
                "\(file.stderr)")
        #expect(file.stderr.contains("log.statsIntervalSeconds: the value is not a whole number (in a YAML file, without quotes)"),
                "\(file.stderr)")
        #expect(file.stderr.contains("input.receiveHighWaterMark: the value is not a whole number (in a YAML file, without quotes)"),
                "\(file.stderr)")
        #expect(file.stderr.contains("rules.videoCountsAsFaceToFace: the value is not true or false (in a YAML file, without quotes)"),
                "\(file.stderr)")
        for r in [env, file] { #expect(!r.stderr.contains("failed to convert"), "\(r.stderr)") }
    }

    /// Yams applies a merge key, so the key check saw the merged keys; swift-configuration, reading the values, does
    /// not: R7 given `<<: {enabled: true}` ran off and a merged `windowMonths: 0` passed, said OK (a fault tester,
    /// session 28).
    @Test("a YAML merge key (<<) in the configuration file: exit 64 naming where, not a setting dropped without a word")
    func mergeKeyRefused() throws {
        let dir = try TemporaryDirectory()
        let state = ["--state-dir", dir.file("state")]
        for (name, text) in [("inline.yaml", "rules:\n  outcomeOverdue:\n    <<: {enabled: true}\n"),
                             ("anchor.yaml", "defaults: &d\n  windowMonths: 0\nrules:\n  nonCompliance:\n    <<: *d\n")] {
            try text.write(toFile: dir.file(name), atomically: true, encoding: .utf8)
            let r = try Self.daemon(["--check-config", "--config", dir.file(name)] + state)
            #expect(r.status == 64, "\(name): \(r.stdout) \(r.stderr)")
            #expect(r.stderr.contains("a YAML merge key in \(dir.file(name)), which the daemon does not apply: write the keys out"),
                    "\(name): \(r.stderr)")
            #expect(!r.stdout.contains("configuration OK"), "\(name): \(r.stdout)")
        }
        let inline = try Self.daemon(["--check-config", "--config", dir.file("inline.yaml")] + state)
        #expect(inline.stderr.contains("rules.outcomeOverdue.<<: a YAML merge key"), "\(inline.stderr)")
        // Written out, the same setting is applied.
        try "rules:\n  outcomeOverdue:\n    enabled: true\n".write(toFile: dir.file("plain.yaml"), atomically: true, encoding: .utf8)
        let plain = try Self.daemon(["--check-config", "--config", dir.file("plain.yaml")] + state)
        #expect(plain.status == 0 && plain.stdout.contains("R7 outcome-overdue: on"), "\(plain.stdout) \(plain.stderr)")
    }

    @Test("a state directory that cannot be created (under a regular file, or a file itself): exit 74 with the system's reason and the path")
    func stateDirectoryUnderAFile() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("not-a-dir")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for state in ["\(file)/state", file] {
            let r = try Self.daemon(["--state-dir", state, "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out")])
            #expect(r.status == 74, "\(state): \(r.stderr)")
            #expect(r.stderr.contains("cannot create the state directory \(state)") && r.stderr.contains("\(file): Not a directory"),
                    "\(state): \(r.stderr)")
            #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("The operation could not be completed"),
                    "\(state): \(r.stderr)")
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "x", "the file in the way was modified")
    }

    @Test("an allow-list entry *.key that is a dangling symbolic link or a directory: exit 64 at start naming it; at SIGHUP the old list stays, with a warning naming it")
    func allowListEntriesThatAreNotFiles() throws {
        let dir = try TemporaryDirectory()
        let d = try Deployment(dir: dir, pyzmq: false)
        let dangling = "\(d.consumers)/moved.key", subdirectory = "\(d.publishers)/archive.key"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir.file("certs/gone.key"))
        try FileManager.default.createDirectory(atPath: subdirectory, withIntermediateDirectories: true)
        for check in [true, false] {
            let r = try Self.daemon((check ? ["--check-config"] : []) + ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                    "--state-dir", dir.file("state")] + d.daemonArguments)
            #expect(r.status == 64, "\(r.stderr)")
            #expect(r.stderr.contains("security.curve.allowConsumers: \(dangling): a symbolic link to \(dir.file("certs/gone.key")) that cannot be followed (No such file or directory)"),
                    "\(r.stderr)")
            #expect(r.stderr.contains("security.curve.allowPublishers: \(subdirectory): a directory, not a regular file"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "a refused allow-list touched the state")

        // Started with usable lists, then the same mistakes: each reload keeps the old list and names the entry.
        try FileManager.default.removeItem(atPath: dangling)
        try FileManager.default.removeItem(atPath: subdirectory)
        let daemon = try EndpointDaemon(dir: dir, input: dir.ipc("in"), output: dir.ipc("out"), journal: dir.ipc("journal"),
                                        arguments: d.daemonArguments)
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir.file("certs/gone.key"))
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("allow-list not reloaded") && $0.contains(dangling) },
                "\(daemon.child.stderr.text)")
        try FileManager.default.createDirectory(atPath: subdirectory, withIntermediateDirectories: true)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("allow-list not reloaded") && $0.contains(subdirectory) },
                "\(daemon.child.stderr.text)")
        // The consumers' directory held the dangling link at both reloads: its list was never replaced.
        #expect(!daemon.child.stderr.lines.contains { $0.contains("allow-list reloaded") && $0.contains("allowConsumers") },
                "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0)
    }

    /// Opening a FIFO for reading waits for a writer: a certificate that is a pipe hung `--check-config`, a start
    /// (before the state directory, so systemd timed it out and restarted it) and the tool (a fault tester's find).
    @Test("a certificate that is a FIFO: refused as a pipe by --check-config and the daemon (64) and the tool (66), instead of hanging")
    func certificateIsAFIFO() throws {
        let dir = try TemporaryDirectory()
        let d = try Deployment(dir: dir, pyzmq: false)
        let fifo = dir.file("certs/fifo.key_secret"), publicFIFO = dir.file("certs/fifo.key")
        for path in [fifo, publicFIFO] {
            #expect(mkfifo(path, 0o600) == 0)
        }
        let endpoints = ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"), "--state-dir", dir.file("state")]
        let withFIFO = ["--curve-cert", fifo, "--curve-allow-publishers", d.publishers, "--curve-allow-consumers", d.consumers]
        for check in [true, false] {
            let r = try Self.daemon((check ? ["--check-config"] : []) + endpoints + withFIFO)
            #expect(r.status == 64 && r.stderr.contains("\(fifo): a pipe, socket or device, not a regular file"), "\(r.status as Any): \(r.stderr)")
        }
        let server = try Self.daemon(["--check-config", "--input", dir.ipc("in"), "--output", dir.ipc("out"), "--curve-cert", d.daemonSecret,
                                      "--curve-allow-consumers", d.consumers, "--input-curve-server-key", publicFIFO])
        #expect(server.status == 64 && server.stderr.contains("\(publicFIFO): a pipe, socket or device"), "\(server.status as Any): \(server.stderr)")
        let tail = try runTool(["tail", "--endpoint", dir.ipc("out"), "--curve-cert", fifo, "--curve-server-key", d.daemonPublic, "--count", "1"], timeout: 30)
        // The tool's status for a certificate it cannot use as a file, as for a directory (66, EX_NOINPUT).
        #expect(tail.status == 66 && tail.stderr.contains("\(fifo): a pipe, socket or device, not a regular file"), "\(tail.status as Any): \(tail.stderr)")
    }

    /// Who may write an allow-list decides who may connect: a world-writable directory or certificate was accepted in
    /// silence (a fault tester's find), so any local user could have allowed their own key.
    @Test("an allow-list directory or certificate any user can write: exit 64 naming it; group-writable is accepted; at SIGHUP the old list stays")
    func worldWritableAllowLists() throws {
        let dir = try TemporaryDirectory()
        let d = try Deployment(dir: dir, pyzmq: false)
        let arguments = ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"), "--state-dir", dir.file("state")] + d.daemonArguments
        let key = try #require(try FileManager.default.contentsOfDirectory(atPath: d.publishers).first { $0.hasSuffix(".key") })
        chmod(d.consumers, 0o777)
        chmod("\(d.publishers)/\(key)", 0o666)
        for check in [true, false] {
            let r = try Self.daemon((check ? ["--check-config"] : []) + arguments)
            #expect(r.status == 64, "\(r.stderr)")
            #expect(r.stderr.contains("security.curve.allowConsumers: \(d.consumers): an allow-list directory that any user can write (mode 0777) is refused"),
                    "\(r.stderr)")
            #expect(r.stderr.contains("security.curve.allowPublishers: \(d.publishers)/\(key): a certificate in an allow-list that any user can write (mode 0666)"),
                    "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "a refused allow-list touched the state")
        chmod(d.consumers, 0o775)
        chmod("\(d.publishers)/\(key)", 0o664)
        #expect(try Self.daemon(["--check-config"] + arguments).status == 0)

        let daemon = try EndpointDaemon(dir: dir, input: dir.ipc("in"), output: dir.ipc("out"), journal: dir.ipc("journal"),
                                        arguments: d.daemonArguments)
        chmod(d.consumers, 0o777)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("allow-list not reloaded") && $0.contains("any user can write") },
                "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0)
    }

    @Test("an endpoint with a port out of range, no port or no path: exit 64 naming the key (daemon) or the flag (tool), instead of binding another port or waiting forever")
    func endpointTypos() throws {
        let dir = try TemporaryDirectory()
        let base = ["--state-dir", dir.file("state"), "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out")]
        let refused: [([String], String, String)] = [
            // libzmq took 99999 modulo 65536: it bound 127.0.0.1:34463 and the daemon logged "ready output=…:99999".
            (["--output", "tcp://127.0.0.1:99999"], "output.endpoint", "the port \"99999\" is not a number from 0 to 65535"),
            (["--journal", "tcp://127.0.0.1:7x03"], "journal.endpoint", "the port \"7x03\" is not a number"),
            (["--journal", "ipc://"], "journal.endpoint", "\"ipc://\" has no path"),
            (["--input", "tcp://127.0.0.1:0"], "input.endpoints", "the port \"0\" is not a number from 1 to 65535"),
            // Was reported as "reachable from other hosts but is not encrypted".
            (["--input", "tcp://127.0.0.1"], "input.endpoints", "\"tcp://127.0.0.1\" has no port"),
            (["--input", "tcp://:7401"], "input.endpoints", "\"tcp://:7401\" has no host"),
            // libzmq looks no name up to bind: this passed --check-config, then the bind failed "No such device" (69).
            (["--journal", "tcp://ws1.invalid:65535"], "journal.endpoint",
             "ws1.invalid is not an IP address or a network interface of this host"),
        ]
        for (arguments, key, reason) in refused {
            // Connect-side endpoints: the input is connected (no --input-bind) when the case sets --input.
            let args = arguments.first == "--input"
                ? ["--state-dir", dir.file("state"), "--output", dir.ipc("out")] + arguments
                : base + arguments
            for check in [true, false] {
                let r = try Self.daemon((check ? ["--check-config"] : []) + args)
                #expect(r.status == 64 && r.stderr.contains("configuration: \(key): ") && r.stderr.contains(reason),
                        "\(arguments) (\(check ? "--check-config" : "start")): \(r.status.map(String.init) ?? "still running") \(r.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "a refused endpoint touched the state")
        for arguments in [["--output", "tcp://127.0.0.1:0"], ["--output", "tcp://127.0.0.1:*"], ["--output", "tcp://[::1]:7402"],
                          ["--journal", "tcp://127.0.0.2:65535"],
                          // localhost is bound as 127.0.0.1 (spec/cli.md counts it among the loopback addresses).
                          ["--journal", "tcp://LocalHost:65535"]] {
            let r = try Self.daemon(["--check-config"] + base + arguments)
            #expect(r.status == 0, "\(arguments): \(r.stderr)")
        }
        // A connected input may name a host: a connect looks it up.
        let named = try Self.daemon(["--check-config", "--state-dir", dir.file("state"), "--output", dir.ipc("out"),
                                     "--input", "tcp://localhost:7401"])
        #expect(named.status == 0, "\(named.stderr)")
        // The companion tool: a bad endpoint is a usage error (64), not "Invalid argument" (69) or a wait forever.
        let file = dir.file("events.ndjson")
        try "{}\n".write(toFile: file, atomically: true, encoding: .utf8)
        for (arguments, text) in [
            (["tail", "--endpoint", "tcp://127.0.0.1:99999"], "--endpoint: \"tcp://127.0.0.1:99999\": the port \"99999\" is not a number from 1 to 65535"),
            (["tail", "--endpoint", "localhost:7402"], "--endpoint: \"localhost:7402\" is not a tcp:// or ipc:// endpoint"),
            (["tail", "--endpoint", dir.ipc("out"), "--journal", "tcp://127.0.0.1", "--from-sequence", "0"], "--journal: \"tcp://127.0.0.1\" has no port"),
            (["replay", file, "--bind", "--endpoint", "tcp://127.0.0.1:70000"], "the port \"70000\" is not a number from 0 to 65535"),
        ] {
            let r = try runTool(arguments, timeout: 15)
            #expect(r.status == 64 && r.stderr.contains(text), "\(arguments): \(r.status.map(String.init) ?? "still running") \(r.stderr)")
        }
    }

    @Test("a new state store on a full disk: exit 75 saying a new store could not be created (no batch talk), nothing left behind; with space freed it starts")
    func newStoreOnAFullDisk() throws {
        if let reason = FaultTests.mountUnavailable {
            print("operator: new store on a full disk skipped: \(reason)")
            return
        }
        let dir = try TemporaryDirectory()
        let disk = dir.file("disk")
        try FaultTests.mountTmpfs(at: disk, options: "size=1m")
        defer { FaultTests.unmount(disk) }
        // Fill it (dd stops at ENOSPC).
        FaultTests.command("/bin/dd", ["if=/dev/zero", "of=\(disk)/filler", "bs=4096", "count=512"])
        let state = "\(disk)/state"
        let r = try Self.daemon(["--state-dir", state, "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out")])
        #expect(r.status == 75, "\(r.stderr)")
        #expect(r.stderr.contains("the disk holding the state directory \(state) is full: a new, empty state store could not be created at \(state)/contactwatch.sqlite"),
                "\(r.stderr)")
        #expect(!r.stderr.contains("batch") && !r.stderr.contains(".creating"), "\(r.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        #expect(left.allSatisfy { $0 == "contactwatchd.lock" }, "left behind: \(left)")
        // Space freed: the daemon creates its store and becomes ready.
        try FileManager.default.removeItem(atPath: "\(disk)/filler")
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--state-dir", state])
        #expect(daemon.stop() == 0)
    }

    @Test("an existing store on a full disk, and a state directory with no inode left: exit 75 (restarted), not 74 (left down); with space freed it starts with its state")
    func existingStoreOnAFullDisk() throws {
        if let reason = FaultTests.mountUnavailable {
            print("operator: existing store on a full disk skipped: \(reason)")
            return
        }
        let dir = try TemporaryDirectory()
        let disk = dir.file("disk")
        try FaultTests.mountTmpfs(at: disk, options: "size=2m")
        defer { FaultTests.unmount(disk) }
        let state = "\(disk)/state"
        // A store with something in it, stopped cleanly (no -wal left: opening must create one).
        let example = Executables.fixtures.appendingPathComponent("01-warning-then-breach.ndjson").path
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--state-dir", state, "--subscribe", ""])
        try DurabilityTests.replayThroughSentinel(daemon, [example], sentinel: "filled")
        let before = try JournalClient(endpoint: daemon.journal).fetchAll()
        try #require(!before.bodies.isEmpty, "example 01 raised no alert")
        #expect(daemon.stop() == 0)
        FaultTests.command("/bin/dd", ["if=/dev/zero", "of=\(disk)/filler", "bs=4096"])  // stops at ENOSPC
        let args = ["--state-dir", state, "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out")]
        let full = try Self.daemon(args)
        #expect(full.status == 75, "\(full.stderr)")
        #expect(full.stderr.contains("the disk holding the state store at \(state)/contactwatch.sqlite is full: the store could not be opened"),
                "\(full.stderr)")
        // SQLite's failed open may leave an empty -wal and a few bytes of -shm: said, not "not modified" alone (a crash
        // tester, session 50).
        #expect(full.stderr.contains("its file has not been modified (SQLite may have left an empty -wal and -shm"), "\(full.stderr)")
        try FileManager.default.removeItem(atPath: "\(disk)/filler")
        daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--state-dir", state])
        #expect(try JournalClient(endpoint: daemon.journal).fetchAll().bodies == before.bodies, "the store changed")
        #expect(daemon.stop() == 0)

        // No inode left: neither the lock file nor a new store can be created; both are the disk full.
        let inodes = dir.file("inodes")
        try FaultTests.mountTmpfs(at: inodes, options: "size=2m,nr_inodes=8")
        defer { FaultTests.unmount(inodes) }
        let empty = "\(inodes)/state"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        var fillers: [String] = []
        while FileManager.default.createFile(atPath: "\(inodes)/f\(fillers.count)", contents: nil) { fillers.append("\(inodes)/f\(fillers.count)") }
        try #require(!fillers.isEmpty && fillers.count < 8, "\(fillers.count) files made")
        let noLock = try Self.daemon(["--state-dir", empty] + args.dropFirst(2))
        #expect(noLock.status == 75 && noLock.stderr.contains("contactwatchd.lock: No space left on device"), "\(noLock.stderr)")
        try FileManager.default.removeItem(atPath: fillers.removeLast())  // room for the lock file only
        let noStore = try Self.daemon(["--state-dir", empty] + args.dropFirst(2))
        #expect(noStore.status == 75 && noStore.stderr.contains("no inode left for a new file"), "\(noStore.stderr)")
        for f in fillers { try FileManager.default.removeItem(atPath: f) }
        daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--state-dir", empty])
        #expect(daemon.stop() == 0)
    }

    /// Three operator mistakes with the state directory from a fault tester (session 35): a store that is a symbolic
    /// link (a second daemon whose state directory linked to the first one's store ran on the same file, until one
    /// stopped blaming the disk), a state directory linked to a disk that is not mounted ("File exists"), and a
    /// directory and store any user can write (used without a word).
    @Test("a store that is a symbolic link: exit 74 saying so, the file untouched; a state directory that is a dangling link: exit 74 naming its target; a world-writable directory and store: warned of at start")
    func stateDirectoryLinksAndModes() throws {
        let dir = try TemporaryDirectory()
        let endpoints = ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out")]
        // A store made by a first run, then linked from a second state directory.
        let first = try DaemonUnderTest(dir: dir)
        #expect(first.stop() == 0)
        let store = first.stateDir + "/contactwatch.sqlite"
        let before = try Data(contentsOf: URL(fileURLWithPath: store))
        try FileManager.default.createDirectory(atPath: dir.file("second"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.file("second/contactwatch.sqlite"), withDestinationPath: store)
        let linked = try Self.daemon(["--state-dir", dir.file("second")] + endpoints)
        #expect(linked.status == 74, "\(linked.stderr)")
        #expect(linked.stderr.contains("\(dir.file("second/contactwatch.sqlite")) is a symbolic link (to \(store)); it has not been used"),
                "\(linked.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == before, "the linked store was modified")
        // A second name for it (cp -al of the state directory): the same hole.
        try FileManager.default.createDirectory(atPath: dir.file("third"), withIntermediateDirectories: true)
        #expect(link(store, dir.file("third/contactwatch.sqlite")) == 0)
        let hard = try Self.daemon(["--state-dir", dir.file("third")] + endpoints)
        #expect(hard.status == 74 && hard.stderr.contains("\(dir.file("third/contactwatch.sqlite")) has 2 names"), "\(hard.stderr)")
        #expect(unlink(dir.file("third/contactwatch.sqlite")) == 0)

        try FileManager.default.createSymbolicLink(atPath: dir.file("unmounted"), withDestinationPath: dir.file("no-disk/state"))
        let dangling = try Self.daemon(["--state-dir", dir.file("unmounted")] + endpoints)
        #expect(dangling.status == 74, "\(dangling.stderr)")
        #expect(dangling.stderr.contains("\(dir.file("unmounted")): a symbolic link to \(dir.file("no-disk/state")), which does not exist (is its file system mounted? mount it, or correct the link; do not create the target by hand")
                    && !dangling.stderr.contains("File exists"), "\(dangling.stderr)")

        #expect(chmod(first.stateDir, 0o777) == 0 && chmod(store, 0o666) == 0)
        let open = try DaemonUnderTest(dir: dir)
        #expect(open.stop() == 0)
        let warnings = open.child.stderr.lines.filter { $0.contains(" warning ") }
        #expect(warnings.contains { $0.contains("the state directory \(first.stateDir) can be written by any user (mode 777)") }, "\(warnings)")
        #expect(warnings.contains { $0.contains("the state store \(store) can be written by any user (mode 666)") }, "\(warnings)")
    }

    /// The lock file was opened through a symbolic link: whoever could write the state directory had the daemon write
    /// its marker over a root-only file's first 60 bytes, or create the file a dangling link names (a security tester,
    /// session 44).
    @Test("a lock file that is a symbolic link (to a file, or to nothing), a hard link or a FIFO: exit 74 saying so; the target untouched, nothing created")
    func lockFileLinks() throws {
        let dir = try TemporaryDirectory()
        let endpoints = ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out")]
        let victim = dir.file("victim")
        try "root-only\n".write(toFile: victim, atomically: true, encoding: .utf8)
        for (name, target) in [("linked", victim), ("dangling", dir.file("created-through-the-link"))] {
            let state = dir.file(name)
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: state + "/contactwatchd.lock", withDestinationPath: target)
            let run = try Self.daemon(["--state-dir", state] + endpoints)
            #expect(run.status == 74, "\(run.stderr)")
            #expect(run.stderr.contains("\(state)/contactwatchd.lock is a symbolic link (to \(target)); it has not been used"), "\(run.stderr)")
        }
        // A hard link passes O_NOFOLLOW and the regular-file check (a reviewer, session 44).
        let hard = dir.file("hard")
        try FileManager.default.createDirectory(atPath: hard, withIntermediateDirectories: true)
        #expect(link(victim, hard + "/contactwatchd.lock") == 0)
        let hardRun = try Self.daemon(["--state-dir", hard] + endpoints)
        #expect(hardRun.status == 74 && hardRun.stderr.contains("\(hard)/contactwatchd.lock has 2 names (hard links); it has not been used"),
                "\(hardRun.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "root-only\n", "the file the link names was written")
        #expect(!FileManager.default.fileExists(atPath: dir.file("created-through-the-link")), "the dangling link's target was created")
        let fifo = dir.file("fifo")
        try FileManager.default.createDirectory(atPath: fifo, withIntermediateDirectories: true)
        #expect(mkfifo(fifo + "/contactwatchd.lock", 0o600) == 0)
        let run = try Self.daemon(["--state-dir", fifo] + endpoints)
        #expect(run.status == 74 && run.stderr.contains("contactwatchd.lock is a pipe, socket or device, not a regular file"), "\(run.stderr)")
    }

    /// argument-parser keeps the last value of a repeated single-valued flag, as Unix tools do, but said nothing:
    /// `--config a --config b` never read `a` without a word (the configuration's hunter, session 45).
    @Test("a single-valued flag given twice: the last is used and that is said at warning, naming the flag and both values; repeatable flags stay repeatable")
    func singleValuedFlagGivenTwice() throws {
        let dir = try TemporaryDirectory()
        let base = ["--check-config", "--input", dir.ipc("in"), "--input-bind", "--state-dir", dir.file("state")]
        let output = try Self.daemon(base + ["--output", dir.ipc("a"), "--log-level", "info", "--output=\(dir.ipc("b"))"])
        #expect(output.status == 0 && output.stdout.contains("output: \(dir.ipc("b"))"), "\(output.status): \(output.stdout)\n\(output.stderr)")
        #expect(output.stderr.contains("contactwatchd: warning: --output given twice (\(dir.ipc("a")), \(dir.ipc("b"))): the last, \(dir.ipc("b")), is used"),
                "\(output.stderr)")
        let repeatable = try Self.daemon(["--check-config", "--input", dir.ipc("in"), "--input", dir.ipc("in2"), "--state-dir", dir.file("state"),
                                          "--output", dir.ipc("out"), "--subscribe", "a.", "--subscribe", "b."])
        #expect(repeatable.status == 0 && !repeatable.stderr.contains("given twice"), "\(repeatable.status): \(repeatable.stderr)")
    }

    /// Under umask 000 the plaintext socket files were 0777: any local user published forged events and read every
    /// alert, live and from the journal (a security tester, session 44). An abstract name has no file at all.
    @Test("under umask 000 the bound ipc:// socket files give others nothing (0770) and the umask is left as it was; a plaintext abstract ipc://@ endpoint is warned of at start and by --check-config")
    func socketFilesPrivate() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, launcher: ["/bin/sh", "-c", "umask 000; exec \"$0\" \"$@\""])
        defer { _ = daemon.stop() }
        for endpoint in [daemon.input, daemon.output, daemon.journal] {
            let path = String(endpoint.dropFirst("ipc://".count))
            var st = stat()
            #expect(stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK && st.st_mode & 0o777 == 0o770,
                    "\(path): \(String(st.st_mode & 0o777, radix: 8))")
        }
        #expect(!daemon.child.stderr.text.contains("abstract ipc://"), "\(daemon.child.stderr.text)")
        // The bind masks others' bits for its own moment only: the daemon's umask is the shell's again afterwards.
        let status = (try? String(contentsOfFile: "/proc/\(daemon.child.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        #expect(status.split(separator: "\n").contains("Umask:\t0000"), "\(status)")
        let name = "@cwtest-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let arguments = ["--input", dir.ipc("in2"), "--input-bind", "--output", "ipc://\(name)", "--state-dir", dir.file("state2")]
        let check = try Self.daemon(["--check-config"] + arguments)
        #expect(check.status == 0 && check.stdout.contains("warning: an abstract ipc:// socket (ipc://@name) has no file")
                && check.stdout.contains("output.endpoint ipc://\(name)"), "\(check.stdout)\n\(check.stderr)")
        let abstract = try Child("contactwatchd", arguments)
        defer { if abstract.process.isRunning { abstract.signal(SIGKILL) }; _ = abstract.waitForExit(timeout: 10) }
        #expect(abstract.stderr.wait(timeout: 30) { $0.contains("] ready") }, "\(abstract.stderr.text)")
        #expect(abstract.stderr.lines.contains { $0.contains(" warning ") && $0.contains("no permission or umask guards it") },
                "\(abstract.stderr.text)")
        #expect(abstract.terminate() == 0)
    }

    @Test("a new state directory and store under a shell's umask 022 are not readable by other users (0750, 0640 with the -wal and -shm)")
    func newStoreIsPrivate() throws {
        let dir = try TemporaryDirectory()
        // The daemon started by a shell with the usual umask, as an operator trying it by hand would.
        let daemon = try DaemonUnderTest(dir: dir, launcher: ["/bin/sh", "-c", "umask 022; exec \"$0\" \"$@\""])
        defer { _ = daemon.stop() }
        func mode(_ path: String) -> mode_t? {
            var st = stat()
            return stat(path, &st) == 0 ? st.st_mode & 0o777 : nil
        }
        let store = daemon.stateDir + "/contactwatch.sqlite"
        #expect(mode(daemon.stateDir) == 0o750, "state directory \(String(mode(daemon.stateDir) ?? 0, radix: 8))")
        for file in [store, store + "-wal", store + "-shm", daemon.stateDir + "/contactwatchd.lock"] {
            #expect(mode(file) == 0o640, "\(file): \(mode(file).map { String($0, radix: 8) } ?? "missing")")
        }
    }

    @Test("replay given a directory or a missing file: exit 66 saying which and why (not \"no such readable file\" for a directory)")
    func replayUnreadableInput() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("events"), withIntermediateDirectories: true)
        for (file, reason) in [(dir.file("events"), "is a directory"), (dir.file("missing.ndjson"), "No such file or directory")] {
            let r = try runTool(["replay", file, "--endpoint", dir.ipc("in")], timeout: 30)
            #expect(r.status == 66 && r.stderr.contains("\(file): cannot be read: \(reason)"), "\(file): \(r.stderr)")
        }
    }

    @Test("a second daemon given an ipc:// endpoint a running one has bound: exit 69 naming it, and the first keeps it; a socket file left by a killed daemon is bound again")
    func ipcEndpointInUse() throws {
        let dir = try TemporaryDirectory()
        let first = try DaemonUnderTest(dir: dir)
        let own = ["--state-dir", dir.file("state2")]
        for (arguments, endpoint) in [
            (own + ["--input", dir.ipc("in2"), "--input-bind", "--output", first.output], first.output),
            (own + ["--input", dir.ipc("in2"), "--input-bind", "--output", dir.ipc("out2"), "--journal", first.journal], first.journal),
            (own + ["--input", first.input, "--input-bind", "--output", dir.ipc("out2")], first.input),
        ] {
            // libzmq unlinked the socket file and bound anew: the second daemon became ready and took every later
            // connection meant for the first.
            let second = try Child("contactwatchd", arguments)
            let status = second.waitForExit(timeout: 15)
            if status == nil { second.signal(SIGKILL); _ = second.waitForProcessExit(timeout: 10) }
            #expect(status == 69, "\(endpoint): \(second.stderr.text)")
            #expect(second.stderr.text.contains("\(endpoint)") && second.stderr.text.contains("another process is listening on that socket file"),
                    "\(second.stderr.text)")
        }
        // The first still answers on its journal.
        let reply = try JournalClient(endpoint: first.journal).fetch(after: 0, timeout: 10)
        #expect(reply.latest == 0)
        // Killed, the first leaves its socket files behind: a new daemon binds them.
        first.child.signal(SIGKILL)
        _ = first.child.waitForProcessExit(timeout: 30)
        #expect(FileManager.default.fileExists(atPath: dir.file("out")), "no stale socket file to test with")
        let again = try DaemonUnderTest(dir: dir)
        #expect(try JournalClient(endpoint: again.journal).fetch(after: 0, timeout: 10).latest == 0)
        #expect(again.stop() == 0)
    }

    /// libzmq's bind unlinks whatever the `ipc://` path names: the daemon given its own store as the journal's path
    /// became ready with the store replaced by a socket (its data gone, the next start 74), and `replay --bind`
    /// replaced any file (a fault tester's find).
    @Test("an ipc:// path naming the state store: the daemon exits 64 and the store stays; replay --bind on a file exits 69 and the file stays")
    func ipcPathNamesAFile() throws {
        let dir = try TemporaryDirectory()
        let first = try DaemonUnderTest(dir: dir)
        #expect(first.stop() == 0)
        let store = dir.file("state") + "/contactwatch.sqlite"
        func isRegular(_ path: String) -> Bool { (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeRegular }
        #expect(isRegular(store))
        let daemon = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                                 "--journal", "ipc://" + store, "--state-dir", dir.file("state")])
        let status = daemon.waitForExit(timeout: 30)
        if status == nil { daemon.signal(SIGKILL); _ = daemon.waitForProcessExit(timeout: 10) }
        #expect(status == 64 && daemon.stderr.text.contains("journal.endpoint") && daemon.stderr.text.contains("is a regular file, not a socket"),
                "\(daemon.stderr.text)")
        #expect(isRegular(store), "the store was replaced")
        let again = try DaemonUnderTest(dir: dir)
        #expect(again.stop() == 0)

        let events = dir.file("events.ndjson")
        try Data((DaemonBehaviourTests.event + "\n").utf8).write(to: URL(fileURLWithPath: events))
        let keep = dir.file("keep.txt")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: keep))
        let r = try runTool(["replay", events, "--endpoint", "ipc://" + keep, "--bind", "--linger", "1"], timeout: 30)
        #expect(r.status == 69 && r.stderr.contains("not a socket"), "\(r.status as Any): \(r.stderr)")
        #expect(try String(contentsOfFile: keep, encoding: .utf8) == "keep")
    }

    @Test("a small input.receiveHighWaterMark with an ipc:// input: warned of at start naming the endpoint and libzmq issue 4660; the default is not")
    func smallInputQueueOnIPC() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, environment: ["CONTACTWATCH_INPUT_RECEIVE_HIGH_WATER_MARK": "1000"])
        // Start lines are queued before the `ready` line, which DaemonUnderTest waited for.
        let line = daemon.child.stderr.text.split(separator: "\n").first { $0.contains("input.receiveHighWaterMark is 1000") }
        #expect(line?.contains("issue 4660") == true && line?.contains(daemon.input) == true, "\(daemon.child.stderr.text.prefix(2000))")
        #expect(daemon.stop() == 0)

        let plain = try DaemonUnderTest(dir: try TemporaryDirectory())
        #expect(!plain.child.stderr.text.contains("issue 4660"), "\(plain.child.stderr.text.prefix(2000))")
        #expect(plain.stop() == 0)

        // --check-config shows it too, with exit 0 (only a start said it: a reviewer, session 33).
        let check = try Child("contactwatchd", ["--check-config", "--input", "ipc://\(dir.file("in.sock"))", "--input-bind",
                                                "--state-dir", dir.file("state")],
                              environment: ["CONTACTWATCH_INPUT_RECEIVE_HIGH_WATER_MARK": "1000"])
        #expect(check.waitForExit(timeout: 30) == 0, "\(check.stderr.text)")
        #expect(check.stdout.text.contains("  warning: input.receiveHighWaterMark is 1000") && check.stdout.text.contains("issue 4660")
                && check.stdout.text.contains("ipc://\(dir.file("in.sock"))"), "\(check.stdout.text)")
    }

    /// Without /proc Swift cannot read a process's arguments (it reads /proc/self/cmdline): `CommandLine.arguments`
    /// was empty and the daemon ran on its defaults — tcp://127.0.0.1:7401/7402 and ./state — whatever it was told
    /// (a reviewer, session 39). Both executables now refuse, exit 64, saying why. A private mount namespace takes
    /// /proc away from the child only; root is needed for it.
    @Test("without /proc (no command line to read) both executables exit 64 saying so, instead of running on their defaults")
    func noProcNoDefaults() throws {
        let probe = try Child("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", "umount -l /proc"])
        guard probe.waitForExit(timeout: 30) == 0 else {
            print("skipped: cannot unmount /proc in a private mount namespace (needs root and unshare): \(probe.stderr.text)")
            return
        }
        let dir = try TemporaryDirectory()
        for exe in ["contactwatchd", "contactwatch"] {
            // `--check-config` would end at once; run on the defaults instead (before the fix) it bound ports and waited.
            let arguments = exe == "contactwatchd" ? "--check-config" : "generate --cases 1 --days 1"
            let script = "umount -l /proc && cd \"$1\" && exec \"$2\" \(arguments)"
            let c = try Child("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                                                   dir.path, Executables.url(exe).path])
            let status = c.waitForExit(timeout: 30)
            if status == nil { c.signal(SIGKILL) }
            #expect(status == 64, "\(exe): \(String(describing: status)) \(c.stderr.text)")
            #expect(c.stderr.text.contains("\(exe): cannot read its command line from /proc/self/cmdline (/proc is not mounted)")
                    && c.stderr.text.contains("refusing to run on the defaults"), "\(c.stderr.text)")
            #expect(c.stdout.text.isEmpty, "\(exe) wrote: \(c.stdout.text.prefix(200))")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "a state directory was made on the defaults")
    }
}
