import ContactWatchCommon
import ContactWatchEngine
import Foundation
import Synchronization

/// The contacts' half of a restart's load, on a second thread. The loading thread steps SQLite and decodes the cases;
/// each case's packed contacts (copied: SQLite's bytes last only until the next step) go here in chunks, and this
/// thread decodes them, checks their PDU, stages them (`ContactTable.Filling`) and writes the contact table. A
/// restart has the machine to itself, and the two halves cost about the same.
///
/// It only ever says "the table" or "refused": a store it refuses (a contact it cannot decode, with a missing PDU, in
/// two cases) is loaded again one contact at a time on the loading thread (`StateStore.load`), which names the first
/// fault in the store's order exactly as before. Chunks wait in a queue of at most `maxQueued`.
final class ContactLoader: Sendable {
    /// Cases' packed contacts back to back, each case's bytes ending at its `ends` entry.
    struct Chunk: Sendable {
        var bytes: [UInt8] = []
        var cases: [UInt32] = []
        var ends: [Int] = []

        /// An empty chunk with room for `chunkBytes` of contacts.
        static func reserved() -> Chunk {
            var c = Chunk()
            c.bytes.reserveCapacity(ContactLoader.chunkBytes + 4096)
            c.cases.reserveCapacity(1024)
            c.ends.reserveCapacity(1024)
            return c
        }

        @inline(__always) mutating func append(caseIndex: UInt32, _ packed: UnsafeRawBufferPointer) {
            bytes.append(contentsOf: packed)
            cases.append(caseIndex)
            ends.append(bytes.count)
        }
    }

    static let chunkBytes = 64 * 1024
    static let maxQueued = 8

    private let queue = Mutex<[Chunk]>([])
    /// Signalled once per chunk queued, then once by `finish`.
    private let ready = DispatchSemaphore(value: 0)
    /// Room for a chunk in the queue.
    private let room = DispatchSemaphore(value: ContactLoader.maxQueued)
    private let done = DispatchSemaphore(value: 0)
    private let result = Mutex<ContactTable?>(nil)

    /// Starts the thread, which sizes the table for `expectedCount` contacts (PDU indexes below `pduCount` are valid).
    /// A thread the system refuses throws (`SystemThread`; the load then decodes the contacts on its own thread, as
    /// after any fault of this one's): `Thread.start()` said nothing, and `send` waited for ever.
    init(expectedCount: Int, pduCount: Int32) throws(SystemThread.Refused) {
        try SystemThread.start(name: "cw-load") { [self] in run(expectedCount: expectedCount, pduCount: pduCount) }
    }

    /// Queues a chunk (waits while `maxQueued` are waiting).
    func send(_ chunk: consuming Chunk) {
        room.wait()
        let c = chunk
        queue.withLock { $0.append(c) }
        ready.signal()
    }

    /// No more chunks; waits for the thread and returns the table, nil when refused. Call exactly once.
    func finish() -> ContactTable? {
        ready.signal()
        done.wait()
        return result.withLock { r in
            let t = r
            r = nil
            return t
        }
    }

    /// The next chunk, nil after `finish` (each signal of `ready` is a chunk queued before it, or the finish after
    /// every chunk).
    private func next() -> Chunk? {
        ready.wait()
        let c = queue.withLock { q in q.isEmpty ? nil : q.removeFirst() }
        if c != nil { room.signal() }
        return c
    }

    private struct Refused: Error {}

    private func run(expectedCount: Int, pduCount: Int32) {
        var filling = ContactTable.Filling(expectedCount: expectedCount)
        var refused = false
        while let chunk = next() {
            if refused { continue }
            do {
                try chunk.bytes.withUnsafeBytes { all throws in
                    var start = 0
                    for k in chunk.cases.indices {
                        let end = chunk.ends[k]
                        try RecordCodec.decodeContacts(caseIndex: chunk.cases[k], UnsafeRawBufferPointer(rebasing: all[start..<end])) {
                            id, rec throws in
                            guard rec.pduIndex >= -1, rec.pduIndex < pduCount else { throw Refused() }
                            filling.add(rec, forKey: id)
                        }
                        start = end
                    }
                }
            } catch {
                refused = true
            }
        }
        let table = refused ? nil : ContactTable(filling: filling)
        result.withLock { $0 = table }
        done.signal()
    }
}
