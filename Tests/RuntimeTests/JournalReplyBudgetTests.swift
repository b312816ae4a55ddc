@testable import ContactWatchRuntime
import Foundation
import Testing

/// `JournalServer.ReplyBudget`: many journal clients share the bytes of the replies queued to them, so clients that
/// send requests and never read cost the daemon a few budgets' worth of memory however many they are (200 of them
/// used to hold 490 MB: four full replies each).
@Suite("Journal replies share a budget among the clients asking")
struct JournalReplyBudgetTests {
    let start = ContinuousClock.now
    let limit = 1 << 20
    static func id(_ k: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(k).bigEndian) { Array($0) } }

    @Test("up to four clients asking at once get full replies; a fifth shares; a thousand get the floor")
    func sharedByClients() {
        var budget = JournalServer.ReplyBudget(total: 16 * limit)
        for k in 0..<4 { #expect(budget.replyBytes(for: Self.id(k), at: start, limit: limit) == limit) }
        // The same client again is not a new one.
        #expect(budget.replyBytes(for: Self.id(0), at: start, limit: limit) == limit)
        #expect(budget.replyBytes(for: Self.id(4), at: start, limit: limit) == 16 * limit / (5 * 4))
        for k in 5..<999 { _ = budget.replyBytes(for: Self.id(k), at: start, limit: limit) }
        #expect(budget.replyBytes(for: Self.id(999), at: start, limit: limit) == JournalServer.ReplyBudget.floorBytes)
        #expect(budget.clients == 1000)
        // A configured limit below the share is kept.
        var small = JournalServer.ReplyBudget(total: 16 * 4096)
        #expect(small.replyBytes(for: Self.id(0), at: start, limit: 4096) == 4096)
    }

    @Test("n clients arriving one after another, each queued sendQueueReplies replies: the total stays within total × (1 + ln n), where full replies would be n × 4 × limit")
    func totalGrowsWithTheLogarithm() {
        for n in [10, 200, 4000] {
            var budget = JournalServer.ReplyBudget(total: 16 * limit)
            var queued = 0
            for k in 0..<n {
                for _ in 0..<Int(JournalServer.sendQueueReplies) {
                    queued += budget.replyBytes(for: Self.id(k), at: start + .milliseconds(k), limit: limit)
                }
            }
            let bound = Double(16 * limit) * (1 + log(Double(n))) + Double(n * 4 * JournalServer.ReplyBudget.floorBytes)
            #expect(Double(queued) <= bound, "\(n) clients: \(queued) bytes queued, bound \(Int(bound))")
            if n >= 200 { #expect(queued < n * 4 * limit / 4, "\(n) clients: \(queued) bytes") }
        }
    }

    @Test("clients that stopped asking are forgotten after the window (looked at once a second): full replies again, and expire says how many went")
    func forgottenAfterTheWindow() {
        var budget = JournalServer.ReplyBudget(total: 16 * limit)
        for k in 0..<100 { _ = budget.replyBytes(for: Self.id(k), at: start, limit: limit) }
        #expect(budget.expire(at: start + .milliseconds(9_500)) == 0)
        #expect(budget.clients == 100)
        // Past the window, but within a second of the last look: not looked at again yet.
        #expect(budget.expire(at: start + .milliseconds(10_200)) == 0)
        #expect(budget.clients == 100)
        #expect(budget.expire(at: start + .milliseconds(10_600)) == 100)
        #expect(budget.clients == 0)
        #expect(budget.replyBytes(for: Self.id(7), at: start + .seconds(11), limit: limit) == limit)
    }

    @Test("past capacity new clients are counted without an entry until the next look")
    func pastCapacity() {
        var budget = JournalServer.ReplyBudget(total: 16 * limit)
        let cap = JournalServer.ReplyBudget.capacity
        for k in 0..<(cap + 10) { _ = budget.replyBytes(for: Self.id(k), at: start, limit: limit) }
        #expect(budget.clients == cap + 10)
        #expect(budget.expire(at: start + .seconds(2)) == 10)
        #expect(budget.clients == cap)
    }
}
