import ContactWatchEngine
import ContactWatchStore
import ContactWatchTestThreads
import Foundation
import Testing

/// A full disk is told by what failed: a batch's commit "was not committed and nothing of it was published"; the
/// start's check that the store can be written has no batch, and said the same (a crash tester, session 47).
@Suite("the full disk's wording", .blocking)
struct FullDiskWordingTests {
    static func run(_ path: String, _ arguments: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test("on a full tmpfs: the start's check says nothing was written, a commit that the failed batch was not committed")
    func wordingByWhatFailed() throws {
        guard getuid() == 0 else {
            print("skipped: mounting a tmpfs needs root (uid \(getuid()))")
            return
        }
        let dir = TempDir()
        defer { dir.cleanup() }
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", dir.path]) == 0 else {
            print("skipped: mount -t tmpfs failed (a sandbox without mounts?)")
            return
        }
        defer { _ = Self.run("/bin/umount", ["-l", dir.path]) }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        _ = try store.load()
        // Every block taken, with the store open (its -wal and -shm made).
        _ = Self.run("/bin/dd", ["if=/dev/zero", "of=\(dir.path)/filler", "bs=4096"])
        do {
            try store.checkWritable()
            Issue.record("the check wrote on a full disk")
        } catch {
            #expect(error.kind == .full && error.description.contains("nothing was written")
                    && !error.description.contains("batch"), "\(error.description)")
        }
        var state = EngineState()
        state.alertSequence = 1
        let body = Array(String(repeating: "x", count: 64 << 10).utf8)
        do {
            try store.commit(changes: ChangeSet(), state: state,
                             journal: [JournalEntry(alertSequence: 1, alertId: String(repeating: "a", count: 32),
                                                    topic: Array("alert.raised.no-privacy".utf8), body: body)],
                             publishedThrough: nil, now: 1)
            Issue.record("a commit went through on a full disk")
        } catch {
            #expect(error.kind == .full && error.description.contains("the failed batch was not committed"), "\(error.description)")
        }
    }
}
