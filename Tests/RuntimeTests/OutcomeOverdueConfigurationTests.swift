@testable import ContactWatchRuntime
import Foundation
import Testing

/// R7's two settings (rules.md): `rules.outcomeOverdue.enabled` [false] and `rules.outcomeOverdue.businessDays` [5],
/// through the configuration file and the environment, and the example configuration that turns R7 on.
@Suite("DaemonConfiguration: R7 settings")
struct OutcomeOverdueConfigurationTests {
    static let deployFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Deploy/contactwatchd.yaml").path

    @Test("off, 5 business days, when nothing is given")
    func defaults() async throws {
        let c = try await DaemonConfiguration.load(flags: DaemonFlags(), environment: [:])
        #expect(c.engine.outcomeOverdueEnabled == false)
        #expect(c.engine.outcomeOverdueBusinessDays == 5)
        #expect(DaemonConfiguration.keys.contains("rules.outcomeOverdue.enabled"))
        #expect(DaemonConfiguration.keys.contains("rules.outcomeOverdue.businessDays"))
    }

    @Test("from the file, overridden by the environment")
    func fileAndEnvironment() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-r7-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("c.yaml").path
        try """
        rules:
          outcomeOverdue:
            enabled: true
            businessDays: 7
        """.write(toFile: file, atomically: true, encoding: .utf8)
        var flags = DaemonFlags()
        flags.configFile = file
        let fromFile = try await DaemonConfiguration.load(flags: flags, environment: [:])
        #expect(fromFile.engine.outcomeOverdueEnabled == true)
        #expect(fromFile.engine.outcomeOverdueBusinessDays == 7)
        let env = ["CONTACTWATCH_RULES_OUTCOME_OVERDUE_ENABLED": "false", "CONTACTWATCH_RULES_OUTCOME_OVERDUE_BUSINESS_DAYS": "3"]
        let fromEnv = try await DaemonConfiguration.load(flags: flags, environment: env)
        #expect(fromEnv.engine.outcomeOverdueEnabled == false)
        #expect(fromEnv.engine.outcomeOverdueBusinessDays == 3)
    }

    @Test("an unusable value stops with 64 naming its key", arguments: [
        ("CONTACTWATCH_RULES_OUTCOME_OVERDUE_ENABLED", "yes please", "rules.outcomeOverdue.enabled"),
        ("CONTACTWATCH_RULES_OUTCOME_OVERDUE_BUSINESS_DAYS", "0", "rules.outcomeOverdue.businessDays"),
        ("CONTACTWATCH_RULES_OUTCOME_OVERDUE_BUSINESS_DAYS", "five", "rules.outcomeOverdue.businessDays"),
    ])
    func badValues(variable: String, value: String, key: String) async {
        await #expect {
            _ = try await DaemonConfiguration.load(flags: DaemonFlags(), environment: [variable: value])
        } throws: { error in
            guard let e = error as? DaemonError else { return false }
            return e.exitStatus == .usage && e.message.contains(key)
        }
    }

    @Test("the example configuration turns R7 on and otherwise keeps the defaults")
    func exampleFile() async throws {
        var flags = DaemonFlags()
        flags.configFile = Self.deployFile
        let c = try await DaemonConfiguration.load(flags: flags, environment: [:])
        #expect(c.engine.outcomeOverdueEnabled == true)
        #expect(c.engine.outcomeOverdueBusinessDays == 5)
        var defaults = c.engine
        defaults.outcomeOverdueEnabled = false
        #expect(defaults == DaemonConfiguration().engine)
        // Its R7 keys are known keys (a misspelt one stops the daemon), and --check-config reports R7.
        let yaml = try String(contentsOfFile: Self.deployFile, encoding: .utf8)
        #expect(try ConfigurationCheck.unknownFileKeys(yaml: yaml, file: Self.deployFile) == [])
        #expect(c.checkSummary(file: Self.deployFile).contains("R7 outcome-overdue: on (5 business days)"))
        let misspelt = yaml.replacingOccurrences(of: "businessDays: 5", with: "busnessDays: 5")
        #expect(try ConfigurationCheck.unknownFileKeys(yaml: misspelt, file: "x.yaml").count == 1)
    }
}
