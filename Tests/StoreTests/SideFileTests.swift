import ContactWatchEngine
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import Testing

/// SQLite keeps the store's `-wal` and `-shm` open for the connections' life. One deleted under the running daemon
/// took every later commit into a file with no name: reported durable, published, and gone at the next crash (the
/// database file holds only what was checkpointed). The commit that follows the deletion now copies the WAL it
/// still holds into the database file and fails with `.sideFileLost` (exit 75): a restart resumes with nothing lost.
@Suite("A side file of the store deleted under it: what the WAL held is saved into the database file, and the commit fails")
struct SideFileTests {
    /// The changes and alerts of `lines` fed to `engine`, as one prepared batch.
    static func batch(_ engine: Engine, _ lines: ArraySlice<String>, now: Int64) -> PreparedCommit {
        var outbox = Outbox()
        feed(engine, lines, into: &outbox)
        return StateStore.prepare(changes: engine.takeChanges(), state: engine.state, journalFrom: outbox,
                                  publishedThrough: nil, now: now)
    }

    /// A store in `dir` with no checkpointer thread and no WAL bound within reach (nothing reaches the database file
    /// unless the store copies it), the first 300 of 600 synthetic events committed; the engine and the events.
    static func storeWithOneBatch(_ dir: TempDir) throws -> (StateStore, Engine, [String]) {
        let store = try StateStore(directory: dir.path, synchronous: .full, walCheckpointFrames: .max,
                                   backgroundCheckpoints: false)
        let engine = try Engine(settings: EngineSettings())
        let lines = SyntheticStream.generate(seed: 7, count: 600)
        try store.write(Self.batch(engine, lines[0..<300], now: 1_000))
        return (store, engine, lines)
    }

    /// The journal's latest sequence in a copy of the database file alone: what a crash would leave.
    static func latestInFileAlone(_ store: StateStore) throws -> UInt64 {
        let copy = TempDir()
        defer { copy.cleanup() }
        try FileManager.default.copyItem(atPath: store.path, toPath: copy.path + "/" + StateStore.fileName)
        let reopened = try StateStore(directory: copy.path)
        defer { reopened.close() }
        return try reopened.latestSequence()
    }

    @Test("-wal or -shm deleted, or -wal replaced: the next write throws sideFileLost (temporary) naming the file, and the database file alone holds every commit, that one included", arguments: ["-wal", "-shm", "-wal replaced"])
    func sideFileDeleted(_ which: String) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (store, engine, lines) = try Self.storeWithOneBatch(dir)
        defer { store.close() }
        let first = try store.latestSequence()
        try #require(first > 0, "the first batch raised no alert")

        let side = store.path + String(which.prefix(4))
        try FileManager.default.removeItem(atPath: side)
        if which.hasSuffix("replaced") {
            try #require(FileManager.default.createFile(atPath: side, contents: Data()))
        }
        var failure: StoreError?
        do {
            try store.write(Self.batch(engine, lines[300...], now: 2_000))
        } catch {
            failure = error
        }
        let error = try #require(failure, "the write after \(side) was deleted succeeded")
        #expect(error.kind == .sideFileLost && error.kind.isTemporary, "\(error)")
        #expect(error.description.contains("\(side) was deleted or replaced") && error.description.contains("nothing is lost"),
                "\(error)")
        let latest = try store.latestSequence()
        #expect(latest > first, "the second batch raised no alert")
        #expect(try Self.latestInFileAlone(store) == latest, "the database file alone does not hold every commit")
    }

    @Test("side files in place: commits succeed and nothing is copied into the database file by the check")
    func sideFilesInPlace() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (store, engine, lines) = try Self.storeWithOneBatch(dir)
        defer { store.close() }
        try store.write(Self.batch(engine, lines[300...], now: 2_000))
        #expect(try store.latestSequence() > 0)
        #expect(try Self.latestInFileAlone(store) == 0, "something checkpointed the WAL: the test above shows nothing")
    }
}
