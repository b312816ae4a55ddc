@testable import ContactWatchEngine
import ContactWatchTestSupport
import Testing

/// Small pieces of decoding and writing that read or write several bytes as one word, against the byte-at-a-time
/// forms they replaced.
@Suite("Codes and CRNs as words")
struct CodeWordTests {
    /// The byte-by-byte table `ContactMode.forContactType` replaced (a tuple of the four bytes per code).
    static func referenceMode(_ b: [UInt8]) -> ContactMode? {
        guard b.count == 4 else { return nil }
        switch (b[0], b[1], b[2], b[3]) {
        case (0x43, 0x4F, 0x41, 0x50), (0x43, 0x4F, 0x41, 0x49), (0x43, 0x4F, 0x53, 0x52): return .office
        case (0x43, 0x4F, 0x4F, 0x4F), (0x43, 0x30, 0x38, 0x34): return .otherInPerson
        case (0x43, 0x48, 0x56, 0x53), (0x43, 0x4F, 0x48, 0x56): return .homeVisit
        case (0x43, 0x4F, 0x44, 0x43), (0x43, 0x4F, 0x44, 0x49): return .doorstep
        case (0x43, 0x4F, 0x50, 0x54), (0x43, 0x54, 0x4F, 0x41), (0x43, 0x54, 0x4F, 0x42): return .telephone
        case (0x43, 0x4F, 0x56, 0x43): return .video
        default: return nil
        }
    }

    @Test("contact type codes: every four-byte string over the codes' letters, and other lengths")
    func contactTypes() {
        let letters = Array("COAPISRHVDTB0842c".utf8) + [0x00, 0xC3]
        var known = 0
        for a in letters { for b in letters { for c in letters { for d in letters {
            let code = [a, b, c, d]
            let mode = code.withUnsafeBytes { ContactMode.forContactType($0) }
            #expect(mode == Self.referenceMode(code), "\(code)")
            if mode != nil { known += 1 }
        } } } }
        #expect(known == 13)
        for code in ["", "C", "COA", "COAPX", "COAP "] {
            #expect(Array(code.utf8).withUnsafeBytes { ContactMode.forContactType($0) } == nil)
        }
    }

    @Test("a CRN written by digit pairs is its description")
    func crnText() {
        var rng = SplitMix64(seed: 5)
        var writer = JSONWriter(capacity: 16)
        var keys: [UInt32] = [0, 1, 9, 10, 99, 100, 999_999, 1_000_000, 25_999_999, 25_000_000, 12_345_678]
        for _ in 0..<5_000 { keys.append(UInt32(rng.below(26_000_000))) }
        for key in keys {
            let crn = CRN(key: key)
            let start = writer.count
            writer.crn(crn)
            #expect(writer.array(start..<writer.count) == Array(crn.description.utf8), "\(key)")
        }
    }
}
