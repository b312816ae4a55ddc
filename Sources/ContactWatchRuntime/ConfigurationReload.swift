import Foundation
import Logging

/// SIGHUP (cli.md): re-read the configuration — file, environment and flags, in the same precedence as at start —
/// and apply what can change without a restart: the log level (the CURVE allow-lists are re-read beside it by
/// `DaemonSecurity`). Settings that changed but need a restart are named in the log; a file that cannot be read or
/// is invalid leaves every old value in force, with a warning. Never ends the daemon.
public actor ConfigurationReload {
    private let flags: DaemonFlags
    private let environment: [String: String]
    private let logger: Logger
    /// The configuration in force (the start's, with the log level of the last successful reload).
    private(set) var inForce: DaemonConfiguration

    public init(flags: DaemonFlags, environment: [String: String], inForce: DaemonConfiguration, logger: Logger) {
        self.flags = flags
        self.environment = environment
        self.inForce = inForce
        self.logger = logger
    }

    /// Re-reads and applies; returns the log lines' gist for tests (`applied`, `restartNeeded`, or the problem).
    @discardableResult
    public func reload() async -> Result<(applied: [String], restartNeeded: [String]), DaemonError> {
        let next: DaemonConfiguration
        do {
            next = try await DaemonConfiguration.load(flags: flags, environment: environment)
        } catch {
            logger.warning("reload: the configuration was not applied; the old values stay in force",
                           metadata: ["problem": "\(error.message.replacingOccurrences(of: "\n", with: "; "))"])
            return .failure(error)
        }
        var applied: [String] = []
        if next.logLevel != inForce.logLevel {
            applied.append("log.level \(inForce.logLevel) → \(next.logLevel)")
            LogOutput.level = next.logLevel
            inForce.logLevel = next.logLevel
        }
        let restartNeeded = Self.differences(inForce, next)
        if applied.isEmpty && restartNeeded.isEmpty {
            logger.info("reload: configuration re-read, nothing changed")
        }
        if !applied.isEmpty { logger.notice("reload: applied \(applied.joined(separator: ", "))") }
        if !restartNeeded.isEmpty {
            logger.warning("reload: changed but only applied at the next restart: \(restartNeeded.joined(separator: ", "))")
        }
        return .success((applied, restartNeeded))
    }

    /// The settings (by field name) that differ between two configurations.
    static func differences(_ a: DaemonConfiguration, _ b: DaemonConfiguration) -> [String] {
        let left = Mirror(reflecting: a).children, right = Mirror(reflecting: b).children
        var out: [String] = []
        for (l, r) in zip(left, right) where "\(l.value)" != "\(r.value)" {
            let field = l.label ?? "?"
            if field == "exposedPlaintext" { continue }  // follows from security.* and the endpoints
            out.append(keyNames[field] ?? field)
        }
        return out
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
        "journalLimits": "journal.maxReply*", "engine": "rules.* or input.* (engine settings)", "security": "security.*",
    ]
}
