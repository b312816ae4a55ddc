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
    /// OK; a section given a value (`rules: 5`); and a key given twice, dotted and nested.
    public static func unknownFileKeys(yaml: String, file: String) throws -> [String] {
        guard let document = try Yams.load(yaml: yaml) else { return [] }
        var leaves: [(path: String, value: Any)] = []
        collect(document, prefix: "", into: &leaves)
        let known = Set(DaemonConfiguration.keys)
        var problems: [String] = []
        if let root = try Yams.compose(yaml: yaml) { mergeKeys(root, prefix: "", file: file, into: &problems) }
        var seen: Set<String> = []
        for (path, value) in leaves {
            if known.contains(path) {
                if !seen.insert(path).inserted {
                    problems.append("configuration: \(path): given twice in \(file) (as a dotted key and nested, or in two sections)")
                } else if isMapping(value) {
                    // (A list where one value is expected is reported by swift-configuration, as a bad value.)
                    problems.append("configuration: \(path): a mapping where \(listKeys.contains(path) ? "a list" : "one value") is expected in \(file)")
                }
            } else if let member = DaemonConfiguration.keys.first(where: { $0.hasPrefix(path + ".") }) {
                problems.append("configuration: \(path): a section (keys such as \(member)) where a value was given in \(file)")
            } else {
                problems.append("configuration: \(path): unknown key in \(file)\(suggestion(for: path))")
            }
        }
        return problems
    }

    /// The keys whose value is a list of strings.
    static let listKeys: Set<String> = ["input.endpoints", "input.subscribe"]

    private static func isMapping(_ node: Any) -> Bool { node is [String: Any] || node is [AnyHashable: Any] }

    /// One problem per `CONTACTWATCH_*` variable that names no key.
    public static func unknownEnvironment(_ environment: [String: String]) -> [String] {
        let known = Dictionary(DaemonConfiguration.keys.map { (environmentName($0), $0) }, uniquingKeysWith: { a, _ in a })
        return environment.keys.filter { $0.hasPrefix(DaemonConfiguration.environmentPrefix) && known[$0] == nil }.sorted()
            .map { name in
                let nearest = nearestKey(to: name, among: Array(known.keys))
                return "configuration: \(name): unknown environment variable (no such key)"
                    + (nearest.map { "; did you mean \($0) (\(known[$0]!))?" } ?? "")
            }
    }

    private static func collect(_ node: Any, prefix: String, into leaves: inout [(path: String, value: Any)]) {
        var members: [(String, Any)] = []
        if let map = node as? [String: Any] {
            members = map.map { ($0.key, $0.value) }
        } else if let map = node as? [AnyHashable: Any] {
            members = map.map { ("\($0.key)", $0.value) }
        } else {
            if !prefix.isEmpty { leaves.append((prefix, node)) }
            return
        }
        if members.isEmpty && !prefix.isEmpty { leaves.append((prefix, node)) }
        for (key, value) in members.sorted(by: { $0.0 < $1.0 }) {
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            // A known key is a leaf whatever its value (a mapping there is reported as such).
            if DaemonConfiguration.keys.contains(path) { leaves.append((path, value)); continue }
            collect(value, prefix: path, into: &leaves)
        }
    }

    /// YAML merge keys (`<<: {enabled: true}`, `<<: *defaults`): Yams applies them, so the key check sees the merged
    /// keys, but swift-configuration, which reads the values, does not — R7's `enabled: true` given under `<<` ran with
    /// R7 off, and a merged `windowMonths: 0` passed unchecked, without a word (a fault tester, session 28). Refused.
    private static func mergeKeys(_ node: Node, prefix: String, file: String, into problems: inout [String]) {
        if let mapping = node.mapping {
            for (key, value) in mapping {
                let name = key.string ?? "\(key)"
                let path = prefix.isEmpty ? name : "\(prefix).\(name)"
                guard name != "<<" else {
                    problems.append("configuration: \(path): a YAML merge key in \(file), which the daemon does not apply: write the keys out")
                    continue
                }
                mergeKeys(value, prefix: path, file: file, into: &problems)
            }
        } else if let sequence = node.sequence {
            for value in sequence { mergeKeys(value, prefix: prefix, file: file, into: &problems) }
        }
    }

    private static func suggestion(for key: String) -> String {
        nearestKey(to: key, among: DaemonConfiguration.keys).map { "; did you mean \($0)?" } ?? ""
    }

    /// The known name closest to `name` by edit distance, when it is close (a typo, not another word).
    static func nearestKey(to name: String, among candidates: [String]) -> String? {
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
