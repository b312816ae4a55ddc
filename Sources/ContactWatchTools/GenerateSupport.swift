// Support for the synthetic stream generator (`Generate.swift`): a seeded PRNG, a civil calendar
// with Europe/London summer time and the England and Wales bank holidays, and a byte-level NDJSON
// line builder. Everything here is deterministic and free of Foundation, so the same options give
// the same bytes on every machine and locale.

import ContactWatchEngine

/// xoshiro256** seeded through SplitMix64. Never the system generator: the stream must be reproducible.
struct GenRandom {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&x)
        s1 = splitMix(&x)
        s2 = splitMix(&x)
        s3 = splitMix(&x)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    mutating func next() -> UInt64 {
        let result = GenRandom.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = GenRandom.rotl(s3, 45)
        return result
    }

    /// Uniform in `0..<n` (n > 0), by the multiply-high method.
    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Uniform in `lo...hi`.
    mutating func range(_ lo: Int, _ hi: Int) -> Int { lo + below(hi - lo + 1) }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// Picks an index according to `weights` (which need not sum to 1).
    mutating func weighted(_ weights: [Double]) -> Int {
        var total = 0.0
        for w in weights { total += w }
        var r = unit() * total
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return weights.count - 1
    }
}

/// The generator's view of dates, on the engine's calendar: days counted from 1970-01-01 (day 0), instants in seconds
/// since the epoch (UTC), business days from the engine's default England and Wales bank holidays, and Europe/London
/// wall-clock times through the engine's `ZoneCalendar`. No calendar rule or holiday list of its own.
enum GenCalendar {
    static let business = BusinessCalendar(holidays: EngineSettings.defaultBankHolidays)
    static let london = ZoneCalendar(identifier: "Europe/London")!

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) { Civil.civilFromDays(days) }

    /// Parses `YYYY-MM-DD` (exactly, from 1970) into a day number.
    static func parseDate(_ text: String) -> Int? {
        guard text.utf8.count == 10, let d = LocalDate(parsing: text), d.days >= 0 else { return nil }
        return Int(d.days)
    }

    static func isBusinessDay(_ day: Int) -> Bool { business.isBusinessDay(LocalDate(days: Int32(day))) }

    static func nextBusinessDay(onOrAfter day: Int) -> Int {
        var d = day
        while !isBusinessDay(d) { d += 1 }
        return d
    }

    /// The `n`th business day after `day` (n ≥ 0; n = 0 gives the first business day on or after `day`).
    static func addBusinessDays(_ day: Int, _ n: Int) -> Int {
        if n <= 0 { return nextBusinessDay(onOrAfter: day) }
        return Int(business.businessDay(n, after: LocalDate(days: Int32(day))).days)
    }

    /// The `n`th business day before `day`.
    static func subtractBusinessDays(_ day: Int, _ n: Int) -> Int {
        var d = day
        var k = 0
        while k < n {
            d -= 1
            if isBusinessDay(d) { k += 1 }
        }
        return d
    }

    /// The UTC instant of a Europe/London wall-clock time (`localSeconds` after local midnight of `day`); the
    /// generator's times (08:00–17:30) are never in a transition hour.
    static func londonToUTC(day: Int, localSeconds: Int) -> Int64 {
        let naive = Int64(day) * 86400 + Int64(localSeconds)
        return naive - london.offset(at: naive * 1000) / 1000
    }
}

/// One NDJSON line as bytes, written with the engine's JSON writer (`JSONOut`, the one that writes the daemon's
/// alerts): the generator adds only the CRN's fixed shape.
struct GenLine {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(1024) }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    mutating func raw(_ s: StaticString) { JSONOut.raw(&bytes, s) }

    /// A JSON string.
    mutating func string(_ s: String) { JSONOut.string(&bytes, s) }

    mutating func int(_ value: Int) { JSONOut.int(&bytes, value) }

    /// A quoted RFC 3339 UTC date-time of an instant in whole seconds: `"2026-03-04T10:20:00Z"`.
    mutating func time(_ t: Int64) { JSONOut.time(&bytes, t * 1000) }

    /// A CRN: one capital letter and six digits.
    mutating func crn(_ code: Int) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(65 + code / 1_000_000))
        var rest = code % 1_000_000
        var divisor = 100_000
        while divisor > 0 {
            bytes.append(UInt8(48 + rest / divisor))
            rest %= divisor
            divisor /= 10
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
