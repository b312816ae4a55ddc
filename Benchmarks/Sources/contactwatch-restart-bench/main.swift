// contactwatch-restart-bench: how long a restart with a large state store takes (open and check, load, engine
// init) and what a commit costs on such a store, with synchronous FULL and NORMAL. Measurements, not tests.
//
//   swift run -c release contactwatch-restart-bench
//   CONTACTWATCH_BENCH_CASES (default 240000, the whole caseload of England and Wales) sets the number of cases;
//   CONTACTWATCH_BENCH_DIR keeps the store in that directory (built once, reused by later runs) instead of a temporary
//   one. Also prints the bytes per case in the store file and in RAM: the loaded state's containers counted from their
//   capacities and Swift's native layouts (`Footprint`) plus the ready engine's own indexes (`Engine.indexFootprint`),
//   and, as an upper bound, how much the process's resident set grew from before opening the store to the ready
//   engine (that includes SQLite's page cache, up to 32 MiB, and the engine's indexes), and how much of that was there
//   after the load.
//   CONTACTWATCH_BENCH_COMMITS=no stops after the restart and memory figures (no commit timings).
//
// `cwbenchLoad` and `cwbenchEngineInit` are never inlined, so `valgrind --tool=callgrind --collect-atstart=no
// '--toggle-collect=*cwbenchLoad*'` (or `*cwbenchEngineInit*`) counts the instructions of loading the store (or of the
// engine's start from the loaded state) alone.
import ContactWatchEngine
import ContactWatchStore
import ContactWatchTestSupport
import Foundation

/// Heap bytes of an engine state, counted from its containers: an array is a 32-byte header and capacity × stride
/// elements; a dictionary (Swift's native hash table) a 64-byte header, a bitmap and buckets × (key + value strides),
/// with buckets the power of two its capacity needs at a 3/4 load factor; each allocation also pays 16 bytes to malloc.
/// Small strings (codes, CRN-sized texts) live inline. The engine's own indexes (forgetting queue, CRN table, deadline
/// heaps) are counted by `Engine.indexFootprint` and added to the RAM figure beside this.
enum Footprint {
    static let mallocOverhead = 16
    static func array<T>(_ a: [T]) -> Int { a.capacity == 0 ? 0 : 32 + a.capacity * MemoryLayout<T>.stride + mallocOverhead }
    static func dictionary<K, V>(_ d: [K: V]) -> Int {
        guard d.capacity > 0 else { return 0 }
        var buckets = 1
        while buckets * 3 / 4 < d.capacity { buckets *= 2 }
        return 64 + buckets / 8 + buckets * (MemoryLayout<K>.stride + MemoryLayout<V>.stride) + mallocOverhead
    }
    static func state(_ s: EngineState) -> Int {
        var n = array(s.cases) + s.contacts.footprint + dictionary(s.withdrawn)
            + dictionary(s.outcomeTimers) + dictionary(s.publishers.storage.slots) + array(s.publishers.storage.ids)
            + array(s.publishers.storage.positions) + array(s.pdus) + dictionary(s.pduIndex)
        for c in s.cases {
            n += array(c.registers) + array(c.openNonCompliance) + array(c.openOutcomeOverdue)
            // The four contact lists share one allocation (none while they are empty).
            if c.lists.allocatedBytes > 0 { n += c.lists.allocatedBytes + mallocOverhead }
            for a in c.openNonCompliance { n += array(a.evidence) }
            for a in c.openOutcomeOverdue { n += array(a.evidence) }
            // The open R2 alert lives in a box of its own (an object: 16 bytes of header).
            if let a = c.openTelephoneOnly { n += 16 + MemoryLayout<OpenAlert>.stride + mallocOverhead + array(a.evidence) }
        }
        for p in s.pdus { n += array(p.buckets) + (p.open.map { array($0.evidence) } ?? 0) }
        return n
    }
}

@inline(never) func cwbenchLoad(_ store: StateStore) throws -> EngineState { try store.load().state }

@inline(never) func cwbenchEngineInit(_ state: EngineState) throws -> Engine { try Engine(settings: EngineSettings(), state: state) }

enum RestartBenchmark {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// The process's resident set in bytes (Linux: /proc/self/statm), or nil elsewhere.
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func main() throws {
        let env = ProcessInfo.processInfo.environment
        let cases = Int(env["CONTACTWATCH_BENCH_CASES"] ?? "") ?? 240_000
        let keep = env["CONTACTWATCH_BENCH_DIR"]
        let tmp = NSTemporaryDirectory() + "cw-restart-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let dirPath = keep ?? tmp
        let storePath = dirPath + "/" + StateStore.fileName

        if Self.fileSize(storePath) == 0 {
            let state = syntheticState(cases: cases)
            let build = try Self.seconds {
                let store = try StateStore(directory: dirPath)
                // Through the commit path, in batches of 2000 cases with their contacts.
                var changes = ChangeSet()
                changes.pdus = DenseSet(0..<Int32(state.pdus.count))
                changes.publishers = Set(state.publishers.keys)
                let byCase = Dictionary(grouping: state.contacts.keys, by: { state.contacts[$0]!.caseIndex })
                for start in stride(from: 0, to: cases, by: 2000) {
                    for ci in start..<min(start + 2000, cases) {
                        changes.cases.insert(UInt32(ci))
                        changes.contacts.append(contentsOf: byCase[UInt32(ci)] ?? [])
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
        let residentBefore = Self.residentBytes()
        var loaded = EngineState()
        var store: StateStore! = nil
        let open = try Self.seconds { store = try StateStore(directory: dirPath) }
        let load = try Self.seconds { loaded = try cwbenchLoad(store) }
        let residentLoaded = Self.residentBytes()
        var engine: Engine! = nil
        let resume = try Self.seconds { engine = try cwbenchEngineInit(loaded) }
        print("bench: restart: open+check \(String(format: "%.3f", open)) s, load \(String(format: "%.3f", load)) s, "
            + "engine init \(String(format: "%.3f", resume)) s, total \(String(format: "%.3f", open + load + resume)) s; "
            + "\(loaded.cases.count) cases, \(loaded.contacts.count) contacts; file \(size) bytes = "
            + "\(size / max(1, loaded.cases.count)) bytes per case")
        guard loaded.cases.count == cases else { fatalError("loaded \(loaded.cases.count) cases, built \(cases)") }
        guard engine.state.contacts.count == loaded.contacts.count else { fatalError("engine lost contacts") }
        // RAM: what the ready engine holds (its state shares storage with `loaded` until either changes), without the
        // store connection's page cache.
        let residentAfter = Self.residentBytes()
        store.close()
        let containers = Footprint.state(loaded)
        // The ready engine's own indexes (its forgetting queue, CRN table, ...) are RAM per case as much as the state.
        let indexes = engine.indexFootprint
        let ram = containers + indexes
        let n = max(1, loaded.cases.count)
        var rss = ""
        if let before = residentBefore, let after = residentAfter, let loadedRSS = residentLoaded {
            rss = "; resident set grew \(after - before) bytes = \((after - before) / n) per case (with SQLite's cache; "
                + "\((loadedRSS - before) / n) after the load, \((after - loadedRSS) / n) more for the engine's indexes)"
        }
        print("bench: memory: \(loaded.cases.count) cases, \(loaded.contacts.count) contacts: RAM = \(ram / n) bytes per case"
            + " (\(ram) bytes: the state's containers \(containers / n) + the engine's indexes \(indexes / n) per case); "
            + "store file \(size) bytes = \(size / n) bytes per case\(rss)")
        let caseArray = Footprint.array(loaded.cases)
        print("bench:   RAM by part, bytes per case: contacts table \(loaded.contacts.footprint / n) "
            + "(\(loaded.contacts.slotCount) slots of \(ContactTable.slotBytes) bytes for \(loaded.contacts.count) contacts), case array "
            + "\(caseArray / n) (\(MemoryLayout<CaseState>.stride) bytes a case), "
            + "the rest (the cases' lists, PDUs, ...) \((containers - loaded.contacts.footprint - caseArray) / n); the engine's "
            + "indexes \(indexes / n) (forgetting queue \(engine.forgetQueueFootprint / n))")
        withExtendedLifetime(engine) {}
        if env["CONTACTWATCH_BENCH_COMMITS"] == "no" { return }
        store = try StateStore(directory: dirPath)

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
            var rng = SplitMix64(seed: UInt64(round) + (mode == .full ? 0 : 100))
            var journal: [JournalEntry] = []
            let ids = Array(state.contacts.keys.prefix(50_000))
            for _ in 0..<1000 {
                let ci = UInt32(rng.below(cases))
                state.cases[Int(ci)].lastInPersonAt += 1
                changes.cases.insert(ci)
                let id = ids[rng.below(ids.count)]
                state.contacts[id]!.version += 1
                changes.contacts.append(id)
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
                var rng = SplitMix64(seed: UInt64(round) + 1000)
                var journal: [JournalEntry] = []
                let ids = Array(state.contacts.keys.prefix(50_000))
                for _ in 0..<1000 {
                    switch part {
                    case "cases": changes.cases.insert(UInt32(rng.below(cases)))
                    case "contacts": changes.contacts.append(ids[rng.below(ids.count)])
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

try RestartBenchmark.main()
