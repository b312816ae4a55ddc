import ContactWatchEngine
import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Testing

// What a batch writes reads back as the engine's state, across a restart after every batch, at the edges the store's
// hunter found in session 45: a contact forgotten and back under another case in one batch, text with U+0000 (a
// publisherId, a pduCode), and random batches over a few ids, CRNs and a short retention.

private let hMinute: Millis = 60_000
private let hHour: Millis = 3_600_000
private let hDay: Millis = 86_400_000

private func hIso(_ m: Millis) -> String { RFC3339.format(m) }

private func hContact(_ crn: String, id: UInt64, v: UInt64? = nil, start: Millis, outcome: String = "ATTC",
                      pdu: String? = nil, publisher: String? = nil, seq: UInt64? = nil) -> String {
    let version = (v.map { ",\"contactVersion\":\($0)" } ?? "") + (pdu.map { ",\"pduCode\":\"\($0)\"" } ?? "")
    let stamp = publisher.map { ",\"publisherId\":\"\($0)\",\"sequenceNumber\":\(seq ?? 1)" } ?? ""
    return #"{"eventType":"probation-case.contact.recorded","version":1\#(stamp),"occurredAt":"\#(hIso(start + hHour))","#
        + #""personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"#
        + #""additionalInformation":{"contactId":\#(id)\#(version),"contactStart":"\#(hIso(start))","contactMode":"OFFICE","#
        + #""outcome":{"code":"\#(outcome)"}}}"#
}

@Suite("Store round trips at a batch's edges: forgotten and back, text with NUL, random batches", .computing)
struct BatchEdgeRoundTripTests {
    /// A contact forgotten on case A and arriving again, as a new contact, under case B in the same batch stays in
    /// A's packed row (the batch neither deletes it, since the engine has it again, nor replaces it there, since its
    /// record is now B's): the store then holds it in two cases and the next start refuses the store as corrupt.
    @Test("a contact forgotten on one case and back under another in the same batch is in one case's row after a restart")
    func forgottenThenBackUnderAnotherCaseInOneBatch() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var settings = EngineSettings()
        settings.contactRetentionDays = 30
        settings.complianceRateWindowDays = 30
        let first = RFC3339.parse("2026-01-05T10:00:00Z")!
        let store = try StateStore(directory: dir.path)
        let engine = try Engine(settings: settings, state: try store.load().state)
        var outbox = Outbox()
        // Batch 1: contact 900 on case A.
        feed(engine, [hContact("X100001", id: 900, start: first)], into: &outbox)
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                         publishedThrough: nil, now: 1_700_000_000_000)
        outbox.removeAll()
        // Batch 2 (one commit): W moves 35 days on (contact 900 is forgotten), then 900 arrives again under case B.
        let again = first + 35 * hDay
        feed(engine, [hContact("X100001", id: 901, start: again),
                      hContact("X200002", id: 900, v: 2, start: again + hMinute)], into: &outbox)
        #expect(engine.state.contacts[900]?.contactStart == again + hMinute)
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                         publishedThrough: nil, now: 1_700_000_000_001)
        let before = engine.state
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        do {
            let loaded = try reopened.load()
            #expect(sameState(loaded.state, before), "the loaded state differs from the engine's")
        } catch {
            Issue.record("the store the daemon wrote is refused at the next start: \(error)")
        }
    }

    /// The same, with the forgetting and the re-arrival in two batches: no problem (control).
    @Test("the same in two batches")
    func forgottenThenBackUnderAnotherCaseInTwoBatches() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var settings = EngineSettings()
        settings.contactRetentionDays = 30
        settings.complianceRateWindowDays = 30
        let first = RFC3339.parse("2026-01-05T10:00:00Z")!
        let store = try StateStore(directory: dir.path)
        let engine = try Engine(settings: settings, state: try store.load().state)
        var outbox = Outbox()
        let again = first + 35 * hDay
        for lines in [[hContact("X100001", id: 900, start: first)], [hContact("X100001", id: 901, start: again)],
                      [hContact("X200002", id: 900, v: 2, start: again + hMinute)]] {
            outbox.removeAll()
            feed(engine, lines, into: &outbox)
            try store.commit(changes: engine.takeChanges(), state: engine.state,
                             journal: StateStore.journalEntries(from: outbox), publishedThrough: nil, now: 1_700_000_000_000)
        }
        let before = engine.state
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        let loaded = try reopened.load()
        #expect(sameState(loaded.state, before))
    }

    /// A publisherId with U+0000 (valid: "1–64 Unicode scalar values") is stored cut at the NUL (`withText` binds a
    /// C string): after a restart "feed\u0000A"'s position is recorded under "feed", another publisher's id.
    @Test("a publisherId with U+0000 keeps its position across a restart, apart from the publisher named by its text before the NUL")
    func publisherIdWithNULSurvivesARestart() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        let engine = try Engine(settings: EngineSettings(), state: try store.load().state)
        var outbox = Outbox()
        let t0 = RFC3339.parse("2026-01-05T10:00:00Z")!
        feed(engine, [hContact("X100001", id: 1, start: t0, publisher: "feed", seq: 5),
                      hContact("X100001", id: 2, start: t0 + hMinute, publisher: "feed\\u0000A", seq: 1000)], into: &outbox)
        #expect(engine.state.publishers.count == 2)
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                         publishedThrough: nil, now: 1_700_000_000_000)
        let before = engine.state
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        let loaded = try reopened.load().state
        #expect(loaded.publishers.count == 2, "publishers after the restart: \(loaded.publishers)")
        #expect(sameState(loaded, before), "the loaded state differs from the engine's")
        // What it does: "feed\u0000A" is unknown after the restart, so its next message (1001) is a gap of 1000.
        let resumed = try Engine(settings: EngineSettings(), state: loaded)
        var out = Outbox()
        feed(resumed, [hContact("X100001", id: 3, start: t0 + 2 * hMinute, publisher: "feed\\u0000A", seq: 1001)],
             into: &out)
        #expect(!out.messages.contains { $0.topic.contains("stream.gap") }, "\(out.messages.map(\.body))")
    }

    /// A pduCode with U+0000 is stored cut at the NUL: two PDUs that differ after it become one code, and the
    /// next start refuses the store as corrupt ("PDU … appears twice").
    @Test("two pduCodes that differ only after a U+0000 stay two PDUs across a restart")
    func pduCodeWithNULSurvivesARestart() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        let engine = try Engine(settings: EngineSettings(), state: try store.load().state)
        var outbox = Outbox()
        let t0 = RFC3339.parse("2026-01-05T10:00:00Z")!
        feed(engine, [hContact("X100001", id: 1, start: t0, pdu: "N07SUF"),
                      hContact("X100002", id: 2, start: t0 + hMinute, pdu: "N07SUF\\u0000X")], into: &outbox)
        #expect(engine.state.pdus.count == 2)
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                         publishedThrough: nil, now: 1_700_000_000_000)
        let before = engine.state
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        do {
            let loaded = try reopened.load().state
            #expect(sameState(loaded, before), "the loaded state differs: PDUs \(loaded.pdus.map(\.code))")
        } catch {
            Issue.record("the store the daemon wrote is refused at the next start: \(error)")
        }
    }

    /// A contact forgotten by an event of another case (its own case otherwise untouched) is deleted from its
    /// case's row (README: "a forgotten contact's case is named in the batch").
    @Test("a contact forgotten at an event of another case is gone from its case's row after a restart", arguments: ["ATTC", "UAAB"])
    func forgottenByAnotherCasesEvent(outcome: String) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var settings = EngineSettings()
        settings.contactRetentionDays = 30
        settings.complianceRateWindowDays = 30
        let first = RFC3339.parse("2026-01-05T10:00:00Z")!
        let store = try StateStore(directory: dir.path)
        let engine = try Engine(settings: settings, state: try store.load().state)
        var outbox = Outbox()
        for lines in [[hContact("X100001", id: 900, start: first, outcome: outcome)],
                      [hContact("X200002", id: 901, start: first + 35 * hDay)]] {
            outbox.removeAll()
            feed(engine, lines, into: &outbox)
            try store.commit(changes: engine.takeChanges(), state: engine.state,
                             journal: StateStore.journalEntries(from: outbox), publishedThrough: nil, now: 1_700_000_000_000)
        }
        #expect(engine.state.contacts[900] == nil)
        let before = engine.state
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        let loaded = try reopened.load().state
        #expect(loaded.contacts[900] == nil, "the forgotten contact is back after the restart")
        #expect(sameState(loaded, before))
    }

    /// Random streams over a small pool of contact ids, CRNs, outcomes and actions with a short retention, committed in
    /// random batches and reloaded after each: contacts are forgotten and come back, under the same CRN or another (the
    /// engine refuses a move of one not forgotten), within a batch and across batches.
    @Test("random batches over 15 contact ids, 4 CRNs and a retention of 3 days, reloaded after each batch, load as the engine's state", arguments: 0..<30)
    func randomBatches(seed: Int) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var settings = EngineSettings()
        settings.contactRetentionDays = 3
        settings.complianceRateWindowDays = 3
        settings.outcomeOverdueEnabled = true
        var rng = SplitMix64(seed: UInt64(seed) &+ 4500)
        var t = RFC3339.parse("2026-01-05T10:00:00Z")!
        var store = try StateStore(directory: dir.path)
        var engine = try Engine(settings: settings, state: try store.load().state)
        let outcomes = ["ATTC", "UAAB", "AFTC", "AACL", "ATSH", nil]
        var line = 0
        var versions: [UInt64: UInt64] = [:]
        for batchNo in 0..<40 {
            var lines: [String] = []
            for _ in 0..<(1 + rng.below(12)) {
                t += Millis(rng.below(20)) * hHour
                let crn = String(format: "X%06d", 100_001 + rng.below(4))
                let id = UInt64(1 + rng.below(15))
                // Versions only grow per id: a re-arrival under another CRN keeps a higher version.
                versions[id, default: 0] += 1
                let version = max(1, versions[id, default: 1])
                let start = t - Millis(rng.below(5)) * hDay
                let oc = outcomes[rng.below(outcomes.count)]
                let action = rng.below(4) == 0 ? (rng.below(3) == 0 ? "EA06" : "EA02") : nil
                let pdu = ["N07SUF", "N03NOR"][rng.below(2)]
                var info = "\"contactId\":\(id),\"contactVersion\":\(version),\"contactStart\":\"\(hIso(start))\","
                    + "\"contactMode\":\"\(rng.below(3) == 0 ? "TELEPHONE" : "OFFICE")\",\"pduCode\":\"\(pdu)\""
                if let oc { info += ",\"outcome\":{\"code\":\"\(oc)\"}" }
                if let action { info += ",\"enforcementAction\":{\"code\":\"\(action)\",\"actionAt\":\"\(hIso(t))\"}" }
                line += 1
                lines.append(#"{"eventType":"probation-case.contact.recorded","version":1,"publisherId":"p","sequenceNumber":\#(line),"occurredAt":"\#(hIso(t))","personReference":{"identifiers":[{"type":"CRN","value":"\#(crn)"}]},"additionalInformation":{\#(info)}}"#)
            }
            var outbox = Outbox()
            feed(engine, lines, into: &outbox)
            try store.commit(changes: engine.takeChanges(), state: engine.state,
                             journal: StateStore.journalEntries(from: outbox), publishedThrough: nil, now: 1_700_000_000_000)
            let before = engine.state
            store.close()
            store = try StateStore(directory: dir.path)
            do {
                let loaded = try store.load().state
                guard sameState(loaded, before) else {
                    Issue.record("seed \(seed) batch \(batchNo): the loaded state differs from the engine's")
                    return
                }
                engine = try Engine(settings: settings, state: loaded)
            } catch {
                Issue.record("seed \(seed) batch \(batchNo): \(error)")
                return
            }
        }
        store.close()
    }
}
