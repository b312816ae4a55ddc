#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Swift reads the command line and the environment as UTF-8, repairing what is not: a byte that is not UTF-8 becomes
/// U+FFFD. A path given with one (`--state-dir "$base/caf\xe9"`, Latin-1) was therefore another path, and the daemon
/// made and used a new, empty state directory beside the operator's, re-raising alerts from `alertSequence` 1 without
/// a word; the tool wrote `generate --output` to another file and read another in `replay` (a process-environment
/// hunter, session 53). The raw bytes are checked before anything reads them: an argument, or an environment variable
/// the program reads, that is not UTF-8 is refused, exit 64, naming it and the first such byte.
public enum UTF8Arguments {
    /// The first argument after the program's name, then the first environment variable whose name starts with one
    /// of `environmentPrefixes` or is one of `environmentNames`, whose bytes are not UTF-8: a line saying which.
    public static func firstInvalid(environmentPrefixes: [String] = [], environmentNames: Set<String> = []) -> String? {
        let argc = Int(CommandLine.argc)
        for i in 1..<max(1, argc) {
            guard let p = CommandLine.unsafeArgv[i], String(validatingCString: p) == nil else { continue }
            // With the flag it follows or is the value of (`--state-dir X`, `--state-dir=X`): cli.md's exit 64 names the
            // key (a reviewer, session 53). "after", not "the value of", for the first: the flag may take no value.
            let own = shown(p)
            var named = "argument \(i) (\(own))"
            if own.hasPrefix("--"), let equals = own.firstIndex(of: "=") {
                named = "the value of \(own[..<equals]) (argument \(i): \(own))"
            } else if i > 1, let q = CommandLine.unsafeArgv[i - 1], let previous = String(validatingCString: q),
                      previous.hasPrefix("-"), !previous.contains("=") {
                named = "argument \(i) (\(own), after \(previous))"
            }
            return named
                + " is not UTF-8 (\(firstBadByte(p)))"
        }
        guard !environmentPrefixes.isEmpty || !environmentNames.isEmpty else { return nil }
        var entry: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = environ
        while let p = entry.pointee {
            defer { entry += 1 }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { continue }
            // The name is ASCII in every variable read (a non-UTF-8 name cannot be one of them).
            guard let name = String(validating: bytes[..<equals], as: UTF8.self),
                  environmentNames.contains(name) || environmentPrefixes.contains(where: { name.hasPrefix($0) }),
                  String(validatingCString: p) == nil else { continue }
            return "the environment variable \(name) (\(shown(p + equals + 1))) is not UTF-8 (\(firstBadByte(p + equals + 1)))"
        }
        return nil
    }

    /// Writes `program`'s refusal for `firstInvalid`'s finding, if any, to standard error and exits 64.
    public static func exitWhenInvalid(program: String, linePrefix: String = "", environmentPrefixes: [String] = [],
                                       environmentNames: Set<String> = []) {
        guard let what = firstInvalid(environmentPrefixes: environmentPrefixes, environmentNames: environmentNames)
        else { return }
        let text = "\(linePrefix)\(program): \(what): it would be read with U+FFFD in place of that byte, so a path "
            + "would name another file; give the name in UTF-8 (rename the file or directory, or use a link whose "
            + "name is UTF-8)\n"
        _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        _exit(64)
    }

    /// The bytes with anything but printable ASCII as `\xHH`.
    static func shown(_ p: UnsafePointer<CChar>) -> String {
        var out = ""
        var q = UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self)
        while q.pointee != 0 {
            let b = q.pointee
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\\") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "\\x" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
            q += 1
        }
        return out
    }

    /// "byte 0xE9 at offset 4": the first byte where UTF-8 decoding fails.
    static func firstBadByte(_ p: UnsafePointer<CChar>) -> String {
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return "no byte at fault"
            case .error:
                let b = bytes[min(offset, bytes.count - 1)]
                return "byte 0x" + String(b, radix: 16, uppercase: true).leftPadded(2) + " at offset \(offset)"
            }
        }
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
