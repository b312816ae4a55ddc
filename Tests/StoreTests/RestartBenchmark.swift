import ContactWatchEngine
import ContactWatchStore
import Foundation
import Testing

/// Measurements, not tests: they print numbers and assert nothing about time. Run with
/// `CONTACTWATCH_BENCH=1 swift test -c release --filter RestartBenchmark`
/// (`CONTACTWATCH_BENCH_CASES` sets the number of cases, default 200000; `CONTACTWATCH_BENCH_DIR` keeps the store
/// in that directory instead of a temporary one).
@Suite(.serialized) struct RestartBenchmark {
    static var enabled: Bool { ProcessInfo.processInfo.environment["CONTACTWATCH_BENCH"] != nil }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// A state shaped like a large production one: `cases` cases with ~10 contacts each (some failures, warnings,
    /// open alerts, registers), 20 PDUs with a year of buckets.
    static func syntheticState(cases: Int, contactsPerCase: Int = 10) -> EngineState {
        var s = EngineState()
        s.watermark = 1_775_000_000_000
        s.alertSequence = UInt64(cases / 4)
        s.publishers = ["feed-1": 123_456_789, "feed-2": 42]
        s.cases.reserveCapacity(cases)
        s.contacts.reserveCapacity(cases * contactsPerCase)
        for p in 0..<20 {
            var pdu = PDUState(code: "N\(10 + p)PDU")
            for d in 0..<365 { pdu.buckets.append(.init(date: 20_000 + Int32(d), compliant: 40, nonCompliant: 9)) }
            s.pduIndex[pdu.code] = Int32(p)
            s.pdus.append(pdu)
        }
        var contactId: UInt64 = 2_500_000_000
        for i in 0..<cases {
            var c = CaseState(crn: CRN(key: UInt32(23_000_000 + i)))
            if i % 5 == 0 { c.setRegisters([Register(code: "RHRH", level: nil), Register(code: "ADVV", level: nil)]) }
            c.lastInPersonAt = 1_770_000_000_000 + Int64(i)
            c.firstContactAt = 1_740_000_000_000
            for k in 0..<contactsPerCase {
                contactId += 1
                let start = 1_740_000_000_000 + Int64(k) * 7 * 86_400_000
                let failure = k % 4 == 3
                s.contacts[contactId] = ContactRecord(caseIndex: UInt32(i), actionId: failure ? 1 : 0, version: 2,
                                                      contactStart: start, actionTime: start + 86_400_000,
                                                      pduIndex: Int32(i % 20), contributionDate: Int32(20_000 + k * 7),
                                                      flags: failure ? [.failure] : [.compliant, .attendedInPerson])
                if failure {
                    c.failures.append(ContactRef(contactId: contactId, start: start))
                    c.warnings.append(ContactRef(contactId: contactId, start: start + 86_400_000))
                }
            }
            if i % 7 == 0 {
                c.openNonCompliance.append(OpenAlert(
                    id: AlertID(high: UInt64(i) &* 0x9E37_79B9_7F4A_7C15, low: UInt64(i)), rule: .warningDue, severity: .medium,
                    triggerContactId: contactId, triggerContactVersion: 1, triggerStart: 1_760_000_000_000,
                    evidence: Array("\"failuresInWindow\":2,\"windowStart\":\"2025-04-01\",\"sentenceType\":\"COMMUNITY_ORDER\"".utf8),
                    deadline: 20_400, overdueRaised: false))
            }
            s.caseIndex[c.crn] = UInt32(i)
            s.cases.append(c)
        }
        return s
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    @Test(.enabled(if: RestartBenchmark.enabled))
    func restartWithLargeStore() throws {
        let env = ProcessInfo.processInfo.environment
        let cases = Int(env["CONTACTWATCH_BENCH_CASES"] ?? "") ?? 200_000
        let keep = env["CONTACTWATCH_BENCH_DIR"]
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dirPath = keep ?? tmp.path
        let storePath = dirPath + "/" + StateStore.fileName

        if Self.fileSize(storePath) == 0 {
            let state = Self.syntheticState(cases: cases)
            let build = try Self.seconds {
                let store = try StateStore(directory: dirPath)
                // Through the commit path, in batches of 2000 cases with their contacts.
                var changes = ChangeSet()
                changes.pdus = Set(0..<Int32(state.pdus.count))
                changes.publishers = Set(state.publishers.keys)
                let byCase = Dictionary(grouping: state.contacts.keys, by: { state.contacts[$0]!.caseIndex })
                for start in stride(from: 0, to: cases, by: 2000) {
                    for ci in start..<min(start + 2000, cases) {
                        changes.cases.insert(UInt32(ci))
                        changes.contacts.formUnion(byCase[UInt32(ci)] ?? [])
                    }
                    try store.commit(changes: changes, state: state, journal: [], publishedThrough: nil, now: 0)
                    changes = ChangeSet()
                }
                store.close()
            }
            print("bench: built \(cases) cases, \(state.contacts.count) contacts in \(String(format: "%.2f", build)) s")
        }

        let size = Self.fileSize(storePath)
        let openUnchecked = try Self.seconds {
            try StateStore(directory: dirPath, synchronous: .full, quickCheck: false).close()
        }
        print("bench: open without quick_check \(String(format: "%.3f", openUnchecked)) s")
        var loaded = EngineState()
        var store: StateStore! = nil
        let open = try Self.seconds { store = try StateStore(directory: dirPath) }
        let load = try Self.seconds { loaded = try store.load().state }
        var engine: Engine! = nil
        let resume = try Self.seconds { engine = try Engine(settings: EngineSettings(), state: loaded) }
        print("bench: restart: open+check \(String(format: "%.3f", open)) s, load \(String(format: "%.3f", load)) s, "
            + "engine init \(String(format: "%.3f", resume)) s, total \(String(format: "%.3f", open + load + resume)) s; "
            + "\(loaded.cases.count) cases, \(loaded.contacts.count) contacts; file \(size) bytes = "
            + "\(size / max(1, loaded.cases.count)) bytes per case")
        #expect(loaded.cases.count == cases)
        #expect(engine.state.contacts.count == loaded.contacts.count)

        // Commit cost: 1000 dirty cases, 1000 contacts, 1000 journal entries, spread over the store; with
        // synchronous FULL (the default) and NORMAL.
        var state = loaded
        for mode in [StateStore.Synchronous.full, .normal] {
        if mode == .normal {
            store.close()
            store = try StateStore(directory: dirPath, synchronous: .normal)
        }
        var times: [Double] = []
        for round in 0..<20 {
            var changes = ChangeSet()
            var rng = SyntheticStream.Rng(s: UInt64(round) + (mode == .full ? 0 : 100))
            var journal: [JournalEntry] = []
            let ids = Array(state.contacts.keys.prefix(50_000))
            for _ in 0..<1000 {
                let ci = UInt32(rng.below(cases))
                state.cases[Int(ci)].lastInPersonAt += 1
                changes.cases.insert(ci)
                let id = ids[rng.below(ids.count)]
                state.contacts[id]!.version += 1
                changes.contacts.insert(id)
                state.alertSequence += 1
                journal.append(JournalEntry(alertSequence: state.alertSequence, alertId: String(repeating: "a", count: 32),
                                            topic: Array("alert.raised.telephone-only".utf8),
                                            body: Array(repeating: UInt8(ascii: "x"), count: 700)))
            }
            let st = state
            times.append(try Self.seconds {
                try store.commit(changes: changes, state: st, journal: journal, publishedThrough: st.alertSequence - 1000,
                                 now: 0)
            })
        }
        times.sort()
        // Components, at the same sizes.
        for part in ["cases", "contacts", "journal", "nothing"] {
            var t: [Double] = []
            for round in 0..<10 {
                var changes = ChangeSet()
                var rng = SyntheticStream.Rng(s: UInt64(round) + 1000)
                var journal: [JournalEntry] = []
                let ids = Array(state.contacts.keys.prefix(50_000))
                for _ in 0..<1000 {
                    switch part {
                    case "cases": changes.cases.insert(UInt32(rng.below(cases)))
                    case "contacts": changes.contacts.insert(ids[rng.below(ids.count)])
                    case "journal":
                        state.alertSequence += 1
                        journal.append(JournalEntry(alertSequence: state.alertSequence, alertId: String(repeating: "a", count: 32),
                                                    topic: Array("alert.raised.telephone-only".utf8),
                                                    body: Array(repeating: UInt8(ascii: "x"), count: 700)))
                    default: break
                    }
                }
                let st = state
                t.append(try Self.seconds {
                    try store.commit(changes: changes, state: st, journal: journal, publishedThrough: nil, now: 0)
                })
            }
            t.sort()
            print("bench:   \(mode) 1000 \(part) only: median \(String(format: "%.2f", t[5] * 1000)) ms")
        }
        print("bench: commit (synchronous \(mode)) of 1000 cases + 1000 contacts + 1000 journal rows: median "
            + "\(String(format: "%.2f", times[10] * 1000)) ms, max \(String(format: "%.2f", times.last! * 1000)) ms")
        }
        store.close()
    }
}
