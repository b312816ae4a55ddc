import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// events.md date-times, rules.md dates and business days.
@Suite("Time: RFC 3339, local dates, business days", .computing)
struct TimeTests {
    static let accepted: [(String, String)] = [
        ("2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z"),
        ("2026-03-02t10:00:00z", "2026-03-02T10:00:00Z"),
        ("2026-03-02T10:00:00.1Z", "2026-03-02T10:00:00.100Z"),
        ("2026-03-02T10:00:00.12Z", "2026-03-02T10:00:00.120Z"),
        ("2026-03-02T10:00:00.123Z", "2026-03-02T10:00:00.123Z"),
        ("2026-03-02T10:00:00.1239Z", "2026-03-02T10:00:00.123Z"),
        ("2026-03-02T10:00:00.123999999Z", "2026-03-02T10:00:00.123Z"),
        ("2026-03-02T10:00:00.000Z", "2026-03-02T10:00:00Z"),
        ("2026-03-02T10:00:00.000000001Z", "2026-03-02T10:00:00Z"),
        ("2026-03-02T10:00:00.001Z", "2026-03-02T10:00:00.001Z"),
        ("2026-03-02T10:00:00+01:00", "2026-03-02T09:00:00Z"),
        ("2026-03-02T00:30:00+01:00", "2026-03-01T23:30:00Z"),
        ("2026-03-02T10:00:00-05:30", "2026-03-02T15:30:00Z"),
        ("2026-03-02T10:00:00+00:00", "2026-03-02T10:00:00Z"),
        ("2026-03-02T10:00:00-00:00", "2026-03-02T10:00:00Z"),
        ("2026-03-02T10:00:00.5+23:59", "2026-03-01T10:01:00.500Z"),
        ("2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59.999Z"),
        ("2026-12-31T23:59:59-01:00", "2027-01-01T00:59:59Z"),
    ]

    @Test("accepted forms, truncated to the millisecond; output UTC with .sss only when not zero", arguments: accepted)
    func accepts(input: String, output: String) throws {
        let m = try #require(RFC3339.parse(input))
        #expect(RFC3339.format(m) == output)
    }

    static let rejected = [
        "2026-03-02 10:00:00Z", "2026-03-02T10:00:60Z", "2026-03-02T10:00:00.1234567890Z", "2026-03-02T10:00:00",
        "2026-03-02T10:00:00.Z", "2026-03-02T10:00Z", "2026-3-02T10:00:00Z", "2026-02-29T10:00:00Z",
        "2026-04-31T10:00:00Z", "2026-13-01T10:00:00Z", "2026-00-01T10:00:00Z", "2026-03-00T10:00:00Z",
        "2026-03-02T24:00:00Z", "2026-03-02T10:60:00Z", "2026-03-02T10:00:00+1:00", "2026-03-02T10:00:00+01",
        "2026-03-02T10:00:00+0100", "2026-03-02T10:00:00+24:00", "2026-03-02T10:00:00+01:60", "2026-03-02T10:00:00Z ",
        " 2026-03-02T10:00:00Z", "2026-03-02T10:00:00UTC", "2026-03-02T10:00:00GMT", "2026-03-02T10:00:00.1.2Z",
        "2026-03-02T10:00:00,5Z", "", "2026-03-02", "+2026-03-02T10:00:00Z", "2026-03-02T10:00:00Zz",
        "2026-03-02T10:00:00+01:00Z", "2026-03-02_10:00:00Z", "2026/03/02T10:00:00Z", "2026-03-02T10:00:0aZ",
    ]

    @Test("rejected forms", arguments: rejected)
    func rejects(input: String) {
        #expect(RFC3339.parse(input) == nil)
    }

    @Test("times in alerts go through the same parser: truncation and offset show in occurredAt")
    func endToEnd() {
        let h = Harness()
        let body = RawEvent.contact().info("contactStart", q("2026-03-02T11:00:00.123456+01:00")).text
        #expect(h.send(body).first?.occurredAt == "2026-03-02T10:00:00.123Z")
        let h2 = Harness()
        let body2 = RawEvent.contact().info("contactStart", q("2026-03-02t10:00:00.000z")).info("contactId", "2").text
        #expect(h2.send(body2).first?.occurredAt == "2026-03-02T10:00:00Z")
    }

    @Test("Europe/London local dates around the BST changes", arguments: [
        ("2026-03-29T00:59:59Z", "2026-03-29"), ("2026-03-29T01:00:00Z", "2026-03-29"),
        ("2026-03-29T22:59:59Z", "2026-03-29"), ("2026-03-29T23:00:00Z", "2026-03-30"),
        ("2026-03-28T23:59:59Z", "2026-03-28"), ("2026-03-28T23:00:00Z", "2026-03-28"),
        ("2026-10-24T22:59:59Z", "2026-10-24"), ("2026-10-24T23:00:00Z", "2026-10-25"),
        ("2026-10-25T23:30:00Z", "2026-10-25"), ("2026-10-26T00:00:00Z", "2026-10-26"),
        ("2026-07-01T23:30:00Z", "2026-07-02"), ("2026-01-01T23:30:00Z", "2026-01-01"),
    ])
    func londonDates(instant: String, date: String) {
        let zone = ZoneCalendar(identifier: "Europe/London")!
        #expect(zone.date(of: t(instant)).description == date)
    }

    @Test("calendar months back with month-end clamping", arguments: [
        ("2026-03-31", 1, "2026-02-28"), ("2024-03-31", 1, "2024-02-29"), ("2026-03-02", 12, "2025-03-02"),
        ("2024-02-29", 12, "2023-02-28"), ("2026-01-31", 2, "2025-11-30"), ("2026-05-31", 1, "2026-04-30"),
        ("2026-01-15", 13, "2024-12-15"), ("2026-12-31", 10, "2026-02-28"),
    ])
    func months(date: String, n: Int, expected: String) {
        #expect(LocalDate(parsing: date)!.subtracting(months: n).description == expected)
    }

    @Test("Nth business day after a date, skipping weekends and default bank holidays", arguments: [
        ("2026-03-02", 8, "2026-03-12"), ("2026-03-06", 1, "2026-03-09"), ("2026-04-02", 1, "2026-04-07"),
        ("2026-03-30", 8, "2026-04-13"), ("2026-12-24", 1, "2026-12-29"), ("2026-12-24", 3, "2026-12-31"),
        ("2027-12-24", 1, "2027-12-29"), ("2026-08-28", 1, "2026-09-01"), ("2026-03-07", 1, "2026-03-09"),
    ])
    func businessDays(date: String, n: Int, expected: String) {
        let cal = BusinessCalendar(holidays: EngineSettings.defaultBankHolidays)
        #expect(cal.businessDay(n, after: LocalDate(parsing: date)!).description == expected)
    }

    @Test("the default bank-holiday list is the one in rules.md")
    func defaultHolidays() {
        let text = """
        2024-01-01 2024-03-29 2024-04-01 2024-05-06 2024-05-27 2024-08-26 2024-12-25 2024-12-26
        2025-01-01 2025-04-18 2025-04-21 2025-05-05 2025-05-26 2025-08-25 2025-12-25 2025-12-26
        2026-01-01 2026-04-03 2026-04-06 2026-05-04 2026-05-25 2026-08-31 2026-12-25 2026-12-28
        2027-01-01 2027-03-26 2027-03-29 2027-05-03 2027-05-31 2027-08-30 2027-12-27 2027-12-28
        2028-01-03 2028-04-14 2028-04-17 2028-05-01 2028-05-29 2028-08-28 2028-12-25 2028-12-26
        """
        let dates = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { LocalDate(parsing: String($0))! }
        #expect(Set(dates) == Set(EngineSettings.defaultBankHolidays))
        #expect(dates.count == 40)
    }

    @Test("weekday: 2026-03-02 is a Monday, 2026-03-08 a Sunday")
    func weekday() {
        #expect(LocalDate(parsing: "2026-03-02")!.weekday == 0)
        #expect(LocalDate(parsing: "2026-03-08")!.weekday == 6)
        #expect(LocalDate(parsing: "1970-01-01")!.weekday == 3)
    }

    /// `floorDays`, which every conversion of an instant to a day uses (UTC text, local dates, packed contacts, the
    /// holiday-coverage warning): an instant before 1970 belongs to the day before the quotient truncated toward zero.
    @Test("days since 1970 round toward the past on both sides of the epoch", arguments: [
        (Int64(0), Int64(0)), (86_399_999, 0), (86_400_000, 1), (-1, -1), (-86_400_000, -1), (-86_400_001, -2),
        (1_772_409_600_000, 20_514), (-62_135_596_800_000, -719_162),
    ])
    func floorDaysAroundTheEpoch(instant: Int64, day: Int64) {
        #expect(floorDays(instant) == day)
        #expect(instant >= day * millisPerDay && instant < (day + 1) * millisPerDay)
    }

    /// `Engine.localDate(_:memo:)` (the watermark's and the retention cutoff's dates, engine pass 9) answers from the
    /// local day and offset span it last computed. Every 15 minutes over three years, and one millisecond either side,
    /// in zones whose offset changes at 01:00 UTC, at local midnight (Havana), by half an hour (Lord Howe), or never,
    /// a memo walked forward like the watermark and one thrown back and forth like other instants give the zone's date.
    /// A memo that keeps its date past the local midnight, or past the span's end, fails it.
    @Test("a local date remembered with its day equals the zone's, across midnights and offset changes",
          arguments: ["Europe/London", "America/Havana", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])
    func localDateMemo(zoneId: String) throws {
        var settings = EngineSettings()
        settings.timeZone = zoneId
        let engine = try Engine(settings: settings)
        let zone = try #require(ZoneCalendar(identifier: zoneId))
        var forward = DayMemo(), jumping = DayMemo()
        var rng = SplitMix64(seed: 11)
        var wrong: [String] = []
        var t = RFC3339.parse("2024-01-01T00:00:00Z")!
        let end = RFC3339.parse("2027-01-01T00:00:00Z")!
        var checked = 0
        while t < end {
            for u in [t - 1, t, t + 1] {
                if engine.localDate(u, memo: &forward) != zone.date(of: u) { wrong.append("forward \(RFC3339.format(u))") }
                // Another instant up to 400 days back or 20 ahead, now and then, through the second memo.
                let v = rng.below(4) == 0 ? u - Millis(rng.below(400 * 24)) * 3_600_000 + 20 * millisPerDay : u
                if engine.localDate(v, memo: &jumping) != zone.date(of: v) { wrong.append("jumping \(RFC3339.format(v))") }
                checked += 2
            }
            t += 15 * 60_000
        }
        #expect(checked > 600_000)
        #expect(wrong.isEmpty, "\(wrong.count) wrong dates, first \(wrong.prefix(5))")
    }
}
