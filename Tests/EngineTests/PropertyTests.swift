import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// The tests' seeded generator, with the draws the property tests need.
typealias SeededRandom = SplitMix64

extension SplitMix64 {
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
    /// Picks by weight.
    mutating func weighted<T>(_ items: [(T, Int)]) -> T {
        var r = Int.random(in: 0..<items.reduce(0) { $0 + $1.1 }, using: &self)
        for (item, w) in items {
            if r < w { return item }
            r -= w
        }
        return items[0].0
    }
}

/// A random but valid stream: failures, actions, updates, duplicates, registers, phone contacts, booths, late records,
/// a few invalid and ignored messages and sequence gaps. With `lateEnforcement`, also versions that add an enforcement
/// action (warning, breach, NFA, withdrawal) weeks after their contact, effective when recorded.
func generateStream(seed: UInt64, events: Int = 400, cases: Int = 30, lateEnforcement: Bool = false) -> [String] {
    var rng = SeededRandom(seed: seed)
    let crns = (0..<cases).map { String(format: "X2%05d", $0 * 37 + 11) }
    struct Known { var crn: String; var version: UInt64; var start: Millis }
    var contacts: [UInt64: Known] = [:]
    var byCase: [String: [UInt64]] = [:]
    var nextId: UInt64 = 7_000_000
    var clock = t("2026-01-05 08:00")
    var seq: UInt64 = 0
    var lines: [String] = []

    func mode(_ rng: inout SeededRandom) -> (type: String?, mode: String?) {
        if rng.chance(0.4) {
            return (rng.weighted([("COAP", 5), ("COAI", 1), ("COSR", 1), ("COOO", 1), ("C084", 1), ("CHVS", 2), ("COHV", 1),
                                   ("CODC", 1), ("CODI", 1), ("COPT", 4), ("CTOA", 1), ("CTOB", 1), ("COVC", 1)]), nil)
        }
        let m = rng.weighted([("OFFICE", 8), ("TELEPHONE", 6), ("HOME_VISIT", 2), ("VIDEO", 1), ("DOORSTEP", 1),
                              ("OTHER_IN_PERSON", 1), ("TEXT_OR_ONLINE", 1)])
        return (rng.chance(0.1) ? "ZZZZ" : nil, m)
    }

    func body(_ rng: inout SeededRandom, crn: String, id: UInt64, version: UInt64?, start: Millis, at: Millis,
              lateAction: Bool = false) -> String {
        let (type, m) = mode(&rng)
        var outcome: String? = lateAction
            ? rng.weighted([("UAAB", 4), ("AFTC", 1), ("ATTC", 1)])
            : rng.weighted([("ATTC", 10), ("UAAB", 3), ("AFTC", 1), ("ATSH", 1), ("AFTA", 1), ("AAME", 2),
                            ("ATSS", 1), ("CO05", 1), ("XXXX", 1), ("-", 2)])
        if outcome == "-" || start > at { outcome = nil }
        let flags: (Bool, Bool, Bool)? = outcome == "XXXX" ? (rng.chance(0.5), false, true) : nil
        let action: String? = lateAction
            ? rng.weighted([("EA02", 5), ("EA03", 1), ("LCL", 2), ("EA08", 2), ("IBR", 1), ("NFA", 1), ("EA06", 1), ("EA07", 1)])
            : rng.weighted([("-", 30), ("EA02", 4), ("EA03", 1), ("LCL", 1), ("EA08", 2), ("IBR", 1),
                            ("NFA", 2), ("EA06", 1), ("EA07", 1), ("ROM", 1)])
        let actionAt: Millis? = rng.chance(0.5) ? at - Millis.random(in: 0...(lateAction ? day : 3 * day), using: &rng) : nil
        let setting: String? = rng.chance(0.5) ? nil : rng.pick(["PRIVATE_ROOM", "OPEN_BOOTH", "SHARED_PUBLIC_SPACE", "HOME", "DOORSTEP", "UNKNOWN"])
        let sentence: String? = rng.chance(0.9) ? nil : rng.pick(["LICENCE", "COMMUNITY_ORDER", "SUSPENDED_SENTENCE_ORDER", "POST_SENTENCE_SUPERVISION"])
        let pdu: String? = rng.chance(0.15) ? nil : rng.pick(["N07SUF", "N07NOR", "N03CAM"])
        return contact(crn, id: id, v: version, start: start, at: at, type: type, mode: m, outcome: outcome, flags: flags,
                       action: action == "-" ? nil : action, actionAt: action == "-" ? nil : actionAt, setting: setting,
                       sensitive: rng.chance(0.1) ? true : nil, sentence: sentence, pdu: pdu,
                       publisher: "gen", seq: seq)
    }

    for _ in 0..<events {
        clock += Millis.random(in: (5 * minute)...(16 * hour), using: &rng)
        seq += rng.chance(0.02) ? 2 : 1
        let crn = rng.pick(crns)
        let roll = Double.random(in: 0..<1, using: &rng)
        if roll < 0.10 {
            let code = rng.pick(["RVHR", "RHRH", "RMRH", "RLRH", "MAPP", "RCPR", "RCCO", "RCHD", "ADVP", "ADVV", "XXXX"])
            let kind = rng.weighted([("added", 5), ("updated", 1), ("deregistered", 2), ("deleted", 1)])
            lines.append(reg(code, level: code == "MAPP" ? rng.pick(["M1", "M2", "M3"]) : nil, kind: kind, crn: crn, at: clock,
                             publisher: "gen", seq: seq))
        } else if roll < 0.12 {
            lines.append(#"{"eventType":"probation-case.unlisted.thing","publisherId":"gen","sequenceNumber":\#(seq)}"#)
        } else if roll < 0.13 {
            lines.append(RawEvent.contact().with("version", "2").with("publisherId", q("gen")).with("sequenceNumber", "\(seq)").text)
        } else if lateEnforcement && roll < 0.20,
                  case let old = (byCase[crn] ?? []).filter({ contacts[$0]!.start < clock - 14 * day && contacts[$0]!.start > clock - 80 * day }),
                  !old.isEmpty {
            // An enforcement action recorded weeks after its contact, as a new version.
            let id = rng.pick(old)
            var k = contacts[id]!
            k.version += 1
            contacts[id] = k
            lines.append(body(&rng, crn: k.crn, id: id, version: k.version, start: k.start, at: clock, lateAction: true))
        } else if roll < 0.32, let ids = byCase[crn], !ids.isEmpty {
            // An update (sometimes a duplicate) of one of the case's contacts.
            let id = rng.pick(ids)
            var k = contacts[id]!
            let duplicate = rng.chance(0.15)
            if !duplicate { k.version += UInt64.random(in: 1...2, using: &rng) }
            if !duplicate && rng.chance(0.2) { k.start = min(clock, k.start + Millis.random(in: -day...day, using: &rng)) }
            contacts[id] = duplicate ? contacts[id]! : k
            lines.append(body(&rng, crn: k.crn, id: id, version: duplicate ? contacts[id]!.version : k.version,
                              start: k.start, at: clock))
        } else {
            nextId += UInt64.random(in: 1...3, using: &rng)
            let late = rng.chance(0.1) ? Millis.random(in: (2 * day)...(25 * day), using: &rng) : Millis.random(in: 0...(6 * hour), using: &rng)
            let start = rng.chance(0.05) ? clock + Millis.random(in: day...(5 * day), using: &rng) : clock - late
            contacts[nextId] = Known(crn: crn, version: 1, start: start)
            byCase[crn, default: []].append(nextId)
            lines.append(body(&rng, crn: crn, id: nextId, version: rng.chance(0.5) ? 1 : nil, start: start, at: clock))
        }
    }
    return lines
}

@Suite("Property: determinism and alert lifecycle invariants", .computing)
struct PropertyTests {
    static let seeds: [UInt64] = [1, 2, 3, 42, 2026, 0xC0FFEE]

    func settings() -> EngineSettings {
        var s = EngineSettings()
        s.complianceRateMinimumSample = 8
        return s
    }

    @Test("two fresh engines fed the same stream differ only in detectedAt", arguments: seeds)
    func determinism(seed: UInt64) throws {
        let lines = generateStream(seed: seed)
        let now1 = testNow
        let now2 = testNow + 9 * day + 123
        let a = Harness(settings(), now: now1)
        let b = Harness(settings(), now: now2)
        for line in lines {
            a.send(line)
            b.send(line)
        }
        try #require(a.all.count == b.all.count)
        #expect(a.all.count > 50, "the stream should make plenty of messages")
        for (x, y) in zip(a.all, b.all) {
            #expect(x.topic == y.topic)
            #expect(x.withoutDetectedAt == y.withoutDetectedAt, "\n\(x.body)\n\(y.body)")
            #expect(x.json["detectedAt"] as? String == iso(now1))
            #expect(y.json["detectedAt"] as? String == iso(now2))
            #expect(x.body != y.body)
            // Byte-identical once the one differing field is put back.
            #expect(x.body.replacingOccurrences(of: iso(now1), with: iso(now2)) == y.body)
        }
    }

    @Test("alert lifecycle invariants hold on random streams", arguments: seeds)
    func invariants(seed: UInt64) {
        let h = Harness(settings())
        for line in generateStream(seed: seed) { h.send(line) }
        var open: [String: Msg] = [:]
        var everRaised: Set<String> = []
        var expectedSequence = 1
        var previous: Msg? = nil
        for m in h.all {
            defer { previous = m }
            if m.topic != "stream.gap" { #expect(m.reason?.isEmpty == false, "no reason: \(m.body)") }
            guard m.isAlert else {
                #expect(m.json["alertSequence"] == nil)
                continue
            }
            #expect(m.seq == expectedSequence, "alertSequence \(String(describing: m.seq)), expected \(expectedSequence)")
            expectedSequence += 1
            let id = m.alertId ?? ""
            #expect(m.topic == (m.isRaise ? "alert.raised." : "alert.resolved.") + (m.rule ?? ""))
            #expect((m.subjectType == "PDU") == (m.json["personReference"] == nil))
            if m.isRaise {
                #expect(!everRaised.contains(id), "alertId \(id) raised twice")
                everRaised.insert(id)
                open[id] = m
                let text = "\(m.rule!)|\(m.subjectType!)|\(m.subjectValue!)|\(m.triggerContactId!)|\(m.triggerContactVersion!)"
                #expect(id == alertIdText(text))
                if m.rule == R.overdue {
                    let r1 = open[m.evString("overdueAlertId") ?? ""]
                    #expect(r1 != nil && R.r1.contains(r1?.rule ?? ""), "R6 for an R1 alert that is not open")
                    #expect(r1?.triggerContactId == m.triggerContactId && r1?.subjectValue == m.subjectValue)
                }
            } else {
                let raise = open.removeValue(forKey: id)
                #expect(raise != nil, "resolution of \(id), which is not open: \(m.body)")
                #expect(raise?.rule == m.rule && raise?.severity == m.severity && raise?.subjectValue == m.subjectValue)
                #expect(![R.excluded, R.noPrivacy].contains(m.rule ?? ""), "point alerts are never resolved")
                if m.rule == R.overdue {
                    // Right after its R1 alert's resolution, copying it.
                    #expect(previous?.isResolve == true && previous?.alertId == m.evString("overdueAlertId"))
                    #expect(previous?.resolution == m.resolution && previous?.resolvedBy == m.resolvedBy)
                    #expect(previous?.occurredAt == m.occurredAt)
                }
                if R.r1.contains(m.rule ?? "") {
                    // An R1 resolution with an open R6 alert is followed by that R6 resolution (checked above); so no
                    // R6 alert may stay open for a resolved R1 alert.
                    let r6 = alertIdText("\(R.overdue)|CRN|\(m.subjectValue!)|\(m.triggerContactId!)|\(m.triggerContactVersion!)")
                    if open[r6] != nil {
                        let next = h.all.drop { $0.body != m.body }.dropFirst().first
                        #expect(next?.alertId == r6)
                    }
                }
            }
        }
        // At most one open telephone-only alert per case, one rate alert per PDU.
        for rule in [R.telephoneOnly, R.rate] {
            let subjects = open.values.filter { $0.rule == rule }.map { $0.subjectValue ?? "" }
            #expect(subjects.count == Set(subjects).count)
        }
        let rules = Set(h.all.filter(\.isRaise).compactMap(\.rule))
        #expect(rules.count >= 6, "rules raised for seed \(seed): \(rules.sorted())")
    }

    @Test("an engine resumed from another engine's state mid-stream publishes the same messages", arguments: seeds)
    func resume(seed: UInt64) throws {
        let lines = generateStream(seed: seed)
        let whole = Harness(settings())
        for line in lines { whole.send(line) }
        let first = Harness(settings())
        for line in lines.prefix(lines.count / 2) { first.send(line) }
        let second = Harness(engine: try Engine(settings: settings(), state: first.engine.state))
        for line in lines.dropFirst(lines.count / 2) { second.send(line) }
        let resumed = first.all + second.all
        try #require(resumed.count == whole.all.count)
        for (x, y) in zip(whole.all, resumed) { #expect(x.body == y.body) }
    }

    @Test("the generated streams exercise every rule and resolution kind (over all seeds)")
    func coverage() {
        var rules: Set<String> = []
        var resolutions: Set<String> = []
        for seed in Self.seeds {
            let h = Harness(settings())
            for line in generateStream(seed: seed) { h.send(line) }
            rules.formUnion(h.all.filter(\.isRaise).compactMap(\.rule))
            resolutions.formUnion(h.all.filter(\.isResolve).compactMap(\.resolution))
            #expect(!h.gaps.isEmpty && !h.notices.isEmpty)
        }
        #expect(rules == [R.warningDue, R.breachDue, R.licenceReview, R.overdue, R.telephoneOnly, R.excluded, R.noPrivacy, R.rate])
        #expect(resolutions == ["ENFORCEMENT_ACTION", "RECLASSIFIED", "IN_PERSON_CONTACT", "RATE_RECOVERED"])
    }
}
