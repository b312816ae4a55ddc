import ContactWatchTestThreads
import ContactWatchTestSupport
@testable import ContactWatchEngine
@testable import ContactWatchStore
import Testing

/// `ChangeSet.contacts` is a log (`ContactLog`): an id set twice is there twice, and one forgotten later in the batch
/// stays (it is in `forgottenContacts` too). `StateStore.prepare` must make of it exactly the batch it made of the set
/// the engine kept before (`IDSet`: each id once, removed when forgotten).
@Suite(.computing) struct ContactLogTests {
    @Test func aLogWithRepeatsAndForgottenIdsPreparesTheBatchOfTheSet() throws {
        var settings = EngineSettings()
        // A short retention (the shortest the compliance-rate window allows), so that contacts set in a batch are
        // forgotten within it.
        settings.complianceRateWindowDays = 7
        settings.contactRetentionDays = 7
        let lines = SyntheticStream.generate(seed: 11, count: 6000)
        let engine = try Engine(settings: settings)
        var outbox = Outbox()
        var repeats = 0, forgottenInLog = 0
        for start in stride(from: 0, to: lines.count, by: 600) {
            outbox.removeAll()
            feed(engine, lines[start..<min(start + 600, lines.count)], into: &outbox)
            let changes = engine.takeChanges()
            let logged = changes.contacts.elements()
            let distinct = Set(logged)
            repeats += logged.count - distinct.count
            // What the set held: each id once, none forgotten since.
            var asSet = changes
            asSet.contacts = ContactLog(distinct.filter { engine.state.contacts[$0] != nil }.sorted())
            forgottenInLog += distinct.count - asSet.contacts.count
            // Noisier than the engine: every id twice, in two orders, and the forgotten ones as well.
            var noisy = changes
            noisy.contacts = ContactLog(logged.reversed() + logged + changes.forgottenContacts)
            let expected = prepare(asSet, engine)
            for actual in [prepare(changes, engine), prepare(noisy, engine)] {
                #expect(actual.bytes.withUnsafeBytes { Array($0) } == expected.bytes.withUnsafeBytes { Array($0) })
                #expect(actual.contactRecords.map(\.id) == expected.contactRecords.map(\.id))
                #expect(actual.contactRecords.map(\.record) == expected.contactRecords.map(\.record))
                #expect(actual.deletedContacts == expected.deletedContacts)
                #expect(actual.recordCount == expected.recordCount)
            }
        }
        // Both situations occurred.
        #expect(repeats > 0)
        #expect(forgottenInLog > 0)
    }

    private func prepare(_ changes: ChangeSet, _ engine: Engine) -> PreparedCommit {
        StateStore.prepare(changes: changes, state: engine.state, journal: [], publishedThrough: nil, now: 0)
    }
}
