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

    static func values(_ settings: EngineSettings) -> [String: String] {
        var out: [String: String] = [:]
        for child in Mirror(reflecting: settings).children {
            guard let field = child.label else { continue }
            out[ConfigurationReload.engineKeyNames[field] ?? field] = "\(child.value)"
        }
        return out
    }

    /// The warning for a store last started with `before`, nil when nothing changed. Each key with its old and new
    /// value (a long value, a holiday list, named only); a key unknown to either side counts as changed.
    static func changeLine(before: String, now settings: EngineSettings) -> String? {
        var old: [String: String] = [:]
        for line in before.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            old[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        let new = values(settings)
        let changed = Set(old.keys).union(new.keys).sorted().compactMap { key -> String? in
            let a = old[key] ?? "none", b = new[key] ?? "none"
            guard a != b else { return nil }
            return a.count + b.count <= 80 ? "\(key) \(a) → \(b)" : key
        }
        guard !changed.isEmpty else { return nil }
        return "the rules' settings changed since the store was last started: " + changed.joined(separator: ", ")
            + ". What the store holds stays as decided then: contacts forgotten under a shorter "
            + "input.contactRetentionDays stay forgotten (a later arrival of one is a new contact), remembered contacts "
            + "keep the in-person or remote standing rules.videoCountsAsFaceToFace gave them, armed R7 deadlines keep "
            + "theirs; open non-compliance alerts' enforcement deadlines are computed again; the rest applies from the "
            + "next event (README: Changing the rules of a running service)"
    }
}
