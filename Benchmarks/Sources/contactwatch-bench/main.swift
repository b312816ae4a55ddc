// contactwatch-bench: in-process benchmarks for `make bench` — the engine and the store without sockets.
// Prints one line per benchmark (events/s); asserts nothing.
//
//   contactwatch-bench [--cases N] [--days N] [--seed N] [--start YYYY-MM-DD] [--input FILE]
//                      [--reps N] [--commit-every N] [--sync full|normal] [--only engine,parse,store]
//
//   engine   Engine.process over every event (two frames, topic = eventType), one reused Outbox cleared and the
//            engine's changes taken (and dropped) every --commit-every events, as the daemon's batches take them,
//            a fresh Engine per repetition (its tables grow from empty in every pass, as a new daemon's do once);
//            best and median of --reps, in wall-clock time, then the thread's CPU time (cpu_ns/event: what the pass
//            cost when other processes share the cores) and its minor page faults (page_faults/rep: the tables'
//            memory first touched).
//   parse    The same bytes with eventType renamed to an unknown type (same length, topic likewise): the engine
//            validates UTF-8, parses the JSON, reads eventType and ignores the event — the cost of getting in the door.
//   store    Engine + StateStore.commit every --commit-every events (as the daemon batches): takeChanges,
//            journalEntries(from:), commit; one pass, events/s over the whole run and per-commit milliseconds.
//
// The stream comes from Generator.generate (ContactWatchTools) unless --input names an NDJSON file.
// `cwbenchEnginePass` is one engine pass and never inlined, so `valgrind --tool=callgrind --collect-atstart=no
// '--toggle-collect=*cwbenchEnginePass*'` counts the engine's instructions alone (the pattern matches its mangled name).

import ContactWatchEngine
import ContactWatchStore
import ContactWatchTools
import Foundation

// MARK: - Options

struct Options {
    var cases = 2000
    var days = 120
    var seed: UInt64 = 1
    var start = "2026-01-05"
    var input: String? = nil
    var reps = 5
    var commitEvery = 1000
    var sync: StateStore.Synchronous = .full
    var only: Set<String> = ["engine", "parse", "store"]
    /// `--dump FILE`: one untimed engine pass whose every output message and final counters go to FILE (to compare
    /// builds byte for byte), then exit.
    var dump: String? = nil
    /// `--now MILLIS`: the wall clock handed to the engine (`detectedAt`); default the real one.
    var now: Millis? = nil
}

/// `--outcome-overdue`: the engine runs with R7 enabled (set while the options are parsed, before any engine).
nonisolated(unsafe) var outcomeOverdue = false

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(Data("contactwatch-bench: \(message)\n".utf8))
    FileHandle.standardError.write(Data("""
        usage: contactwatch-bench [--cases N] [--days N] [--seed N] [--start YYYY-MM-DD] [--input FILE]
                                  [--reps N] [--commit-every N] [--sync full|normal] [--only engine,parse,store]
                                  [--outcome-overdue]   (R7 enabled, as make demo runs)
                                  [--dump FILE [--now MILLIS]]   (one pass, every output message and the counters
                                                                  written to FILE, to compare builds; then exit)

        """.utf8))
    exit(64)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let v = args.popFirst() else { usage("\(flag) needs a value") }
        return v
    }
    func int(_ flag: String) -> Int {
        guard let v = Int(value(flag)), v >= 0 else { usage("\(flag) needs a non-negative integer") }
        return v
    }
    while let a = args.popFirst() {
        switch a {
        case "--cases": o.cases = int(a)
        case "--days": o.days = int(a)
        case "--seed": o.seed = UInt64(int(a))
        case "--start": o.start = value(a)
        case "--input": o.input = value(a)
        case "--reps": o.reps = max(1, int(a))
        case "--commit-every": o.commitEvery = max(1, int(a))
        case "--sync":
            switch value(a) {
            case "full": o.sync = .full
            case "normal": o.sync = .normal
            default: usage("--sync is full or normal")
            }
        case "--only":
            o.only = Set(value(a).split(separator: ",").map(String.init))
            if !o.only.isSubset(of: ["engine", "parse", "store"]) { usage("--only takes engine, parse, store") }
        case "--outcome-overdue": outcomeOverdue = true
        case "--dump": o.dump = value(a)
        case "--now": o.now = Millis(int(a))
        case "-h", "--help": usage("benchmarks of the engine and the store")
        default: usage("unknown argument \(a)")
        }
    }
    return o
}

// MARK: - The stream: every event's bytes in one buffer, with the topic (eventType value) and body of each

struct Stream {
    var bytes: [UInt8] = []
    /// Per event: body start, body count, topic start, topic count (offsets into `bytes`).
    var spans: [(body: Int, bodyCount: Int, topic: Int, topicCount: Int)] = []
    var count: Int { spans.count }
    /// Lines left out: no `"eventType":"` written without spaces (as zmqbench, which the figures compare with).
    var skipped = 0
}

/// Splits NDJSON into events as zmqbench does: non-empty lines not starting with "#", topic = the eventType value.
func split(_ data: [UInt8]) -> Stream {
    var s = Stream()
    s.bytes = data
    let key = Array("\"eventType\":\"".utf8)
    data.withUnsafeBufferPointer { b in
        var i = 0
        let n = b.count
        while i < n {
            var j = i
            while j < n && b[j] != 0x0A { j += 1 }
            if j > i && b[i] != UInt8(ascii: "#") {
                // Find the eventType value.
                var k = i
                var topic = -1, topicCount = 0
                while k + key.count <= j {
                    if b[k] == key[0] {
                        var match = true
                        for q in 1..<key.count where b[k + q] != key[q] { match = false; break }
                        if match {
                            let t0 = k + key.count
                            var t1 = t0
                            while t1 < j && b[t1] != UInt8(ascii: "\"") { t1 += 1 }
                            topic = t0
                            topicCount = t1 - t0
                            break
                        }
                    }
                    k += 1
                }
                if topic >= 0 { s.spans.append((i, j - i, topic, topicCount)) } else { s.skipped += 1 }
            }
            i = j + 1
        }
    }
    return s
}

/// The same stream with every eventType (and so every topic) renamed to an unknown type of the same length.
func renamedTypes(_ s: Stream) -> Stream {
    var r = s
    for sp in s.spans where sp.topicCount > 0 { r.bytes[sp.topic] = UInt8(ascii: "x") }
    return r
}

func loadStream(_ o: Options) -> (Stream, String) {
    var data: [UInt8] = []
    let what: String
    if let path = o.input {
        guard let d = FileManager.default.contents(atPath: path) else { usage("cannot read \(path)") }
        data = [UInt8](d)
        what = path
    } else {
        data.reserveCapacity(o.cases * o.days * 60)
        do {
            try Generator.generate(GeneratorOptions(cases: o.cases, days: o.days, seed: o.seed, start: o.start)) {
                data.append(contentsOf: $0)
            }
        } catch {
            usage("generate: \(error)")
        }
        what = "generated --cases \(o.cases) --days \(o.days) --seed \(o.seed) --start \(o.start)"
    }
    let stream = split(data)
    // Said: a stream written with spaces (`"eventType": "…"`, Python's `json.dumps`) was dropped line by line without
    // a word, down to "the stream has no events" (an R7 differential tester, session 53). The daemon reads such lines.
    if stream.skipped > 0 {
        FileHandle.standardError.write(Data(("contactwatch-bench: \(stream.skipped) lines left out: no \"eventType\":\" "
            + "written without spaces, which the bench splits on as zmqbench does (the daemon itself reads any JSON)\n").utf8))
    }
    return (stream, what)
}

// MARK: - Timing and formatting

@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU time of the calling thread (user and system): beside the wall clock, the part of a pass the thread actually
/// ran — on a shared machine the wall clock also counts the time other processes had the core.
func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Minor page faults of the calling thread so far (memory first touched: the engine's tables as they grow).
func threadMinorFaults() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(1), &u)  // RUSAGE_THREAD (Linux; not imported: a GNU extension)
    return u.ru_minflt
}

func wallClockMillis() -> Millis {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Millis(ts.tv_sec) * 1000 + Millis(ts.tv_nsec / 1_000_000)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded(.up)))]
}

func fmt(_ v: Double, _ decimals: Int = 0) -> String { String(format: "%.\(decimals)f", v) }

// MARK: - One engine pass (its own symbol, for callgrind's --toggle-collect)

final class PassContext: @unchecked Sendable {
    let stream: Stream
    let engine: Engine
    let clearEvery: Int
    let now: Millis
    init(stream: Stream, engine: Engine, clearEvery: Int, now: Millis) {
        self.stream = stream
        self.engine = engine
        self.clearEvery = clearEvery
        self.now = now
    }
}

/// Feeds every event of the context's stream to its engine; returns the number of output messages.
@inline(never)
func cwbenchEnginePass(_ raw: UnsafeMutableRawPointer) -> Int {
    let ctx = Unmanaged<PassContext>.fromOpaque(raw).takeUnretainedValue()
    let engine = ctx.engine
    let now = ctx.now
    let clearEvery = ctx.clearEvery
    var messages = 0
    var outbox = Outbox()
    ctx.stream.bytes.withUnsafeBytes { all in
        var sinceClear = 0
        for sp in ctx.stream.spans {
            let topic = UnsafeRawBufferPointer(rebasing: all[sp.topic..<(sp.topic + sp.topicCount)])
            let body = UnsafeRawBufferPointer(rebasing: all[sp.body..<(sp.body + sp.bodyCount)])
            engine.process(frameCount: 2, topic: topic, body: body, now: now, into: &outbox)
            sinceClear += 1
            if sinceClear == clearEvery {
                messages += outbox.count
                outbox.removeAll()
                _ = engine.takeChanges()
                sinceClear = 0
            }
        }
    }
    messages += outbox.count
    return messages
}

func makeEngine() -> Engine {
    var settings = EngineSettings()
    settings.outcomeOverdueEnabled = outcomeOverdue
    do { return try Engine(settings: settings) } catch { fatalError("engine settings: \(error)") }
}

/// Runs `reps` passes, each with a fresh engine; prints one line. Returns the last engine's counters.
@discardableResult
func benchEngine(name: String, stream: Stream, reps: Int, clearEvery: Int, note: String) -> EngineCounters {
    let now = wallClockMillis()
    var rates: [Double] = []
    var nsPer: [Double] = []
    var cpuNsPer: [Double] = []
    var faults: [Double] = []
    var messages = 0
    var counters = EngineCounters()
    for _ in 0..<reps {
        let ctx = PassContext(stream: stream, engine: makeEngine(), clearEvery: clearEvery, now: now)
        let raw = Unmanaged.passUnretained(ctx).toOpaque()
        let f0 = threadMinorFaults()
        let c0 = threadCPUNanos()
        let t0 = monotonicNanos()
        messages = cwbenchEnginePass(raw)
        let t1 = monotonicNanos()
        let c1 = threadCPUNanos()
        let f1 = threadMinorFaults()
        withExtendedLifetime(ctx) {}
        let seconds = Double(t1 - t0) / 1e9
        rates.append(Double(stream.count) / seconds)
        nsPer.append(Double(t1 - t0) / Double(max(1, stream.count)))
        cpuNsPer.append(Double(c1 - c0) / Double(max(1, stream.count)))
        faults.append(Double(f1 - f0))
        counters = ctx.engine.counters
    }
    print("\(name): events=\(stream.count) reps=\(reps) best=\(fmt(rates.max() ?? 0)) ev/s median=\(fmt(median(rates))) ev/s"
        + " ns/event best=\(fmt(nsPer.min() ?? 0, 1)) median=\(fmt(median(nsPer), 1))"
        + " cpu_ns/event best=\(fmt(cpuNsPer.min() ?? 0, 1)) median=\(fmt(median(cpuNsPer), 1))"
        + " page_faults/rep median=\(fmt(median(faults))) out_msgs=\(messages)"
        + " processed=\(counters.processed) ignored=\(counters.ignored) invalid=\(counters.invalid)\(note)")
    return counters
}

/// `--dump`: one pass, not timed; each message as `topic<TAB>body<LF>`, then the counters (a byte-identical file from
/// two builds means the same output on this stream).
func dumpPass(stream: Stream, now: Millis, to path: String) {
    let engine = makeEngine()
    var out: [UInt8] = []
    var outbox = Outbox()
    stream.bytes.withUnsafeBytes { all in
        for sp in stream.spans {
            let topic = UnsafeRawBufferPointer(rebasing: all[sp.topic..<(sp.topic + sp.topicCount)])
            let body = UnsafeRawBufferPointer(rebasing: all[sp.body..<(sp.body + sp.bodyCount)])
            engine.process(frameCount: 2, topic: topic, body: body, now: now, into: &outbox)
            outbox.forEach { _, t, b in
                out.append(contentsOf: t)
                out.append(0x09)
                out.append(contentsOf: b)
                out.append(0x0A)
            }
            outbox.removeAll()
        }
    }
    let c = engine.counters
    out.append(contentsOf: Array(("counters: received=\(c.received) processed=\(c.processed) contact=\(c.contactEvents)"
        + " registration=\(c.registrationEvents) ignored=\(c.ignored) duplicates=\(c.duplicates) stale=\(c.stale)"
        + " invalid=\(c.invalid) byField=\(c.invalidByField.sorted { $0.key < $1.key }) gaps=\(c.gaps)"
        + " repeats=\(c.repeats) restarts=\(c.publisherRestarts) raised=\(c.raisedByRule) resolved=\(c.resolvedByRule)"
        + " forgotten=\(c.forgottenContacts)\n").utf8))
    guard FileManager.default.createFile(atPath: path, contents: Data(out)) else { usage("cannot write \(path)") }
    print("dump: \(stream.count) events, \(c.received) received, \(out.count) bytes written to \(path)")
}

// MARK: - Engine + store

func benchStore(stream: Stream, commitEvery: Int, sync: StateStore.Synchronous) {
    let base = FileManager.default.temporaryDirectory.path
    var template = Array("\(base)/contactwatch-bench.XXXXXX".utf8CString)
    guard let dirPtr = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        usage("cannot create a temporary directory under \(base)")
    }
    let dir = String(cString: dirPtr)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store: StateStore
    do { store = try StateStore(directory: dir, synchronous: sync) } catch { usage("store: \(error)") }

    let engine = makeEngine()
    let now = wallClockMillis()
    var outbox = Outbox()
    var commitMs: [Double] = []
    var journalCount = 0
    var publishedThrough: UInt64 = 0
    var engineNanos: UInt64 = 0
    func flush() {
        let c0 = monotonicNanos()
        let changes = engine.takeChanges()
        let entries = StateStore.journalEntries(from: outbox)
        do {
            try store.commit(changes: changes, state: engine.state, journal: entries, publishedThrough: publishedThrough,
                             now: wallClockMillis())
        } catch {
            usage("commit: \(error)")
        }
        journalCount += entries.count
        outbox.forEach { e, _, _ in if e.alertSequence > 0 { publishedThrough = e.alertSequence } }
        outbox.removeAll()
        commitMs.append(Double(monotonicNanos() - c0) / 1e6)
    }
    let t0 = monotonicNanos()
    stream.bytes.withUnsafeBytes { all in
        var pending = 0
        var e0 = monotonicNanos()
        for sp in stream.spans {
            let topic = UnsafeRawBufferPointer(rebasing: all[sp.topic..<(sp.topic + sp.topicCount)])
            let body = UnsafeRawBufferPointer(rebasing: all[sp.body..<(sp.body + sp.bodyCount)])
            engine.process(frameCount: 2, topic: topic, body: body, now: now, into: &outbox)
            pending += 1
            if pending == commitEvery {
                engineNanos += monotonicNanos() - e0
                flush()
                pending = 0
                e0 = monotonicNanos()
            }
        }
        engineNanos += monotonicNanos() - e0
        if pending > 0 { flush() }
    }
    let t1 = monotonicNanos()
    let seconds = Double(t1 - t0) / 1e9
    let commitTotal = commitMs.reduce(0, +)
    let size = ((try? FileManager.default.attributesOfItem(atPath: store.path)[.size]) as? Int ?? 0)
        + ((try? FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size]) as? Int ?? 0)
    store.close()
    let syncName = sync == .full ? "full" : "normal"
    print("engine+store(sync=\(syncName), commit every \(commitEvery)): events=\(stream.count)"
        + " \(fmt(Double(stream.count) / seconds)) ev/s (\(fmt(Double(t1 - t0) / Double(max(1, stream.count)), 1)) ns/event)"
        + " commits=\(commitMs.count) commit_ms median=\(fmt(median(commitMs), 2)) p99=\(fmt(percentile(commitMs, 0.99), 2))"
        + " max=\(fmt(commitMs.max() ?? 0, 2)) commit_share=\(fmt(100 * commitTotal / (seconds * 1000), 1))%"
        + " engine_share=\(fmt(100 * Double(engineNanos) / Double(t1 - t0), 1))% journal=\(journalCount)"
        + " db+wal=\(size / 1024) KiB")
}

// MARK: - Main

let options = parseOptions()
let g0 = monotonicNanos()
let (stream, source) = loadStream(options)
let g1 = monotonicNanos()
print("stream: \(source): \(stream.count) events, \(stream.bytes.count) bytes"
    + " (\(fmt(Double(stream.bytes.count) / Double(max(1, stream.count)), 0)) B/event), loaded in \(fmt(Double(g1 - g0) / 1e9, 2)) s")
if stream.count == 0 { usage("the stream has no events") }

if let path = options.dump {
    dumpPass(stream: stream, now: options.now ?? wallClockMillis(), to: path)
    exit(0)
}
if options.only.contains("engine") {
    benchEngine(name: "engine-only", stream: stream, reps: options.reps, clearEvery: options.commitEvery,
                note: " (outbox cleared and changes taken every \(options.commitEvery))")
}
if options.only.contains("parse") {
    benchEngine(name: "parse-only (eventType unknown → ignored)", stream: renamedTypes(stream), reps: options.reps,
                clearEvery: options.commitEvery, note: "")
}
if options.only.contains("store") {
    benchStore(stream: stream, commitEvery: options.commitEvery, sync: options.sync)
}
