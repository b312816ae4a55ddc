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

    @Test("an unsubscription never takes live below 0; the one after counts from there")
    func liveNeverNegative() {
        var ledger = SubscriberLedger()
        ledger.note(subscribe: false)
        ledger.note(subscribe: true)
        #expect(ledger.live == 1)
        ledger.noteSent()
        #expect(ledger.reached)
    }

    @Test("nothing subscribed at all: the message names no withdrawn subscription")
    func nothingSubscribed() {
        var summary = ReplaySummary()
        summary.messages = 6
        let text = Replay.noSubscriberMessage(ReplayOptions(files: [], endpoint: "ipc:///x"), summary)
        #expect(text.hasPrefix("no subscriber was seen on ipc:///x: the 6 messages were dropped"), "\(text)")
    }
}
