@testable import ContactWatchEngine
import Testing

/// The engine's small lookup tables: `IndexTable` (cases by CRN key, PDUs by code key) and the packed PDU codes
/// (`PackedCode`) its PDU keys come from.
@Suite("IndexTable and PackedCode")
struct IndexTableTests {
    @Test("a code's two words are its bytes zero-padded, for every length from 0 to 16 and any alignment")
    func packedWords() {
        var bytes: [UInt8] = []
        for k in 0..<40 { bytes.append(UInt8(truncatingIfNeeded: k &* 37 &+ 0x41)) }
        bytes.withUnsafeBytes { all in
            for n in 0...16 {
                for offset in 0..<8 {
                    let b = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                    var expected: (UInt64, UInt64) = (0, 0)
                    withUnsafeMutableBytes(of: &expected) { w in
                        for i in 0..<n { w[i] = b[i] }
                    }
                    let code = PackedCode(b)
                    #expect(code.count == n)
                    #expect(code.w0 == expected.0 && code.w1 == expected.1, "length \(n) at offset \(offset)")
                }
            }
            #expect(PackedCode(UnsafeRawBufferPointer(rebasing: all[0..<17])).count == -1)
        }
    }

    @Test("keys found with their values through growth, absent keys not found (32- and 64-bit keys)")
    func lookups() {
        func check<K: FixedWidthInteger & UnsignedInteger>(_: K.Type) {
            var t = IndexTable<K>()
            // Keys 0, then a spread: 0 is a key like any other (the empty mark is the value).
            let keys: [K] = (0..<5_000).map { K(truncatingIfNeeded: UInt64($0) &* 2_654_435_761 % 25_999_999) }
            var seen: [K: Int32] = [:]
            for (i, k) in keys.enumerated() where seen[k] == nil {
                t.insert(k, Int32(i))
                seen[k] = Int32(i)
            }
            #expect(t.count == seen.count)
            for (k, v) in seen { #expect(t.find(k) == v) }
            for k in [K(25_999_999), K(26_000_001)] where seen[k] == nil { #expect(t.find(k) == nil) }
        }
        check(UInt32.self)
        check(UInt64.self)
    }
}
