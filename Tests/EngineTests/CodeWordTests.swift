@testable import ContactWatchEngine
import ContactWatchTestThreads
import ContactWatchTestSupport
import Testing

/// Small pieces of decoding and writing that read or write several bytes as one word, against the byte-at-a-time
/// forms they replaced.
@Suite("Codes and CRNs as words", .computing)
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

/// `Registers.classify` (codes and levels compared as bytes, a code as one word) against the `String` switch it
/// replaced, on every list of up to three registers drawn from codes and levels around the named ones: each named
/// code, its near misses (case, length, a changed or combining character, NFD forms, the Kelvin sign), and levels.
@Suite("Registers.classify as words", .computing)
struct RegisterClassifyTests {
    /// The `String` switch `Registers.classify` had before engine pass 10 (`String`'s `==`).
    static func reference(_ registers: [Register]) -> (Categories, excluded: Bool) {
        var c: Categories = []
        var excluded = false
        for r in registers {
            switch r.code {
            case "RVHR": c.insert(.veryHighRosh); excluded = true
            case "RHRH": c.insert(.highRosh)
            case "MAPP" where r.level == "M2" || r.level == "M3": c.insert(.mappa23); excluded = true
            case "RCPR": c.insert(.childSafeguarding); excluded = true
            case "RCCO", "RCHD": c.insert(.childSafeguarding)
            case "ADVP": c.insert(.domesticAbuse); excluded = true
            case "ADVV": c.insert(.domesticAbuse)
            default: break
            }
        }
        return (c, excluded)
    }

    static let codes = [
        "RVHR", "RHRH", "MAPP", "RCPR", "RCCO", "RCHD", "ADVP", "ADVV", "RMRH", "RLRH", "WRSM", "",
        "rvhr", "RVH", "RVHRX", "RVHR ", " RHRH", "MAPQ", "ADVW", "RCC0", "\u{212A}CPR", "KCPR",
        "R\u{0301}CHD", "RCH\u{0044}\u{0307}", "MA\u{0050}P", "\u{00C5}DVP", "A\u{030A}DVP", "ADV\u{0056}\u{0308}", "RÇPR",
    ]
    static let levels: [String?] = [nil, "M2", "M3", "M1", "M4", "", "m2", "M2 ", "M", "M23", "M\u{0032}\u{0301}", "Ｍ2", "\u{212A}2"]

    @Test("the same categories and exclusion as the String switch, on every list of up to three registers")
    func sameAsStrings() {
        var registers: [Register] = []
        for code in Self.codes { for level in Self.levels { registers.append(Register(code: code, level: level)) } }
        var compared = 0, excluded = 0, categorised = 0
        func check(_ list: [Register]) {
            let (c, x) = Registers.classify(list)
            let (rc, rx) = Self.reference(list)
            #expect(c == rc && x == rx, "\(list)")
            compared += 1
            if x { excluded += 1 }
            if !c.isEmpty { categorised += 1 }
        }
        check([])
        for a in registers { check([a]) }
        // Pairs and triples over a stride of the singles (every code and level still appears).
        for (i, a) in registers.enumerated() where i % 3 == 0 {
            for (j, b) in registers.enumerated() where j % 5 == 1 {
                check([a, b])
                check([b, registers[(i &* 7 &+ j) % registers.count], a])
            }
        }
        #expect(compared > 10_000)
        #expect(excluded > 1_000 && categorised > excluded)
        // Each named code alone gives its category (a switch that lost one fails here as well as above).
        #expect(Registers.classify([Register(code: "RHRH", level: nil)]) == (.highRosh, false))
        #expect(Registers.classify([Register(code: "MAPP", level: "M3")]) == (.mappa23, true))
        #expect(Registers.classify([Register(code: "MAPP", level: "M1")]) == ([], false))
        #expect(Registers.classify([Register(code: "RCHD", level: nil), Register(code: "ADVV", level: nil)])
                == ([.childSafeguarding, .domesticAbuse], false))
    }
}
