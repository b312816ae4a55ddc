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
    public static func unknownFileKeys(yaml: String, file: String) throws -> [String] {
        guard let document = try Yams.load(yaml: yaml) else { return [] }
        var paths: [String] = []
        collect(document, prefix: "", into: &paths)
        let known = Set(DaemonConfiguration.keys)
        return paths.filter { !known.contains($0) }.map { key in
            "configuration: \(key): unknown key in \(file)\(suggestion(for: key))"
        }
    }

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

    private static func collect(_ node: Any, prefix: String, into paths: inout [String]) {
        var members: [(String, Any)] = []
        if let map = node as? [String: Any] {
            members = map.map { ($0.key, $0.value) }
        } else if let map = node as? [AnyHashable: Any] {
            members = map.map { ("\($0.key)", $0.value) }
        } else {
            if !prefix.isEmpty { paths.append(prefix) }
            return
        }
        if members.isEmpty && !prefix.isEmpty { paths.append(prefix) }
        for (key, value) in members {
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            // A known key whose value is a mapping is a leaf too (its value is then a bad value, reported as such).
            if DaemonConfiguration.keys.contains(path) { paths.append(path); continue }
            collect(value, prefix: path, into: &paths)
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
