import ContactWatchEngine
import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Testing

// Restart equivalence (hunter, session 45): a run restarted from the store after any batch publishes exactly the
// messages of an uninterrupted run, and every load equals the engine's state. Random streams over small pools (contact
// ids, CRNs, PDUs, publishers), a short retention so contacts are forgotten and come back (same or another CRN, any
// version), late actions and withdrawals, registrations, R5 with a small sample, R7 with short deadlines and
// non-default settings.

private let rDay: Millis = 86_400_000
private let rHour: Millis = 3_600_000

private func rIso(_ m: Millis) -> String { RFC3339.format(m) }

/// A random stream in batches (each batch a list of lines) and the settings to run it with.
struct RestartScenario {
    var settings: EngineSettings
    var batches: [[String]]
}

enum RestartStreams {
    static let outcomes: [String?] = ["ATTC", "ATSS", "AFTC", "ATSH", "UAAB", "UAAB", "AFTA", "AFTA", "AACL", "CO05", nil, nil]
    static let actions = ["EA02", "EA03", "LCL", "EA08", "IBR", "BRE", "EA11", "IMB", "NFA", "EA06", "EA07", "ROM"]
    static let modes = ["OFFICE", "HOME_VISIT", "DOORSTEP", "OTHER_IN_PERSON", "TELEPHONE", "VIDEO", "TEXT_OR_ONLINE"]
    static let types = ["COAP", "COPT", "CTOB", "CHVS", "CODC", "COVC", "C084"]
    static let settingsList = ["PRIVATE_ROOM", "OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "HOME", "DOORSTEP", "UNKNOWN"]
    static let sentences = ["COMMUNITY_ORDER", "LICENCE", "SUSPENDED_SENTENCE_ORDER", "POST_SENTENCE_SUPERVISION"]
    static let registers: [(String, String?)] = [("RVHR", nil), ("RHRH", nil), ("RLRH", nil), ("MAPP", "M2"), ("MAPP", "M1"),
                                                 ("ADVP", nil), ("ADVV", nil), ("RCPR", nil), ("RCCO", nil), ("XXXX", nil)]

    static func settings(_ rng: inout SplitMix64) -> EngineSettings {
        var s = EngineSettings()
        s.contactRetentionDays = [1, 2, 3, 4, 6][rng.below(5)]
        s.complianceRateWindowDays = 1 + rng.below(s.contactRetentionDays)
        s.complianceRateMinimumSample = 1 + rng.below(4)
        s.complianceRateThreshold = [0.5, 0.6, 0.75, 0.9][rng.below(4)]
        s.complianceRateHysteresis = [0, 0.02, 0.1][rng.below(3)]
        s.outcomeOverdueEnabled = rng.below(6) != 0
        s.outcomeOverdueBusinessDays = [1, 2, 3, 5, 8][rng.below(5)]
        s.enforcementDeadlineBusinessDays = [1, 2, 3, 5, 8][rng.below(5)]
        s.telephoneOnlyLimitDays = 1 + rng.below(3)
        s.telephoneOnlyPriorityLimitDays = 1 + rng.below(2)
        s.nonComplianceWindowMonths = [1, 12][rng.below(2)]
        s.videoCountsAsFaceToFace = rng.below(2) == 0
        s.remoteContactEnabled = rng.below(4) != 0
        s.noPrivacyMinimumSeverity = [.low, .medium, .high][rng.below(3)]
        if rng.below(4) == 0 { s.timeZone = ["UTC", "Pacific/Auckland", "America/New_York"][rng.below(3)] }
        if rng.below(5) == 0 { s.bankHolidays = [] }
        return s
    }

    static func generate(seed: UInt64, batches: Int = 30, maxBatch: Int = 10, ids: Int = 8, crns: Int = 4) -> RestartScenario {
        let env = ProcessInfo.processInfo.environment
        let batches = Int(env["RESTART_BATCHES"] ?? "") ?? batches
        let ids = Int(env["RESTART_IDS"] ?? "") ?? ids
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9 &+ 45)
        let settings = settings(&rng)
        let retention = Millis(settings.contactRetentionDays) * rDay
        // Mondays and Fridays, around a bank holiday and a clock change.
        let origins = ["2026-01-05T09:00:00Z", "2026-03-27T15:00:00Z", "2026-04-01T09:00:00Z", "2026-10-22T09:00:00Z"]
        var t = RFC3339.parse(origins[rng.below(origins.count)])!
        var versions: [UInt64: UInt64] = [:]
        var seq: [Int: UInt64] = [0: 0, 1: 0]
        var out: [[String]] = []
        for _ in 0..<batches {
            var lines: [String] = []
            for _ in 0..<(1 + rng.below(maxBatch)) {
                // Time: mostly hours, sometimes a day or more (forgetting), sometimes nothing (ties).
                switch rng.below(10) {
                case 0: break
                case 1: t += Millis(1 + rng.below(3)) * rDay + Millis(rng.below(24)) * rHour
                default: t += Millis(rng.below(9)) * rHour + Millis(rng.below(60)) * 60_000
                }
                let crn = String(format: "X%06d", 100_001 + rng.below(crns))
                var stamp = ""
                if rng.below(5) != 0 {
                    let p = rng.below(2)
                    switch rng.below(20) {
                    case 0: seq[p] = 1                         // a restart
                    case 1: seq[p]! += 2 + UInt64(rng.below(3)) // a gap
                    case 2: seq[p] = max(1, seq[p]!) - 1 + (seq[p]! == 0 ? 1 : 0)  // a repeat
                    default: seq[p]! += 1
                    }
                    stamp = ",\"publisherId\":\"feed-\(p)\",\"sequenceNumber\":\(seq[p]!)"
                }
                let occurred = t - (rng.below(6) == 0 ? Millis(rng.below(30)) * rHour : 0)  // late events do not move W
                if rng.below(8) == 0 {
                    let (code, level) = registers[rng.below(registers.count)]
                    let type = ["added", "updated", "deregistered", "deleted"][rng.below(4)]
                    let info = "\"registerTypeCode\":\"\(code)\"" + (level.map { ",\"registerLevelCode\":\"\($0)\"" } ?? "")
                    lines.append(#"{"eventType":"probation-case.registration.\#(type)","version":1\#(stamp),"occurredAt":"\#(rIso(occurred))","personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"additionalInformation":{\#(info)}}"#)
                    continue
                }
                let id = UInt64(1 + rng.below(ids))
                // Versions: mostly up, sometimes a duplicate, sometimes back to 1 (a forgotten contact's new life).
                var version: UInt64
                switch rng.below(10) {
                case 0: version = versions[id, default: 1]
                case 1: version = 1
                default: version = versions[id, default: 0] + 1
                }
                versions[id] = max(versions[id, default: 0], version)
                // Starts: around the retention's edge too (stale, forgotten soon, same date as an earlier arrival).
                var start: Millis
                switch rng.below(4) {
                case 0: start = t - retention - Millis(rng.below(24)) * rHour + 12 * rHour
                case 1: start = t - Millis(rng.below(Int(settings.contactRetentionDays) * 24 + 1)) * rHour
                default: start = t - Millis(rng.below(48)) * rHour
                }
                let oc = outcomes[rng.below(outcomes.count)]
                if oc != nil && start > occurred + 300_000 { start = occurred }
                var info = "\"contactId\":\(id)"
                if !(version == 1 && rng.below(2) == 0) { info += ",\"contactVersion\":\(version)" }
                info += ",\"contactStart\":\"\(rIso(start))\""
                if rng.below(2) == 0 { info += ",\"contactMode\":\"\(modes[rng.below(modes.count)])\"" }
                else { info += ",\"contactType\":\"\(types[rng.below(types.count)])\"" }
                if let oc { info += ",\"outcome\":{\"code\":\"\(oc)\"}" }
                if rng.below(3) == 0 {
                    let code = actions[rng.below(actions.count)]
                    let at = rng.below(3) == 0 ? "" : ",\"actionAt\":\"\(rIso(start + Millis(rng.below(96)) * rHour - 24 * rHour))\""
                    info += ",\"enforcementAction\":{\"code\":\"\(code)\"\(at)}"
                }
                if rng.below(2) == 0 { info += ",\"interviewSetting\":\"\(settingsList[rng.below(settingsList.count)])\"" }
                if rng.below(5) == 0 { info += ",\"sensitive\":true" }
                if rng.below(6) == 0 { info += ",\"sentenceType\":\"\(sentences[rng.below(sentences.count)])\"" }
                if rng.below(5) != 0 { info += ",\"pduCode\":\"\(["N07SUF", "N03NOR", "N55ESX"][rng.below(3)])\"" }
                lines.append(#"{"eventType":"probation-case.contact.recorded","version":1\#(stamp),"occurredAt":"\#(rIso(occurred))","personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"additionalInformation":{\#(info)}}"#)
            }
            out.append(lines)
        }
        return RestartScenario(settings: settings, batches: out)
    }
}

/// Runs a scenario uninterrupted and restarted from the store after the batches in `restartAfter`; nil when every
/// message and every load agree, else what differs first.
func restartDivergence(_ s: RestartScenario, restartAfter: (Int) -> Bool) throws -> String? {
    // (a) Uninterrupted, no store.
    let plain = try Engine(settings: s.settings)
    var expected: [[String]] = []
    for lines in s.batches {
        var o = Outbox()
        feed(plain, lines, into: &o)
        expected.append(messages(o))
    }
    if ProcessInfo.processInfo.environment["RESTART_STATS"] != nil {
        var byTopic: [String: Int] = [:]
        for m in expected.joined() { byTopic[String(m.prefix(while: { $0 != " " })), default: 0] += 1 }
        print("RESTART_STATS \(byTopic.sorted { $0.key < $1.key })")
    }
    // (b) Committed after each batch, restarted after some.
    let dir = TempDir()
    defer { dir.cleanup() }
    var store = try StateStore(directory: dir.path)
    defer { store.close() }
    var engine = try Engine(settings: s.settings, state: try store.load().state)
    for (b, lines) in s.batches.enumerated() {
        var o = Outbox()
        feed(engine, lines, into: &o)
        let got = messages(o)
        if got != expected[b] {
            var i = 0
            while i < min(got.count, expected[b].count) && got[i] == expected[b][i] { i += 1 }
            return "batch \(b) message \(i):\n  uninterrupted: \(i < expected[b].count ? expected[b][i] : "(none)")\n"
                + "  restarted:     \(i < got.count ? got[i] : "(none)")\n  (uninterrupted \(expected[b].count) messages, restarted \(got.count))"
        }
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: o),
                         publishedThrough: nil, now: 1_700_000_000_000)
        guard restartAfter(b) else { continue }
        let before = engine.state
        store.close()
        store = try StateStore(directory: dir.path)
        let loaded: EngineState
        do { loaded = try store.load().state } catch { return "batch \(b): the store is refused at restart: \(error)" }
        if !sameState(loaded, before) { return "batch \(b): the loaded state differs from the engine's" }
        engine = try Engine(settings: s.settings, state: loaded)
    }
    return nil
}

/// Greedy shrinking: drops batches, then lines, while the divergence stays (restart after every batch).
func shrinkRestartScenario(_ s: RestartScenario) throws -> (RestartScenario, String) {
    var cur = s
    var why = try restartDivergence(cur, restartAfter: { _ in true }) ?? "(no divergence)"
    var progress = true
    while progress {
        progress = false
        // Merge or drop batches.
        var b = 0
        while b < cur.batches.count {
            var trial = cur
            trial.batches.remove(at: b)
            if let w = try restartDivergence(trial, restartAfter: { _ in true }) { cur = trial; why = w; progress = true; continue }
            if b + 1 < cur.batches.count {
                trial = cur
                trial.batches[b] += trial.batches.remove(at: b + 1)
                if let w = try restartDivergence(trial, restartAfter: { _ in true }) { cur = trial; why = w; progress = true; continue }
            }
            b += 1
        }
        // Drop lines.
        b = 0
        while b < cur.batches.count {
            var k = 0
            while k < cur.batches[b].count {
                var trial = cur
                trial.batches[b].remove(at: k)
                if trial.batches[b].isEmpty { trial.batches.remove(at: b) }
                if let w = try restartDivergence(trial, restartAfter: { _ in true }) {
                    cur = trial; why = w; progress = true
                    if b >= cur.batches.count { break }
                    continue
                }
                k += 1
            }
            b += 1
        }
    }
    return (cur, why)
}

private func describe(_ s: EngineSettings) -> String {
    "retention \(s.contactRetentionDays) window \(s.complianceRateWindowDays) sample \(s.complianceRateMinimumSample) "
        + "threshold \(s.complianceRateThreshold) hyst \(s.complianceRateHysteresis) R7 \(s.outcomeOverdueEnabled)/\(s.outcomeOverdueBusinessDays) "
        + "R6 \(s.enforcementDeadlineBusinessDays) tel \(s.telephoneOnlyLimitDays)/\(s.telephoneOnlyPriorityLimitDays) months \(s.nonComplianceWindowMonths) "
        + "video \(s.videoCountsAsFaceToFace) remote \(s.remoteContactEnabled) privacy \(s.noPrivacyMinimumSeverity) zone \(s.timeZone) holidays \(s.bankHolidays.count)"
}

@Suite("Restart equivalence: a run restarted from the store after any batch publishes what an uninterrupted run does", .computing)
struct RestartEquivalenceTests {
    static let seedCount = Int(ProcessInfo.processInfo.environment["RESTART_SEEDS"] ?? "") ?? 40
    static let seedBase = UInt64(ProcessInfo.processInfo.environment["RESTART_SEED_BASE"] ?? "") ?? 0

    @Test("random streams, restarted after random batches", arguments: 0..<RestartEquivalenceTests.seedCount)
    func randomStreams(index: Int) throws {
        let seed = Self.seedBase + UInt64(index)
        let s = RestartStreams.generate(seed: seed)
        var rng = SplitMix64(seed: seed ^ 0xA5A5)
        let restarts = (0..<s.batches.count).map { _ in rng.below(2) == 0 }
        guard let why = try restartDivergence(s, restartAfter: { restarts[$0] }) else { return }
        let shrink = ProcessInfo.processInfo.environment["RESTART_SHRINK"] != nil
        if shrink {
            let (small, smallWhy) = try shrinkRestartScenario(s)
            let text = small.batches.enumerated().map { "batch \($0.offset):\n" + $0.element.joined(separator: "\n") }.joined(separator: "\n")
            Issue.record("seed \(seed) [\(describe(s.settings))]: \(why)\nshrunk (restart after every batch):\n\(text)\n\(smallWhy)")
        } else {
            Issue.record("seed \(seed) [\(describe(s.settings))]: \(why)")
        }
    }
}

private func rContact(_ crn: String, id: UInt64, v: UInt64 = 1, start: String, occurred: String, outcome: String?,
                      action: String? = nil, actionAt: String? = nil) -> String {
    var info = "\"contactId\":\(id),\"contactVersion\":\(v),\"contactStart\":\"\(start)\",\"contactMode\":\"OFFICE\""
    if let outcome { info += ",\"outcome\":{\"code\":\"\(outcome)\"}" }
    if let action { info += ",\"enforcementAction\":{\"code\":\"\(action)\"" + (actionAt.map { ",\"actionAt\":\"\($0)\"" } ?? "") + "}" }
    return #"{"eventType":"probation-case.contact.recorded","version":1,"occurredAt":"\#(occurred)","personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"additionalInformation":{\#(info)}}"#
}

@Suite("Restart equivalence: minimal streams of the findings", .computing)
struct RestartEquivalenceFindingTests {
    /// Finding A: an R1 alert resolved before its deadline leaves its item in `overdueQueue`; its contact, forgotten,
    /// comes back in the same case with the same version and raises an R1 alert with the same (contactId, version)
    /// and a later deadline. The old item matches the new alert and raises its R6 at the old deadline: before the
    /// new alert's deadline (rules.md: "whose deadline is before the date of W"), and only in a run not restarted
    /// since (a restart rebuilds the heap from the open alerts).
    @Test("a stale R6 heap item does not raise the overdue alert of a same-key R1 alert raised after a forget")
    func staleOverdueItemAfterForget() throws {
        var s = EngineSettings()
        s.contactRetentionDays = 3
        s.complianceRateWindowDays = 3
        let scenario = RestartScenario(settings: s, batches: [
            [rContact("X100001", id: 5, start: "2026-01-05T10:00:00Z", occurred: "2026-01-05T11:00:00Z", outcome: "UAAB"),
             rContact("X100001", id: 6, start: "2026-01-05T12:00:00Z", occurred: "2026-01-05T13:00:00Z", outcome: "ATTC",
                      action: "EA02", actionAt: "2026-01-05T13:00:00Z")],
            [rContact("X100002", id: 7, start: "2026-01-09T10:00:00Z", occurred: "2026-01-09T11:00:00Z", outcome: "ATTC"),
             rContact("X100001", id: 5, start: "2026-01-09T09:00:00Z", occurred: "2026-01-09T12:00:00Z", outcome: "UAAB")],
            [rContact("X100002", id: 8, start: "2026-01-16T10:00:00Z", occurred: "2026-01-16T11:00:00Z", outcome: "ATTC")],
        ])
        // What the uninterrupted run publishes in the last batch (the R6 alert, dated W = 2026-01-16, deadline 2026-01-21).
        let plain = try Engine(settings: s)
        var last: [String] = []
        for lines in scenario.batches { var o = Outbox(); feed(plain, lines, into: &o); last = messages(o) }
        #expect(last.isEmpty, "uninterrupted run, last batch: \(last)")
        let why = try restartDivergence(scenario, restartAfter: { _ in true })
        #expect(why == nil, "\(why ?? "")")
    }

    /// Finding B: an R7 timer's heap item keeps the CRN of the case it was armed in. A contact forgotten before its
    /// deadline (retention 3 days, R7 after 1 business day: Friday's deadline is Monday) comes back under another CRN
    /// with the same version and, from the weekend, the same deadline: the stale item passes `fireOutcomeTimer`'s check
    /// (version and deadline) and fires the new case's alert at the old CRN's place in the order (rules.md R7: by
    /// deadline, then CRN, then contactId); a restart rebuilds the heap with the contact's current CRN.
    @Test("R7 alerts due together are raised in CRN order after a forgotten contact came back under another CRN")
    func staleOutcomeItemOrder() throws {
        var s = EngineSettings()
        s.contactRetentionDays = 3
        s.complianceRateWindowDays = 3
        s.outcomeOverdueEnabled = true
        s.outcomeOverdueBusinessDays = 1
        let scenario = RestartScenario(settings: s, batches: [
            [rContact("X100001", id: 5, start: "2026-01-09T09:00:00Z", occurred: "2026-01-09T09:00:00Z", outcome: nil),
             rContact("X100002", id: 7, start: "2026-01-10T10:00:00Z", occurred: "2026-01-10T10:00:00Z", outcome: nil)],
            [rContact("X100004", id: 9, start: "2026-01-12T10:00:00Z", occurred: "2026-01-12T10:00:00Z", outcome: "ATTC"),
             rContact("X100003", id: 5, start: "2026-01-11T10:00:00Z", occurred: "2026-01-12T10:05:00Z", outcome: nil)],
            [rContact("X100004", id: 10, start: "2026-01-13T09:00:00Z", occurred: "2026-01-13T09:00:00Z", outcome: "ATTC")],
        ])
        let plain = try Engine(settings: s)
        var last: [String] = []
        for lines in scenario.batches { var o = Outbox(); feed(plain, lines, into: &o); last = messages(o) }
        let crns = last.compactMap { m in m.range(of: "\"subject\":{\"type\":\"CRN\",\"value\":\"").map { String(m[$0.upperBound...].prefix(7)) } }
        #expect(crns == ["X100002", "X100003"], "uninterrupted run, last batch: \(last)")
        let why = try restartDivergence(scenario, restartAfter: { _ in true })
        #expect(why == nil, "\(why ?? "")")
    }
}
