@testable import ContactWatchTools
import Testing
import ZeroMQ

/// `replay`'s account of its subscribers (`SubscriberLedger`): a subscription withdrawn before the first message is not
/// a subscriber the messages reached.
@Suite("replay's subscriber ledger")
struct SubscriberLedgerTests {
    @Test("a subscription withdrawn before the first message: live 0, the messages reached no one")
    func withdrawnBeforeTheFirstMessage() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true)
        #expect(ledger.live == 1)
        ledger.note(subscribe: false)
        #expect(ledger.live == 0 && ledger.joined == 1 && ledger.left == 1)
        for _ in 0..<300 { ledger.noteSent([UInt8]()) }
        #expect(!ledger.reached)
        var summary = ReplaySummary()
        summary.messages = 300
        summary.subscriptionsSeen = ledger.joined
        let text = Replay.noSubscriberMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
        #expect(text.contains("withdrawn before it"), "\(text)")
        #expect(text.contains("300 messages were dropped"), "\(text)")
    }

    @Test("a subscription held while a message is sent reaches it, even when withdrawn after")
    func heldWhileSent() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true)
        ledger.noteSent([UInt8]())
        ledger.note(subscribe: false)
        #expect(ledger.reached && ledger.live == 0)
    }

    @Test("a subscription first read after messages were sent may have taken some: reached")
    func subscriptionReadAfterSends() {
        var ledger = SubscriberLedger()
        ledger.noteSent([UInt8]())
        #expect(!ledger.reached)
        ledger.note(subscribe: true)
        #expect(ledger.reached)
    }

    static let a = ZMQMessageSource(descriptor: 7, peerAddress: "127.0.0.1")
    static let b = ZMQMessageSource(descriptor: 8, peerAddress: "127.0.0.1")

    /// A peer speaking ZMTP itself can send an unsubscription of what it never held, and libzmq 4.3.4 hands it up: it
    /// made replay say "dropped" of messages another subscriber took (a reviewer, session 26).
    @Test("an unsubscription of a prefix the connection does not hold is ignored, whoever else holds it")
    func unheldUnsubscriptionIgnored() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true, prefix: [], source: Self.a)
        ledger.note(subscribe: false, prefix: [], source: Self.b)
        ledger.note(subscribe: false, prefix: Array("alert.".utf8), source: Self.a)
        #expect(ledger.live == 1 && ledger.ignored == 2 && ledger.left == 0)
        ledger.noteSent(Array("probation-case.contact".utf8))
        #expect(ledger.reached)
        ledger.note(subscribe: false, prefix: [], source: Self.a)
        ledger.note(subscribe: false, prefix: [], source: Self.a)
        #expect(ledger.live == 0 && ledger.left == 1 && ledger.ignored == 3)
    }

    /// A libzmq SUB subscribing twice to one prefix sends two subscriptions, and unsubscribing twice, one: counted twice,
    /// the prefix stayed held and replay said a message reached it (a reviewer, session 26).
    @Test("a repeated subscription of one connection is held once; two connections' hold it twice")
    func repeatsHeldOnce() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true, prefix: [0x61], source: Self.a)
        ledger.note(subscribe: true, prefix: [0x61], source: Self.a)
        #expect(ledger.live == 1 && ledger.joined == 1 && ledger.ignored == 1)
        ledger.note(subscribe: false, prefix: [0x61], source: Self.a)
        #expect(ledger.live == 0)
        ledger.note(subscribe: true, prefix: [0x61], source: Self.a)
        ledger.note(subscribe: true, prefix: [0x61], source: Self.b)
        #expect(ledger.live == 2)
        // libzmq's report of a connection that ended: no source, one per prefix it held.
        ledger.note(subscribe: false, prefix: [0x61])
        #expect(ledger.live == 1)
        ledger.note(subscribe: false, prefix: [0x61])
        ledger.note(subscribe: false, prefix: [0x61])
        #expect(ledger.live == 0 && ledger.left == 3 && ledger.ignored == 2)
    }

    /// cli.md: `--wait-subscribers N` waits for N subscribers. A daemon subscribed to two prefixes counted as two, so a
    /// replay waiting for a redundant pair started once the first had joined (a contract auditor, session 41).
    @Test("subscribers are connections holding a subscription, each once however many prefixes it holds")
    func subscribersAreConnections() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true, prefix: Array("probation-case.contact.".utf8), source: Self.a)
        ledger.note(subscribe: true, prefix: Array("probation-case.registration.".utf8), source: Self.a)
        #expect(ledger.live == 2 && ledger.subscribers == 1)
        ledger.note(subscribe: true, prefix: Array("probation-case.contact.".utf8), source: Self.b)
        #expect(ledger.live == 3 && ledger.subscribers == 2)
        ledger.note(subscribe: false, prefix: Array("probation-case.contact.".utf8), source: Self.a)
        #expect(ledger.subscribers == 2)
        ledger.note(subscribe: false, prefix: Array("probation-case.registration.".utf8), source: Self.a)
        #expect(ledger.live == 1 && ledger.subscribers == 1)
        // Over inproc:// libzmq names no connection: each prefix held counts, as peers cannot be told apart.
        ledger.note(subscribe: true, prefix: [0x61])
        ledger.note(subscribe: true, prefix: [0x62])
        #expect(ledger.subscribers == 3)
    }

    /// libzmq reports a connection that ended as unsubscriptions without a source. Taken from the wrong holder (one
    /// still open), the ended one's prefix stayed held: the open one's own withdrawal later was ignored as unheld, and
    /// messages sent to nobody counted as reaching a subscriber (the closing note of session 26).
    @Test("an ended connection's unsubscription is taken from a holder that has closed, not from one still open")
    func endedConnectionFoundByItsClosedDescriptor() {
        for order in [[Self.a, Self.b], [Self.b, Self.a]] {
            var ledger = SubscriberLedger()
            for source in order { ledger.note(subscribe: true, prefix: [], source: source) }
            ledger.note(subscribe: false, prefix: [], source: nil, isClosed: { $0 == Self.a })
            #expect(ledger.live == 1)
            ledger.note(subscribe: false, prefix: [], source: Self.b, isClosed: { $0 == Self.a })
            #expect(ledger.live == 0 && ledger.left == 2 && ledger.ignored == 0)
            ledger.readStarts()
            ledger.noteSent(Array("probation-case.contact".utf8))
            ledger.readEnds()
            #expect(!ledger.reached && ledger.dropped == 1)
        }
    }

    /// A subscription to a prefix no message has reached nothing: replay counted any held prefix as a subscriber.
    @Test("a message reaches a subscriber only when a held prefix matches its first frame")
    func topicMatters() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true, prefix: Array("zzz".utf8), source: Self.a)
        ledger.noteSent(Array("probation-case.contact".utf8))
        ledger.readStarts(); ledger.readEnds()
        // Left out by the subscriber's filter: not delivered, but not dropped for want of a subscriber either.
        #expect(!ledger.reached && ledger.dropped == 0 && ledger.unmatched == 1)
        #expect(ledger.firstUnmatchedTopic == Array("probation-case.contact".utf8))
        ledger.note(subscribe: true, prefix: Array("probation-case.".utf8), source: Self.b)
        ledger.noteSent(Array("probation-case.contact".utf8))
        #expect(ledger.reached)
    }

    /// One of two subscribers with other prefixes leaving made the messages only it took "unmatched" (exit 0), and a
    /// subscriber joining between two reads of the XPUB made those it took "unmatched" too (a reviewer, session 41).
    @Test("unmatched: a topic no prefix ever held matches, in a stretch whose read brought no subscription; one a departed subscriber held is dropped")
    func unmatchedOnlyWhenNeverWanted() {
        var ledger = SubscriberLedger()
        ledger.readStarts()
        ledger.note(subscribe: true, prefix: Array("x.".utf8), source: Self.a)
        ledger.note(subscribe: true, prefix: Array("y.".utf8), source: Self.b)
        ledger.readEnds()
        ledger.readStarts()
        ledger.note(subscribe: false, prefix: Array("y.".utf8), source: Self.b)
        ledger.readEnds()
        ledger.noteSent(Array("y.1".utf8))
        ledger.noteSent(Array("z.1".utf8))
        ledger.readStarts(); ledger.readEnds()
        #expect(ledger.dropped == 1 && ledger.unmatched == 1 && ledger.firstUnmatchedTopic == Array("z.1".utf8))
        // A topic sent before the read that brings a subscription to it may have reached it: neither.
        ledger.noteSent(Array("w.1".utf8))
        ledger.readStarts()
        ledger.note(subscribe: true, prefix: Array("w.".utf8), source: Self.b)
        ledger.readEnds()
        #expect(ledger.dropped == 1 && ledger.unmatched == 1)
        // A subscriber joining later with a prefix that matches the unmatched ones wanted them: dropped after all.
        ledger.readStarts()
        ledger.note(subscribe: true, prefix: Array("z.".utf8), source: Self.b)
        ledger.readEnds()
        #expect(ledger.dropped == 2 && ledger.unmatched == 0, "dropped \(ledger.dropped), unmatched \(ledger.unmatched)")
        #expect(ledger.firstUnmatchedTopic == nil)
        // The first topic named is the earliest still unmatched: one a later subscriber wanted is not it (a reviewer,
        // session 41), and with none left the note names none.
        var moved = SubscriberLedger()
        moved.note(subscribe: true, prefix: Array("x.".utf8), source: Self.a)
        for topic in ["a.1", "b.1", "a.2", "c.1"] { moved.noteSent(Array(topic.utf8)) }
        moved.readStarts(); moved.readEnds()
        #expect(moved.unmatched == 4 && moved.firstUnmatchedTopic == Array("a.1".utf8))
        moved.readStarts()
        moved.note(subscribe: true, prefix: Array("a.".utf8), source: Self.b)
        moved.readEnds()
        #expect(moved.unmatched == 2 && moved.dropped == 2 && moved.firstUnmatchedTopic == Array("b.1".utf8))
        var summary = ReplaySummary()
        summary.messages = 4
        summary.unmatched = 2
        summary.firstUnmatchedTopic = nil
        let none = Replay.unmatchedMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
        #expect(none.hasPrefix("2 of the 4 messages had a topic no subscriber on ipc:///x subscribes to: "), "\(none)")
        // A long topic is kept cut.
        var long = SubscriberLedger()
        long.note(subscribe: true, prefix: Array("x.".utf8), source: Self.a)
        long.noteSent([UInt8](repeating: 0x61, count: 100_000))
        long.readStarts(); long.readEnds()
        #expect(long.unmatched == 1 && long.firstUnmatchedTopic?.count == SubscriberLedger.maxTopicBytes)
        #expect(long.firstUnmatchedTopicCut)
        // One of exactly the bytes kept is whole, and the replay's note does not call it cut.
        var exact = SubscriberLedger()
        exact.note(subscribe: true, prefix: Array("x.".utf8), source: Self.a)
        exact.noteSent([UInt8](repeating: 0x61, count: SubscriberLedger.maxTopicBytes))
        exact.readStarts(); exact.readEnds()
        #expect(exact.unmatched == 1 && exact.firstUnmatchedTopic?.count == SubscriberLedger.maxTopicBytes)
        #expect(!exact.firstUnmatchedTopicCut)
        for (ledger, cut) in [(long, true), (exact, false)] {
            var summary = ReplaySummary()
            summary.messages = 1
            summary.unmatched = ledger.unmatched
            summary.firstUnmatchedTopic = ledger.firstUnmatchedTopic.map { String(decoding: $0, as: UTF8.self) }
            summary.firstUnmatchedTopicCut = ledger.firstUnmatchedTopicCut
            let text = Replay.unmatchedMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
            #expect(text.contains("\" cut)") == cut, "\(text)")
        }
    }

    /// Both connections can look closed by the time the XPUB is read: A ended (libzmq's report, without a source),
    /// then B withdrew the prefix itself and closed. Taken from B, the report left A's prefix held and B's withdrawal
    /// was ignored: messages to nobody counted as reached, by the dictionary's order (a reviewer, session 27).
    @Test("an ended connection's report taken from one that later withdraws the prefix itself is moved to the other")
    func chargeMovedByALaterWithdrawal() {
        for k in 0..<64 {
            let a = ZMQMessageSource(descriptor: Int32(10 + 2 * k), peerAddress: "127.0.0.1")
            let b = ZMQMessageSource(descriptor: Int32(11 + 2 * k), peerAddress: "127.0.0.1")
            for order in [[a, b], [b, a]] {
                var ledger = SubscriberLedger()
                for source in order { ledger.note(subscribe: true, prefix: Array("t".utf8), source: source) }
                ledger.note(subscribe: false, prefix: Array("t".utf8), source: nil, isClosed: { _ in true })
                ledger.note(subscribe: false, prefix: Array("t".utf8), source: b, isClosed: { _ in true })
                #expect(ledger.live == 0 && ledger.left == 2 && ledger.ignored == 0, "descriptors \(a.descriptor), \(b.descriptor)")
                ledger.readStarts()
                ledger.noteSent(Array("t".utf8))
                ledger.readEnds()
                #expect(!ledger.reached && ledger.dropped == 1)
                // B subscribing again (a repeat in libzmq's eyes when the report was A's) keeps one holder.
                var again = SubscriberLedger()
                for source in order { again.note(subscribe: true, prefix: Array("t".utf8), source: source) }
                again.note(subscribe: false, prefix: Array("t".utf8), source: nil, isClosed: { _ in true })
                again.note(subscribe: true, prefix: Array("t".utf8), source: b, isClosed: { _ in true })
                again.note(subscribe: false, prefix: Array("t".utf8), source: b, isClosed: { _ in true })
                #expect(again.live == 0)
            }
        }
    }

    /// Past 64 distinct prefixes a match was assumed: a peer holding 65 that match nothing made every message count
    /// as reaching a subscriber.
    @Test("however many prefixes are held, a message reaches a subscriber only through one that matches it")
    func manyPrefixesNoneMatching() {
        let topic = Array("probation-case.contact.recorded".utf8)
        /// A ledger holding 200 prefixes that match nothing and one longer than the topic, then `more`; one message sent.
        func sendOne(after more: (inout SubscriberLedger) -> Void) -> SubscriberLedger {
            var ledger = SubscriberLedger()
            for k in 0..<200 { ledger.note(subscribe: true, prefix: Array("zz\(k)".utf8), source: Self.a) }
            ledger.note(subscribe: true, prefix: topic + [0x2E], source: Self.a)
            more(&ledger)
            ledger.readStarts()
            ledger.noteSent(topic)
            ledger.readEnds()
            return ledger
        }
        let none = sendOne { _ in }
        #expect(!none.reached && none.dropped == 0 && none.unmatched == 1)
        let whole = sendOne { $0.note(subscribe: true, prefix: topic, source: Self.b) }
        #expect(whole.reached && whole.dropped == 0)
        let withdrawn = sendOne {
            $0.note(subscribe: true, prefix: topic, source: Self.b)
            $0.note(subscribe: false, prefix: topic, source: Self.b)
        }
        // Held earlier, then withdrawn: wanted by a subscriber that left, so dropped.
        #expect(!withdrawn.reached && withdrawn.dropped == 1 && withdrawn.unmatched == 0)
        let shorter = sendOne { $0.note(subscribe: true, prefix: Array("probation-case.".utf8), source: Self.b) }
        #expect(shorter.reached)
    }

    @Test("messages sent after the last subscription was withdrawn are counted dropped, read by read")
    func droppedAfterTheLastLeft() {
        var ledger = SubscriberLedger()
        ledger.readStarts(); ledger.note(subscribe: true); ledger.readEnds()
        ledger.noteSent([UInt8]())
        ledger.readStarts(); ledger.note(subscribe: false); ledger.readEnds()
        for _ in 0..<3 { ledger.noteSent([UInt8]()) }
        #expect(ledger.dropped == 0, "counted before the XPUB was read again")
        ledger.readStarts(); ledger.readEnds()
        #expect(ledger.dropped == 3 && ledger.reached)
        ledger.noteSent([UInt8]())
        ledger.readStarts(); ledger.readEnds()
        #expect(ledger.dropped == 4)
    }

    @Test("a read that brings a subscription leaves the messages sent before it uncounted: they may have reached it")
    func subscriptionMakesTheStretchUncertain() {
        var ledger = SubscriberLedger()
        for _ in 0..<5 { ledger.noteSent([UInt8]()) }
        ledger.readStarts(); ledger.note(subscribe: false); ledger.note(subscribe: true); ledger.readEnds()
        #expect(ledger.dropped == 0 && ledger.reached)
        // Held now: what is sent is not counted, whatever the next read brings.
        ledger.noteSent([UInt8]())
        ledger.readStarts(); ledger.readEnds()
        #expect(ledger.dropped == 0)
    }

    @Test("the message for some messages dropped names the count and, without --wait-subscribers, the flag")
    func droppedMessageText() {
        var summary = ReplaySummary()
        summary.messages = 60
        summary.droppedUnheld = 41
        var options = ReplayOptions(files: [], endpoint: "ipc:///x")
        let text = Replay.droppedMessage(options, summary)
        #expect(text.hasPrefix("41 of the 60 messages were sent while no subscriber held a subscription on ipc:///x"), "\(text)")
        #expect(text.contains("--wait-subscribers N"), "\(text)")
        options.waitSubscribers = 1
        #expect(!Replay.droppedMessage(options, summary).contains("--wait-subscribers"))
    }

    @Test("nothing subscribed at all: the message names no withdrawn subscription")
    func nothingSubscribed() {
        var summary = ReplaySummary()
        summary.messages = 6
        let text = Replay.noSubscriberMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
        #expect(text.hasPrefix("no subscriber was seen on ipc:///x: the 6 messages were dropped"), "\(text)")
    }

    @Test("subscriptions held, none matching: the message says so")
    func noneMatching() {
        var summary = ReplaySummary()
        summary.messages = 6
        summary.subscriptionsSeen = 1
        summary.subscriptionsHeld = 1
        let text = Replay.noSubscriberMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
        #expect(text.hasPrefix("no subscription on ipc:///x matched the messages' topics (1 held, to other prefixes)"), "\(text)")
    }
}

@Suite("The tools' handshake advice")
struct HandshakeAdviceTests {
    /// A handshake that failed with no detail is also what a daemon stopped or restarted mid-handshake leaves: said
    /// after the CURVE question (a crash tester, session 50; a wrong --curve-server-key gives no detail either, and
    /// needs the question first: a reviewer); a protocol failure asks only the question.
    @Test("no detail: the restart said after the CURVE question; a protocol failure: the question alone")
    func noDetailNamesARestart() {
        let endpoint = "ipc:///run/contactwatch/out"
        let closed = ZMQSocketEvent(kind: .handshakeFailedNoDetail, value: 0, endpoint: endpoint, peerAddress: nil)
        let protocolFailure = ZMQSocketEvent(kind: .handshakeFailedProtocol, value: 0, endpoint: endpoint, peerAddress: nil)
        let said = ToolCurve.none.refusalAdvice(closed, endpoint: endpoint, role: .consumer) ?? ""
        #expect(said.contains("): do the daemon and this client agree on CURVE (both or neither), and is this the daemon's "
                              + "--output endpoint? (a daemon that stopped or restarted mid-handshake ends it so too; this "
                              + "client connects again by itself)"), "\(said)")
        let question = ToolCurve.none.refusalAdvice(protocolFailure, endpoint: endpoint, role: .publisher) ?? ""
        #expect(question.contains("): do the daemon and this publisher agree on CURVE") && !question.contains("restarted"),
                "\(question)")
    }
}
