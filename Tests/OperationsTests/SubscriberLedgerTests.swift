@testable import ContactWatchTools
import Testing

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
        for _ in 0..<300 { ledger.noteSent() }
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
        ledger.noteSent()
        ledger.note(subscribe: false)
        #expect(ledger.reached && ledger.live == 0)
    }

    @Test("a subscription first read after messages were sent may have taken some: reached")
    func subscriptionReadAfterSends() {
        var ledger = SubscriberLedger()
        ledger.noteSent()
        #expect(!ledger.reached)
        ledger.note(subscribe: true)
        #expect(ledger.reached)
    }

    @Test("an unsubscription of a prefix nobody holds is ignored: a peer cannot talk the count down with it")
    func unheldUnsubscriptionIgnored() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: false)
        #expect(ledger.live == 0 && ledger.ignored == 1 && ledger.left == 0)
        ledger.note(subscribe: true, prefix: Array("alert.".utf8))
        ledger.note(subscribe: false, prefix: Array("probation-case.".utf8))
        ledger.note(subscribe: false, prefix: [])
        #expect(ledger.live == 1 && ledger.ignored == 3 && ledger.left == 0)
        ledger.noteSent()
        #expect(ledger.reached)
        // The one held, withdrawn twice: the second is ignored.
        ledger.note(subscribe: false, prefix: Array("alert.".utf8))
        ledger.note(subscribe: false, prefix: Array("alert.".utf8))
        #expect(ledger.live == 0 && ledger.left == 1 && ledger.ignored == 4)
    }

    @Test("one prefix held by two subscriptions stays held until both are withdrawn")
    func prefixHeldTwice() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: true, prefix: [0x61])
        ledger.note(subscribe: true, prefix: [0x61])
        ledger.note(subscribe: false, prefix: [0x61])
        #expect(ledger.live == 1)
        ledger.note(subscribe: false, prefix: [0x61])
        #expect(ledger.live == 0 && ledger.left == 2 && ledger.ignored == 0)
    }

    @Test("nothing subscribed at all: the message names no withdrawn subscription")
    func nothingSubscribed() {
        var summary = ReplaySummary()
        summary.messages = 6
        let text = Replay.noSubscriberMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
        #expect(text.hasPrefix("no subscriber was seen on ipc:///x: the 6 messages were dropped"), "\(text)")
    }

    @Test("messages sent after the last subscription was withdrawn are counted dropped, read by read")
    func droppedAfterTheLastLeft() {
        var ledger = SubscriberLedger()
        ledger.readStarts(); ledger.note(subscribe: true); ledger.readEnds()
        ledger.noteSent()
        ledger.readStarts(); ledger.note(subscribe: false); ledger.readEnds()
        for _ in 0..<3 { ledger.noteSent() }
        #expect(ledger.dropped == 0, "counted before the XPUB was read again")
        ledger.readStarts(); ledger.readEnds()
        #expect(ledger.dropped == 3 && ledger.reached)
        ledger.noteSent()
        ledger.readStarts(); ledger.readEnds()
        #expect(ledger.dropped == 4)
    }

    @Test("a read that brings a subscription leaves the messages sent before it uncounted: they may have reached it")
    func subscriptionMakesTheStretchUncertain() {
        var ledger = SubscriberLedger()
        for _ in 0..<5 { ledger.noteSent() }
        ledger.readStarts(); ledger.note(subscribe: false); ledger.note(subscribe: true); ledger.readEnds()
        #expect(ledger.dropped == 0 && ledger.reached)
        // Held now: what is sent is not counted, whatever the next read brings.
        ledger.noteSent()
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
}
