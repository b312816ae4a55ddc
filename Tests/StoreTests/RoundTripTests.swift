import ContactWatchTestThreads
import ContactWatchTestSupport
import ContactWatchEngine
import ContactWatchStore
import Foundation
import Testing

/// Runs `lines` through an engine that commits its changes to a store every `batch` lines and is rebuilt from the
/// store (closed, reopened, loaded) at each index in `restarts`; returns every message it produced. Checks at each
/// restart that the loaded state equals the state the engine had.
func runWithRestarts(settings: EngineSettings, lines: [String], batch: Int, restarts: Set<Int>, dir: TempDir,
                     publishLag: Int = 0) throws -> (messages: [String], state: EngineState) {
    var store = try StateStore(directory: dir.path)
    var (loaded, unpublished) = try store.load()
    #expect(unpublished.isEmpty)
    var engine = try Engine(settings: settings, state: loaded)
    var all: [String] = []
    var outbox = Outbox()
    var committedSequence: UInt64 = 0
    var i = 0
    while i < lines.count {
        let end = min(i + batch, lines.count)
        outbox.removeAll()
        feed(engine, lines[i..<end], into: &outbox)
        all += messages(outbox)
        let journal = StateStore.journalEntries(from: outbox)
        // Alerts are published once durable; with a lag, the previous batch's are recorded as published now.
        let published = committedSequence > UInt64(publishLag) ? committedSequence - UInt64(publishLag) : nil
        try store.commit(changes: engine.takeChanges(), state: engine.state, journal: journal,
                         publishedThrough: published, now: 1_700_000_000_000 + Int64(end))
        committedSequence = engine.state.alertSequence
        i = end
        if restarts.contains(i) {
            let before = engine.state
            store.close()
            store = try StateStore(directory: dir.path)
            (loaded, unpublished) = try store.load()
            #expect(sameState(loaded, before), "state after restart at line \(i) differs")
            // Unpublished: exactly the alerts after the recorded publishedThrough.
            let lastPublished = published ?? 0
            let expected = lastPublished < before.alertSequence ? Array((lastPublished + 1)...before.alertSequence) : []
            #expect(unpublished.map(\.alertSequence) == expected)
            engine = try Engine(settings: settings, state: loaded)
        }
    }
    store.close()
    return (all, engine.state)
}

@Suite(.computing) struct RoundTripTests {
    @Test(arguments: Fixtures.exampleNames)
    func examplesContinueAfterRestart(name: String) throws {
        let lines = try Fixtures.lines("\(name).ndjson")
        let settings = try Fixtures.settings(for: name)
        var reference = Outbox()
        let refEngine = try Engine(settings: settings)
        feed(refEngine, lines[...], into: &reference)
        let dir = TempDir()
        defer { dir.cleanup() }
        // Restart after every other line.
        let restarts = Set(stride(from: 2, to: lines.count, by: 2))
        let (got, final) = try runWithRestarts(settings: settings, lines: lines, batch: 2, restarts: restarts, dir: dir)
        #expect(got == messages(reference))
        #expect(sameState(final, refEngine.state))
        #expect(!got.isEmpty)
    }

    /// Seeds 1-3 with the default settings; 4 and 5 with a 90-day contact retention, so contacts are forgotten
    /// between restarts.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func syntheticStreamContinuesAfterRestarts(seed: UInt64) throws {
        let lines = SyntheticStream.generate(seed: seed, count: 3000)
        var settings = EngineSettings()
        settings.complianceRateMinimumSample = 20
        if seed >= 4 { settings.contactRetentionDays = 90 }
        var reference = Outbox()
        let refEngine = try Engine(settings: settings)
        feed(refEngine, lines[...], into: &reference)
        let expected = messages(reference)
        // The stream exercises what the store has to keep.
        #expect(expected.contains { $0.hasPrefix("alert.raised.non-compliance.breach-due ") })
        #expect(expected.contains { $0.hasPrefix("alert.resolved.") })
        #expect(expected.contains { $0.hasPrefix("alert.raised.non-compliance.enforcement-overdue ") })
        #expect(expected.contains { $0.hasPrefix("alert.raised.telephone-only ") })
        #expect(expected.contains { $0.hasPrefix("stream.gap ") })
        #expect(!refEngine.state.withdrawn.isEmpty)
        #expect(refEngine.counters.duplicates > 0)
        if seed >= 4 { #expect(refEngine.counters.forgottenContacts > 100) }

        let dir = TempDir()
        defer { dir.cleanup() }
        let restarts: Set<Int> = [97 * 3, 97 * 10, 97 * 11, 97 * 20, 97 * 29]
        let (got, final) = try runWithRestarts(settings: settings, lines: lines, batch: 97, restarts: restarts, dir: dir,
                                               publishLag: 5)
        // The restarted engine ends in the same state as the one that never stopped.
        #expect(sameState(final, refEngine.state))
        #expect(final.contacts.count == refEngine.state.contacts.count)
        #expect(got.count == expected.count)
        #expect(got == expected)
        if let k = zip(got, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("first difference at message \(k):\n  got      \(got[k])\n  expected \(expected[k])")
        }

        // The journal holds every alert message, in order, byte for byte.
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let journal = try store.journal(after: 0, limit: 1_000_000)
        let alerts = expected.filter { $0.hasPrefix("alert.") }
        #expect(journal.map { String(decoding: $0.topic, as: UTF8.self) + " " + String(decoding: $0.body, as: UTF8.self) } == alerts)
        #expect(journal.map(\.alertSequence) == Array(1...UInt64(alerts.count)))
        #expect(try store.latestSequence() == UInt64(alerts.count))
    }

    /// A large batch (keys in many orders of magnitude, so that every byte of the keys differs somewhere) round
    /// trips, and so do later batches that delete and rewrite part of it.
    @Test func largeBatchesRoundTrip() throws {
        var state = syntheticState(cases: 3000, contactsPerCase: 3)
        var rng = SyntheticStream.Rng(seed: 99)
        var spread = ContactTable()
        for (id, rec) in state.contacts { spread[id ^ (rng.next() & 0xFFFF_FF00_0000_0000)] = rec }
        state.contacts = spread
        let ids = state.contacts.keys.sorted()
        state.withdrawn = Dictionary(uniqueKeysWithValues: ids.prefix(500).map {
            ($0, ActionRecord(contactId: $0, start: Int64(rng.below(1 << 40))))
        })
        let dir = TempDir()
        defer { dir.cleanup() }
        var store = try StateStore(directory: dir.path)
        var changes = ChangeSet()
        changes.cases = DenseSet(0..<UInt32(state.cases.count))
        changes.contacts = ContactLog(state.contacts.keys)
        changes.pdus = DenseSet(0..<Int32(state.pdus.count))
        changes.publishers = Set(state.publishers.keys)
        changes.withdrawn = IDSet(state.withdrawn.keys)
        try store.commit(changes: changes, state: state, journal: [], publishedThrough: nil, now: 0)

        // Forget a few hundred contacts, withdraw nothing more, touch some cases.
        changes = ChangeSet()
        for _ in 0..<700 {
            let id = ids[rng.below(ids.count)]
            guard let rec = state.contacts.removeValue(forKey: id) else { continue }
            if rng.chance(0.5) { changes.forgottenContacts.append(id) } else { changes.contacts.append(id) }
            // As the engine does: a contact leaves the store with its case named (its row holds the contact).
            changes.cases.insert(rec.caseIndex)
            if state.withdrawn.removeValue(forKey: id) != nil { changes.withdrawn.insert(id) }
        }
        for _ in 0..<400 {
            let ci = rng.below(state.cases.count)
            state.cases[ci].lastInPersonAt += 1
            changes.cases.insert(UInt32(ci))
        }
        try store.commit(changes: changes, state: state, journal: [], publishedThrough: nil, now: 0)
        store.close()
        store = try StateStore(directory: dir.path)
        defer { store.close() }
        #expect(sameState(try store.load().state, state))
    }

    /// Contacts forgotten by the engine (older than input.contactRetentionDays) are deleted from the store.
    @Test func forgottenContactsAreDeleted() throws {
        var settings = EngineSettings()
        settings.contactRetentionDays = 90
        let lines = SyntheticStream.generate(seed: 7, count: 3000)
        let dir = TempDir()
        defer { dir.cleanup() }
        let engine = try Engine(settings: settings)
        let store = try StateStore(directory: dir.path)
        var outbox = Outbox()
        var forgotten: [UInt64] = []
        for start in stride(from: 0, to: lines.count, by: 250) {
            outbox.removeAll()
            feed(engine, lines[start..<min(start + 250, lines.count)], into: &outbox)
            let changes = engine.takeChanges()
            forgotten += changes.forgottenContacts
            try store.commit(changes: changes, state: engine.state, journal: StateStore.journalEntries(from: outbox),
                             publishedThrough: nil, now: 0)
        }
        #expect(engine.counters.forgottenContacts > 100)
        store.close()
        let reopened = try StateStore(directory: dir.path)
        defer { reopened.close() }
        let (state, _) = try reopened.load()
        #expect(state.contacts.count == engine.state.contacts.count)
        #expect(state.contacts == engine.state.contacts)
        #expect(forgotten.allSatisfy { state.contacts[$0] == nil })
        #expect(state.withdrawn == engine.state.withdrawn)
    }
}

/// A start under another `rules.timeZone` dates the remembered contacts' R5 contributions again (rules audit, session
/// 43): the new dates must reach the store with the first commit, whole, so that the next start finds nothing to do.
@Suite("A changed time zone's new contribution dates are stored", .computing)
struct ZoneChangeStoreTests {
    @Test("London, then a start in Auckland that commits: the loaded state is the Auckland engine's, and a further start changes nothing")
    func redatedContributionsAreStored() throws {
        let lines = SyntheticStream.generate(seed: 43, count: 400)
        let dir = TempDir()
        defer { dir.cleanup() }
        let london = EngineSettings()
        var auckland = EngineSettings()
        auckland.timeZone = "Pacific/Auckland"
        _ = try runWithRestarts(settings: london, lines: lines, batch: 50, restarts: [], dir: dir)
        var store = try StateStore(directory: dir.path)
        let (loaded, _) = try store.load()
        let engine = try Engine(settings: auckland, state: loaded)
        let changes = engine.takeChanges()
        #expect(!changes.pdus.isEmpty && changes.contacts.count > 10, "\(changes.contacts.count) contacts dated again")
        print("zone change: \(changes.contacts.count) contacts dated again, \(changes.pdus.count) PDUs recounted")
        try store.commit(changes: changes, state: engine.state, journal: [], publishedThrough: nil, now: 1_700_000_100_000)
        store.close()
        store = try StateStore(directory: dir.path)
        let (again, _) = try store.load()
        store.close()
        #expect(sameState(again, engine.state), "the store holds what the Auckland engine holds")
        #expect(try Engine(settings: auckland, state: again).takeChanges().isEmpty, "nothing left to date again")
        #expect(try !Engine(settings: london, state: again).takeChanges().isEmpty, "back to London dates them again")
    }
}
