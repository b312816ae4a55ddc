import ContactWatchTestThreads
import ContactWatchTestSupport
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// Fault tests (issue 8): a journal client that never reads, kill/restart cycles with a consumer connected
/// throughout, a store made read-only (at start-up by a mount; mid-run by EROFS from every write), a full disk.
/// Loopback and ipc:// only; bounded waits; the mount-based cases need root and say so when they skip.
@Suite("Faults: hostile journal clients, crashes, read-only store, full disk", .blocking)
struct FaultTests {
    typealias D = DurabilityTests

    // MARK: - Helpers

    /// Runs `mount`/`umount` (or any command); returns its status and output.
    @discardableResult
    static func command(_ path: String, _ arguments: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Why mounts cannot be used here, or nil when a tmpfs can be mounted (root, and allowed by the sandbox).
    static let mountUnavailable: String? = {
        guard getuid() == 0 else { return "not root (uid \(getuid())): cannot mount a tmpfs or a read-only bind" }
        let probe = NSTemporaryDirectory() + "cw-mount-probe-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        let r = command("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe])
        guard r.status == 0 else { return "mount -t tmpfs failed: \(r.output)" }
        command("/bin/umount", [probe])
        return nil
    }()

    /// Creates `path` and mounts a tmpfs there with `options` (e.g. "size=256k"); the caller unmounts it with
    /// `unmount(_:)` in a `defer` (check `mountUnavailable` first).
    static func mountTmpfs(at path: String, options: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mounted = command("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path])
        try #require(mounted.status == 0, "mount tmpfs: \(mounted.output)")
    }

    static func unmount(_ path: String) { command("/bin/umount", [path]) }

    /// The peak resident set (VmHWM) of a process, in kB.
    static func peakRSSKilobytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }

    /// A field `key=value` of the daemon's "stopped" line.
    static func stoppedField(_ log: String, _ key: String) -> Int? {
        guard let line = log.split(separator: "\n").last(where: { $0.hasSuffix("stopped") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("\(key)=") }) else { return nil }
        return Int(field.dropFirst(key.count + 1))
    }

    /// A field `key=value` of the daemon's "state loaded" line, e.g. `unpublished`.
    static func loadedField(_ log: String, _ key: String) -> Int? {
        guard let line = log.split(separator: "\n").first(where: { $0.hasSuffix("state loaded") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("\(key)=") }) else { return nil }
        return Int(field.dropFirst(key.count + 1))
    }

    /// N of the daemon's "published N alerts committed before the last stop and not recorded as published" notice.
    static func republishedCount(_ log: String) -> Int? {
        guard let range = log.range(of: "published [0-9]+ alerts committed before the last stop", options: .regularExpression)
        else { return nil }
        return Int(log[range].split(separator: " ")[1])
    }

    /// The alertSequences a tail printed (duplicates kept).
    static func sequences(_ tail: Child) -> [Int] { tail.stdout.lines.compactMap { jsonObject($0).flatMap(D.sequence) } }

    /// Checks that a live consumer received every alert of the journal, each with the journal's body, apart from
    /// alerts in `mayMiss` (see `sevenKillRestartCycles`). Returns how many of those it missed.
    @discardableResult
    static func checkLiveHasEveryAlert(_ live: Child, journal: [NSDictionary], _ label: String,
                                       mayMiss: [ClosedRange<Int>] = []) -> Int {
        let n = journal.count
        let got = Set(sequences(live))
        let missing = Set(1...max(1, n)).subtracting(got).filter { $0 <= n }.sorted()
        let allowed = missing.filter { s in mayMiss.contains { $0.contains(s) } }
        let lost = missing.filter { s in !mayMiss.contains { $0.contains(s) } }
        #expect(lost.isEmpty, "\(label): the live consumer missed alertSequence \(lost.prefix(20)) of \(n)")
        for body in live.stdout.lines.compactMap(jsonObject) {
            guard let s = D.sequence(body), s >= 1, s <= n else {
                Issue.record("\(label): live alert outside the journal: \(body)")
                continue
            }
            if D.withoutDetectedAt(body) != D.withoutDetectedAt(journal[s - 1]) {
                Issue.record("\(label): live alertSequence \(s) differs from the journal")
            }
        }
        return allowed.count
    }

    /// The journal of the fault tests' generated stream (`D.generatedChunks`) replayed into a daemon that nothing
    /// disturbs: what every disturbed run must end with.
    static func uninterruptedJournal() throws -> [NSDictionary] {
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 1)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, chunks, sentinel: "all")
        let journal = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0)
        return journal.bodies
    }

    /// After a fault: the restarted `daemon` gets the whole stream again (`chunks`) and must end with exactly the
    /// `uninterrupted` journal, every alert of it received by the `live` consumer connected throughout. Returns the
    /// journal's length.
    @discardableResult
    static func expectRecovery(_ daemon: DaemonUnderTest, replaying chunks: [String], live: Child,
                               equalTo uninterrupted: [NSDictionary], _ label: String) throws -> Int {
        try #require(D.awaitJoined(daemon, "alert.", atLeast: 1), "\(label): the live tail did not reconnect")
        try D.replayThroughSentinel(daemon, chunks, sentinel: "again")
        let journal = try JournalClient(endpoint: daemon.journal).fetchAll().bodies
        _ = live.stdout.wait(timeout: 30) { text in
            Set(text.split(separator: "\n").compactMap { jsonObject(String($0)).flatMap(D.sequence) }).contains(journal.count)
        }
        #expect(daemon.stop() == 0, "\(label): \(daemon.child.stderr.text)")
        D.checkContiguous(journal, "\(label): journal")
        #expect(journal.count == uninterrupted.count, "\(label): \(journal.count) alerts, uninterrupted \(uninterrupted.count)")
        var differences = 0
        for (a, b) in zip(uninterrupted, journal) where D.withoutDetectedAt(a) != D.withoutDetectedAt(b) { differences += 1 }
        #expect(differences == 0, "\(label): \(differences) alerts differ from the uninterrupted run")
        checkLiveHasEveryAlert(live, journal: journal, label)
        return journal.count
    }

    /// Builds `readOnlyShimSource` into `dir` with the system's C compiler; nil (and a printed reason) without one.
    static func buildReadOnlyShim(_ dir: TemporaryDirectory) throws -> String? {
        try buildShim(dir, "read-only-shim", readOnlyShimSource, test: "store read-only mid-run")
    }

    /// Builds an LD_PRELOAD library from `source` into `dir` with the system's C compiler; nil (and a printed reason,
    /// naming `test`) without one.
    static func buildShim(_ dir: TemporaryDirectory, _ name: String, _ text: String, test: String) throws -> String? {
        let source = dir.file("\(name).c")
        let library = dir.file("\(name).so")
        try text.write(toFile: source, atomically: true, encoding: .utf8)
        var failures: [String] = []
        for compiler in ["cc", "gcc", "clang"] {
            let r = command("/usr/bin/env", [compiler, "-shared", "-fPIC", "-O1", "-o", library, source, "-ldl"])
            if r.status == 0 { return library }
            failures.append("\(compiler): \(r.output.prefix(200))")
        }
        print("fault: \(test) skipped: no C compiler built the LD_PRELOAD library (\(failures))")
        return nil
    }

    /// An LD_PRELOAD library making every `zmq_poll` of the daemon's journal thread (`cw-journal`) fail with the errno
    /// in `CW_FAULT_POLL_ERRNO` once the file named by `CW_FAULT_POLL_FAILS_AFTER` exists: a journal socket that
    /// keeps failing, which the journal thread used to skip with `try?` and `continue` — a silent spin.
    static let pollFailureShimSource = #"""
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/prctl.h>
        #include <unistd.h>

        int zmq_poll(void *items, int n, long timeout) {
            static int (*next)(void *, int, long);
            if (next == NULL) next = (int (*)(void *, int, long))dlsym(RTLD_NEXT, "zmq_poll");
            const char *trigger = getenv("CW_FAULT_POLL_FAILS_AFTER");
            char name[17] = {0};
            prctl(PR_GET_NAME, name, 0, 0, 0);
            if (trigger != NULL && strcmp(name, "cw-journal") == 0 && access(trigger, F_OK) == 0) {
                const char *code = getenv("CW_FAULT_POLL_ERRNO");
                errno = code != NULL ? atoi(code) : ENOMEM;
                return -1;
            }
            return next(items, n, timeout);
        }
        """#

    /// An LD_PRELOAD library making every write, truncation and sync of the daemon's store files (`contactwatch.sqlite`
    /// and its `-wal`/`-shm`) fail with EROFS once the file named by `CW_FAULT_READ_ONLY_AFTER` exists: what a process
    /// holding those files open sees when the kernel remounts their file system read-only after a disk error (ext4
    /// `errors=remount-ro`). A mount cannot stage that here: Linux refuses a read-only remount (EBUSY) while a process
    /// holds files on it open for writing.
    static let readOnlyShimSource = #"""
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/types.h>
        #include <unistd.h>

        static int failing(int fd) {
            const char *trigger = getenv("CW_FAULT_READ_ONLY_AFTER");
            if (trigger == NULL || access(trigger, F_OK) != 0) return 0;
            char link[64], path[4096];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, path, sizeof path - 1);
            if (n <= 0) return 0;
            path[n] = 0;
            return strstr(path, "/contactwatch.sqlite") != NULL;
        }

        #define NEXT(name) static __typeof__(name) *next; if (next == NULL) next = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
        #define FAIL_IF_STORE(fd) if (failing(fd)) { errno = EROFS; return -1; }

        ssize_t write(int fd, const void *b, size_t n) { FAIL_IF_STORE(fd) NEXT(write); return next(fd, b, n); }
        ssize_t pwrite(int fd, const void *b, size_t n, off_t o) { FAIL_IF_STORE(fd) NEXT(pwrite); return next(fd, b, n, o); }
        ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o) { FAIL_IF_STORE(fd) NEXT(pwrite64); return next(fd, b, n, o); }
        int fsync(int fd) { FAIL_IF_STORE(fd) NEXT(fsync); return next(fd); }
        int fdatasync(int fd) { FAIL_IF_STORE(fd) NEXT(fdatasync); return next(fd); }
        int ftruncate(int fd, off_t l) { FAIL_IF_STORE(fd) NEXT(ftruncate); return next(fd, l); }
        int ftruncate64(int fd, off64_t l) { FAIL_IF_STORE(fd) NEXT(ftruncate64); return next(fd, l); }
        """#

    // MARK: - Kill/restart with a consumer connected throughout

    /// The store recorded what was published only with the next commit: an idle daemon killed (or backed up) had every
    /// alert published since its last commit published again at its restart (an operator audit, session 26: 123 of
    /// 123). A second after it went idle it now records them in an empty batch.
    @Test("a daemon killed while idle, once it has recorded its last alerts as published, republishes nothing at its restart")
    func idleDaemonKilledRepublishesNothing() throws {
        let dir = try TemporaryDirectory()
        let environment = ["CONTACTWATCH_LOG_STATS_INTERVAL_SECONDS": "1"]
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        let alerts = try Fixtures.lines("01-warning-then-breach.expected.ndjson").filter { $0.contains(#""topic": "alert."#) }.count
        try #require(alerts > 0)
        let tail = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert.", "--count", "\(alerts)"])
        defer { D.stop(tail) }
        try #require(D.awaitJoined(daemon, "alert.", atLeast: 1), "the tail did not subscribe")
        let replay = try runTool(["replay", Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path,
                                  "--endpoint", daemon.input, "--wait-subscribers", "1"])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(tail.waitForExit(timeout: 60) == 0, "the tail did not get \(alerts) alerts: \(tail.stdout.text)")
        // Idle now: the counters line (every second) says when the store records all of them as published.
        #expect(daemon.child.stderr.wait(timeout: 30) { log in
            log.split(separator: "\n").contains { $0.hasSuffix("counters") && $0.contains(" publishedRecorded=\(alerts) ") }
        }, "never recorded as published: \(daemon.child.stderr.text.suffix(1500))")
        daemon.child.signal(SIGKILL)
        try #require(daemon.child.waitForProcessExit(timeout: 10) != nil, "the daemon survived SIGKILL")
        let restarted = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        try #require(restarted.child.stderr.wait(timeout: 30) { Self.loadedField($0, "unpublished") != nil },
                     "\(restarted.child.stderr.text)")
        let log = restarted.child.stderr.text
        #expect(Self.loadedField(log, "unpublished") == 0, "\(log)")
        #expect(Self.loadedField(log, "alertSequence") == alerts, "\(log)")
        #expect(Self.republishedCount(log) == nil, "\(log)")
        #expect(restarted.stop() == 0, "\(restarted.child.stderr.text)")
    }

    @Test("a consumer connected throughout seven SIGKILL/restart cycles receives every alert of the journal live, but those a kill caught in flight")
    func sevenKillRestartCycles() throws {
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 8)
        // Batches of 100 ms (about 50 events at --rate 500), not group commit's one or two: a batch's alerts are
        // recorded published by the next commit, so a kill leaves alerts to republish when the last durable batch had
        // some; with batches of an event or two that was by chance, and a quiet machine once gave 0 restarts of 7.
        let environment = D.environment.merging(["CONTACTWATCH_STATE_GROUP_COMMIT": "false",
                                                 "CONTACTWATCH_STATE_COMMIT_INTERVAL_MILLIS": "100"]) { $1 }
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        let live = try D.liveTail(daemon)
        defer { D.stop(live, output: true) }
        var republishing = 0
        // What a SIGKILL may take from the live stream (alerts.md, delivery guarantees: the PUB socket is at most once;
        // consumers re-read gaps from the journal): alerts already handed to libzmq, and recorded as published by a
        // later commit, that its I/O thread had not yet written out. Per kill, those lie above the last alert the
        // consumer had before the kill and at or below what the store recorded as published; an alert missed outside
        // these windows is a loss the daemon caused.
        var mayMiss: [ClosedRange<Int>] = []
        for (k, chunk) in chunks.dropLast().enumerated() {
            let before = live.stdout.lines.count
            let replay = try Child("contactwatch", ["replay", chunk, "--endpoint", daemon.input, "--wait-subscribers", "1",
                                                    "--rate", "500"])  // still sending at the kill, on a loaded machine too
            let published = live.stdout.wait(timeout: 60) { $0.split(separator: "\n").count >= before + 3 }
            try #require(published, "cycle \(k + 1): nothing new published: \(daemon.child.stderr.text)")
            let liveBeforeKill = Self.sequences(live).max() ?? 0
            daemon.child.signal(SIGKILL)
            replay.signal(SIGKILL)
            try #require(daemon.child.waitForProcessExit(timeout: 10) != nil, "the daemon survived SIGKILL")
            _ = replay.waitForProcessExit(timeout: 10)
            // READY=1 comes only after the alerts left unpublished went out (to the reconnected consumer, or after
            // the grace); the consumer's SUB reconnects by itself.
            // A grace of 30 s (default 2 s): the live tail's reconnection, not the clock, ends the republish, however
            // slow a loaded machine makes it (a reviewer, session 38).
            daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments,
                                         environment: environment.merging(["CONTACTWATCH_OUTPUT_REPUBLISH_GRACE_MILLIS": "30000"]) { $1 })
            // Both lines come before READY=1, but their bytes may still be on their way through the pipe: wait for
            // "state loaded" and, when it counts alerts left unpublished, for the notice that they went out.
            let restarted = daemon
            try #require(restarted.child.stderr.wait(timeout: 30) { log in
                guard let left = Self.loadedField(log, "unpublished") else { return false }
                return left == 0 || Self.republishedCount(log) != nil
            }, "cycle \(k + 1): no state loaded / republish line: \(restarted.child.stderr.text)")
            let left = Self.loadedField(restarted.child.stderr.text, "unpublished") ?? -1
            let recordedPublished = (Self.loadedField(restarted.child.stderr.text, "alertSequence") ?? 0) - max(0, left)
            if recordedPublished > liveBeforeKill { mayMiss.append((liveBeforeKill + 1)...recordedPublished) }
            if left > 0 {
                republishing += 1
                #expect(Self.republishedCount(restarted.child.stderr.text) == left,
                        "cycle \(k + 1): \(left) alerts left unpublished, but: \(restarted.child.stderr.text)")
            }
            try #require(D.awaitJoined(daemon, "alert.", atLeast: 1), "cycle \(k + 1): the live tail did not reconnect")
            try D.replayThroughSentinel(daemon, [chunk], sentinel: "cycle-\(k + 1)")
        }
        try D.replayThroughSentinel(daemon, [chunks.last!], sentinel: "cycle-last")
        let journal = try JournalClient(endpoint: daemon.journal).fetchAll()
        let n = journal.bodies.count
        _ = live.stdout.wait(timeout: 30) { text in
            Set(text.split(separator: "\n").compactMap { jsonObject(String($0)).flatMap(D.sequence) }).contains(n)
        }
        #expect(daemon.stop() == 0, "the last daemon did not stop cleanly: \(daemon.child.stderr.text)")
        let windows = mayMiss.map { $0.count }.reduce(0, +)
        print("fault: 7 SIGKILL/restart cycles, \(n) alerts journaled, \(republishing) restarts republished alerts, "
            + "live consumer received \(Set(Self.sequences(live)).count) distinct alerts (\(windows) alerts lay in the windows a kill could take from the live stream)")
        try #require(n > 0)
        // The premise: alerts committed but not yet published when the daemon was killed reach the consumer from the
        // next daemon. The store records them published with the commit after their publication, so a kill while
        // alerts flow leaves some unpublished (every cycle of the runs seen here); none in 7 cycles would mean the
        // path was not exercised at all.
        try #require(republishing > 0, "no restart had alerts to republish: the test did not exercise republishing")
        D.checkContiguous(journal.bodies, "journal")
        let inFlight = Self.checkLiveHasEveryAlert(live, journal: journal.bodies, "7 cycles", mayMiss: mayMiss)
        if inFlight > 0 { print("fault: 7 cycles: \(inFlight) alerts in flight at a SIGKILL never reached the live consumer (allowed)") }
    }

    // MARK: - A journal client that never reads

    struct FloodRun {
        var seconds: Double
        var peakKB: Int
        var log: String
        /// The journal as a well-behaved client fetched it while the flooder was still connected.
        var journal: [NSDictionary]
    }

    /// One daemon: part 1 of the stream, then (with `flood`) a client pipelines 200 `fetch 0 10000` and reads none,
    /// then part 2 is timed through its sentinel.
    static func floodRun(flood: Bool) throws -> FloodRun {
        let dir = try TemporaryDirectory()
        let parts = try D.generatedChunks(dir, parts: 2)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, [parts[0]], sentinel: "part-1")
        let context = try ZMQContext()
        defer { context.close() }
        var flooder: ZMQSocket? = nil
        defer { flooder?.close() }
        if flood {
            let s = try context.socket(.dealer, lingerMilliseconds: 0)
            // It reads nothing and queues almost nothing itself: the replies back up into the daemon.
            try s.setReceiveHighWaterMark(1)
            try s.setSendHighWaterMark(0)
            try s.connect(daemon.journal)
            for _ in 0..<200 { _ = try s.send(strings: ["fetch", "0", "10000"]) }
            flooder = s
        }
        let start = Date()
        try D.replayThroughSentinel(daemon, [parts[1]], sentinel: "part-2")
        let seconds = Date().timeIntervalSince(start)
        // A well-behaved client is still answered, in full, while the other one floods.
        let journal = try JournalClient(endpoint: daemon.journal).fetchAll().bodies
        let peak = peakRSSKilobytes(daemon.child.process.processIdentifier) ?? -1
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        return FloodRun(seconds: seconds, peakKB: peak, log: daemon.child.stderr.text, journal: journal)
    }

    @Test("a journal client that pipelines 200 fetch 0 10000 and never reads costs bounded memory and stalls nothing")
    func journalClientThatNeverReads() throws {
        let quiet = try Self.floodRun(flood: false)
        let flooded = try Self.floodRun(flood: true)
        print(String(format: "fault: journal flood: part 2 took %.2f s with the flood, %.2f s without (%.2fx); "
            + "peak RSS %d kB with, %d kB without; %d journal requests, %d replies dropped",
            flooded.seconds, quiet.seconds, flooded.seconds / max(quiet.seconds, 0.001), flooded.peakKB, quiet.peakKB,
            Self.stoppedField(flooded.log, "journalRequests") ?? -1, Self.stoppedField(flooded.log, "journalRepliesDropped") ?? -1))
        try #require(quiet.peakKB > 0 && flooded.peakKB > 0, "VmHWM not readable")
        #expect(flooded.peakKB <= 2 * quiet.peakKB + 128 * 1024, "peak RSS \(flooded.peakKB) kB vs \(quiet.peakKB) kB")
        // The flood changes nothing the daemon computes: every event processed, and the journal (fetched while the
        // flooder is still connected) is the run without the flood, alert for alert (detectedAt aside).
        try #require(quiet.journal.count > 0, "the stream raised no alert")
        let received = Self.stoppedField(quiet.log, "received"), processed = Self.stoppedField(quiet.log, "processed")
        #expect(received != nil && processed != nil && processed! > 0, "\(quiet.log.suffix(1000))")
        #expect(Self.stoppedField(flooded.log, "received") == received, "\(flooded.log.suffix(1000))")
        #expect(Self.stoppedField(flooded.log, "processed") == processed, "\(flooded.log.suffix(1000))")
        #expect(flooded.journal.count == quiet.journal.count)
        #expect(flooded.journal.map(D.withoutDetectedAt) == quiet.journal.map(D.withoutDetectedAt),
                "the journal with the flood differs from the one without")
        #expect((Self.stoppedField(flooded.log, "journalRequests") ?? 0) > Int(4))
        #expect((Self.stoppedField(flooded.log, "journalRepliesDropped") ?? 0) > 0,
                "no reply was dropped: the replies were queued without bound")
    }

    /// Replies queued to a client that does not read stay in the daemon's memory until it goes: bounded per client
    /// (`sendQueueReplies` replies), but 200 such clients held 490 MB (the fault tester, four full replies each).
    /// Replies are now sized for the clients asking (`JournalServer.ReplyBudget`). The clients here each send as
    /// many requests as fit their queue, read nothing until all have asked, then read everything queued for them:
    /// what they receive is what the daemon held for them.
    @Test("100 journal clients that send requests and do not read: the replies queued for them total a few budgets, not four full replies each; a client alone still gets full pages")
    func manyJournalClientsThatDoNotRead() throws {
        let dir = try TemporaryDirectory()
        let parts = try D.generatedChunks(dir, parts: 1)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, parts, sentinel: "part-1")
        // A full reply to `fetch 0`: journal.maxReplyAlerts (1000) alerts, within journal.maxReplyBytes.
        let journalBytes = try JournalClient(endpoint: daemon.journal, limit: 1000).fetch(after: 0).bodies.reduce(0) { $0 + $1.count }
        try #require(journalBytes > 200_000, "the journal's first page is \(journalBytes) bytes: too small to show sharing")
        let context = try ZMQContext()
        defer { context.close() }
        let n = 100, perClient = 4
        var clients: [ZMQSocket] = []
        defer { for c in clients { c.close() } }
        for _ in 0..<n {
            let s = try context.socket(.dealer, lingerMilliseconds: 0, framePoolCapacity: 1100)
            try s.setReceiveHighWaterMark(1)
            try s.connect(daemon.journal)
            for _ in 0..<perClient { _ = try s.send(strings: ["fetch", "0"]) }
            clients.append(s)
        }
        var queued = 0, replies = 0, smallest = Int.max
        for c in clients {
            for _ in 0..<perClient {
                guard let frames = try c.receiveCopy(timeoutMilliseconds: 30_000) else { break }
                replies += 1
                #expect(frames.count >= 3 && frames[0] == Array("alerts".utf8), "reply: \(frames.prefix(2))")
                let bytes = frames.dropFirst(2).reduce(0) { $0 + $1.count }
                queued += bytes
                smallest = min(smallest, bytes)
            }
        }
        #expect(replies == n * perClient, "\(replies) replies of \(n * perClient) requests")
        let full = n * perClient * journalBytes
        let budget = 16 << 20
        print("fault: \(n) journal clients not reading: \(queued) bytes of replies queued for them, full replies would "
            + "be \(full); smallest reply \(smallest) bytes")
        #expect(Double(queued) <= Double(budget) * (1 + log(Double(n))), "\(queued) bytes queued for \(n) clients")
        #expect(queued < full / 2)
        // Alone again (the others forgotten after 10 s: not waited for here), a client still pages through it all.
        let all = try JournalClient(endpoint: daemon.journal).fetchAll()
        D.checkContiguous(all.bodies, "journal")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text.suffix(1000))")
    }

    // MARK: - Read-only store

    @Test("a store file made read-only: exit 74 before READY=1, the store untouched; writable again, it resumes")
    func readOnlyStore() throws {
        if let reason = Self.mountUnavailable {
            print("fault: read-only store skipped: \(reason)")
            return
        }
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 2)
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, [chunks[0]], sentinel: "part-1")
        let before = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0)

        // The database file alone read-only (the directory stays writable, so the lock and SQLite's side files can
        // be made): only the daemon's write before READY=1 can tell.
        let file = daemon.stateDir + "/contactwatch.sqlite"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try #require(Self.command("/bin/mount", ["--bind", file, file]).status == 0)
        var mounted = true
        defer { if mounted { Self.command("/bin/umount", [file]) } }
        let ro = Self.command("/bin/mount", ["-o", "remount,bind,ro", file])
        try #require(ro.status == 0, "remount ro: \(ro.output)")
        let notifyPath = dir.file("notify-ro")
        let notify = try NotifySocket(path: notifyPath)
        let refused = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                                  "--journal", dir.ipc("journal"), "--state-dir", daemon.stateDir] + D.arguments,
                                environment: ["NOTIFY_SOCKET": notifyPath])
        #expect(refused.waitForExit(timeout: 30) == 74, "\(refused.stderr.text)")
        #expect(!notify.wait(for: "READY=1", timeout: 0.2), "READY=1 sent by a daemon that cannot write its store")
        #expect(refused.stderr.text.contains("state store"), "\(refused.stderr.text)")
        print("fault: read-only store file: \(refused.stderr.text.split(separator: "\n").last ?? "")")
        #expect(Self.command("/bin/umount", [file]).status == 0)
        mounted = false
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == bytes, "the refused daemon changed the store")

        // Writable again: it resumes where it stopped and the rest of the stream continues the journal.
        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, [chunks[1]], sentinel: "part-2")
        let after = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0)
        D.checkContiguous(after.bodies, "journal")
        #expect(after.bodies.count > before.bodies.count)
        #expect(Array(after.bodies.prefix(before.bodies.count)) == before.bodies)
    }

    // MARK: - Store locked by another process

    /// Part 1 through a daemon; then `hold` takes a lock on its store (returning how to let go) while part 2 is
    /// replayed: the daemon exits 75 saying `said`, publishing nothing of part 2; once the lock is let go a restart
    /// takes part 2 and the journal continues where it stopped. Returns the exit status and the journal's sizes.
    private func lockedStoreScenario(hold: (DaemonUnderTest) throws -> () -> Void,
                                     said: (String) -> Bool) throws -> (status: Int32?, before: Int, after: Int) {
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 2)
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, [chunks[0]], sentinel: "part-1")
        let before = try JournalClient(endpoint: daemon.journal).fetchAll()
        try #require(before.bodies.count > 0, "part 1 raised no alert")
        let live = try D.liveTail(daemon)
        defer { D.stop(live, output: true) }
        let release = try hold(daemon)

        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        let status = daemon.child.waitForExit(timeout: 120)
        let log = daemon.child.stderr.text
        #expect(status == 75, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(said(log), "\(log.suffix(2000))")
        // Nothing of part 2 was committed, so nothing of it was published.
        D.stop(live, output: true)
        #expect(live.stdout.text.isEmpty, "published without a commit: \(live.stdout.text.prefix(500))")
        D.stop(replay)

        // The other process lets go: the store opens intact, part 2 again, the journal continues where it stopped.
        release()
        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, [chunks[1]], sentinel: "part-2")
        let after = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        D.checkContiguous(after.bodies, "journal after the lock")
        #expect(after.bodies.count > before.bodies.count)
        #expect(Array(after.bodies.prefix(before.bodies.count)) == before.bodies)
        return (status, before.bodies.count, after.bodies.count)
    }

    @Test("another process holding the store's write lock past the 5 s busy timeout: exit 75, nothing published, nothing lost after it lets go")
    func storeLockedByAnotherProcess() throws {
        guard let shell = D.sqliteShell(skipping: "fault: store locked by another process", to: "hold the lock") else { return }
        var holder: Child? = nil
        defer { holder.map { D.stop($0) } }
        let r = try lockedStoreScenario(hold: { daemon in
            // An sqlite3 shell takes the write lock (WAL: the daemon can still read) and holds it until its stdin closes.
            let (shellHolding, input) = try D.holdWriteLock(daemon, shell: shell)
            holder = shellHolding
            return {
                try? input.fileHandleForWriting.close()
                #expect(shellHolding.waitForProcessExit(timeout: 30) != nil, "sqlite3 did not end with its input")
            }
        }, said: { $0.contains("locked by another process") })
        print("fault: store locked by another process: exit \(String(describing: r.status)); \(r.after) alerts after "
            + "the restart (\(r.before) before the lock)")
    }

    /// SQLite's WAL read locks (bytes 123–127 of the `-shm`: its read marks) held by another process, here the test's
    /// own (a fcntl lock: per process, so the daemon's are in conflict with it). A reader that cannot take one does not
    /// go through the busy handler: SQLite retries for ~10 s and fails with SQLITE_PROTOCOL, which was "I/O error …
    /// Check the disk", exit 74, never restarted by the unit (a runtime reviewer, session 50). Now exit 75 like any
    /// other lock another process holds, and nothing of the batch is published.
    @Test("another process holding the store's WAL read locks: exit 75 as a lock, with the fuser hint, not an I/O error; nothing published, nothing lost after it lets go")
    func walReadLocksHeldByAnotherProcess() throws {
        var fd: Int32 = -1
        var lock = flock()
        func release() {
            guard fd >= 0 else { return }
            lock.l_type = Int16(F_UNLCK)
            _ = fcntl(fd, F_SETLK, &lock)
            close(fd)
            fd = -1
        }
        defer { release() }
        _ = try lockedStoreScenario(hold: { daemon in
            let shm = daemon.stateDir + "/contactwatch.sqlite-shm"
            fd = open(shm, O_RDWR)
            try #require(fd >= 0, "cannot open \(shm): \(String(cString: strerror(errno)))")
            lock.l_type = Int16(F_WRLCK)
            lock.l_whence = Int16(SEEK_SET)
            lock.l_start = 123
            lock.l_len = 5
            // The daemon takes a read mark for each transaction, briefly: try until this process has them all.
            var held = false
            let deadline = Date().addingTimeInterval(30)
            while !held && Date() < deadline {
                held = fcntl(fd, F_SETLK, &lock) == 0
                if !held { _ = poll(nil, 0, 10) }
            }
            try #require(held, "the read locks were never free for 30 s")
            return release
        }, said: { $0.contains("locked by another process") && $0.contains("fuser -v") && !$0.contains("Check the disk") })
    }

    // MARK: - Disk full

    @Test("disk full: exit 75, store intact; after space is freed the restart loses nothing")
    func diskFull() throws {
        if let reason = Self.mountUnavailable {
            print("fault: disk full skipped: \(reason)")
            return
        }
        let uninterrupted = try Self.uninterruptedJournal()

        // The same stream into a state directory on a small tmpfs.
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 1)
        let state = dir.file("state")
        try Self.mountTmpfs(at: state, options: "size=256k")
        defer { Self.unmount(state) }
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let live = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "alert."])
        defer { D.stop(live, output: true) }
        try #require(D.awaitJoined(daemon, "alert.", atLeast: 1))
        let replay = try Child("contactwatch", ["replay"] + chunks + ["--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        let status = daemon.child.waitForExit(timeout: 120)
        #expect(status == 75, "exit \(String(describing: status)): \(daemon.child.stderr.text.suffix(2000))")
        #expect(daemon.child.stderr.text.contains("full") && daemon.child.stderr.text.contains("the failed batch was not committed"),
                "\(daemon.child.stderr.text.suffix(2000))")
        D.stop(replay)

        // A start on the disk still full (every block taken): exit 75 before any batch, and not told of "the failed
        // batch" (a crash tester, session 47).
        let filler = state + "/filler"
        _ = Self.command("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=4096"])
        // The store's own files may still have room (a -wal is written again from its start, within its size): then
        // the start on the existing store succeeds, rightly, and stops on SIGTERM — seen in 2 of 5 runs on session
        // 54's machine. A start that has to make a file (a state directory of its own on the same full disk) cannot.
        let blocked = try Child("contactwatchd", ["--input", dir.ipc("in-full"), "--input-bind", "--output", dir.ipc("out-full"),
                                                  "--state-dir", state])
        let deadline = Date().addingTimeInterval(60)
        var exited = blocked.waitForExit(timeout: 0.5)
        while exited == nil && !blocked.stderr.text.contains("] ready") && deadline.timeIntervalSinceNow > 0 {
            exited = blocked.waitForExit(timeout: 0.5)
        }
        if exited == nil && blocked.stderr.text.contains("] ready") {
            print("fault: disk full at start: the store's files had room, the start succeeded; stopping it")
            // 0, or 75 when the stop's own commit meets the full disk (said as such).
            let stopped = blocked.terminate()
            #expect(stopped == 0 || (stopped == 75 && blocked.stderr.text.contains("is full")), "\(blocked.stderr.text.suffix(2000))")
        } else {
            #expect(exited == 75, "\(blocked.stderr.text.suffix(2000))")
        }
        #expect(!blocked.stderr.text.contains("failed batch"), "\(blocked.stderr.text.suffix(2000))")
        let fresh = try Child("contactwatchd", ["--input", dir.ipc("in-full"), "--input-bind", "--output", dir.ipc("out-full"),
                                                "--state-dir", state + "/other"])
        #expect(fresh.waitForExit(timeout: 60) == 75, "\(fresh.stderr.text.suffix(2000))")
        #expect(fresh.stderr.text.contains("is full") && !fresh.stderr.text.contains("failed batch"),
                "\(fresh.stderr.text.suffix(2000))")
        for c in [blocked, fresh] where c.process.isRunning { c.signal(SIGKILL) }
        print("fault: disk full at start: \((blocked.stderr.lines + fresh.stderr.lines).last { $0.contains("full") } ?? String(fresh.stderr.text.suffix(300)))")
        try FileManager.default.removeItem(atPath: filler)
        try? FileManager.default.removeItem(atPath: state + "/other")

        // Space freed: the store opens (intact), the publisher replays, nothing is lost.
        try #require(Self.command("/bin/mount", ["-o", "remount,size=256m", state]).status == 0)
        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let count = try Self.expectRecovery(daemon, replaying: chunks, live: live, equalTo: uninterrupted, "disk full")
        print("fault: disk full: exit \(String(describing: status)), \(count) alerts after the restart")
    }

    // MARK: - The store's file system turning read-only mid-run

    @Test("the store's file system turning read-only mid-run (EROFS, as after a disk error): exit 74 saying so, nothing published past the last commit; writable again, nothing lost")
    func storeTurnsReadOnlyMidRun() throws {
        let dir = try TemporaryDirectory()
        guard let shim = try Self.buildReadOnlyShim(dir) else { return }
        let uninterrupted = try Self.uninterruptedJournal()

        let chunks = try D.generatedChunks(dir, parts: 2)
        let trigger = dir.file("read-only-now")
        var environment = D.environment
        environment["LD_PRELOAD"] = shim
        environment["CW_FAULT_READ_ONLY_AFTER"] = trigger
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        let live = try D.liveTail(daemon)
        defer { D.stop(live, output: true) }
        try D.replayThroughSentinel(daemon, [chunks[0]], sentinel: "part-1")
        let before = try JournalClient(endpoint: daemon.journal).fetchAll()
        try #require(!before.bodies.isEmpty, "the first half raised no alert")

        // From now on every write of the store fails with EROFS, as on a file system remounted read-only.
        try #require(FileManager.default.createFile(atPath: trigger, contents: Data()))
        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        let status = daemon.child.waitForExit(timeout: 120)
        let log = daemon.child.stderr.text
        #expect(status == 74, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(log.contains("is read-only") && log.contains("Read-only file system"), "\(log.suffix(2000))")
        D.stop(replay)
        try FileManager.default.removeItem(atPath: trigger)

        // Writable again: the store opens and holds at least the first half's journal; nothing was published live
        // that it does not hold (the failed batch's alerts never left).
        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let committed = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(Array(committed.bodies.prefix(before.bodies.count)) == before.bodies)
        let publishedLive = Self.sequences(live).max() ?? 0
        #expect(publishedLive <= committed.bodies.count,
                "alertSequence \(publishedLive) was published, the store held \(committed.bodies.count)")
        let count = try Self.expectRecovery(daemon, replaying: chunks, live: live, equalTo: uninterrupted, "read-only store")
        print("fault: store read-only mid-run: exit \(String(describing: status)) (\(log.split(separator: "\n").last ?? "")); "
            + "\(publishedLive) alerts published live before it, \(committed.bodies.count) committed; \(count) after the restart")
    }

    /// A daemon in `dir` with a live tail of its alerts, the first of the stream's two halves replayed through it;
    /// the halves, the daemon, the tail (the caller stops it) and the journal after the first half (not empty).
    static func firstHalfWithLiveTail(_ dir: TemporaryDirectory, extraArguments: [String] = []) throws
        -> (chunks: [String], daemon: DaemonUnderTest, live: Child, before: (latest: Int, bodies: [NSDictionary])) {
        let chunks = try D.generatedChunks(dir, parts: 2)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments + extraArguments, environment: D.environment)
        let live = try D.liveTail(daemon)
        do {
            try D.replayThroughSentinel(daemon, [chunks[0]], sentinel: "part-1")
            let before = try JournalClient(endpoint: daemon.journal).fetchAll()
            try #require(!before.bodies.isEmpty, "the first half raised no alert")
            return (chunks, daemon, live, before)
        } catch {
            D.stop(live, output: true)
            throw error
        }
    }

    /// Waits (bounded) until every frame in the store's WAL has been copied back into the database file, read from the
    /// WAL index in its `-shm`: `mxFrame` (the header's, offset 16) equal to `nBackfill` (the checkpoint information's,
    /// offset 96) and to `nBackfillAttempted` (offset 128), which a checkpoint sets before it writes. Native byte order.
    static func waitUntilCheckpointed(_ store: String) throws {
        let deadline = Date().addingTimeInterval(30)
        var last: (UInt32, UInt32, UInt32) = (0, 0, 0)
        while Date() < deadline {
            if let shm = FileManager.default.contents(atPath: store + "-shm"), shm.count >= 132 {
                func word(_ offset: Int) -> UInt32 { shm.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) } }
                last = (word(16), word(96), word(128))
                if last.0 == last.1 && last.1 == last.2 { return }
            }
            usleep(10_000)
        }
        Issue.record("the WAL was not checkpointed within 30 s (mxFrame, nBackfill, nBackfillAttempted = \(last))")
    }

    @Test("the state directory deleted under a running daemon: exit 74 saying so at its next commit, nothing published past the last commit, and the metrics endpoint shut down without errors of its own")
    func stateDirectoryDeletedMidRun() throws {
        let dir = try TemporaryDirectory()
        let (chunks, daemon, live, before) = try Self.firstHalfWithLiveTail(dir, extraArguments: ["--metrics", "127.0.0.1:0"])
        defer { D.stop(live, output: true) }

        // SQLite would go on committing into the unlinked file; the next start would find an empty directory.
        try FileManager.default.removeItem(atPath: daemon.stateDir)
        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        let status = daemon.child.waitForExit(timeout: 120)
        let log = daemon.child.stderr.text
        #expect(status == 74, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(log.contains("was deleted or replaced while the daemon was running") && log.contains(daemon.stateDir),
                "\(log.suffix(2000))")
        // Cancelled rather than shut down, Hummingbird said "Server shutdown error: Already closed" at error level.
        let serverErrors = log.split(separator: "\n").filter { $0.contains("[HummingbirdCore]") && $0.contains(" error ") }
        #expect(log.contains("metrics served") && serverErrors.isEmpty, "\(serverErrors)")
        D.stop(replay)
        let publishedLive = Self.sequences(live).max() ?? 0
        #expect(publishedLive <= before.bodies.count,
                "alertSequence \(publishedLive) was published after the store's last commit (\(before.bodies.count))")
        print("fault: state directory deleted mid-run: exit \(String(describing: status)); \(publishedLive) alerts "
            + "published live, \(before.bodies.count) committed before the deletion")
    }

    /// The same file truncated in place (`truncate`, `copytruncate`) kept its name and inode: the daemon went on
    /// committing into the WAL and publishing, stopped with exit 0, and the next start refused the store as corrupt —
    /// every alert since lost without a word (a fault tester, session 35).
    @Test("the store truncated in place under a running daemon: exit 74 saying it shrank, at its next commit; nothing published past the last commit", arguments: [0, 4096])
    func storeTruncatedMidRun(size: Int) throws {
        let dir = try TemporaryDirectory()
        let (chunks, daemon, live, before) = try Self.firstHalfWithLiveTail(dir)
        defer { D.stop(live, output: true) }
        let store = daemon.stateDir + "/contactwatch.sqlite"
        // Cut once no checkpoint is under way: one that already passed its check when the file is cut writes the WAL's
        // pages back and can grow the file past its size before the cut, which no check after it can tell from a file
        // that was never cut (README *Known limitations*). It failed now and then under load that way (session 36).
        try Self.waitUntilCheckpointed(store)
        try #require(truncate(store, off_t(size)) == 0, "truncate: errno \(errno)")
        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        let status = daemon.child.waitForExit(timeout: 120)
        let log = daemon.child.stderr.text
        #expect(status == 74, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(log.contains("the state store at \(store) shrank from ") && log.contains(" to \(size) bytes while the daemon was running"),
                "\(log.suffix(2000))")
        D.stop(replay)
        let publishedLive = Self.sequences(live).max() ?? 0
        #expect(publishedLive <= before.bodies.count,
                "alertSequence \(publishedLive) was published after the store's last commit (\(before.bodies.count))")
    }

    /// SQLite keeps the store's `-wal` open: deleted under the daemon (a clean-up job, an operator taking it for
    /// litter), commits went on into a file with no name, and a kill -9 then lost them — alerts published live were
    /// missing after the restart and their alertSequences were given again to other alerts.
    @Test("the store's -wal deleted under a running daemon: exit 75 at its next commit, everything committed saved into the database file first, a restart resumes with nothing lost")
    func walDeletedMidRun() throws {
        let dir = try TemporaryDirectory()
        let uninterrupted = try Self.uninterruptedJournal()
        var (chunks, daemon, live, before) = try Self.firstHalfWithLiveTail(dir)
        defer { D.stop(live, output: true) }

        try FileManager.default.removeItem(atPath: daemon.stateDir + "/contactwatch.sqlite-wal")
        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        var status = daemon.child.waitForExit(timeout: 60)
        // Still running (the deletion unseen): a crash now loses what went into the unlinked file.
        if status == nil {
            daemon.child.signal(SIGKILL)
            status = daemon.child.waitForExit(timeout: 30)
        }
        let log = daemon.child.stderr.text
        #expect(status == 75, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(log.contains("contactwatch.sqlite-wal was deleted or replaced while the daemon was running")
                    && log.contains("nothing is lost"), "\(log.suffix(2000))")
        // systemd was told it is stopping, and why (only SIGTERM's stop said STOPPING=1: a fault tester, session 35).
        #expect(daemon.notify.wait(for: "STATUS=", prefix: true, timeout: 5) { $0.hasPrefix("STATUS=stopping: ") && $0.contains("sqlite-wal") },
                "no STATUS=stopping line")
        D.stop(replay)
        let publishedLive = Self.sequences(live).max() ?? 0

        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let committed = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(Array(committed.bodies.prefix(before.bodies.count)) == before.bodies)
        #expect(publishedLive <= committed.bodies.count,
                "alertSequence \(publishedLive) was published live, the store held \(committed.bodies.count) after the restart")
        let count = try Self.expectRecovery(daemon, replaying: chunks, live: live, equalTo: uninterrupted, "-wal deleted")
        print("fault: -wal deleted mid-run: exit \(String(describing: status)); \(publishedLive) alerts published live, "
            + "\(committed.bodies.count) in the store after the restart; \(count) after replaying everything")
    }

    /// Where both -wal-deleted-under-a-reader tests start: a daemon with a live alert tail, another process holding a
    /// read transaction on its store from before the first third (whose commits therefore stay in the WAL: the
    /// checkpointer cannot copy past a reader), the first third replayed and the journal read. `stop()` kills the
    /// reader — killed, not ended: an sqlite3 closing as the last connection would checkpoint and delete the -wal by
    /// name — then the tail.
    final class UnderAReader {
        let daemon: DaemonUnderTest
        let live: Child
        let reader: Child
        let chunks: [String]
        let before: (latest: Int, bodies: [NSDictionary])

        init(dir: TemporaryDirectory, shell: String, extraArguments: [String] = []) throws {
            chunks = try D.generatedChunks(dir, parts: 3)
            daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments + extraArguments, environment: D.environment)
            live = try D.liveTail(daemon)
            reader = try D.holdReadTransaction(daemon, shell: shell).holder
            try D.replayThroughSentinel(daemon, [chunks[0]], sentinel: "part-1")
            before = try JournalClient(endpoint: daemon.journal).fetchAll()
            try #require(!before.bodies.isEmpty, "the first third raised no alert")
        }

        func stop() {
            D.stop(reader)
            D.stop(live, output: true)
        }
    }

    /// Another process reading the store (an sqlite3 shell in a transaction) when the `-wal` was deleted kept the
    /// save from copying past its snapshot: the daemon stopped with 74 after 5 s, and a restart once that process was
    /// gone had lost every alert published since the last checkpoint, giving their alertSequences again (fault tester,
    /// round 3). Now it saves a complete copy, says so and waits; killed then, its next start puts the copy in place.
    @Test("the store's -wal deleted while another process reads the store, then kill -9: the daemon said it waits and saved a complete copy, the restart puts the copy in place and nothing is lost")
    func walDeletedUnderAReader() throws {
        guard let shell = D.sqliteShell(skipping: "fault: -wal deleted under a reader", to: "hold a read transaction") else {
            return
        }
        let dir = try TemporaryDirectory()
        let uninterrupted = try Self.uninterruptedJournal()
        let held = try UnderAReader(dir: dir, shell: shell, extraArguments: ["--metrics", "127.0.0.1:0"])
        defer { held.stop() }
        var daemon = held.daemon
        let (chunks, live, before) = (held.chunks, held.live, held.before)
        let port = try MetricsTests.metricsPort(daemon)

        let receivedBefore = Exposition(try httpGet(port: port, path: "/metrics").body)["contactwatch_events_received_total"] ?? 0
        try FileManager.default.removeItem(atPath: daemon.stateDir + "/contactwatch.sqlite-wal")
        // The second third 30 times over: far more than a batch or two, far less than the input queue holds.
        let passes = 30
        let sent = passes * (try String(contentsOfFile: chunks[1], encoding: .utf8).split(separator: "\n").count)
        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1",
                                                "--loop", "\(passes)"])
        defer { D.stop(replay) }
        let saved = daemon.stateDir + "/contactwatch.sqlite.saved"
        let said = daemon.child.stderr.wait(timeout: 120) { $0.contains("a lock or a read transaction") }
        #expect(said && FileManager.default.fileExists(atPath: saved) && daemon.child.process.isRunning,
                "\(daemon.child.stderr.text.suffix(2000))")
        // Alive (the loop turns) but reading no input: /healthz says so in its body.
        let health = try httpGet(port: port, path: "/healthz")
        #expect(health.status == 200 && health.body.contains("no input is read"), "\(health)")
        // And it reads none: once everything was delivered into the daemon's input queue (replay ended) and the loop
        // has turned since (it took a new subscriber), what it received after the deletion is a batch or a few (the
        // one whose commit found the -wal gone, those read before the save started) — not the rest of the stream.
        #expect(replay.waitForExit(timeout: 120) == 0, "\(replay.stderr.text)")
        let joined = daemon.child.stderr.text.components(separatedBy: "subscriber joined").count - 1
        let prober = try Child("contactwatch", ["tail", "--endpoint", daemon.output, "--topic", "probe."])
        defer { D.stop(prober) }
        #expect(daemon.waitForSubscribers(joined + 1), "the loop did not take a new subscriber")
        let received = (Exposition(try httpGet(port: port, path: "/metrics").body)["contactwatch_events_received_total"] ?? 0)
            - receivedBefore
        // Not `> 0`: the writer's idle check may find the deletion before the first event arrives.
        #expect(received < Double(sent) / 2,
                "\(Int(received)) of \(sent) events sent after the deletion were read while the save waited")
        print("fault: -wal deleted under a reader: \(Int(received)) of \(sent) events sent after the deletion read")
        daemon.child.signal(SIGKILL)
        _ = daemon.child.waitForExit(timeout: 30)
        D.stop(replay)
        let publishedLive = Self.sequences(live).max() ?? 0

        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("replaced by the complete copy") }
                    && !FileManager.default.fileExists(atPath: saved), "\(daemon.child.stderr.text)")
        let committed = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(Array(committed.bodies.prefix(before.bodies.count)) == before.bodies,
                "alerts published before the deletion are missing or different after the restart")
        #expect(publishedLive <= committed.bodies.count,
                "alertSequence \(publishedLive) was published live, the store held \(committed.bodies.count) after the restart")
        let count = try Self.expectRecovery(daemon, replaying: chunks, live: live, equalTo: uninterrupted,
                                            "-wal deleted under a reader")
        print("fault: -wal deleted under a reader, then kill -9: \(publishedLive) alerts published live, "
            + "\(committed.bodies.count) in the store after the restart; \(count) after replaying everything")
    }

    /// The same deletion while no input comes: the deletion used to be found only at the next commit, and the stop
    /// closed the store without a save — exit 0, and once the reader was gone the restart had lost every alert
    /// published since its snapshot, giving their alertSequences again (fault tester, session 22: 365 of 644). The
    /// writer now checks the store's files after a second idle, and once at the stop.
    @Test("the store's -wal deleted under a reader while no input comes: found without a commit, a complete copy saved and said so; SIGTERM exits 75 and the restart puts the copy in place with every published alert")
    func walDeletedUnderAReaderWhileIdle() throws {
        guard let shell = D.sqliteShell(skipping: "fault: -wal deleted under a reader, idle", to: "hold a read transaction") else {
            return
        }
        let dir = try TemporaryDirectory()
        let held = try UnderAReader(dir: dir, shell: shell)
        defer { held.stop() }
        var daemon = held.daemon
        let (live, before) = (held.live, held.before)

        try FileManager.default.removeItem(atPath: daemon.stateDir + "/contactwatch.sqlite-wal")
        let saved = daemon.stateDir + "/contactwatch.sqlite.saved"
        let said = daemon.child.stderr.wait(timeout: 60) { $0.contains("a lock or a read transaction") }
        #expect(said && FileManager.default.fileExists(atPath: saved), "\(daemon.child.stderr.text.suffix(2000))")
        #expect(daemon.child.terminate() == 75, "\(daemon.child.stderr.text.suffix(2000))")
        let publishedLive = Self.sequences(live).max() ?? 0
        try #require(publishedLive > 0)

        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains("replaced by the complete copy") }
                    && !FileManager.default.fileExists(atPath: saved), "\(daemon.child.stderr.text)")
        let committed = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(committed.bodies == before.bodies && committed.bodies.count >= publishedLive,
                "alertSequence \(publishedLive) was published live; the store held \(committed.bodies.count) after the restart, \(before.bodies.count) before the deletion")
    }

    /// `top -H`, `ps -L` and `perf` show the kernel's thread names: each of the daemon's own threads must carry its
    /// own, or an operator reading a profile cannot tell them apart (the checkpoint thread showed as
    /// `oot.default-qos`, a name inherited from a Dispatch thread, until it named itself).
    @Test("the daemon's own threads carry their names in the kernel: cw-pipeline, cw-writer, cw-journal, cw-checkpoint and cw-log, one each")
    func threadNames() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let pid = daemon.child.process.processIdentifier
        let names = ["cw-pipeline", "cw-writer", "cw-journal", "cw-checkpoint", "cw-log"]
        // A thread names itself as it starts; ready as the daemon is, give a late one up to 10 s.
        let deadline = Date().addingTimeInterval(10)
        var counts: [Int] = []
        repeat {
            counts = names.map { Self.threads(of: pid, named: $0).count }
            if counts.allSatisfy({ $0 == 1 }) { break }
            usleep(2000)
        } while Date() < deadline
        #expect(counts == [1, 1, 1, 1, 1], "threads named \(names) in \(pid): \(counts)")
        #expect(daemon.stop() == 0)
    }

    /// The thread ids of `pid` named `name` (`/proc/PID/task/TID/comm`).
    static func threads(of pid: Int32, named name: String) -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.filter {
            (try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) == name
        }
    }

    /// Waits until the daemon's thread `tid` sleeps in SQLite's busy handler (a statement waiting for a lock another
    /// process holds): bounded, on what the kernel reports of that thread (`isSleeping`); fails the test otherwise.
    static func awaitWaitingForTheLock(_ daemon: DaemonUnderTest, _ tid: String) throws {
        let pid = daemon.child.process.processIdentifier
        let deadline = Date().addingTimeInterval(60)
        var waiting = false
        while !waiting && Date() < deadline && daemon.child.process.isRunning {
            waiting = isSleeping(pid, tid)
            if !waiting { usleep(2000) }
        }
        try #require(waiting, "thread \(tid) never waited for the lock: \(daemon.child.stderr.text.suffix(2000))")
    }

    /// Whether thread `tid` of `pid` is blocked in nanosleep / clock_nanosleep (x86_64: 35, 230), as SQLite's busy
    /// handler is between two attempts at a lock another connection holds (`/proc/PID/task/TID/syscall`, readable for
    /// a child of this process).
    static func isSleeping(_ pid: Int32, _ tid: String) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/syscall", encoding: .utf8),
              let number = text.split(separator: " ").first else { return false }
        return number == "35" || number == "230"
    }

    /// The path check of a commit must come after the commit. A batch whose commit waited for a lock (another process
    /// holding the store's write lock: a backup, an sqlite3 shell) while the state directory was deleted was written
    /// into the unlinked file, reported durable and published: the check before its transaction had already passed.
    @Test("the state directory deleted while a commit waits for the store's lock: exit 74, the batch committed into the unlinked file is not published")
    func stateDirectoryDeletedDuringCommit() throws {
        guard let shell = D.sqliteShell(skipping: "fault: state directory deleted during a commit", to: "hold the lock") else {
            return
        }
        #if arch(x86_64)
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 2)
        // One batch for the whole of part 2: it is handed to the writer 2 s after its first event.
        var environment = D.environment
        environment["CONTACTWATCH_STATE_COMMIT_INTERVAL_MILLIS"] = "2000"
        environment["CONTACTWATCH_STATE_COMMIT_MAX_EVENTS"] = "1000000"
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        let pid = daemon.child.process.processIdentifier
        let live = try D.liveTail(daemon)
        defer { D.stop(live, output: true) }
        let writer = try #require(Self.threads(of: pid, named: "cw-writer").first, "no cw-writer thread in \(pid)")

        // An sqlite3 shell takes the write lock and holds it until its stdin closes.
        let (holder, input) = try D.holdWriteLock(daemon, shell: shell)
        defer { D.stop(holder) }

        let replay = try Child("contactwatch", ["replay", chunks[1], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        try #require(replay.waitForProcessExit(timeout: 60) == 0, "replay failed: \(replay.stderr.text)")
        // The writer has the batch and waits for the lock in SQLite's busy handler (up to 5 s): past any check made
        // before the transaction.
        try Self.awaitWaitingForTheLock(daemon, writer)

        try FileManager.default.removeItem(atPath: daemon.stateDir)
        try input.fileHandleForWriting.close()  // the lock is released: the commit goes into the unlinked file
        #expect(holder.waitForProcessExit(timeout: 30) != nil, "sqlite3 did not end with its input")
        let status = daemon.child.terminate(timeout: 60)
        let log = daemon.child.stderr.text
        #expect(status == 74, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(log.contains("was deleted or replaced while the daemon was running"), "\(log.suffix(2000))")
        D.stop(live, output: true)
        #expect(live.stdout.text.isEmpty, "published without a commit in the store: \(live.stdout.text.prefix(500))")
        #else
        print("fault: state directory deleted during a commit skipped: the busy-wait probe reads x86_64 syscall numbers")
        #endif
    }

    /// A SIGTERM while a commit waited for another process's lock waited out the rest of the 5 s busy timeout, and a
    /// stop took 4.8–5.1 s with the stop's own work (a fault tester, session 28), where cli.md says within 5 seconds.
    /// From the SIGTERM every wait for a lock ends within `Pipeline.stopLockWaitSeconds` (3.5 s), the failure saying so.
    @Test("SIGTERM while a commit waits for another process's write lock: the wait ends for the stop (3.5 s), not at the 5 s busy timeout; exit 75 saying why, nothing of the batch published")
    func stopWhileACommitWaitsForTheLock() throws {
        guard let shell = D.sqliteShell(skipping: "fault: stop while a commit waits for the lock", to: "hold the lock") else {
            return
        }
        #if arch(x86_64)
        let dir = try TemporaryDirectory()
        let chunks = try D.generatedChunks(dir, parts: 1)
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let pid = daemon.child.process.processIdentifier
        let live = try D.liveTail(daemon)
        defer { D.stop(live, output: true) }
        let writer = try #require(Self.threads(of: pid, named: "cw-writer").first, "no cw-writer thread in \(pid)")
        let (holder, input) = try D.holdWriteLock(daemon, shell: shell)
        defer { D.stop(holder) }
        let replay = try Child("contactwatch", ["replay", chunks[0], "--endpoint", daemon.input, "--wait-subscribers", "1"])
        defer { D.stop(replay) }
        try Self.awaitWaitingForTheLock(daemon, writer)

        let signalled = Date()
        daemon.child.signal(SIGTERM)
        let status = daemon.child.waitForExit(timeout: 60)
        let seconds = Date().timeIntervalSince(signalled)
        let log = daemon.child.stderr.text
        #expect(status == 75, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(log.contains("locked by another process"), "\(log.suffix(2000))")
        #expect(log.contains("The daemon was stopping, and a stop takes at most 5 s"), "\(log.suffix(2000))")
        // The counts are written on a failure's stop too (they were not: an auditor, session 29), with the status.
        #expect(Self.stoppedField(log, "exitStatus") == 75, "\(log.suffix(2000))")
        #expect((Self.stoppedField(log, "received") ?? 0) > 0, "\(log.suffix(2000))")
        D.stop(live, output: true)
        #expect(live.stdout.text.isEmpty, "published without a commit: \(live.stdout.text.prefix(500))")
        try input.fileHandleForWriting.close()
        print("fault: stop while a commit waits for the lock: exit \(String(describing: status)) \(String(format: "%.2f", seconds)) s after SIGTERM")
        #else
        print("fault: stop while a commit waits for the lock skipped: the busy-wait probe reads x86_64 syscall numbers")
        #endif
    }

    // MARK: - Journal pruning while another process holds the store's write lock

    /// Journal retention takes the store's write lock. On the processing thread, a lock held by another process (a
    /// backup, an sqlite3 shell) stopped event processing for the busy timeout (5 s) at every prune: no input read,
    /// no subscription taken, no SIGTERM seen. On the writer thread only commits wait, which they must anyway.
    @Test("journal pruning waiting for another process's write lock waits on the writer thread: the processing loop takes a subscription meanwhile; the failed prune is logged, counted, and not fatal")
    func pruningWaitsOffTheProcessingThread() throws {
        guard let held = try Self.pruneWaitingForTheLock("pruning under a held lock") else { return }
        let (daemon, holder, input) = (held.daemon, held.holder, held.input)
        defer { D.stop(holder) }
        #expect(held.sleeper == held.writer, "the processing thread (\(held.pipeline)) waits for the store's lock in a prune")

        // While the prune waits, a consumer subscribes: the processing loop takes it before the prune gives up. A socket
        // of this process, not a `tail`: a tool's start on a loaded machine could outlast the prune's 5 s (a reviewer,
        // session 38).
        let context = try ZMQContext()
        defer { context.close() }
        let live = try context.socket(.sub, lingerMilliseconds: 0)
        defer { live.close() }
        try live.setReceiveHighWaterMark(0)
        try live.subscribe("alert.")
        try live.connect(daemon.output)
        try #require(D.awaitJoined(daemon, "alert.", atLeast: 1), "the consumer did not subscribe: \(daemon.child.stderr.text.suffix(2000))")
        let failed = "journal pruning failed"
        try #require(daemon.child.stderr.wait(timeout: 30) { $0.contains(failed) }, "the prune did not give up while the lock was held")
        let log = daemon.child.stderr.text
        let joinedAt = try #require(log.range(of: "subscriber joined"))
        let failedAt = try #require(log.range(of: failed))
        #expect(joinedAt.lowerBound < failedAt.lowerBound,
                "the subscription was taken only after the prune gave up: \(log.suffix(2000))")

        // The lock goes: the daemon commits and publishes as before, and counted the failed prune.
        try input.fileHandleForWriting.close()
        #expect(holder.waitForProcessExit(timeout: 30) != nil, "sqlite3 did not end with its input")
        try D.replayThroughSentinel(daemon, [Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path], sentinel: "after-lock")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text.suffix(2000))")
        #expect((Self.stoppedField(daemon.child.stderr.text, "journalPruneFailures") ?? 0) >= 1,
                "\(daemon.child.stderr.text.suffix(1000))")
        #expect(try live.receiveCopy(timeoutMilliseconds: 10_000) != nil, "no alert published after the lock was released")
    }

    /// A prune waiting for another process's lock used to hold up a SIGTERM for the rest of the busy timeout (up to
    /// 5 s): `CommitWriter.close` waited for the writer thread, which sat in SQLite's busy handler. The prune's wait now
    /// asks whether the daemon is stopping before each pause and gives up at once; nothing of it is written.
    @Test("SIGTERM while a journal prune waits for another process's write lock: the prune gives up for the stop, not at the busy timeout, and is not counted as a failure; the daemon then stops with exit 0")
    func stopDuringAPruneThatWaitsForTheLock() throws {
        guard let held = try Self.pruneWaitingForTheLock("stop during a waiting prune") else { return }
        let (daemon, holder, input) = (held.daemon, held.holder, held.input)
        defer { D.stop(holder) }
        try #require(held.sleeper == held.writer, "the prune waits on the processing thread (\(held.pipeline)), not the writer")

        daemon.child.signal(SIGTERM)
        // The lock is still held: the prune must end because of the stop, not because the busy timeout ran out.
        let gaveUp = "journal pruning stopped: the daemon is stopping"
        let failed = "journal pruning failed"
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains(gaveUp) || $0.contains(failed) })
        let log = daemon.child.stderr.text
        #expect(log.contains(gaveUp), "the prune did not give up for the stop: \(log.suffix(2000))")
        #expect(!log.contains(failed), "the prune waited out the busy timeout: \(log.suffix(2000))")

        // The stop's last write (what was published) needs the lock too: let go, and the daemon ends cleanly.
        try input.fileHandleForWriting.close()
        #expect(holder.waitForProcessExit(timeout: 30) != nil, "sqlite3 did not end with its input")
        let status = daemon.child.waitForExit(timeout: 30)
        #expect(status == 0, "exit \(String(describing: status)): \(daemon.child.stderr.text.suffix(2000))")
        #expect(Self.stoppedField(daemon.child.stderr.text, "journalPruneFailures") == 0,
                "\(daemon.child.stderr.text.suffix(1000))")
    }

    /// What the two tests above share: a daemon that prunes its journal every second, an sqlite3 shell holding the
    /// store's write lock, and the thread found sleeping in SQLite's busy handler — with no input nothing is being
    /// committed, so that is a prune waiting for the lock. Nil, after printing why, where the probe cannot run.
    struct PruneWaitingForTheLock {
        let daemon: DaemonUnderTest
        let holder: Child
        let input: Pipe
        let pipeline: String
        let writer: String
        let sleeper: String
    }

    static func pruneWaitingForTheLock(_ test: String) throws -> PruneWaitingForTheLock? {
        guard let shell = D.sqliteShell(skipping: "fault: \(test)", to: "hold the lock") else { return nil }
        #if arch(x86_64)
        let dir = try TemporaryDirectory()
        var environment = D.environment
        environment["CONTACTWATCH_STATE_JOURNAL_PRUNE_INTERVAL_SECONDS"] = "1"
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        let pid = daemon.child.process.processIdentifier
        let pipeline = try #require(threads(of: pid, named: "cw-pipeline").first, "no cw-pipeline thread in \(pid)")
        let writer = try #require(threads(of: pid, named: "cw-writer").first, "no cw-writer thread in \(pid)")
        let (holder, input) = try D.holdWriteLock(daemon, shell: shell)
        let deadline = Date().addingTimeInterval(60)
        var sleeper: String? = nil
        while sleeper == nil && Date() < deadline && daemon.child.process.isRunning {
            sleeper = [pipeline, writer].first { isSleeping(pid, $0) }
            if sleeper == nil { usleep(2000) }
        }
        guard let sleeper else {
            D.stop(holder)
            try #require(Bool(false), "no prune waited for the lock: \(daemon.child.stderr.text.suffix(2000))")
            return nil
        }
        return PruneWaitingForTheLock(daemon: daemon, holder: holder, input: input, pipeline: pipeline,
                                      writer: writer, sleeper: sleeper)
        #else
        print("fault: \(test) skipped: the busy-wait probe reads x86_64 syscall numbers")
        return nil
        #endif
    }

    // MARK: - The journal socket failing

    @Test("the journal socket failing on every poll: each failure counted, the lines rate-limited, and after 10 s the daemon stops (exit 70) saying the journal is unusable, having committed what it had")
    func journalSocketFailing() throws {
        let dir = try TemporaryDirectory()
        guard let shim = try Self.buildShim(dir, "poll-failure-shim", Self.pollFailureShimSource,
                                            test: "the journal socket failing") else { return }
        let trigger = dir.file("poll-fails-now")
        var environment = D.environment
        environment["LD_PRELOAD"] = shim
        environment["CW_FAULT_POLL_FAILS_AFTER"] = trigger
        environment["CW_FAULT_POLL_ERRNO"] = "\(ENOMEM)"
        environment["CONTACTWATCH_LOG_STATS_INTERVAL_SECONDS"] = "1"
        let example = Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path
        var daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: environment)
        try D.replayThroughSentinel(daemon, [example], sentinel: "before")
        let before = try JournalClient(endpoint: daemon.journal).fetchAll()
        try #require(!before.bodies.isEmpty)

        try #require(FileManager.default.createFile(atPath: trigger, contents: Data()))
        let status = daemon.child.waitForExit(timeout: 60)
        let log = daemon.child.stderr.text
        #expect(status == 70, "exit \(String(describing: status)) (the journal thread spun silently?): \(log.suffix(2000))")
        #expect(log.contains("the journal socket (\(daemon.journal)) is unusable") && log.contains("stopping so that a restart"),
                "\(log.suffix(2000))")
        let retried = log.split(separator: "\n").filter { $0.contains("the journal socket failed, retrying") }.count
        #expect(retried >= 1 && retried <= 20, "\(retried) lines for about 100 failures")
        let counted = log.split(separator: "\n").filter { $0.hasSuffix("counters") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("journalSocketErrors=") }.flatMap { Int($0.dropFirst("journalSocketErrors=".count)) }
        }.max() ?? 0
        #expect(counted > retried, "journalSocketErrors=\(counted) in the counters lines, \(retried) lines logged")

        if status == nil {
            daemon.child.signal(SIGKILL)
            _ = daemon.child.waitForProcessExit(timeout: 10)
        }
        // The store is intact; a restart without the fault serves the journal as before.
        try FileManager.default.removeItem(atPath: trigger)
        daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let after = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(daemon.stop() == 0)
        #expect(after.bodies == before.bodies)
        print("fault: journal socket failing: exit \(String(describing: status)), \(retried) lines logged, \(counted) failures counted")
    }

    // MARK: - Descriptor exhaustion

    /// Opens a plain Unix-domain connection to `path` (no ZeroMQ handshake: libzmq accepts it and holds one descriptor
    /// for it until its handshake times out); -1 when it could not.
    static func connectUnix(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = unixAddress(path)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if ok != 0 {
            close(fd)
            return -1
        }
        return fd
    }

    /// The descriptors a process has open (`/proc/PID/fd`).
    static func openDescriptors(_ pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    /// A daemon started under `prlimit --nofile=SOFT:HARD`, or nil, having said why, where util-linux's prlimit is
    /// missing.
    static func daemonUnderDescriptorLimit(_ nofile: String, dir: TemporaryDirectory, skipping what: String) throws
        -> DaemonUnderTest? {
        let prlimit = "/usr/bin/prlimit"
        guard FileManager.default.isExecutableFile(atPath: prlimit) else {
            print("fault: \(what) skipped: no \(prlimit) (util-linux)")
            return nil
        }
        return try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment,
                                   launcher: [prlimit, "--nofile=\(nofile)"])
    }

    @Test("a soft limit already at the hard one is logged as it is, without a raisedFrom")
    func descriptorLimitAlreadyAtHard() throws {
        let dir = try TemporaryDirectory()
        guard let daemon = try Self.daemonUnderDescriptorLimit("4096:4096", dir: dir, skipping: "descriptor limit line")
        else { return }
        #expect(daemon.child.stderr.wait(timeout: 10) { $0.contains("open files limit") && $0.contains("limit=4096") },
                "no open files line: \(daemon.child.stderr.text.suffix(1000))")
        let line = daemon.child.stderr.text.split(separator: "\n").first { $0.contains("open files limit") } ?? ""
        #expect(line.contains("hardLimit=4096") && !line.contains("raisedFrom"), "\(line)")
        #expect(daemon.stop() == 0)
    }

    /// Under a hard limit below `DescriptorLimit.startMinimum` the daemon failed at whichever open came first: libzmq
    /// aborted it (exit 134), swift-nio trapped (132), or it blamed the store (74) or a bind (69), by the limit (a
    /// process-environment hunter, session 53). It now refuses at once, exit 64, before it touches the state
    /// directory, naming the limit and what to raise.
    @Test("a hard open-files limit below 64 is refused at once with exit 64, naming the limit, before the state directory is touched",
          arguments: ["24:24", "40:40", "63:63"])
    func descriptorLimitTooLowIsRefused(nofile: String) throws {
        let prlimit = "/usr/bin/prlimit"
        guard FileManager.default.isExecutableFile(atPath: prlimit) else {
            print("fault: descriptor limit refusal skipped: no \(prlimit) (util-linux)")
            return
        }
        let dir = try TemporaryDirectory()
        let daemon = try Child(prlimit, ["--nofile=\(nofile)", "--", Executables.url("contactwatchd").path,
                                         "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                         "--journal", dir.ipc("journal"), "--metrics", "127.0.0.1:0",
                                         "--state-dir", dir.file("state")])
        let limit = nofile.split(separator: ":")[0]
        expectRefusedAtStart(daemon, saying: "the open-files limit is \(limit) (hard limit \(limit)), below the 64",
                             stateDirectory: dir.file("state"))
        #expect(daemon.stderr.text.contains("LimitNOFILE="), "\(daemon.stderr.text)")
    }

    /// libzmq 4.3.4 aborts the process when a connection arrives on an `ipc://` endpoint and no descriptor is left
    /// (`src/ipc_listener.cpp:325`). Started with a soft limit of 64, the daemon raises it to the hard limit, so 300
    /// connections are accepted and it goes on.
    @Test("300 connections to the daemon's ipc:// output under a soft limit of 64 descriptors: the daemon raised the limit to the hard one, said so, and goes on processing")
    func manyConnectionsUnderALowDescriptorLimit() throws {
        let dir = try TemporaryDirectory()
        guard let daemon = try Self.daemonUnderDescriptorLimit("64:4096", dir: dir, skipping: "descriptor exhaustion")
        else { return }
        let pid = daemon.child.process.processIdentifier
        #expect(daemon.child.stderr.wait(timeout: 10) { $0.contains("limit=4096") && $0.contains("raisedFrom=64") },
                "no open files line: \(daemon.child.stderr.text.suffix(1000))")
        var connections: [Int32] = []
        defer { for fd in connections { close(fd) } }
        for _ in 0..<300 {
            let fd = Self.connectUnix(dir.file("out"))
            if fd >= 0 { connections.append(fd) }
        }
        #expect(connections.count == 300)
        // libzmq accepts them on its I/O thread: bounded wait until the daemon holds them all.
        let deadline = Date().addingTimeInterval(30)
        while Self.openDescriptors(pid) < 300 && Date() < deadline && daemon.child.process.isRunning { usleep(10_000) }
        #expect(Self.openDescriptors(pid) >= 300, "the daemon holds \(Self.openDescriptors(pid)) descriptors")
        try #require(daemon.child.process.isRunning, "the daemon died: \(daemon.child.stderr.text.suffix(2000))")
        let example = Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path
        try D.replayThroughSentinel(daemon, [example], sentinel: "after-connections")
        let journal = try JournalClient(endpoint: daemon.journal).fetchAll()
        #expect(!journal.bodies.isEmpty, "example 01 raised nothing")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text.suffix(2000))")
        print("fault: 300 connections under a soft limit of 64: \(journal.bodies.count) alerts afterwards")
    }

    /// A plain TCP connection to 127.0.0.1:`port` (no ZeroMQ handshake); -1 when it could not be made.
    static func connectTCP(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok != 0 {
            close(fd)
            return -1
        }
        return fd
    }

    /// Past the hard limit libzmq 4.3.4 cannot accept a connection: on a `tcp://` endpoint it retries without pause
    /// (`src/tcp_listener.cpp`) and tells only a socket monitor (`ZMQ_EVENT_ACCEPT_FAILED`). The daemon reads that
    /// event on every bound socket (its own monitor on the output and the journal without CURVE, the input's, the
    /// ZAP handler's with CURVE): each failure counted, the lines rate-limited.
    @Test("80 TCP connections to the output under a hard limit of 64 descriptors: the failed accepts are logged at warning (rate-limited) and counted, the daemon stays up, and once the peers go it stops with exit 0")
    func acceptFailuresAreLoggedAndCounted() throws {
        try Self.acceptFailures(on: "output", curve: false)
    }

    /// The journal's ROUTER is read by the journal thread, which reads its monitor too (without CURVE); a bound input's
    /// monitor is read by the processing thread (`InputSupervisor`), with CURVE or without.
    @Test("80 TCP connections to the journal, then to a bound tcp:// input, under a hard limit of 64 descriptors: the failed accepts are logged at warning and counted, the daemon stays up and stops with exit 0",
          arguments: ["journal", "input"])
    func journalAndInputAcceptFailuresAreLoggedAndCounted(socket: String) throws {
        try Self.acceptFailures(on: socket, curve: false)
    }

    /// With CURVE the output's and the journal's one monitor belongs to the ZAP handler (`watchHandshakes`), whose
    /// thread reports the failed accepts; the input's stays the processing thread's.
    @Test("80 TCP connections to a CURVE output, journal or bound input under a hard limit of 64 descriptors: the failed accepts are logged and counted, the daemon stays up and stops with exit 0",
          arguments: ["output", "journal", "input"])
    func curveAcceptFailuresAreLoggedAndCounted(socket: String) throws {
        try Self.acceptFailures(on: socket, curve: true)
    }

    /// The daemon under `prlimit --nofile=64:64` with `socket` (output, journal or the bound input) on
    /// `tcp://127.0.0.1` (CURVE on every bound socket when `curve`); 80 plain TCP connections to it, none of them
    /// completing a handshake.
    static func acceptFailures(on socket: String, curve: Bool) throws {
        let prlimit = "/usr/bin/prlimit"
        guard FileManager.default.isExecutableFile(atPath: prlimit) else {
            print("fault: failed accepts skipped: no \(prlimit) (util-linux)")
            return
        }
        let dir = try TemporaryDirectory()
        let port = try freeLoopbackPort()
        let security = curve ? try Deployment(dir: dir, pyzmq: false).daemonArguments : []
        let endpoint = "tcp://127.0.0.1:\(port)"
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments + security + (socket == "input" ? [] : ["--\(socket)", endpoint]),
                                         environment: D.environment, launcher: [prlimit, "--nofile=64:64"],
                                         input: socket == "input" ? endpoint : nil)
        if curve {
            #expect(daemon.child.stderr.wait(timeout: 10) { $0.contains("CURVE on") }, "CURVE is not on: \(daemon.child.stderr.text.suffix(1000))")
        }
        let pid = daemon.child.process.processIdentifier
        var connections: [Int32] = []
        defer { for fd in connections { close(fd) } }
        // The kernel completes them all (listen backlog 100); the daemon can accept only as many as it has descriptors.
        for _ in 0..<80 {
            let fd = Self.connectTCP(port)
            if fd >= 0 { connections.append(fd) }
        }
        #expect(connections.count == 80)
        let line = "cannot accept a connection on the \(socket) socket: Too many open files"
        #expect(daemon.child.stderr.wait(timeout: 30) { $0.contains(line) },
                "no failed accept logged: \(daemon.child.stderr.text.suffix(2000)); \(Self.openDescriptors(pid)) descriptors")
        try #require(daemon.child.process.isRunning, "the daemon died: \(daemon.child.stderr.text.suffix(2000))")
        for fd in connections { close(fd) }
        connections = []
        let status = daemon.stop()
        let log = daemon.child.stderr.text
        #expect(status == 0, "exit \(String(describing: status)): \(log.suffix(2000))")
        let lines = log.components(separatedBy: line).count - 1
        let failures = Self.stoppedField(log, "acceptFailures") ?? 0
        #expect(failures >= lines && failures > 0, "acceptFailures=\(failures) for \(lines) lines: \(log.suffix(1000))")
        print("fault: 80 TCP connections to the \(curve ? "CURVE " : "")\(socket) under a hard limit of 64: "
            + "\(failures) failed accepts counted, \(lines) lines logged")
    }

    // MARK: - A supervisor that stops reading its notification socket

    /// Sends datagrams to the Unix datagram socket at `path` without blocking until its queue is full; how many.
    static func fillDatagramQueue(_ path: String) -> Int {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var addr = unixAddress(path)
        let datagram = Array("X-TEST=filler".utf8)
        var sent = 0
        while sent < 10_000 {
            let n = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, datagram, datagram.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if n < 0 { break }
            sent += 1
        }
        return sent
    }

    /// `sd_notify` blocks while the notification socket's queue is full. The SIGTERM handler sent STOPPING=1 before
    /// it asked the loop to stop, so with a supervisor that had stopped reading (the test harness reads only up to
    /// READY=1; the heartbeat's STATUS= every 5 s fills the queue of 10 after 50 s, which LargeStreamTests reached
    /// under ThreadSanitizer) the loop never heard of the SIGTERM and ran on until it was killed.
    @Test("SIGTERM while the notification socket's queue is full (a supervisor that stopped reading): the daemon still stops and exits 0")
    func stopWithAFullNotificationSocket() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(daemon, [Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path],
                                    sentinel: "before-full-queue")
        let filled = Self.fillDatagramQueue(daemon.notify.path)
        #expect(filled > 0 && filled < 10_000, "\(filled) datagrams queued")
        let status = daemon.stop()
        let log = daemon.child.stderr.text
        #expect(status == 0, "exit \(String(describing: status)): \(log.suffix(2000))")
        #expect(Self.stoppedField(log, "processed") ?? 0 > 0, "no stop summary: \(log.suffix(1000))")
    }

    /// A bound ipc:// endpoint's socket file deleted (or replaced) under the daemon: no new connection can reach it,
    /// and nothing said so (a fault tester, session 28).
    @Test("the output's and the journal's socket files deleted under the running daemon: a warning names each endpoint")
    func socketFilesDeleted() throws {
        let dir = try TemporaryDirectory()
        let daemon = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        let output = String(daemon.output.dropFirst("ipc://".count)), journal = String(daemon.journal.dropFirst("ipc://".count))
        try #require(FileManager.default.fileExists(atPath: output) && FileManager.default.fileExists(atPath: journal))
        try FileManager.default.removeItem(atPath: output)
        try FileManager.default.removeItem(atPath: journal)
        let said = daemon.child.stderr.wait(timeout: 30) { log in
            log.contains("the output socket's file was deleted: no new connection can reach \(daemon.output)")
                && log.contains("the journal socket's file was deleted: no new connection can reach \(daemon.journal)")
        }
        #expect(said, "\(daemon.child.stderr.text)")
        #expect(daemon.stop() == 0, "\(daemon.child.stderr.text)")
        #expect(daemon.child.stderr.text.components(separatedBy: "socket's file was deleted").count - 1 == 2,
                "said once each: \(daemon.child.stderr.text)")
    }

    /// Makes `dir`'s state directory a store holding example 01's alerts marked unpublished, as if the daemon had been
    /// killed between their commit and the record that they were published; false (skipped, with the reason printed)
    /// without the sqlite3 shell.
    static func storeWithUnpublishedAlerts(_ dir: TemporaryDirectory, skipping what: String) throws -> Bool {
        guard let shell = D.sqliteShell(skipping: what, to: "mark alerts unpublished") else { return false }
        let first = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(first, [Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path],
                                    sentinel: "before-restart")
        #expect(first.stop() == 0, "\(first.child.stderr.text)")
        let marked = Self.command(shell, [dir.file("state") + "/contactwatch.sqlite",
                                          "UPDATE meta SET value = 0 WHERE key = 'publishedThrough';"])
        try #require(marked.status == 0, "sqlite3: \(marked.output)")
        return true
    }

    /// One damaged case key (the last case's index made 60,000,000; `quick_check` passes it) made the start reserve
    /// room for 60 million cases (5.3 GB) before its loop said the index was out of sequence: under a memory limit it
    /// died allocating (exit 134), not a corrupt store's exit 74 (the store's hunter, session 45). Run under
    /// `ulimit -v` 3 GB, which the daemon's start stays far below.
    @Test("a damaged case index stops the start as a corrupt store (exit 74) under a 3 GB address-space limit, not an allocation of gigabytes")
    func damagedCaseIndexUnderAMemoryLimit() throws {
        let dir = try TemporaryDirectory()
        guard let shell = D.sqliteShell(skipping: "fault: a damaged case index", to: "damage a case key") else { return }
        let first = try DaemonUnderTest(dir: dir, extraArguments: D.arguments, environment: D.environment)
        try D.replayThroughSentinel(first, [Fixtures.directory.appendingPathComponent("01-warning-then-breach.ndjson").path],
                                    sentinel: "before-damage")
        #expect(first.stop() == 0, "\(first.child.stderr.text)")
        let store = dir.file("state") + "/contactwatch.sqlite"
        let damaged = Self.command(shell, [store, "UPDATE caseState SET caseIndex = 60000000 WHERE caseIndex = (SELECT max(caseIndex) FROM caseState);"])
        try #require(damaged.status == 0, "sqlite3: \(damaged.output)")
        try? FileManager.default.removeItem(atPath: dir.file("out"))
        let daemon = try Child("/bin/sh", ["-c", "ulimit -v 3000000; exec \"$0\" \"$@\"", Executables.url("contactwatchd").path,
                                           "--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                           "--state-dir", dir.file("state")] + D.arguments)
        defer { if daemon.process.isRunning { daemon.signal(SIGKILL); _ = daemon.waitForExit(timeout: 10) } }
        let status = daemon.waitForExit(timeout: 60)
        let log = daemon.stderr.text
        #expect(status == 74, "\(String(describing: status)): \(log.suffix(1500))")
        #expect(log.contains("case index 60000000 is out of sequence"), "\(log.suffix(1500))")
    }

    /// After a restart with alerts left unpublished, READY=1 is sent from inside the loop, once they went out. It was
    /// sent with the blocking `sd_notify`, after the heartbeat's pings (every 50 ms with a watchdog of 100 ms) had
    /// filled the queue of a supervisor that stopped reading: the loop hung there and never heard of the SIGTERM (a
    /// reviewer, session 28).
    /// A stop asked for while the start republishes (after the hand-over to the service group, before READY=1) ends it
    /// without READY=1 or a `ready` line. (systemd 252 showed `stopping`, then `ready`, for a stop 1.8 s into a start,
    /// session 38, and 4 ms after `stopping` in session 39: a stop that came as the loop reported ready is no longer
    /// followed by it.)
    @Test("while the start waits to republish it says so and extends systemd's start timeout past the grace; SIGTERM then: exit 0, STOPPING=1 sent before the exit, and neither READY=1 nor a ready line")
    func stopWhileRepublishing() throws {
        let dir = try TemporaryDirectory()
        guard try Self.storeWithUnpublishedAlerts(dir, skipping: "fault: a stop while republishing") else { return }
        var environment = D.environment
        environment["CONTACTWATCH_OUTPUT_REPUBLISH_GRACE_MILLIS"] = "60000"  // no consumer comes: republishing for 60 s
        let notify = try NotifySocket(path: dir.file("notify-stop"))
        environment["NOTIFY_SOCKET"] = dir.file("notify-stop")
        try? FileManager.default.removeItem(atPath: dir.file("out"))  // the first daemon's, so that a new one says bound
        let daemon = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                                 "--state-dir", dir.file("state")] + D.arguments, environment: environment)
        defer { if daemon.process.isRunning { daemon.signal(SIGKILL); _ = daemon.waitForExit(timeout: 10) } }
        try #require(daemon.stderr.wait(timeout: 60) { Self.loadedField($0, "unpublished") ?? 0 > 0 },
                     "no unpublished alerts loaded: \(daemon.stderr.text)")
        // The output bound (its socket file there): the loop is republishing, waiting for a consumer.
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: dir.file("out")) && Date() < deadline { usleep(10_000) }
        try #require(FileManager.default.fileExists(atPath: dir.file("out")), "the output was never bound: \(daemon.stderr.text)")
        // The wait is said, and systemd's start timeout (the unit's 60 s) extended past the grace: it used neither CPU
        // nor reads, so nothing extended it, and a grace above the timeout had the start killed and restarted for ever.
        #expect(notify.wait(for: "EXTEND_TIMEOUT_USEC=", prefix: true, timeout: 30) { $0 == "EXTEND_TIMEOUT_USEC=70000000" },
                "\(daemon.stderr.text.suffix(1500))")
        #expect(daemon.stderr.wait(timeout: 30) {
            $0.contains(" notice ") && $0.contains("waiting up to 60 s (output.republishGraceMillis) for a consumer to subscribe to alert topics")
        }, "\(daemon.stderr.text.suffix(1500))")
        daemon.signal(SIGTERM)
        let status = daemon.waitForExit(timeout: 30)
        let log = daemon.stderr.text
        #expect(status == 0, "\(String(describing: status)): \(log.suffix(1500))")
        // Sent before the exit.
        #expect(notify.wait(for: "STOPPING=1", timeout: 5), "\(log.suffix(1500))")
        #expect(!notify.wait(for: "READY=1", timeout: 0.5), "READY=1 after the stop: \(log.suffix(1500))")
        #expect(!log.contains("] ready"), "\(log.suffix(1500))")
        #expect(log.contains("] stopping"), "\(log.suffix(1500))")
    }

    @Test("SIGTERM after republishing, with the notification socket's queue full: READY=1 does not block the loop; exit 0")
    func readyAfterRepublishingWithAFullNotificationSocket() throws {
        let dir = try TemporaryDirectory()
        guard try Self.storeWithUnpublishedAlerts(dir, skipping: "fault: READY=1 after republishing") else { return }
        let notify = try NotifySocket(path: dir.file("notify-never-read"))  // never read
        var environment = D.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment["WATCHDOG_USEC"] = "100000"
        environment["CONTACTWATCH_OUTPUT_REPUBLISH_GRACE_MILLIS"] = "1500"  // no consumer: republished after 1.5 s
        let daemon = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                                 "--state-dir", dir.file("state")] + D.arguments, environment: environment)
        try #require(daemon.stderr.wait(timeout: 60) { Self.republishedCount($0) != nil },
                     "no republish notice: \(daemon.stderr.text)")
        #expect(Self.loadedField(daemon.stderr.text, "unpublished") ?? 0 > 0, "\(daemon.stderr.text)")
        // The `ready` line comes after READY=1 was handed over: a loop blocked on the full socket never writes it. Waited
        // for before the SIGTERM, since a stop that comes first is not followed by READY=1 and `ready`.
        #expect(daemon.stderr.wait(timeout: 30) { $0.contains("] ready") }, "\(daemon.stderr.text.suffix(1000))")
        let status = daemon.terminate(timeout: 20)
        let log = daemon.stderr.text
        #expect(status == 0, "exit \(String(describing: status)) (nil: still running 20 s after SIGTERM): \(log.suffix(2000))")
        #expect(Self.stoppedField(log, "processed") != nil, "no stop summary: \(log.suffix(1000))")
    }

    /// While the daemon reads no input (it republishes after a restart), a publisher that connects is still sent the
    /// input's subscription: libzmq sends it only once the input socket handles its commands, which nothing did while
    /// the input was left out of the poll — so the publisher's PUB dropped everything it sent until then (seconds: the
    /// republish grace).
    @Test("a publisher that connects while the daemon republishes after a restart is subscribed at once; what it sends then is processed after")
    func publisherConnectingWhileRepublishing() throws {
        let dir = try TemporaryDirectory()
        guard try Self.storeWithUnpublishedAlerts(dir, skipping: "fault: a publisher connecting while republishing") else { return }
        var environment = D.environment
        // No alert consumer comes: the daemon republishes for 15 s, reading no input (8 s left too little on a loaded
        // machine for a tool's start and the subscription: a reviewer, session 38).
        environment["CONTACTWATCH_OUTPUT_REPUBLISH_GRACE_MILLIS"] = "15000"
        let daemon = try Child("contactwatchd", ["--input", dir.ipc("in"), "--input-bind", "--output", dir.ipc("out"),
                                                 "--state-dir", dir.file("state")] + D.arguments, environment: environment)
        defer { _ = daemon.terminate(timeout: 20) }
        try #require(daemon.stderr.wait(timeout: 60) { Self.loadedField($0, "unpublished") ?? 0 > 0 },
                     "no unpublished alerts loaded: \(daemon.stderr.text)")
        let gaps = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--topic", "stream.gap", "--count", "1"])
        defer { DurabilityTests.stop(gaps) }
        let publisher = try TestPublisher(endpoint: dir.ipc("in"), curve: nil)
        #expect(try publisher.awaitSubscription(ms: 10_000), "no subscription within 10 s while republishing")
        #expect(Self.republishedCount(daemon.stderr.text) == nil, "republished already: the test did not run while republishing")
        // Sent now (a gap: feed-1's first number is 5), it waits in the daemon — not dropped by the PUB — and is
        // processed once the republish is over.
        try publisher.send(lines: [EngineLogFloodTests.event(sequence: 5, contact: 77_001)])
        #expect(gaps.waitForExit(timeout: 60) == 0, "no stream.gap notice: \(daemon.stderr.text.suffix(1500))")
        let status = daemon.terminate(timeout: 20)
        let log = daemon.stderr.text
        #expect(status == 0, "\(log.suffix(1500))")
        #expect(Self.stoppedField(log, "received") == 1, "\(log.suffix(1500))")
    }
}
