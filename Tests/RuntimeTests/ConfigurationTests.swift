import ContactWatchCommon
import ContactWatchEngine
@testable import ContactWatchRuntime
import Configuration
import Foundation
import Testing
import Yams

/// Configuration resolution in-process, in the style of hummingbird's ConfigReader tests: values given through
/// swift-configuration's `InMemoryProvider`, precedence through the real `load` with an environment and a file.
@Suite("DaemonConfiguration")
struct ConfigurationTests {
    static func reader(_ values: [String: ConfigValue]) -> ConfigReader {
        var v: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in values { v[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = value }
        return ConfigReader(providers: [InMemoryProvider(values: v)])
    }

    static func resolve(_ values: [String: ConfigValue], environment: [String: String] = [:]) throws(DaemonError) -> DaemonConfiguration {
        try DaemonConfiguration.resolve(reader(values), environment: environment)
    }

    @Test("the defaults, when nothing is given")
    func defaults() throws {
        let c = try Self.resolve([:])
        #expect(c.inputs == ["tcp://127.0.0.1:7401"])
        #expect(c.output == "tcp://127.0.0.1:7402")
        #expect(c.journal == nil)
        #expect(c.republishGraceMillis == 2000)
        #expect(c.maxSubscriptions == 1024)
        #expect(c.journalMaxReplyAlerts == 1000)
        #expect(c.journalMaxReplyBytes == 1_048_576)
        #expect(c.commitIntervalMillis == 5)
        #expect(c.groupCommit)
    }

    @Test("values are read by key and typed")
    func typed() throws {
        let c = try Self.resolve([
            "output.republishGraceMillis": 250, "journal.maxReplyAlerts": 10, "journal.maxReplyBytes": 4096,
            "input.endpoints": .init(.stringArray(["ipc:///tmp/a", "ipc:///tmp/b"]), isSecret: false),
            "state.commitMaxEvents": 7, "log.level": "debug", "output.maxSubscriptions": 16, "state.groupCommit": false,
        ])
        #expect(c.republishGraceMillis == 250)
        #expect(c.maxSubscriptions == 16)
        #expect(c.journalLimits.maxReplyAlerts == 10)
        #expect(c.journalLimits.maxReplyBytes == 4096)
        #expect(c.inputs == ["ipc:///tmp/a", "ipc:///tmp/b"])
        #expect(c.commitMaxEvents == 7)
        #expect(!c.groupCommit)
        #expect(c.logLevel == .debug)
    }

    @Test("a bad value names its key and exits 64", arguments: [
        ("output.republishGraceMillis", ConfigValue(-1)),
        ("output.maxSubscriptions", ConfigValue(0)),
        ("output.maxSubscriptions", ConfigValue(65_537)),
        ("journal.maxReplyAlerts", ConfigValue(0)),
        ("journal.maxReplyBytes", ConfigValue(10)),
        ("state.commitMaxEvents", ConfigValue("many")),
        ("state.groupCommit", ConfigValue("sometimes")),
        ("log.level", ConfigValue("loud")),
        ("output.endpoint", ConfigValue("http://x")),
    ])
    func badValue(key: String, value: ConfigValue) {
        #expect {
            _ = try Self.resolve([key: value])
        } throws: { error in
            guard let e = error as? DaemonError else { return false }
            return e.exitStatus == .usage && e.message.contains(key) && e.kind == .configuration
        }
    }

    @Test("an input endpoint that is the daemon's own output or journal is exit 64 naming both", arguments: [
        (["ipc:///x/out"], "ipc:///x/out", nil as String?, "output.endpoint"),
        (["ipc:///x/pub", "ipc:///x/out"], "ipc:///x/out", nil, "output.endpoint"),
        (["tcp://127.0.0.1:7402"], "tcp://*:7402", nil, "output.endpoint"),
        (["tcp://localhost:7402"], "tcp://127.0.0.1:7402", nil, "output.endpoint"),
        (["tcp://127.0.0.1:7403"], "tcp://127.0.0.1:7402", "tcp://0.0.0.0:7403", "journal.endpoint"),
    ])
    func inputIsOwnOutput(inputs: [String], output: String, journal: String?, named: String) {
        var values: [String: ConfigValue] = ["input.endpoints": .init(.stringArray(inputs), isSecret: false), "output.endpoint": .init(.string(output), isSecret: false)]
        if let journal { values["journal.endpoint"] = .init(.string(journal), isSecret: false) }
        #expect {
            _ = try Self.resolve(values)
        } throws: { error in
            guard let e = error as? DaemonError else { return false }
            return e.exitStatus == .usage && e.message.contains("input.endpoints") && e.message.contains("own \(named)")
        }
    }

    @Test("endpoints that only look alike are accepted: another port, another host, a free port, another path")
    func inputNotOwnOutput() throws {
        for (input, output) in [("tcp://127.0.0.1:7401", "tcp://127.0.0.1:7402"), ("tcp://10.0.0.5:7402", "tcp://127.0.0.1:7402"),
                                ("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"), ("ipc:///x/in", "ipc:///x/out")] {
            let c = try Self.resolve(["input.endpoints": .init(.stringArray([input]), isSecret: false),
                                      "input.bind": .init(.bool(input.hasSuffix(":0")), isSecret: false),
                                      "output.endpoint": .init(.string(output), isSecret: false),
                                      "security.allowPlaintext": .init(.bool(true), isSecret: false)])
            #expect(c.inputs == [input])
        }
    }

    /// The configuration file was read whole before its size was checked: 1 GiB took 7 s and 1.1 GB of memory to be
    /// refused, at start and at every SIGHUP (a fault tester's find). The bytes this thread reads (`rchar` of
    /// /proc/thread-self/io) say whether it stopped at the limit.
    @Test("a 1 GiB configuration file is refused as too large after reading at most 1 MiB and a chunk")
    func hugeConfigurationFileNotReadWhole() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cw-huge-\(UUID().uuidString.prefix(8)).yaml").path
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        try #require(fd >= 0)
        #expect(ftruncate(fd, 1 << 30) == 0)  // sparse: no disk used
        close(fd)
        defer { unlink(path) }
        func readBytes() throws -> Int {
            let io = try String(contentsOfFile: "/proc/thread-self/io", encoding: .utf8)
            let line = try #require(io.split(separator: "\n").first { $0.hasPrefix("rchar:") })
            return try #require(Int(line.dropFirst("rchar:".count).trimmingCharacters(in: .whitespaces)))
        }
        let before = try readBytes()
        #expect {
            _ = try ConfigurationFile.read(path)
        } throws: { error in
            (error as? DaemonError)?.message.contains("it is 1073741824 bytes") == true
        }
        let read = try readBytes() - before
        #expect(read < 4 << 20, "\(read) bytes read to refuse the file")
    }

    /// Two of the daemon's own bound sockets on one endpoint failed at the second bind as "another process is
    /// listening" (69, restarted for ever) — the other process being the daemon itself.
    @Test("the journal on the output's endpoint, or the metrics on a bound socket's port, is exit 64 naming the key", arguments: [
        ("ipc:///x/out", "ipc:///x/out", nil as String?, "journal.endpoint", "is also the output.endpoint"),
        ("tcp://127.0.0.1:7402", "tcp://*:7402", nil, "journal.endpoint", "is also the output.endpoint"),
        ("tcp://127.0.0.1:7402", "tcp://127.0.0.1:7403", "localhost:7402", "metrics.address", "is the port of output.endpoint"),
        ("tcp://0.0.0.0:7402", "tcp://127.0.0.1:7403", "127.0.0.1:7403", "metrics.address", "is the port of journal.endpoint"),
    ])
    func ownSocketsCollide(output: String, journal: String, metrics: String?, key: String, says: String) {
        var values: [String: ConfigValue] = ["output.endpoint": .init(.string(output), isSecret: false),
                                             "journal.endpoint": .init(.string(journal), isSecret: false)]
        if let metrics { values["metrics.address"] = .init(.string(metrics), isSecret: false) }
        #expect {
            _ = try Self.resolve(values)
        } throws: { error in
            guard let e = error as? DaemonError else { return false }
            return e.exitStatus == .usage && e.message.contains(key) && e.message.contains(says)
        }
    }

    @Test("own sockets that only look alike are accepted: another port, another path, a free port, metrics on its own port")
    func ownSocketsApart() throws {
        for (output, journal, metrics) in [("tcp://127.0.0.1:7402", "tcp://127.0.0.1:7403", "127.0.0.1:9102"),
                                           ("ipc:///x/out", "ipc:///x/journal", "127.0.0.1:7402"),
                                           ("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "127.0.0.1:0")] {
            let c = try Self.resolve(["output.endpoint": .init(.string(output), isSecret: false),
                                      "journal.endpoint": .init(.string(journal), isSecret: false),
                                      "metrics.address": .init(.string(metrics), isSecret: false)])
            #expect(c.output == output && c.journal == journal)
        }
    }

    /// libzmq's bind unlinks whatever the path names: `--journal ipc://…/state/contactwatch.sqlite` replaced the
    /// state store with a socket (a fault tester's find).
    @Test("a bound ipc:// path that names a file, a directory or a link is exit 64 naming the key; a socket file or nothing is fine")
    func ipcPathNamesAFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-ipcfile-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(FileManager.default.createFile(atPath: dir + "/store", contents: Data("keep".utf8)))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/store")
        for (key, path, what) in [("output.endpoint", "/store", "a regular file"), ("journal.endpoint", "/sub", "a directory"),
                                  ("output.endpoint", "/link", "a symbolic link")] {
            let ep = "ipc://" + dir + path
            #expect {
                _ = try Self.resolve([key: .init(.string(ep), isSecret: false)])
            } throws: { error in
                guard let e = error as? DaemonError else { return false }
                return e.exitStatus == .usage && e.message.contains(key) && e.message.contains("is \(what), not a socket")
            }
        }
        #expect(try String(contentsOfFile: dir + "/store", encoding: .utf8) == "keep")
        // An input the daemon connects to is not bound: a file there is the publisher's business.
        let c = try Self.resolve(["input.endpoints": .init(.stringArray(["ipc://" + dir + "/store"]), isSecret: false),
                                  "output.endpoint": .init(.string("ipc://" + dir + "/out"), isSecret: false)])
        #expect(c.inputs == ["ipc://" + dir + "/store"])
        #expect(EndpointSyntax.bindWouldReplace("ipc://" + dir + "/nothing-here") == nil)
    }

    /// A README audit (session 24): `localhost` and `[::1]` passed `--check-config` as loopback and then failed to bind
    /// ("No such device", exit 69): libzmq binds only addresses and interface names, and IPv6 only with `ZMQ_IPV6`.
    /// `localhost` is the one name taken (bound as 127.0.0.1, `ZMQSocket.bindable`: spec/cli.md counts it among the
    /// loopback addresses; a contract auditor, session 50).
    @Test("a bound tcp:// host must be an IP address, an interface, localhost or *: another name is exit 64 naming the key; [::1], 127.0.0.1, localhost and lo are fine; a connect may name a host")
    func boundHostNames() throws {
        for ok in ["tcp://127.0.0.1:7402", "tcp://[::1]:7402", "tcp://*:7402", "tcp://lo:7402", "tcp://[::]:0", "tcp://0.0.0.0:*",
                   "tcp://[127.0.0.1]:0", "tcp://[fe80::1%lo]:0", "tcp://[fe80::1%1]:0", "tcp://localhost:7402", "tcp://LOCALHOST:*"] {
            #expect(EndpointSyntax.problem(ok, bind: true) == nil, "\(ok)")
        }
        for bad in ["tcp://localhost.:7402", "tcp://ip6-localhost:7402", "tcp://contactwatch.example:7402", "tcp://[localhost]:7402", "tcp://::1:7402",
                    "tcp://[localhost%lo]:0", "tcp://[fe80::1%]:0", "tcp://[fe80::1%no-such-interface]:0",
                    "tcp://lo:0:7402", "tcp://[::1%0]:7402", "tcp://[::1%4294967296]:7402", "tcp://[::1%lo:0]:7402"] {
            #expect(EndpointSyntax.problem(bad, bind: true)?.contains("is not an IP address or a network interface") == true, "\(bad)")
        }
        #expect(EndpointSyntax.problem("tcp://localhost:7401", bind: false) == nil)
        #expect {
            _ = try Self.resolve(["output.endpoint": .init(.string("tcp://ws1.example:7402"), isSecret: false)])
        } throws: { error in
            guard let e = error as? DaemonError else { return false }
            return e.exitStatus == .usage && e.message.contains("output.endpoint")
                && e.message.contains("127.0.0.1, [::1] or localhost for loopback")
        }
    }

    @Test("an ipc:// path longer than a Unix socket path (107 bytes) is exit 64 before any bind, not 69 after")
    func ipcPathLength() throws {
        let longest = "ipc:///" + String(repeating: "a", count: EndpointSyntax.maxSocketPath - 1)
        #expect(EndpointSyntax.problem(longest, bind: true) == nil)
        let c = try Self.resolve(["output.endpoint": .init(.string(longest), isSecret: false)])
        #expect(c.output == longest)
        let tooLong = longest + "a"
        #expect(EndpointSyntax.problem(tooLong, bind: false)?.contains("108 bytes") == true)
        #expect {
            _ = try Self.resolve(["output.endpoint": .init(.string(tooLong), isSecret: false)])
        } throws: { error in
            (error as? DaemonError)?.message.contains("output.endpoint") == true && (error as? DaemonError)?.exitStatus == .usage
        }
    }

    /// Every range is checked and said one way (`EngineSettings.rangeProblem`), the engine's keys and the daemon's
    /// alike: what is allowed and what was given (`state.commitMaxEvents` said only "must be at least 1").
    @Test("an ipc:// input with a queue limit below the default is warned of at start (libzmq issue 4660 loses a leaving publisher's last messages); tcp inputs, the default, more and 0 (no limit) are not")
    func smallInputQueueOnIPCWarned() throws {
        func warning(_ inputs: [String], _ mark: Int?) throws -> String? {
            var values: [String: ConfigValue] = ["input.endpoints": .init(.stringArray(inputs), isSecret: false)]
            if let mark { values["input.receiveHighWaterMark"] = .init(.int(mark), isSecret: false) }
            return try Self.resolve(values).smallInputQueueWarning
        }
        let text = try #require(try warning(["tcp://127.0.0.1:7401", "ipc:///run/cw/in"], 1000))
        #expect(text.contains("input.receiveHighWaterMark is 1000") && text.contains("issue 4660") && text.contains("0 (no limit)"))
        #expect(try warning(["ipc:///run/cw/in"], 99_999) != nil)
        #expect(try warning(["tcp://127.0.0.1:7401"], 1000) == nil)
        for mark in [nil, 100_000, 1_000_000, 0] as [Int?] {
            #expect(try warning(["ipc:///run/cw/in"], mark) == nil, "mark \(mark.map(String.init) ?? "default")")
        }
        #expect(try Self.resolve([:]).ipcInputs.isEmpty)
    }

    @Test("a value out of range says the range and the value given, for the daemon's keys as for the engine's", arguments: [
        ("state.commitMaxEvents", 0, "must be an integer of at least 1 (got 0)"),
        ("state.commitIntervalMillis", 10_001, "must be an integer from 0 to 10000 (got 10001)"),
        ("input.receiveHighWaterMark", -1, "must be an integer from 0 (no limit) to 2147483647 (got -1)"),
        ("log.statsIntervalSeconds", 86_401, "must be an integer from 0 (off) to 86400 (got 86401)"),
        ("input.maxMessageBytes", 63, "must be an integer from 64 to 2147483646 (got 63)"),
        ("input.maxMessageBytes", 2_147_483_647, "must be an integer from 64 to 2147483646 (got 2147483647)"),
        ("rules.telephoneOnly.limitDays", 0, "must be an integer from 1 to 36525 (got 0)"),
        ("rules.nonCompliance.enforcementDeadlineBusinessDays", 0, "must be an integer from 1 to 36525 (got 0)"),
        ("input.contactRetentionDays", 89, "must be at least rules.complianceRate.windowDays (90; got 89)"),
    ])
    func rangeMessages(key: String, value: Int, message: String) {
        #expect {
            _ = try Self.resolve([key: ConfigValue(.int(value), isSecret: false)])
        } throws: { error in
            (error as? DaemonError)?.message.contains("configuration: \(key): \(message)") == true
        }
    }

    @Test("flags win over the environment, which wins over the file, which wins over the defaults")
    func precedence() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("c.yaml").path
        try """
        output:
          endpoint: ipc:///file/out
          republishGraceMillis: 111
        journal:
          endpoint: ipc:///file/journal
        state:
          commitMaxEvents: 17
        """.write(toFile: file, atomically: true, encoding: .utf8)
        var flags = DaemonFlags()
        flags.configFile = file
        flags.output = "ipc:///flag/out"
        let env = ["CONTACTWATCH_JOURNAL_ENDPOINT": "ipc:///env/journal", "CONTACTWATCH_OUTPUT_ENDPOINT": "ipc:///env/out",
                   "OTHER_STATE_COMMIT_MAX_EVENTS": "3"]
        let c = try await DaemonConfiguration.load(flags: flags, environment: env)
        #expect(c.output == "ipc:///flag/out")
        #expect(c.journal == "ipc:///env/journal")
        #expect(c.republishGraceMillis == 111)
        #expect(c.commitMaxEvents == 17)
    }

    /// The configuration loaded from `yaml` written to a file of its own (none when nil) and `environment`.
    static func load(yaml: String?, environment: [String: String] = [:]) async throws -> DaemonConfiguration {
        var flags = DaemonFlags()
        let file = NSTemporaryDirectory() + "cw-config-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        if let yaml {
            try yaml.write(toFile: file, atomically: true, encoding: .utf8)
            flags.configFile = file
        }
        return try await DaemonConfiguration.load(flags: flags, environment: environment)
    }

    /// swift-configuration converts text with `Double(_:)`, which took `0x1p-1` as 0.5 for a threshold, from the
    /// environment or as a YAML value (a hexadecimal float is text in YAML). Decimal text is still taken, and `nan`
    /// is left to the range, which names it.
    @Test("a fractional setting written as a hexadecimal float (0x1p-1 was read as 0.5) is exit 64 naming the key, from the environment and from a file; decimal forms are taken")
    func fractionalSettingsDecimalOnly() async throws {
        func load(file value: String?, environment: [String: String] = [:]) async throws -> DaemonConfiguration {
            try await Self.load(yaml: value.map { "rules:\n  complianceRate:\n    threshold: \($0)\n" }, environment: environment)
        }
        func refused(_ error: any Error, _ words: [String]) -> Bool {
            guard let e = error as? DaemonError, e.exitStatus == .usage else { return false }
            return words.allSatisfy { e.message.contains($0) }
        }
        for text in ["0x1p-1", "0x0.8p0", "0X1P-1"] {
            await #expect(performing: { _ = try await load(file: text) },
                          throws: { refused($0, ["rules.complianceRate.threshold", "decimal number", "\"\(text)\""]) })
            await #expect(performing: { _ = try await load(file: nil, environment: ["CONTACTWATCH_RULES_COMPLIANCE_RATE_THRESHOLD": text]) },
                          throws: { refused($0, ["rules.complianceRate.threshold", "decimal number", "\"\(text)\""]) })
            await #expect(performing: { _ = try await load(file: nil, environment: ["CONTACTWATCH_RULES_COMPLIANCE_RATE_HYSTERESIS": text]) },
                          throws: { refused($0, ["rules.complianceRate.hysteresis", "decimal number"]) })
        }
        await #expect(performing: { _ = try await load(file: nil, environment: ["CONTACTWATCH_RULES_COMPLIANCE_RATE_THRESHOLD": "nan"]) },
                      throws: { refused($0, ["rules.complianceRate.threshold", "above 0 and at most 1"]) })
        for (text, value) in [("0.5", 0.5), (".5", 0.5), ("5e-1", 0.5), ("+0.25", 0.25), ("1", 1.0)] {
            #expect(try await load(file: text).engine.complianceRateThreshold == value, "file: \(text)")
            let c = try await load(file: nil, environment: ["CONTACTWATCH_RULES_COMPLIANCE_RATE_THRESHOLD": text])
            #expect(c.engine.complianceRateThreshold == value, "environment: \(text)")
        }
    }

    @Test("the endpoints whose peers the packaged unit's IPAddressDeny=any drops: tcp:// ones off loopback and an exposed metrics address; none by default")
    func remoteEndpoints() throws {
        var c = DaemonConfiguration()
        #expect(c.remoteEndpoints.isEmpty, "\(c.remoteEndpoints)")
        c.inputs = ["tcp://publisher.example:7401", "tcp://127.0.0.1:7401", "ipc:///run/contactwatch/in"]
        c.output = "tcp://0.0.0.0:7402"
        c.journal = "tcp://[::1]:7403"
        c.metrics = "127.0.0.1:9464"
        #expect(c.remoteEndpoints == ["input.endpoints tcp://publisher.example:7401", "output.endpoint tcp://0.0.0.0:7402"])
    }

    /// A default ./state under a shared working directory held what another user had prepared there, and nothing was
    /// said (a security tester, session 44).
    @Test("a state directory owned by another user (not this process's, not root) is warned of; one of this process's is not")
    func stateDirectoryOfAnotherUser() throws {
        let dir = NSTemporaryDirectory() + "cw-owner-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(chmod(dir, 0o750) == 0)
        #expect(LoadedStore.openToOthers(stateDir: dir, store: dir + "/contactwatch.sqlite").isEmpty)
        guard geteuid() == 0 else {
            print("skipped: a directory of another user needs root to chown it")
            return
        }
        #expect(chown(dir, 65534, 65534) == 0)
        let problems = LoadedStore.openToOthers(stateDir: dir, store: dir + "/contactwatch.sqlite")
        #expect(problems.count == 1 && problems[0].contains("the state directory \(dir) belongs to another user (uid 65534)"), "\(problems)")
    }

    /// An abstract name has no file to guard it; the warning follows each socket's own plaintext, as the plaintext rule
    /// does: a connected input without a server key is plaintext with CURVE on (a reviewer, session 44).
    @Test("the abstract ipc://@ warning names each plaintext socket with such a name: all without CURVE; with it, a connected input without input.curveServerKey only")
    func abstractPlaintext() {
        var c = DaemonConfiguration()
        c.inputs = ["ipc://@in", "ipc:///run/contactwatch/in"]
        c.output = "ipc://@out"
        c.journal = "ipc://@journal"
        #expect(c.abstractPlaintextWarning?.contains("(input.endpoints ipc://@in, output.endpoint ipc://@out, journal.endpoint ipc://@journal)") == true,
                "\(c.abstractPlaintextWarning ?? "nil")")
        c.security.certificate = "/etc/contactwatch/curve/contactwatchd.key_secret"
        c.inputBind = false
        #expect(c.abstractPlaintextWarning?.contains("(input.endpoints ipc://@in)") == true, "\(c.abstractPlaintextWarning ?? "nil")")
        c.security.inputServerKey = "/etc/contactwatch/curve/publisher.key"
        #expect(c.abstractPlaintextWarning == nil)
        c.inputBind = true
        c.security.inputServerKey = nil
        #expect(c.abstractPlaintextWarning == nil, "a bound input is a CURVE server with the certificate")
    }

    /// A plaintext socket file under a directory any user can write: any of them renames it away and binds their own
    /// (a bug hunter, session 46, read every event meant for the daemon). A connected input's own directory counts
    /// sticky or not: anyone can take a free name there.
    @Test("a plaintext ipc:// socket under a directory any user can write is warned of, naming it; a connected input's sticky directory too; a private directory, a bound socket in a sticky one, or CURVE: no warning")
    func openIPCDirectories() throws {
        let base = NSTemporaryDirectory() + "cw-open-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (name, mode) in [("open", 0o777), ("sticky", 0o1777), ("private", 0o755)] {
            try FileManager.default.createDirectory(atPath: "\(base)/\(name)/below", withIntermediateDirectories: true)
            #expect(chmod("\(base)/\(name)", mode_t(mode)) == 0)
        }
        var c = DaemonConfiguration()
        c.inputs = ["ipc://\(base)/sticky/in", "ipc://\(base)/private/in"]
        c.output = "ipc://\(base)/open/below/out"
        c.journal = "ipc://\(base)/private/journal"
        var warnings = c.openIPCDirectoryWarnings
        #expect(warnings.count == 2, "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix("input.endpoints ipc://\(base)/sticky/in: the socket's directory can be written by any user (\(base)/sticky, mode 01777)") },
                "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix("output.endpoint ipc://\(base)/open/below/out: a plaintext socket file under a directory any user can write (\(base)/open, mode 0777)") },
                "\(warnings)")
        #expect(c.checkSummary(file: nil).contains("warning: output.endpoint ipc://\(base)/open/below/out"), "\(c.checkSummary(file: nil))")
        // Bound, a socket in a sticky directory cannot be renamed away by others.
        c.inputBind = true
        warnings = c.openIPCDirectoryWarnings
        #expect(warnings.count == 1 && warnings[0].hasPrefix("output.endpoint"), "\(warnings)")
        // With CURVE the bound sockets are CURVE servers: nobody in their place holds the daemon's secret key.
        c.security.certificate = "/etc/contactwatch/curve/contactwatchd.key_secret"
        #expect(c.openIPCDirectoryWarnings.isEmpty, "\(c.openIPCDirectoryWarnings)")
        // A directory above, private by its mode but another user's: that user renames the socket away.
        guard geteuid() == 0 else {
            print("skipped: a directory owned by another user needs root to chown it")
            return
        }
        #expect(chown("\(base)/private", 65534, 65534) == 0)
        c.security.certificate = nil
        warnings = c.openIPCDirectoryWarnings
        #expect(warnings.contains { $0.hasPrefix("journal.endpoint ipc://\(base)/private/journal: a plaintext socket file under a directory owned by another user (\(base)/private, uid 65534)") },
                "\(warnings)")
    }

    @Test("the keys a reload reads from systemd's credential copies: relative paths with CREDENTIALS_DIRECTORY set, and only those")
    func credentialCopies() {
        let env = ["CREDENTIALS_DIRECTORY": "/run/credentials/contactwatchd.service"]
        #expect(ConfigurationReload.credentialCopies(SecuritySettings(), environment: env).isEmpty)
        var settings = SecuritySettings()
        settings.certificate = "/etc/contactwatch/curve/contactwatchd.key_secret"
        settings.inputServerKey = "publisher.key"
        #expect(ConfigurationReload.credentialCopies(settings, environment: env) == ["input.curveServerKey"])
        settings.certificate = "contactwatchd.key_secret"
        #expect(ConfigurationReload.credentialCopies(settings, environment: env) == ["security.curve.certificate", "input.curveServerKey"])
        #expect(ConfigurationReload.credentialCopies(settings, environment: [:]).isEmpty)
        #expect(ConfigurationReload.credentialCopies(settings, environment: ["CREDENTIALS_DIRECTORY": ""]).isEmpty)
    }

    /// `bankHolidays: []` in a file gave no bank holidays, but the same through the environment was refused (a rules
    /// auditor, session 43).
    @Test("CONTACTWATCH_RULES_BANK_HOLIDAYS= (empty) is no bank holidays, as bankHolidays: [] in a file; a doubled comma, and [\"\"] in a file, are refused")
    func emptyBankHolidaysFromTheEnvironment() async throws {
        let empty = try await Self.load(yaml: nil, environment: ["CONTACTWATCH_RULES_BANK_HOLIDAYS": ""])
        #expect(empty.engine.bankHolidays.isEmpty)
        let file = try await Self.load(yaml: "rules:\n  bankHolidays: []\n")
        #expect(file.engine.bankHolidays.isEmpty)
        let two = try await Self.load(yaml: nil, environment: ["CONTACTWATCH_RULES_BANK_HOLIDAYS": "2026-12-25,2026-12-28"])
        #expect(two.engine.bankHolidays.map(\.description) == ["2026-12-25", "2026-12-28"])
        await #expect(performing: { _ = try await Self.load(yaml: nil, environment: ["CONTACTWATCH_RULES_BANK_HOLIDAYS": "2026-12-25,,2026-12-28"]) },
                      throws: { ($0 as? DaemonError)?.message.contains("rules.bankHolidays: \"\" is not a YYYY-MM-DD date") == true })
        // In a file, `[""]` (a template's empty variable) is not "none": it removed every bank holiday without a word
        // (the configuration's hunter, session 45).
        await #expect(performing: { _ = try await Self.load(yaml: "rules:\n  bankHolidays: [\"\"]\n") },
                      throws: { ($0 as? DaemonError)?.message.contains("rules.bankHolidays: \"\" is not a YYYY-MM-DD date") == true })
        // Days, in order, each once: a list reordered or with a repeat is the same setting (it was reported as a change
        // of the rules at SIGHUP and at the next start).
        let reordered = try await Self.load(yaml: "rules:\n  bankHolidays: [2026-12-28, 2026-12-25, 2026-12-25]\n")
        #expect(reordered.engine.bankHolidays.map(\.description) == ["2026-12-25", "2026-12-28"])
        // The variable set empty still wins over the file's list.
        let over = try await Self.load(yaml: "rules:\n  bankHolidays: [2026-12-25]\n", environment: ["CONTACTWATCH_RULES_BANK_HOLIDAYS": ""])
        #expect(over.engine.bankHolidays.isEmpty)
    }

    /// Yams reads a plain integer by YAML 1.1's rules: `014` was octal 12, `1:30` base 60, `0b101` 5, `0_1_0` 8, and
    /// `028` was "not a whole number", while the same `014` in the environment was 14 (a fault tester, session 33).
    @Test("a whole-number setting written other than in decimal digits (014 was octal 12 in a file, 1:30 was 90) is exit 64 naming the key and the text, from a file and from the environment; decimal forms are taken")
    func integerSettingsDecimalOnly() async throws {
        func load(file value: String?, environment: [String: String] = [:]) async throws -> DaemonConfiguration {
            try await Self.load(yaml: value.map { "rules:\n  telephoneOnly:\n    priorityLimitDays: \($0)\n" }, environment: environment)
        }
        func refused(_ error: any Error, _ text: String, variable: String = "") -> Bool {
            guard let e = error as? DaemonError, e.exitStatus == .usage else { return false }
            return e.message.contains("rules.telephoneOnly.priorityLimitDays: \(variable)must be a whole number in decimal digits")
                && e.message.contains("(got \"\(text)\")")
        }
        // With a leading `_` (which Yams drops), and base-60 groups past 64 bits, which crashed the daemon (signal 4:
        // Yams multiplies them with trapping arithmetic; a fault tester, session 34).
        for text in ["014", "020", "028", "1:30", "0b101", "0o17", "0x10", "+0x10", "0_1_0", "1_000", "5.0", "1e1", "00",
                     "_014", "_1:30", "+_014", "_0x10", "_999999999999999999:0", "_1:0:0:0:0:0:0:0:0:0:0:0"] {
            await #expect(performing: { _ = try await load(file: text) }, throws: { refused($0, text) })
            // From the environment, the variable is named, as for any bad value there.
            await #expect(performing: { _ = try await load(file: nil, environment: ["CONTACTWATCH_RULES_TELEPHONE_ONLY_PRIORITY_LIMIT_DAYS": text]) },
                          throws: { refused($0, text, variable: "CONTACTWATCH_RULES_TELEPHONE_ONLY_PRIORITY_LIMIT_DAYS ") })
        }
        for (text, value) in [("14", 14), ("+14", 14), ("7", 7)] {
            #expect(try await load(file: text).engine.telephoneOnlyPriorityLimitDays == value, "file: \(text)")
            let c = try await load(file: nil, environment: ["CONTACTWATCH_RULES_TELEPHONE_ONLY_PRIORITY_LIMIT_DAYS": text])
            #expect(c.engine.telephoneOnlyPriorityLimitDays == value, "environment: \(text)")
        }
        // `+0` and `-0` are 0 (Yams refused them as "not a whole number"); past 64 bits is out of range, not "not a
        // whole number".
        for text in ["+0", "-0", "0"] {
            #expect(try await Self.load(yaml: "log:\n  statsIntervalSeconds: \(text)\n").statsIntervalSeconds == 0, "\(text)")
        }
        await #expect(performing: { _ = try await load(file: "99999999999999999999") },
                      throws: { "\($0)".contains("priorityLimitDays: is out of range: \"99999999999999999999\" is beyond 64 bits") })
        // Text that is no number at all keeps the type's message.
        await #expect(performing: { _ = try await load(file: "a fortnight") },
                      throws: { "\($0)".contains("priorityLimitDays: the value is not a whole number") })
    }

    /// The key check walked `Yams.load`'s dictionaries, which force a key to `String`: a key that is a list or a
    /// mapping crashed the daemon (signal 4), at start and at a SIGHUP (a fault tester, session 33).
    @Test("the file's key check: a key that is a list, a mapping or null, a null value, an explicit YAML tag are each a problem naming where; an empty section and quoted text are fine", arguments: [
        ("[a]: 1\n", "configuration: (top level): line 1: a list used as a key in f.yaml"),
        ("[log]:\n  level: info\n", "configuration: (top level): line 1: a list used as a key in f.yaml; a key is a name such as "),
        ("log: {[a]: 1}\n", "configuration: log: line 1: a list used as a key in f.yaml; a key is a name such as level"),
        ("? [a, b]\n: c\n", "a list used as a key"),
        ("{a: 1}: 2\n", "a mapping used as a key"),
        ("log:\n  ? {x: 1}\n  : y\n", "configuration: log: line 2: a mapping used as a key"),
        ("? \n: 1\n", "a null used as a key"),
        // An empty name: its child's path was its parent's, and `"":` hid everything under it (a fault tester, session 34).
        ("\"\":\n  log:\n    level: debug\n", "configuration: (top level): line 1: an empty key in f.yaml"),
        ("log: {'': x}\n", "configuration: log: line 1: an empty key in f.yaml"),
        ("state:\n  dir: ~\n", "configuration: state.dir: no value (empty, ~ or null) in f.yaml"),
        ("state:\n  dir:\n", "configuration: state.dir: no value"),
        ("input:\n  subscribe: [null]\n", "configuration: input.subscribe: a list holding no value"),
        ("rules:\n  telephoneOnly:\n    limitDays: !!str 5\n", "configuration: rules.telephoneOnly.limitDays: a YAML tag (!!str) in f.yaml"),
        ("log:\n  level: !!float 1\n", "a YAML tag (!!float)"),
        ("input:\n  endpoints: [!x tcp://127.0.0.1:1]\n", "configuration: input.endpoints: a YAML tag (!x)"),
        ("rules:\n  bankHolidays:\n    - date: 2024-12-25\n      name: Christmas\n",
         "configuration: rules.bankHolidays: item 1 of the list is a list or a mapping where text is expected in f.yaml"),
    ])
    func fileKeyShapes(yaml: String, message: String) throws {
        let problems = try ConfigurationCheck.unknownFileKeys(yaml: yaml, file: "f.yaml")
        #expect(problems.contains { $0.contains(message) }, "\(problems)")
        #expect(problems.count == 1, "\(problems)")
    }

    /// swift-configuration read `level:` as `""` and `[~]` as `["~"]`, and its check said so in a second line that
    /// contradicted the first (a reviewer, session 34).
    @Test("a null or tagged value is told once, by the key check: the value's own check does not also read it as text")
    func refusedValueToldOnce() async throws {
        for (yaml, key) in [("log:\n  level:\n", "log.level"), ("input:\n  endpoints: [~]\n", "input.endpoints"),
                            ("rules:\n  telephoneOnly:\n    limitDays: !!str 5\n", "rules.telephoneOnly.limitDays")] {
            do {
                _ = try await Self.load(yaml: yaml)
                Issue.record("\(yaml) accepted")
            } catch {
                let message = (error as? DaemonError)?.message ?? "\(error)"
                let lines = message.split(separator: "\n").filter { $0.contains(key) }
                #expect(lines.count == 1, "\(yaml): \(message)")
            }
        }
    }

    /// Yams resolves a plain scalar's tag in place as soon as anything hashes or compares it; read as written, every
    /// value of a configuration hashed once before the walk would have been "a YAML tag" (a reviewer, session 34).
    @Test("the key check finds no tag in a document whose every node was hashed first (Yams resolves tags in place): the shipped file stays valid")
    func tagsAfterHashing() throws {
        let yaml = try String(contentsOfFile: OutcomeOverdueConfigurationTests.deployFile, encoding: .utf8)
        let root = try #require(try Yams.compose(yaml: yaml))
        func hashAll(_ node: Node) {
            _ = node.hashValue
            for (k, v) in node.mapping ?? [:] { hashAll(k); hashAll(v) }
            for v in node.sequence ?? [] { hashAll(v) }
        }
        hashAll(root)
        #expect(ConfigurationCheck.unknownFileKeys(root: root, file: "contactwatchd.yaml") == [])
        let tagged = try #require(try Yams.compose(yaml: "rules:\n  telephoneOnly:\n    limitDays: !!str 5\n"))
        hashAll(tagged)
        #expect(ConfigurationCheck.unknownFileKeys(root: tagged, file: "f.yaml").count == 1, "a tag that changes the type is still found")
    }

    @Test("YAMLSize counts scalars, lists and mappings, an alias as the values of its anchor, without expanding anything; text that is not YAML is left to the composer")
    func yamlSize() {
        // The mapping, "a", the list and its two items: 5; "b" and the alias of the list's 3: 9 in all.
        let text = "a: &l [1, 2]\nb: *l\n"
        #expect(!YAMLSize.exceeds(text, limit: 9))
        #expect(YAMLSize.exceeds(text, limit: 8))
        // An alias of an anchored mapping (3) and one of a scalar (1): 1 + 2 + 3 + 1 + 3 + 2 + 1 + 1 = 13.
        #expect(!YAMLSize.exceeds("a: &m {x: 1}\nb: *m\nc: &s v\nd: *s\n", limit: 13))
        #expect(YAMLSize.exceeds("a: &m {x: 1}\nb: *m\nc: &s v\nd: *s\n", limit: 12))
        #expect(!YAMLSize.exceeds("a: [1\n", limit: 10), "not YAML: the composer says why")
        #expect(!YAMLSize.exceeds("", limit: 0))
    }

    /// A key that is not a name under an unknown key: "such as log" read as `fooo.log`, and `fooo` was never called
    /// unknown; a refusal of swift-configuration's own was dropped when the file had another problem (a reviewer,
    /// session 34).
    @Test("a key that is not a name under an unknown key names that key as unknown, with no example; swift-configuration's own refusal is said beside an unrelated problem")
    func everyProblemOfTheFile() async throws {
        let under = try ConfigurationCheck.unknownFileKeys(yaml: "fooo:\n  [a]: 1\n", file: "f.yaml")
        #expect(under == ["configuration: fooo: line 2: a list used as a key in f.yaml", "configuration: fooo: unknown key in f.yaml"])
        do {
            _ = try await Self.load(yaml: "lgo:\n  level: info\ninput:\n  endpoints: [{a: 1}]\n")
            Issue.record("accepted")
        } catch {
            let message = (error as? DaemonError)?.message ?? "\(error)"
            #expect(message.contains("lgo.level: unknown key") && message.contains("input.endpoints: item 1 of the list is a list or a mapping"),
                    "\(message)")
        }
        // swift-configuration refuses the whole file for such an item; the environment's problems are still named in
        // the same run (a fault tester, session 34: one message, then a second and a third pass).
        do {
            _ = try await Self.load(yaml: "input:\n  endpoints: [{a: 1}]\n", environment: ["CONTACTWATCH_LOG_FORMAT": "xml", "CONTACTWATCH_BOGUS": "1"])
            Issue.record("accepted")
        } catch {
            let message = (error as? DaemonError)?.message ?? "\(error)"
            #expect(message.contains("input.endpoints: item 1") && message.contains("CONTACTWATCH_BOGUS: unknown environment variable")
                    && message.contains("log.format: must be text or json (got \"xml\")"), "\(message)")
        }
    }

    /// A file that cannot be used stopped the run at the file: the environment's and the flags' problems were named
    /// only once it was mended, one pass each (a bug hunter, session 45: F1).
    @Test("a configuration file that is missing, not YAML or not a mapping is named with the environment's and the flags' problems, in one run", arguments: [
        ("- a\n", "its top level is a list"),
        ("log: [\n", "is not a valid YAML configuration file"),
        (nil, "cannot read the configuration file"),
    ] as [(String?, String)])
    func unusableFileBesideOtherProblems(yaml: String?, fileProblem: String) async throws {
        var flags = DaemonFlags()
        let file = NSTemporaryDirectory() + "cw-config-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        if let yaml { try yaml.write(toFile: file, atomically: true, encoding: .utf8) }
        flags.configFile = file
        flags.output = "bogus"
        do {
            _ = try await DaemonConfiguration.load(flags: flags, environment: ["CONTACTWATCH_LOG_LEVL": "info",
                                                                                "CONTACTWATCH_LOG_FORMAT": "xml"])
            Issue.record("accepted")
        } catch {
            #expect(error.exitCode == 64)
            let lines = error.message.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.contains("--config") && $0.contains(fileProblem) }, "\(lines)")
            #expect(lines.contains { $0.contains("CONTACTWATCH_LOG_LEVL: unknown environment variable") }, "\(lines)")
            #expect(lines.contains { $0.contains("log.format: must be text or json (got \"xml\")") }, "\(lines)")
            #expect(lines.contains { $0.contains("output.endpoint: \"bogus\"") }, "\(lines)")
            // Judged without the file: said, since the file may set what a refusal rests on (a reviewer, session 46).
            #expect(lines.last?.hasPrefix("configuration: --config: the values above were checked without \(file), which could not be used") == true,
                    "\(lines)")
        }
    }

    /// The example file with a second `security:` section appended (how a first-time operator follows "put
    /// security.curve.certificate in the yaml") was refused with the first section's line only and the whole file
    /// printed after it, 184 lines (a new-operator walk-through, session 49).
    @Test("a key given twice in one mapping is named with the line of each and what to do, without the file printed", arguments: [
        ("log:\n  level: info\n# a comment\nsecurity:\n  allowPlaintext: false\n\nsecurity:\n  curve:\n    certificate: x\n",
         "the key 'security' is given more than once in one mapping (lines 4, 7): YAML takes each key once; keep one section"),
        ("log:\n  level: info\n  format: text\n  \"level\": debug\nstate:\n  level: 1\n",
         "the key 'log.level' is given more than once in one mapping (lines 2, 4): YAML takes each key once; keep one"),
        ("rules:\n  telephoneOnly:\n    # days\n    limitDays: 3\n    limitDays: 4\n",
         "the key 'rules.telephoneOnly.limitDays' is given more than once in one mapping (lines 4, 5): YAML takes each key once; keep one"),
        ("log:\r\n  level: info\r\nsecurity:\r\n  allowPlaintext: false\r\nsecurity:\r\n  allowPlaintext: true\r\n",
         "the key 'security' is given more than once in one mapping (lines 3, 5)"),
    ])
    func duplicateKeyNamedWithItsLines(yaml: String, expected: String) async throws {
        do {
            _ = try await Self.load(yaml: yaml)
            Issue.record("accepted")
        } catch {
            #expect((error as? DaemonError)?.exitCode == 64)
            let message = (error as? DaemonError)?.message ?? "\(error)"
            #expect(message.contains(expected), "\(message)")
            // The advice about sections is for a key at the top level only.
            #expect(message.contains("security: section has its curve: keys commented out") == expected.contains("'security'"),
                    "\(message)")
            #expect(!message.contains("Context") && !message.contains("allowPlaintext"), "the file is not printed: \(message)")
        }
    }

    /// A bad value from the environment or a flag was told by its key alone, with the file saying something else
    /// for that key (a bug hunter, session 45: F2).
    @Test("an unusable value from the environment or a flag names its source; one from the file does not; a whole number's syntax names its variable once")
    func unusableValueNamesItsSource() async throws {
        var flags = DaemonFlags()
        let file = NSTemporaryDirectory() + "cw-config-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "log:\n  level: info\nrules:\n  timeZone: Europe/London\n  noPrivacy:\n    minimumSeverity: hi\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        flags.configFile = file
        flags.stateDir = "~/cw"
        do {
            _ = try await DaemonConfiguration.load(flags: flags, environment: [
                "CONTACTWATCH_RULES_TIME_ZONE": "Europe/Lodnon", "CONTACTWATCH_LOG_LEVEL": "loud",
                "CONTACTWATCH_RULES_TELEPHONE_ONLY_LIMIT_DAYS": "1x"])
            Issue.record("accepted")
        } catch {
            let lines = error.message.split(separator: "\n").map(String.init)
            func line(_ key: String) -> String { lines.first { $0.hasPrefix("configuration: \(key): ") } ?? "(none)" }
            #expect(line("rules.timeZone").hasSuffix(" (set by CONTACTWATCH_RULES_TIME_ZONE)"), "\(lines)")
            #expect(line("log.level").hasSuffix("(got \"loud\") (set by CONTACTWATCH_LOG_LEVEL)"), "\(lines)")
            #expect(line("state.dir").hasSuffix(" (set by --state-dir)"), "\(lines)")
            #expect(line("rules.noPrivacy.minimumSeverity").hasSuffix("(got \"hi\")"), "\(lines)")
            let syntax = line("rules.telephoneOnly.limitDays")
            #expect(syntax.contains("CONTACTWATCH_RULES_TELEPHONE_ONLY_LIMIT_DAYS must be") && !syntax.contains("set by"), "\(lines)")
        }
    }

    /// A memory shorter than R1's window passed: forgotten failures stopped counting, and R1 raised warning-due where
    /// the policy gives breach-due, its reason saying "in 24 months" (the configuration's hunter, session 45).
    @Test("input.contactRetentionDays shorter than the longest span of rules.nonCompliance.windowMonths is refused, naming both")
    func retentionShorterThanR1Window() async throws {
        for (yaml, needed) in [("rules:\n  nonCompliance:\n    windowMonths: 24\n", "at least 733 days with rules.nonCompliance.windowMonths 24 (got 400)"),
                               ("input:\n  contactRetentionDays: 367\n", "at least 368 days with rules.nonCompliance.windowMonths 12 (got 367)")] {
            do {
                _ = try await Self.load(yaml: yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                let message = (error as? DaemonError)?.message ?? "\(error)"
                #expect(message.contains("input.contactRetentionDays: must be " + needed), "\(message)")
            }
        }
        let exact = try await Self.load(yaml: "input:\n  contactRetentionDays: 368\n")
        #expect(exact.engine.contactRetentionDays == 368)
        let longer = try await Self.load(yaml: "rules:\n  nonCompliance:\n    windowMonths: 24\ninput:\n  contactRetentionDays: 733\n")
        #expect(longer.engine.nonComplianceWindowMonths == 24)
    }

    /// Whoever can write the configuration file decides, with CURVE on, who may connect: a file of mode 0666 pointed
    /// `allowConsumers` at the publishers' keys, applied at the next SIGHUP (a bug hunter, session 47: F7). Held to the
    /// allow-lists' rule: not writable by any user, and (root only) not owned by another user.
    @Test("with CURVE on, a configuration file any user can write, or another user's, is refused naming it; group-writable is taken; without CURVE it is not looked at")
    func configurationFileOthersCanWrite() async throws {
        let dir = NSTemporaryDirectory() + "cw-config-mode-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/c.yaml"
        try "security:\n  curve:\n    certificate: /etc/contactwatch/curve/daemon.key_secret\n    allowConsumers: /etc/contactwatch/consumers\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        var flags = DaemonFlags()
        flags.configFile = file
        flags.inputs = ["tcp://127.0.0.1:7401"]
        func problem() async -> String? {
            do { _ = try await DaemonConfiguration.load(flags: flags, environment: [:]); return nil } catch { return error.message }
        }
        #expect(chmod(file, 0o666) == 0)
        let open = await problem()
        #expect(open?.contains("configuration: --config: \(file): with CURVE on, a configuration file that any user can write (mode 0666) is refused") == true,
                "\(String(describing: open))")
        #expect(chmod(file, 0o664) == 0)
        #expect(await problem() == nil)
        if getuid() == 0 {
            #expect(chown(file, 65534, 65534) == 0)
            let theirs = await problem()
            #expect(theirs?.contains("with CURVE on, a configuration file owned by another user (uid 65534) is refused") == true,
                    "\(String(describing: theirs))")
        } else {
            print("skipped: a configuration file owned by another user needs root to chown it")
        }
        try "log:\n  level: info\n".write(toFile: file, atomically: false, encoding: .utf8)
        #expect(chmod(file, 0o666) == 0)
        #expect(await problem() == nil, "without CURVE the file's mode is not looked at")
    }

    /// Every reload looked `metrics.address` up again: with a resolver that did not answer, a reload of other settings
    /// was refused and a SIGTERM waited 19 s behind it (a bug hunter, session 47: F4). The lookup in force is reused
    /// for the same text; a new name is looked up within a bound.
    @Test("a reload reuses the metrics address's lookup in force for the same text; a start looks it up")
    func reloadReusesMetricsLookup() async throws {
        var flags = DaemonFlags()
        flags.metrics = "metrics.invalid:9100"
        do {
            _ = try await DaemonConfiguration.load(flags: flags, environment: [:])
            Issue.record("a name that does not resolve was taken at start")
        } catch {
            #expect(error.message.contains("metrics.address: \"metrics.invalid\" cannot be resolved"), "\(error.message)")
        }
        let inForce = (text: "metrics.invalid:9100", host: MetricsAddress.HostLookup(problem: nil, loopbackOnly: true))
        let reloaded = try await DaemonConfiguration.load(flags: flags, environment: [:], metricsLookup: .some(inForce))
        #expect(reloaded.metrics == "metrics.invalid:9100")
        // Another text is looked up (within the bound): refused as a start would refuse it.
        flags.metrics = "other.invalid:9100"
        do {
            _ = try await DaemonConfiguration.load(flags: flags, environment: [:], metricsLookup: .some(inForce))
            Issue.record("a new name that does not resolve was taken at reload")
        } catch {
            #expect(error.message.contains("\"other.invalid\" cannot be resolved"), "\(error.message)")
        }
    }

    /// A problem that weighs one key against another named the source of its own key only: with the window from the
    /// environment and the retention from the file, the operator was not told where the 24 came from (a reviewer,
    /// session 46: R3).
    @Test("a problem weighing two keys names where each value came from, when not the file; a key inside a longer name is not the key")
    func crossKeyProblemNamesBothSources() async throws {
        let file = NSTemporaryDirectory() + "cw-config-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "input:\n  contactRetentionDays: 400\n".write(toFile: file, atomically: true, encoding: .utf8)
        var flags = DaemonFlags()
        flags.configFile = file
        func line(environment: [String: String]) async -> String {
            do {
                _ = try await DaemonConfiguration.load(flags: flags, environment: environment)
                return "accepted"
            } catch {
                return error.message.split(separator: "\n").map(String.init)
                    .first { $0.hasPrefix("configuration: input.contactRetentionDays: ") } ?? error.message
            }
        }
        let window = ["CONTACTWATCH_RULES_NON_COMPLIANCE_WINDOW_MONTHS": "24"]
        let fromEnvironment = await line(environment: window)
        #expect(fromEnvironment.contains("(got 400)") && fromEnvironment.hasSuffix(" uncounted (rules.nonCompliance.windowMonths set by CONTACTWATCH_RULES_NON_COMPLIANCE_WINDOW_MONTHS)"),
                "\(fromEnvironment)")
        var both = window
        both["CONTACTWATCH_INPUT_CONTACT_RETENTION_DAYS"] = "401"
        let bothFromEnvironment = await line(environment: both)
        #expect(bothFromEnvironment.contains("(got 401)") && bothFromEnvironment.hasSuffix(" uncounted (set by CONTACTWATCH_INPUT_CONTACT_RETENTION_DAYS; "
            + "rules.nonCompliance.windowMonths set by CONTACTWATCH_RULES_NON_COMPLIANCE_WINDOW_MONTHS)"), "\(bothFromEnvironment)")
        // Both from the file: no source named.
        try "input:\n  contactRetentionDays: 400\nrules:\n  nonCompliance:\n    windowMonths: 24\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = await line(environment: [:])
        #expect(fromFile.hasSuffix(" uncounted") && !fromFile.contains("set by"), "\(fromFile)")
        // Whole keys only.
        let text: Substring = "see rules.nonCompliance.windowMonthsX and x.log.level, not log.levelled; but log.level."
        #expect(DaemonConfiguration.mentionsKey(text, "log.level"))
        #expect(!DaemonConfiguration.mentionsKey(text, "rules.nonCompliance.windowMonths"))
        #expect(!DaemonConfiguration.mentionsKey("x.log.level and log.levelled", "log.level"))
    }

    /// Only upper-case `CONTACTWATCH_*` names are read: one typed in another case was neither read nor said (the
    /// configuration's hunter, session 45: `contactwatch_rules_outcome_overdue_enabled=true`, R7 silently off).
    @Test("a CONTACTWATCH_ variable written in another case is named, with the upper-case name it meant; another name in another case is left alone")
    func environmentPrefixInAnotherCase() {
        let problems = ConfigurationCheck.unknownEnvironment([
            "contactwatch_rules_outcome_overdue_enabled": "true", "Contactwatch_LOG_LEVL": "debug",
            "CONTACTWATCH_LOG_LEVEL": "info", "contactwatcher": "x", "PATH": "/bin", "ContactWatch_Home": "/x",
        ])
        // A name in another case that names no key is not the daemon's (a CI job's `ContactWatch_Home`): left alone.
        #expect(problems == [
            "configuration: contactwatch_rules_outcome_overdue_enabled: not read: the variables are upper case; did you mean CONTACTWATCH_RULES_OUTCOME_OVERDUE_ENABLED (rules.outcomeOverdue.enabled)?",
        ], "\(problems)")
    }

    /// Small items of a fault tester's report (session 34): a path starting with `~` was taken literally (a directory
    /// named `~`), an empty certificate path turned CURVE on, `LOW` was refused where `DEBUG` was taken, `-0.0` was
    /// kept (a later `0` was "a change"), and the file's `input.bind` was told as the flag `--input-bind`.
    @Test("a path starting with ~, an empty certificate path, a NUL in any text and a time zone outside the tz database are exit 64 naming the key; severity in any case; -0.0 is 0; input.bind named by its key")
    func smallConfigurationItems() async throws {
        func problem(_ yaml: String) async -> String {
            do { _ = try await Self.load(yaml: yaml); return "accepted" } catch {
                return (error as? DaemonError)?.message ?? "\(error)"
            }
        }
        #expect(await problem("state:\n  dir: ~/cw\n").contains("state.dir: \"~/cw\" starts with ~, which is not expanded here"))
        #expect(await problem("security:\n  curve:\n    certificate: \"\"\n").contains("security.curve.certificate: must not be empty"))
        #expect(await problem("input:\n  bind: true\n  endpoints: [ipc:///tmp/cw-a.sock, ipc:///tmp/cw-b.sock]\n")
            .contains("input.bind (--input-bind): binds one input endpoint, but 2 were given"))
        #expect(try await Self.load(yaml: "rules:\n  noPrivacy:\n    minimumSeverity: HIGH\n").engine.noPrivacyMinimumSeverity == .high)
        let c = try await Self.load(yaml: "rules:\n  complianceRate:\n    hysteresis: -0.0\n")
        #expect(c.engine.complianceRateHysteresis == 0 && c.engine.complianceRateHysteresis.sign == .plus)
        // A NUL cut an ipc:// path where libzmq read it (an input that was the daemon's own output passed) and a
        // state directory where the system read it; `GMT+5`/`UTC+5` (UTC+5) and `Etc/GMT+5` (UTC−5) both passed
        // (a fault tester, session 34).
        #expect(await problem("output:\n  endpoint: \"ipc:///tmp/cw-a.sock\\0x\"\n").contains("output.endpoint: contains a NUL character"))
        #expect(await problem("input:\n  endpoints: [\"ipc:///tmp/cw-a\\0.sock\"]\n").contains("input.endpoints: contains a NUL character"))
        #expect(await problem("state:\n  dir: \"/tmp/sx\\0y\"\n").contains("state.dir: contains a NUL character"))
        // Abbreviations too (Foundation maps them to a zone of its choosing), and a name that is nothing.
        // Each told why: "not a time zone of the tz database" was wrong for EST, CET, Etc/GMT+5 and Factory, which are
        // (a rules auditor, session 43).
        let notInTheDatabase = "is not a time zone of the tz database", abbreviation = "is refused: an abbreviation"
        let posix = "is refused: the tz database's Etc/GMT zones count with POSIX's sign"
        for (zone, why) in [("GMT+5", notInTheDatabase), ("UTC+5", notInTheDatabase), ("Etc/GMT+5", posix), ("Etc/GMT-14", posix),
                            ("GMT+15", notInTheDatabase), ("PST", abbreviation), ("IST", abbreviation), ("CET", abbreviation),
                            ("EST", abbreviation), ("Foo/Bar", notInTheDatabase), ("europe/london", notInTheDatabase),
                            ("Factory", "is refused: the tz database's placeholder"),
                            ("Etc/GMT+0", "is refused, as every Etc/GMT zone with a sign"),
                            // ICU's old names, in no tz database: SST was taken as the Solomon Islands (a time hunter, session 54).
                            ("SST", "is refused: an old name ICU keeps"), ("ECT", "is refused: an old name ICU keeps"),
                            ("VST", "is refused: an old name ICU keeps"), ("SystemV/EST5EDT", "is refused: an old name ICU keeps"),
                            ("US/Pacific-New", "is refused: an old name ICU keeps"),
                            ("GMT+1500", "is refused: Foundation's name of a fixed offset"), ("GMT-0500", "is refused: Foundation's name of a fixed offset")] {
            let said = await problem("rules:\n  timeZone: \"\(zone)\"\n")
            #expect(said.contains("rules.timeZone: \"\(zone)\" \(why)"), "\(said)")
        }
        // The database's links, which Foundation reads under their own names: only ICU's canonical names were taken,
        // so `Asia/Kolkata` was refused and `Asia/Calcutta` accepted (a differential tester, session 36).
        for zone in ["UTC", "Etc/UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Asia/Calcutta", "Europe/Belfast",
                     "GB", "US/Eastern", "PRC", "ROC", "UCT", "NZ"] {
            #expect(try await Self.load(yaml: "rules:\n  timeZone: \(zone)\n").engine.timeZone == zone)
        }
    }

    /// Each suggestion costs an edit distance against every key: 9,500 unknown keys of 100 characters took 61 s at a
    /// start or a SIGHUP (a fault tester, session 34). The first 20 get one; every key is still named.
    @Test("\"did you mean\" for the first 20 unknown keys only; every unknown key is named")
    func suggestionBudget() throws {
        let letters = "ABCDEFGHIJKLMNOPQRSTUVWXY".map(String.init)
        let yaml = "rules:\n  telephoneOnly:\n" + letters.map { "    limitDay\($0): 1\n" }.joined()
        let problems = try ConfigurationCheck.unknownFileKeys(yaml: yaml, file: "f.yaml")
        #expect(problems.count == 25)
        #expect(problems.filter { $0.contains("did you mean rules.telephoneOnly.limitDays?") }.count == 20, "\(problems)")
    }

    @Test("metrics.address: digits and dots or 0x… are judged as an IPv4 address; a name with hexadecimal letters and digits (db1, cafe2) is judged as a name")
    func metricsHostKinds() throws {
        for host in ["0177.0.0.1", "127.1", "2130706433", "0x7f.1", "256.0.0.1"] {
            #expect(try #require(MetricsAddress("\(host):0")).lookUp().problem?.contains("is not an IPv4 address") == true, "\(host)")
        }
        for name in ["db1.invalid", "cafe2.invalid"] {
            #expect(try #require(MetricsAddress("\(name):0")).lookUp().problem?.contains("cannot be resolved") == true, "\(name)")
        }
        for good in ["127.0.0.1", "[::1]", "localhost", "0.0.0.0", "[::]"] {
            #expect(try #require(MetricsAddress("\(good):0")).lookUp().problem == nil, "\(good)")
        }
    }

    @Test("an empty section (every key under it commented out, or {}), quoted text and block text are no problem")
    func fileKeyShapesAccepted() throws {
        for yaml in ["log:\n", "log:\n  # level: debug\n", "log: {}\n", "rules:\n  telephoneOnly:\n", "state:\n  dir: \"~\"\n",
                     "log:\n  level: 'info'\n", "state:\n  dir: |-\n    /srv/cw\n", "input:\n  subscribe: [\"\", 'a']\n",
                     // A tag that changes nothing, as some generators write it (a reviewer, session 34).
                     "log:\n  level: !!str info\n", "rules:\n  telephoneOnly:\n    limitDays: !!int 5\n", "log:\n  level: ! info\n"] {
            #expect(try ConfigurationCheck.unknownFileKeys(yaml: yaml, file: "f.yaml") == [], "\(yaml)")
        }
    }

    @Test("--check-config's summary shows the warnings a start logs from the configuration: plaintext reachable from other hosts, a small ipc:// input queue; none by default")
    func checkSummaryWarnings() async throws {
        var flags = DaemonFlags()
        flags.output = "tcp://0.0.0.0:7402"
        let exposed = try await DaemonConfiguration.load(flags: flags, environment: ["CONTACTWATCH_SECURITY_ALLOW_PLAINTEXT": "true"])
        #expect(exposed.checkSummary(file: nil).contains("  warning: security.allowPlaintext: a plaintext socket reachable from other hosts: tcp://0.0.0.0:7402"),
                "\(exposed.checkSummary(file: nil))")
        flags = DaemonFlags()
        flags.inputs = ["ipc:///tmp/cw-check-summary-in.sock"]
        flags.inputBind = true
        let small = try await DaemonConfiguration.load(flags: flags, environment: ["CONTACTWATCH_INPUT_RECEIVE_HIGH_WATER_MARK": "1000"])
        #expect(small.checkSummary(file: nil).contains("  warning: input.receiveHighWaterMark is 1000"), "\(small.checkSummary(file: nil))")
        let plain = try await DaemonConfiguration.load(flags: DaemonFlags(), environment: [:])
        #expect(!plain.checkSummary(file: nil).contains("warning"), "\(plain.checkSummary(file: nil))")
        // Outside systemd the default state directory is said to be the default (a packaging check, session 37).
        #expect(plain.checkSummary(file: nil).contains("  state: ./state (the default without $STATE_DIRECTORY; under the unit: /var/lib/contactwatch)"),
                "\(plain.checkSummary(file: nil))")
        // Set to the same text, it is not the default: under the unit a relative path is taken from / (a README
        // walk-through, session 47, was told "under the unit: /var/lib/contactwatch" for `state.dir: ./state`).
        for environment in [["CONTACTWATCH_STATE_DIR": "./state"], ["CONTACTWATCH_STATE_DIR": "./state", "STATE_DIRECTORY": "/var/lib/contactwatch"]] {
            let set = try await DaemonConfiguration.load(flags: DaemonFlags(), environment: environment).checkSummary(file: nil)
            #expect(set.contains("  state: ./state (state.dir set, relative to the working directory: under the unit that is /")
                    && !set.contains("the default"), "\(set)")
        }
        var absolute = DaemonFlags()
        absolute.stateDir = "/srv/cw"
        let given = try await DaemonConfiguration.load(flags: absolute, environment: [:]).checkSummary(file: nil)
        #expect(given.contains("  state: /srv/cw\n"), "\(given)")
    }

    /// The metrics endpoint has no authentication: on every interface it was served without a word, where a plaintext
    /// ZeroMQ socket there needs security.allowPlaintext (a metrics endpoint attacker, session 37).
    @Test("a metrics endpoint other hosts can reach is a warning, in --check-config's summary too; loopback in any spelling is not", arguments: [
        ("0.0.0.0:9464", true), ("[::]:9464", true), ("192.0.2.1:9464", true),
        ("127.0.0.1:9464", false), ("127.1.2.3:0", false), ("localhost:9464", false), ("LocalHost:9464", false), ("[::1]:9464", false),
    ])
    func exposedMetrics(address: String, warned: Bool) async throws {
        var flags = DaemonFlags()
        flags.metrics = address
        let c = try await DaemonConfiguration.load(flags: flags, environment: [:])
        #expect((c.exposedMetricsWarning != nil) == warned, "\(address): \(String(describing: c.exposedMetricsWarning))")
        #expect(c.checkSummary(file: nil).contains("warning: metrics.address: the metrics endpoint (no authentication) is reachable from other hosts at \(address)") == warned)
    }

    /// A host name that resolves to loopback addresses only (Debian maps the host's own name to 127.0.1.1) was warned
    /// of as reachable from other hosts (a reviewer, session 37). (A name that does not resolve is exit 64.)
    @Test("metrics.address: a host name resolving to loopback only is not warned of as reachable from other hosts")
    func metricsHostNames() async throws {
        var name = [CChar](repeating: 0, count: 256)
        try #require(gethostname(&name, name.count) == 0)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var flags = DaemonFlags()
        // The host's own name, when this machine resolves it to loopback only (the numeric check says so).
        var hints = addrinfo()
        var list: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else {
            print("configuration: skipped the host-name case: \(host) does not resolve here")
            return
        }
        var addresses: [String] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            node = info.pointee.ai_next
        }
        freeaddrinfo(list)
        flags.metrics = "\(host):9464"
        let warning = try await DaemonConfiguration.load(flags: flags, environment: [:]).exposedMetricsWarning
        let loopbackOnly = !addresses.isEmpty && addresses.allSatisfy { EndpointExposure.isLoopbackAddress($0) }
        #expect((warning == nil) == loopbackOnly, "\(host) → \(addresses): \(String(describing: warning))")
        print("configuration: metrics.address \(host) resolves to \(addresses): \(warning == nil ? "not warned" : "warned")")
    }

    @Test("metrics.address's host is looked up once by the configuration: the check and the exposure warning share it")
    func metricsHostLookedUpOnce() async throws {
        for (host, loopbackOnly) in [("127.0.0.1", true), ("[::1]", true), ("localhost", true), ("0.0.0.0", false),
                                     ("[::]", false), ("192.0.2.1", false)] {
            let lookup = try #require(MetricsAddress("\(host):0")).lookUp()
            #expect(lookup == MetricsAddress.HostLookup(problem: nil, loopbackOnly: loopbackOnly), "\(host)")
        }
        let unresolved = try #require(MetricsAddress("no-such-host.invalid:0")).lookUp()
        #expect(unresolved.problem?.contains("cannot be resolved") == true && !unresolved.loopbackOnly)
        var flags = DaemonFlags()
        flags.metrics = "localhost:9464"
        let configuration = try await DaemonConfiguration.load(flags: flags, environment: [:])
        let kept = try #require(configuration.metricsLookup)
        #expect(kept.text == "localhost:9464" && kept.host == MetricsAddress.HostLookup(problem: nil, loopbackOnly: true))
        // What the warning reads is that lookup: one the host's resolver never gave is used as it is.
        var pretended = configuration
        pretended.metricsLookup = ("localhost:9464", MetricsAddress.HostLookup(problem: nil, loopbackOnly: false))
        #expect(pretended.exposedMetricsWarning?.contains("reachable from other hosts") == true)
        #expect(configuration.exposedMetricsWarning == nil)
    }

    @Test("an unreadable configuration file exits 64 naming --config")
    func unreadableFile() async {
        var flags = DaemonFlags()
        flags.configFile = "/nonexistent/contactwatchd.yaml"
        await #expect {
            _ = try await DaemonConfiguration.load(flags: flags, environment: [:])
        } throws: { error in
            (error as? DaemonError)?.exitStatus == .usage && "\(error)".contains("--config")
        }
    }

    @Test("exit statuses: each kind of failure has its named status")
    func exitStatuses() {
        #expect(DaemonError.configuration(key: "k", problem: "p").exitStatus == .usage)
        #expect(DaemonError.endpoint("e").exitStatus == .unavailable)
        #expect(DaemonError.internal("i").exitStatus == .software)
        #expect(DaemonError(.store(.corrupt), "c").exitStatus == .ioError)
        #expect(DaemonError(.store(.unreadable), "c").exitStatus == .ioError)
        #expect(DaemonError(.store(.full), "f").exitStatus == .temporaryFailure)
        #expect(DaemonError(.store(.busy), "b").exitStatus == .temporaryFailure)
        #expect(ExitStatus.usage.rawValue == 64 && ExitStatus.temporaryFailure.rawValue == 75 && ExitStatus.ioError.rawValue == 74)
    }

    @Test("a reload names every changed setting by its key, the engine's and the security settings one by one, with the old and new value when short (contract audit, session 23: it said 'rules.* or input.* (engine settings)')")
    func reloadNamesEachKey() throws {
        let before = try Self.resolve([:])
        let after = try Self.resolve([
            "input.maxMessageBytes": 1000, "rules.bankHolidays": .init(.stringArray(["2027-01-01"]), isSecret: false),
            "security.allowPlaintext": true, "journal.maxReplyAlerts": 10, "rules.timeZone": "Europe/Paris",
        ])
        #expect(Set(ConfigurationReload.differences(before, after)) == [
            "input.maxMessageBytes 65536 → 1000", "rules.bankHolidays", "security.allowPlaintext false → true",
            "journal.maxReplyAlerts 1000 → 10", "rules.timeZone Europe/London → Europe/Paris",
        ])
        #expect(ConfigurationReload.differences(before, before).isEmpty)
    }

    /// The README says a change is written `key old → new` unless the two values are long; the bound (80 characters
    /// together) had no test on either side of it (a mutation tester, session 51).
    @Test("a change is written with its values up to 80 characters of them together, as its key alone past that")
    func changeValuesUpToEightyCharacters() {
        let forty = String(repeating: "a", count: 40), fortyOne = String(repeating: "b", count: 41)
        #expect(ConfigurationReload.change("k", forty, forty) == "k \(forty) → \(forty)")
        #expect(ConfigurationReload.change("k", fortyOne, forty) == "k")
    }

    @Test("every setting has its configuration key for the reload line, and every key its row in the README's table with its environment variable (cli.md: the README lists them)")
    func everySettingNamed() throws {
        let keys = Set(DaemonConfiguration.keys)
        func fields(_ value: Any) -> [String] { Mirror(reflecting: value).children.compactMap(\.label) }
        let configuration = try Self.resolve([:])
        var named: [String] = []
        for field in fields(configuration) where !["engine", "security", "exposedPlaintext", "metricsLookup", "stateDirSet"].contains(field) {
            named.append(try #require(ConfigurationReload.keyNames[field], "no key for \(field)"))
        }
        for field in fields(configuration.engine) {
            named.append(try #require(ConfigurationReload.engineKeyNames[field], "no key for engine's \(field)"))
        }
        // The reload line and the record of the rules' settings write the engine's settings from one list.
        #expect(Set(RuleSettingsRecord.values(configuration.engine).keys) == Set(ConfigurationReload.engineKeyNames.values))
        for field in fields(configuration.security) {
            named.append(try #require(ConfigurationReload.securityKeyNames[field], "no key for security's \(field)"))
        }
        #expect(Set(named) == keys, "named but not keys: \(Set(named).subtracting(keys)); keys not named: \(keys.subtracting(named))")
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                                    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"),
                                encoding: .utf8)
        for key in keys {
            let variable = ConfigurationCheck.environmentName(key)
            #expect(readme.contains("`\(variable)`"), "the README does not list \(variable) (\(key))")
        }
    }

    @Test("the rules' settings recorded in the store: unchanged says nothing; each changed key named with its values, a holiday list by name, and only the consequences of what changed; a key on one side only is not a change (reviewer, session 23: every upgrade adding a setting would have warned)")
    func ruleSettingsChangeLine() {
        var settings = EngineSettings()
        let before = RuleSettingsRecord.text(settings)
        #expect(RuleSettingsRecord.changeLine(before: before, now: settings) == nil)
        settings.enforcementDeadlineBusinessDays = 3
        settings.bankHolidays = []
        let line = RuleSettingsRecord.changeLine(before: before, now: settings) ?? ""
        #expect(line.contains(": rules.bankHolidays, rules.nonCompliance.enforcementDeadlineBusinessDays 8 → 3; open non-compliance alerts' enforcement deadlines are computed again")
                    && !line.contains("stays as decided")
                    && !line.contains("rules.timeZone") && !line.contains("dated again"), "\(line)")
        var zone = EngineSettings()
        zone.timeZone = "Pacific/Auckland"
        let zoneLine = RuleSettingsRecord.changeLine(before: before, now: zone) ?? ""
        #expect(zoneLine.contains("rules.timeZone Europe/London → Pacific/Auckland; open non-compliance alerts' enforcement deadlines are computed again (those already overdue keep theirs); remembered contacts' compliance-rate contributions are dated again in the new zone;"),
                "\(zoneLine)")
        // A record from a release without a setting, or with one this release lacks: not a change.
        let partial = before.split(separator: "\n").filter { !$0.hasPrefix("rules.timeZone=") }.joined(separator: "\n")
        #expect(RuleSettingsRecord.changeLine(before: partial + "\nrules.someFutureSetting=1", now: EngineSettings()) == nil)
        // Every engine setting is recorded, in the configuration's spelling.
        #expect(Set(RuleSettingsRecord.values(EngineSettings()).keys) == Set(ConfigurationReload.engineKeyNames.values))
        #expect(before.contains("rules.noPrivacy.minimumSeverity=low\n") && before.contains("rules.bankHolidays=2024-01-01,2024-03-29,"))
        settings = EngineSettings()
        settings.noPrivacyMinimumSeverity = .high
        #expect(RuleSettingsRecord.changeLine(before: before, now: settings)?.contains("rules.noPrivacy.minimumSeverity low → high; the new values apply from the next event") == true)
    }
}
