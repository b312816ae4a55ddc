import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Acceptance tests of durability (alerts.md "Delivery guarantees", "alertSequence"; README "Journal protocol"):
/// a daemon killed mid-work and restarted on the same state ends with exactly the journal an uninterrupted run
/// produces, never publishing an alert under another id, sequence or content; and consumers that catch up from the
/// journal (the Clone pattern) see every alert exactly once in order.
@Suite("Durability: crash recovery and journal catch-up", .blocking)
struct DurabilityTests {
    /// The daemon's input queue unlimited, so that nothing replayed quickly is dropped before the engine sees it.
    /// R7 on: its timers and open alerts must survive SIGKILL and restarts like everything else.
    static let environment = ["CONTACTWATCH_INPUT_RECEIVE_HIGH_WATER_MARK": "0", "CONTACTWATCH_RULES_OUTCOME_OVERDUE_ENABLED": "true"]
    /// Sentinels are one-frame messages: the daemon must subscribe to everything to see them.
    static let arguments = ["--subscribe", ""]

    /// A generated stream (a few thousand events) split into `parts` contiguous NDJSON files.
    static func generatedChunks(_ dir: TemporaryDirectory, parts: Int) throws -> [String] {
        let stream = dir.file("stream.ndjson")
        let generated = try runTool(["generate", "--cases", "300", "--days", "120", "--seed", "7", "--output", stream])
        try #require(generated.status == 0, "generate failed: \(generated.stderr)")
        let lines = try String(contentsOfFile: stream, encoding: .utf8).split(separator: "\n")
        try #require(lines.count > 2000, "only \(lines.count) events generated")
        let size = (lines.count + parts - 1) / parts
        return try (0..<parts).map { k in
            let path = dir.file("chunk-\(k).ndjson")
            let part = lines[(k * size)..<min(lines.count, (k + 1) * size)]
            try (part.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    /// A file with one line that is not JSON: replayed with `--send-invalid` it comes back as an invalid-event notice
    /// whose payload is `name`, published only after everything before it was committed.
    static func sentinel(_ dir: TemporaryDirectory, _ name: String) throws -> String {
        let path = dir.file("\(name).ndjson")
        try "\(name)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A tail of invalid-event notices (start it, and see it subscribed, before replaying the sentinel).
    static func noticeTail(_ daemon: DaemonUnderTest) throws -> Child {
        try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "invalid-event"])
    }

    /// Waits (bounded) until `tail` has printed the notice for sentinel `name`.
    static func awaitSentinel(_ tail: Child, _ name: String, timeout: Double = 60) -> Bool {
        tail.stdout.wait(timeout: timeout) { text in
            text.split(separator: "\n").contains { jsonObject(String($0))?["payload"] as? String == name }
        }
    }

    /// How many subscriptions to `prefix` the daemon has logged ("subscriber joined").
    static func joined(_ daemon: DaemonUnderTest, _ prefix: String) -> Int {
        joinedCount(daemon.child.stderr.text, prefix)
    }

    static func joinedCount(_ log: String, _ prefix: String) -> Int {
        log.split(separator: "\n").filter { $0.hasSuffix("subscriber joined") && $0.contains("prefix=\(prefix) [") }.count
    }

    /// Waits (bounded) until the daemon has logged at least `n` subscriptions to `prefix`.
    static func awaitJoined(_ daemon: DaemonUnderTest, _ prefix: String, atLeast n: Int, timeout: Double = 30) -> Bool {
        daemon.child.stderr.wait(timeout: timeout) { joinedCount($0, prefix) >= n }
    }

    /// A `contactwatch tail` of the daemon's alerts, started and seen subscribed (the caller stops it with
    /// `stop(_:output: true)`, e.g. in a `defer`). Stopped here when it does not subscribe.
    static func liveTail(_ daemon: DaemonUnderTest) throws -> Child {
        let live = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert."])
        guard awaitJoined(daemon, "alert.", atLeast: 1) else {
            stop(live, output: true)
            try #require(Bool(false), "the live tail did not subscribe")
            return live
        }
        return live
    }

    /// The sqlite3 shell, or nil after printing why `test` is skipped (`make deps` installs it; a bare machine may not
    /// have it).
    static func sqliteShell(skipping test: String, to purpose: String) -> String? {
        let shell = "/usr/bin/sqlite3"
        guard FileManager.default.isExecutableFile(atPath: shell) else {
            print("\(test) skipped: no \(shell) to \(purpose) (apt-get install sqlite3; `make deps` does)")
            return nil
        }
        return shell
    }

    /// An sqlite3 shell (`shell`) holding the store's write lock (WAL: the daemon can still read) until its standard
    /// input, the returned pipe, is closed; returned once it holds it (the caller stops it with `stop(_:)`).
    static func holdWriteLock(_ daemon: DaemonUnderTest, shell: String) throws -> (holder: Child, input: Pipe) {
        try holdTransaction(daemon, shell: shell, begin: "BEGIN IMMEDIATE;", held: "write lock held")
    }

    /// An sqlite3 shell (`shell`) holding a read transaction on the store (a snapshot that keeps checkpoints from
    /// copying past it) until its standard input, the returned pipe, is closed; returned once it holds it.
    static func holdReadTransaction(_ daemon: DaemonUnderTest, shell: String) throws -> (holder: Child, input: Pipe) {
        try holdTransaction(daemon, shell: shell, begin: "BEGIN;\nSELECT count(*) FROM meta;", held: "read transaction held")
    }

    /// An sqlite3 shell on the store that runs `begin`, then prints `held`; returned once it has printed it.
    private static func holdTransaction(_ daemon: DaemonUnderTest, shell: String, begin: String,
                                        held: String) throws -> (holder: Child, input: Pipe) {
        let input = Pipe()
        let holder = try Child(shell, [daemon.stateDir + "/contactwatch.sqlite"], input: input)
        // `.timeout`: the daemon takes the lock briefly (a prune at its first turn, a commit); without a busy timeout
        // the shell's BEGIN failed with "database is locked" at such a moment, and the SELECT still printed its line,
        // so the test went on with no lock held. `.bail on`: a BEGIN that still fails ends the shell, line unprinted.
        input.fileHandleForWriting.write(Data(".timeout 10000\n.bail on\n\(begin)\nSELECT '\(held)';\n".utf8))
        guard holder.stdout.wait(timeout: 30, until: { $0.contains(held) }) else {
            stop(holder)
            try #require(Bool(false), "sqlite3: \(holder.stderr.text)")
            return (holder, input)
        }
        return (holder, input)
    }

    /// Stops a tool that may already have exited (never signals a reaped process id). SIGKILL, not SIGTERM: children
    /// started from the test runner inherit its signal mask, in which SIGTERM is blocked, so a tool (which installs
    /// no handler) would only die when `terminate()` gives up. With `output`, also waits for the end of
    /// its standard output, so that everything it printed is there.
    static func stop(_ child: Child, output: Bool = false) {
        if child.process.isRunning { child.signal(SIGKILL) }
        if output { _ = child.waitForExit(timeout: 10) } else { _ = child.waitForProcessExit(timeout: 10) }
    }

    /// Replays `files` then the sentinel `name` into the daemon and waits until the sentinel's notice is published
    /// (a notice tail subscribed before the replay sees it).
    static func replayThroughSentinel(_ daemon: DaemonUnderTest, _ files: [String], sentinel name: String,
                                      extra: [String] = []) throws {
        let before = joined(daemon, "invalid-event")
        let notices = try noticeTail(daemon)
        defer { stop(notices) }
        try #require(awaitJoined(daemon, "invalid-event", atLeast: before + 1),
                     "the notice tail did not subscribe: \(daemon.child.stderr.text)")
        let replay = try Child("contactwatch", ["replay"] + files + [try sentinel(daemon.dir, name), "--endpoint",
                                                daemon.input, "--wait-subscribers", "1", "--send-invalid"] + extra)
        defer { stop(replay) }
        try #require(replay.waitForProcessExit(timeout: 60) == 0, "replay failed: \(replay.stderr.text)")
        try #require(awaitSentinel(notices, name), "no notice for \(name): \(notices.stdout.text)\n\(daemon.child.stderr.text)")
    }

    static func sequence(_ body: NSDictionary) -> Int? { (body["alertSequence"] as? NSNumber)?.intValue }

    /// A body without `detectedAt`, the only field allowed to differ between two runs over the same input.
    static func withoutDetectedAt(_ body: NSDictionary) -> NSDictionary {
        let m = body.mutableCopy() as! NSMutableDictionary
        m.removeObject(forKey: "detectedAt")
        return m
    }

    /// `cases=N` of the daemon's "state loaded" log line.
    static func loadedCases(_ log: String) -> Int? {
        guard let line = log.split(separator: "\n").first(where: { $0.hasSuffix("state loaded") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("cases=") }) else { return nil }
        return Int(field.dropFirst("cases=".count))
    }

    /// Checks that a journal holds alertSequence 1…N without gap and no (eventType, alertId) twice.
    static func checkContiguous(_ journal: [NSDictionary], _ label: String) {
        for (k, body) in journal.enumerated() where sequence(body) != k + 1 {
            Issue.record("\(label): entry \(k + 1) has alertSequence \(sequence(body).map(String.init) ?? "none")")
            break
        }
        // A resolution carries the id of the alert it resolves, so identity is per kind of message.
        var seen: [String: Int] = [:]
        for body in journal {
            let key = "\(body["eventType"] as? String ?? "?") \(body["alertId"] as? String ?? "?")"
            if let earlier = seen[key] {
                Issue.record("\(label): \(key) under alertSequence \(earlier) and \(sequence(body) ?? -1)")
            }
            seen[key] = sequence(body) ?? -1
        }
    }

    @Test("SIGKILL mid-work, restart on the same state, replay the chunk again: the same alerts, ids and sequences as an uninterrupted run")
    func crashRecovery() throws {
        // Run A: uninterrupted.
        let dirA = try TemporaryDirectory()
        let chunks = try Self.generatedChunks(dirA, parts: 4)
        let daemonA = try DaemonUnderTest(dir: dirA, extraArguments: Self.arguments, environment: Self.environment)
        try Self.replayThroughSentinel(daemonA, chunks, sentinel: "sentinel-A")
        let journalA = try JournalClient(endpoint: daemonA.journal).fetchAll()
        #expect(daemonA.stop() == 0, "run A did not stop cleanly: \(daemonA.child.stderr.text)")
        try #require(journalA.bodies.count > 100, "run A raised only \(journalA.bodies.count) alerts")
        let r7 = journalA.bodies.filter { $0["rule"] as? String == "outcome-overdue" }
        #expect(r7.count > 5 && r7.contains { $0["eventType"] as? String == "probation-case.supervision-alert.resolved" },
                "run A: \(r7.count) outcome-overdue messages")
        #expect(journalA.latest == journalA.bodies.count)
        Self.checkContiguous(journalA.bodies, "run A")

        // Run B: the same stream; the daemon is killed during each of the first three chunks.
        let dirB = try TemporaryDirectory()
        var daemon = try DaemonUnderTest(dir: dirB, extraArguments: Self.arguments, environment: Self.environment)
        // A live consumer of every alert throughout; its SUB reconnects to each new daemon by itself.
        let live = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert."])
        defer { Self.stop(live, output: true) }
        try #require(Self.awaitJoined(daemon, "alert.", atLeast: 1), "the live tail did not subscribe")
        var killedMidReplay = 0
        for (k, chunk) in chunks.dropLast().enumerated() {
            let before = live.stdout.lines.count
            // At 500 a second a chunk takes ~2.3 s to send: at 2,000 a loaded machine could finish it before the
            // third alert was printed, and no kill came mid-replay (a reviewer, session 38).
            let replay = try Child("contactwatch", ["replay", chunk, "--endpoint", daemon.input, "--wait-subscribers", "1",
                                                    "--rate", "500"])
            // Something new published (so something was committed) is the signal to crash.
            let published = live.stdout.wait(timeout: 60) { $0.split(separator: "\n").count >= before + 3 }
            try #require(published, "chunk \(k): nothing new published: \(daemon.child.stderr.text)")
            if replay.process.isRunning { killedMidReplay += 1 }
            daemon.child.signal(SIGKILL)
            replay.signal(SIGKILL)  // or it would deliver the rest of the chunk to the next daemon
            try #require(daemon.child.waitForProcessExit(timeout: 10) != nil, "the daemon survived SIGKILL")
            _ = replay.waitForProcessExit(timeout: 10)

            daemon = try DaemonUnderTest(dir: dirB, extraArguments: Self.arguments, environment: Self.environment)
            // The log line comes before READY=1, but its bytes may still be on their way through the pipe.
            daemon.child.stderr.wait(timeout: 10) { Self.loadedCases($0) != nil }
            let cases = Self.loadedCases(daemon.child.stderr.text)
            #expect((cases ?? 0) > 0, "restart \(k + 1): \(daemon.child.stderr.text)")
            // The live tail's SUB reconnects by itself; it must be back before the next signal is awaited.
            try #require(Self.awaitJoined(daemon, "alert.", atLeast: 1), "the live tail did not reconnect")
            // The same chunk again from its start: what was already processed arrives twice.
            try Self.replayThroughSentinel(daemon, [chunk], sentinel: "sentinel-B\(k)")
        }
        try Self.replayThroughSentinel(daemon, [chunks.last!], sentinel: "sentinel-B-last")
        let journalB = try JournalClient(endpoint: daemon.journal).fetchAll()
        let n = journalB.bodies.count
        // Let the live tail print the last alert (it was published before the sentinel's notice).
        let liveCaughtUp = live.stdout.wait(timeout: 30) { text in
            text.split(separator: "\n").last.flatMap { jsonObject(String($0)) }.flatMap(Self.sequence) == n
        }
        #expect(liveCaughtUp, "the live tail did not print alertSequence \(n)")
        #expect(daemon.stop() == 0, "the last daemon did not stop cleanly: \(daemon.child.stderr.text)")
        #expect(killedMidReplay > 0, "no kill happened while a replay was still sending")

        // The journal of run B is that of run A, apart from detectedAt.
        #expect(journalB.latest == n)
        Self.checkContiguous(journalB.bodies, "run B")
        #expect(n == journalA.bodies.count, "run B journal has \(n) alerts, run A \(journalA.bodies.count)")
        var differences = 0
        for (a, b) in zip(journalA.bodies, journalB.bodies) where Self.withoutDetectedAt(a) != Self.withoutDetectedAt(b) {
            differences += 1
            if differences <= 3 { Issue.record("alertSequence \(Self.sequence(a) ?? -1):\n A \(a)\n B \(b)") }
        }
        #expect(differences == 0, "\(differences) journal entries differ between runs A and B")

        // Whatever the live consumer was sent, across the restarts, is the journal's entry for that sequence.
        let liveBodies = live.stdout.lines.compactMap(jsonObject)
        #expect(liveBodies.count == live.stdout.lines.count, "the live tail printed a line that is not JSON")
        #expect(liveBodies.count > 0)
        var mismatches = 0
        for body in liveBodies {
            guard let s = Self.sequence(body), s >= 1, s <= n else {
                mismatches += 1
                Issue.record("live alert outside the journal: \(body)")
                continue
            }
            if Self.withoutDetectedAt(body) != Self.withoutDetectedAt(journalB.bodies[s - 1]) {
                mismatches += 1
                if mismatches <= 3 { Issue.record("live alertSequence \(s):\n live    \(body)\n journal \(journalB.bodies[s - 1])") }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(liveBodies.count) live alerts differ from the journal")
    }

    /// The README's recovery: a numbered publisher whose daemon was killed resends from the position the restarted
    /// daemon says at start (`publisher position … lastSequence=K`), with `replay --resume-after K`: nothing repeated,
    /// no gap, and the journal of a run never killed. The position was only in the store, read by nothing documented,
    /// and replay could not number a resend as the first run had (a crash-consistency tester, session 50).
    @Test("SIGKILL mid-replay of a numbered publisher; the restart says its position; replay --resume-after it: no repeat, no gap, the uninterrupted run's journal")
    func resumeFromTheSaidPosition() throws {
        let feed = ["--publisher-id", "feed"]
        let dirA = try TemporaryDirectory()
        let stream = try Self.generatedChunks(dirA, parts: 1)
        let daemonA = try DaemonUnderTest(dir: dirA, extraArguments: Self.arguments, environment: Self.environment)
        try Self.replayThroughSentinel(daemonA, stream, sentinel: "sentinel-A", extra: feed)
        let journalA = try JournalClient(endpoint: daemonA.journal).fetchAll()
        #expect(daemonA.stop() == 0, "run A did not stop cleanly: \(daemonA.child.stderr.text)")
        try #require(journalA.bodies.count > 100, "run A raised only \(journalA.bodies.count) alerts")

        let dirB = try TemporaryDirectory()
        var daemon = try DaemonUnderTest(dir: dirB, extraArguments: Self.arguments, environment: Self.environment)
        let live = try Self.liveTail(daemon)
        defer { Self.stop(live, output: true) }
        let replay = try Child("contactwatch", ["replay"] + stream + ["--endpoint", daemon.input, "--wait-subscribers", "1",
                                                                     "--rate", "500"] + feed)
        defer { Self.stop(replay) }
        let published = live.stdout.wait(timeout: 60) { $0.split(separator: "\n").count >= 3 }
        try #require(published, "nothing published: \(daemon.child.stderr.text)")
        daemon.child.signal(SIGKILL)
        replay.signal(SIGKILL)
        try #require(daemon.child.waitForProcessExit(timeout: 10) != nil, "the daemon survived SIGKILL")
        _ = replay.waitForProcessExit(timeout: 10)

        daemon = try DaemonUnderTest(dir: dirB, extraArguments: Self.arguments, environment: Self.environment)
        func position(_ log: String) -> UInt64? {
            guard let line = log.split(separator: "\n").first(where: { $0.contains("publisher position") && $0.contains("publisherId=feed ") }),
                  let field = line.split(separator: " ").first(where: { $0.hasPrefix("lastSequence=") }) else { return nil }
            return UInt64(field.dropFirst("lastSequence=".count))
        }
        daemon.child.stderr.wait(timeout: 10) { position($0) != nil }
        let said = try #require(position(daemon.child.stderr.text), "no position said: \(daemon.child.stderr.text)")
        #expect(said > 0)
        try Self.replayThroughSentinel(daemon, stream, sentinel: "sentinel-B", extra: feed + ["--resume-after", "\(said)"])
        let journalB = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        let log = daemon.child.stderr.text
        #expect(FaultTests.stoppedField(log, "repeats") == 0 && FaultTests.stoppedField(log, "gaps") == 0, "\(log.suffix(1500))")
        #expect(!log.contains("restarted its sequence"), "\(log.suffix(1500))")
        Self.checkContiguous(journalB.bodies, "run B")
        #expect(journalB.bodies.count == journalA.bodies.count, "run B \(journalB.bodies.count), run A \(journalA.bodies.count)")
        var differences = 0
        for (a, b) in zip(journalA.bodies, journalB.bodies) where Self.withoutDetectedAt(a) != Self.withoutDetectedAt(b) {
            differences += 1
            if differences <= 3 { Issue.record("alertSequence \(Self.sequence(a) ?? -1):\n A \(a)\n B \(b)") }
        }
        #expect(differences == 0, "\(differences) journal entries differ between runs A and B")
    }

    @Test("an online backup (sqlite3 .backup while the daemon commits), restored as the README says after a SIGKILL: the journal up to the backup, then the same alerts as a run never restored")
    func onlineBackupRestore() throws {
        guard let shell = Self.sqliteShell(skipping: "durability: online backup", to: "take it") else { return }
        let dir = try TemporaryDirectory()
        let chunks = try Self.generatedChunks(dir, parts: 4)
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: Self.arguments, environment: Self.environment)
        let store = daemon.stateDir + "/contactwatch.sqlite"
        let backup = dir.file("backup.sqlite")
        try Self.replayThroughSentinel(daemon, [chunks[0]], sentinel: "part-1")
        let atPart1 = try JournalClient(endpoint: daemon.journal).fetchAll()
        try #require(atPart1.bodies.count > 0, "part 1 raised no alert")

        // Part 2 paced; the backup is taken once it has published (so committed) something, while it goes on.
        let live = try Self.liveTail(daemon)
        defer { Self.stop(live, output: true) }
        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1",
                                                "--rate", "250"])
        defer { Self.stop(replay) }
        try #require(live.stdout.wait(timeout: 60) { !$0.isEmpty }, "part 2 published nothing: \(daemon.child.stderr.text)")
        let copy = try Child(shell, [store, ".timeout 10000", ".backup '\(backup)'"])
        #expect(copy.waitForExit(timeout: 60) == 0, "sqlite3 .backup failed: \(copy.stderr.text)")
        let duringReplay = replay.process.isRunning
        #expect(replay.waitForProcessExit(timeout: 120) == 0, "replay of part 2 failed: \(replay.stderr.text)")
        try Self.replayThroughSentinel(daemon, [chunks[2], chunks[3]], sentinel: "parts-3-4")
        let original = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(duringReplay, "the backup ended after the replay it was meant to overlap (not a backup under commits)")

        // The daemon dies (SIGKILL leaves its -wal with committed pages beside the file). Restore as the README says:
        // the -wal and -shm removed (SQLite would apply them to the copy), the copy in place.
        daemon.child.signal(SIGKILL)
        try #require(daemon.child.waitForProcessExit(timeout: 10) != nil, "the daemon survived SIGKILL")
        #expect(FileManager.default.fileExists(atPath: store + "-wal"), "no -wal left by SIGKILL: the restore step is not exercised")
        for leftover in [store + "-wal", store + "-shm"] { try? FileManager.default.removeItem(atPath: leftover) }
        try FileManager.default.removeItem(atPath: store)
        try FileManager.default.copyItem(atPath: backup, toPath: store)

        daemon = try DaemonUnderTest(dir: dir, extraArguments: Self.arguments, environment: Self.environment)
        let restored = try JournalClient(endpoint: daemon.journal).fetchAll()
        // The copy holds what was committed when it was taken: everything of part 1, part of part 2, nothing later.
        #expect(restored.bodies.count >= atPart1.bodies.count && restored.bodies.count < original.bodies.count,
                "restored journal has \(restored.bodies.count) alerts (part 1: \(atPart1.bodies.count), in all \(original.bodies.count))")
        #expect(restored.bodies == Array(original.bodies.prefix(restored.bodies.count)),
                "the restored journal is not a prefix of the original's")
        // The publisher replays from before the backup (parts 2 to 4): the same alerts as the run never restored.
        try Self.replayThroughSentinel(daemon, [chunks[1], chunks[2], chunks[3]], sentinel: "after-restore")
        let continued = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0, "the restored daemon did not stop cleanly: \(daemon.child.stderr.text)")
        Self.checkContiguous(continued.bodies, "restored run")
        #expect(continued.bodies.count == original.bodies.count,
                "restored run: \(continued.bodies.count) alerts, original \(original.bodies.count)")
        var differences = 0
        for (a, b) in zip(original.bodies, continued.bodies) where Self.withoutDetectedAt(a) != Self.withoutDetectedAt(b) {
            differences += 1
            if differences <= 3 { Issue.record("alertSequence \(Self.sequence(a) ?? -1):\n original \(a)\n restored \(b)") }
        }
        #expect(differences == 0, "\(differences) journal entries differ between the original and the restored run")
    }

    @Test("consumers catch up from the journal: every alert exactly once, in order, also while alerts are being published")
    func consumerCatchUp() throws {
        let dir = try TemporaryDirectory()
        let parts = try Self.generatedChunks(dir, parts: 4)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: Self.arguments, environment: Self.environment)

        func tail(from: Int, count: Int? = nil) throws -> Child {
            try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert.", "--journal", daemon.journal,
                                       "--from-sequence", "\(from)"] + (count.map { ["--count", "\($0)"] } ?? []))
        }
        func sequences(_ child: Child) -> [Int] { child.stdout.lines.map { jsonObject($0).flatMap(Self.sequence) ?? -1 } }

        // Part 1, then a consumer from the start.
        try Self.replayThroughSentinel(daemon, [parts[0]], sentinel: "sentinel-1")
        let k1 = try JournalClient(endpoint: daemon.journal).fetch(after: 0).latest
        try #require(k1 > 0, "part 1 raised no alert")
        let first = try tail(from: 0, count: k1)
        #expect(first.waitForProcessExit(timeout: 60) == 0, "tail from 0 did not print \(k1) alerts: \(first.stderr.text)")
        // Whole lines only: a chunk may end inside a line.
        first.stdout.wait(timeout: 30) { $0.hasSuffix("\n") && $0.split(separator: "\n").count >= k1 }
        #expect(sequences(first) == Array(1...k1))

        // Part 2 with no consumer of alerts running, then a consumer from where the first stopped.
        try Self.replayThroughSentinel(daemon, [parts[1]], sentinel: "sentinel-2")
        let n2 = try JournalClient(endpoint: daemon.journal).fetch(after: 0).latest
        try #require(n2 > k1, "part 2 raised no alert")
        let second = try tail(from: k1, count: n2 - k1)
        #expect(second.waitForProcessExit(timeout: 60) == 0, "tail from \(k1) did not print \(n2 - k1) alerts: \(second.stderr.text)")
        second.stdout.wait(timeout: 30) { $0.hasSuffix("\n") && $0.split(separator: "\n").count >= n2 - k1 }
        #expect(sequences(second) == Array((k1 + 1)...n2))
        let journal2 = try JournalClient(endpoint: daemon.journal).fetchAll()
        let union = (first.stdout.lines + second.stdout.lines).compactMap(jsonObject)
        #expect(union == journal2.bodies, "the two consumers' alerts are not the journal's")

        // Part 3, paced; a consumer starting from the middle of part 2 joins while part 3's alerts are published,
        // so its journal catch-up races the live stream. That the race happens does not depend on speed: part 4 is
        // replayed only once the consumer's live subscription has reached the daemon (while it may still be reading
        // the journal), so alerts published after it joined are certain.
        let noticesBefore = Self.joined(daemon, "invalid-event"), alertsBefore = Self.joined(daemon, "alert.")
        let notices = try Self.noticeTail(daemon)
        defer { Self.stop(notices) }
        let signal = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert."])
        defer { Self.stop(signal) }
        try #require(Self.awaitJoined(daemon, "invalid-event", atLeast: noticesBefore + 1)
                     && Self.awaitJoined(daemon, "alert.", atLeast: alertsBefore + 1),
                     "subscribers did not join: \(daemon.child.stderr.text)")
        let replay = try Child("contactwatch", ["replay", parts[2], "--endpoint", daemon.input, "--wait-subscribers", "1",
                                                "--rate", "1500"])
        defer { Self.stop(replay) }
        try #require(signal.stdout.wait(timeout: 60) { !$0.isEmpty }, "part 3 published nothing")
        let start = k1 + (n2 - k1) / 2
        let third = try tail(from: start)
        defer { Self.stop(third, output: true) }
        try #require(Self.awaitJoined(daemon, "alert.", atLeast: alertsBefore + 2),
                     "the racing consumer did not subscribe: \(daemon.child.stderr.text)")
        let latestAtJoin = try JournalClient(endpoint: daemon.journal).fetch(after: 0).latest
        #expect(replay.waitForProcessExit(timeout: 120) == 0, "replay of part 3 failed: \(replay.stderr.text)")
        let rest = try Child("contactwatch", ["replay", parts[3], try Self.sentinel(dir, "sentinel-3"),
                                              "--endpoint", daemon.input, "--wait-subscribers", "1", "--send-invalid"])
        defer { Self.stop(rest) }
        #expect(rest.waitForProcessExit(timeout: 120) == 0, "replay of part 4 failed: \(rest.stderr.text)")
        try #require(Self.awaitSentinel(notices, "sentinel-3"), "no notice for sentinel-3: \(daemon.child.stderr.text)")
        let journal3 = try JournalClient(endpoint: daemon.journal).fetchAll()
        let n3 = journal3.bodies.count
        try #require(n3 > latestAtJoin, "no alert was published after the racing consumer joined (\(latestAtJoin) before, \(n3) in all)")
        #expect(journal3.latest == n3)
        Self.checkContiguous(journal3.bodies, "journal")
        #expect(third.stdout.wait(timeout: 60) { $0.split(separator: "\n").count >= n3 - start },
                "tail from \(start) printed \(third.stdout.lines.count) of \(n3 - start): \(third.stderr.text)")
        #expect(daemon.stop() == 0, "daemon did not stop cleanly: \(daemon.child.stderr.text)")
        Self.stop(third, output: true)
        #expect(sequences(third) == Array((start + 1)...n3), "tail from \(start): \(sequences(third))")
        #expect(third.stdout.lines.compactMap(jsonObject) == Array(journal3.bodies[start...]))
    }
}
