import ContactWatchTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Mistakes an operator makes with files and directories, against the real `contactwatchd`: each must be refused
/// (or accepted) with a message that says what is wrong in the system's own words, naming the file.
@Suite("Operator mistakes: configuration file, state directory, allow-list directories", .serialized)
struct OperatorMistakeTests {
    /// `contactwatchd ARGS` run to its end (bounded); status and standard error.
    static func daemon(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32?, stderr: String, stdout: String) {
        let c = try Child("contactwatchd", arguments, environment: environment)
        let status = c.waitForExit(timeout: 30)
        if status == nil { c.signal(SIGKILL) }
        return (status, c.stderr.text, c.stdout.text)
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
            #expect(r.status == 64 && r.stderr.contains(dir.file(name)) && r.stderr.contains("its top level is \(what), not a mapping"),
                    "\(name): \(r.stderr)")
        }
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
            #expect(r.stderr.contains("security.curve.allowPublishers: \(subdirectory): a directory, not a certificate file"), "\(r.stderr)")
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
}
