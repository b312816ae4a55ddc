// libyaml as Yams builds it (its `CYaml` module, a dependency of the Yams product, so a target that depends on Yams
// can import it — as RawSQLite imports GRDB's `GRDBSQLite`). Only this file uses it.
internal import CYaml

/// How many values a YAML text holds once its aliases are expanded, counted from libyaml's events — before Yams
/// builds any node. Yams' composer hashes every mapping key to find duplicates, and hashing a node walks all it
/// holds, aliases expanded: ten lines whose last key was an alias of an alias of … (10⁹ values) ran for hours inside
/// `Yams.compose`, before any bound on the built nodes could run, at start and in every SIGHUP's reload (a reviewer,
/// session 34). Here nothing is expanded: an anchored node's size is recorded when it ends, and each alias adds it.
///
/// Contract: `text` is read through one libyaml parser, created, used and deleted in `exceeds`; each event is deleted
/// after it is read; nothing libyaml returns outlives the call.
enum YAMLSize {
    /// Whether `text` holds more than `limit` values (scalars, lists and mappings; an alias counts as the values its
    /// anchor holds). Text libyaml cannot parse is not judged here (false): the composer then says what is wrong.
    static func exceeds(_ text: String, limit: Int) -> Bool {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> Bool in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return false }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var sizes: [String: Int] = [:]  // anchor → the values its node holds
            var open: [(anchor: String?, start: Int)] = []  // collections begun and not ended
            var count = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return false }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_SCALAR_EVENT:
                    count += 1
                    if let anchor = event.data.scalar.anchor { sizes[String(cString: anchor)] = 1 }
                case YAML_ALIAS_EVENT:
                    count += event.data.alias.anchor.flatMap { sizes[String(cString: $0)] } ?? 1
                case YAML_SEQUENCE_START_EVENT:
                    open.append((event.data.sequence_start.anchor.map { String(cString: $0) }, count))
                    count += 1
                case YAML_MAPPING_START_EVENT:
                    open.append((event.data.mapping_start.anchor.map { String(cString: $0) }, count))
                    count += 1
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    if let begun = open.popLast(), let anchor = begun.anchor { sizes[anchor] = count - begun.start }
                case YAML_STREAM_END_EVENT:
                    return count > limit
                default:
                    break
                }
                // Stopped as soon as it is past: no size recorded can then exceed 2 × `limit`, so nothing overflows.
                if count > limit { return true }
            }
        }
    }
}
