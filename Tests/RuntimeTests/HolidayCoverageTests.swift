import ContactWatchEngine
@testable import ContactWatchRuntime
import Testing

/// rules.bankHolidays' default list ends with 2028: from an event of 2029 on, every weekday counted as a business day
/// with nothing said (an uptime hunter, session 48). The daemon now says it once per run (`HolidayCoverage`).
@Suite("the events passing the last year of rules.bankHolidays are said once")
struct HolidayCoverageTests {
    static func millis(_ y: Int, _ m: Int, _ d: Int, hour: Int64 = 0) -> Int64 {
        Int64(LocalDate(year: y, month: m, day: d)!.days) * 86_400_000 + hour * 3_600_000
    }

    @Test("the default list: nothing up to the last minute of 2028, 2029 once, then nothing")
    func defaultList() {
        var watch = HolidayCoverage(EngineSettings.defaultBankHolidays)
        #expect(watch.lastYear == 2028)
        #expect(watch.passed(watermark: Int64.min) == nil)  // no event yet
        #expect(watch.passed(watermark: Self.millis(2026, 12, 7)) == nil)
        #expect(watch.passed(watermark: Self.millis(2028, 12, 31, hour: 23) + 3_599_999) == nil)
        #expect(watch.passed(watermark: Self.millis(2029, 1, 1)) == 2029)
        #expect(watch.passed(watermark: Self.millis(2029, 6, 1)) == nil)
        #expect(watch.passed(watermark: Self.millis(2031, 1, 1)) == nil)
    }

    @Test("a list of its own: its last year counts; a jump of years names the event's year; an empty list is never said")
    func ownLists() {
        var own = HolidayCoverage([LocalDate(year: 2030, month: 12, day: 25)!, LocalDate(year: 2027, month: 1, day: 1)!])
        #expect(own.lastYear == 2030)
        #expect(own.passed(watermark: Self.millis(2030, 12, 31)) == nil)
        #expect(own.passed(watermark: Self.millis(2033, 3, 1)) == 2033)
        var none = HolidayCoverage([])
        #expect(none.lastYear == nil)
        #expect(none.passed(watermark: Self.millis(2099, 1, 1)) == nil)
        var early = HolidayCoverage([LocalDate(year: 1969, month: 12, day: 25)!])
        #expect(early.passed(watermark: -1) == nil)  // 1969-12-31T23:59:59.999Z
        #expect(early.passed(watermark: 0) == 1970)
    }
}
