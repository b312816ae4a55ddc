import ContactWatchTestThreads
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// `contactwatch tail --journal` against a fake daemon (an XPUB for the alerts, a ROUTER for the journal, in this
/// process): what it does when the journal goes back (the daemon's store reset or restored from a backup) and when
/// the journal's replies never advance. Both used to be silent: the first printed nothing more, ever (every new alert
/// numbered at or below what it had printed was taken for a repeat); the second asked again for ever.
@Suite("tail --journal: a journal that goes back, a journal that never advances", .blocking)
struct TailJournalResetTests {
    /// An alert body as the daemon publishes it (only what tail reads: the sequence; the CRN tells histories apart).
    static func alert(_ sequence: Int, _ crn: String, id: String? = nil) -> [UInt8] {
        Array(("{\"eventType\":\"probation-case.supervision-alert.raised\",\"alertSequence\":\(sequence),"
            + (id.map { "\"alertId\":\"\($0)\"," } ?? "")
            + "\"rule\":\"no-privacy\",\"occurredAt\":\"2026-01-06T10:00:00Z\","
            + "\"subject\":{\"type\":\"CRN\",\"value\":\"\(crn)\"}}").utf8)
    }

    /// A journal on its own thread: answers `fetch AFTER LIMIT` from `history` (the bodies, alertSequence 1…n), or
    /// with `reply` when it is set (a fixed, misbehaving answer).
    final class FakeJournal: @unchecked Sendable {
        let history = Mutex<[[UInt8]]>([])
        let fixed = Mutex<[[UInt8]]?>(nil)
        let requests = Atomic<Int>(0)
        /// How many of the next requests to leave unanswered (a daemon killed with the request in flight).
        let unanswered = Atomic<Int>(0)
        private let stopping = Atomic<Bool>(false)
        private let done = DispatchSemaphore(value: 0)

        init(context: ZMQContext, endpoint: String) throws {
            let bound = DispatchSemaphore(value: 0)
            let failure = Mutex<(any Error)?>(nil)
            let thread = Thread { [self] in
                defer { done.signal() }
                let router: ZMQSocket
                do {
                    router = try context.socket(.router, lingerMilliseconds: 0)
                    try router.bind(endpoint)
                } catch {
                    failure.withLock { $0 = error }
                    bound.signal()
                    return
                }
                defer { router.close() }
                bound.signal()
                while !stopping.load(ordering: .acquiring) {
                    guard let frames = try? router.receiveCopy(timeoutMilliseconds: 50), frames.count >= 3 else { continue }
                    requests.add(1, ordering: .relaxed)
                    if unanswered.load(ordering: .relaxed) > 0 {
                        unanswered.subtract(1, ordering: .relaxed)
                        continue
                    }
                    let after = Int(String(decoding: frames[2], as: UTF8.self)) ?? 0
                    var reply: [[UInt8]] = [frames[0]]
                    if let fixed = fixed.withLock({ $0 }) {
                        reply += fixed
                    } else {
                        let all = history.withLock { $0 }
                        reply += [Array("alerts".utf8), Array(String(all.count).utf8)]
                        if after < all.count { reply += all[after...] }
                    }
                    _ = try? router.send(reply)
                }
            }
            thread.start()
            bound.wait()
            if let error = failure.withLock({ $0 }) { throw error }
        }

        func stop() {
            stopping.store(true, ordering: .releasing)
            done.wait()
        }

        /// Waits (at most `seconds`) until `count` requests in all have come; whether they have.
        func waitForRequests(_ count: Int, seconds: Double = 30) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while requests.load(ordering: .relaxed) < count && Date() < deadline { usleep(10_000) }
            return requests.load(ordering: .relaxed) >= count
        }
    }

    /// The fake daemon's two sockets in `dir`: the journal (`journal`) and the alerts' XPUB (`out`).
    final class FakeDaemon {
        let context: ZMQContext
        private(set) var journal: FakeJournal
        private let journalEndpoint: String
        private(set) var output: ZMQSocket
        /// Where the output is bound (`tcp`: on 127.0.0.1, a port the system chose).
        let outputEndpoint: String

        init(_ dir: TemporaryDirectory, tcp: Bool = false) throws {
            context = try ZMQContext()
            journalEndpoint = dir.ipc("journal")
            journal = try FakeJournal(context: context, endpoint: journalEndpoint)
            output = try context.socket(.xpub, lingerMilliseconds: 0)
            try output.bind(tcp ? "tcp://127.0.0.1:0" : dir.ipc("out"))
            outputEndpoint = tcp ? try output.lastEndpoint : dir.ipc("out")
        }

        /// The daemon away: its output closed, `meanwhile` run, then the output bound again (bounded: libzmq closes the
        /// old listener on its I/O thread, so the endpoint may be taken for a moment).
        func restartOutput(meanwhile: () throws -> Void) throws {
            output.close()
            try meanwhile()
            let fresh = try context.socket(.xpub, lingerMilliseconds: 0)
            output = fresh
            let deadline = Date().addingTimeInterval(10)
            while (try? fresh.bind(outputEndpoint)) == nil {
                try #require(Date() < deadline, "the output endpoint could not be bound again")
                usleep(10_000)
            }
        }

        /// The whole daemon restarted: both sockets closed, then bound again at once, the output first (as the daemon
        /// binds them), the journal with `history` (bounded, as `restartOutput`).
        func restart(history: [[UInt8]]) throws {
            journal.stop()
            try restartOutput {}
            let deadline = Date().addingTimeInterval(10)
            while true {
                do {
                    journal = try FakeJournal(context: context, endpoint: journalEndpoint)
                    break
                } catch {
                    try #require(Date() < deadline, "the journal endpoint could not be bound again: \(error)")
                    usleep(10_000)
                }
            }
            journal.history.withLock { $0 = history }
        }

        func close() {
            output.close()
            journal.stop()
            context.close()
        }
    }

    /// `contactwatch tail --journal --from-sequence 0` of the fake daemon in `dir` (its ipc:// output and journal).
    static func journalTail(_ dir: TemporaryDirectory, requestTimeout seconds: Int) throws -> Child {
        try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--journal", dir.ipc("journal"),
                                   "--from-sequence", "0", "--request-timeout", String(seconds)])
    }

    /// A `tail --journal --from-sequence 0` of `fake`, once it has subscribed and printed `history` (the journal's).
    static func tailOfFirstHistory(_ dir: TemporaryDirectory, _ fake: FakeDaemon, _ history: [[UInt8]]) throws -> Child {
        fake.journal.history.withLock { $0 = history }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--journal", dir.ipc("journal"),
                                              "--from-sequence", "0"])
        do {
            try #require(try fake.output.receiveCopy(timeoutMilliseconds: 10_000) != nil, "tail did not subscribe")
            try #require(tail.stdout.wait(timeout: 30) { $0.split(separator: "\n").count == history.count },
                         "the first history was not printed: \(tail.stdout.text) \(tail.stderr.text)")
        } catch {
            tail.signal(SIGKILL)
            _ = tail.waitForProcessExit(timeout: 10)
            throw error
        }
        return tail
    }

    @Test("the daemon's store reset under a running tail: it says so on stderr and prints the new alerts (from the journal), instead of nothing for ever")
    func storeResetUnderARunningTail() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let (journal, output) = (fake.journal, fake.output)
        let tail = try Self.tailOfFirstHistory(dir, fake, (1...5).map { Self.alert($0, "X00000\($0)") })
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }

        // Another history: the store moved away, a new daemon numbers its alerts from 1 and publishes the first.
        journal.history.withLock { $0 = (1...3).map { Self.alert($0, "X00010\($0)") } }
        _ = try output.send([Array("alert.raised.no-privacy".utf8), Self.alert(1, "X000101")])
        let printed = tail.stdout.wait(timeout: 30) { $0.contains("X000103") }
        let lines = tail.stdout.text.split(separator: "\n")
        #expect(printed, "the new history's alerts were not printed: \(tail.stdout.text) \(tail.stderr.text)")
        #expect(lines.count == 8 && lines.suffix(3).map { $0.contains("X00010") } == [true, true, true], "\(lines)")
        // Written before the alerts, but read from its own pipe: waited for.
        let warned = tail.stderr.wait(timeout: 10) {
            $0.contains("its latest alertSequence is 3, below 5") && $0.contains("reset or restored")
        }
        #expect(warned, "\(tail.stderr.text)")
    }

    /// The store restored from a backup while the tail was away (or stopped), the restored daemon already numbering
    /// past it: its journal's latest is not below the tail's, so only the alerts' ids tell. Compared by number alone,
    /// the new alerts under numbers the tail had printed were taken for repeats and dropped without a word (186 in a
    /// journal fault tester's run, session 36).
    @Test("the store restored and already numbered past the tail: a live alert under a printed number with another alertId is said, and the journal's alerts from there are printed")
    func restoredStorePastTheTail() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let (journal, output) = (fake.journal, fake.output)
        let tail = try Self.tailOfFirstHistory(dir, fake, (1...5).map { Self.alert($0, "X00000\($0)", id: "a\($0)") })
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        // The restored store: alerts 3… are others now, and it is at 8 already.
        journal.history.withLock { $0 = (1...2).map { Self.alert($0, "X00000\($0)", id: "a\($0)") }
            + (3...8).map { Self.alert($0, "X00020\($0)", id: "b\($0)") } }
        _ = try output.send([Array("alert.raised.no-privacy".utf8), Self.alert(3, "X000203", id: "b3")])
        let printed = tail.stdout.wait(timeout: 30) { $0.contains("X000208") }
        let lines = tail.stdout.text.split(separator: "\n")
        #expect(printed, "the restored history was not printed: \(tail.stdout.text) \(tail.stderr.text)")
        #expect(lines.count == 11 && (3...8).allSatisfy { n in lines.contains { $0.contains("X00020\(n)") } },
                "\(lines.count) lines: \(lines)")
        let warned = tail.stderr.wait(timeout: 10) { $0.contains("alert 3 from the daemon is not the alert 3 this tail printed") }
        #expect(warned, "\(tail.stderr.text)")
        // A true repeat (the same alert again, as a restart republishes it) is still dropped without a word.
        _ = try output.send([Array("alert.raised.no-privacy".utf8), Self.alert(4, "X000204", id: "b4")])
        _ = try output.send([Array("alert.raised.no-privacy".utf8), Self.alert(9, "X000209", id: "b9")])
        journal.history.withLock { $0.append(Self.alert(9, "X000209", id: "b9")) }
        #expect(tail.stdout.wait(timeout: 30) { $0.contains("X000209") }, "\(tail.stdout.text)")
        #expect(tail.stdout.text.split(separator: "\n").count == 12, "\(tail.stdout.text)")
    }

    /// The tail away (stopped here; paused, partitioned, a slow host) while the daemon stopped, its store was restored
    /// from a backup and the restored daemon numbered past the tail: no live alert under an old number ever reaches the
    /// tail, so only the journal can tell. The catch-up asked only for what followed the tail's number, and the
    /// restored daemon's alerts under the numbers it had printed were never printed (186 in a journal fault tester's
    /// run, session 36). A daemon merely restarted (the same alerts under the same numbers) prints nothing twice.
    @Test("the daemon restarted while the tail was stopped: after a restore it goes back to the first number whose alert differs, after a plain restart it prints nothing again", arguments: [true, false])
    func restoredWhileTheTailWasAway(_ restored: Bool) throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let first = (1...5).map { Self.alert($0, "X00000\($0)", id: "a\($0)") }
        let tail = try Self.tailOfFirstHistory(dir, fake, first)
        defer {
            if tail.process.isRunning { tail.signal(SIGCONT); tail.signal(SIGKILL) }
            _ = tail.waitForProcessExit(timeout: 10)
        }
        tail.signal(SIGSTOP)
        try fake.restartOutput {
            // Restored: alerts 3… are others now, and the daemon is at 8 already. Restarted: one alert more.
            fake.journal.history.withLock {
                $0 = restored ? Array(first[0..<2]) + (3...8).map { Self.alert($0, "X00020\($0)", id: "b\($0)") }
                    : first + [Self.alert(6, "X000006", id: "a6")]
            }
        }
        tail.signal(SIGCONT)
        let last = restored ? "X000208" : "X000006"
        #expect(tail.stdout.wait(timeout: 30) { $0.contains(last) }, "\(tail.stdout.text) \(tail.stderr.text)")
        let lines = tail.stdout.lines
        if restored {
            #expect(lines.count == 11 && (3...8).allSatisfy { n in lines.contains { $0.contains("X00020\(n)") } },
                    "\(lines.count) lines: \(lines)")
            // Written before the alerts, but read from its own pipe: waited for.
            #expect(tail.stderr.wait(timeout: 10) { $0.contains("its alert 3 is not the alert 3 this tail printed") },
                    "\(tail.stderr.text)")
        } else {
            #expect(lines.count == 6, "\(lines)")
            #expect(!tail.stderr.text.contains("not the alert"), "\(tail.stderr.text)")
        }
    }

    /// After a journal that went back (the tail said so and went on), the numbers printed before were still
    /// remembered as the old history's: the next plain restart's check took them for a restore and printed alerts
    /// again, with a false warning (a reviewer, session 37).
    @Test("a journal that went back, then a plain restart: nothing printed again, no restore warning; the next alert is printed")
    func wentBackThenRestarted() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let tail = try Self.tailOfFirstHistory(dir, fake, (1...5).map { Self.alert($0, "X00000\($0)", id: "a\($0)") })
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        // The store reset to another history of 3 alerts, seen by the idle re-check: the tail goes on after 3.
        fake.journal.history.withLock { $0 = (1...3).map { Self.alert($0, "X00030\($0)", id: "c\($0)") } }
        try #require(tail.stderr.wait(timeout: 30) { $0.contains("its latest alertSequence is 3, below 5") }, "\(tail.stderr.text)")
        try fake.restartOutput {}
        try #require(try fake.output.receiveCopy(timeoutMilliseconds: 10_000) != nil, "tail did not subscribe again")
        fake.journal.history.withLock { $0.append(Self.alert(4, "X000304", id: "c4")) }
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), Self.alert(4, "X000304", id: "c4")])
        #expect(tail.stdout.wait(timeout: 30) { $0.contains("X000304") }, "\(tail.stdout.text) \(tail.stderr.text)")
        // The first history's 5, the new history's 3 (none of them what was printed under its number: all printed
        // when the journal went back), then c4 — nothing printed again by the restart's check.
        let lines = tail.stdout.lines
        #expect(lines.count == 9 && (1...3).allSatisfy { n in lines.filter { $0.contains("X00030\(n)") }.count == 1 },
                "\(tail.stdout.text)")
        #expect(!tail.stderr.text.contains("is not the alert"), "\(tail.stderr.text)")
    }

    /// A store restored from a backup (alerts 1–2 as before) that has numbered a new alert 3 but not yet passed the
    /// tail's 5: the journal is below the tail, and the tail went on after the journal's latest, 3, so the new alert 3
    /// was said ("alerts 1…3 … are not printed") but never printed (a reviewer, session 37). The alerts up to there are
    /// compared with what was printed, and the tail goes on after the last that agrees.
    @Test("a journal gone back below the tail whose latest alert is new: the tail goes on after the last alert that agrees, and prints the new one")
    func wentBackWithANewAlert() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let first = (1...5).map { Self.alert($0, "X00000\($0)", id: "a\($0)") }
        let tail = try Self.tailOfFirstHistory(dir, fake, first)
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        fake.journal.history.withLock { $0 = Array(first[0..<2]) + [Self.alert(3, "X000403", id: "b3")] }
        #expect(tail.stdout.wait(timeout: 30) { $0.contains("X000403") }, "\(tail.stdout.text) \(tail.stderr.text)")
        #expect(tail.stdout.lines.count == 6, "\(tail.stdout.text)")
        #expect(tail.stderr.wait(timeout: 10) { $0.contains("Going on after 2") && $0.contains("alerts 1…2 are the ones this tail printed") },
                "\(tail.stderr.text)")
    }

    /// An idle tail over TCP whose journal stops answering: a partition leaves the live connection up until keepalive
    /// ends it (about 25 s), and the tail exited 69 after the journal's two timeouts, where a daemon that is away is
    /// waited for (a reviewer, session 37, B4). It now waits for keepalive's verdict: the connection cut (here closed,
    /// as keepalive would end it), it waits for the daemon and catches up; still up, it gives up with 69.
    @Test("tail over TCP, its journal silent twice: it waits up to 30 s to learn whether the live connection is cut; cut, it waits for the daemon and catches up; still up, exit 69",
          arguments: [true, false])
    func journalSilentOverTCP(cut: Bool) throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir, tcp: true)
        defer { fake.close() }
        let journal = fake.journal
        journal.history.withLock { $0 = (1...2).map { Self.alert($0, "X00000\($0)") } }
        let tail = try Child("contactwatch", ["tail", "--endpoint", fake.outputEndpoint, "--journal", dir.ipc("journal"),
                                              "--from-sequence", "0", "--request-timeout", "1"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(tail.stdout.wait(timeout: 30) { $0.split(separator: "\n").count == 2 }, "\(tail.stderr.text)")
        // The journal goes silent; the tail's next idle re-check is asked twice, then waited on.
        journal.unanswered.store(1_000_000, ordering: .relaxed)
        #expect(tail.stderr.wait(timeout: 60) { $0.contains("twice; waiting up to") && $0.contains("to learn whether the connection to \(fake.outputEndpoint) is cut") },
                "\(tail.stderr.text)")
        #expect(tail.process.isRunning, "\(tail.stderr.text)")
        if cut {
            try fake.restartOutput {
                #expect(tail.stderr.wait(timeout: 30) { $0.contains("asking again once it is back") }, "\(tail.stderr.text)")
                journal.history.withLock { $0.append(Self.alert(3, "X000003")) }
                journal.unanswered.store(0, ordering: .relaxed)
            }
            #expect(tail.stdout.wait(timeout: 30) { $0.contains("X000003") }, "\(tail.stdout.text) \(tail.stderr.text)")
            #expect(tail.process.isRunning && tail.stdout.lines.count == 3, "\(tail.stdout.text) \(tail.stderr.text)")
        } else {
            #expect(tail.waitForExit(timeout: 60) == 69, "\(tail.stderr.text)")
            #expect(tail.stderr.text.contains("twice, and the connection to \(fake.outputEndpoint) is still up"), "\(tail.stderr.text)")
        }
    }

    /// `--journal` naming a place with no journal: nothing listening there, or the daemon's own XPUB output (a
    /// handshake that fails: DEALER against XPUB). The request was queued all the same, never answered, and after 30 s
    /// the tool blamed a daemon restart or a network partition (a fault tester, session 40). The send now waits for a
    /// completed connection, and the tool says it has none after the request timeout.
    @Test("tail --journal where nothing listens, or at the daemon's output: exit 69 after the request timeout saying there is no connection to it, not a restart", arguments: [false, true])
    func journalEndpointWithNoJournal(_ atTheOutput: Bool) throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let journal = atTheOutput ? fake.outputEndpoint : dir.ipc("nothing-listens")
        let tail = try Child("contactwatch", ["tail", "--endpoint", fake.outputEndpoint, "--journal", journal,
                                              "--from-sequence", "0", "--request-timeout", "2"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        // Two request timeouts (the second on a new socket) after the live connection is up.
        #expect(tail.waitForExit(timeout: 15) == 69, "\(tail.stderr.text)")
        #expect(tail.stderr.text.contains("journal \(journal) took no request within 2000 ms: no connection to it"),
                "\(tail.stderr.text)")
        // The same endpoint for both is said as such (a new-operator walk-through, session 49).
        let said = "--journal is the same endpoint as --endpoint: the journal is a socket of its own, the daemon's --journal, not its --output"
        #expect(tail.stderr.text.contains(atTheOutput ? said : "(its --journal, not its --output)"), "\(tail.stderr.text)")
        #expect(!tail.stderr.text.contains("restarted") && !tail.stderr.text.contains("partition"), "\(tail.stderr.text)")
    }

    /// A --request-timeout longer than 5 s is as long a wait for a connection to the journal: said at 5 s, as the live
    /// connection's wait is (it was silent until the timeout: a drift audit, session 50).
    @Test("tail --journal where nothing listens, with --request-timeout 6: the missing connection said at 5 s, then exit 69")
    func missingJournalConnectionSaidAtFiveSeconds() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let journal = dir.ipc("nothing-listens")
        let tail = try Child("contactwatch", ["tail", "--endpoint", fake.outputEndpoint, "--journal", journal,
                                              "--from-sequence", "0", "--request-timeout", "6"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        let warning = "warning: no connection to journal \(journal) after 5 s; still trying, for up to 1 s more"
        #expect(tail.stderr.wait(timeout: 30) { $0.contains(warning) }, "\(tail.stderr.text)")
        #expect(tail.waitForExit(timeout: 30) == 69, "\(tail.stderr.text)")
        // Said once, before the first give-up; the second try (a new socket) waits the timeout alone.
        #expect(tail.stderr.text.components(separatedBy: warning).count == 2, "\(tail.stderr.text)")
        #expect(tail.stderr.text.contains("journal \(journal) took no request within 6000 ms: no connection to it"),
                "\(tail.stderr.text)")
    }

    /// A daemon killed and restarted with a request in flight took the request with it: the tail waited for an answer
    /// that could not come and exited 69, while the new daemon's journal answered at once (a fault tester, session 35).
    @Test("a journal request left unanswered is asked once more on a new connection; unanswered twice, tail exits 69", arguments: [1, 2])
    func unansweredRequestAskedAgain(_ unanswered: Int) throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        fake.journal.history.withLock { $0 = (1...3).map { Self.alert($0, "X00000\($0)") } }
        fake.journal.unanswered.store(unanswered, ordering: .relaxed)
        let tail = try Self.journalTail(dir, requestTimeout: 3)
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        #expect(tail.stderr.wait(timeout: 30) { $0.contains("did not answer within 3000 ms; asking again on a new connection") },
                "\(tail.stderr.text)")
        if unanswered == 1 {
            #expect(tail.stdout.wait(timeout: 30) { $0.split(separator: "\n").count == 3 }, "\(tail.stdout.text) \(tail.stderr.text)")
            #expect(tail.process.isRunning, "\(tail.stderr.text)")
        } else {
            #expect(tail.waitForExit(timeout: 30) == 69, "\(tail.stderr.text)")
            #expect(tail.stderr.text.contains("did not answer within 3000 ms, twice"), "\(tail.stderr.text)")
        }
    }

    /// A daemon that restarts quickly while the second request waits: the loss and the new handshake reach the tail's
    /// monitor together, so the live connection looked as if it had never gone, and the tail exited 69 ("did not answer
    /// … twice") though the new daemon's journal would answer at once (a reviewer, session 38). It asks again.
    @Test("the daemon restarted quickly while the second journal request waited: tail asks the new daemon again and catches up, instead of exit 69")
    func quickRestartDuringTheSecondRequest() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let journal = fake.journal
        journal.history.withLock { $0 = (1...2).map { Self.alert($0, "X00000\($0)") } }
        let tail = try Self.journalTail(dir, requestTimeout: 3)
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(tail.stdout.wait(timeout: 30) { $0.split(separator: "\n").count == 2 }, "\(tail.stderr.text)")
        // The journal goes silent; the tail's next idle re-check is asked, then asked again on a new connection.
        let answered = journal.requests.load(ordering: .relaxed)
        journal.unanswered.store(1_000_000, ordering: .relaxed)
        try #require(tail.stderr.wait(timeout: 60) { $0.contains("asking again on a new connection") }, "\(tail.stderr.text)")
        try #require(journal.waitForRequests(answered + 2), "the second request did not come")
        // That request is lost with the daemon, which is back at once (well within the 3 s the request waits), and
        // answers what comes next, with one alert more.
        try fake.restartOutput {
            journal.history.withLock { $0.append(Self.alert(3, "X000003")) }
            journal.unanswered.store(0, ordering: .relaxed)
        }
        #expect(tail.stdout.wait(timeout: 30) { $0.contains("X000003") }, "\(tail.stdout.text) \(tail.stderr.text)")
        #expect(tail.process.isRunning && tail.stdout.lines.count == 3, "\(tail.stdout.text) \(tail.stderr.text)")
        #expect(!tail.stderr.text.contains("twice"), "\(tail.stderr.text)")
    }

    /// After a daemon restart the live connection can be back before the journal's, whose socket waits libzmq's
    /// reconnect interval (100–200 ms) before it tries again; with the journal's requests waiting for a completed
    /// connection, a short --request-timeout ran out first and the tail exited 69 against a daemon whose journal
    /// answered (a reviewer, session 40: at the first restart with 0.02 and 0.05 s). A refused send is tried once more
    /// on a new socket, which connects at once.
    @Test("daemon restarts with --request-timeout 0.05: the tail catches up after each, never exit 69")
    func restartsWithAShortRequestTimeout() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        var history = [Self.alert(1, "X000001")]
        fake.journal.history.withLock { $0 = history }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--journal", dir.ipc("journal"),
                                              "--from-sequence", "0", "--request-timeout", "0.05"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(tail.stdout.wait(timeout: 30) { $0.contains("X000001") }, "\(tail.stderr.text)")
        for n in 2...11 {
            history.append(Self.alert(n, "X0000\(String(format: "%02d", n))"))
            try fake.restart(history: history)
            // Back after the restart, the tail checks the journal and prints the alert the restart brought.
            #expect(tail.stdout.wait(timeout: 30) { $0.contains("X0000\(String(format: "%02d", n))") },
                    "restart \(n - 1): \(tail.stdout.text) \(tail.stderr.text)")
            try #require(tail.process.isRunning, "restart \(n - 1): \(tail.stderr.text)")
        }
        #expect(tail.stdout.lines.count == 11, "\(tail.stdout.text)")
    }

    /// The first connection made after the first request was sent (a slow handshake, a daemon still starting) is not a
    /// restart: counted as one, it was said as "lost and is back" and the silent journal got a whole extra round (a
    /// reviewer, session 39).
    @Test("a first connection made while the first journal request waits is not taken for a daemon restart")
    func slowFirstConnectionIsNoRestart() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let journal = fake.journal
        journal.unanswered.store(1_000_000, ordering: .relaxed)
        var started: Child? = nil
        // The output away until the tail has sent its first request (it waits 1 s for the live connection first).
        try fake.restartOutput {
            started = try Self.journalTail(dir, requestTimeout: 3)
            try #require(journal.waitForRequests(1), "the tail sent no request")
        }
        let tail = try #require(started)
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        #expect(tail.stderr.wait(timeout: 30) { $0.contains("asking again") }, "\(tail.stderr.text)")
        #expect(tail.stderr.text.contains("asking again on a new connection"), "\(tail.stderr.text)")
        #expect(!tail.stderr.text.contains("was lost and is back"), "\(tail.stderr.text)")
    }

    /// A restart under systemd (RestartSec=10, then the state's load) outlasts two request timeouts: the re-ask on a
    /// new connection alone still ended the tail with 69 (a reviewer, session 35). With the live connection lost, the
    /// tail waits for the daemon to be back, then asks again and catches up.
    @Test("the daemon gone with a journal request in flight: tail waits for it to be back however long, then catches up")
    func daemonAwayLongerThanTheTimeouts() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let journal = fake.journal
        journal.history.withLock { $0 = (1...2).map { Self.alert($0, "X00000\($0)") } }
        let tail = try Self.journalTail(dir, requestTimeout: 3)
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(tail.stdout.wait(timeout: 30) { $0.split(separator: "\n").count == 2 }, "\(tail.stderr.text)")
        // The daemon hangs (its journal answers nothing) while a re-check is in flight, then goes away.
        journal.unanswered.store(1_000_000, ordering: .relaxed)
        let asked = journal.requests.load(ordering: .relaxed)
        _ = journal.waitForRequests(asked + 1)
        try fake.restartOutput {
            #expect(tail.stderr.wait(timeout: 30) { $0.contains("asking again once it is back") }, "\(tail.stderr.text)")
            #expect(tail.process.isRunning, "\(tail.stderr.text)")
            // Back: the journal answers, with one alert more, and the output is bound again.
            journal.history.withLock { $0.append(Self.alert(3, "X000003")) }
            journal.unanswered.store(0, ordering: .relaxed)
        }
        #expect(tail.stdout.wait(timeout: 30) { $0.contains("X000003") }, "\(tail.stdout.text) \(tail.stderr.text)")
        #expect(tail.process.isRunning && tail.stdout.lines.count == 3, "\(tail.stdout.text) \(tail.stderr.text)")
    }

    /// A journal's `error` text (and a reply's unknown kind) went to stderr raw: a hostile peer set the terminal's title,
    /// its colours, reversed text, up to 1 MiB of it (the companion tool's hunter, session 45).
    @Test("a journal's error text and a reply's unknown kind reach stderr without terminal controls and cut to 200 characters; exit 69", arguments: ["error", "kind"])
    func hostileJournalText(_ where_: String) throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let hostile = "\u{1B}]0;pwned\u{07}\u{1B}[31mred\u{202E}desrever\u{9B}2J" + String(repeating: "x", count: 5000)
        fake.journal.fixed.withLock {
            $0 = where_ == "error" ? [Array("error".utf8), Array(hostile.utf8)] : [Array(hostile.utf8), Array("1".utf8)]
        }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--journal", dir.ipc("journal"),
                                              "--from-sequence", "0"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        let status = tail.waitForExit(timeout: 30)
        let err = tail.stderr.text
        #expect(status == 69, "exit \(String(describing: status)): \(err.suffix(500))")
        #expect(err.contains(where_ == "error" ? "answered: error: \" ]0;pwned  [31mred desrever 2J" : "sent a reply of kind \" ]0;pwned"),
                "\(err.suffix(500))")
        #expect(!err.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x202E || $0.value == 0x9B },
                "\(err.debugDescription.suffix(500))")
        #expect(err.utf8.count < 1500 && !err.contains(String(repeating: "x", count: 300)), "\(err.count) characters on stderr")
    }

    @Test("a journal whose replies never advance (the same alert again, bodies without alertSequence, not JSON): tail exits 69 saying so, instead of asking for ever", arguments: ["same", "no-sequence", "not-json"])
    func journalThatNeverAdvances(_ kind: String) throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let journal = fake.journal
        let body: [UInt8] = switch kind {
        case "same": Self.alert(1, "X000001")
        case "no-sequence": Array("{\"x\":1}".utf8)
        default: [0xFF, 0xFE, 0x20, 0x67]
        }
        journal.fixed.withLock { $0 = [Array("alerts".utf8), Array("100".utf8), body] }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--journal", dir.ipc("journal"),
                                              "--from-sequence", "0"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        let status = tail.waitForExit(timeout: 30)
        #expect(status == 69, "exit \(String(describing: status)) after \(journal.requests.load(ordering: .relaxed)) requests: \(tail.stderr.text.suffix(500))")
        #expect(tail.stderr.text.contains("none of them an alert after"), "\(tail.stderr.text.suffix(500))")
        #expect(journal.requests.load(ordering: .relaxed) <= 3)
    }

    @Test("a body with line breaks (a peer on the output that is not the daemon) is still one line of tail's NDJSON: one message, one record (fault tester, round 4)")
    func lineBreaksInABody() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--topic", "", "--count", "2"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(try fake.output.receiveCopy(timeoutMilliseconds: 10_000) != nil, "tail did not subscribe")
        let injected = "{\"alertSequence\":1,\n\"rule\":\"no-privacy\"}\r\n{\"alertSequence\":999,\"forged\":true}"
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), Array(injected.utf8)])
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), Self.alert(2, "X000002")])
        #expect(tail.waitForExit(timeout: 30) == 0, "\(tail.stderr.text)")
        let lines = tail.stdout.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 2 && lines.first?.contains("\"forged\":true") == true && lines.last?.contains("X000002") == true,
                "\(lines)")
        #expect(!tail.stdout.text.contains("\r"))
    }
    /// Reads what the fake output's XPUB receives until a subscription (first byte 1) arrives; false after `limit` reads
    /// or a read that waited 10 s.
    static func awaitSubscription(_ output: ZMQSocket, limit: Int = 10) throws -> Bool {
        for _ in 0..<limit {
            guard let message = try output.receiveCopy(timeoutMilliseconds: 10_000) else { return false }
            if message.first?.first == 1 { return true }
        }
        return false
    }

    @Test("a peer on the output that sends a frame over 1 MiB is cut, said, and connected again; the next message prints (the companion tool's auditor, session 25: 50 MB frames grew a tail to 888 MB)")
    func oversizeFrameFromAPeer() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--count", "1"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(try Self.awaitSubscription(fake.output), "tail did not subscribe")
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), [UInt8](repeating: 0x41, count: 2 << 20)])
        // Cut on the frame, libzmq does not connect again by itself: tail does, and subscribes again.
        #expect(try Self.awaitSubscription(fake.output), "tail did not come back: \(tail.stderr.text)")
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), Self.alert(2, "X000002")])
        #expect(tail.waitForExit(timeout: 30) == 0, "\(tail.stderr.text)")
        #expect(tail.stdout.lines.count == 1 && tail.stdout.text.contains("X000002"), "\(tail.stdout.text.prefix(300))")
        #expect(tail.stderr.text.contains("was lost") && tail.stderr.text.contains("over 1024 KiB"), "\(tail.stderr.text)")
    }

    @Test("a forged body cannot send terminal controls through tail's NDJSON: C0 (a tab aside), C1, line separators and bidi overrides come out as \\u escapes, bytes that are not UTF-8 as U+FFFD; a daemon's body is printed as it is (the companion tool's auditor, session 25)")
    func terminalControlsEscaped() throws {
        let dir = try TemporaryDirectory()
        let fake = try FakeDaemon(dir)
        defer { fake.close() }
        let tail = try Child("contactwatch", ["tail", "--endpoint", dir.ipc("out"), "--count", "2"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) }; _ = tail.waitForProcessExit(timeout: 10) }
        try #require(try Self.awaitSubscription(fake.output), "tail did not subscribe")
        let forged: [UInt8] = Array("{\"reason\":\"".utf8) + [0x1B] + Array("]0;pwned".utf8) + [0x07, 0x1B]
            + Array("[2J \u{202E}gnp.exe \u{2028} \u{85} end".utf8) + [0xFF, 0x9B] + Array("\"}".utf8)
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), forged])
        let genuine = Self.alert(2, "X000002").dropLast() + Array(",\"note\":\"Zoë\"}".utf8)
        _ = try fake.output.send([Array("alert.raised.no-privacy".utf8), genuine])
        #expect(tail.waitForExit(timeout: 30) == 0, "\(tail.stderr.text)")
        let out = tail.stdout.text
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(lines.count == 2, "\(out)")
        #expect(lines[0] == #"{"reason":"\u001b]0;pwned\u0007\u001b[2J \u202egnp.exe \u2028 \u0085 end\#u{FFFD}\#u{FFFD}"}"#, "\(lines[0])")
        #expect(!out.utf8.contains(0x1B) && !out.utf8.contains(0x07))
        #expect(Array(lines[1].utf8) == genuine, "\(lines[1])")
        #expect((try? JSONSerialization.jsonObject(with: Data(lines[0].utf8))) != nil, "the escaped body is JSON")
    }
}
