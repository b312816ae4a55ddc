@testable import ContactWatchEngine
@testable import ContactWatchRuntime
import ContactWatchStore
import Testing

/// The pages a burst's batches wrote into the outboxes kept for reuse are given back once the daemon is idle: an
/// outbox is recycled with its capacity (its reserved room is address space, resident only once written), so each
/// kept the largest batch it had carried, for good — about 100 of the ~120 MB a daemon kept after three bursts (a
/// memory investigation, session 38).
@Suite("Idle pages: the outboxes give back what a burst wrote")
struct IdlePagesTests {
    /// An outbox with `count` alert messages of ~1 KB.
    static func fill(_ outbox: inout Outbox, count: Int, from first: UInt64 = 1) {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 1_000)
        for s in first..<(first + UInt64(count)) {
            outbox.append(kind: .alertRaised, alertSequence: s, alertId: AlertID(high: s, low: s),
                          topic: { $0 += Array("alert.raised.x".utf8) }, body: { $0 += body })
        }
    }

    @Test("an emptied outbox gives back the pages its batch wrote (mincore), keeps its room, and carries the next batch intact")
    func outboxReleasesItsPages() {
        var outbox = Outbox(reservingBytes: 16 << 20, messages: 1 << 14)
        Self.fill(&outbox, count: 8_000)
        let written = outbox.residentBytes()
        #expect(written >= 8_000_000, "resident \(written) bytes after 8 MB written")
        // Not while it holds messages: they would read as zeros.
        #expect(outbox.releasePages() == 0)
        #expect(outbox.residentBytes() == written)
        outbox.removeAll()
        #expect(outbox.residentBytes() >= 8_000_000, "the batch's pages stay resident after removeAll")
        let advised = outbox.releasePages()
        #expect(advised >= 16 << 20 - 8192, "advised \(advised) bytes")
        #expect(outbox.residentBytes() < 1 << 16, "resident \(outbox.residentBytes()) bytes after the release")
        // The next batch is written and read back whole.
        Self.fill(&outbox, count: 500, from: 10_001)
        var sequences: [UInt64] = []
        var bodiesIntact = true
        outbox.forEach { entry, _, body in
            sequences.append(entry.alertSequence)
            bodiesIntact = bodiesIntact && body.count == 1_000 && body.allSatisfy { $0 == UInt8(ascii: "x") }
        }
        #expect(sequences == Array(10_001...10_500) && bodiesIntact)
    }

    @Test("the commit pipeline gives back its outboxes' pages only when idle, only after a batch of 4 MB or more, and once")
    func pipelineReleasesOnlyWhenIdle() {
        let now = ContinuousClock.now
        var machine = CommitPipeline(limits: CommitPipeline.Limits(maxEvents: 1_000, interval: .milliseconds(100), hardLimit: 200_000),
                                     committedSequence: 0, publishedThrough: 0, unpublished: [], now: now)
        #expect(!machine.pagesWritten)
        // A small batch (2 MB): not worth a release.
        Self.fill(&machine.outbox, count: 2_000)
        _ = machine.eventProcessed(at: now)
        _ = machine.submit(alertSequence: 2_000)
        if var batch = machine.batchDurable() { machine.recycle(&batch) }
        #expect(machine.isIdle && !machine.pagesWritten)
        // A burst's batch (6 MB).
        Self.fill(&machine.outbox, count: 6_000, from: 2_001)
        _ = machine.eventProcessed(at: now)
        // Not idle: events in hand.
        #expect(machine.releasePages() == 0)
        _ = machine.submit(alertSequence: 8_000)
        #expect(machine.pagesWritten)
        // Not idle: a batch with the writer.
        #expect(machine.releasePages() == 0 && machine.pagesWritten)
        if var batch = machine.batchDurable() { machine.recycle(&batch) }
        #expect(machine.isIdle)
        #expect(machine.releasePages() > 0)
        #expect(!machine.pagesWritten)
    }
}
