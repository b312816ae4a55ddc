import Foundation
import Synchronization

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
public typealias Millis = Int64

public let millisPerDay: Int64 = 86_400_000

/// The day since 1970-01-01 that holds the instant `t`, rounded down (toward the past) for instants before 1970.
@inlinable @inline(__always)
public func floorDays(_ t: Millis) -> Int64 {
    let (q, r) = t.quotientAndRemainder(dividingBy: millisPerDay)
    return r < 0 ? q - 1 : q
}

/// A calendar date as days since 1970-01-01 (a local date in the rules' time zone).
public struct LocalDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var days: Int32
    public init(days: Int32) { self.days = days }

    public init?(year: Int, month: Int, day: Int) {
        guard month >= 1 && month <= 12 && day >= 1 && day <= Civil.daysInMonth(year, month) else { return nil }
        days = Int32(Civil.daysFromCivil(year, month, day))
    }

    /// Parses `YYYY-MM-DD`.
    public init?(parsing text: String) {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
              let y = Civil.digits(b, 0, 4), let m = Civil.digits(b, 5, 2), let d = Civil.digits(b, 8, 2)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public static func < (a: LocalDate, b: LocalDate) -> Bool { a.days < b.days }

    public var components: (year: Int, month: Int, day: Int) { Civil.civilFromDays(Int(days)) }

    /// Monday = 0 … Sunday = 6.
    public var weekday: Int { ((Int(days) % 7) + 7 + 3) % 7 }

    public func adding(days n: Int) -> LocalDate { LocalDate(days: days + Int32(n)) }

    /// The same day `months` calendar months earlier (the month's last day where that day does not exist).
    public func subtracting(months: Int) -> LocalDate {
        let (y, m, d) = components
        var total = y * 12 + (m - 1) - months
        let ny = total >= 0 ? total / 12 : (total - 11) / 12
        total -= ny * 12
        let nm = total + 1
        let nd = min(d, Civil.daysInMonth(ny, nm))
        return LocalDate(days: Int32(Civil.daysFromCivil(ny, nm, nd)))
    }

    public var description: String {
        var out: [UInt8] = []
        Civil.appendDate(&out, Int(days))
        return String(decoding: out, as: UTF8.self)
    }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's algorithms), shared with the tools.
public enum Civil {
    public static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return isLeap(y) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    @inline(__always)
    static func digits(_ b: [UInt8], _ at: Int, _ n: Int) -> Int? {
        var v = 0
        for k in at..<(at + n) {
            let c = b[k]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int(c - 48)
        }
        return v
    }

    static func appendDigits(_ out: inout [UInt8], _ value: Int, width: Int) {
        var v = value
        var tmp: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &tmp) { buf in
            var k = width - 1
            while k >= 0 {
                buf[k] = UInt8(48 + v % 10)
                v /= 10
                k -= 1
            }
            out.append(contentsOf: UnsafeRawBufferPointer(start: buf.baseAddress, count: width))
        }
    }

    static func appendDate(_ out: inout [UInt8], _ days: Int) {
        let (y, m, d) = civilFromDays(days)
        appendDigits(&out, y, width: 4)
        out.append(UInt8(ascii: "-"))
        appendDigits(&out, m, width: 2)
        out.append(UInt8(ascii: "-"))
        appendDigits(&out, d, width: 2)
    }
}

public enum RFC3339 {
    /// Parses an RFC 3339 date-time (`T`/`t`, `Z`/`z`/`±hh:mm`, optional 1–9 fraction digits) to milliseconds,
    /// truncating finer digits. Rejects a space separator and second 60.
    public static func parse(_ s: UnsafeRawBufferPointer) -> Millis? {
        let n = s.count
        guard n >= 20, let base = s.baseAddress else { return nil }
        let p = base.assumingMemoryBound(to: UInt8.self)
        @inline(__always) func num(_ at: Int, _ len: Int) -> Int? {
            var v = 0
            for k in at..<(at + len) {
                let c = p[k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let year = num(0, 4), p[4] == UInt8(ascii: "-"), let month = num(5, 2), p[7] == UInt8(ascii: "-"),
              let day = num(8, 2), p[10] == UInt8(ascii: "T") || p[10] == UInt8(ascii: "t"),
              let hour = num(11, 2), p[13] == UInt8(ascii: ":"), let minute = num(14, 2), p[16] == UInt8(ascii: ":"),
              let second = num(17, 2)
        else { return nil }
        guard month >= 1 && month <= 12, day >= 1 && day <= Civil.daysInMonth(year, month),
              hour <= 23, minute <= 59, second <= 59 else { return nil }
        var i = 19
        var millis = 0
        if p[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < n, p[i] >= 48 && p[i] <= 57 {
                if count < 3 { millis = millis * 10 + Int(p[i] - 48) }
                count += 1
                i += 1
            }
            guard count >= 1 && count <= 9 else { return nil }
            if count < 3 { for _ in count..<3 { millis *= 10 } }
        }
        guard i < n else { return nil }
        var offsetMinutes = 0
        switch p[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard i + 6 == n, let oh = num(i + 1, 2), p[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2),
                  oh <= 23, om <= 59 else { return nil }
            offsetMinutes = (oh * 60 + om) * (p[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        default:
            return nil
        }
        guard i == n else { return nil }
        let days = Int64(Civil.daysFromCivil(year, month, day))
        let secs = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        let instant = secs * 1000 + Int64(millis)
        // An offset can carry a local time at either end of 0000…9999 out of those years in UTC, where the output
        // (UTC, four-digit years) cannot write it: such a date-time is refused like any other unusable one.
        guard instant >= Self.earliest && instant <= Self.latest else { return nil }
        return instant
    }

    /// The first and the last instant whose UTC form has a four-digit year: 0000-01-01T00:00:00.000Z and
    /// 9999-12-31T23:59:59.999Z.
    public static let earliest: Millis = -62_167_219_200_000
    public static let latest: Millis = 253_402_300_799_999

    public static func parse(_ text: String) -> Millis? {
        var t = text
        return t.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// Appends the UTC form: `YYYY-MM-DDTHH:MM:SSZ`, with `.sss` only when the milliseconds are not zero.
    public static func append(_ out: inout [UInt8], _ t: Millis) {
        let days = floorDays(t)
        let rem = Int(t - days * millisPerDay)
        let (y, m, d) = Civil.civilFromDays(Int(days))
        // Written into a stack buffer and appended once.
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { buf in
            func digits(_ value: Int, at start: Int, width: Int) {
                var v = value
                var k = start + width - 1
                while k >= start {
                    buf[k] = UInt8(48 + v % 10)
                    v /= 10
                    k -= 1
                }
            }
            digits(y, at: 0, width: 4)
            buf[4] = UInt8(ascii: "-")
            digits(m, at: 5, width: 2)
            buf[7] = UInt8(ascii: "-")
            digits(d, at: 8, width: 2)
            buf[10] = UInt8(ascii: "T")
            digits(rem / 3_600_000, at: 11, width: 2)
            buf[13] = UInt8(ascii: ":")
            digits((rem / 60_000) % 60, at: 14, width: 2)
            buf[16] = UInt8(ascii: ":")
            digits((rem / 1000) % 60, at: 17, width: 2)
            var n = 19
            if rem % 1000 != 0 {
                buf[19] = UInt8(ascii: ".")
                digits(rem % 1000, at: 20, width: 3)
                n = 23
            }
            buf[n] = UInt8(ascii: "Z")
            out.append(contentsOf: UnsafeRawBufferPointer(start: buf.baseAddress, count: n + 1))
        }
    }

    public static func format(_ t: Millis) -> String {
        var out: [UInt8] = []
        append(&out, t)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Local dates in one time zone, from a table of UTC-offset transitions computed once at start-up.
public struct ZoneCalendar: Sendable {
    /// Sorted transition instants and the offset (ms) in force from each one.
    private let starts: [Millis]
    private let offsets: [Int64]
    public let identifier: String

    /// Tables already built, by zone identifier: building one walks three centuries of transitions through
    /// Foundation (milliseconds), and every engine, test and fuzz input would otherwise pay it again.
    private static let built = Mutex<[String: ZoneCalendar]>([:])

    public init?(identifier: String) {
        if let known = Self.built.withLock({ $0[identifier] }) {
            self = known
            return
        }
        guard let table = ZoneCalendar(building: identifier) else { return nil }
        Self.built.withLock { $0[identifier] = table }
        self = table
    }

    private init?(building identifier: String) {
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        self.identifier = identifier
        var starts: [Millis] = [Millis.min]
        var offsets: [Int64] = []
        // The offset before the first transition after 1900.
        var cursor = Date(timeIntervalSince1970: -2_208_988_800)
        offsets.append(Int64(zone.secondsFromGMT(for: cursor)) * 1000)
        let limit = Date(timeIntervalSince1970: 7_258_118_400) // 2200-01-01
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next < limit {
            let ms = Millis((next.timeIntervalSince1970 * 1000).rounded())
            starts.append(ms)
            offsets.append(Int64(zone.secondsFromGMT(for: next)) * 1000)
            cursor = next
        }
        self.starts = starts
        self.offsets = offsets
    }

    /// The UTC offset in force at `t`, in milliseconds.
    @inline(__always)
    public func offset(at t: Millis) -> Int64 {
        // Binary search for the last start <= t.
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) >> 1
            if starts[mid] <= t { lo = mid } else { hi = mid - 1 }
        }
        return offsets[lo]
    }

    /// The span of instants around `t` with one UTC offset: `from ..< until` (bounds of the transition table).
    func span(at t: Millis) -> ZoneSpan {
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) >> 1
            if starts[mid] <= t { lo = mid } else { hi = mid - 1 }
        }
        return ZoneSpan(from: starts[lo], until: lo + 1 < starts.count ? starts[lo + 1] : .max, offset: offsets[lo])
    }

    /// The local date of an instant.
    @inline(__always)
    public func date(of t: Millis) -> LocalDate {
        let local = t + offset(at: t)
        return LocalDate(days: Int32(floorDays(local)))
    }
}

/// Business days: Monday to Friday except the configured bank holidays.
public struct BusinessCalendar: Sendable {
    public let holidays: Set<LocalDate>
    public init(holidays: [LocalDate]) { self.holidays = Set(holidays) }

    public func isBusinessDay(_ d: LocalDate) -> Bool { d.weekday < 5 && !holidays.contains(d) }

    /// The Nth business day after `d`.
    public func businessDay(_ n: Int, after d: LocalDate) -> LocalDate {
        var day = d
        var count = 0
        while count < n {
            day = day.adding(days: 1)
            if isBusinessDay(day) { count += 1 }
        }
        return day
    }
}

/// Instants `from ..< until` share the UTC offset `offset` (a stretch between two transitions of a zone).
/// A local date and the instants `from..<until` that have it, within one offset span (`Engine.localDate(_:memo:)`);
/// empty at first.
struct DayMemo {
    var from: Millis = 1
    var until: Millis = 0
    var date = LocalDate(days: 0)
}

struct ZoneSpan {
    var from: Millis = 1
    var until: Millis = 0
    var offset: Int64 = 0

    /// The local date of `t`, when the span holds it.
    @inline(__always) func date(of t: Millis) -> LocalDate? {
        guard t >= from && t < until else { return nil }
        let local = t + offset
        return LocalDate(days: Int32(floorDays(local)))
    }
}
