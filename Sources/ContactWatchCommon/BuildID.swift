// The running executable's GNU build ID, read from its own file. Unsafe code confined here: the contract is the ELF64
// little-endian layout — the file header's program header table (offset at 0x20, entry size at 0x36, count at 0x38),
// each entry's type (0), file offset (8), size in the file (32) and alignment (48) — and, within a `PT_NOTE` segment,
// notes of a 12-byte header (name size, descriptor size, type), the name, then the descriptor at the next multiple of
// the segment's alignment (4, or 8) from the note's start, and the next note likewise after the descriptor (as readelf
// and glibc read them: with 8, the name is not padded on its own). `/proc/self/exe` is the file this process runs, even once an upgrade has replaced
// the path (the kernel keeps the old file).

#if canImport(Glibc)
import Glibc
#endif

/// The executable's GNU build ID in hexadecimal (what `readelf -n` and `file` print for the file), or nil when it has
/// none. Every build of one version has its own: the daemon's `ready` line names it beside the version, so that after
/// an upgrade the journal tells which build a restart started (every build of 0.10.0 said `version=0.10.0`: the
/// packaging check, session 39).
public enum BuildID {
    public static let current: String? = read()

    private static func read() -> String? {
        #if canImport(Glibc)
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        func bytes(_ offset: Int, _ count: Int) -> [UInt8]? {
            guard offset >= 0, count >= 0, count <= 1 << 20 else { return nil }
            var buffer = [UInt8](repeating: 0, count: count)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? buffer : nil
        }
        // ELF, 64-bit (class 2), little-endian (data 1).
        guard let header = bytes(0, 64), header[0..<4] == [0x7F, 0x45, 0x4C, 0x46], header[4] == 2, header[5] == 1
        else { return nil }
        func integer(_ b: [UInt8], _ at: Int, _ size: Int) -> Int {
            var v = 0
            for k in (0..<size).reversed() { v = v << 8 | Int(b[at + k]) }
            return v
        }
        let tableOffset = integer(header, 0x20, 8), entrySize = integer(header, 0x36, 2), entries = integer(header, 0x38, 2)
        guard entrySize >= 56, let table = bytes(tableOffset, entrySize * entries) else { return nil }
        for k in 0..<entries {
            let entry = k * entrySize
            guard integer(table, entry, 4) == 4,  // PT_NOTE
                  let notes = bytes(integer(table, entry + 8, 8), integer(table, entry + 32, 8)) else { continue }
            let alignment = integer(table, entry + 48, 8) == 8 ? 8 : 4
            if let id = notes.withUnsafeBytes({ gnuBuildID($0, alignment: alignment) }) { return id }
        }
        return nil
        #else
        return nil
        #endif
    }

    /// The descriptor of the `NT_GNU_BUILD_ID` note ("GNU", type 3) among `notes`, in hexadecimal; nil without one.
    static func gnuBuildID(_ notes: UnsafeRawBufferPointer, alignment: Int) -> String? {
        func padded(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }
        var offset = 0
        while notes.count - offset >= 12 {
            let nameSize = Int(notes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let descriptorSize = Int(notes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
            let type = notes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            guard nameSize <= notes.count, descriptorSize <= notes.count else { return nil }
            let descriptor = padded(offset + 12 + nameSize)
            let next = padded(descriptor + descriptorSize)
            guard next <= notes.count else { return nil }
            if type == 3, nameSize == 4, descriptorSize > 0,
               Array(notes[(offset + 12)..<(offset + 16)]) == [0x47, 0x4E, 0x55, 0] {
                let digits = Array("0123456789abcdef".utf8)
                var text: [UInt8] = []
                for byte in notes[descriptor..<(descriptor + descriptorSize)] {
                    text.append(digits[Int(byte >> 4)])
                    text.append(digits[Int(byte & 15)])
                }
                return String(decoding: text, as: UTF8.self)
            }
            offset = next
        }
        return nil
    }
}
