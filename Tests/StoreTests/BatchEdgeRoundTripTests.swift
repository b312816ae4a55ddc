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
    /// A retention of 30 days (and R5's window with it), so a contact is forgotten within the stream.
    static var shortMemory: EngineSettings {
        var settings = EngineSettings()
        settings.contactRetentionDays = 30
        settings.complianceRateWindowDays = 30
        return settings
    }

    static let first = RFC3339.parse("2026-01-05T10:00:00Z")!

    /// Feeds each batch to one engine over a fresh store, committing after each, then opens the store again: the
    /// engine's state at the end, and what the store loads (or why it refuses to).
    static func roundTrip(_ batches: [[String]], settings: EngineSettings = EngineSettings())
        throws -> (engine: EngineState, loaded: Result<EngineState, any Error>) {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        let engine = try Engine(settings: settings, state: try store.load().state)
        for (k, lines) in batches.enumerated() {
            var outbox = Outbox()
            feed(engine, lines, into: &outbox)
            try store.commit(changes: engine.takeChanges(), state: engine.state, journal: StateStore.journalEntries(from: outbox),
                             publishedThrough: nil, now: 1_700_000_000_000 + Millis(k))
        }
        let state = engine.state
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        return (state, Result { try reopened.load().state })
    }

    /// The loaded state, recording an issue when the store was refused.
    static func loaded(_ result: Result<EngineState, any Error>, sourceLocation: SourceLocation = #_sourceLocation) -> EngineState? {
        switch result {
        case .success(let state): return state
        case .failure(let error):
            Issue.record("the store the daemon wrote is refused at the next start: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// A contact forgotten on case A and arriving again, as a new contact, under case B in the same batch stayed in
    /// A's packed row (the batch neither deleted it, since the engine has it again, nor replaced it there, since its
    /// record is now B's): the store then held it in two cases and the next start refused the store as corrupt.
    @Test("a contact forgotten on one case and back under another, in the same batch or in two, is in one case's row after a restart",
          arguments: [true, false])
    func forgottenThenBackUnderAnotherCase(oneBatch: Bool) throws {
        let again = Self.first + 35 * hDay
        // W moves 35 days on (contact 900 is forgotten), then 900 arrives again under case B.
        let later = [hContact("X100001", id: 901, start: again), hContact("X200002", id: 900, v: 2, start: again + hMinute)]
        let batches = [[hContact("X100001", id: 900, start: Self.first)]] + (oneBatch ? [later] : later.map { [$0] })
        let (state, result) = try Self.roundTrip(batches, settings: Self.shortMemory)
        #expect(state.contacts[900]?.contactStart == again + hMinute)
        guard let loaded = Self.loaded(result) else { return }
        #expect(sameState(loaded, state), "the loaded state differs from the engine's")
    }

    /// The same when the arrival under case B is itself what carries W past the old contact (taken as new since session
    /// 46; it was refused as another CRN's), alone in its batch or with the first.
    @Test("a contact whose arrival under another case itself forgets it is in one case's row after a restart", arguments: [true, false])
    func forgottenByItsOwnArrivalUnderAnotherCase(oneBatch: Bool) throws {
        let again = Self.first + 35 * hDay
        let lines = [hContact("X100001", id: 900, start: Self.first), hContact("X200002", id: 900, v: 2, start: again)]
        let (state, result) = try Self.roundTrip(oneBatch ? [lines] : lines.map { [$0] }, settings: Self.shortMemory)
        #expect(state.contacts[900]?.contactStart == again)
        guard let loaded = Self.loaded(result) else { return }
        #expect(sameState(loaded, state), "the loaded state differs from the engine's")
    }

    /// A publisherId with U+0000 (valid: "1–64 Unicode scalar values") was stored cut at the NUL (`withText` bound a
    /// C string): after a restart "feed\u0000A"'s position was recorded under "feed", another publisher's id.
    @Test("a publisherId with U+0000 keeps its position across a restart, apart from the publisher named by its text before the NUL")
    func publisherIdWithNULSurvivesARestart() throws {
        let (state, result) = try Self.roundTrip([[
            hContact("X100001", id: 1, start: Self.first, publisher: "feed", seq: 5),
            hContact("X100001", id: 2, start: Self.first + hMinute, publisher: "feed\\u0000A", seq: 1000),
        ]])
        #expect(state.publishers.count == 2)
        guard let loaded = Self.loaded(result) else { return }
        #expect(loaded.publishers.count == 2, "publishers after the restart: \(loaded.publishers)")
        #expect(sameState(loaded, state), "the loaded state differs from the engine's")
        // Cut, "feed\u0000A" was unknown after the restart, so its next message (1001) was a gap of 1000.
        let resumed = try Engine(settings: EngineSettings(), state: loaded)
        var out = Outbox()
        feed(resumed, [hContact("X100001", id: 3, start: Self.first + 2 * hMinute, publisher: "feed\\u0000A", seq: 1001)],
             into: &out)
        #expect(!out.messages.contains { $0.topic.contains("stream.gap") }, "\(out.messages.map(\.body))")
    }

    /// The engine notes the publisher it last heard from in the change set once a batch, not once an event
    /// (`Engine.lastPublisherNoted`, reset with each change set taken and at each change of publisher): a later batch
    /// of the same publisher, read by the same engine, must still store its position.
    @Test("a publisher's position is stored with every batch it is in, one engine reading them all, also between others")
    func publisherPositionStoredWithEveryBatch() throws {
        let (state, result) = try Self.roundTrip([
            [hContact("X100001", id: 1, start: Self.first, publisher: "feed", seq: 1),
             hContact("X100001", id: 2, start: Self.first + hMinute, publisher: "feed", seq: 2)],
            [hContact("X100001", id: 3, start: Self.first + 2 * hMinute, publisher: "feed", seq: 3)],
            [hContact("X100001", id: 4, start: Self.first + 3 * hMinute, publisher: "feed", seq: 4),
             hContact("X100001", id: 5, start: Self.first + 4 * hMinute, publisher: "other", seq: 7),
             hContact("X100001", id: 6, start: Self.first + 5 * hMinute, publisher: "feed", seq: 5)],
            [hContact("X100001", id: 7, start: Self.first + 6 * hMinute, publisher: "feed", seq: 6)],
        ])
        #expect(state.publishers[ExactString("feed")] == 6 && state.publishers[ExactString("other")] == 7)
        guard let loaded = Self.loaded(result) else { return }
        #expect(loaded.publishers[ExactString("feed")] == 6, "feed's position after the restart: \(loaded.publishers)")
        #expect(loaded.publishers[ExactString("other")] == 7)
        #expect(sameState(loaded, state), "the loaded state differs from the engine's")
    }

    /// A pduCode with U+0000 was stored cut at the NUL: two PDUs that differ after it became one code, and the next
    /// start refused the store as corrupt ("PDU … appears twice").
    @Test("two pduCodes that differ only after a U+0000 stay two PDUs across a restart")
    func pduCodeWithNULSurvivesARestart() throws {
        let (state, result) = try Self.roundTrip([[
            hContact("X100001", id: 1, start: Self.first, pdu: "N07SUF"),
            hContact("X100002", id: 2, start: Self.first + hMinute, pdu: "N07SUF\\u0000X"),
        ]])
        #expect(state.pdus.count == 2)
        guard let loaded = Self.loaded(result) else { return }
        #expect(sameState(loaded, state), "the loaded state differs: PDUs \(loaded.pdus.map(\.code))")
    }

    /// A contact forgotten by an event of another case (its own case otherwise untouched) is deleted from its
    /// case's row (README: "a forgotten contact's case is named in the batch").
    @Test("a contact forgotten at an event of another case is gone from its case's row after a restart", arguments: ["ATTC", "UAAB"])
    func forgottenByAnotherCasesEvent(outcome: String) throws {
        let (state, result) = try Self.roundTrip([[hContact("X100001", id: 900, start: Self.first, outcome: outcome)],
                                                  [hContact("X200002", id: 901, start: Self.first + 35 * hDay)]],
                                                 settings: Self.shortMemory)
        #expect(state.contacts[900] == nil)
        guard let loaded = Self.loaded(result) else { return }
        #expect(loaded.contacts[900] == nil, "the forgotten contact is back after the restart")
        #expect(sameState(loaded, state))
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
