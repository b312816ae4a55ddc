#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process's file-creation mask, read without changing it (`umask(2)` can only be read by setting it, which
/// another thread could see): the `Umask:` line of `/proc/self/status` (Linux 4.7 and later).
public enum ProcessUmask {
    /// The umask, or nil where the kernel does not say it.
    public static func current(status: String = "/proc/self/status") -> UInt32? {
        guard let file = fopen(status, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("Umask:") else { continue }
            return UInt32(text.dropFirst("Umask:".count).trimmingCharacters(in: " \t\n"), radix: 8)
        }
        return nil
    }

    /// `mask` in octal, as a shell writes it (`0277`).
    public static func octal(_ mask: UInt32) -> String {
        let digits = String(mask, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let s = Substring(self)
        let drop = Set(set)
        return String(s.drop { drop.contains($0) }.reversed().drop { drop.contains($0) }.reversed())
    }
}
