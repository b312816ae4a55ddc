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

/// Days are counted from 1970-01-01 (day 0); instants are seconds since the epoch, UTC.
enum GenCalendar {
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int { Civil.daysFromCivil(year, month, day) }

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) { Civil.civilFromDays(days) }

    /// Parses `YYYY-MM-DD` (exactly) into a day number.
    static func parseDate(_ text: String) -> Int? {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let y = number(0..<4), let m = number(5..<7), let d = number(8..<10),
              y >= 1970, (1...12).contains(m), d >= 1 else { return nil }
        let days = daysFromCivil(year: y, month: m, day: d)
        let back = civilFromDays(days)
        guard back.year == y, back.month == m, back.day == d else { return nil }
        return days
    }

    /// 0 = Monday ... 6 = Sunday.
    static func weekday(_ day: Int) -> Int {
        let w = (day + 3) % 7
        return w < 0 ? w + 7 : w
    }

    /// The England and Wales bank holidays 2024–2028 (the default list of rules.md).
    static let bankHolidayDates: [String] = [
        "2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26", "2024-12-25", "2024-12-26",
        "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25", "2025-12-25", "2025-12-26",
        "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
        "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28",
        "2028-01-03", "2028-04-14", "2028-04-17", "2028-05-01", "2028-05-29", "2028-08-28", "2028-12-25", "2028-12-26",
    ]

    static let bankHolidays: Set<Int> = Set(bankHolidayDates.compactMap { parseDate($0) })

    static func isBusinessDay(_ day: Int) -> Bool {
        weekday(day) < 5 && !bankHolidays.contains(day)
    }

    static func nextBusinessDay(onOrAfter day: Int) -> Int {
        var d = day
        while !isBusinessDay(d) { d += 1 }
        return d
    }

    /// The `n`th business day after `day` (n ≥ 0; n = 0 gives the first business day on or after `day`).
    static func addBusinessDays(_ day: Int, _ n: Int) -> Int {
        if n <= 0 { return nextBusinessDay(onOrAfter: day) }
        var d = day
        var k = 0
        while k < n {
            d += 1
            if isBusinessDay(d) { k += 1 }
        }
        return d
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

    private static func lastSunday(year: Int, month: Int) -> Int {
        let nextMonth = month == 12 ? daysFromCivil(year: year + 1, month: 1, day: 1)
            : daysFromCivil(year: year, month: month + 1, day: 1)
        let last = nextMonth - 1
        return last - (weekday(last) + 1) % 7
    }

    /// UK summer time (BST): from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October.
    static func isBST(utc: Int64) -> Bool {
        let day = Int(utc >= 0 ? utc / 86400 : (utc - 86399) / 86400)
        let year = civilFromDays(day).year
        let start = Int64(lastSunday(year: year, month: 3)) * 86400 + 3600
        let end = Int64(lastSunday(year: year, month: 10)) * 86400 + 3600
        return utc >= start && utc < end
    }

    /// The UTC instant of a Europe/London wall-clock time (`localSeconds` after local midnight of `day`).
    static func londonToUTC(day: Int, localSeconds: Int) -> Int64 {
        let naive = Int64(day) * 86400 + Int64(localSeconds)
        let summer = naive - 3600
        return isBST(utc: summer) ? summer : naive
    }
}

/// Builds one NDJSON line as bytes. All the generator's strings are ASCII codes, so nothing needs escaping.
struct GenLine {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(1024) }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A JSON string (ASCII, no escaping needed).
    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: s.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func int(_ value: Int) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            int(-value)
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(48 + value / divisor % 10))
            divisor /= 10
        }
    }

    @inline(__always)
    private mutating func pad(_ value: Int, width: Int) {
        var v = value
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(48 + (v / divisor) % 10))
            v %= divisor
            divisor /= 10
        }
    }

    /// A quoted RFC 3339 UTC date-time with whole seconds: `"2026-03-04T10:20:00Z"`.
    mutating func time(_ t: Int64) {
        let day = Int(t >= 0 ? t / 86400 : (t - 86399) / 86400)
        let secs = Int(t - Int64(day) * 86400)
        let (y, m, d) = GenCalendar.civilFromDays(day)
        bytes.append(UInt8(ascii: "\""))
        pad(y, width: 4)
        bytes.append(UInt8(ascii: "-"))
        pad(m, width: 2)
        bytes.append(UInt8(ascii: "-"))
        pad(d, width: 2)
        bytes.append(UInt8(ascii: "T"))
        pad(secs / 3600, width: 2)
        bytes.append(UInt8(ascii: ":"))
        pad(secs / 60 % 60, width: 2)
        bytes.append(UInt8(ascii: ":"))
        pad(secs % 60, width: 2)
        bytes.append(UInt8(ascii: "Z"))
        bytes.append(UInt8(ascii: "\""))
    }

    /// A CRN: one capital letter and six digits.
    mutating func crn(_ code: Int) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(65 + code / 1_000_000))
        pad(code % 1_000_000, width: 6)
        bytes.append(UInt8(ascii: "\""))
    }
}
