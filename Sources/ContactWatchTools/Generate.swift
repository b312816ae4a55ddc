/// The synthetic supervision-contact stream behind `contactwatch generate`.
///
/// Model (all randomness from one seeded xoshiro256** generator, so the same options give the same bytes):
///
/// - **Cases.** N cases with unique CRNs (a seeded permutation of `A000000`...`Z999999`), spread over eight PDUs,
///   each with a team, a practitioner (`staffCode`) and an office. Sentence types: community order 38%, suspended
///   sentence order 22%, licence 32%, post-sentence supervision 8% (custody cases also carry a NOMS number).
///   About 12% of cases start during the period, with an initial appointment.
/// - **Registers**, published as `probation-case.registration.added` at the start (or on a late case's first day):
///   every case has a RoSH level (`RLRH`/`RMRH`/`RHRH`/`RVHR`, higher on licence); about 30% domestic abuse
///   (`ADVP` perpetrator 24%, `ADVV` victim 6%); `MAPP` with `M1`/`M2`/`M3` (mostly licence cases); child
///   protection `RCPR`/`RCCO`/`RCHD`. About 4% of cases change later (`updated` MAPP level, `deregistered` child
///   protection or victim flag, an escalated RoSH, a new perpetrator flag), and a few registers are added in error
///   and `deleted`.
/// - **Contact frequency by risk**: weekly for high/very-high RoSH or MAPPA 2/3, fortnightly for medium RoSH or any
///   other priority category, every three to four weeks otherwise; appointments on business days (weekends and the
///   England and Wales bank holidays skipped) in office hours, Europe/London time (BST observed). Lower-risk cases
///   get mid-cycle telephone check-ins.
/// - **Modes**: mostly office visits (`COAP`), some home visits, doorstep, other-location and three-way meetings;
///   a share of appointments held by telephone (`COPT`/`CTOB`/`CTOA`), video (`COVC`) or text (`contactMode`
///   `TEXT_OR_ONLINE`) — rarely, against policy, on cases excluded from remote supervision (R3). About 5% of the
///   cases that may be supervised remotely drift into telephone-only supervision for 5–11 weeks (R2); three in four
///   of them then return to the office (resolving R2).
/// - **Settings**: office interviews mostly in private rooms; some PDUs use open booths (Birmingham heavily) and
///   shared public spaces; doorstep contacts (R4).
/// - **Outcomes**: attended and complied mostly; failures (`UAAB`, `AFTC`, `ATSH`), acceptable absences (`AAME`,
///   `AAFC`, ...), `AFTA` decided a few days later. Two PDUs have poor compliance: `N54WMB` throughout and `N50MAN`
///   for the first third of the period, after which it recovers (R5 raises for both, then resolves for `N50MAN`).
/// - **Versions** of one `contactId`: sometimes a planned version (no outcome) 1–7 business days before; the
///   outcome at the end of the appointment or, for about 8%, recorded late (1–8 business days after); enforcement
///   as a later version of the failed contact (`EA02`/`EA03`/`LCL` warnings, `EA08`/`IBR`/`BRE`/`EA11`/`IMB`
///   breaches and recalls, `NFA`, sometimes a code with no effect), chosen from the case's history as a
///   practitioner would (warning first, breach after a warning or a second failure, licence compliance letter or
///   recall on licence), typically 1–8 business days later, sometimes 9–14 (R6 raises, then resolves with R1),
///   sometimes never (R6 stays); a few failures reclassified as acceptable absences (R1 resolves `RECLASSIFIED`);
///   occasional warnings withdrawn (`EA06`) at a later contact; occasional corrections (another practitioner) and
///   exact duplicates (the same version sent twice).
///
/// - **Outstanding outcomes** (R7): about 2.5% of planned appointments never get an outcome; 3% are re-planned
///   3–8 business days after their date to a date 2–5 business days later, then held; of the `AFTA` decisions, 12%
///   never come and about a quarter come 6–15 business days later.
/// - **Late enforcement** (`lateEnforcement`, off by default): that share of the enforced failures gets its action
///   20–60 business days (four to twelve weeks) after the failure instead, effective when recorded — warnings and
///   breaches whose effective time is weeks after the contact that carries them, the situation where forgetting a
///   contact must take its action with it (issue 12). With 0 the stream is byte-identical to one made without it.
///
/// - **Contact ids** come from a block of the seed's own (seed 1: from 2,500,000,001), so streams of different seeds
///   can be replayed into one daemon; the same seed with another `start` is the same caseload and the same ids.
///
/// The stream covers `days` days from `start` (events that would fall after the last day are left out), sorted by
/// `occurredAt` (ties in creation order). Events carry no `publisherId`: `contactwatch replay --publisher-id` stamps
/// one. All times are whole seconds in UTC; choose `start` and `days` so that the stream ends before today, or the
/// daemon rejects future events.
public struct GeneratorOptions: Sendable {
    public var cases: Int
    public var days: Int
    public var seed: UInt64
    /// The first day, `YYYY-MM-DD`.
    public var start: String
    /// The share (0–1) of enforced failures whose action is recorded 20–60 business days after the failure.
    public var lateEnforcement: Double

    public init(cases: Int = 2000, days: Int = 120, seed: UInt64 = 1, start: String = "2026-01-05",
                lateEnforcement: Double = 0) {
        self.cases = cases
        self.days = days
        self.seed = seed
        self.start = start
        self.lateEnforcement = lateEnforcement
    }
}

public enum Generator {
    /// The largest `cases` and `days`.
    public static let maxCases = 1_000_000
    public static let maxDays = 3660
    /// The latest last day of a stream: appointment dates (`contactStart`) run up to 5 business days past the last
    /// day's events (a re-planned appointment), so a month is kept free before 9999-12-31; later, times were written
    /// with the year's last four digits (10000-01-07 as "0000-01-07", out of order).
    public static let latestLastDay = "9999-11-30"

    /// Checks the options as `generate` does, without generating.
    /// - Throws: `ToolError` 64 naming the option (as its flag) and its range.
    public static func check(_ options: GeneratorOptions) throws {
        _ = try startDay(options)
    }

    private static func startDay(_ options: GeneratorOptions) throws -> Int {
        guard let startDay = GenCalendar.parseDate(options.start) else {
            throw ToolError(exitCode: ToolError.usage, "--start must be a date YYYY-MM-DD (from 1970), not '\(options.start)'")
        }
        guard options.cases >= 0, options.cases <= maxCases else {
            throw ToolError(exitCode: ToolError.usage, "--cases must be from 0 to \(maxCases)")
        }
        guard options.days >= 0, options.days <= maxDays else {
            throw ToolError(exitCode: ToolError.usage, "--days must be from 0 to \(maxDays)")
        }
        guard options.lateEnforcement >= 0, options.lateEnforcement <= 1 else {
            throw ToolError(exitCode: ToolError.usage, "--late-enforcement must be a share from 0 to 1")
        }
        let latest = GenCalendar.parseDate(latestLastDay)!
        guard startDay + options.days - 1 <= latest else {
            throw ToolError(exitCode: ToolError.usage, "--start \(options.start) with --days \(options.days) would reach past "
                + "9999-12-31: the stream's last day (--start + --days - 1) must be at most \(latestLastDay) (appointment "
                + "dates run up to 5 business days past it)")
        }
        return startDay
    }

    /// Streams NDJSON lines (each ending in "\n"), sorted by occurredAt.
    /// `progress`, when given, is called after each simulated day with (days done, days in all, events so far).
    public static func generate(_ options: GeneratorOptions,
                                progress: ((_ days: Int, _ of: Int, _ events: Int) -> Void)? = nil,
                                write: (UnsafeRawBufferPointer) throws -> Void) throws {
        let startDay = try startDay(options)
        var simulation = GenSimulation(options: options, startDay: startDay)
        try simulation.run(progress: progress, write: write)
    }
}

// MARK: - Reference data

struct GenPDU {
    let code: String
    let weight: Double
    /// Share of office interviews held in open booths.
    let openBooth: Double
    /// Failure rate of in-person appointments before and after `recoversAt` (a fraction of the period).
    let failEarly: Double
    let failLate: Double
    let recoversAt: Double
    /// Share of failures never enforced, and enforced late (9–14 business days).
    let neverEnforced: Double
    let lateEnforced: Double
    let lateRecording: Double
    let teams: [String]
    let staff: [[String]]
    let offices: [String]

    init(_ code: String, weight: Double, openBooth: Double, failEarly: Double, failLate: Double, recoversAt: Double = 0,
         neverEnforced: Double, lateEnforced: Double, lateRecording: Double, teams: Int, offices: Int) {
        self.code = code
        self.weight = weight
        self.openBooth = openBooth
        self.failEarly = failEarly
        self.failLate = failLate
        self.recoversAt = recoversAt
        self.neverEnforced = neverEnforced
        self.lateEnforced = lateEnforced
        self.lateRecording = lateRecording
        let prefix = String(code.prefix(3))
        var teamCodes: [String] = []
        var staffCodes: [[String]] = []
        for t in 0..<teams {
            teamCodes.append(prefix + "T" + (t < 9 ? "0" : "") + String(t + 1))
            var members: [String] = []
            let letter = String(UnicodeScalar(UInt8(65 + t)))
            for s in 0..<8 { members.append(prefix + letter + String(101 + s * 7)) }
            staffCodes.append(members)
        }
        self.teams = teamCodes
        self.staff = staffCodes
        self.offices = (1...offices).map { code + String($0) }
    }

    func failureRate(day: Int, startDay: Int, days: Int) -> Double {
        Double(day - startDay) < recoversAt * Double(days) ? failEarly : failLate
    }

    static let all: [GenPDU] = [
        GenPDU("N07SUF", weight: 1.0, openBooth: 0.015, failEarly: 0.07, failLate: 0.07,
               neverEnforced: 0.06, lateEnforced: 0.10, lateRecording: 0.07, teams: 4, offices: 3),
        GenPDU("N03NOR", weight: 1.0, openBooth: 0.010, failEarly: 0.06, failLate: 0.06,
               neverEnforced: 0.05, lateEnforced: 0.10, lateRecording: 0.06, teams: 4, offices: 3),
        GenPDU("N54WMB", weight: 1.3, openBooth: 0.15, failEarly: 0.38, failLate: 0.38,
               neverEnforced: 0.18, lateEnforced: 0.22, lateRecording: 0.14, teams: 6, offices: 2),
        GenPDU("N50MAN", weight: 1.2, openBooth: 0.04, failEarly: 0.38, failLate: 0.05, recoversAt: 0.35,
               neverEnforced: 0.10, lateEnforced: 0.16, lateRecording: 0.10, teams: 6, offices: 3),
        GenPDU("N52LIV", weight: 1.0, openBooth: 0.02, failEarly: 0.08, failLate: 0.08,
               neverEnforced: 0.06, lateEnforced: 0.10, lateRecording: 0.08, teams: 4, offices: 2),
        GenPDU("N56BRS", weight: 0.9, openBooth: 0.015, failEarly: 0.06, failLate: 0.06,
               neverEnforced: 0.05, lateEnforced: 0.09, lateRecording: 0.06, teams: 3, offices: 2),
        GenPDU("N57CDF", weight: 0.8, openBooth: 0.01, failEarly: 0.07, failLate: 0.07,
               neverEnforced: 0.05, lateEnforced: 0.10, lateRecording: 0.07, teams: 3, offices: 2),
        GenPDU("N41HUL", weight: 0.7, openBooth: 0.03, failEarly: 0.09, failLate: 0.09,
               neverEnforced: 0.07, lateEnforced: 0.12, lateRecording: 0.08, teams: 3, offices: 1),
    ]
}

enum GenSentence: Int {
    case communityOrder, suspendedSentenceOrder, licence, postSentenceSupervision

    var code: String {
        switch self {
        case .communityOrder: "COMMUNITY_ORDER"
        case .suspendedSentenceOrder: "SUSPENDED_SENTENCE_ORDER"
        case .licence: "LICENCE"
        case .postSentenceSupervision: "POST_SENTENCE_SUPERVISION"
        }
    }
}

enum GenActionClass { case warning, breach, noAction, withdrawal, other }

func genActionClass(_ code: String) -> GenActionClass {
    switch code {
    case "EA02", "EA03", "LCL": .warning
    case "EA08", "IBR", "BRE", "EA11", "IMB": .breach
    case "NFA": .noAction
    case "EA06", "EA07": .withdrawal
    default: .other
    }
}

let genRoshCodes = ["RLRH", "RMRH", "RHRH", "RVHR"]
let genAcceptableAbsences = ["AAME", "AAFC", "AAEM", "AAHO", "AACL", "AARE", "AARC", "CO05"]
let genAcceptableWeights = [0.30, 0.15, 0.20, 0.10, 0.10, 0.03, 0.02, 0.10]
let genReclassifications = ["AAME", "AAFC", "AAEM", "CO05", "AACL"]
let genReclassificationWeights = [0.45, 0.15, 0.15, 0.15, 0.10]

// MARK: - Cases and contacts

struct GenCase {
    var crn: Int
    var noms: String?
    var pdu: Int
    var team: Int
    var staff: Int
    var office: Int
    var sentence: GenSentence
    var rosh: Int            // 0 low ... 3 very high
    var mapp: Int = 0        // 0 none, else level 1...3
    var advp = false
    var advv = false
    var rcpr = false
    var rcco = false
    var rchd = false
    var firstDay: Int
    var lateJoiner = false
    var nextSlot: Int = .max
    var nextCheckIn: Int = .max
    var cadence: Int = 28
    var driftStart: Int = .max
    var driftEnd: Int = .max
    var changeDay: Int = .max
    var slots = 0
    /// Enforcement history as the practitioner sees it: failure contactStarts, warning and breach times.
    var failures: [Int64] = []
    var warnings: [Int64] = []
    var breaches: [Int64] = []
    /// A warning to withdraw (EA06) at the first attended contact recorded after this time.
    var withdrawalAfter: Int64 = .max

    var priority: Bool { rosh >= 2 || mapp >= 2 || advp || advv || rcpr || rcco || rchd }
    var excludedFromRemote: Bool { rosh == 3 || mapp >= 2 || rcpr || advp }

    mutating func updateCadence(_ rng: inout GenRandom) {
        if rosh >= 2 || mapp >= 2 {
            cadence = 7
        } else if rosh == 1 || priority {
            cadence = 14
        } else {
            cadence = rng.chance(0.4) ? 21 : 28
        }
    }
}

struct GenContact {
    var id: Int
    var version = 0
    var start: Int64
    var typeCode: String?
    var mode: String?
    var outcome: String?
    var action: String?
    var actionAt: Int64?
    var setting: String?
    var sensitive = false
    var staff: String
}

struct GenEntry {
    var time: Int64
    var seq: Int
    var start: Int
    var length: Int
}

struct GenBucket {
    var bytes: [UInt8] = []
    var entries: [GenEntry] = []
}

// MARK: - The simulation

struct GenSimulation {
    let options: GeneratorOptions
    let startDay: Int
    let endDay: Int
    let pdus = GenPDU.all
    var rng: GenRandom
    var cases: [GenCase] = []
    var buckets: [GenBucket]
    var flushed = 0
    var seq = 0
    /// Seed 1 numbers contacts from 2,500,000,001; each seed has a block of 10^10 ids of its own (more than the largest
    /// stream's contacts), seeds 900,000 apart sharing one, all below 2^53. Every seed used to start at the same id, so
    /// two streams of different seeds replayed into one daemon had their contacts refused as "contactId under another
    /// CRN" (27,342 of 37,350 events: the companion tool's auditor, session 25).
    var nextContactId: Int
    var line = GenLine()
    var out: [UInt8] = []

    /// Events are produced per business day and may fall up to this many days before it (planned versions);
    /// a day's bucket is sorted and written once the simulation is this far past it.
    static let lag = 16

    init(options: GeneratorOptions, startDay: Int) {
        self.options = options
        self.startDay = startDay
        self.endDay = startDay + options.days
        self.rng = GenRandom(seed: options.seed)
        self.nextContactId = 2_500_000_001 + Int((options.seed &- 1) % 900_000) * 10_000_000_000
        self.buckets = Array(repeating: GenBucket(), count: options.days)
        out.reserveCapacity(1 << 18)
    }

    mutating func run(progress: ((Int, Int, Int) -> Void)?, write: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard options.days > 0 else { return }
        makeCases()
        for day in startDay..<endDay {
            progress?(day - startDay, options.days, seq)
            try flush(upTo: day - startDay - GenSimulation.lag, write: write)
            guard GenCalendar.isBusinessDay(day) else { continue }
            for i in cases.indices where cases[i].firstDay <= day {
                simulate(case: i, day: day)
            }
        }
        try flush(upTo: options.days, write: write)
        if !out.isEmpty {
            try out.withUnsafeBytes { try write($0) }
            out.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Output

    /// Files the line in `line` under its UTC day; lines after the last day are left out.
    mutating func emit(at time: Int64) {
        let utcDay = Int(time >= 0 ? time / 86400 : (time - 86399) / 86400)
        let index = utcDay - startDay
        guard index < options.days else { return }
        precondition(index >= flushed, "generator emitted an event into a day already written")
        let start = buckets[index].bytes.count
        buckets[index].bytes.append(contentsOf: line.bytes)
        buckets[index].entries.append(GenEntry(time: time, seq: seq, start: start, length: line.bytes.count))
        seq += 1
    }

    mutating func flush(upTo limit: Int, write: (UnsafeRawBufferPointer) throws -> Void) throws {
        while flushed < min(limit, options.days) {
            var bucket = buckets[flushed]
            buckets[flushed] = GenBucket()
            bucket.entries.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
            try bucket.bytes.withUnsafeBufferPointer { source in
                for entry in bucket.entries {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: source[entry.start..<(entry.start + entry.length)]))
                    if out.count >= 1 << 18 {
                        try out.withUnsafeBytes { try write($0) }
                        out.removeAll(keepingCapacity: true)
                    }
                }
            }
            flushed += 1
        }
    }

    mutating func envelope(_ eventType: StaticString, at time: Int64, case c: GenCase) {
        line.reset()
        line.raw("{\"eventType\":\"")
        line.raw(eventType)
        line.raw("\",\"version\":1,\"occurredAt\":")
        line.time(time)
        line.raw(",\"personReference\":{\"identifiers\":[{\"type\":\"CRN\",\"value\":")
        line.crn(c.crn)
        if let noms = c.noms {
            line.raw("},{\"type\":\"NOMS\",\"value\":")
            line.string(noms)
        }
        line.raw("}]},\"additionalInformation\":{")
    }

    mutating func emitRegistration(_ eventType: StaticString, _ code: String, level: String? = nil,
                                   at time: Int64, case c: GenCase) {
        envelope(eventType, at: time, case: c)
        line.raw("\"registerTypeCode\":")
        line.string(code)
        if let level {
            line.raw(",\"registerLevelCode\":")
            line.string(level)
        }
        line.raw("}}\n")
        emit(at: time)
    }

    mutating func emitContact(_ k: GenContact, at time: Int64, case c: GenCase) {
        envelope("probation-case.contact.recorded", at: time, case: c)
        line.raw("\"contactId\":")
        line.int(k.id)
        if k.version > 1 {
            line.raw(",\"contactVersion\":")
            line.int(k.version)
        }
        line.raw(",\"contactStart\":")
        line.time(k.start)
        if let type = k.typeCode {
            line.raw(",\"contactType\":")
            line.string(type)
        }
        if let mode = k.mode {
            line.raw(",\"contactMode\":")
            line.string(mode)
        }
        if let outcome = k.outcome {
            line.raw(",\"outcome\":{\"code\":")
            line.string(outcome)
            line.raw("}")
        }
        if let action = k.action {
            line.raw(",\"enforcementAction\":{\"code\":")
            line.string(action)
            if let at = k.actionAt {
                line.raw(",\"actionAt\":")
                line.time(at)
            }
            line.raw("}")
        }
        if let setting = k.setting {
            line.raw(",\"interviewSetting\":")
            line.string(setting)
        }
        if k.sensitive { line.raw(",\"sensitive\":true") }
        let pdu = pdus[c.pdu]
        line.raw(",\"sentenceType\":")
        line.string(c.sentence.code)
        line.raw(",\"pduCode\":")
        line.string(pdu.code)
        line.raw(",\"teamCode\":")
        line.string(pdu.teams[c.team])
        line.raw(",\"staffCode\":")
        line.string(k.staff)
        line.raw(",\"officeLocationCode\":")
        line.string(pdu.offices[c.office])
        line.raw("}}\n")
        emit(at: time)
    }

    // MARK: Time helpers

    /// A random office-hours instant (08:30–17:30 London time) on `day`.
    mutating func officeTime(_ day: Int) -> Int64 {
        GenCalendar.londonToUTC(day: day, localSeconds: 8 * 3600 + 1800 + rng.below(9 * 3600))
    }

    /// An office-hours instant on the `n`th business day after `day`, strictly after `notBefore`.
    mutating func officeTime(businessDaysAfter day: Int, _ n: Int, notBefore: Int64) -> (day: Int, time: Int64) {
        let d = GenCalendar.addBusinessDays(day, n)
        var t = officeTime(d)
        if t <= notBefore { t = notBefore + Int64(rng.range(300, 5400)) }
        return (d, t)
    }

    // MARK: Cases

    mutating func makeCases() {
        let n = options.cases
        guard n > 0 else { return }
        // CRNs: x -> (a*x + b) mod 26,000,000 with a coprime to 26,000,000 = 2^7 * 5^6 * 13 is a permutation.
        let space = 26_000_000
        var a = 1 + rng.below(space - 1)
        while a % 2 == 0 || a % 5 == 0 || a % 13 == 0 { a += 1 }
        let b = rng.below(space)
        let weights = pdus.map(\.weight)
        cases.reserveCapacity(n)
        for i in 0..<n {
            let crn = Int((Int64(a) * Int64(i) + Int64(b)) % Int64(space))
            let sentence = GenSentence(rawValue: rng.weighted([0.38, 0.22, 0.32, 0.08]))!
            let custody = sentence == .licence || sentence == .postSentenceSupervision
            let pdu = rng.weighted(weights)
            let team = rng.below(pdus[pdu].teams.count)
            var c = GenCase(
                crn: crn, noms: nil, pdu: pdu, team: team, staff: rng.below(8), office: rng.below(pdus[pdu].offices.count),
                sentence: sentence,
                rosh: custody ? rng.weighted([0.15, 0.50, 0.30, 0.05]) : rng.weighted([0.45, 0.43, 0.11, 0.01]),
                firstDay: startDay)
            if custody {
                let letters = Array("ABCDEFGHJKLMNPQRSTUVWXYZ".utf8)
                var noms = "A"
                noms += String(1000 + rng.below(9000))
                noms.unicodeScalars.append(UnicodeScalar(letters[rng.below(letters.count)]))
                noms.unicodeScalars.append(UnicodeScalar(letters[rng.below(letters.count)]))
                c.noms = noms
            }
            if rng.chance(sentence == .licence ? 0.16 : 0.02) {
                c.mapp = 1 + rng.weighted([0.75, 0.22, 0.03])
            }
            let da = rng.unit()
            if da < 0.24 { c.advp = true } else if da < 0.30 { c.advv = true }
            let child = rng.unit()
            if child < 0.05 { c.rcpr = true } else if child < 0.08 { c.rcco = true } else if child < 0.10 { c.rchd = true }
            c.updateCadence(&rng)

            var registrationTime: Int64
            if options.days > 20 && rng.chance(0.12) {
                c.lateJoiner = true
                c.firstDay = GenCalendar.nextBusinessDay(onOrAfter: startDay + 1 + rng.below(options.days * 4 / 5))
                c.nextSlot = c.firstDay
                registrationTime = GenCalendar.londonToUTC(day: c.firstDay, localSeconds: 8 * 3600 + rng.below(2700))
            } else {
                c.nextSlot = GenCalendar.nextBusinessDay(onOrAfter: startDay + rng.below(c.cadence))
                registrationTime = Int64(startDay) * 86400 + 6 * 3600 + Int64(rng.below(6600))
            }
            emitRegistration("probation-case.registration.added", genRoshCodes[c.rosh], at: registrationTime, case: c)
            if c.mapp > 0 {
                registrationTime += Int64(rng.range(1, 60))
                emitRegistration("probation-case.registration.added", "MAPP", level: "M" + String(c.mapp),
                                 at: registrationTime, case: c)
            }
            if c.advp || c.advv {
                registrationTime += Int64(rng.range(1, 60))
                emitRegistration("probation-case.registration.added", c.advp ? "ADVP" : "ADVV", at: registrationTime, case: c)
            }
            if c.rcpr || c.rcco || c.rchd {
                registrationTime += Int64(rng.range(1, 60))
                emitRegistration("probation-case.registration.added", c.rcpr ? "RCPR" : c.rcco ? "RCCO" : "RCHD",
                                 at: registrationTime, case: c)
            }
            // Drift into telephone-only supervision (only where remote contact is allowed at all).
            if !c.excludedFromRemote && rng.chance(0.05) {
                c.driftStart = c.firstDay + rng.below(max(1, options.days / 2))
                c.driftEnd = rng.chance(0.75) ? c.driftStart + rng.range(35, 75) : .max
            }
            if rng.chance(0.04) {
                c.changeDay = GenCalendar.nextBusinessDay(onOrAfter: startDay + options.days / 5 + rng.below(max(1, options.days * 3 / 5)))
            }
            if rng.chance(0.005) {
                // A register added in error, then deleted.
                let day = GenCalendar.nextBusinessDay(onOrAfter: max(c.firstDay, startDay + rng.below(max(1, options.days - 5))))
                let added = officeTime(day)
                let deleted = officeTime(businessDaysAfter: day, rng.range(1, 3), notBefore: added).time
                emitRegistration("probation-case.registration.added", "RCCO", at: added, case: c)
                emitRegistration("probation-case.registration.deleted", "RCCO", at: deleted, case: c)
            }
            cases.append(c)
        }
    }

    mutating func simulate(case i: Int, day: Int) {
        var c = cases[i]
        if c.changeDay == day { changeRegisters(&c, day: day) }
        if c.nextSlot <= day {
            contact(&c, day: day, checkIn: false)
            c.slots += 1
            let jitter = c.cadence == 7 ? (rng.chance(0.1) ? rng.range(-1, 1) : 0) : rng.range(-2, 2)
            c.nextSlot = GenCalendar.nextBusinessDay(onOrAfter: day + c.cadence + jitter)
            let remoteAllowed = !c.excludedFromRemote || rng.chance(0.02)
            if c.cadence >= 14 && remoteAllowed && rng.chance(c.priority ? 0.15 : 0.30) {
                c.nextCheckIn = GenCalendar.nextBusinessDay(onOrAfter: day + c.cadence / 2)
                if c.nextCheckIn >= c.nextSlot { c.nextCheckIn = .max }
            }
        } else if c.nextCheckIn <= day {
            contact(&c, day: day, checkIn: true)
            c.nextCheckIn = .max
        }
        cases[i] = c
    }

    mutating func changeRegisters(_ c: inout GenCase, day: Int) {
        let t = officeTime(day)
        if c.mapp == 1 && rng.chance(0.7) {
            c.mapp = 2
            emitRegistration("probation-case.registration.updated", "MAPP", level: "M2", at: t, case: c)
        } else if c.rcpr {
            c.rcpr = false
            emitRegistration("probation-case.registration.deregistered", "RCPR", at: t, case: c)
        } else if c.advv {
            c.advv = false
            emitRegistration("probation-case.registration.deregistered", "ADVV", at: t, case: c)
        } else if c.rosh <= 1 {
            c.rosh += 1
            emitRegistration("probation-case.registration.added", genRoshCodes[c.rosh], at: t, case: c)
        } else if !c.advp {
            c.advp = true
            c.advv = false
            emitRegistration("probation-case.registration.added", "ADVP", at: t, case: c)
        } else {
            emitRegistration("probation-case.registration.updated", genRoshCodes[c.rosh], at: t, case: c)
        }
        c.updateCadence(&rng)
        if c.excludedFromRemote { c.driftStart = .max; c.driftEnd = .max }
    }

    // MARK: Contacts

    mutating func contact(_ c: inout GenCase, day: Int, checkIn: Bool) {
        let pdu = pdus[c.pdu]
        let inDrift = day >= c.driftStart && day < c.driftEnd
        var k = GenContact(id: nextContactId, start: 0, staff: pdu.staff[c.team][c.staff])
        nextContactId += 1

        // Mode and contact type.
        var remote = false
        var canPlan = true
        let initial = c.lateJoiner && c.slots == 0 && !checkIn
        if checkIn || inDrift {
            remote = true
            switch rng.weighted([0.5, 0.3, 0.2]) {
            case 0: k.typeCode = "COPT"
            case 1: k.typeCode = "CTOB"; canPlan = rng.chance(0.2)
            default: k.typeCode = "CTOA"; canPlan = false
            }
        } else if initial {
            canPlan = false
            switch rng.weighted([0.75, 0.2, 0.05]) {
            case 0: k.typeCode = "COAI"
            case 1: k.typeCode = "COHV"
            default: k.typeCode = "CODI"
            }
        } else {
            let excluded = c.excludedFromRemote
            let phone = excluded ? 0.012 : (c.priority ? 0.03 : 0.06)
            let video = excluded ? 0.006 : 0.02
            let text = excluded ? 0.001 : 0.006
            let homeVisit = (c.advp || c.advv || c.rcpr || c.rcco || c.rchd) ? 0.10 : 0.04
            switch rng.weighted([phone, video, text, homeVisit, 0.012, 0.04, 0.015, 0.01,
                                 1 - phone - video - text - homeVisit - 0.077]) {
            case 0: remote = true; k.typeCode = rng.chance(0.7) ? "COPT" : "CTOB"
            case 1: remote = true; k.typeCode = "COVC"
            case 2: remote = true; k.mode = "TEXT_OR_ONLINE"; canPlan = false
            case 3: k.typeCode = "CHVS"
            case 4: k.typeCode = "CODC"
            case 5: k.typeCode = "COOO"
            case 6: k.typeCode = "C084"
            case 7: k.typeCode = "COSR"
            default:
                switch rng.weighted([0.95, 0.03, 0.02]) {
                case 0: k.typeCode = "COAP"
                case 1: k.mode = "OFFICE"
                default: k.typeCode = "COAP"; k.mode = "OFFICE"
                }
            }
        }
        let mode: String
        switch k.typeCode {
        case "COAP", "COAI", "COSR": mode = "OFFICE"
        case "COOO", "C084": mode = "OTHER_IN_PERSON"
        case "CHVS", "COHV": mode = "HOME_VISIT"
        case "CODC", "CODI": mode = "DOORSTEP"
        case "COPT", "CTOA", "CTOB": mode = "TELEPHONE"
        case "COVC": mode = "VIDEO"
        default: mode = k.mode ?? "OFFICE"
        }

        // When: a 15-minute slot in office hours (calls at any minute).
        let localStart = remote && !canPlan ? 9 * 3600 + rng.below(8 * 3600)
            : 9 * 3600 + 900 * rng.below(31)
        k.start = GenCalendar.londonToUTC(day: day, localSeconds: localStart)

        // Where.
        switch mode {
        case "OFFICE":
            let r = rng.unit()
            if r < pdu.openBooth { k.setting = "OPEN_BOOTH" }
            else if r < pdu.openBooth + 0.006 { k.setting = "SHARED_PUBLIC_SPACE" }
            else if r < 0.88 { k.setting = "PRIVATE_ROOM" }
        case "OTHER_IN_PERSON":
            let r = rng.unit()
            if r < 0.3 { k.setting = "SHARED_PUBLIC_SPACE" } else if r < 0.8 { k.setting = "PRIVATE_ROOM" }
        case "HOME_VISIT":
            if rng.chance(0.7) { k.setting = "HOME" }
        case "DOORSTEP":
            if rng.chance(0.5) { k.setting = "DOORSTEP" }
        default:
            break
        }
        if !remote && rng.chance(0.03) { k.sensitive = true }

        // A planned version a few business days ahead.
        var planned = false
        if canPlan && rng.chance(0.3) {
            let plannedDay = GenCalendar.subtractBusinessDays(day, rng.range(1, 7))
            if plannedDay >= startDay && plannedDay >= day - GenSimulation.lag + 1 {
                let t = officeTime(plannedDay)
                if t < k.start - 3600 {
                    k.version += 1
                    emitContact(k, at: t, case: c)
                    planned = true
                }
            }
        }
        if planned {
            // R7's outstanding outcomes: a planned appointment never given an outcome...
            if rng.chance(0.025) { return }
            // ...or re-planned 3-8 business days after its date (no outcome meanwhile) to 2-5 business days later,
            // then held.
            if rng.chance(0.03) {
                let moved = officeTime(businessDaysAfter: day, rng.range(3, 8), notBefore: k.start + 3600)
                let newDay = GenCalendar.addBusinessDays(moved.day, rng.range(2, 5))
                k.start = GenCalendar.londonToUTC(day: newDay, localSeconds: 9 * 3600 + 900 * rng.below(31))
                k.version += 1
                emitContact(k, at: moved.time, case: c)
                k.version += 1
                k.outcome = "ATTC"
                emitContact(k, at: k.start + Int64(60 * rng.range(20, 150)), case: c)
                return
            }
        }

        // The outcome.
        var failRate = pdu.failureRate(day: day, startDay: startDay, days: options.days)
        if remote { failRate *= 0.35 }
        var failure = false
        var pending = false
        let r = rng.unit()
        if r < failRate {
            failure = true
            if !remote && rng.chance(0.2) {
                k.outcome = rng.chance(0.65) ? "AFTC" : "ATSH"
            } else if rng.chance(0.15) {
                k.outcome = "AFTA"
                failure = false
                pending = true
            } else {
                k.outcome = "UAAB"
            }
        } else if r < failRate + 0.04 {
            k.outcome = genAcceptableAbsences[rng.weighted(genAcceptableWeights)]
        } else {
            k.outcome = rng.chance(0.01) ? "ATSS" : "ATTC"
        }
        let attendedCompliant = k.outcome == "ATTC" || k.outcome == "ATSS"

        var recordedDay = day
        var recorded: Int64
        if rng.chance(pdu.lateRecording) {
            (recordedDay, recorded) = officeTime(businessDaysAfter: day, rng.range(1, 8), notBefore: k.start + 1800)
        } else {
            recorded = k.start + Int64(60 * rng.range(20, 150))
        }
        k.version += 1
        // A warning withdrawn (EA06), recorded against the next attended contact.
        if attendedCompliant && !remote && recorded > c.withdrawalAfter {
            k.action = "EA06"
            if let last = c.warnings.lastIndex(where: { $0 <= recorded }) { c.warnings.remove(at: last) }
            c.withdrawalAfter = .max
        }
        // A failure and its enforcement recorded in one event.
        var enforcedAtOnce = false
        if failure && rng.chance(0.03) {
            enforcedAtOnce = true
            k.action = enforcementCode(for: k.start, case: c)
            recordAction(k.action!, at: recorded, case: &c)
        }
        emitContact(k, at: recorded, case: c)
        if rng.chance(0.005) { emitContact(k, at: recorded, case: c) }  // the same version sent twice

        let decisionRoll = pending ? rng.unit() : 1
        if pending && decisionRoll < 0.12 {
            // AFTA never decided (R7 raises and stays open).
        } else if pending {
            // AFTA: the absence is decided a few days later, sometimes weeks later (R7 raises, then resolves).
            let lag = decisionRoll < 0.35 ? rng.range(6, 15) : rng.range(1, 5)
            let decision = officeTime(businessDaysAfter: recordedDay, lag, notBefore: recorded)
            k.version += 1
            if rng.chance(0.7) {
                k.outcome = "UAAB"
                emitContact(k, at: decision.time, case: c)
                failed(&c, contact: &k, day: decision.day, at: decision.time)
            } else {
                k.outcome = genAcceptableAbsences[rng.weighted(genAcceptableWeights)]
                emitContact(k, at: decision.time, case: c)
            }
        } else if failure {
            if enforcedAtOnce {
                c.failures.append(k.start)
            } else {
                failed(&c, contact: &k, day: recordedDay, at: recorded)
            }
        } else if rng.chance(0.015) {
            // A correction: the contact reallocated to another practitioner.
            let later = officeTime(businessDaysAfter: recordedDay, rng.range(1, 5), notBefore: recorded)
            k.version += 1
            k.staff = pdu.staff[c.team][(c.staff + 1 + rng.below(7)) % 8]
            emitContact(k, at: later.time, case: c)
        }
    }

    /// A contact has just become a failure (recorded at `time` on `day`): reclassify it, enforce it, or let it be.
    mutating func failed(_ c: inout GenCase, contact k: inout GenContact, day: Int, at time: Int64) {
        let pdu = pdus[c.pdu]
        c.failures.append(k.start)
        if rng.chance(0.06) {
            // Evidence arrives later: the absence becomes acceptable.
            let later = officeTime(businessDaysAfter: day, rng.range(2, 10), notBefore: time)
            k.version += 1
            k.outcome = genReclassifications[rng.weighted(genReclassificationWeights)]
            emitContact(k, at: later.time, case: c)
            if let index = c.failures.lastIndex(of: k.start) { c.failures.remove(at: index) }
            return
        }
        let code = enforcementCode(for: k.start, case: c)
        let r = rng.unit()
        if r < pdu.neverEnforced { return }
        var delay = r < pdu.neverEnforced + pdu.lateEnforced ? rng.range(9, 14)
            : (rng.chance(0.55) ? rng.range(1, 3) : rng.range(4, 8))
        // (No draw at all without the option, so that the default stream stays the same bytes.)
        if options.lateEnforcement > 0 && rng.chance(options.lateEnforcement) { delay = rng.range(20, 60) }
        let action = officeTime(businessDaysAfter: day, delay, notBefore: time)
        k.version += 1
        k.action = code
        k.actionAt = nil
        var effective = action.time
        if rng.chance(0.4) {
            effective = max(time + 60, action.time - Int64(60 * rng.range(0, 180)))
            k.actionAt = effective
        }
        emitContact(k, at: action.time, case: c)
        recordAction(code, at: effective, case: &c)
    }

    /// What a practitioner would do about a failure at `start`, from the case's history.
    mutating func enforcementCode(for start: Int64, case c: GenCase) -> String {
        let yearAgo = start - 365 * 86400
        var since = yearAgo
        for breach in c.breaches where breach <= start && breach > since { since = breach }
        var failures = 1
        for f in c.failures where f >= since && f < start { failures += 1 }
        let recentWarning = c.warnings.contains { $0 >= since && $0 <= start }
        if c.sentence == .licence {
            if failures >= 2 || c.priority {
                return ["LCL", "EA11", "IMB", "IBR", "NFA", "ROM"][rng.weighted([0.45, 0.20, 0.12, 0.08, 0.08, 0.07])]
            }
            return ["LCL", "NFA", "EA11", "ROM"][rng.weighted([0.75, 0.12, 0.05, 0.08])]
        }
        if failures >= 2 || recentWarning {
            return ["EA08", "IBR", "BRE", "NFA", "EA03", "ROM"][rng.weighted([0.28, 0.22, 0.18, 0.08, 0.16, 0.08])]
        }
        return ["EA02", "NFA", "IMB", "C173"][rng.weighted([0.80, 0.10, 0.03, 0.07])]
    }

    mutating func recordAction(_ code: String, at time: Int64, case c: inout GenCase) {
        switch genActionClass(code) {
        case .warning:
            c.warnings.append(time)
            if rng.chance(0.04) { c.withdrawalAfter = time + 3 * 86400 }
        case .breach:
            c.breaches.append(time)
        default:
            break
        }
    }
}
