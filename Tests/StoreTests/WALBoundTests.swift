import ContactWatchTestThreads
import ContactWatchEngine
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Testing

/// The WAL's bound without SQLite's inline auto-checkpoint: the write connection has `wal_autocheckpoint = 0`, and
/// `StateStore.checkpointWALIfDue` (run by the daemon's writer after each durability report, and by `write` itself
/// before a commit when nobody ran it) copies the WAL back once a commit leaves it at `walCheckpointFrames`. Here the
/// checkpointer thread is left out (`backgroundCheckpoints: false`): a checkpointer that never catches up.
@Suite("The WAL stays bounded with the inline auto-checkpoint off and no checkpointer", .computing)
struct WALBoundTests {
    /// Frames in the WAL after each of `batches` commits of the synthetic stream, and each commit's own frames.
    struct Trace {
        var after: [Int] = []
        var added: [Int] = []
        var initial = 0
        var checkpoints = 0
        var walFileSize = 0
    }

    static func commitStream(_ store: StateStore, batches: Int, runCheckpoints: Bool) throws -> Trace {
        let lines = SyntheticStream.generate(seed: 7, count: batches * 30)
        let engine = try Engine(settings: EngineSettings())
        var outbox = Outbox()
        var trace = Trace()
        var previous = store.walFrames.count
        trace.initial = previous
        for b in 0..<batches {
            outbox.removeAll()
            feed(engine, lines[(b * 30)..<((b + 1) * 30)], into: &outbox)
            let batch = StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: outbox,
                                           publishedThrough: nil, now: 1_000 + Int64(b))
            try store.write(batch)
            let now = store.walFrames.count
            // A restarted WAL starts again from frame 1: this commit's frames are all of it.
            trace.added.append(now >= previous ? now - previous : now)
            trace.after.append(now)
            previous = now
            if runCheckpoints, store.checkpointWALIfDue() { trace.checkpoints += 1 }
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: store.path + "-wal")
        trace.walFileSize = (attributes[.size] as? NSNumber)?.intValue ?? 0
        return trace
    }

    /// A WAL frame: a 24-byte header and a page (the store's pages are SQLite's default 4 KiB).
    static let frameBytes = 4096 + 24

    @Test("many commits with no checkpointer: the writer's checkpoint keeps the WAL within its bound plus one commit (the WAL file too), where without it the WAL grows past that")
    func boundedWithoutTheCheckpointer() throws {
        let bound = 60
        let dir = TempDir(), control = TempDir()
        defer { dir.cleanup(); control.cleanup() }

        // Control: no checkpoint at all (the bound out of reach) — the WAL only grows, so the assertions below can fail
        // and SQLite's own auto-checkpoint is really off on this connection.
        let unbounded = try StateStore(directory: control.path, synchronous: .full, walCheckpointFrames: .max,
                                       backgroundCheckpoints: false)
        let grown = try Self.commitStream(unbounded, batches: 120, runCheckpoints: true)
        unbounded.close()
        let total = grown.added.reduce(0, +)
        #expect(grown.checkpoints == 0)
        #expect(grown.after.last == grown.initial + total, "the WAL restarted without a checkpoint: \(grown.after)")
        let largest = try #require(grown.added.max())
        try #require(total > 3 * (bound + largest), "the stream is too small to cross the bound: \(total) frames")

        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: bound,
                                   backgroundCheckpoints: false)
        defer { store.close() }
        let trace = try Self.commitStream(store, batches: 120, runCheckpoints: true)
        let commitMax = try #require(trace.added.max())
        #expect(trace.checkpoints >= 2, "checkpoints: \(trace.checkpoints)")
        #expect(trace.after.allSatisfy { $0 <= bound + commitMax }, "frames after each commit: \(trace.after)")
        #expect(trace.walFileSize <= 32 + (bound + commitMax) * Self.frameBytes,
                "WAL file \(trace.walFileSize) bytes, bound \(bound) + \(commitMax) frames")
        #expect(grown.walFileSize > 32 + (bound + commitMax) * Self.frameBytes)
    }

    @Test("a caller that never runs checkpointWALIfDue: write runs it before the next commit, so the WAL stays bounded all the same")
    func writeKeepsTheBoundForAnyCaller() throws {
        let bound = 60
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: bound,
                                   backgroundCheckpoints: false)
        defer { store.close() }
        let trace = try Self.commitStream(store, batches: 120, runCheckpoints: false)
        let commitMax = try #require(trace.added.max())
        #expect(trace.added.reduce(0, +) > 3 * (bound + commitMax))
        // Copied before the commit that follows the one crossing the bound, which then restarts the WAL.
        #expect(trace.after.allSatisfy { $0 <= bound + commitMax }, "frames after each commit: \(trace.after)")
        #expect(trace.after.contains { $0 < bound / 2 }, "the WAL never restarted: \(trace.after)")
    }

    @Test("checkpointWALIfDue runs once per commit that leaves the WAL at its bound, not again before the next commit")
    func oncePerCommit() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let ran = CheckpointCount()
        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: 1,
                                   backgroundCheckpoints: false, beforeWALCheckpoint: { ran.add() })
        defer { store.close() }
        let engine = try Engine(settings: EngineSettings())
        let empty = StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: Outbox(),
                                       publishedThrough: nil, now: 1)
        try store.write(empty)
        #expect(store.checkpointWALIfDue())
        #expect(!store.checkpointWALIfDue())
        #expect(ran.value == 1)
        // The next write finds it done: it does not run it again before committing.
        try store.write(StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: Outbox(),
                                           publishedThrough: nil, now: 2))
        #expect(ran.value == 1)
        #expect(store.checkpointWALIfDue())
        #expect(ran.value == 2)
    }
}

/// A count another thread may bump (the checkpoint hook runs on the writing thread).
final class CheckpointCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
