/// Every setting of rules.md and events.md, with its default. Names in comments are the configuration keys.
public struct EngineSettings: Sendable, Equatable {
    /// `rules.timeZone`
    public var timeZone: String = "Europe/London"
    /// `rules.bankHolidays` (a configured list replaces the default one)
    public var bankHolidays: [LocalDate] = EngineSettings.defaultBankHolidays
    /// `rules.videoCountsAsFaceToFace`
    public var videoCountsAsFaceToFace: Bool = false
    /// `rules.nonCompliance.windowMonths`
    public var nonComplianceWindowMonths: Int = 12
    /// `rules.nonCompliance.enforcementDeadlineBusinessDays`
    public var enforcementDeadlineBusinessDays: Int = 8
    /// `rules.telephoneOnly.limitDays`
    public var telephoneOnlyLimitDays: Int = 28
    /// `rules.telephoneOnly.priorityLimitDays`
    public var telephoneOnlyPriorityLimitDays: Int = 14
    /// `rules.remoteContact.enabled`
    public var remoteContactEnabled: Bool = true
    /// `rules.noPrivacy.minimumSeverity`
    public var noPrivacyMinimumSeverity: Severity = .low
    /// `rules.complianceRate.windowDays`
    public var complianceRateWindowDays: Int = 90
    /// `rules.complianceRate.minimumSample`
    public var complianceRateMinimumSample: Int = 50
    /// `rules.complianceRate.threshold`
    public var complianceRateThreshold: Double = 0.75
    /// `rules.complianceRate.hysteresis`
    public var complianceRateHysteresis: Double = 0.02
    /// `rules.outcomeOverdue.enabled` (R7; off by default in this release)
    public var outcomeOverdueEnabled: Bool = false
    /// `rules.outcomeOverdue.businessDays`
    public var outcomeOverdueBusinessDays: Int = 5
    /// `input.maxMessageBytes`
    public var maxMessageBytes: Int = 65536
    /// `input.contactRetentionDays`
    public var contactRetentionDays: Int = 400
    /// `input.maxFutureSkewSeconds`
    public var maxFutureSkewSeconds: Int = 86400

    public init() {}

    public static let defaultBankHolidays: [LocalDate] = [
        "2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26", "2024-12-25", "2024-12-26",
        "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25", "2025-12-25", "2025-12-26",
        "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
        "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28",
        "2028-01-03", "2028-04-14", "2028-04-17", "2028-05-01", "2028-05-29", "2028-08-28", "2028-12-25", "2028-12-26",
    ].map { LocalDate(parsing: $0)! }

    /// A setting that cannot be used, named by its configuration key.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var key: String
        public var problem: String
        public init(key: String, problem: String) {
            self.key = key
            self.problem = problem
        }
        public var description: String { "\(key): \(problem)" }
    }

    /// The largest `input.maxMessageBytes`: the body's parser keeps 32-bit offsets, and a larger setting passed
    /// `--check-config` and let one body of 2³¹ − 1 bytes kill the daemon on that parser's precondition (a fault
    /// tester, session 34).
    public static let maxMessageBytesLimit = Int(Int32.max) - 1

    /// The largest duration a setting may give, in days (and business days), months and seconds: a century.
    public static let maxDays = 36_525
    public static let maxMonths = 1_200
    public static let maxSeconds = 36_525 * 86_400

    /// Checks every setting; the first problem names its key.
    public func validate() throws(Problem) {
        if let first = problems().first { throw first }
    }

    /// The one way a whole-number setting's range is checked and said, by the engine's settings and the daemon's:
    /// nil when `value` is in `range`, else "must be an integer from MIN to MAX (got V)". `lowerBoundMeans` says what
    /// the lowest value does when that is not plain ("no limit": "from 0 (no limit) to …").
    public static func rangeProblem(_ value: Int, _ range: ClosedRange<Int>, lowerBoundMeans: String? = nil) -> String? {
        if range.contains(value) { return nil }
        let lower = lowerBoundMeans.map { "\(range.lowerBound) (\($0))" } ?? "\(range.lowerBound)"
        return "must be an integer from \(lower) to \(range.upperBound) (got \(value))"
    }

    /// As `rangeProblem(_:_:lowerBoundMeans:)` for a setting with no upper bound: "must be an integer of at least
    /// MIN (got V)".
    public static func rangeProblem(_ value: Int, _ range: PartialRangeFrom<Int>) -> String? {
        range.contains(value) ? nil : "must be an integer of at least \(range.lowerBound) (got \(value))"
    }

    /// Every setting that cannot be used, in the order `validate` checks them (a configuration check reports all).
    public func problems() -> [Problem] {
        var out: [Problem] = []
        if ZoneCalendar(identifier: timeZone) == nil {
            out.append(Problem(key: "rules.timeZone", problem: "\"\(timeZone)\" is not a known time zone identifier"))
        }
        func check(_ key: String, _ problem: String?) {
            if let problem { out.append(Problem(key: key, problem: problem)) }
        }
        // A duration is at most a century (`Self.maxDays` and the like): the rules compute with these values in
        // 64-bit milliseconds and 32-bit day numbers, and count business days one day at a time, so a larger one
        // trapped on overflow or stalled the processing loop at the first event that used it.
        check("rules.nonCompliance.windowMonths", Self.rangeProblem(nonComplianceWindowMonths, 1...Self.maxMonths))
        check("rules.nonCompliance.enforcementDeadlineBusinessDays", Self.rangeProblem(enforcementDeadlineBusinessDays, 1...Self.maxDays))
        check("rules.outcomeOverdue.businessDays", Self.rangeProblem(outcomeOverdueBusinessDays, 1...Self.maxDays))
        check("rules.telephoneOnly.limitDays", Self.rangeProblem(telephoneOnlyLimitDays, 1...Self.maxDays))
        check("rules.telephoneOnly.priorityLimitDays", Self.rangeProblem(telephoneOnlyPriorityLimitDays, 1...Self.maxDays))
        check("rules.complianceRate.windowDays", Self.rangeProblem(complianceRateWindowDays, 1...Self.maxDays))
        check("rules.complianceRate.minimumSample", Self.rangeProblem(complianceRateMinimumSample, 1...))
        check("input.maxMessageBytes", Self.rangeProblem(maxMessageBytes, 64...Self.maxMessageBytesLimit))
        check("input.contactRetentionDays", Self.rangeProblem(contactRetentionDays, 1...Self.maxDays))
        check("input.maxFutureSkewSeconds", Self.rangeProblem(maxFutureSkewSeconds, 0...Self.maxSeconds))
        if !(complianceRateThreshold > 0 && complianceRateThreshold <= 1) {
            out.append(Problem(key: "rules.complianceRate.threshold", problem: "must be a number above 0 and at most 1 (got \(complianceRateThreshold))"))
        }
        if !(complianceRateHysteresis >= 0 && complianceRateHysteresis < 1) {
            out.append(Problem(key: "rules.complianceRate.hysteresis", problem: "must be a number from 0 to below 1 (got \(complianceRateHysteresis))"))
        }
        if contactRetentionDays < complianceRateWindowDays {
            out.append(Problem(key: "input.contactRetentionDays", problem: "must be at least rules.complianceRate.windowDays (\(complianceRateWindowDays); got \(contactRetentionDays)): a contact is forgotten with its compliance contribution, so a shorter memory would leave the window's oldest days uncounted"))
        }
        return out
    }

    /// `input.contactRetentionDays` shorter than R1's window, which the daemon's configuration refuses (the engine
    /// itself takes it: its tests forget contacts within days). A contact is forgotten with its failure (and the
    /// warning it carried), so such a memory counted fewer failures than the configured window holds, and raised
    /// warning-due where the policy gives breach-due, its reason still saying "in 24 months" (the configuration's
    /// hunter, session 45). Needed: the longest span of that many calendar months in dates, and two days more, since
    /// contacts are forgotten by instants: two failures on dates the window apart lie up to a day and the hours of a
    /// time-zone shift more apart (a reviewer, session 45, showed 366 days forgetting a failure on the window's first
    /// date). At most a century (`maxDays`): a window of 1,200 months cannot be covered to the day. A failure that
    /// arrives late, well behind W, can still find older ones forgotten: the retention counts back from W
    /// (events.md). (No month is longer than 31 days: a retention of 31 a month and 2 more is enough uncounted.)
    public func retentionShorterThanR1Window() -> Problem? {
        guard nonComplianceWindowMonths >= 1 && nonComplianceWindowMonths <= Self.maxMonths
            && contactRetentionDays < nonComplianceWindowMonths * 31 + 2 else { return nil }
        let needed = min(Self.longestSpanDays(months: nonComplianceWindowMonths) + 2, Self.maxDays)
        guard contactRetentionDays < needed else { return nil }
        return Problem(key: "input.contactRetentionDays", problem: "must be at least \(needed) days with rules.nonCompliance.windowMonths \(nonComplianceWindowMonths) (got \(contactRetentionDays)): a contact is forgotten with its failure, so a shorter memory would leave the window's oldest failures uncounted")
    }

    /// The most days from a date's same day `months` calendar months earlier (`LocalDate.subtracting(months:)`) to it,
    /// over every month of a 400-year cycle of the calendar: 366 for 12 months, 31 for one. For a date in month M on
    /// day d, the span is the days from the first of the earlier month M' to the first of M, and, where d is past M''s
    /// last day (the earlier date is then that last day), d less M''s length: largest on M's last day.
    static func longestSpanDays(months: Int) -> Int {
        // The first day of a month given as year * 12 + (month - 1) (positive here: from year 1900 on).
        func first(_ monthIndex: Int) -> Int { Civil.daysFromCivil(monthIndex / 12, monthIndex % 12 + 1, 1) }
        var longest = 0
        for month in (2000 * 12)..<(2400 * 12) {
            let earlier = month - months
            let length = first(month + 1) - first(month)
            let earlierLength = first(earlier + 1) - first(earlier)
            longest = max(longest, first(month) - first(earlier) + max(0, length - earlierLength))
        }
        return longest
    }
}
