@testable import ContactWatchEngine
@testable import ContactWatchRuntime
import Foundation
import Testing
import ZeroMQ

/// `LentOutbox`: a published batch's outbox whose bodies libzmq reads in place; the loop takes it back for reuse only
/// once libzmq returned every body.
@Suite("LentOutbox: published bodies lent to libzmq")
struct LentOutboxTests {
    static func outbox(_ n: Int) -> Outbox {
        var o = Outbox()
        for i in 0..<n {
            o.append(kind: .invalidEvent, alertSequence: 0, topic: { $0 += Array("contactwatch.invalid-event".utf8) },
                     body: { $0 += Array("{\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: 40 + i))\"}".utf8) })
        }
        return o
    }

    static let probe = Array("contactwatch.probe".utf8)

    /// A PUB bound and a SUB connected over a fresh `inproc://` endpoint, joined: PUB/SUB joins asynchronously, so
    /// probes are sent until the subscriber sees one (bounded), and the probes it received are drained.
    static func joinedPair(_ ctx: ZMQContext) throws -> (pub: ZMQSocket, sub: ZMQSocket) {
        let endpoint = "inproc://lent-outbox-\(UUID().uuidString)"
        let pub = try ctx.socket(.pub)
        try pub.bind(endpoint)
        let sub = try ctx.socket(.sub)
        try sub.subscribe("contactwatch.")
        try sub.connect(endpoint)
        var joined = false
        let deadline = Date().addingTimeInterval(5)
        while !joined && Date() < deadline {
            try pub.send([probe])
            joined = try sub.receiveMessage(timeoutMilliseconds: 20) { _ in true } == true
        }
        try #require(joined)
        while try sub.receiveCopy(timeoutMilliseconds: 0) != nil {}
        return (pub, sub)
    }

    @Test("an empty outbox's loan is returned at once")
    func emptyIsReturned() {
        let lent = LentOutbox(Outbox())
        #expect(lent.loan.isReturned)
        #expect(lent.take().isEmpty)
    }

    @Test("the loan covers every message until libzmq has sent them; taken back, the outbox holds the same messages")
    func lentUntilSent() throws {
        let original = Self.outbox(50)
        let lent = LentOutbox(original)
        #expect(!lent.loan.isReturned)
        #expect(lent.loan.messagesOut == 50)

        let ctx = try ZMQContext()
        let (pub, sub) = try Self.joinedPair(ctx)

        lent.box.outbox?.forEach { _, topic, body in
            #expect((try? pub.send(topic, lending: body, from: lent.loan, dontWait: true)) == true)
        }
        var bodies: [String] = []
        for _ in 0..<50 {
            let frames = try #require(try sub.receiveCopy(timeoutMilliseconds: 5000))
            bodies.append(String(decoding: frames.last ?? [], as: UTF8.self))
        }
        #expect(bodies == original.messages.map(\.body))
        // Over inproc the receiver holds the last message itself (its frames stay in the socket's pool until
        // replaced): the loan is returned once it lets go.
        sub.close()
        let returned = Date().addingTimeInterval(5)
        while !lent.loan.isReturned && Date() < returned { Thread.sleep(forTimeInterval: 0.001) }
        try #require(lent.loan.isReturned)
        let back = lent.take()
        #expect(back.messages.map(\.body) == original.messages.map(\.body))
        #expect(lent.box.outbox == nil)
    }

    @Test("at most `limit` outboxes are on loan; a consumer that stops reading pins no more, and they come back in order")
    func boundedWhileAConsumerStalls() throws {
        var lent = LentOutboxes(limit: 2)
        #expect(LentOutboxes.defaultLimit > 0)
        #expect(lent.canLend)

        let ctx = try ZMQContext()
        let (pub, sub) = try Self.joinedPair(ctx)

        // Two batches published by lending; the subscriber reads none of them.
        let originals = [Self.outbox(3), Self.outbox(5)]
        for original in originals {
            #expect(lent.canLend)
            let one = LentOutbox(original)
            one.box.outbox?.forEach { _, topic, body in
                #expect((try? pub.send(topic, lending: body, from: one.loan, dontWait: true)) == true)
            }
            lent.append(one)
        }
        #expect(lent.count == 2)
        #expect(!lent.canLend)  // the loop now publishes by copy
        let early = lent.takeReturned()
        #expect(early == nil)  // queued in libzmq, unread: still out
        #expect(lent.count == 2)

        // The consumer goes away: libzmq drops what it held and the outboxes come back, oldest first.
        sub.close()
        let returned = Date().addingTimeInterval(5)
        // (The publisher handles the pipe's end on its next call into libzmq, as the daemon's publishes do.)
        while !(lent.queue.allSatisfy { $0.loan.isReturned }) && Date() < returned {
            try pub.send([Self.probe])
            Thread.sleep(forTimeInterval: 0.001)
        }
        let firstBack = lent.takeReturned()
        let first = try #require(firstBack)
        #expect(first.messages.map(\.body) == originals[0].messages.map(\.body))
        #expect(lent.canLend)
        let secondBack = lent.takeReturned()
        let second = try #require(secondBack)
        #expect(second.messages.map(\.body) == originals[1].messages.map(\.body))
        let none = lent.takeReturned()
        #expect(none == nil)
        #expect(lent.count == 0)
    }
}
