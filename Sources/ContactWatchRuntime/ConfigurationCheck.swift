import Foundation
import Yams

/// Keys the daemon does not know, in the configuration file and among `CONTACTWATCH_*` variables (cli.md: a
/// misspelling is never silently ignored). At start they are exit 64; `--check-config` lists them all.
public enum ConfigurationCheck {
    /// The environment variable swift-configuration reads for `key`, with the daemon's prefix:
    /// `rules.telephoneOnly.limitDays` → `CONTACTWATCH_RULES_TELEPHONE_ONLY_LIMIT_DAYS`.
    public static func environmentName(_ key: String) -> String {
        var out = DaemonConfiguration.environmentPrefix
        var previousLower = false
        for ch in key {
            if ch == "." { out += "_"; previousLower = false; continue }
            if ch.isUppercase && previousLower { out += "_" }
            out += ch.uppercased()
            previousLower = ch.isLowercase || ch.isNumber
        }
        return out
    }

    /// One problem per unknown key path of a YAML document (its leaves, dotted; a list is a leaf), with the nearest
    /// known key when one is close. Throws when the text is not YAML.
    /// Also a known key given a mapping, which swift-configuration reads as
    /// absent — the default, silently: `state: {dir: {path: /srv/cw}}` ran with `./state` and `--check-config` said
    /// OK; a section given a value (`rules: 5`); a key given twice, dotted and nested; a YAML merge key; a key that
    /// is not a name; a value that is null; a value with a YAML tag that changes its type.
    public static func unknownFileKeys(yaml: String, file: String) throws -> [String] {
        guard let root = try Yams.compose(yaml: yaml) else { return [] }
        return unknownFileKeys(root: root, file: file)
    }

    /// The same over the composed document. The walk is over Yams' nodes, never `Yams.load`'s dictionaries: those
    /// force a key to `String`, and a key that is a list or a mapping (`[log]:` for `log:`, a one-character slip)
    /// crashed the daemon — at start instead of exit 64, and a running one at SIGHUP (a fault tester, session 33).
    static func unknownFileKeys(root: Node, file: String) -> [String] { fileProblems(root: root, file: file).problems }

    /// The problems, and the known keys whose value they refuse (null, tagged, a list holding a list or a mapping):
    /// those are hidden from the values' own checks (`ConfigurationFile.provider(text:hiding:)`), which read `dir:` as
    /// `""` and `[~]` as `["~"]` and said so in a second line that contradicted the first (a reviewer, session 34).
    /// With them, the known keys whose value is a quoted or block scalar (`quoted`).
    static func fileProblems(root: Node, file: String) -> (problems: [String], refused: Set<String>, quoted: Set<String>) {
        var walk = Walk(file: file)
        walk.visit(root, path: "")
        return (walk.problems, walk.refused, walk.quoted)
    }

    /// One walk of the document's mappings, in key order, collecting problems.
    private struct Walk {
        let file: String
        var problems: [String] = []
        var refused: Set<String> = []
        var quoted: Set<String> = []
        var seen: Set<String> = []
        /// How many more unknown keys get a "did you mean".
        var suggestionsLeft = 20

        mutating func visit(_ node: Node, path: String) {
            guard let mapping = node.mapping else {
                if !path.isEmpty { leaf(path, node) }
                return
            }
            if mapping.count == 0 {
                // `log: {}` sets nothing, as `log:` does; an empty mapping elsewhere is told by `leaf`.
                if !path.isEmpty && !Self.isSection(path) { leaf(path, node) }
                return
            }
            var members: [(name: String, key: Node, value: Node)] = []
            for (key, value) in mapping {
                guard let name = Self.name(of: key) else {
                    let line = key.mark.map { "line \($0.line): " } ?? ""
                    let kind = key.mapping != nil ? "a mapping" : key.sequence != nil ? "a list" : "a null"
                    // An example only under the top level or a section: under an unknown key (said below) "such
                    // as log" read as `fooo.log` (a reviewer, session 34).
                    let example = path.isEmpty || Self.isSection(path) ? "; a key is a name such as \(Self.example(under: path))" : ""
                    problems.append("configuration: \(path.isEmpty ? "(top level)" : shown(path)): \(line)\(kind) used as a key in \(file)\(example)")
                    continue
                }
                // An empty name made the child's path its parent's: `"":` at the top level and everything under it
                // were read as the top level, passed as known, and set nothing (a fault tester, session 34).
                guard !name.isEmpty else {
                    let line = key.mark.map { "line \($0.line): " } ?? ""
                    problems.append("configuration: \(path.isEmpty ? "(top level)" : shown(path)): \(line)an empty key in \(file)")
                    continue
                }
                members.append((name, key, value))
            }
            // A mapping under a path that is neither the top level nor a section is an unknown key, whatever it holds
            // (its members are said below when it has any with a name).
            if members.isEmpty && !path.isEmpty && !Self.isSection(path) { leaf(path, node) }
            for (name, _, value) in members.sorted(by: { $0.name < $1.name }) {
                let child = path.isEmpty ? name : "\(path).\(name)"
                if name == "<<" {
                    // Yams' `load` applies a merge key, swift-configuration (which reads the values) does not: R7's
                    // `enabled: true` given under `<<` ran with R7 off, and a merged `windowMonths: 0` passed
                    // unchecked, without a word (a fault tester, session 28). Refused.
                    problems.append("configuration: \(shown(child)): a YAML merge key in \(file), which the daemon does not apply: write the keys out")
                    continue
                }
                // A known key is a leaf whatever its value (a mapping there is reported as such).
                if DaemonConfiguration.keys.contains(child) { leaf(child, value); continue }
                // An empty section (`log:` with every key under it commented out) sets nothing.
                if value.null != nil, Self.isSection(child) { continue }
                visit(value, path: child)
            }
        }

        mutating func leaf(_ path: String, _ value: Node) {
            guard DaemonConfiguration.keys.contains(path) else {
                if let member = DaemonConfiguration.keys.first(where: { $0.hasPrefix(path + ".") }) {
                    problems.append("configuration: \(shown(path)): a section (keys such as \(member)) where a value was given in \(file)")
                } else {
                    // A suggestion for the first few only: each costs an edit distance against every key, and 9,500
                    // unknown keys of 100 characters took 61 s at a start or a SIGHUP (a fault tester, session 34).
                    suggestionsLeft -= 1
                    problems.append("configuration: \(shown(path)): unknown key in \(file)\(suggestionsLeft >= 0 ? suggestion(for: path) : "")")
                }
                return
            }
            guard seen.insert(path).inserted else {
                problems.append("configuration: \(shown(path)): given twice in \(file) (as a dotted key and nested, or in two sections)")
                return
            }
            let isList = listKeys.contains(path)
            if let scalar = value.scalar, scalar.style != .plain { quoted.insert(path) }
            if value.mapping != nil {
                // (A list where one value is expected is reported by swift-configuration, as a bad value.)
                problems.append("configuration: \(shown(path)): a mapping where \(isList ? "a list" : "one value") is expected in \(file)")
            } else if value.null != nil || (isList && value.sequence?.contains(where: { $0.null != nil }) == true) {
                // swift-configuration reads a null as the text "~" or "null": `state.dir: ~` made a directory named
                // `~`, and `subscribe: [~]` subscribed to the prefix "~" (a fault tester, session 33).
                refused.insert(path)
                problems.append("configuration: \(shown(path)): \(value.null != nil ? "no value" : "a list holding no value") "
                    + "(empty, ~ or null) in \(file); leave the key out (or comment it out) for its default, or quote "
                    + "\"~\" or \"null\" to mean the text")
            } else if let index = value.sequence?.firstIndex(where: { $0.scalar == nil }) {
                // swift-configuration refuses the whole file for it, in its own words ("non-scalar value in array"):
                // said here, where the key and the item are known (`bankHolidays: [{date: …, name: …}]`).
                refused.insert(path)
                problems.append("configuration: \(shown(path)): item \(index + 1) of the list is a list or a mapping where "
                    + "\(isList ? "text" : "one value") is expected in \(file)")
            } else if let tag = Self.explicitTag(value) ?? value.sequence?.lazy.compactMap(Self.explicitTag).first {
                // Neither provider applies a tag the same way (`!!str 5` was taken as the number 5): refused.
                refused.insert(path)
                problems.append("configuration: \(shown(path)): a YAML tag (\(tag)) in \(file), which the daemon does not apply: write the value plainly")
            }
        }

        /// Whether `path` is a section of known keys (`log`, `rules.telephoneOnly`).
        static func isSection(_ path: String) -> Bool {
            DaemonConfiguration.keys.contains { $0.hasPrefix(path + ".") }
        }

        /// A mapping key's name: a scalar's text (not null: `? : 1` names nothing).
        static func name(of key: Node) -> String? {
            guard let scalar = key.scalar, key.null == nil else { return nil }
            return scalar.string
        }

        /// A tag written on a scalar that gives it another type than its text has written plainly (`!!str 5`,
        /// `!!float 1`, `!custom x`), as written; nil for none, and for one that changes nothing (`!!str info`, `!!int
        /// 5`, which some generators write). Compared, not merely read: Yams gives a quoted or block scalar the tag
        /// `!!str` itself, and resolves a plain one's tag in place as soon as anything hashes it — its own
        /// duplicate-key check does, for keys and what their aliases reach — after which an untagged value's tag
        /// reads as written (a reviewer, session 34).
        static func explicitTag(_ node: Node) -> String? {
            guard let scalar = node.scalar, !scalar.tag.description.isEmpty else { return nil }
            let name = scalar.tag.description
            let str = Tag.Name.str.rawValue
            if name == str && scalar.style != .plain { return nil }
            let plain = Resolver.default.resolveTag(of: Node(scalar.string)).rawValue
            if name == plain || (name == "!" && plain == str) { return nil }
            return name.hasPrefix("tag:yaml.org,2002:") ? "!!" + name.dropFirst("tag:yaml.org,2002:".count) : name
        }

        /// A key that may be written under `path` (for the message about a key that is not a name).
        static func example(under path: String) -> String {
            let prefix = path.isEmpty ? "" : path + "."
            guard let key = DaemonConfiguration.keys.first(where: { $0.hasPrefix(prefix) }) else { return "log" }
            return String(key.dropFirst(prefix.count).prefix { $0 != "." })
        }
    }

    /// The keys whose value is a list of strings.
    static let listKeys: Set<String> = ["input.endpoints", "input.subscribe", "rules.bankHolidays"]


    /// One problem per `CONTACTWATCH_*` variable that names no key, and per variable that names one in another case:
    /// only the upper-case names are read, and `contactwatch_rules_outcome_overdue_enabled=true` (an `Environment=` line
    /// typed in lower case) was neither read nor said (the configuration's hunter, session 45).
    public static func unknownEnvironment(_ environment: [String: String]) -> [String] {
        let known = Dictionary(DaemonConfiguration.keys.map { (environmentName($0), $0) }, uniquingKeysWith: { a, _ in a })
        let prefix = DaemonConfiguration.environmentPrefix
        // Another case counts only when it names a key once upper-cased: an unrelated `ContactWatch_Home` in a CI job
        // is not the daemon's, and refusing it would stop the start (a reviewer, session 45).
        return environment.keys.filter {
            known[$0] == nil && ($0.hasPrefix(prefix) || known[$0.uppercased()] != nil)
        }.sorted()
            .map { name in
                if let key = known[name.uppercased()] {
                    return "configuration: \(shown(name)): not read: the variables are upper case; did you mean "
                        + "\(name.uppercased()) (\(key))?"
                }
                let nearest = nearestKey(to: name, among: Array(known.keys))
                return "configuration: \(shown(name)): unknown environment variable (no such key)"
                    + (nearest.map { "; did you mean \($0) (\(known[$0]!))?" } ?? "")
            }
    }

    /// A key as a problem names it: at most 120 characters, then an ellipsis (a key of 100,000 characters was quoted
    /// whole: a fault tester, session 34), as a YAML parse error's quoted line is cut.
    static func shown(_ key: String) -> String {
        key.count > ConfigurationFile.maxExcerptLine ? key.prefix(ConfigurationFile.maxExcerptLine) + "…" : key
    }

    private static func suggestion(for key: String) -> String {
        nearestKey(to: key, among: DaemonConfiguration.keys).map { "; did you mean \($0)?" } ?? ""
    }

    /// The known name closest to `name` by edit distance, when it is close (a typo, not another word).
    /// Not looked for when `name` is more than twice as long as the longest candidate: no typo is that long, and the
    /// edit distance of a key of 1 MB against every key kept a start, `--check-config` or a SIGHUP busy for 55 s (a
    /// fault tester, session 34).
    static func nearestKey(to name: String, among candidates: [String]) -> String? {
        guard name.utf8.count <= 2 * (candidates.map(\.utf8.count).max() ?? 0) else { return nil }
        var best: (String, Int)? = nil
        for c in candidates {
            let d = editDistance(Array(name.lowercased().utf8), Array(c.lowercased().utf8))
            if best == nil || d < best!.1 { best = (c, d) }
        }
        guard let (key, distance) = best, distance <= max(2, name.count / 6) else { return nil }
        return key
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
