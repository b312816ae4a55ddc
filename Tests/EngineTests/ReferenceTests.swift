import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
import Foundation
import Testing

/// Random legal settings: short retentions, short R1 windows, deadlines of 1–15 business days, compliance windows and
/// samples, video in person or not, other zones and holiday lists.
func randomSettings(_ rng: inout SeededRandom) -> EngineSettings {
    var s = EngineSettings()
    s.timeZone = rng.weighted([("Europe/London", 6), ("UTC", 1), ("America/New_York", 1), ("Australia/Sydney", 1)])
    if rng.chance(0.2) { s.bankHolidays = s.bankHolidays.filter { _ in rng.chance(0.5) } }
    s.videoCountsAsFaceToFace = rng.chance(0.5)
    s.nonComplianceWindowMonths = rng.weighted([(1, 2), (2, 2), (3, 2), (6, 1), (12, 2), (24, 1)])
    s.enforcementDeadlineBusinessDays = Int.random(in: 1...15, using: &rng)
    s.telephoneOnlyLimitDays = Int.random(in: 1...40, using: &rng)
    s.telephoneOnlyPriorityLimitDays = Int.random(in: 1...30, using: &rng)
    s.remoteContactEnabled = rng.chance(0.8)
    s.noPrivacyMinimumSeverity = rng.pick([.low, .medium, .high])
    // Retention from a few days to longer than the stream; the compliance window never longer than it, and often
    // as long (a window as long as the retention reaches back to the cutoff's date).
    s.contactRetentionDays = rng.weighted([(Int.random(in: 3...30, using: &rng), 3), (Int.random(in: 31...90, using: &rng), 4),
                                           (Int.random(in: 91...400, using: &rng), 2)])
    s.complianceRateWindowDays = rng.chance(0.3) ? s.contactRetentionDays
        : Int.random(in: 1...min(s.contactRetentionDays, 120), using: &rng)
    s.complianceRateMinimumSample = Int.random(in: 1...20, using: &rng)
    s.complianceRateThreshold = rng.pick([0.5, 0.6, 0.75, 0.8, 0.9, 1.0])
    s.complianceRateHysteresis = rng.pick([0.0, 0.02, 0.05, 0.1])
    s.outcomeOverdueEnabled = rng.chance(0.6)
    s.outcomeOverdueBusinessDays = Int.random(in: 1...10, using: &rng)
    return s
}

func describe(_ s: EngineSettings) -> String {
    "zone=\(s.timeZone) holidays=\(s.bankHolidays.count) video=\(s.videoCountsAsFaceToFace) "
        + "windowMonths=\(s.nonComplianceWindowMonths) deadline=\(s.enforcementDeadlineBusinessDays) "
        + "phone=\(s.telephoneOnlyLimitDays)/\(s.telephoneOnlyPriorityLimitDays) remote=\(s.remoteContactEnabled) "
        + "privacy=\(s.noPrivacyMinimumSeverity) retention=\(s.contactRetentionDays) rateWindow=\(s.complianceRateWindowDays) "
        + "sample=\(s.complianceRateMinimumSample) threshold=\(s.complianceRateThreshold)+\(s.complianceRateHysteresis) "
        + "R7=\(s.outcomeOverdueEnabled)/\(s.outcomeOverdueBusinessDays)"
}

/// The engine as it runs (heaps, forgetting through its contactStart index) against the engine in reference mode
/// (forgets by scanning every contact at every event, scans every open alert in step 6): byte-identical messages
/// (same wall clock, so `detectedAt` is equal too), over seeded random streams with enforcement recorded weeks after
/// its contacts, and random legal settings. Each combination also resumes a second engine from the first's state
/// half-way.
@Suite("Property: the engine equals its reference reading under random legal settings", .computing)
struct ReferenceTests {
    static let batches = 8
    static let perBatch = 25

    /// A stream as message frames (topic, body), so that several engines are fed without parsing it again.
    static func frames(_ lines: [String]) -> [(topic: [UInt8]?, body: [UInt8])] {
        lines.map { line in
            let body = Array(line.utf8)
            if let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let t = o["eventType"] as? String {
                return (Array(t.utf8), body)
            }
            return (nil, body)
        }
    }

    static func feed(_ e: Engine, _ frames: ArraySlice<(topic: [UInt8]?, body: [UInt8])>) -> [(topic: String, body: String)] {
        var out = Outbox()
        for (topic, body) in frames {
            body.withUnsafeBytes { b in
                if let topic {
                    topic.withUnsafeBytes { t in e.process(frameCount: 2, topic: t, body: b, now: testNow, into: &out) }
                } else {
                    e.process(frameCount: 1, topic: nil, body: b, now: testNow, into: &out)
                }
            }
        }
        return out.messages.map { ($0.topic, $0.body) }
    }

    struct Outcome {
        var messages = 0
        var forgotten = 0
        var raisedR1 = 0
        var raisedR7 = 0
        var resolvedR7 = 0
    }

    static func check(seed: UInt64) throws -> Outcome {
        var rng = SeededRandom(seed: seed ^ 0x5EED_5E77)
        let settings = randomSettings(&rng)
        let stream = frames(generateStream(seed: seed, events: 250, cases: 8, lateEnforcement: true))
        let label = "seed \(seed): \(describe(settings))"

        let fast = try Engine(settings: settings)
        let reference = try Engine(settings: settings, state: EngineState(), referenceMode: true)
        let a = feed(fast, stream[...])
        let b = feed(reference, stream[...])
        try #require(a.count == b.count, "\(label): \(a.count) messages, reference \(b.count)")
        for (k, (x, y)) in zip(a, b).enumerated() where x.topic != y.topic || x.body != y.body {
            Issue.record("\(label): message \(k + 1) differs\n   engine \(x.topic) \(x.body)\nreference \(y.topic) \(y.body)")
            break
        }
        #expect(fast.state.contacts == reference.state.contacts, "\(label): remembered contacts differ")

        let half = stream.count / 2
        let first = try Engine(settings: settings)
        let resumedA = feed(first, stream.prefix(half))
        let second = try Engine(settings: settings, state: first.state)
        let resumed = resumedA + feed(second, stream.dropFirst(half))
        try #require(resumed.count == a.count, "\(label): resumed engine published \(resumed.count), whole \(a.count)")
        for (k, (x, y)) in zip(a, resumed).enumerated() where x.body != y.body {
            Issue.record("\(label): resumed message \(k + 1) differs\n  whole \(x.body)\nresumed \(y.body)")
            break
        }
        return Outcome(messages: a.count, forgotten: fast.counters.forgottenContacts,
                       raisedR1: fast.counters.raisedByRule[Int(Rule.warningDue.rawValue)]
                           + fast.counters.raisedByRule[Int(Rule.breachDue.rawValue)],
                       raisedR7: fast.counters.raisedByRule[Int(Rule.outcomeOverdue.rawValue)],
                       resolvedR7: fast.counters.resolvedByRule[Int(Rule.outcomeOverdue.rawValue)])
    }

    @Test("random streams × random settings: engine, reference and resumed engine agree", arguments: 0..<batches)
    func agree(batch: Int) throws {
        var total = Outcome()
        for k in 0..<Self.perBatch {
            let o = try Self.check(seed: UInt64(1000 + batch * Self.perBatch + k))
            total.messages += o.messages
            total.forgotten += o.forgotten
            total.raisedR1 += o.raisedR1
            total.raisedR7 += o.raisedR7
            total.resolvedR7 += o.resolvedR7
        }
        // The combinations do exercise what they are about.
        #expect(total.messages > 50 * Self.perBatch)
        #expect(total.forgotten > 20 * Self.perBatch, "few contacts forgotten: \(total.forgotten)")
        #expect(total.raisedR1 > 5 * Self.perBatch)
        #expect(total.raisedR7 > Self.perBatch && total.resolvedR7 > 0, "R7: \(total.raisedR7) raised, \(total.resolvedR7) resolved")
    }

    @Test("the late-enforcement streams carry actions recorded weeks after their contacts")
    func lateEnforcementInStreams() throws {
        var late = 0
        for seed in UInt64(1000)..<1010 {
            for line in generateStream(seed: seed, events: 250, cases: 8, lateEnforcement: true) {
                guard let o = jsonObject(line), let info = o["additionalInformation"] as? [String: Any],
                      info["enforcementAction"] != nil, let start = info["contactStart"] as? String,
                      let at = o["occurredAt"] as? String else { continue }
                if t(at) - t(start) > 14 * day { late += 1 }
            }
        }
        #expect(late > 100, "\(late) late actions")
    }
}
