#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The code tables of events.md and rules.md.

public enum ContactMode: UInt8, CaseIterable, Sendable {
    case office, homeVisit, doorstep, otherInPerson, telephone, video, textOrOnline

    public var code: String {
        switch self {
        case .office: "OFFICE"
        case .homeVisit: "HOME_VISIT"
        case .doorstep: "DOORSTEP"
        case .otherInPerson: "OTHER_IN_PERSON"
        case .telephone: "TELEPHONE"
        case .video: "VIDEO"
        case .textOrOnline: "TEXT_OR_ONLINE"
        }
    }

    /// Lower-case words for reasons ("office", "other in person").
    var words: String {
        switch self {
        case .office: "office"
        case .homeVisit: "home visit"
        case .doorstep: "doorstep"
        case .otherInPerson: "other in person"
        case .telephone: "telephone"
        case .video: "video"
        case .textOrOnline: "text or online"
        }
    }

    static func parse(_ b: UnsafeRawBufferPointer) -> ContactMode? {
        // The codes have distinct lengths.
        switch b.count {
        case 6: return bytesEqual(b, "OFFICE" as StaticString) ? .office : nil
        case 10: return bytesEqual(b, "HOME_VISIT" as StaticString) ? .homeVisit : nil
        case 8: return bytesEqual(b, "DOORSTEP" as StaticString) ? .doorstep : nil
        case 15: return bytesEqual(b, "OTHER_IN_PERSON" as StaticString) ? .otherInPerson : nil
        case 9: return bytesEqual(b, "TELEPHONE" as StaticString) ? .telephone : nil
        case 5: return bytesEqual(b, "VIDEO" as StaticString) ? .video : nil
        case 14: return bytesEqual(b, "TEXT_OR_ONLINE" as StaticString) ? .textOrOnline : nil
        default: return nil
        }
    }

    /// The nDelius contact types of events.md.
    @inline(__always)
    /// The mode of a contact type code (the four bytes compared as one word, as `OutcomeFlags.forCode` does).
    static func forContactType(_ b: UnsafeRawBufferPointer) -> ContactMode? {
        guard b.count == 4 else { return nil }
        switch fourCC(b) {
        case fourCC("COAP"), fourCC("COAI"), fourCC("COSR"): return .office
        case fourCC("COOO"), fourCC("C084"): return .otherInPerson
        case fourCC("CHVS"), fourCC("COHV"): return .homeVisit
        case fourCC("CODC"), fourCC("CODI"): return .doorstep
        case fourCC("COPT"), fourCC("CTOA"), fourCC("CTOB"): return .telephone
        case fourCC("COVC"): return .video
        default: return nil
        }
    }

    /// `words` with a capital first letter (the start of a reason).
    var capitalizedWords: StaticString {
        switch self {
        case .office: "Office"
        case .homeVisit: "Home visit"
        case .doorstep: "Doorstep"
        case .otherInPerson: "Other in person"
        case .telephone: "Telephone"
        case .video: "Video"
        case .textOrOnline: "Text or online"
        }
    }
}

public enum InterviewSetting: UInt8, CaseIterable, Sendable {
    case privateRoom, openBooth, sharedPublicSpace, home, doorstep, unknown

    public var code: String {
        switch self {
        case .privateRoom: "PRIVATE_ROOM"
        case .openBooth: "OPEN_BOOTH"
        case .sharedPublicSpace: "SHARED_PUBLIC_SPACE"
        case .home: "HOME"
        case .doorstep: "DOORSTEP"
        case .unknown: "UNKNOWN"
        }
    }

    var words: String {
        switch self {
        case .privateRoom: "private room"
        case .openBooth: "open booth"
        case .sharedPublicSpace: "shared public space"
        case .home: "home"
        case .doorstep: "doorstep"
        case .unknown: "unknown"
        }
    }

    @inline(__always)
    static func parse(_ b: UnsafeRawBufferPointer) -> InterviewSetting? {
        // The codes have distinct lengths.
        switch b.count {
        case 12: return bytesEqual(b, "PRIVATE_ROOM" as StaticString) ? .privateRoom : nil
        case 10: return bytesEqual(b, "OPEN_BOOTH" as StaticString) ? .openBooth : nil
        case 19: return bytesEqual(b, "SHARED_PUBLIC_SPACE" as StaticString) ? .sharedPublicSpace : nil
        case 4: return bytesEqual(b, "HOME" as StaticString) ? .home : nil
        case 8: return bytesEqual(b, "DOORSTEP" as StaticString) ? .doorstep : nil
        case 7: return bytesEqual(b, "UNKNOWN" as StaticString) ? .unknown : nil
        default: return nil
        }
    }
}

public enum SentenceType: UInt8, CaseIterable, Sendable {
    case communityOrder, suspendedSentenceOrder, licence, postSentenceSupervision

    public var code: String {
        switch self {
        case .communityOrder: "COMMUNITY_ORDER"
        case .suspendedSentenceOrder: "SUSPENDED_SENTENCE_ORDER"
        case .licence: "LICENCE"
        case .postSentenceSupervision: "POST_SENTENCE_SUPERVISION"
        }
    }

    @inline(__always)
    static func parse(_ b: UnsafeRawBufferPointer) -> SentenceType? {
        // The codes have distinct lengths.
        switch b.count {
        case 15: return bytesEqual(b, "COMMUNITY_ORDER" as StaticString) ? .communityOrder : nil
        case 24: return bytesEqual(b, "SUSPENDED_SENTENCE_ORDER" as StaticString) ? .suspendedSentenceOrder : nil
        case 7: return bytesEqual(b, "LICENCE" as StaticString) ? .licence : nil
        case 25: return bytesEqual(b, "POST_SENTENCE_SUPERVISION" as StaticString) ? .postSentenceSupervision : nil
        default: return nil
        }
    }
}

public enum Severity: UInt8, Comparable, CaseIterable, Sendable {
    case low, medium, high
    public var code: String {
        switch self {
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        }
    }
    var staticCode: StaticString {
        switch self {
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        }
    }
    public init?(code: String) {
        guard let s = Severity.allCases.first(where: { $0.code == code }) else { return nil }
        self = s
    }
    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
}

/// The outcome flags of the events.md table.
struct OutcomeFlags {
    var attended: Bool
    var complied: Bool
    var enforceable: Bool

    @inline(__always)
    static func forCode(_ b: UnsafeRawBufferPointer) -> OutcomeFlags? {
        guard b.count == 4 else { return nil }
        switch fourCC(b) {
        case fourCC("ATTC"), fourCC("ATSS"): return OutcomeFlags(attended: true, complied: true, enforceable: false)
        case fourCC("AFTC"), fourCC("ATSH"): return OutcomeFlags(attended: true, complied: false, enforceable: true)
        case fourCC("UAAB"): return OutcomeFlags(attended: false, complied: false, enforceable: true)
        case fourCC("AFTA"): return OutcomeFlags(attended: false, complied: false, enforceable: false)
        case fourCC("AACL"), fourCC("AAEM"), fourCC("AAFC"), fourCC("AAHO"), fourCC("AAME"), fourCC("AARE"),
             fourCC("AARC"), fourCC("CO05"):
            return OutcomeFlags(attended: false, complied: true, enforceable: false)
        default: return nil
        }
    }
}

@inline(__always)
func fourCC(_ b: UnsafeRawBufferPointer) -> UInt32 {
    (UInt32(b[0]) << 24) | (UInt32(b[1]) << 16) | (UInt32(b[2]) << 8) | UInt32(b[3])
}

@inline(__always)
func fourCC(_ s: StaticString) -> UInt32 {
    let p = s.utf8Start
    return (UInt32(p[0]) << 24) | (UInt32(p[1]) << 16) | (UInt32(p[2]) << 8) | UInt32(p[3])
}

/// What an enforcement action does (events.md).
public enum ActionClass: UInt8, Sendable {
    case warning, breach, noFurtherAction, withdrawal, other

    var words: String {
        switch self {
        case .warning: "warning"
        case .breach: "breach"
        case .noFurtherAction: "no further action"
        case .withdrawal: "withdrawal"
        case .other: "other"
        }
    }
}

/// Known action codes get small ids; other codes are identified by a hash (they only need comparing).
enum ActionCodes {
    static let known: [(String, ActionClass)] = [
        ("EA02", .warning), ("EA03", .warning), ("LCL", .warning),
        ("EA08", .breach), ("IBR", .breach), ("BRE", .breach), ("EA11", .breach), ("IMB", .breach),
        ("NFA", .noFurtherAction), ("EA06", .withdrawal), ("EA07", .withdrawal),
    ]

    /// The code's id: its 1-based position in `known`, else a hash with the top bit set. Ids are stored: never
    /// renumber.
    static func id(_ b: UnsafeRawBufferPointer) -> UInt32 {
        if b.count == 4 {
            switch fourCC(b) {
            case fourCC("EA02"): return 1
            case fourCC("EA03"): return 2
            case fourCC("EA08"): return 4
            case fourCC("EA11"): return 7
            case fourCC("EA06"): return 10
            case fourCC("EA07"): return 11
            default: break
            }
        } else if b.count == 3 {
            switch (UInt32(b[0]) << 16) | (UInt32(b[1]) << 8) | UInt32(b[2]) {
            case 0x4C_43_4C: return 3 // LCL
            case 0x49_42_52: return 5 // IBR
            case 0x42_52_45: return 6 // BRE
            case 0x49_4D_42: return 8 // IMB
            case 0x4E_46_41: return 9 // NFA
            default: break
            }
        }
        var h: UInt32 = 2_166_136_261
        for c in b { h = (h ^ UInt32(c)) &* 16_777_619 }
        return 0x8000_0000 | (h & 0x7FFF_FFFF)
    }

    static func actionClass(_ id: UInt32) -> ActionClass {
        guard id >= 1 && Int(id) <= known.count else { return .other }
        return known[Int(id) - 1].1
    }
}

/// Case categories (rules.md), as bits in table order.
public struct Categories: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let veryHighRosh = Categories(rawValue: 1)
    public static let highRosh = Categories(rawValue: 2)
    public static let mappa23 = Categories(rawValue: 4)
    public static let childSafeguarding = Categories(rawValue: 8)
    public static let domesticAbuse = Categories(rawValue: 16)

    static let names: [(Categories, String)] = [
        (.veryHighRosh, "VERY_HIGH_ROSH"), (.highRosh, "HIGH_ROSH"), (.mappa23, "MAPPA_LEVEL_2_3"),
        (.childSafeguarding, "CHILD_SAFEGUARDING"), (.domesticAbuse, "DOMESTIC_ABUSE"),
    ]

    public var names: [String] { Categories.names.filter { contains($0.0) }.map(\.1) }

    /// `names` joined with ", ", for each of the 32 combinations (reasons).
    static let texts: [String] = (0..<32).map { Categories(rawValue: UInt8($0)).names.joined(separator: ", ") }

    /// `names` joined with ", ".
    var text: String { rawValue < 32 ? Categories.texts[Int(rawValue)] : names.joined(separator: ", ") }
}

/// One register on a case.
public struct Register: Sendable, Hashable {
    public var code: String
    public var level: String?
    public init(code: String, level: String?) {
        self.code = code
        self.level = level
    }
}

enum Registers {
    static let rosh: Set<String> = ["RLRH", "RMRH", "RHRH", "RVHR"]
    /// `rosh.contains(code)` without hashing.
    static func isRosh(_ code: String) -> Bool { code == "RLRH" || code == "RMRH" || code == "RHRH" || code == "RVHR" }

    /// The categories and whether the case is excluded from remote supervision.
    ///
    /// The codes and levels are compared as their UTF-8 bytes (a four-byte code as one word), not as `String`s
    /// (~370 instructions a call through `String`'s comparisons with each literal). The same answers: `String`'s `==`
    /// is canonical equivalence, and no string other than these literals themselves is canonically equivalent to
    /// one of them (none of their characters — A C D H M O P R V 2 3 — is the decomposition of another character;
    /// the only letter that is, K, is the Kelvin sign's). `RegisterClassifyTests` compares this with the `String`
    /// switch it replaced.
    static func classify(_ registers: [Register]) -> (Categories, excluded: Bool) {
        var c: Categories = []
        var excluded = false
        for r in registers {
            switch codeWord(r.code) {
            case fourCC("RVHR"): c.insert(.veryHighRosh); excluded = true
            case fourCC("RHRH"): c.insert(.highRosh)
            case fourCC("MAPP"):
                if let level = r.level, isM2orM3(level) { c.insert(.mappa23); excluded = true }
            case fourCC("RCPR"): c.insert(.childSafeguarding); excluded = true
            case fourCC("RCCO"), fourCC("RCHD"): c.insert(.childSafeguarding)
            case fourCC("ADVP"): c.insert(.domesticAbuse); excluded = true
            case fourCC("ADVV"): c.insert(.domesticAbuse)
            default: break
            }
        }
        return (c, excluded)
    }

    /// `fourCC` of a code of four UTF-8 bytes, 0 for any other length (no code the switch above names is 0).
    @inline(__always) private static func codeWord(_ code: String) -> UInt32 {
        var code = code
        return code.withUTF8 { b in b.count == 4 ? fourCC(UnsafeRawBufferPointer(b)) : 0 }
    }

    /// Whether the level is "M2" or "M3" (as bytes; see `classify`).
    @inline(__always) private static func isM2orM3(_ level: String) -> Bool {
        var level = level
        return level.withUTF8 { b in b.count == 2 && b[0] == UInt8(ascii: "M") && (b[1] == UInt8(ascii: "2") || b[1] == UInt8(ascii: "3")) }
    }
}

/// Whether `n` bytes at `a` and `b` are equal (word loads, no call).
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count n: Int) -> Bool {
    if n >= 8 {
        var i = 0
        while i + 8 < n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    if n >= 4 {
        return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
            && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
    }
    if n >= 2 {
        return a.loadUnaligned(as: UInt16.self) == b.loadUnaligned(as: UInt16.self)
            && a.loadUnaligned(fromByteOffset: n - 2, as: UInt16.self) == b.loadUnaligned(fromByteOffset: n - 2, as: UInt16.self)
    }
    var i = 0
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

@inline(__always)
func bytesEqual(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    let n = s.utf8CodeUnitCount
    return b.count == n && (n == 0 || bytesEqual(b.baseAddress!, UnsafeRawPointer(s.utf8Start), count: n))
}

@inline(__always)
func bytesEqual(_ b: UnsafeRawBufferPointer, _ s: String) -> Bool {
    var s = s
    return s.withUTF8 { u in u.count == b.count && (u.count == 0 || memcmp(u.baseAddress!, b.baseAddress!, u.count) == 0) }
}

/// events.md, registrations: `registerLevelCode` is, "for `MAPP`: `M1`, `M2` or `M3`". A MAPP registration with
/// another level (`m2`, `2`, `M4`, ` M2`) was taken with no level the rules know, so its case silently lost R3's
/// protection; it is now invalid, as every other value outside its stated set (a bug hunter, session 46). Both
/// decoders ask, each with its own reader's `stringEquals`.
enum MAPPLevel {
    static let field = "additionalInformation.registerLevelCode"
    static let problem = "registerLevelCode is not M1, M2 or M3 for MAPP"

    /// Whether a registration of type `isType` ("does the type equal these bytes") with level `isLevel` breaks the rule.
    static func refused(type isType: (UnsafeRawBufferPointer) -> Bool, level isLevel: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        func equals(_ s: StaticString, _ test: (UnsafeRawBufferPointer) -> Bool) -> Bool {
            s.withUTF8Buffer { test(UnsafeRawBufferPointer($0)) }
        }
        guard equals("MAPP", isType) else { return false }
        return !(equals("M1", isLevel) || equals("M2", isLevel) || equals("M3", isLevel))
    }
}
