@testable import ContactWatchEngine
import ContactWatchTestThreads
import ContactWatchTestSupport
import Testing
import HeapModule

/// The engine's small lookup tables: `IndexTable` (cases by CRN key, PDUs by code key) and the packed PDU codes
/// (`PackedCode`) its PDU keys come from.
@Suite("IndexTable and PackedCode", .computing)
struct IndexTableTests {
    @Test("a code's two words are its bytes zero-padded, for every length from 0 to 16 and any alignment")
    func packedWords() {
        var bytes: [UInt8] = []
        for k in 0..<40 { bytes.append(UInt8(truncatingIfNeeded: k &* 37 &+ 0x41)) }
        bytes.withUnsafeBytes { all in
            for n in 0...16 {
                for offset in 0..<8 {
                    let b = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                    var expected: (UInt64, UInt64) = (0, 0)
                    withUnsafeMutableBytes(of: &expected) { w in
                        for i in 0..<n { w[i] = b[i] }
                    }
                    let code = PackedCode(b)
                    #expect(code.count == n)
                    #expect(code.w0 == expected.0 && code.w1 == expected.1, "length \(n) at offset \(offset)")
                }
            }
            #expect(PackedCode(UnsafeRawBufferPointer(rebasing: all[0..<17])).count == -1)
        }
    }

    @Test("keys found with their values through growth, absent keys not found (32- and 64-bit keys)")
    func lookups() {
        func check<K: FixedWidthInteger & UnsignedInteger>(_: K.Type) {
            var t = IndexTable<K>()
            // Keys 0, then a spread: 0 is a key like any other (the empty mark is the value).
            let keys: [K] = (0..<5_000).map { K(truncatingIfNeeded: UInt64($0) &* 2_654_435_761 % 25_999_999) }
            var seen: [K: Int32] = [:]
            for (i, k) in keys.enumerated() where seen[k] == nil {
                t.insert(k, Int32(i))
                seen[k] = Int32(i)
            }
            #expect(t.count == seen.count)
            for (k, v) in seen { #expect(t.find(k) == v) }
            for k in [K(25_999_999), K(26_000_001)] where seen[k] == nil { #expect(t.find(k) == nil) }
        }
        check(UInt32.self)
        check(UInt64.self)
    }
}

/// `ForgetQueue` against a model of what the retention must forget: the engine's loop (pop, skip an item whose
/// contact is gone or starts elsewhere now, forget the rest) must forget exactly the contacts that start before each
/// cutoff, in (start, contactId) order — with contacts set anywhere (before, inside and beyond the queue's window,
/// before the cutoff), starts moved by later versions, cutoffs that stop inside a day, go back, or jump far ahead, a
/// restart's queue prepared from a table, records in the table's side map, and refills that hold a bounded share.
@Suite("ForgetQueue against a model", .computing)
struct ForgetQueueTests {
    static let day: Int64 = 86_400_000
    static let base: Int64 = 1_767_225_600_000

    /// A table, the model of its starts, and a queue, kept together as the engine keeps them.
    struct Harness {
        var table = ContactTable()
        var model: [UInt64: Int64] = [:]
        /// Every start each contact had, by (start, id): the model's order (an entry is current while `model` agrees).
        var modelHeap = Heap<ForgetItem>()
        var queue = ForgetQueue()
        var forgotten = 0

        /// Sets contact `id`'s start (a new contact or a later version), as `Engine.processContact` does: the record
        /// first, then the queue when the start changed. A version beyond 2^16 goes to the table's side map.
        mutating func set(_ id: UInt64, start: Int64, aside: Bool = false) {
            let previous = table[id]?.contactStart
            table.set(ContactRecord(caseIndex: 1, actionId: 0, version: aside ? 1 << 20 : 1, contactStart: start,
                                    actionTime: 0, pduIndex: -1, contributionDate: Int32(start / ForgetQueueTests.day),
                                    flags: []), forKey: id)
            model[id] = start
            if previous != start {
                queue.insert(ForgetItem(start: start, contactId: id))
                modelHeap.insert(ForgetItem(start: start, contactId: id))
            }
        }

        /// `Engine.forgetExpired` at `cutoff`, against the model's answer.
        mutating func forget(before cutoff: Int64) {
            var expected: [ForgetItem] = []
            while let m = modelHeap.min, m.start < cutoff {
                modelHeap.removeMin()
                if model[m.contactId] == m.start {
                    expected.append(m)
                    model[m.contactId] = nil
                }
            }
            var got: [ForgetItem] = []
            while !queue.nothingBefore(cutoff) {
                while let first = queue.popMin(before: cutoff) {
                    guard let rec = table[first.contactId], rec.contactStart == first.start else { continue }
                    table.removeValue(forKey: first.contactId)
                    got.append(first)
                }
                guard queue.needsRefill(before: cutoff) else { break }
                queue.refill(cutoff: cutoff, from: table)
                #expect(!queue.needsRefill(before: cutoff))
            }
            #expect(got == expected, "cutoff \(cutoff): forgot \(got.count), expected \(expected.count)")
            forgotten += expected.count
            #expect(table.count == model.count)
        }
    }

    @Test("the contacts before each cutoff forgotten in (start, id) order: sets anywhere, moved starts, cutoffs inside days")
    func againstModel() {
        var rng = SplitMix64(seed: 7)
        var h = Harness()
        var cutoff = Self.base - 10 * Self.day
        var nextId: UInt64 = 1
        for round in 0..<600 {
            for _ in 0..<rng.below(80) {
                // Mostly new contacts over the coming ~150 days; some later versions of known ones (a start moved a
                // little or far, or the same); now and then a start far off, or before the cutoff.
                let r = rng.below(100)
                let start = cutoff + Int64(rng.below(r < 2 ? 4_000 : 150)) * Self.day / (r < 2 ? 1 : 3)
                    + Int64(rng.below(Int(Self.day))) - (r == 99 ? 3 * Self.day : 0)
                if r < 25 && nextId > 1 {
                    let id = UInt64(rng.below(Int(nextId - 1))) + 1
                    guard let old = h.model[id] else { continue }
                    h.set(id, start: r < 10 ? old : (r < 18 ? old + Int64(rng.below(Int(Self.day))) : start), aside: r == 24)
                } else {
                    h.set(nextId, start: start, aside: r == 50)
                    nextId += 1
                }
            }
            cutoff += Int64(rng.below(Int(Self.day / 2)))
            if round % 50 == 0 { cutoff += 7 * Self.day }
            // Now and then a cutoff that goes back a little (the queue must find nothing new there).
            h.forget(before: round % 37 == 5 ? cutoff - Self.day : cutoff)
        }
        #expect(h.forgotten > 5_000 && h.model.count > 1_000, "forgot \(h.forgotten), remembered \(h.model.count)")
        h.forget(before: .max)
        #expect(h.model.isEmpty && h.queue.count == 0)
    }

    @Test("a restart's queue: prepared from the table, holding a bounded share of it, then as the engine runs")
    func prepared() {
        var rng = SplitMix64(seed: 29)
        var h = Harness()
        // 40,000 contacts over 400 days (some in the side map, some already before the cutoff), then the queue as an
        // engine's start makes it.
        for id in 1...40_000 {
            h.set(UInt64(id), start: Self.base + Int64(rng.below(400 * Int(Self.day))) - 5 * Self.day, aside: id % 97 == 0)
        }
        var cutoff = Self.base
        h.queue = ForgetQueue()
        h.queue.prepare(cutoff: cutoff, from: h.table)
        // Not a copy of every contact: the due ones and about an eighth past them.
        #expect(h.queue.count > 0 && h.queue.count < 40_000 / 4, "holds \(h.queue.count)")
        #expect(h.queue.end > cutoff)
        for round in 0..<3_000 {
            if rng.below(3) == 0 {
                h.set(UInt64(40_000 + round), start: cutoff + Int64(rng.below(Int(500 * Self.day))) - Self.day)
            }
            cutoff += Int64(rng.below(Int(Self.day / 4)))
            h.forget(before: cutoff)
            #expect(h.queue.count < 40_000 / 4 + 1_000)
        }
        #expect(h.forgotten > 10_000, "forgot \(h.forgotten)")
        // A cutoff far ahead forgets everything; an empty table's queue then holds nothing.
        h.forget(before: cutoff + 1_000 * Self.day)
        #expect(h.model.isEmpty && h.queue.count == 0)
        h.queue.prepare(cutoff: cutoff, from: h.table)
        #expect(h.queue.count == 0 && h.queue.nothingBefore(cutoff))
    }

    @Test("an empty engine's queue: contacts set after its first refill are not all held")
    func emptyStart() {
        var h = Harness()
        let cutoff = Self.base
        h.forget(before: cutoff)
        // A stream's contacts start ~400 days after the cutoff: none of them needs an item yet.
        for id in 1...5_000 { h.set(UInt64(id), start: cutoff + 400 * Self.day + Int64(id) * 60_000) }
        #expect(h.queue.count == 0)
        h.forget(before: cutoff + 401 * Self.day)
        #expect(h.forgotten > 0)
    }
}
