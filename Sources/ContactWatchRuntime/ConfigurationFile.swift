import Configuration
import ContactWatchCommon
import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// The `--config` file, read once: with the system's reason for any failure (a directory, a missing or unreadable
/// file, bytes that are not UTF-8 and where), the decision whether the document is empty (README, *Configuration*:
/// nothing but comments or whitespace, or a document holding only `null`, means every default), and the same text
/// handed to swift-configuration (`provider(text:)`), so the unknown-key check and the values applied come from one
/// read of the file, never from two versions of it (an editor or a deployment rewriting it during a start or a
/// SIGHUP).
enum ConfigurationFile {
    /// The file's text and its one YAML document as Yams composes it (nil: no document), parsed once for every
    /// check (`ConfigurationCheck`, `isEmptyDocument`). Throws exit 64 naming `--config`, the file and why it cannot
    /// be used: unreadable, not UTF-8, not YAML, or too large once its aliases are expanded.
    static func read(_ path: String) throws(DaemonError) -> (text: String, root: Node?) {
        func fail(_ why: String) -> DaemonError {
            DaemonError.configuration(key: "--config", problem: "cannot read the configuration file \(path): \(why)")
        }
        // Opened without blocking, then judged by what was opened (`fstat`): checked by path first, a FIFO put there
        // between the check and the `open` blocked the open for ever, and every later SIGHUP queued behind that
        // reload, never applied (a fault tester, session 34). Reads then block as usual.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw fail(String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail(String(cString: strerror(errno))) }
        let kind = FileKind(mode: st.st_mode)
        if let notRegular = kind.notRegularFile {
            throw fail("it is \(notRegular); give " + (kind == .directory
                ? "the YAML file itself (e.g. \((path as NSString).appendingPathComponent("contactwatchd.yaml")))"
                : "a YAML file"))
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        // At most one byte past the limit is read: a 1 GiB file was read whole (7 s, 1.1 GB resident) before it was
        // refused, at start and at every SIGHUP — a larger one would have had the running daemon killed for memory.
        while bytes.count <= maxBytes {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]); continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw fail(String(cString: strerror(errno)))
        }
        if bytes.count > maxBytes {
            // The size from the file itself (only the first bytes were read); "more than" when it cannot be had.
            var now = stat()
            let size = fstat(fd, &now) == 0 ? "\(max(Int(now.st_size), bytes.count))" : "more than \(maxBytes)"
            throw fail("it is \(size) bytes; a configuration file is a few kilobytes (at most \(maxBytes / 1024) KiB here)")
        }
        if let bad = firstInvalidUTF8(bytes) {
            throw DaemonError.configuration(key: "--config", problem: "\(path) is not valid UTF-8 text: byte offset \(bad.offset) "
                + "(line \(bad.line)) starts no UTF-8 character; save the file as UTF-8")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        // Before Yams composes it: the composer itself can spend hours on a file of a few lines (`YAMLSize`).
        if YAMLSize.exceeds(text, limit: maxExpandedNodes) {
            // Said for a long file with no alias as well (a fault tester, session 33, was sent looking for `*name`).
            throw fail("it holds more than \(maxExpandedNodes) values, counting each YAML alias (*name) as the values it "
                + "stands for; a configuration file has a few dozen (an alias of an alias of … is how a small file becomes "
                + "gigabytes)")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            let problem = duplicateKeys(error, text: text) ?? excerpt(of: error)
            throw DaemonError.configuration(key: "--config", problemLines: "\(path) is not a valid YAML configuration file: \(problem)")
        }
        return (text, root)
    }

    /// The largest configuration file read.
    static let maxBytes = 1 << 20

    /// The most values (scalars, lists, mappings) a document may hold once its aliases are expanded: a "billion
    /// laughs" file of eight lines (lists of aliases of lists) took 18 s and 2 GB to be refused, and at every SIGHUP.
    static let maxExpandedNodes = 100_000

    /// The widest line of a YAML parse error as it is reported: the parser quotes the offending line whole, and a
    /// line of a configuration file can be up to its 1 MiB limit (the log and the terminal got all of it).
    static let maxExcerptLine = 120

    /// A YAML parse error's text with each line cut at `maxExcerptLine` characters (an ellipsis says so); its first
    /// line, with the line and column, is kept as it is.
    static func excerpt(of error: any Error) -> String {
        "\(error)".split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.count > maxExcerptLine ? line.prefix(maxExcerptLine) + "…" : line
        }.joined(separator: "\n")
    }

    /// A key given twice in one mapping, said with the lines of each, and what to do; nil for any other error. Yams's
    /// own text named the first occurrence's line only and then printed the whole file as its "context" (184 lines,
    /// one log line each, for the example file with a second `security:` section appended, which is how a first-time
    /// operator follows "put security.curve.certificate in the yaml": a new-operator walk-through, session 49).
    static func duplicateKeys(_ error: any Error, text: String) -> String? {
        guard case let YamlError.duplicatedKeysInMapping(duplicates, context) = error, let key = duplicates.first else { return nil }
        // The first occurrence is at the context's mark; the others are the lines of the same mapping (the same
        // indentation, until a line indented less) that start with the key.
        // At every line break, "\r\n" included (one Character: split at "\n" alone, a CRLF file was one line).
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        let indent = max(0, context.mark.column - 1)
        var found: [Int] = []
        var n = context.mark.line
        while n >= 1 && n <= lines.count {
            let (depth, content) = indented(lines[n - 1])
            if !content.isEmpty && !content.hasPrefix("#") {
                if depth < indent { break }
                if depth == indent, Self.startsWithKey(content, key) { found.append(n) }
            }
            n += 1
        }
        if found.isEmpty { found = [context.mark.line] }
        // The mapping's own key path, from the block keys above it that are indented less (`input.` for `bind`), as
        // every other configuration message names a key; empty at the top level or in a flow mapping.
        var path: [String] = []
        var want = indent
        var up = context.mark.line - 1
        while want > 0 && up >= 1 && up <= lines.count {
            let (depth, content) = indented(lines[up - 1])
            if !content.isEmpty && !content.hasPrefix("#") && depth < want {
                guard let colon = content.firstIndex(of: ":") else { break }
                var name = content[..<colon].trimmingCharacters(in: .whitespaces)
                if name.count >= 2, let q = name.first, q == "\"" || q == "'", name.last == q { name = String(name.dropFirst().dropLast()) }
                path.insert(name, at: 0)
                want = depth
            }
            up -= 1
        }
        func said(_ k: String) -> String {
            "'\(ContactWatchLogHandler.textSafe(String((path + [k]).joined(separator: ".").prefix(maxExcerptLine))))'"
        }
        let at = found.count == 1 ? "line \(found[0])" : "lines " + found.map(String.init).joined(separator: ", ")
        let others = duplicates.count > 1 ? " (and \(duplicates.dropFirst().map(said).joined(separator: ", ")))" : ""
        // A second section at the top level is how "put security.curve.certificate in the yaml" goes wrong.
        let advice = indent == 0
            ? "keep one section, with the keys of both (a key of a section the file already has goes in that section: the "
                + "example configuration's security: section has its curve: keys commented out, to uncomment there)"
            : "keep one"
        return "the key \(said(key))\(others) is given more than once in one mapping (\(at)): YAML takes each key once; \(advice)"
    }

    /// A line's indentation (spaces) and what follows it.
    private static func indented(_ line: Substring) -> (depth: Int, content: Substring) {
        let content = line.drop { $0 == " " }
        return (line.count - content.count, content)
    }

    /// Whether `content` (a line without its indentation) starts with `key` as a mapping key, plain or quoted.
    private static func startsWithKey(_ content: Substring, _ key: String) -> Bool {
        for form in [key, "\"\(key)\"", "'\(key)'"] where content.hasPrefix(form) {
            if content.dropFirst(form.count).drop(while: { $0 == " " || $0 == "\t" }).first == ":" { return true }
        }
        return false
    }

    /// swift-configuration's YAML provider over `text` (the file as `read` returned it), not over a second read of
    /// the file (what `FileProvider(filePath:)` does). Throws what its YAML parsing throws.
    /// `hiding`: keys (dotted) read as absent, their value already refused by the key check.
    static func provider(text: String, hiding: Set<String> = []) throws -> any ConfigProvider {
        let bytes = Array(text.utf8)
        return TextProvider(yaml: try YAMLSnapshot(data: bytes.span.bytes, providerName: "FileProvider<YAMLSnapshot>",
                                                       parsingOptions: .default), hidden: hiding)
    }

    /// A provider of one snapshot, as `FileProvider` is, whatever bytes it was made from.
    struct TextProvider: ConfigProvider {
        let yaml: YAMLSnapshot
        var hidden: Set<String> = []
        var providerName: String { yaml.providerName }
        func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
            if !hidden.isEmpty {
                let name = key.components.joined(separator: ".")
                if hidden.contains(name) { return LookupResult(encodedKey: name, value: nil) }
            }
            return try yaml.value(forKey: key, type: type)
        }
        func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
            try value(forKey: key, type: type)
        }
        func snapshot() -> any ConfigSnapshot { yaml }
        nonisolated(nonsending) func watchSnapshot<Return: ~Copyable>(
            updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
        ) async throws -> Return {
            try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
        }
        nonisolated(nonsending) func watchValue<Return: ~Copyable>(
            forKey key: AbsoluteConfigKey, type: ConfigType,
            updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>) async throws -> Return
        ) async throws -> Return {
            try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
        }
    }

    /// Where the first byte sequence that is not UTF-8 starts (0-based offset, 1-based line), or nil.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (offset: Int, line: Int)? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0, line = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                if encoded.count == 1 && encoded.first == UInt8(ascii: "\n") { line += 1 }
                offset += encoded.count
            case .error:
                return (offset, line)
            case .emptyInput:
                return nil
            }
        }
    }

    /// Whether the document holds no settings at all: no document (empty, whitespace, comments only: `root` nil) or
    /// one whose root is null (`---` alone, `~`, `null`). Throws `NotAMapping` for a list or a value at the top.
    static func isEmptyDocument(_ root: Node?) throws(NotAMapping) -> Bool {
        guard let root else { return true }
        if root.null != nil { return true }
        switch root {
        case .mapping: return false
        case .sequence: throw NotAMapping(what: "a list")
        default: throw NotAMapping(what: "a single value")
        }
    }

    /// A document whose top level is not a mapping of keys.
    struct NotAMapping: Error, CustomStringConvertible {
        let what: String
        var description: String {
            // Short enough not to be cut (`maxExcerptLine`); no path of the source tree, which an installed host lacks
            // (an operator audit, session 26, read "see Deploy/contactwat…").
            "its top level is \(what), not a mapping of keys (e.g. \"log:\", then \"  level: info\" on the next line)"
        }
    }
}
