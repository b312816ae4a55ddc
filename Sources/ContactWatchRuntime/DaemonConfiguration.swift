import ContactWatchCommon
import ContactWatchEngine
import Configuration
import Foundation
import Logging
import ZeroMQ

/// The values given on the command line (nil: not given). Flags win over the environment and the file.
public struct DaemonFlags: Sendable {
    public var configFile: String?
    public var inputs: [String] = []
    public var inputBind: Bool = false
    public var subscribe: [String] = []
    public var output: String?
    public var journal: String?
    public var stateDir: String?
    public var logLevel: String?
    public var logFormat: String?
    public var metrics: String?
    /// `--check-config`: resolve and report, bind nothing, touch no state.
    public var checkConfig = false
    public var curveCert: String?
    public var curveAllowPublishers: String?
    public var curveAllowConsumers: String?
    public var inputCurveServerKey: String?
    public init() {}
}

/// Everything the daemon runs with, resolved from flags, `CONTACTWATCH_*` environment variables, the configuration
/// file and the embedded defaults, in that order of precedence.
public struct DaemonConfiguration: Sendable {
    public var inputs: [String] = ["tcp://127.0.0.1:7401"]
    public var inputBind = false
    public var subscribe: [String] = ["probation-case."]
    public var output = "tcp://127.0.0.1:7402"
    public var journal: String? = nil
    public var stateDir = "./state"
    /// Whether `state.dir` was given (a flag, the environment or the file), not the default: `--check-config` notes
    /// the unit's directory only for the default.
    var stateDirSet = false
    public var logLevel: Logger.Level = .info
    /// `log.format` (`--log-format`): `text` or `json`.
    public var logFormat: LogFormat = .text
    /// `log.statsIntervalSeconds`: the periodic `info` line with the counters (0: off).
    public var statsIntervalSeconds = 60
    public var metrics: String? = nil
    /// `state.commitIntervalMillis`: the longest an alert waits for its commit.
    public var commitIntervalMillis = 5
    /// `state.commitMaxEvents`: a batch is due once it holds this many events (while the writer is busy it keeps
    /// growing, up to `CommitPipeline.Limits.batchesPerHardLimit` times this).
    public var commitMaxEvents = 1000
    /// `state.groupCommit`: events go to an idle writer at once (`CommitPipeline.Limits.groupCommit`); false: a batch
    /// waits for `commitIntervalMillis` or `commitMaxEvents` even when the writer is idle (fewer, larger commits at a
    /// light load, each alert published later).
    public var groupCommit = true
    /// `state.journalRetentionDays`: published journal entries older than this are pruned.
    public var journalRetentionDays = 400
    /// `state.journalPruneIntervalSeconds`: how often retention runs (and once at start), on the writer thread.
    public var journalPruneIntervalSeconds = 3600
    /// `input.receiveHighWaterMark` / `output.sendHighWaterMark`.
    public var receiveHighWaterMark = 100_000
    public var sendHighWaterMark = 100_000
    /// `output.republishGraceMillis`: after a restart, how long alerts left unpublished wait for a consumer to
    /// subscribe to alert topics before they are published anyway.
    public var republishGraceMillis = 2000
    /// `output.maxSubscriptions`: the most subscriptions the consumers' connections may hold together on the output
    /// (`SubscriptionTracker`); past it the connection holding the most is cut.
    public var maxSubscriptions = SubscriptionTracker.defaultMaxSubscriptions
    /// `journal.maxReplyAlerts` / `journal.maxReplyBytes`: the most alerts / body bytes in one journal reply.
    public var journalMaxReplyAlerts = 1000
    public var journalMaxReplyBytes = 1 << 20
    public var engine = EngineSettings()
    /// `security.*` and `input.curveServerKey` (cli.md, *Security*).
    public var security = SecuritySettings()
    /// Plaintext endpoints reachable from other hosts, allowed by `security.allowPlaintext` (logged at start).
    public var exposedPlaintext: [String] = []

    /// The start warning for an `ipc://` input whose queue limit is below the default, or nil.
    ///
    /// libzmq (4.3, issue 4660, open) loses messages of an `ipc://` connection that closes while its queue is full:
    /// with the queue full its engine stops reading the socket, the peer's close wakes it with `EPOLLHUP` (a Unix socket
    /// reports it at once; a TCP one only once both directions are shut), it marks the connection failed
    /// (`stream_engine_base_t::in_event_internal`, "_input_stopped") and, once the queue has room, ends it without
    /// reading what the kernel still holds (`restart_input`). Nothing tells the daemon. The queue fills only when the
    /// daemon falls that many messages behind, so the smaller the limit the likelier the loss: a fault tester lost
    /// 45–92 messages in most runs at 1,000 and none at 10,000 or the default (session 30). Not an error: the limit is
    /// the operator's to set, and 0 (no limit) avoids it.
    /// The warning for a metrics endpoint other hosts can reach (nil: loopback, or no metrics). The endpoint has no
    /// authentication and a few clients can delay its answers (README, *Observe: metrics*); `0.0.0.0` and `[::]`
    /// served it on every interface without a word, where a plaintext ZeroMQ socket there needs
    /// `security.allowPlaintext` and is logged (a metrics endpoint attacker, session 37). A warning, not a refusal:
    /// a management network is a reasonable place for it.
    public var exposedMetricsWarning: String? {
        guard let text = metrics, let address = MetricsAddress(text), !metricsHost(address, text).loopbackOnly else { return nil }
        return "metrics.address: the metrics endpoint (no authentication) is reachable from other hosts at \(text); "
            + "bind it to 127.0.0.1 or to a network only the scraper reaches"
    }

    /// The warning for plaintext `ipc://@name` endpoints (Linux abstract sockets), or nil. The contract admits plaintext
    /// on `ipc://` because a socket file's permissions keep other users out; an abstract name has no file, so no mode,
    /// umask or directory guards it: any local process connected to the daemon's and published forged events or read
    /// every alert, and none was said (a security tester, session 44). A warning, not a refusal: cli.md admits
    /// plaintext `ipc://`, and a host with no other users is a reasonable place for it.
    public var abstractPlaintextWarning: String? {
        let abstract = plaintextEndpoints.flatMap { key, endpoints in
            endpoints.filter { $0.hasPrefix("ipc://@") }.map { "\(key) \($0)" }
        }
        guard !abstract.isEmpty else { return nil }
        return "an abstract ipc:// socket (ipc://@name) has no file, so no permission or umask guards it: any local "
            + "process can connect to it, or bind its name first (\(abstract.joined(separator: ", "))); use a socket "
            + "file in a directory only the daemon and its peers can reach, or CURVE"
    }

    /// The endpoints without CURVE, by setting. Per socket, as the plaintext rule judges them: a connected input
    /// without input.curveServerKey is plaintext even with CURVE on (a reviewer, session 44).
    var plaintextEndpoints: [(key: String, endpoints: [String])] {
        let curve = security.certificate != nil
        let inputPlain = !curve || (!inputBind && security.inputServerKey == nil)
        return [("input.endpoints", inputPlain ? inputs : []), ("output.endpoint", curve ? [] : [output]),
                ("journal.endpoint", curve ? [] : journal.map { [$0] } ?? [])]
    }

    /// The warnings for plaintext `ipc://` socket files that other users can take over, one per endpoint. The contract
    /// admits plaintext `ipc://` because the file's permissions keep other users out, but in a directory any user can
    /// write without the sticky bit (there, or anywhere above it) any of them renames the daemon's socket file away
    /// and binds their own in its place: a bug hunter (session 46), as `nobody`, read every event meant for the
    /// daemon, which heard nothing and said nothing. A connected input's path is also warned of when its own
    /// directory is writable by all, sticky or not (`/tmp`): anyone can bind it while the publisher is not running,
    /// and be read as the publisher. A directory above owned by another user is warned of too (a reviewer, session
    /// 46): that user renames what is below it whatever its mode. Warnings, not refusals, as for the abstract names.
    public var openIPCDirectoryWarnings: [String] {
        var out: [String] = []
        for (key, endpoints) in plaintextEndpoints {
            for endpoint in endpoints where endpoint.hasPrefix("ipc://") && !endpoint.hasPrefix("ipc://@") {
                let connected = key == "input.endpoints" && !inputBind
                let path = String(endpoint.dropFirst("ipc://".count))
                if let open = OpenDirectories.firstWritableByAnyone(above: path, freeNameToo: connected) {
                    let place = "\(open.directory), mode \(open.modeText)"
                    if connected && open.mode & S_ISVTX != 0 {
                        out.append("\(key) \(endpoint): the socket's directory can be written by any user (\(place)): any "
                            + "of them can bind that path while the publisher is not running, and send the daemon forged "
                            + "events; use a directory only the daemon and its publishers can write, or CURVE")
                    } else {
                        out.append("\(key) \(endpoint): a plaintext socket file under a directory any user can write "
                            + "(\(place)): any of them can rename it away and bind their own in its place, and read or send "
                            + "what is meant for the daemon and its peers; use a directory only the daemon and its peers can "
                            + "write, or CURVE")
                    }
                } else if let (directory, uid) = OpenDirectories.firstOwnedByAnotherUser(above: path) {
                    out.append("\(key) \(endpoint): a plaintext socket file under a directory owned by another user "
                        + "(\(directory), uid \(uid)): that user can rename it away and bind their own in its place; "
                        + "use a directory of the daemon's user or root, or CURVE")
                }
            }
        }
        return out
    }

    /// The endpoints (by setting) that talk with other hosts: `tcp://` ones not on loopback (`EndpointExposure.isLocal`),
    /// and a metrics address that is not loopback only. Under the packaged unit (`IPAddressDeny=any`,
    /// `IPAddressAllow=localhost`) their peers' packets are dropped before the daemon sees them unless a drop-in allows
    /// their networks: nothing is logged or counted (an operator audit, session 43), so the start reminds of it.
    public var remoteEndpoints: [String] {
        var out: [String] = []
        for (key, endpoints) in [("input.endpoints", inputs), ("output.endpoint", [output]), ("journal.endpoint", journal.map { [$0] } ?? [])] {
            for e in endpoints where e.hasPrefix("tcp://") && !EndpointExposure.isLocal(e) { out.append("\(key) \(e)") }
        }
        if exposedMetricsWarning != nil, let text = metrics { out.append("metrics.address \(text)") }
        return out
    }

    /// `metrics.address`'s host as `resolve` looked it up, with the text it was for: the configuration's check and the
    /// exposure warning read this one lookup (`MetricsAddress.lookUp`).
    var metricsLookup: (text: String, host: MetricsAddress.HostLookup)?

    /// The lookup of `address` (parsed from `text`): `resolve`'s when it was of this text, else made now.
    func metricsHost(_ address: MetricsAddress, _ text: String) -> MetricsAddress.HostLookup {
        if let metricsLookup, metricsLookup.text == text { return metricsLookup.host }
        return address.lookUp()
    }

    public var smallInputQueueWarning: String? {
        guard receiveHighWaterMark > 0, receiveHighWaterMark < Self().receiveHighWaterMark, !ipcInputs.isEmpty else { return nil }
        return """
            input.receiveHighWaterMark is \(receiveHighWaterMark), below the default \(Self().receiveHighWaterMark), with an \
            ipc:// input: a publisher that leaves while its queue is full loses what its socket still held, inside \
            libzmq and without a word (libzmq issue 4660); set it to \(Self().receiveHighWaterMark) or more, or 0 (no limit)
            """
    }

    /// The `ipc://` endpoints of `input.endpoints`.
    public var ipcInputs: [String] { inputs.filter { $0.hasPrefix("ipc://") } }

    public init() {}

    /// The environment variable prefix: `CONTACTWATCH_` + the key as swift-configuration maps it
    /// (`rules.telephoneOnly.limitDays` → `CONTACTWATCH_RULES_TELEPHONE_ONLY_LIMIT_DAYS`).
    public static let environmentPrefix = "CONTACTWATCH_"

    /// Every key the daemon reads, for the README and the example file.
    public static let keys: [String] = [
        "rules.timeZone", "rules.bankHolidays", "rules.videoCountsAsFaceToFace", "rules.nonCompliance.windowMonths",
        "rules.nonCompliance.enforcementDeadlineBusinessDays", "rules.telephoneOnly.limitDays",
        "rules.telephoneOnly.priorityLimitDays", "rules.remoteContact.enabled", "rules.noPrivacy.minimumSeverity",
        "rules.complianceRate.windowDays", "rules.complianceRate.minimumSample", "rules.complianceRate.threshold",
        "rules.complianceRate.hysteresis", "rules.outcomeOverdue.enabled", "rules.outcomeOverdue.businessDays",
        "input.maxMessageBytes", "input.contactRetentionDays",
        "input.maxFutureSkewSeconds", "input.endpoints", "input.bind", "input.subscribe", "input.receiveHighWaterMark",
        "output.endpoint", "output.sendHighWaterMark", "output.republishGraceMillis", "output.maxSubscriptions", "journal.endpoint",
        "journal.maxReplyAlerts", "journal.maxReplyBytes", "state.dir", "state.commitIntervalMillis",
        "state.commitMaxEvents", "state.groupCommit", "state.journalRetentionDays", "state.journalPruneIntervalSeconds", "log.level", "log.format", "log.statsIntervalSeconds", "metrics.address",
        "security.curve.certificate", "security.curve.allowPublishers", "security.curve.allowConsumers",
        "security.allowPlaintext", "input.curveServerKey",
    ]

    /// Resolves the configuration. Throws a `DaemonError` with exit code 64 that names the key and the problem.
    /// `metricsLookup`: a lookup of `metrics.address` already made (the configuration in force, at a reload): reused
    /// when the text is the same, and a new name is then looked up within `MetricsAddress.reloadLookupSeconds`.
    public static func load(flags: DaemonFlags, environment: [String: String]) async throws(DaemonError) -> DaemonConfiguration {
        try await load(flags: flags, environment: environment, metricsLookup: nil)
    }

    static func load(flags: DaemonFlags, environment: [String: String],
                     metricsLookup known: (text: String, host: MetricsAddress.HostLookup)??) async throws(DaemonError) -> DaemonConfiguration {
        var env: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix(environmentPrefix) {
            env[String(name.dropFirst(environmentPrefix.count))] = value
        }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flagValues(flags)),
            EnvironmentVariablesProvider(environmentVariables: env),
        ]
        // A key the daemon does not know is a problem (cli.md): every one is named, with the nearest known key.
        // Each escaped: a key's name, as a value, can hold a newline (`"a\nb": 1`).
        var unknown = ConfigurationCheck.unknownEnvironment(environment).map(ContactWatchLogHandler.textSafe)
        var quoted: Set<String> = []
        // A file that cannot be used (unreadable, not YAML, not a mapping) is one problem among the others: the
        // environment's and the flags' values are still resolved, without it, so that theirs are named in the same
        // run (a bug hunter, session 45: three problems took three passes).
        var unusedFile: String? = nil
        if let file = flags.configFile {
            do throws(DaemonError) {
                let (text, root) = try ConfigurationFile.read(file)
                var refused: Set<String> = []
                if let root {
                    let found = ConfigurationCheck.fileProblems(root: root, file: file)
                    unknown += found.problems.map(ContactWatchLogHandler.textSafe)
                    refused = found.refused
                    quoted = found.quoted
                }
                let empty: Bool
                do { empty = try ConfigurationFile.isEmptyDocument(root) } catch {
                    throw DaemonError.configuration(key: "--config", problemLines: "\(file) is not a valid YAML configuration file: \(ConfigurationFile.excerpt(of: error))")
                }
                // A file with nothing but comments (or nothing at all) sets nothing: every other source and default
                // applies (README, *Configuration*). swift-configuration would refuse it as "not a mapping".
                if !empty {
                    do {
                        providers.append(try ConfigurationFile.provider(text: text, hiding: refused))
                    } catch {
                        // swift-configuration refuses the whole file for a key that is not a name or a list item that is
                        // not one value: the problems found above say which and where. Any other refusal is said with
                        // them (it was dropped when the file had an unrelated problem too: a reviewer, session 34). The
                        // environment's and the flags' values are still resolved below, without the file, so that their
                        // problems are named in the same run (a fault tester, session 34: one message, three passes).
                        let own = DaemonError.configuration(key: "--config", problemLines: "\(file) is not a valid YAML configuration file: \(ConfigurationFile.excerpt(of: error))")
                        let explained = ["YAML key is not convertible to string", "Unexpected non-scalar value in array"]
                            .contains { "\(error)".hasPrefix($0) } && !unknown.isEmpty
                        if !explained { unknown.append(own.message) }
                        unusedFile = file
                    }
                }
            } catch {
                unknown.append(error.message)
                unusedFile = file
            }
        }
        let reader = ConfigReader(providers: providers)
        // Unknown keys and every unusable value are reported together (one line each).
        let config: DaemonConfiguration
        do throws(DaemonError) {
            config = try resolve(reader, environment: environment, quotedInFile: quoted, metricsLookup: known)
        } catch {
            var named = error
            // Judged without the file, a value may be refused for what the file would have set (an allow-list
            // "without security.curve.certificate" that the file gives: a reviewer, session 46): said so.
            let without = unusedFile.map {
                ["configuration: --config: the values above were checked without \($0), which could not be used: a "
                    + "problem that rests on a value it sets may go once it is mended"]
            } ?? []
            named.message = (unknown + [namingSources(error.message, flags: flags, environment: environment)] + without)
                .joined(separator: "\n")
            if !unknown.isEmpty { named.kind = .configuration }
            throw named
        }
        if !unknown.isEmpty { throw DaemonError(.configuration, unknown.joined(separator: "\n")) }
        if config.security.certificate != nil, let file = flags.configFile, unusedFile == nil,
           let problem = CurveCertificate.configurationFileProblem(file) {
            throw DaemonError.configuration(key: "--config", problem: "\(file): \(problem)")
        }
        return config
    }

    static func flagValues(_ f: DaemonFlags) -> [AbsoluteConfigKey: ConfigValue] {
        var v: [AbsoluteConfigKey: ConfigValue] = [:]
        for setting in flagSettings(f) {
            v[AbsoluteConfigKey(setting.key.split(separator: ".").map(String.init))] = .init(setting.value, isSecret: false)
        }
        return v
    }

    /// The keys the flags given set: each key, its flag, its value.
    static func flagSettings(_ f: DaemonFlags) -> [(key: String, flag: String, value: ConfigContent)] {
        var v: [(key: String, flag: String, value: ConfigContent)] = []
        if !f.inputs.isEmpty { v.append(("input.endpoints", "--input", .stringArray(f.inputs))) }
        if f.inputBind { v.append(("input.bind", "--input-bind", .bool(true))) }
        if !f.subscribe.isEmpty { v.append(("input.subscribe", "--subscribe", .stringArray(f.subscribe))) }
        if let o = f.output { v.append(("output.endpoint", "--output", .string(o))) }
        if let j = f.journal { v.append(("journal.endpoint", "--journal", .string(j))) }
        if let s = f.stateDir { v.append(("state.dir", "--state-dir", .string(s))) }
        if let l = f.logLevel { v.append(("log.level", "--log-level", .string(l))) }
        if let l = f.logFormat { v.append(("log.format", "--log-format", .string(l))) }
        if let m = f.metrics { v.append(("metrics.address", "--metrics", .string(m))) }
        if let c = f.curveCert { v.append(("security.curve.certificate", "--curve-cert", .string(c))) }
        if let p = f.curveAllowPublishers { v.append(("security.curve.allowPublishers", "--curve-allow-publishers", .string(p))) }
        if let c = f.curveAllowConsumers { v.append(("security.curve.allowConsumers", "--curve-allow-consumers", .string(c))) }
        if let k = f.inputCurveServerKey { v.append(("input.curveServerKey", "--input-curve-server-key", .string(k))) }
        return v
    }

    /// The problems of `message` (lines `configuration: KEY: …`), each of a key whose value came from a flag or from
    /// the environment ending with its source: `log.level: must be one of … (set by CONTACTWATCH_LOG_LEVEL)`. Told by
    /// its key alone, with the file saying something else for that key, the message sent the operator to the file,
    /// while the value sat in a drop-in's `Environment=` (a bug hunter, session 45: F2). A line that already names its
    /// variable (a whole number's syntax) and the file's own values are left as they are. A line that weighs its key
    /// against another (`input.contactRetentionDays` against `rules.nonCompliance.windowMonths`) also names where the
    /// other key's value came from, when not the file: `(set by --x; rules.nonCompliance.windowMonths set by
    /// CONTACTWATCH_RULES_NON_COMPLIANCE_WINDOW_MONTHS)` (a reviewer, session 46: R3).
    static func namingSources(_ message: String, flags: DaemonFlags, environment: [String: String]) -> String {
        let prefix = "configuration: "
        let fromFlags = Dictionary(flagSettings(flags).map { ($0.key, $0.flag) }, uniquingKeysWith: { a, _ in a })
        /// The flag or variable that set `key`, unless the line already names it; nil for the file or a default.
        func source(of key: String, in rest: Substring) -> String? {
            if let flag = fromFlags[key] { return flag }
            let variable = ConfigurationCheck.environmentName(key)
            guard environment[variable] != nil, !rest.contains(variable) else { return nil }
            return variable
        }
        return message.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix(prefix), let colon = line.dropFirst(prefix.count).range(of: ": ") else { return String(line) }
            let key = String(line[line.index(line.startIndex, offsetBy: prefix.count)..<colon.lowerBound])
            let rest = line[colon.upperBound...]
            var sources: [String] = []
            if let own = source(of: key, in: rest) { sources.append("set by " + own) }
            for other in keys where other != key && mentionsKey(rest, other) {
                if let set = source(of: other, in: rest) { sources.append(other + " set by " + set) }
            }
            return sources.isEmpty ? String(line) : line + " (" + sources.joined(separator: "; ") + ")"
        }.joined(separator: "\n")
    }

    /// Whether `text` names `key` as a whole: not `input.endpoints` inside `input.endpointsX` or `x.input.endpoints`
    /// (a key may end a sentence: a `.` after it that no letter or digit follows).
    static func mentionsKey(_ text: Substring, _ key: String) -> Bool {
        func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
        var from = text.startIndex
        while let found = text[from...].range(of: key) {
            let beforeOK = found.lowerBound == text.startIndex || {
                let c = text[text.index(before: found.lowerBound)]
                return !isWordCharacter(c) && c != "."
            }()
            let rest = text[found.upperBound...]
            let afterOK = rest.first.map { c in
                !isWordCharacter(c) && (c != "." || rest.dropFirst().first.map { !isWordCharacter($0) } ?? true)
            } ?? true
            if beforeOK && afterOK { return true }
            from = found.upperBound
        }
        return false
    }

    /// Reads one key with a typed accessor; missing → nil; present but unusable → exit 64 naming the key.
    static func read<T>(_ key: String, environment: [String: String],
                        _ get: (ConfigKey) throws -> T) throws(DaemonError) -> T? {
        do {
            return try get(ConfigKey(key))
        } catch {
            // swift-configuration reports a missing key with this wording; anything else is a bad value.
            if String(describing: error).hasPrefix("Missing required config value") { return nil }
            throw DaemonError.configuration(key: key, problem: conversionProblem(error, environment: environment)
                ?? "the value cannot be used (\(error))")
        }
    }

    /// What a value of the wrong type is told, in the key's own terms: swift-configuration's text names the key as
    /// its provider spells it and the Swift type (`Config value for key 'RULES_VIDEO_COUNTS_AS_FACE_TO_FACE' failed to
    /// convert to type bool.`: an operator audit, session 26). A value from the environment is told by its variable
    /// and value: "(in a YAML file, without quotes)" sent an operator who had no file looking for one (the CLI
    /// auditor, session 28); `environment` is the one the configuration was loaded from. Nil for any other error.
    static func conversionProblem(_ error: any Error, environment: [String: String]) -> String? {
        let text = String(describing: error)
        guard let range = text.range(of: "failed to convert to type ") else { return nil }
        let type = text[range.upperBound...].prefix { $0 != "." && $0 != " " }
        // The environment provider spells a key in upper case with `_` (every key has a `.` in a file).
        var variable: String? = nil
        if let open = text.range(of: "key '"), let close = text[open.upperBound...].firstIndex(of: "'") {
            let spelled = text[open.upperBound..<close]
            if !spelled.contains("."), spelled.contains("_") { variable = environmentPrefix + spelled }
        }
        let inFile = variable == nil ? " (in a YAML file, without quotes)" : ""
        let wanted: String
        switch type {
        case "bool": wanted = "true or false" + inFile
        case "int": wanted = "a whole number" + inFile
        case "double": wanted = "a number" + inFile
        case "string": wanted = "text"
        default: wanted = type.hasSuffix("Array") || type.hasPrefix("[") ? "a list" : "of type \(type)"
        }
        guard let variable else { return "the value is not \(wanted)" }
        let got = environment[variable].map { " (got \"\($0)\")" } ?? ""
        return "\(variable) is not \(wanted)\(got)"
    }

    /// Typed reads of one key each (see `read`).
    struct Keys {
        let c: ConfigReader
        /// The environment the configuration was loaded from (a wrong value in it is told with its variable).
        let environment: [String: String]
        /// The file's keys whose value is quoted: a whole number there is left to swift-configuration, which refuses
        /// it ("without quotes"), as it refuses `"28"` — `'+0'` was taken as 0 by the shortcut below (a fault tester,
        /// session 34).
        var quotedInFile: Set<String> = []
        /// A whole-number setting, written in decimal digits: a YAML file reads plain integers by YAML 1.1's rules, so
        /// `014` was octal 12, `1:30` base 60 (90), `0b101` 5 and `0_1_0` 8, where the same `014` in the environment
        /// is 14 (a fault tester, session 33: `priorityLimitDays: 014` ran with 12 days and `--check-config` said OK).
        /// A value holding a digit that is not decimal digits, with no leading zero, is refused naming it — before
        /// swift-configuration hands it to Yams' YAML 1.1 reading, which drops every `_` and multiplies base-60 groups
        /// with trapping arithmetic: `_1:0:0:0:0:0:0:0:0:0:0:0` crashed the daemon (signal 4) at start and at SIGHUP,
        /// and `_014` was still octal 12 (a fault tester, session 34). Text with no digit keeps the type's message.
        func int(_ key: String) throws(DaemonError) -> Int? {
            if let text = try? c.requiredString(forKey: ConfigKey(key)), DecimalSyntax.containsDigit(text) {
                guard DecimalSyntax.isWholeNumber(text) else {
                    throw DaemonError.configuration(key: key, problem: "\(source(key))must be a whole number in decimal digits "
                        + "without a leading zero, such as 14 (got \"\(text)\")")
                }
                // Past 64 bits it is still a whole number: said so, with the bound (it was "not a whole number").
                guard let value = Int(text) else {
                    throw DaemonError.configuration(key: key, problem: "\(source(key))is out of range: \"\(text)\" is beyond 64 bits "
                        + "(\(Int.min) to \(Int.max)), let alone the setting's own range")
                }
                // Yams reads `+0` and `-0` as an octal prefix with no digits after it, and refused them. (`0` itself
                // is left to it, so that a quoted `"0"` is refused as a quoted `"60"` is.)
                if value == 0 && text != "0" && (!quotedInFile.contains(key) || environment[ConfigurationCheck.environmentName(key)] != nil) {
                    return 0
                }
            }
            return try read(key, environment: environment) { try c.requiredInt(forKey: $0) }
        }
        func bool(_ key: String) throws(DaemonError) -> Bool? { try read(key, environment: environment) { try c.requiredBool(forKey: $0) } }
        func string(_ key: String) throws(DaemonError) -> String? {
            let value = try read(key, environment: environment) { try c.requiredString(forKey: $0) }
            if let value, value.utf8.contains(0) { throw Self.nulProblem(key) }
            return value
        }
        /// A NUL (`"…\u0000…"` in the file) cuts a path or an endpoint where the system reads it: `ipc:///p/a.sock\0x`
        /// passed the check that the input is not the daemon's own output and was bound as `a.sock`, so one invalid
        /// message looped for ever; `state.dir: "…/sx\0y"` made `sx` (a fault tester, session 34). No setting holds one.
        static func nulProblem(_ key: String) -> DaemonError {
            DaemonError.configuration(key: key, problem: "contains a NUL character, which would cut it where the system reads it")
        }
        /// A fractional setting. swift-configuration converts text (an environment variable, a YAML value that is not
        /// a YAML number) with `Double(_:)`, which took `0x1p-1` as 0.5: text that is not a decimal number is refused
        /// (`DecimalSyntax`); `nan` and `inf` are left to the setting's range, which names them.
        /// As for whole numbers, the text is judged before Yams reads it (its YAML 1.1 floats take `_` and base 60).
        func double(_ key: String) throws(DaemonError) -> Double? {
            if let text = try? c.requiredString(forKey: ConfigKey(key)), DecimalSyntax.containsDigit(text),
               !DecimalSyntax.isDecimal(text) {
                throw DaemonError.configuration(key: key, problem: "\(source(key))must be a decimal number such as 0.8 (got \"\(text)\")")
            }
            return try read(key, environment: environment, { try c.requiredDouble(forKey: $0) })
        }
        /// The variable a value of `key` came from, when it came from the environment (`CONTACTWATCH_… `), as
        /// `conversionProblem` names it; else nothing. (No flag sets a number, and the environment wins over the file.)
        func source(_ key: String) -> String {
            let variable = ConfigurationCheck.environmentName(key)
            return environment[variable] == nil ? "" : "\(variable) "
        }
        func strings(_ key: String) throws(DaemonError) -> [String]? {
            let values = try read(key, environment: environment) { try c.requiredStringArray(forKey: $0) }
            if let values, values.contains(where: { $0.utf8.contains(0) }) { throw Self.nulProblem(key) }
            return values
        }
    }

    /// The problems found while resolving: every unusable value is collected, so that one run (`--check-config`,
    /// or a start) names them all (cli.md: "report every problem"), then thrown together (exit 64, one line each).
    struct Problems {
        private(set) var messages: [String] = []

        mutating func add(_ error: DaemonError) { messages.append(contentsOf: error.message.split(separator: "\n").map(String.init)) }

        /// Runs one step (typically the read of one key); a `DaemonError` it throws is collected, not propagated.
        mutating func collect(_ body: () throws -> Void) {
            do { try body() } catch let error as DaemonError { add(error) } catch {
                messages.append("configuration: \(error)")
            }
        }

        /// Throws every problem collected, if any.
        func throwIfAny() throws(DaemonError) {
            if !messages.isEmpty { throw DaemonError(.configuration, messages.joined(separator: "\n")) }
        }
    }

    /// Whether `name` is a zone of the tz database as Foundation (which the engine's dates use) reads it: a canonical
    /// name (ICU's list), or a link of the database that Foundation resolves under its own name (`Asia/Kolkata`,
    /// `Europe/Belfast`, `GB`, `US/Eastern` — refused when only ICU's canonical list was taken: a differential tester,
    /// session 36). Not Foundation's own forms `GMT+5`, `UTC+5`, `GMT+15` (it names them `GMT+0500`…), nor the
    /// database's `Etc/GMT+5` (UTC−5, POSIX's sign): two spellings read as "+5" ten hours apart (a fault tester,
    /// session 34). Nor abbreviations (`PST`, `IST`, `EST`, `CET`), which Foundation maps to a zone of its choosing.
    /// Nor the database's `Factory`, a placeholder for "local time not set" (UTC under the abbreviation `-00`), not a
    /// place (a reviewer, session 36).
    static func isTimeZoneDatabaseName(_ name: String) -> Bool {
        if name == "Factory" || isICULegacyName(name) { return false }
        if ["UTC", "GMT", "Etc/UTC", "Etc/GMT"].contains(name) { return true }
        if name.hasPrefix("Etc/GMT+") || name.hasPrefix("Etc/GMT-") { return false }
        if TimeZone.knownTimeZoneIdentifiers.contains(name) { return true }
        guard TimeZone.abbreviationDictionary[name] == nil, let zone = TimeZone(identifier: name) else { return false }
        return zone.identifier == name
    }

    /// ICU's old three-letter zone names (kept for Java), which are in no tz database and which Foundation takes
    /// without an abbreviation of its own to refuse them by: `SST` is the Solomon Islands (UTC+11), not Samoa, `ECT`
    /// Paris, not Ecuador — every rule date a day off without a word (a time hunter, session 54). The rest of that
    /// list (`PST`, `IST`, `AST`, …) are Foundation's abbreviations, refused as such. And ICU's `SystemV/` zones, which
    /// the tz database dropped in 2020.
    /// Also two links the tz database dropped (2016, 2017) that ICU still takes, and Foundation's own names of fixed
    /// offsets, `GMT+0500` (which it gives `GMT+5` and `UTC+5`, refused since session 34, and takes as given: `GMT+1500`
    /// and `GMT-1800` passed where `GMT+15` was refused — an adversarial tester, session 54).
    static let icuLegacyNames: Set<String> = ["ACT", "AET", "AGT", "BET", "CNT", "CTT", "ECT", "IET", "MIT", "NET",
                                              "PLT", "PNT", "PRT", "SST", "VST", "US/Pacific-New", "Canada/East-Saskatchewan"]

    static func isICULegacyName(_ name: String) -> Bool {
        icuLegacyNames.contains(name) || name.hasPrefix("SystemV/") || isFoundationOffsetName(name)
    }

    /// `GMT+HHMM` / `GMT-HHMM`: Foundation's name of a fixed offset, not a tz database zone.
    static func isFoundationOffsetName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        return u.count == 8 && name.hasPrefix("GMT") && (u[3] == UInt8(ascii: "+") || u[3] == UInt8(ascii: "-"))
            && u[4...].allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Why `rules.timeZone` refuses `name` (not `isTimeZoneDatabaseName`). Some of those refused are names in the tz
    /// database (`EST`, `CET`, `Etc/GMT+5`, `Factory`): "not a time zone of the tz database" was wrong for them (a
    /// rules auditor, session 43).
    static func timeZoneRefusal(_ name: String) -> String {
        let place = "name the place's zone, such as Europe/London or America/New_York, or UTC"
        if name == "Etc/GMT+0" || name == "Etc/GMT-0" {
            return "\"\(name)\" is refused, as every Etc/GMT zone with a sign (theirs is POSIX's, the reverse of what it reads as); for UTC write UTC"
        }
        if name.hasPrefix("Etc/GMT+") || name.hasPrefix("Etc/GMT-") {
            return "\"\(name)\" is refused: the tz database's Etc/GMT zones count with POSIX's sign (Etc/GMT+5 is UTC−5), "
                + "the reverse of what it reads as; \(place)"
        }
        if name == "Factory" { return "\"Factory\" is refused: the tz database's placeholder for a local time not set, not a place; \(place)" }
        if isFoundationOffsetName(name) {
            return "\"\(name)\" is refused: Foundation's name of a fixed offset, not a zone of the tz database (a place's "
                + "clock changes, a fixed offset does not); \(place)"
        }
        if isICULegacyName(name) {
            return "\"\(name)\" is refused: an old name ICU keeps for Java, not a zone of the tz database, and some of "
                + "them read as another zone's abbreviation (ICU's SST is the Solomon Islands, ECT is Paris); \(place)"
        }
        if TimeZone.abbreviationDictionary[name] != nil {
            return "\"\(name)\" is refused: an abbreviation, which Foundation maps to a zone of its own choosing; \(place)"
        }
        return "\"\(name)\" is not a time zone of the tz database (such as Europe/London or UTC)"
    }

    /// The `rules.*` and engine-side `input.*` keys; each unusable value goes to `problems` (its default stays).
    static func resolveEngine(_ k: Keys, _ problems: inout Problems) -> EngineSettings {
        var e = EngineSettings()
        problems.collect {
            guard let v = try k.string("rules.timeZone") else { return }
            // A name of the tz database: Foundation also takes `GMT+5` and `UTC+5` (UTC+5) beside the database's
            // `Etc/GMT+5` (UTC−5, POSIX's sign), and `GMT+15`, which no place uses — two spellings a reader takes for
            // "+5" were ten hours apart (a fault tester, session 34).
            guard Self.isTimeZoneDatabaseName(v) else {
                throw DaemonError.configuration(key: "rules.timeZone", problem: Self.timeZoneRefusal(v))
            }
            e.timeZone = v
        }
        problems.collect {
            guard var list = try k.strings("rules.bankHolidays") else { return }
            // An empty variable (`CONTACTWATCH_RULES_BANK_HOLIDAYS=`) is the empty list, as `bankHolidays: []` in a
            // file: no bank holidays. It was refused as `"" is not a YYYY-MM-DD date`, so a drop-in could not say it
            // (a rules auditor, session 43). A doubled comma still is. Only the variable's: in a file, `[""]` is what
            // a template leaves of an empty variable (`["{{ holidays }}"]`), and taken as none it removed every bank
            // holiday without a word, deadlines counting Christmas (the configuration's hunter, session 45); there
            // `[]` says none, and `""` is refused as any other item that is not a date.
            if list == [""] && !k.source("rules.bankHolidays").isEmpty { list = [] }
            let bad = list.filter { LocalDate(parsing: $0) == nil }
            guard bad.isEmpty else {
                throw DaemonError.configuration(key: "rules.bankHolidays",
                                                problem: bad.map { "\"\($0)\"" }.joined(separator: ", ") + " \(bad.count == 1 ? "is not a" : "are not") YYYY-MM-DD date\(bad.count == 1 ? "" : "s")")
            }
            // A set of days: in order, each once. As written, a list only reordered (next year's dates added at its
            // top) or with a date twice was reported as a change of the rules, at SIGHUP and at the next start (the
            // configuration's hunter, session 45).
            e.bankHolidays = Array(Set(list.compactMap { LocalDate(parsing: $0) })).sorted()
        }
        problems.collect { if let v = try k.bool("rules.videoCountsAsFaceToFace") { e.videoCountsAsFaceToFace = v } }
        problems.collect { if let v = try k.int("rules.nonCompliance.windowMonths") { e.nonComplianceWindowMonths = v } }
        problems.collect { if let v = try k.int("rules.nonCompliance.enforcementDeadlineBusinessDays") { e.enforcementDeadlineBusinessDays = v } }
        problems.collect { if let v = try k.int("rules.telephoneOnly.limitDays") { e.telephoneOnlyLimitDays = v } }
        problems.collect { if let v = try k.int("rules.telephoneOnly.priorityLimitDays") { e.telephoneOnlyPriorityLimitDays = v } }
        problems.collect { if let v = try k.bool("rules.remoteContact.enabled") { e.remoteContactEnabled = v } }
        problems.collect {
            guard let v = try k.string("rules.noPrivacy.minimumSeverity") else { return }
            guard let s = Severity(code: v.lowercased()) else {  // any case, as log.level and log.format
                throw DaemonError.configuration(key: "rules.noPrivacy.minimumSeverity", problem: "must be low, medium or high (got \"\(v)\")")
            }
            e.noPrivacyMinimumSeverity = s
        }
        problems.collect { if let v = try k.int("rules.complianceRate.windowDays") { e.complianceRateWindowDays = v } }
        problems.collect { if let v = try k.int("rules.complianceRate.minimumSample") { e.complianceRateMinimumSample = v } }
        problems.collect { if let v = try k.double("rules.complianceRate.threshold") { e.complianceRateThreshold = v } }
        // `-0.0` is 0 (kept, a later `0` was a change: a fault tester, session 34).
        problems.collect { if let v = try k.double("rules.complianceRate.hysteresis") { e.complianceRateHysteresis = v + 0 } }
        problems.collect { if let v = try k.bool("rules.outcomeOverdue.enabled") { e.outcomeOverdueEnabled = v } }
        problems.collect { if let v = try k.int("rules.outcomeOverdue.businessDays") { e.outcomeOverdueBusinessDays = v } }
        problems.collect { if let v = try k.int("input.maxMessageBytes") { e.maxMessageBytes = v } }
        problems.collect { if let v = try k.int("input.contactRetentionDays") { e.contactRetentionDays = v } }
        problems.collect { if let v = try k.int("input.maxFutureSkewSeconds") { e.maxFutureSkewSeconds = v } }
        for problem in e.problems() { problems.add(DaemonError.configuration(key: problem.key, problem: problem.problem)) }
        if let problem = e.retentionShorterThanR1Window() {
            problems.add(DaemonError.configuration(key: problem.key, problem: problem.problem))
        }
        return e
    }

    /// `quotedInFile`: the file's keys whose value is a quoted (or block) scalar (`ConfigurationCheck`).
    static func resolve(_ c: ConfigReader, environment: [String: String], quotedInFile: Set<String> = [],
                        metricsLookup known: (text: String, host: MetricsAddress.HostLookup)?? = nil) throws(DaemonError) -> DaemonConfiguration {
        var d = DaemonConfiguration()
        let k = Keys(c: c, environment: environment, quotedInFile: quotedInFile)
        var problems = Problems()
        d.engine = resolveEngine(k, &problems)

        problems.collect { if let v = try k.strings("input.endpoints") { d.inputs = v } }
        problems.collect { if let v = try k.bool("input.bind") { d.inputBind = v } }
        problems.collect { if let v = try k.strings("input.subscribe") { d.subscribe = v } }
        problems.collect { if let v = try k.int("input.receiveHighWaterMark") { d.receiveHighWaterMark = v } }
        problems.collect { if let v = try k.string("output.endpoint") { d.output = v } }
        problems.collect { if let v = try k.int("output.sendHighWaterMark") { d.sendHighWaterMark = v } }
        problems.collect { if let v = try k.int("output.republishGraceMillis") { d.republishGraceMillis = v } }
        problems.collect { if let v = try k.int("output.maxSubscriptions") { d.maxSubscriptions = v } }
        problems.collect { if let v = try k.int("journal.maxReplyAlerts") { d.journalMaxReplyAlerts = v } }
        problems.collect { if let v = try k.int("journal.maxReplyBytes") { d.journalMaxReplyBytes = v } }
        problems.collect { d.journal = try k.string("journal.endpoint") }
        problems.collect {
            if let v = try k.string("state.dir") {
                d.stateDir = v
                d.stateDirSet = true
            } else if let v = environment["STATE_DIRECTORY"], !v.isEmpty {
                // systemd's StateDirectory= may list several, separated by colons: use the first.
                d.stateDir = String(v.split(separator: ":").first ?? Substring(v))
            }
        }
        problems.collect { if let v = try k.int("state.commitIntervalMillis") { d.commitIntervalMillis = v } }
        problems.collect { if let v = try k.int("state.commitMaxEvents") { d.commitMaxEvents = v } }
        problems.collect { if let v = try k.bool("state.groupCommit") { d.groupCommit = v } }
        problems.collect { if let v = try k.int("state.journalRetentionDays") { d.journalRetentionDays = v } }
        problems.collect {
            guard let v = try k.int("state.journalPruneIntervalSeconds") else { return }
            if let problem = EngineSettings.rangeProblem(v, 1...86400) {
                throw DaemonError.configuration(key: "state.journalPruneIntervalSeconds", problem: problem)
            }
            d.journalPruneIntervalSeconds = v
        }
        problems.collect {
            guard let v = try k.string("log.level") else { return }
            guard let level = Logger.Level(rawValue: v.lowercased()) else {
                throw DaemonError.configuration(key: "log.level", problem: "must be one of trace, debug, info, notice, warning, error, critical (got \"\(v)\")")
            }
            d.logLevel = level
        }
        problems.collect {
            guard let v = try k.int("log.statsIntervalSeconds") else { return }
            if let problem = EngineSettings.rangeProblem(v, 0...86400, lowerBoundMeans: "off") {
                throw DaemonError.configuration(key: "log.statsIntervalSeconds", problem: problem)
            }
            d.statsIntervalSeconds = v
        }
        problems.collect {
            guard let v = try k.string("log.format") else { return }
            guard let format = LogFormat(rawValue: v.lowercased()) else {
                throw DaemonError.configuration(key: "log.format", problem: "must be text or json (got \"\(v)\")")
            }
            d.logFormat = format
        }
        problems.collect { d.metrics = try k.string("metrics.address") }
        problems.collect { d.security.certificate = try k.string("security.curve.certificate") }
        problems.collect { d.security.allowPublishers = try k.string("security.curve.allowPublishers") }
        problems.collect { d.security.allowConsumers = try k.string("security.curve.allowConsumers") }
        problems.collect { d.security.inputServerKey = try k.string("input.curveServerKey") }
        problems.collect { if let v = try k.bool("security.allowPlaintext") { d.security.allowPlaintext = v } }
        if let text = d.metrics, let address = MetricsAddress(text) {
            // At a reload (`known` given) the address in force is not looked up again, and a new name is looked up
            // within a bound: every reload looked the name up, so a resolver that did not answer refused a reload of
            // other settings and held a SIGTERM 19 s behind the reload (a bug hunter, session 47: F4).
            if case .some(let inForce) = known {
                if let inForce, inForce.text == text {
                    d.metricsLookup = inForce
                } else {
                    d.metricsLookup = (text, address.lookUp(within: MetricsAddress.reloadLookupSeconds))
                }
            } else {
                d.metricsLookup = (text, address.lookUp())
            }
        }
        for problem in d.problems() { problems.add(problem) }
        d.exposedPlaintext = d.security.check(inputs: d.inputs, inputBind: d.inputBind, output: d.output, journal: d.journal,
                                              problems: &problems)
        try problems.throwIfAny()
        return d
    }

    /// Throws every problem of the values that do not depend on one another's source (exit 64).
    func check() throws(DaemonError) {
        var collected = Problems()
        for problem in problems() { collected.add(problem) }
        try collected.throwIfAny()
    }

    /// What `input.endpoints`, `output.endpoint` and `journal.endpoint` may be: a socket another process can reach.
    static func endpointProblem(_ endpoint: String, bind: Bool = true) -> String? {
        if endpoint.hasPrefix("inproc://") {
            return "\"\(endpoint)\" is an in-process endpoint: no other process can ever reach it; use ipc:// (a socket file) or tcp://"
        }
        return EndpointSyntax.problem(endpoint, bind: bind)
    }

    /// Every problem of the values (ranges, combinations, endpoints).
    func problems() -> [DaemonError] {
        var out: [DaemonError] = []
        if inputs.isEmpty { out.append(DaemonError.configuration(key: "input.endpoints", problem: "at least one input endpoint is needed")) }
        if subscribe.isEmpty {
            // A SUB socket without a subscription receives nothing: the daemon would be ready and deaf.
            out.append(DaemonError.configuration(key: "input.subscribe", problem: "at least one topic prefix is needed (\"\" subscribes to everything)"))
        }
        if subscribe.count > 1, subscribe.contains("") {
            // "" subscribes to everything, so the other prefixes mean nothing: most likely a doubled comma
            // (CONTACTWATCH_INPUT_SUBSCRIBE=a,,b) or an empty list item, which silently widened the subscription.
            out.append(DaemonError.configuration(key: "input.subscribe", problem: "an empty prefix (\"\") among others "
                + "subscribes to everything, whatever the others say (a doubled comma?): give \"\" alone for everything"))
        }
        if stateDir.isEmpty { out.append(DaemonError.configuration(key: "state.dir", problem: "must not be empty")) }
        // A path starting with `~` is a shell's home directory, which nothing here expands: `state.dir: ~/cw` made a
        // directory named `~` in the working directory, and an empty certificate path turned CURVE on and then said
        // "cannot read the certificate" of nothing (a fault tester, session 34).
        for (key, path) in [("state.dir", stateDir), ("security.curve.certificate", security.certificate),
                            ("security.curve.allowPublishers", security.allowPublishers),
                            ("security.curve.allowConsumers", security.allowConsumers), ("input.curveServerKey", security.inputServerKey)] {
            guard let path else { continue }
            if path.isEmpty && key != "state.dir" {
                out.append(DaemonError.configuration(key: key, problem: "must not be empty (leave the key out for none)"))
            } else if path.hasPrefix("~") {
                out.append(DaemonError.configuration(key: key, problem: "\"\(path)\" starts with ~, which is not expanded here: write the whole path"))
            }
        }
        if inputBind && inputs.count > 1 {
            // Named by its key and its flag: the file's `input.bind` was told as `--input-bind`, a flag the operator
            // had not used (a fault tester, session 34).
            out.append(DaemonError.configuration(key: "input.bind (--input-bind)", problem: "binds one input endpoint, but \(inputs.count) were given"))
        }
        for (key, endpoints, bind) in [("input.endpoints", inputs, inputBind), ("output.endpoint", [output], true),
                                       ("journal.endpoint", journal.map { [$0] } ?? [], true)] {
            for ep in endpoints {
                if let problem = Self.endpointProblem(ep, bind: bind) { out.append(DaemonError.configuration(key: key, problem: problem)) }
            }
        }
        // The daemon reading its own output or journal: it would hear itself, count itself a consumer, and with
        // `input.subscribe: ""` take each invalid-event notice it publishes back as a new invalid event, for ever
        // (a commit each: 6,386 in five seconds from one bad line, as a fault tester found).
        for ep in inputs {
            for (name, bound) in [("output.endpoint", output), ("journal.endpoint", journal ?? "")] where !bound.isEmpty {
                if EndpointSyntax.reaches(ep, bound) {
                    out.append(DaemonError.configuration(key: "input.endpoints", problem: "\"\(ep)\" is the daemon's own \(name) "
                        + "(\(bound)): it would read its own messages; give the publishers' endpoint"))
                }
            }
        }
        // Two of the daemon's own bound sockets on one endpoint: the second bind failed with "another process is
        // listening" (exit 69, restarted for ever) when that process was the daemon itself; the metrics server on
        // a TCP socket's port likewise.
        if let journal, EndpointSyntax.reaches(journal, output) {
            out.append(DaemonError.configuration(key: "journal.endpoint", problem: "\"\(journal)\" is also the output.endpoint "
                + "(\(output)): each socket needs an endpoint of its own"))
        }
        if let m = metrics, let address = MetricsAddress(m), address.port != 0 {
            let asEndpoint = "tcp://\(m)"
            for (name, bound) in [("output.endpoint", output), ("journal.endpoint", journal ?? "")] + inputs.map({ ("input.endpoints", $0) })
            where !bound.isEmpty && (name != "input.endpoints" || inputBind) && EndpointSyntax.reaches(asEndpoint, bound) {
                out.append(DaemonError.configuration(key: "metrics.address", problem: "\"\(m)\" is the port of \(name) (\(bound)): "
                    + "the metrics server needs a port of its own"))
            }
        }
        // An `ipc://` path that names a file, not a socket: binding would delete the file (the state store, once).
        for (key, endpoints) in [("input.endpoints", inputBind ? inputs : []), ("output.endpoint", [output]),
                                 ("journal.endpoint", journal.map { [$0] } ?? [])] {
            for ep in endpoints {
                if let problem = EndpointSyntax.bindWouldReplace(ep) { out.append(DaemonError.configuration(key: key, problem: problem)) }
            }
        }
        func check(_ key: String, _ problem: String?) {
            if let problem { out.append(DaemonError.configuration(key: key, problem: problem)) }
        }
        // Ranges as the engine's settings check and say them (`EngineSettings.rangeProblem`).
        check("state.commitIntervalMillis", EngineSettings.rangeProblem(commitIntervalMillis, 0...10_000))
        check("state.commitMaxEvents", EngineSettings.rangeProblem(commitMaxEvents, 1...))
        // The hourly pruning computes its cutoff in milliseconds: a larger value trapped an hour after the start.
        check("state.journalRetentionDays", EngineSettings.rangeProblem(journalRetentionDays, 1...EngineSettings.maxDays))
        check("input.receiveHighWaterMark", EngineSettings.rangeProblem(receiveHighWaterMark, 0...Int(Int32.max), lowerBoundMeans: "no limit"))
        check("output.republishGraceMillis", EngineSettings.rangeProblem(republishGraceMillis, 0...600_000))
        check("output.maxSubscriptions", EngineSettings.rangeProblem(maxSubscriptions, 1...65_536))
        check("journal.maxReplyAlerts", EngineSettings.rangeProblem(journalMaxReplyAlerts, 1...100_000))
        check("journal.maxReplyBytes", EngineSettings.rangeProblem(journalMaxReplyBytes, 1024...(64 << 20)))
        check("output.sendHighWaterMark", EngineSettings.rangeProblem(sendHighWaterMark, 0...Int(Int32.max), lowerBoundMeans: "no limit"))
        if let m = metrics {
            if let address = MetricsAddress(m) {
                if let problem = metricsHost(address, m).problem {
                    out.append(DaemonError.configuration(key: "metrics.address", problem: "\(problem) (got \"\(m)\")"))
                }
            } else {
                out.append(DaemonError.configuration(key: "metrics.address", problem: "must be HOST:PORT or [IPv6]:PORT with a port from 0 to 65535 (got \"\(m)\")"))
            }
        }
        return out
    }
}

extension DaemonConfiguration {
    /// The journal thread's reply limits.
    var journalLimits: JournalServer.Limits {
        JournalServer.Limits(maxReplyAlerts: journalMaxReplyAlerts, maxReplyBytes: journalMaxReplyBytes)
    }
}

extension DaemonConfiguration {
    /// What `--check-config` prints when the configuration is usable: the resolved settings an operator checks.
    /// `warnings`: those of the certificates and allow-lists as read (`DaemonSecurity.checkWarnings`).
    public func checkSummary(file: String?, warnings: [String] = []) -> String {
        // The sources in the order they win (the CLI auditor, session 28: listed in no order, and "defaults" only
        // without a file).
        var lines = ["configuration OK (flags, then the environment, then \(file.map { "\($0), then " } ?? "")defaults)"]
        lines.append("  input: \(inputs.joined(separator: ", ")) (\(inputBind ? "bound" : "connected")), subscribed to \(subscribe.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ", "))")
        lines.append("  output: \(output)")
        lines.append("  journal: \(journal ?? "off")")
        // Outside systemd the default is ./state, where the unit's is $STATE_DIRECTORY: a check from a shell of the
        // unit's configuration showed ./state without saying so (a packaging check, session 37).
        // Only for the default: a `state.dir: ./state` set in the file was told "under the unit: /var/lib/contactwatch"
        // too, where the unit would take it from / (read-only there: exit 74, not restarted; a README walk-through,
        // session 47). A relative path set is said to be relative.
        let stateNote: String
        if !stateDirSet && stateDir == Self().stateDir {
            stateNote = " (the default without $STATE_DIRECTORY; under the unit: /var/lib/contactwatch)"
        } else if stateDirSet && !stateDir.hasPrefix("/") {
            stateNote = " (state.dir set, relative to the working directory: under the unit that is /, read-only there; "
                + "leave state.dir unset for the unit's /var/lib/contactwatch)"
        } else {
            stateNote = ""
        }
        lines.append("  state: \(stateDir)" + stateNote)
        lines.append("  log: \(logLevel) (\(logFormat.rawValue))")
        lines.append("  metrics: \(metrics.map { "http://\($0)/metrics" } ?? "off")")
        lines.append("  CURVE: \(security.certificate == nil ? "off" : "on")")
        lines.append("  R7 outcome-overdue: \(engine.outcomeOverdueEnabled ? "on" : "off") (\(engine.outcomeOverdueBusinessDays) business days)")
        // The warnings a start logs from the configuration alone, so that the check shows them too (a reviewer,
        // session 33: only a start said them). Still exit 0: they are the operator's choice.
        for endpoint in exposedPlaintext {
            lines.append("  warning: security.allowPlaintext: a plaintext socket reachable from other hosts: \(endpoint)")
        }
        if let warning = smallInputQueueWarning { lines.append("  warning: \(warning) (\(ipcInputs.joined(separator: " ")))") }
        if let warning = exposedMetricsWarning { lines.append("  warning: \(warning)") }
        if let warning = abstractPlaintextWarning { lines.append("  warning: \(warning)") }
        for warning in openIPCDirectoryWarnings + warnings { lines.append("  warning: \(warning)") }
        for (key, endpoints) in [("input.endpoints", inputBind ? inputs : []), ("output.endpoint", [output]),
                                 ("journal.endpoint", journal.map { [$0] } ?? [])] {
            for ep in endpoints {
                guard let directory = EndpointSyntax.missingBindDirectory(ep) else { continue }
                lines.append("  warning: \(key): the directory \(directory) of \(ep) does not exist now: a start binds "
                    + "there only once something creates it (the unit's RuntimeDirectory= creates /run/contactwatch "
                    + "as it starts the daemon); without it the start is exit 69")
            }
        }
        // Each line escaped before they are joined: a newline in a value (`--state-dir`) made a line of its own.
        return lines.map(ContactWatchLogHandler.textSafe).joined(separator: "\n")
    }
}
