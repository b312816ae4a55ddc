import Foundation
import Logging
import ZeroMQ

/// SIGHUP (cli.md): re-read the configuration — file, environment and flags, in the same precedence as at start —
/// and apply what can change without a restart: the log level and the allow-list directories (whose lists the caller
/// then re-reads, `DaemonSecurity.reloadAllowLists`). Settings that changed but need a restart are named in the log; a file that cannot be read or
/// is invalid leaves every old value in force, with a warning. Never ends the daemon.
public actor ConfigurationReload {
    private let flags: DaemonFlags
    private let environment: [String: String]
    private let logger: Logger
    private let counters: RuntimeCounters?
    /// The configuration in force (the start's, with the log level of the last successful reload).
    private(set) var inForce: DaemonConfiguration
    /// The keys the sockets were made with (the daemon's own public key, the input's server key): read at start only.
    private let keysInForce: (own: CurveKey?, inputServer: CurveKey?)

    public init(flags: DaemonFlags, environment: [String: String], inForce: DaemonConfiguration, logger: Logger,
                counters: RuntimeCounters? = nil, keysInForce: (own: CurveKey?, inputServer: CurveKey?) = (nil, nil)) {
        self.keysInForce = keysInForce
        self.counters = counters
        self.flags = flags
        self.environment = environment
        self.inForce = inForce
        self.logger = logger
    }

    /// What a reload applied and left for the restart (the log lines' gist, for tests), and the certificate and
    /// allow-list files it read, for the caller to install (`DaemonSecurity.install`); nil files: nothing to read.
    public struct Outcome: Sendable {
        public var applied: [String]
        public var restartNeeded: [String]
        var files: SecurityFiles?
    }

    /// The settings that name a certificate or an allow-list, with their paths.
    static var securityFileSettings: [(key: String, path: WritableKeyPath<SecuritySettings, String?>)] {
        [("security.curve.certificate", \.certificate), ("input.curveServerKey", \.inputServerKey),
         ("security.curve.allowPublishers", \.allowPublishers), ("security.curve.allowConsumers", \.allowConsumers)]
    }

    /// Re-reads and applies; on success, the caller installs `files`' allow-lists, and on a refusal re-reads the
    /// allow-lists in force (`DaemonSecurity.reloadAllowLists`).
    @discardableResult
    public func reload() async -> Result<Outcome, DaemonError> {
        let next: DaemonConfiguration
        // Certificate files replaced in place under the same paths (a key rotated): the sockets keep the keys they
        // were made with until a restart, which said "nothing changed" (an operator audit, session 36).
        var keysChanged: [String] = []
        var files: SecurityFiles? = nil
        var nextStartFails: [String] = []
        do throws(DaemonError) {
            next = try await DaemonConfiguration.load(flags: flags, environment: environment,
                                                      metricsLookup: .some(inForce.metricsLookup))
            // The certificate and allow-list files are read once, as a start (and `--check-config`) reads them: taken
            // unread, a missing or public certificate at a new path was "changed but only applied at the next
            // restart", and that restart was exit 64, not restarted (a fault tester, session 34). An allow-list that
            // stays in force although the file no longer names one is read from its directory in force.
            var toRead = next.security
            var keptForNow: Set<String> = []
            for (key, path) in Self.securityFileSettings where toRead[keyPath: path] == nil {
                if path == \SecuritySettings.allowPublishers || path == \SecuritySettings.allowConsumers,
                   let dir = inForce.security[keyPath: path] {
                    toRead[keyPath: path] = dir
                    keptForNow.insert(key)
                }
            }
            if Self.securityFileSettings.contains(where: { toRead[keyPath: $0.path] != nil }) {
                var read = SecurityFiles.read(toRead, environment: environment)
                read.keptForNow = keptForNow
                // A problem under a path that changed refuses the reload, as the start it stands for would be
                // refused. One under an unchanged path refuses nothing — the running daemon keeps what it read —
                // but the next start would fail (exit 64), so it is said: it held back the whole reload as soon as
                // any other security path changed, a revocation by a moved consumers' list included (a bug hunter,
                // session 47: F10).
                // Changed: against what was read, so that a list kept in force for now (the file no longer names it,
                // CURVE turned off for the next start) is not a changed path (a reviewer, session 47: such a reload
                // was refused for the kept list's problem).
                let changed = Set(Self.securityFileSettings.filter {
                    inForce.security[keyPath: $0.path] != toRead[keyPath: $0.path]
                }.map(\.key))
                if read.problems.contains(where: { changed.contains($0.key) }) {
                    // The refusal names the problems of what changed and of the certificates; an allow-list's own
                    // under an unchanged path is said once more by the re-read of the lists in force that follows.
                    var problems = DaemonConfiguration.Problems()
                    for (key, problem) in read.problems where changed.contains(key) || !key.hasPrefix("security.curve.allow") {
                        problems.add(problem)
                    }
                    try problems.throwIfAny()
                }
                // The allow-lists' own problems are said by `DaemonSecurity.install`, with the list kept.
                nextStartFails = read.problems.filter { !$0.key.hasPrefix("security.curve.allow") }.map(\.error.message)
                // The keys are compared whenever the path stayed: only when no other security setting changed, a
                // key rotated in place with an allow-list moved in the same reload went unsaid (a bug hunter, session
                // 47: F3).
                if next.security.certificate == inForce.security.certificate, let pair = read.keyPair,
                   pair.publicKey != keysInForce.own {
                    keysChanged.append("security.curve.certificate (its file now holds another key)")
                }
                if next.security.inputServerKey == inForce.security.inputServerKey, let key = read.inputServerKey,
                   key != keysInForce.inputServer {
                    keysChanged.append("input.curveServerKey (its file now holds another key)")
                }
                files = read
            }
        } catch {
            counters?.reloadsRefused.add(1, ordering: .relaxed)
            // At `warning`, as cli.md says — or at the level in force when that one hides warnings: under
            // `log.level: error` a warning left a refused reload without a trace while the file's next start would
            // stop with 64 (an operator's audit, session 52, made it an `error` at every level; cli.md's `warning`
            // restored in session 54, a documentation hunter; `systemctl reload` reports success either way).
            logger.log(level: Self.refusalLevel(LogOutput.level), "reload: the configuration was not applied; the old values stay in force",
                       metadata: ["problem": "\(error.message.replacingOccurrences(of: "\n", with: "; "))"])
            return .failure(error)
        }
        // A new metrics host name the resolver did not answer for within the bound: taken for the next start, which
        // looks it up again and stops (exit 64) if it still does not resolve — said now, not found then (a reviewer,
        // session 47).
        if next.metrics != inForce.metrics, let lookup = next.metricsLookup, lookup.host.undecided {
            let line = "reload: metrics.address \"\(lookup.text)\": its host name did not resolve within "
                + "\(MetricsAddress.reloadLookupSeconds) s; the next start looks it up again and stops (exit 64) if it still does not resolve"
            logger.warning("\(line)")
        }
        // The same paths, their files changed under them (a certificate deleted, or replaced by a public one): the
        // running daemon keeps what it read, but the next start would stop with exit 64 (a fault tester, session 34).
        for problem in nextStartFails {
            logger.error("reload: the next start would fail; the running daemon keeps the certificate it read",
                           metadata: ["problem": "\(problem)"])
        }
        counters?.reloads.add(1, ordering: .relaxed)
        var applied: [String] = []
        let levelBefore = inForce.logLevel
        if next.logLevel != inForce.logLevel {
            applied.append("log.level \(inForce.logLevel) → \(next.logLevel)")
            inForce.logLevel = next.logLevel
        }
        // A new allow-list directory (both the old and the new configuration have one) is applied: the caller
        // re-reads the lists from `inForce`'s directories (`DaemonSecurity.reloadAllowLists`). Its files were read
        // above, as a start reads them. Adding or removing an allow-list changes which sockets are CURVE servers: that
        // stays for the restart.
        for (key, path) in [("security.curve.allowPublishers", \SecuritySettings.allowPublishers),
                            ("security.curve.allowConsumers", \SecuritySettings.allowConsumers)] {
            if let old = inForce.security[keyPath: path], let new = next.security[keyPath: path], old != new {
                applied.append("\(key) \"\(old)\" → \"\(new)\"")
                inForce.security[keyPath: path] = new
            }
        }
        let restartNeeded = Self.differences(inForce, next) + keysChanged
        // At `notice`, as the line of what was applied: under `log.level: notice` a reload that changed nothing left no
        // line at all, and the operator who sent SIGHUP could not tell it had been read (a soak tester, session 44).
        // A file edited for a setting that a flag or a `CONTACTWATCH_` variable sets said only "nothing changed" (a
        // bug hunter, session 47: F8): the values the file is overridden on are named, with what overrides them.
        if applied.isEmpty && restartNeeded.isEmpty {
            let overridden = await overriddenInFile(next)
            // With allow-lists, "nothing changed" came just before "allow-list reloaded … added=1", a key just let in
            // (a new-operator walk-through, session 49): the lists are named as what follows.
            let lists = next.security.allowPublishers != nil || next.security.allowConsumers != nil
            let line = "reload: configuration re-read, nothing changed"
                + (lists ? " in it; the allow-lists' keys are read again, said in the allow-list reloaded lines that follow" : "")
                + (overridden.isEmpty ? "" : overridden[0].hasPrefix(Self.unloadableFile) ? "; \(overridden[0])"
                : "; the file's value, then the one in force, of what flags or the environment set: \(overridden.joined(separator: ", "))")
            logger.notice("\(line)")
        }
        // The line saying what was applied is said under the more verbose of the two levels, at `notice` or above
        // it: said after the switch, a reload to `warning` or `error` filtered its own line out and the log showed
        // nothing but `SIGHUP received` (a contract auditor, session 41: cli.md says a reload logs what changed).
        // So is the reload's warning of settings left for the next restart: a reload to `error` with them filtered
        // it out (a reviewer, session 41).
        let (level, before) = Self.appliedLine(from: levelBefore, to: next.logLevel)
        if !before { LogOutput.level = next.logLevel }
        if !applied.isEmpty { logger.log(level: level, "reload: applied \(applied.joined(separator: ", "))") }
        if !restartNeeded.isEmpty {
            logger.warning("reload: changed but only applied at the next restart: \(restartNeeded.joined(separator: ", "))")
        }
        // Under systemd's LoadCredential= the daemon reads systemd's copy of each key, made when the service started
        // and not refreshed by a reload: a key replaced in its source file went unseen ("nothing changed"), and so
        // would a source file deleted, which fails the next start (an operator audit, session 43). Said at each
        // reload that reads such a copy.
        let copies = Self.credentialCopies(next.security, environment: environment)
        if !copies.isEmpty {
            let line = "reload: \(copies.joined(separator: " and ")) \(copies.count == 1 ? "is" : "are") read from systemd's "
                + "credential copies ($CREDENTIALS_DIRECTORY), made when the service started: a key replaced or removed in its "
                + "LoadCredential= source file is not seen by a reload, only by the next restart (systemctl restart contactwatchd)"
            logger.notice("\(line)")
        }
        if before { LogOutput.level = next.logLevel }
        return .success(Outcome(applied: applied, restartNeeded: restartNeeded, files: files))
    }

    /// The certificate settings read from systemd's credential directory (a relative path with `CREDENTIALS_DIRECTORY`
    /// set, as `CurveCertificate.resolve` reads it).
    static func credentialCopies(_ security: SecuritySettings, environment: [String: String]) -> [String] {
        guard !(environment["CREDENTIALS_DIRECTORY"] ?? "").isEmpty else { return [] }
        var names: [String] = []
        if let path = security.certificate, !path.hasPrefix("/") { names.append("security.curve.certificate") }
        if let path = security.inputServerKey, !path.hasPrefix("/") { names.append("input.curveServerKey") }
        return names
    }

    /// The level of the line saying what a reload applied, and whether to say it before the new log level is set:
    /// `notice`, or the more verbose of the two levels when that is above it, said while that level is in force.
    static func appliedLine(from old: Logger.Level, to new: Logger.Level) -> (level: Logger.Level, before: Bool) {
        let verbose = min(old, new)
        return (max(.notice, verbose), verbose == old && old != new)
    }

    /// The settings that differ between two configurations, each by its configuration key — the engine's and the
    /// security settings one by one, not as a section — with its old and new value when both are short
    /// (`input.maxMessageBytes 65536 → 1000`; a list of bank holidays is named only). The engine's settings are written
    /// as the start-up warning of changed rules writes them (`RuleSettingsRecord.values`, the configuration's
    /// spelling: `rules.timeZone Europe/London → Europe/Paris`), so that one change reads the same in both lines.
    static func differences(_ a: DaemonConfiguration, _ b: DaemonConfiguration) -> [String] {
        var out: [String] = []
        func compare(_ left: Any, _ right: Any, keys: [String: String]) {
            for (l, r) in zip(Mirror(reflecting: left).children, Mirror(reflecting: right).children) {
                let field = l.label ?? "?"
                // Follow from security.* and the endpoints, and from metrics.address.
                if field == "exposedPlaintext" || field == "metricsLookup" || field == "stateDirSet" { continue }
                if field == "engine" {
                    let old = RuleSettingsRecord.values(a.engine), new = RuleSettingsRecord.values(b.engine)
                    for key in old.keys.sorted() where old[key] != new[key] {
                        out.append(change(key, old[key] ?? "none", new[key] ?? "none"))
                    }
                    continue
                }
                if field == "security" {
                    compare(l.value, r.value, keys: securityKeyNames)
                    continue
                }
                let old = rendered(l.value), new = rendered(r.value)
                guard old != new else { continue }
                out.append(change(keys[field] ?? field, old, new))
            }
        }
        compare(a, b, keys: keyNames)
        return out
    }

    /// How `overriddenInFile`'s one element starts when the file does not load without the flags and variables.
    static let unloadableFile = "the file would not load without what flags or the environment set "

    /// The configuration file alone, without flags or `CONTACTWATCH_` variables, as a start without them would load
    /// it; its failure said as the reload line and `--check-config` say it (`unloadableFile`). A value a flag or
    /// variable hides (`log.level: loud` under `--log-level info`) read as "nothing changed" and "OK", and the start
    /// without that override stopped with 64 (an operator's audit, session 52).
    static func loadFileAlone(_ file: String, metricsLookup: (text: String, host: MetricsAddress.HostLookup)?) async
        -> Result<DaemonConfiguration, DaemonError> {
        var alone = DaemonFlags()
        alone.configFile = file
        do throws(DaemonError) {
            return .success(try await DaemonConfiguration.load(flags: alone, environment: [:], metricsLookup: .some(metricsLookup)))
        } catch {
            return .failure(error)
        }
    }

    /// The level of a refused reload's line: `warning` (cli.md), or the level in force when that one is above it, so
    /// that the line is never filtered out.
    nonisolated static func refusalLevel(_ inForce: Logger.Level) -> Logger.Level { max(inForce, .warning) }

    /// `loadFileAlone`'s failure on one line.
    static func unloadableLine(_ error: DaemonError) -> String {
        unloadableFile + "(\(error.message.replacingOccurrences(of: "\n", with: "; "))): a start without them would stop with exit 64"
    }

    /// The settings the file sets (to other than the default) on which it differs from `resolved` because a flag or a
    /// `CONTACTWATCH_` variable sets them: `log.level debug → info (--log-level)`. Empty without a file. When the file
    /// alone does not load (a value it cannot have that a flag or variable hides, or one that only holds with theirs),
    /// one element starting with `unloadableFile`, saying why.
    private func overriddenInFile(_ resolved: DaemonConfiguration) async -> [String] {
        guard let file = flags.configFile else { return [] }
        let fileAlone: DaemonConfiguration
        switch await Self.loadFileAlone(file, metricsLookup: inForce.metricsLookup) {
        case .success(let loaded): fileAlone = loaded
        case .failure(let error): return [Self.unloadableLine(error)]
        }
        guard let defaults = try? await DaemonConfiguration.load(flags: DaemonFlags(), environment: [:],
                                                                 metricsLookup: .some(inForce.metricsLookup)) else { return [] }
        func key(_ change: String) -> String { String(change.prefix { $0 != " " }) }
        // What the file sets: where it differs from the defaults.
        let inFile = Set(Self.differences(defaults, fileAlone).map(key))
        let fromFlags = Dictionary(DaemonConfiguration.flagSettings(flags).map { ($0.key, $0.flag) }, uniquingKeysWith: { a, _ in a })
        return Self.differences(fileAlone, resolved).compactMap { change in
            let key = key(change)
            guard inFile.contains(key) else { return nil }
            if let flag = fromFlags[key] { return "\(change) (\(flag))" }
            let variable = ConfigurationCheck.environmentName(key)
            return environment[variable] != nil ? "\(change) (\(variable))" : nil
        }
    }

    /// One changed setting in a log line: `key old → new`, or the key alone when the two values are long (a list of
    /// bank holidays). The reload line and the start-up warning of changed rules both write changes so.
    static func change(_ key: String, _ old: String, _ new: String) -> String {
        old.count + new.count <= 80 ? "\(key) \(old) → \(new)" : key
    }

    /// A setting's value as the log shows it: optionals unwrapped (`none` when absent), strings quoted.
    private static func rendered(_ value: Any) -> String {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first else { return "none" }
            return rendered(wrapped.value)
        }
        if let text = value as? String { return "\"\(text)\"" }
        return "\(value)"
    }

    /// The configuration keys behind `DaemonConfiguration`'s fields, for the reload log line.
    static let keyNames: [String: String] = [
        "inputs": "input.endpoints", "inputBind": "input.bind", "subscribe": "input.subscribe", "output": "output.endpoint",
        "journal": "journal.endpoint", "stateDir": "state.dir", "logLevel": "log.level", "logFormat": "log.format",
        "statsIntervalSeconds": "log.statsIntervalSeconds", "metrics": "metrics.address",
        "commitIntervalMillis": "state.commitIntervalMillis", "commitMaxEvents": "state.commitMaxEvents", "groupCommit": "state.groupCommit",
        "journalRetentionDays": "state.journalRetentionDays",
        "journalPruneIntervalSeconds": "state.journalPruneIntervalSeconds", "receiveHighWaterMark": "input.receiveHighWaterMark",
        "sendHighWaterMark": "output.sendHighWaterMark", "republishGraceMillis": "output.republishGraceMillis",
        "maxSubscriptions": "output.maxSubscriptions",
        "journalMaxReplyAlerts": "journal.maxReplyAlerts", "journalMaxReplyBytes": "journal.maxReplyBytes",
    ]

    /// `EngineSettings`' fields (rules.md and events.md settings) by configuration key: every field has one
    /// (`ConfigurationTests.everySettingNamed`, which also checks these are `RuleSettingsRecord.values`' keys, the list
    /// the reload line writes the engine's settings from).
    static let engineKeyNames: [String: String] = [
        "timeZone": "rules.timeZone", "bankHolidays": "rules.bankHolidays",
        "videoCountsAsFaceToFace": "rules.videoCountsAsFaceToFace",
        "nonComplianceWindowMonths": "rules.nonCompliance.windowMonths",
        "enforcementDeadlineBusinessDays": "rules.nonCompliance.enforcementDeadlineBusinessDays",
        "telephoneOnlyLimitDays": "rules.telephoneOnly.limitDays",
        "telephoneOnlyPriorityLimitDays": "rules.telephoneOnly.priorityLimitDays",
        "remoteContactEnabled": "rules.remoteContact.enabled", "noPrivacyMinimumSeverity": "rules.noPrivacy.minimumSeverity",
        "complianceRateWindowDays": "rules.complianceRate.windowDays",
        "complianceRateMinimumSample": "rules.complianceRate.minimumSample",
        "complianceRateThreshold": "rules.complianceRate.threshold",
        "complianceRateHysteresis": "rules.complianceRate.hysteresis",
        "outcomeOverdueEnabled": "rules.outcomeOverdue.enabled", "outcomeOverdueBusinessDays": "rules.outcomeOverdue.businessDays",
        "maxMessageBytes": "input.maxMessageBytes", "contactRetentionDays": "input.contactRetentionDays",
        "maxFutureSkewSeconds": "input.maxFutureSkewSeconds",
    ]

    /// `SecuritySettings`' fields by configuration key.
    static let securityKeyNames: [String: String] = [
        "certificate": "security.curve.certificate", "allowPublishers": "security.curve.allowPublishers",
        "allowConsumers": "security.curve.allowConsumers", "inputServerKey": "input.curveServerKey",
        "allowPlaintext": "security.allowPlaintext",
    ]
}
