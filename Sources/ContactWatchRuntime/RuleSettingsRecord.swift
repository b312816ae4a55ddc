import ContactWatchEngine

/// The rules' settings a store was last started with (`meta.ruleSettings`, one `key=value` line each, sorted), and
/// the start-up warning when they changed. What the store holds was decided under the settings of its time, and some
/// of it stays so: contacts forgotten under a shorter `input.contactRetentionDays` stay forgotten (a later arrival of
/// one is a new contact and may raise an alert it already raised), remembered contacts keep the in-person or remote
/// standing `rules.videoCountsAsFaceToFace` gave them, and armed R7 deadlines keep theirs (rules.md). Everything else
/// follows the new values from the next event, open R1 alerts' enforcement deadlines included (computed again at
/// start). A fault tester's restarts with changed rules were silent (session 23): now the operator is told.
enum RuleSettingsRecord {
    /// `key=value` lines of every engine setting, sorted by key.
    static func text(_ settings: EngineSettings) -> String {
        values(settings).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }

    /// Each setting in the configuration's own spelling (`low`, `2026-01-01,2026-12-25`, `0.75`), written out one by
    /// one rather than through reflection, so that the text does not change with a type's description.
    static func values(_ s: EngineSettings) -> [String: String] {
        [
            "rules.timeZone": s.timeZone,
            "rules.bankHolidays": s.bankHolidays.map(\.description).joined(separator: ","),
            "rules.videoCountsAsFaceToFace": "\(s.videoCountsAsFaceToFace)",
            "rules.nonCompliance.windowMonths": "\(s.nonComplianceWindowMonths)",
            "rules.nonCompliance.enforcementDeadlineBusinessDays": "\(s.enforcementDeadlineBusinessDays)",
            "rules.telephoneOnly.limitDays": "\(s.telephoneOnlyLimitDays)",
            "rules.telephoneOnly.priorityLimitDays": "\(s.telephoneOnlyPriorityLimitDays)",
            "rules.remoteContact.enabled": "\(s.remoteContactEnabled)",
            "rules.noPrivacy.minimumSeverity": s.noPrivacyMinimumSeverity.code,
            "rules.complianceRate.windowDays": "\(s.complianceRateWindowDays)",
            "rules.complianceRate.minimumSample": "\(s.complianceRateMinimumSample)",
            "rules.complianceRate.threshold": "\(s.complianceRateThreshold)",
            "rules.complianceRate.hysteresis": "\(s.complianceRateHysteresis)",
            "rules.outcomeOverdue.enabled": "\(s.outcomeOverdueEnabled)",
            "rules.outcomeOverdue.businessDays": "\(s.outcomeOverdueBusinessDays)",
            "input.maxMessageBytes": "\(s.maxMessageBytes)",
            "input.contactRetentionDays": "\(s.contactRetentionDays)",
            "input.maxFutureSkewSeconds": "\(s.maxFutureSkewSeconds)",
        ]
    }

    /// The warning for a store last started with `before`, nil when nothing changed. Each key with its old and new
    /// value (a long value, a holiday list, named only). A key on one side only is left out: a setting a later
    /// release adds (or an earlier one lacked) would otherwise be "changed" at every upgrade or downgrade.
    static func changeLine(before: String, now settings: EngineSettings) -> String? {
        var old: [String: String] = [:]
        for line in before.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            old[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        let new = values(settings)
        func moved(_ key: String) -> Bool { old[key] != nil && new[key] != nil && old[key] != new[key] }
        let changed = new.keys.sorted().filter(moved).map { ConfigurationReload.change($0, old[$0]!, new[$0]!) }
        guard !changed.isEmpty else { return nil }
        // What the store keeps as decided before, said only for the settings that changed.
        var kept: [String] = []
        if let a = old["input.contactRetentionDays"].flatMap(Int.init), let b = new["input.contactRetentionDays"].flatMap(Int.init), b > a {
            kept.append("contacts forgotten under the shorter input.contactRetentionDays stay forgotten (a later arrival of one is a new contact)")
        }
        if moved("rules.videoCountsAsFaceToFace") {
            kept.append("remembered contacts keep the in-person or remote standing rules.videoCountsAsFaceToFace gave them")
        }
        if moved("rules.outcomeOverdue.businessDays") { kept.append("armed R7 deadlines keep theirs") }
        let deadlines = ["rules.nonCompliance.enforcementDeadlineBusinessDays", "rules.bankHolidays", "rules.timeZone"]
        var recomputed = deadlines.contains(where: moved)
            ? "; open non-compliance alerts' enforcement deadlines are computed again (those already overdue keep theirs)" : ""
        if moved("rules.timeZone") { recomputed += "; remembered contacts' compliance-rate contributions are dated again in the new zone" }
        return "the rules' settings changed since the store was last started: " + changed.joined(separator: ", ")
            + (kept.isEmpty ? "" : ". What the store holds stays as decided then: " + kept.joined(separator: "; "))
            + recomputed + "; the new values apply from the next event (README: Changing the rules of a running service)"
    }
}
