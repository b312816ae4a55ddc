import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("--check-config, unknown keys, SIGHUP, STATUS and the periodic counters", .blocking)
struct ConfigCheckAndReloadTests {
    static let example = Executables.packageRoot.appendingPathComponent("Deploy/contactwatchd.yaml").path

    /// The example configuration with `old` replaced by `new` (once), written into `dir`.
    static func exampleWith(_ dir: TemporaryDirectory, _ old: String, _ new: String, name: String = "c.yaml") throws -> String {
        let text = try String(contentsOfFile: example, encoding: .utf8)
        try #require(text.contains(old), "the example has no \(old)")
        let path = dir.file(name)
        try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A bound `ipc://` path whose directory is missing passed the check, then the start was exit 69 saying only "No
    /// such file or directory", restarted by the unit for ever (a contract auditor, session 41). Not a configuration
    /// problem (the unit creates /run/contactwatch only as it starts the daemon), so the check warns and says 0.
    @Test("a bound ipc:// endpoint in a directory that does not exist: --check-config warns (exit 0); the start is 69 naming the directory")
    func missingSocketDirectory() throws {
        let dir = try TemporaryDirectory()
        let endpoint = "ipc://\(dir.file("missing"))/in"
        let arguments = ["--input-bind", "--input", endpoint, "--output", dir.ipc("out"), "--state-dir", dir.file("state")]
        let check = try Child("contactwatchd", ["--check-config"] + arguments)
        #expect(check.waitForExit(timeout: 30) == 0, "\(check.stderr.text)")
        #expect(check.stdout.text.contains("warning: input.endpoints: the directory \(dir.file("missing")) of \(endpoint) does not exist now"),
                "\(check.stdout.text)")
        let start = try Child("contactwatchd", arguments)
        #expect(start.waitForExit(timeout: 30) == 69, "\(start.stderr.text)")
        #expect(start.stderr.text.contains("(the directory \(dir.file("missing")) does not exist: create it"), "\(start.stderr.text)")
    }

    /// A file value a flag overrides is not checked, being not in force; but the check said "configuration OK" of a
    /// file whose start without the flag stops with 64 (`log.level: loud` under `--log-level info`: an operator's
    /// audit, session 52). It warns, exit 0; the same with a CONTACTWATCH_ variable; the file alone is 64.
    @Test("--check-config of a file that would not load without the flag or variable overriding it: a warning naming the problem, exit 0")
    func checkWarnsOfAFileThatNeedsItsOverrides() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("loud.yaml")
        try "log:\n  level: loud\n".write(toFile: file, atomically: true, encoding: .utf8)
        let base = ["--check-config", "--config", file, "--state-dir", dir.file("state")]
        for (arguments, environment) in [(base + ["--log-level", "info"], [String: String]()), (base, ["CONTACTWATCH_LOG_LEVEL": "info"])] {
            let c = try Child("contactwatchd", arguments, environment: environment)
            #expect(c.waitForExit(timeout: 30) == 0, "\(c.stderr.text)")
            #expect(c.stdout.text.contains("  warning: the file would not load without what flags or the environment set (")
                    && c.stdout.text.contains("(got \"loud\")") && c.stdout.text.contains("a start without them would stop with exit 64"),
                    "\(c.stdout.text)")
        }
        let alone = try Child("contactwatchd", base)
        #expect(alone.waitForExit(timeout: 30) == 64, "\(alone.stderr.text)")
        // A file that loads alone: no such warning.
        try "log:\n  level: debug\n".write(toFile: file, atomically: true, encoding: .utf8)
        let fine = try Child("contactwatchd", base + ["--log-level", "info"])
        #expect(fine.waitForExit(timeout: 30) == 0 && !fine.stdout.text.contains("would not load"), "\(fine.stdout.text)")
    }

    @Test("--check-config accepts Deploy/contactwatchd.yaml (exit 0) and prints what it resolved")
    func exampleIsValid() throws {
        let dir = try TemporaryDirectory()
        let c = try Child("contactwatchd", ["--check-config", "--config", Self.example, "--state-dir", dir.file("state")])
        #expect(c.waitForExit(timeout: 30) == 0, "\(c.stderr.text)")
        #expect(c.stdout.text.hasPrefix("configuration OK (flags, then the environment, then \(Self.example), then defaults)\n"),
                "\(c.stdout.text)")
        #expect(c.stdout.text.contains("state: \(dir.file("state"))"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "--check-config touched the state directory")
    }

    /// The YAML parser quotes the offending line whole: a broken line of 500 kB went to the terminal and the log.
    @Test("a YAML syntax error on a 500 kB line: exit 64, line and column said, the quoted line cut at 120 characters")
    func yamlErrorOnAHugeLine() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("huge-line.yaml")
        try ("log:\n  level: [" + String(repeating: "a", count: 500_000) + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state")])
        #expect(c.waitForExit(timeout: 30) == 64, "\(c.stderr.text.prefix(2000))")
        let text = c.stderr.text
        #expect(text.contains("is not a valid YAML configuration file") && text.contains("line 2, column 10"),
                "\(text.prefix(2000))")
        #expect(text.contains("aaaa…") && text.utf8.count < 4000, "\(text.utf8.count) bytes on stderr: \(text.prefix(2000))")
    }

    @Test("--check-config names every unknown key (file and environment) and a bad value in one run, exit 64")
    func typos() throws {
        let dir = try TemporaryDirectory()
        let file = try Self.exampleWith(dir, "limitDays: 28", "limitDay: 28")
        var text = try String(contentsOfFile: file, encoding: .utf8)
        text = text.replacingOccurrences(of: "  level: info", with: "  level: loud")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state")],
                          environment: ["CONTACTWATCH_OUTPUT_ENDPONT": "tcp://127.0.0.1:1"])
        #expect(c.waitForExit(timeout: 30) == 64)
        let err = c.stderr.text
        #expect(err.contains("rules.telephoneOnly.limitDay: unknown key"), "\(err)")
        #expect(err.contains("did you mean rules.telephoneOnly.limitDays?"), "\(err)")
        #expect(err.contains("CONTACTWATCH_OUTPUT_ENDPONT: unknown environment variable"), "\(err)")
        #expect(err.contains("log.level"), "the bad value is reported with the unknown keys: \(err)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")))
    }

    @Test("a mapping given to a key that takes a value, a value given to a section, one key given dotted and nested: exit 64 naming it (they were read as absent: the default, and \"configuration OK\")", arguments: [
        ("state:\n  dir:\n    path: /srv/cw\n", "state.dir: a mapping where one value is expected"),
        ("metrics: {address: {host: 127.0.0.1, port: 9100}}\n", "metrics.address: a mapping where one value is expected"),
        ("rules:\n  outcomeOverdue:\n    enabled: {x: true}\n", "rules.outcomeOverdue.enabled: a mapping where one value is expected"),
        ("security:\n  curve:\n    certificate: {file: daemon.key_secret}\n", "security.curve.certificate: a mapping where one value is expected"),
        ("input:\n  endpoints: {a: tcp://127.0.0.1:7401}\n", "input.endpoints: a mapping where a list is expected"),
        ("rules: 5\n", "rules: a section (keys such as rules."),
        ("rules.outcomeOverdue.enabled: false\nrules:\n  outcomeOverdue:\n    enabled: true\n", "rules.outcomeOverdue.enabled: given twice"),
        // A key that is a list crashed the daemon (signal 4, inside Yams), not exit 64 (a fault tester, session 33).
        ("[log]:\n  level: info\n", "(top level): line 1: a list used as a key"),
        ("rules:\n  telephoneOnly:\n    priorityLimitDays: 014\n", "rules.telephoneOnly.priorityLimitDays: must be a whole number in decimal digits"),
    ])
    func valueShapes(yaml: String, message: String) throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("shape.yaml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state")])
        #expect(c.waitForExit(timeout: 30) == 64, "\(yaml): \(c.stdout.text) \(c.stderr.text)")
        #expect(c.stderr.text.contains("configuration: \(message)"), "\(yaml): \(c.stderr.text)")
        #expect(!c.stdout.text.contains("configuration OK"))
    }

    @Test("YAML aliases that expand a few lines past 100,000 values (lists and mappings), and a file over 1 MiB: exit 64 saying so, at once; a file using an alias modestly is fine")
    func aliasExpansion() throws {
        let dir = try TemporaryDirectory()
        var list = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        var map = "a: &a {x1: 1, x2: 2, x3: 3, x4: 4, x5: 5, x6: 6, x7: 7, x8: 8, x9: 9}\n"
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        for (previous, name) in zip(names, names.dropFirst()) {
            list += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            map += "\(name): &\(name) {" + (1...9).map { "k\($0): *\(previous)" }.joined(separator: ", ") + "}\n"
        }
        let huge = "# " + String(repeating: "x", count: 1 << 20) + "\n"
        // An alias used as a key: Yams' composer hashes keys, and hashing walks the expansion (10⁹ values here) —
        // it ran for hours before the bound on the composed nodes could run (a reviewer, session 34).
        let key = list + "? *i\n: 1\n"
        for (name, text, message) in [("list", list, "holds more than 100000 values, counting each YAML alias"),
                                      ("map", map, "holds more than 100000 values, counting each YAML alias"),
                                      ("key", key, "holds more than 100000 values, counting each YAML alias"),
                                      ("huge", huge, "at most 1024 KiB")] {
            let file = dir.file("\(name).yaml")
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let c = try Child("contactwatchd", ["--check-config", "--config", file])
            let status = c.waitForExit(timeout: 60)
            if status == nil { c.signal(SIGKILL) }
            #expect(status == 64 && c.stderr.text.contains(message), "\(name): \(String(describing: status)) \(c.stderr.text.prefix(400))")
        }
        let modest = dir.file("modest.yaml")
        try "input:\n  subscribe: &topics [\"probation-case.\"]\nlog:\n  level: info\n".write(toFile: modest, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", modest])
        #expect(c.waitForExit(timeout: 30) == 0, "\(c.stderr.text)")
    }

    @Test("--check-config reports every bad value and unknown key in one run (file, environment, flags), exit 64, one line each")
    func everyProblemInOneRun() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("many.yaml")
        var text = try String(contentsOfFile: Self.example, encoding: .utf8)
        for (old, new) in [("limitDays: 28", "limitDays: soon"),               // not an integer
                           ("  level: info", "  level: loud"),                  // not a level
                           ("windowMonths: 12", "windowMonths: 0"),             // engine range
                           ("threshold: 0.75", "threshold: 2"),                 // engine range
                           ("minimumSeverity: low", "minimumSeverity: severe"), // not a severity
                           ("commitMaxEvents: 1000", "commitMaxEvent: 1000"),   // unknown key
                           ("republishGraceMillis: 2000", "republishGraceMillis: -1")] {
            try #require(text.contains(old), "the example has no \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state"),
                                            "--output", "inproc://alerts", "--journal", "udp://127.0.0.1:9", "--metrics", "nowhere"],
                          environment: ["CONTACTWATCH_OUTPUT_ENDPONT": "tcp://127.0.0.1:1",
                                        "CONTACTWATCH_STATE_JOURNAL_RETENTION_DAYS": "0"])
        #expect(c.waitForExit(timeout: 30) == 64)
        let err = c.stderr.text
        let expected = ["rules.telephoneOnly.limitDays", "log.level", "rules.nonCompliance.windowMonths",
                        "rules.complianceRate.threshold", "rules.noPrivacy.minimumSeverity",
                        "state.commitMaxEvent: unknown key", "output.republishGraceMillis",
                        "output.endpoint: \"inproc://alerts\" is an in-process endpoint", "journal.endpoint: \"udp://127.0.0.1:9\"",
                        "metrics.address", "CONTACTWATCH_OUTPUT_ENDPONT: unknown environment variable", "state.journalRetentionDays"]
        for key in expected { #expect(err.contains("configuration: \(key)"), "\(key) not reported: \(err)") }
        // One line per problem, and the verdict.
        let problemLines = err.split(separator: "\n").filter { $0.hasPrefix("contactwatchd: configuration: ") }
        #expect(problemLines.count == expected.count, "\(err)")
        #expect(err.hasSuffix("contactwatchd: configuration check failed\n"), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")))
    }

    @Test("inproc:// for the input, the output or the journal: exit 64 naming the key, before touching the state")
    func inprocEndpointsRefused() throws {
        let dir = try TemporaryDirectory()
        let base = ["--state-dir", dir.file("state"), "--input", dir.ipc("in")]
        for (flags, key) in [(["--input", "inproc://events"], "input.endpoints"), (["--output", "inproc://alerts"], "output.endpoint"),
                             (["--journal", "inproc://journal"], "journal.endpoint")] {
            // One --output (a second one would be used, with a warning, instead of the first).
            let output = flags[0] == "--output" ? [] : ["--output", dir.ipc("out")]
            let c = try Child("contactwatchd", base + output + flags)
            let status = c.waitForExit(timeout: 30)
            if status == nil { c.signal(SIGKILL) }
            #expect(status == 64, "\(flags): \(c.stderr.text)")
            #expect(c.stderr.text.contains("configuration: \(key): \"\(flags[1])\" is an in-process endpoint: no other process can ever reach it"),
                    "\(flags): \(c.stderr.text)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("state")), "\(flags): the state directory was created")
        }
    }

    /// An LD_PRELOAD library whose `swap` (C, given) chooses the path every `open` of the process really opens.
    static func openSwapShim(_ swap: String) -> String {
        #"""
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <fcntl.h>
        #include <stdarg.h>
        #include <stdlib.h>
        #include <string.h>

        """# + swap + #"""

        #define MODE mode_t mode = 0; if (flags & (O_CREAT | O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, mode_t); va_end(a); }
        #define NEXT(name) static __typeof__(name) *next; if (next == NULL) next = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
        int open(const char *p, int flags, ...) { MODE NEXT(open); return next(swap(p), flags, mode); }
        int open64(const char *p, int flags, ...) { MODE NEXT(open64); return next(swap(p), flags, mode); }
        int openat(int d, const char *p, int flags, ...) { MODE NEXT(openat); return next(d, swap(p), flags, mode); }
        int openat64(int d, const char *p, int flags, ...) { MODE NEXT(openat64); return next(d, swap(p), flags, mode); }
        """#
    }

    /// An LD_PRELOAD library that hands every open of the file `CW_CONFIG_FILE` after the first the file
    /// `CW_CONFIG_LATER` instead: the configuration file rewritten between two reads of it.
    static let secondOpenShimSource = openSwapShim(#"""
        static int opened;
        static const char *swap(const char *path) {
            const char *file = getenv("CW_CONFIG_FILE"), *later = getenv("CW_CONFIG_LATER");
            if (file == NULL || later == NULL || path == NULL || strcmp(path, file) != 0) return path;
            return __atomic_fetch_add(&opened, 1, __ATOMIC_SEQ_CST) == 0 ? path : later;
        }
        """#)

    /// The file is read once: its keys are checked and its values applied from the same text. Read twice (once for the
    /// check, once by swift-configuration's `FileProvider`), a file rewritten in between had its typo go unreported and
    /// its values applied unchecked.
    @Test("the configuration file is read once: a file rewritten after the first read (here a second open sees another file) changes nothing, its unchecked typo is not applied")
    func configurationReadOnce() throws {
        let dir = try TemporaryDirectory()
        guard let shim = try FaultTests.buildShim(dir, "second-open-shim", Self.secondOpenShimSource,
                                                  test: "configuration read once") else { return }
        let file = dir.file("first.yaml"), later = dir.file("later.yaml")
        try "log:\n  level: debug\n".write(toFile: file, atomically: true, encoding: .utf8)
        try "log:\n  levle: error\n  format: json\n".write(toFile: later, atomically: true, encoding: .utf8)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state")],
                          environment: ["LD_PRELOAD": shim, "CW_CONFIG_FILE": file, "CW_CONFIG_LATER": later])
        #expect(c.waitForExit(timeout: 30) == 0, "\(c.stderr.text)")
        #expect(c.stdout.text.contains("log: debug (text)"), "not the first read's values: \(c.stdout.text)")
    }

    /// Every open of `CW_CONFIG_FILE` opens `CW_CONFIG_FIFO`: the file a check by path saw, and a FIFO by the open.
    static let fifoAtOpenShimSource = openSwapShim(#"""
        static const char *swap(const char *path) {
            const char *file = getenv("CW_CONFIG_FILE"), *fifo = getenv("CW_CONFIG_FIFO");
            return file != NULL && fifo != NULL && path != NULL && strcmp(path, file) == 0 ? fifo : path;
        }
        """#)

    /// Checked by path (`stat`) and then opened, a FIFO put at the path in between blocked the open for ever — at a
    /// SIGHUP, every later reload queued behind it (a fault tester, session 34). The kind is now that of what was
    /// opened, without blocking.
    @Test("a FIFO at the configuration's path when it is opened (after a check by path saw a file) is refused at once, exit 64, not an open that waits for ever")
    func fifoAtOpen() throws {
        let dir = try TemporaryDirectory()
        guard let shim = try FaultTests.buildShim(dir, "fifo-at-open-shim", Self.fifoAtOpenShimSource,
                                                  test: "FIFO at open") else { return }
        let file = dir.file("c.yaml"), fifo = dir.file("c.fifo")
        try "log:\n  level: debug\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(mkfifo(fifo, 0o600) == 0)
        let c = try Child("contactwatchd", ["--check-config", "--config", file, "--state-dir", dir.file("state")],
                          environment: ["LD_PRELOAD": shim, "CW_CONFIG_FILE": file, "CW_CONFIG_FIFO": fifo])
        let status = c.waitForExit(timeout: 20)
        if status == nil { c.signal(SIGKILL) }
        #expect(status == 64 && c.stderr.text.contains("it is a pipe, socket or device"), "\(String(describing: status)) \(c.stderr.text)")
    }

    @Test("the daemon started with a misspelt key exits 64 naming it, before touching its state")
    func typoAtStart() throws {
        let dir = try TemporaryDirectory()
        let file = try Self.exampleWith(dir, "limitDays: 28", "limitDay: 28")
        let c = try Child("contactwatchd", ["--config", file, "--state-dir", dir.file("state"),
                                            "--input", dir.ipc("in"), "--output", dir.ipc("out")])
        #expect(c.waitForExit(timeout: 30) == 64)
        #expect(c.stderr.text.contains("rules.telephoneOnly.limitDay"), "\(c.stderr.text)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")))
    }

    @Test("SIGHUP: a new log level applies at once, a bad file keeps the old values, the daemon keeps processing; SIGTERM exits 0")
    func reload() throws {
        let dir = try TemporaryDirectory()
        let config = dir.file("reload.yaml")
        try "log:\n  level: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--config", config, "--subscribe", ""])
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output])
        defer { tail.signal(SIGKILL); _ = tail.waitForProcessExit(timeout: 10) }
        #expect(daemon.waitForSubscribers(1), "\(daemon.child.stderr.text)")
        func replay(_ marker: String) throws {
            let file = dir.file("\(marker).ndjson")
            try "\(marker)\n".write(toFile: file, atomically: true, encoding: .utf8)
            let r = try runTool(["replay", file, "--endpoint", daemon.input, "--wait-subscribers", "1", "--send-invalid"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(tail.stdout.wait(timeout: 30) { $0.contains(marker) }, "the daemon did not process \(marker)")
        }
        try replay("before-reload")
        #expect(!daemon.child.stderr.text.contains("published: invalid event"))

        // debug: each published message is logged from now on.
        try "log:\n  level: debug\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("reload: applied log.level info → debug") },
                "\(daemon.child.stderr.text)")
        try replay("after-reload")
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("published: invalid event") }, "\(daemon.child.stderr.text)")

        // A change that needs a restart is named; an invalid file keeps everything as it was.
        try "log:\n  level: debug\nstate:\n  commitMaxEvents: 500\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("only applied at the next restart: state.commitMaxEvents") },
                "\(daemon.child.stderr.text)")
        try "log:\n  levle: warning\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        // At `warning`, as cli.md says (it was `error` at every level from session 52 to 54).
        #expect(daemon.child.stderr.wait(timeout: 20) {
            $0.split(separator: "\n").contains { $0.contains(" warning ") && $0.contains("reload: the configuration was not applied") && $0.contains("log.levle") }
        }, "\(daemon.child.stderr.text)")
        // A mapping where the level goes was read as no level at all: "nothing changed".
        try "log:\n  level:\n    value: warning\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("log.level: a mapping where one value is expected") },
                "\(daemon.child.stderr.text)")
        // A key that is a list (`[log]:` for `log:`) crashed the daemon inside Yams at this SIGHUP (signal 4).
        try "[log]:\n  level: warning\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("(top level): line 1: a list used as a key") },
                "\(daemon.child.stderr.text)")
        try replay("after-bad-reload")
        #expect(daemon.child.process.isRunning)
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        // Five SIGHUPs: two read and applied (a level, a change for the next restart), three refused.
        let stopped = daemon.child.stderr.lines.last { $0.hasSuffix(" stopped") }
        #expect(stopped?.contains("reloads=2 reloadsRefused=3") == true, "\(stopped ?? daemon.child.stderr.text)")
    }

    /// The file edited for settings a flag and a variable set: the reload said "nothing changed" and no more (a bug
    /// hunter, session 47: F8). It now names what overrides the file.
    @Test("SIGHUP after the file changed settings a flag and a CONTACTWATCH_ variable set: nothing changed, naming the file's value, the one in force and its source")
    func reloadNamesWhatOverridesTheFile() throws {
        let dir = try TemporaryDirectory()
        let config = dir.file("overridden.yaml")
        try "log:\n  level: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--config", config, "--log-level", "info"],
                                         environment: ["CONTACTWATCH_STATE_COMMIT_MAX_EVENTS": "1000"])
        try "log:\n  level: debug\nstate:\n  commitMaxEvents: 200\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("reload: configuration re-read, nothing changed;") },
                "\(daemon.child.stderr.text)")
        let line = daemon.child.stderr.lines.first { $0.contains("reload: configuration re-read, nothing changed;") } ?? ""
        #expect(line.contains("log.level debug → info (--log-level)")
                && line.contains("state.commitMaxEvents 200 → 1000 (CONTACTWATCH_STATE_COMMIT_MAX_EVENTS)"), "\(line)")
        // The file back in line with them: nothing more to say.
        try "log:\n  level: info\nstate:\n  commitMaxEvents: 1000\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.split(separator: "\n").contains { $0.hasSuffix("reload: configuration re-read, nothing changed") } },
                "\(daemon.child.stderr.text)")
        // A value the file cannot have, under the flag that sets it: said too, with the problem (an operator's
        // audit, session 52: "nothing changed" and no more, and the start without the flag stops with 64).
        try "log:\n  level: loud\nstate:\n  commitMaxEvents: 1000\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("the file would not load without what flags or the environment set") }, "\(daemon.child.stderr.text)")
        let unusable = daemon.child.stderr.lines.first { $0.contains("the file would not load without what flags or the environment set") } ?? ""
        #expect(unusable.contains("reload: configuration re-read, nothing changed;") && unusable.contains("log.level")
                && unusable.contains("loud") && unusable.contains("exit 64"), "\(unusable)")
        #expect(daemon.stop() == 0)
    }

    @Test("SIGHUP to a stricter log level says what it applied: info → warning → error → info, each line in the log (contract auditor, session 41: the line was filtered out by the level it set)")
    func reloadToAStricterLevel() throws {
        let dir = try TemporaryDirectory()
        let config = dir.file("reload.yaml")
        try "log:\n  level: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--config", config])
        for (old, new) in [("info", "warning"), ("warning", "error"), ("error", "info")] {
            // With the move to `error`, a change for the next restart: its warning was filtered out too.
            let restart = new == "error" ? "state:\n  commitMaxEvents: 500\n" : ""
            try "log:\n  level: \(new)\n\(restart)".write(toFile: config, atomically: true, encoding: .utf8)
            daemon.child.signal(SIGHUP)
            #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("reload: applied log.level \(old) → \(new)") },
                    "\(daemon.child.stderr.text)")
            if !restart.isEmpty {
                #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("only applied at the next restart: state.commitMaxEvents") },
                        "\(daemon.child.stderr.text)")
            }
        }
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        let applied = daemon.child.stderr.lines.filter { $0.contains("reload: applied") }
        // Each said at `notice`, or at the more verbose of the two levels when that is above it.
        #expect(applied.map { $0.split(separator: " ").dropFirst().first.map(String.init) } == ["notice", "warning", "notice"],
                "\(applied)")
    }

    /// A refused reload was a `warning`: under `log.level: error` it left no trace at all (no line, no metric, and
    /// `systemctl reload` reports success), while the file's next start stops with 64 (an operator's audit, session
    /// 52). It is said at the level in force when that one hides warnings.
    @Test("SIGHUP with a file that cannot be applied, under log.level error: the refusal is said, at error")
    func refusedReloadAtLevelError() throws {
        let dir = try TemporaryDirectory()
        let config = dir.file("reload.yaml")
        try "log:\n  level: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--config", config])
        try "log:\n  level: error\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("reload: applied log.level info → error") }, "\(daemon.child.stderr.text)")
        try "log:\n  level: error\n  levle: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) {
            $0.split(separator: "\n").contains { $0.contains(" error ") && $0.contains("reload: the configuration was not applied") && $0.contains("log.levle") }
        }, "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
    }

    /// Under `log.level: notice` a reload that changed nothing left no line: the operator could not tell the SIGHUP
    /// had been read (a soak tester, session 44).
    @Test("SIGHUP under log.level notice with nothing changed: said at notice")
    func reloadWithNothingChangedUnderNotice() throws {
        let dir = try TemporaryDirectory()
        let config = dir.file("reload.yaml")
        try "log:\n  level: info\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: ["--config", config])
        try "log:\n  level: notice\n".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains("reload: applied log.level info → notice") }, "\(daemon.child.stderr.text)")
        daemon.child.signal(SIGHUP)
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains(" notice contactwatchd : [ContactWatchRuntime] reload: configuration re-read, nothing changed") },
                "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
    }

    @Test("under systemd STATUS= carries a one-line summary; log.statsIntervalSeconds sends the counters line")
    func statusAndCounters() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, environment: ["CONTACTWATCH_LOG_STATS_INTERVAL_SECONDS": "1"])
        #expect(daemon.notify.wait(for: "STATUS=", prefix: true, timeout: 20) { $0.contains("events/s") && $0.contains("cases") },
                "no STATUS= line")
        #expect(daemon.child.stderr.wait(timeout: 20) { $0.contains(" counters") && $0.contains("received=") },
                "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0)
    }

    @Test("a restart with other rules' settings says which changed and what the store keeps as decided before; the same settings, or the first start, say nothing (fault tester, session 23: such restarts were silent)")
    func rulesChangedSinceLastStart() throws {
        let dir = try TemporaryDirectory()
        let marker = "the rules' settings changed since the store was last started"
        var daemon = try DaemonUnderTest(dir: dir)
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        #expect(!daemon.child.stderr.text.contains(marker), "\(daemon.child.stderr.text)")
        daemon = try DaemonUnderTest(dir: dir, environment: ["CONTACTWATCH_RULES_VIDEO_COUNTS_AS_FACE_TO_FACE": "true",
                                                             "CONTACTWATCH_INPUT_CONTACT_RETENTION_DAYS": "370"])
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        let line = daemon.child.stderr.lines.first { $0.contains(marker) } ?? ""
        #expect(line.contains("warning") && line.contains("input.contactRetentionDays 400 → 370")
                    && line.contains("rules.videoCountsAsFaceToFace false → true") && !line.contains("rules.timeZone")
                    && line.contains("remembered contacts keep the in-person or remote standing")
                    && !line.contains("stay forgotten"),
                "\(daemon.child.stderr.text)")
        daemon = try DaemonUnderTest(dir: dir, environment: ["CONTACTWATCH_RULES_VIDEO_COUNTS_AS_FACE_TO_FACE": "true",
                                                             "CONTACTWATCH_INPUT_CONTACT_RETENTION_DAYS": "370"])
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        #expect(!daemon.child.stderr.text.contains(marker), "\(daemon.child.stderr.text)")
    }
}
