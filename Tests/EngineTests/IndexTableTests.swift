@testable import ContactWatchEngine
import ContactWatchTestSupport
import Testing
import HeapModule

/// The engine's small lookup tables: `IndexTable` (cases by CRN key, PDUs by code key) and the packed PDU codes
/// (`PackedCode`) its PDU keys come from.
@Suite("IndexTable and PackedCode")
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

/// `ForgetQueue` gives what a binary heap of the same items gives, in the same order: random starts over a few
/// hundred days (and far ones), cutoffs that stop inside a day, items added to a day already being taken.
@Suite("ForgetQueue against a heap")
struct ForgetQueueTests {
    @Test("same items popped in the same order as a heap's, for cutoffs inside and between days")
    func againstHeap() {
        var rng = SplitMix64(seed: 7)
        let day: Int64 = 86_400_000
        let base: Int64 = 1_767_225_600_000
        var cutoff = base - 10 * day
        // A restart's items (kept as a heap inside), then new ones (bucketed): both kinds come out in one order.
        var restart: [ForgetItem] = []
        for _ in 0..<2_000 {
            restart.append(ForgetItem(start: cutoff + Int64(rng.below(200)) * day / 3 + Int64(rng.below(1000)),
                                    contactId: UInt64(rng.below(5_000)) + 1))
        }
        var queue = ForgetQueue(restart)
        var heap = Heap(restart)
        #expect(queue.count == 2_000)
        var popped = 0
        for round in 0..<400 {
            for _ in 0..<rng.below(60) {
                // Never before the cutoff (the engine's stale check); mostly the coming days, now and then far off.
                let far = rng.below(50) == 0
                let start = cutoff + Int64(rng.below(far ? 4_000 : 30)) * day / (far ? 1 : 3) + Int64(rng.below(Int(day)))
                let item = ForgetItem(start: start, contactId: UInt64(rng.below(5_000)) + 1)
                queue.insert(item)
                heap.insert(item)
            }
            cutoff += Int64(rng.below(Int(day / 2)))
            if round % 50 == 0 { cutoff += 7 * day }
            while let min = heap.min, min.start < cutoff {
                heap.removeMin()
                #expect(queue.popMin(before: cutoff) == min)
                popped += 1
            }
            #expect(queue.popMin(before: cutoff) == nil)
            #expect(queue.count == heap.count)
        }
        #expect(popped > 5_000)
        while let min = heap.min {
            heap.removeMin()
            #expect(queue.popMin(before: .max) == min)
        }
        #expect(queue.popMin(before: .max) == nil && queue.count == 0)
    }

    /// The queue answers a cutoff at or below what it last found nothing before without looking (its floor): cutoffs
    /// that go back and forth, often below every start, items inserted anywhere (also before the floor and before the
    /// cutoff), and a queue emptied and refilled.
    @Test("the floor never hides an item: cutoffs back and forth, inserts anywhere")
    func floorAgainstHeap() {
        var rng = SplitMix64(seed: 29)
        let day: Int64 = 86_400_000
        let base: Int64 = 1_767_225_600_000
        var restart: [ForgetItem] = []
        for _ in 0..<300 {
            restart.append(ForgetItem(start: base + Int64(rng.below(60)) * day + Int64(rng.below(Int(day))),
                                      contactId: UInt64(rng.below(2_000)) + 1))
        }
        var queue = ForgetQueue(restart)
        var heap = Heap(restart)
        var popped = 0, nils = 0
        for round in 0..<6_000 {
            if rng.below(3) == 0 {
                // Anywhere in a span of ~120 days, now and then far before it.
                let far = rng.below(40) == 0
                let start = base + Int64(rng.below(120)) * day - (far ? Int64(rng.below(400)) * day : 0) + Int64(rng.below(Int(day)))
                let item = ForgetItem(start: start, contactId: UInt64(rng.below(2_000)) + 1)
                queue.insert(item)
                heap.insert(item)
            }
            let cutoff = base - 30 * day + Int64(rng.below(Int(70 * day))) + (round % 1_500 == 1_499 ? 400 * day : 0)
            // Take up to a few items before the cutoff, then ask once more.
            for _ in 0..<rng.below(4) {
                guard let min = heap.min, min.start < cutoff else { break }
                heap.removeMin()
                #expect(queue.popMin(before: cutoff) == min)
                popped += 1
            }
            let expected = heap.min.map { $0.start < cutoff } ?? false ? heap.min : nil
            let got = queue.popMin(before: cutoff)
            #expect(got == expected)
            if got == nil { nils += 1 } else { heap.removeMin(); popped += 1 }
            #expect(queue.count == heap.count)
        }
        #expect(popped > 500 && nils > 1_000, "popped \(popped), nils \(nils)")
    }
}
