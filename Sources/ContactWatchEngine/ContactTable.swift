// The engine's remembered contacts, by contactId: the largest part of its state (about ten per case). A record is
// packed into 24 bytes inside an open-addressing table, instead of a 48-byte `ContactRecord` beside its key in a
// 56-byte slot; records the packed form cannot hold exactly live in a small side table. Exact either way: a
// `ContactRecord` read back is the one stored.

import CPrefetch
#if canImport(Glibc)
import Glibc
#endif

/// A table of `ContactRecord`s keyed by contactId (see the file's comment). Iteration order is unspecified.
///
/// Packed form (three 64-bit words, one 24-byte slot; a slot whose first word is 0 is empty, since the id is never 0
/// there):
/// - w0: contactId (bits 0–52) | pduIndex + 1 (53–63)
/// - w1: contactStart, signed (0–43) | caseIndex (44–63)
/// - w2: version (0–15) | flags (16–21) | contributionDate − the UTC day of contactStart + 1 (22–23) | actionId (24–31)
///   | action (32–63)
/// The action (32 bits, only when actionId ≠ 0; actionTime is then contactStart + the difference): bit 0 the unit
/// (0 milliseconds, 1 seconds), bits 1–31 the signed difference in that unit. A record fits when the id is 1..2^53−1
/// (events.md: every integer is), the version < 2^16 (a contact's versions count its updates: 1 to 4 in the bench
/// streams), the start within ±2^43 ms of 1970 (the years 1691–2248), the case index below 2^20 (1,048,576 cases,
/// four times the caseload of England and Wales), the PDU index below 2046, the action id below 256 (the known
/// action codes' ids; an unknown code's hashed id does not fit), the contribution date the UTC day of the start or
/// one day either side (the engine's is the start's local date), the flags six bits, no action time without an
/// action (the engine never records one), and the action time within ±12 days of the start in milliseconds or ±34
/// years in whole seconds (event times are mostly whole seconds). Anything else goes to `overflow`, a plain `IDMap`
/// (a key is in exactly one of the two): exact, at ~100 bytes a record instead of 24 (the 32-byte form of the
/// sixth and seventh sessions held wider versions, starts, cases, action ids and times, for 8 bytes more a record).
///
/// The table grows when more than 4/5 full (doubling up to 2^20 slots, by half after that); `reserveCapacity` sizes
/// it to 3/4. Slots are any number (not a
/// power of two): the home slot is the high word of the key's Fibonacci hash times the slot count.
package struct ContactTable: Sendable {
    struct Slot: Sendable, Equatable {
        var w0: UInt64 = 0
        var w1: UInt64 = 0
        var w2: UInt64 = 0
    }

    private var slots: [Slot] = []
    private var packedCount = 0
    /// Records the packed form cannot hold.
    private var overflow = IDMap<ContactRecord>()
    /// One bit per group of ids (2^15 groups, by the id's Fibonacci hash) for every id ever put in `overflow`: a clear
    /// bit says the id is not there without probing it. Each new contact asks (`self[id]`, then `set`), and in a
    /// caseload where some records overflow (the big stream's ~1,700 contacts with an unknown action code) each probe
    /// of the side table was a cache miss. Empty until the first record overflows; bits are never cleared.
    private var overflowBits: [UInt64] = []

    package init() {}

    package init(minimumCapacity n: Int) { reserveCapacity(n) }

    package var count: Int { packedCount &+ overflow.count }
    package var isEmpty: Bool { count == 0 }
    /// Slots allocated.
    package var slotCount: Int { slots.count }
    /// Bytes of one slot.
    package static var slotBytes: Int { MemoryLayout<Slot>.stride }
    /// Records kept in the side table (tests).
    package var overflowCount: Int { overflow.count }

    /// Bytes of the table's storage (its slots, the side table, with their headers and malloc's overhead).
    package var footprint: Int {
        (slots.isEmpty ? 0 : slots.count * MemoryLayout<Slot>.stride + 32 + 16) + overflow.footprint
            + (overflowBits.isEmpty ? 0 : overflowBits.count * 8 + 32 + 16)
    }

    /// The bit of `id` in `overflowBits`: its word and mask.
    @inline(__always) private static func overflowBit(_ id: UInt64) -> (word: Int, mask: UInt64) {
        let h = (id &* 0x9E37_79B9_7F4A_7C15) >> 49
        return (Int(truncatingIfNeeded: h >> 6), 1 << (h & 63))
    }

    /// Whether `id` may be in `overflow` (false: it is not).
    @inline(__always) private func mayOverflow(_ id: UInt64) -> Bool {
        overflowBits.withUnsafeBufferPointer { b in
            guard b.count != 0 else { return false }
            let (w, m) = Self.overflowBit(id)
            return b[w] & m != 0
        }
    }

    /// Marks `id` as (possibly) in `overflow`; called before every insertion there.
    private mutating func noteOverflow(_ id: UInt64) {
        if overflowBits.isEmpty { overflowBits = Array(repeating: 0, count: 1 << 9) }
        let (w, m) = Self.overflowBit(id)
        overflowBits[w] |= m
    }

    // MARK: Packing

    static let idMask: UInt64 = (1 << 53) - 1
    static let versionLimit: UInt64 = 1 << 16
    static let startLimit: Int64 = 1 << 43
    static let startMask: UInt64 = (1 << 44) - 1
    static let caseLimit: UInt32 = 1 << 20
    static let actionIdLimit: UInt32 = 1 << 8
    static let deltaLimit: Int64 = 1 << 30
    static let deltaMask: UInt64 = (1 << 31) - 1

    /// The packed form of `id`'s record, nil when it does not fit (see the type's comment).
    @inline(__always) static func pack(_ id: UInt64, _ r: ContactRecord) -> Slot? {
        guard id != 0, id <= idMask, r.version < versionLimit, r.flags.rawValue < 64,
              r.contactStart >= -startLimit, r.contactStart < startLimit, r.caseIndex < caseLimit, r.pduIndex >= -1,
              r.pduIndex < 2046, r.actionId < actionIdLimit else { return nil }
        let dayTag = Int64(r.contributionDate) - floorDays(r.contactStart) + 1
        guard dayTag >= 0 && dayTag <= 2 else { return nil }
        var action: UInt64 = 0
        if r.actionId == 0 {
            guard r.actionTime == 0 else { return nil }
        } else {
            let (d, overflowed) = r.actionTime.subtractingReportingOverflow(r.contactStart)
            guard !overflowed else { return nil }
            if d >= -deltaLimit && d < deltaLimit {
                action = (UInt64(bitPattern: d) & deltaMask) << 1
            } else {
                let (s, ms) = d.quotientAndRemainder(dividingBy: 1000)
                guard ms == 0, s >= -deltaLimit, s < deltaLimit else { return nil }
                action = (UInt64(bitPattern: s) & deltaMask) << 1 | 1
            }
        }
        return Slot(w0: id | UInt64(Int64(r.pduIndex) + 1) << 53,
                    w1: UInt64(bitPattern: r.contactStart) & startMask | UInt64(r.caseIndex) << 44,
                    w2: r.version | UInt64(r.flags.rawValue) << 16 | UInt64(dayTag) << 22 | UInt64(r.actionId) << 24
                        | action << 32)
    }

    /// The contactStart of a packed record.
    @inline(__always) static func start(_ s: Slot) -> Int64 { Int64(bitPattern: s.w1 << 20) >> 20 }

    @inline(__always) static func unpack(_ s: Slot) -> ContactRecord {
        let start = Self.start(s)
        let actionId = UInt32(truncatingIfNeeded: s.w2 >> 24 & 0xFF)
        var actionTime: Int64 = 0
        if actionId != 0 {
            let action = Int32(bitPattern: UInt32(truncatingIfNeeded: s.w2 >> 32))
            let d = Int64(action >> 1)
            actionTime = start &+ (action & 1 == 0 ? d : d &* 1000)
        }
        return ContactRecord(caseIndex: UInt32(truncatingIfNeeded: s.w1 >> 44), actionId: actionId, version: s.w2 & 0xFFFF,
                             contactStart: start, actionTime: actionTime,
                             pduIndex: Int32(truncatingIfNeeded: Int64(s.w0 >> 53) - 1),
                             contributionDate: Int32(truncatingIfNeeded: floorDays(start) + Int64((s.w2 >> 22) & 3) - 1),
                             flags: ContactRecord.Flags(rawValue: UInt8(truncatingIfNeeded: (s.w2 >> 16) & 63)))
    }

    // MARK: Slots

    @inline(__always) static func home(_ id: UInt64, _ n: Int) -> Int {
        Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15).multipliedFullWidth(by: UInt64(n)).high)
    }

    /// The empty slot where `id` goes (linear probing from its home), or nil when a slot already holds `id`. The table
    /// must have an empty slot (`roomForOne`, or a table sized for its records).
    @inline(__always) static func freeSlot(for id: UInt64, in s: UnsafeMutableBufferPointer<Slot>) -> Int? {
        let n = s.count
        var k = home(id, n)
        while true {
            let w = s[k].w0
            if w == 0 { return k }
            if w & idMask == id { return nil }
            k &+= 1
            if k == n { k = 0 }
        }
    }

    /// The slot holding `id` (found), else the empty slot where it would go. The table must have slots, and `id` fit.
    @inline(__always) private func probe(_ id: UInt64) -> (slot: Int, found: Bool) {
        slots.withUnsafeBufferPointer { s in
            let n = s.count
            var k = Self.home(id, n)
            while true {
                let w = s[k].w0
                if w == 0 { return (k, false) }
                if w & Self.idMask == id { return (k, true) }
                k &+= 1
                if k == n { k = 0 }
            }
        }
    }

    /// Starts loading the cache line of `id`'s home slot, where its lookup will begin (a hint; `Engine.process` gives it
    /// while the event is decoded, so that the lookup after it does not wait for memory). Changes nothing; `mutating`
    /// so that the engine's call reaches its state in place (a non-mutating call on a class's stored struct copied it:
    /// a retain and release of every array in it).
    @inline(__always) package mutating func prefetch(_ id: UInt64) {
        slots.withUnsafeBufferPointer { s in
            guard let base = s.baseAddress else { return }
            cw_prefetch(base + Self.home(id, s.count))
        }
    }

    @inline(__always) private func packedSlot(of id: UInt64) -> Int? {
        guard packedCount > 0, id != 0, id <= Self.idMask else { return nil }
        let (k, found) = probe(id)
        return found ? k : nil
    }

    /// Makes room for one more packed record.
    @inline(__always) private mutating func roomForOne() {
        if _slowPath((packedCount &+ 1) &* 5 > slots.count &* 4) {
            // Doubling while small (fewer rehashes), by half once large (less memory after a growth).
            resize(Swift.max(64, slots.count < 1 << 20 ? slots.count * 2 : slots.count + slots.count / 2))
        }
    }

    @inline(never) private mutating func resize(_ n: Int) {
        let old = slots
        slots = Self.emptySlots(n)
        slots.withUnsafeMutableBufferPointer { s in
            for e in old where e.w0 != 0 {
                var k = Self.home(e.w0 & Self.idMask, n)
                while s[k].w0 != 0 {
                    k &+= 1
                    if k == n { k = 0 }
                }
                s[k] = e
            }
        }
    }

    /// `n` empty slots, in memory the kernel is asked to back with huge pages where it can (Linux's transparent huge
    /// pages, `MADV_HUGEPAGE`, before any slot is written). The table is read at random, one slot an event: in 4 KiB
    /// pages a table of a few MB (about 6 on the bench's stream, 70 for 240,000 cases) spans more pages than the TLB
    /// holds, so most lookups also walked the page tables (twice over in a virtual machine), and its growth faulted
    /// its pages in one by one. A hint only: the slots are the same, and without huge pages nothing changes.
    static func emptySlots(_ n: Int) -> [Slot] {
        [Slot](unsafeUninitializedCapacity: n) { buffer, initialized in
            if let base = buffer.baseAddress {
                adviseHugePages(UnsafeMutableRawPointer(base), buffer.count * MemoryLayout<Slot>.stride)
            }
            buffer.initialize(repeating: Slot())
            initialized = n
        }
    }

    /// Asks for huge pages on the 2 MiB-aligned part of `count` bytes at `p` (nothing when there is none, or off Linux).
    static func adviseHugePages(_ p: UnsafeMutableRawPointer, _ count: Int) {
        #if os(Linux)
        let huge = 2 << 20
        let start = (UInt(bitPattern: p) &+ UInt(huge - 1)) & ~UInt(huge - 1)
        let end = (UInt(bitPattern: p) &+ UInt(count)) & ~UInt(huge - 1)
        guard end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(aligned, Int(end - start), MADV_HUGEPAGE)
        #endif
    }

    /// Empties slot `hole`, pulling later slots of its run back (backward-shift deletion: no tombstones).
    private mutating func removeSlot(_ hole: Int) {
        slots.withUnsafeMutableBufferPointer { s in
            let n = s.count
            var hole = hole, j = hole
            while true {
                j &+= 1
                if j == n { j = 0 }
                let w = s[j].w0
                if w == 0 { break }
                let h = Self.home(w & Self.idMask, n)
                // The entry at j stays when its home lies cyclically in (hole, j].
                let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
                if stays { continue }
                s[hole] = s[j]
                hole = j
            }
            s[hole] = Slot()
        }
        packedCount &-= 1
    }

    // MARK: Access

    package func contains(_ id: UInt64) -> Bool { self[id] != nil }

    /// The record of contact `id`, nil when there is none (`self[id]`: a non-generic entry point for the store).
    package func record(_ id: UInt64) -> ContactRecord? { self[id] }

    package subscript(id: UInt64) -> ContactRecord? {
        get {
            if let k = packedSlot(of: id) { return Self.unpack(slots[k]) }
            return mayOverflow(id) ? overflow[id] : nil
        }
        set {
            if let v = newValue { set(v, forKey: id) } else { removeValue(forKey: id) }
        }
    }

    /// Sets the record of `id`.
    package mutating func set(_ r: ContactRecord, forKey id: UInt64) {
        if let p = Self.pack(id, r) {
            roomForOne()
            let (k, found) = probe(id)
            slots[k] = p
            if !found {
                packedCount &+= 1
                if mayOverflow(id) { overflow.removeValue(forKey: id) }
            }
        } else {
            if let k = packedSlot(of: id) { removeSlot(k) }
            noteOverflow(id)
            overflow.updateValue(r, forKey: id)
        }
    }

    /// Sets the record of `id`; returns the one it replaced.
    @discardableResult
    package mutating func updateValue(_ r: ContactRecord, forKey id: UInt64) -> ContactRecord? {
        let old = self[id]
        set(r, forKey: id)
        return old
    }

    /// Adds the record of `id` when there is none; returns whether it was added (nothing is replaced).
    package mutating func insertNew(_ r: ContactRecord, forKey id: UInt64) -> Bool {
        if let p = Self.pack(id, r) {
            if mayOverflow(id) && overflow.contains(id) { return false }
            roomForOne()
            let added: Bool = slots.withUnsafeMutableBufferPointer { s in
                guard let k = Self.freeSlot(for: id, in: s) else { return false }
                s[k] = p
                return true
            }
            if added { packedCount &+= 1 }
            return added
        }
        if packedSlot(of: id) != nil { return false }
        noteOverflow(id)
        return overflow.insertKey(id, r)
    }

    @discardableResult
    package mutating func removeValue(forKey id: UInt64) -> ContactRecord? {
        if let k = packedSlot(of: id) {
            let old = Self.unpack(slots[k])
            removeSlot(k)
            return old
        }
        return mayOverflow(id) ? overflow.removeValue(forKey: id) : nil
    }

    package mutating func removeAll() { self = ContactTable() }

    /// Sizes the table for `n` records at 3/4 full (never shrinks it).
    package mutating func reserveCapacity(_ n: Int) {
        let size = Swift.max(16, n + n / 3 + 1)
        if size > slots.count { resize(size) }
    }

    // MARK: Bulk filling (a restart)

    /// Records staged for `init(filling:)`: packed, by the region of the table their home slot lies in.
    ///
    /// A restart inserts millions of records whose home slots lie at random in a table of ~100 MB: one at a time, each
    /// insert waits for a cache line (and a page walk) of its own, which was half of a 240,000-case load's wall time.
    /// Staged by region (8,192 slots, 192 KiB) and written region after region, the writes stay inside one region's
    /// pages at a time. The table built is an ordinary one — the same records, each reachable from its home slot by
    /// the same linear probing —, only its slots' order within a run may differ from one built an insert at a time
    /// (no reader depends on that order: the iteration order is unspecified).
    ///
    /// The staging is one array (each region's records from `region × capacity`), not an array per region: at ~65 MB
    /// for 240,000 cases it is above the largest size malloc ever serves from its heaps (32 MiB), so it is mapped
    /// for itself and its release gives it back to the system. Arrays of ~200 KB per region were mapped or not
    /// depending on malloc's history (its mapping threshold rises as mapped blocks are freed); once in a thread's
    /// heap, the whole staging stayed in the resident set after the load, and `malloc_trim` does not reach there.
    package struct Filling: Sendable {
        static let regionShift = 13
        /// The table's slot count, fixed from the expected number of records (as `reserveCapacity` would).
        let slotCount: Int
        /// The table's slots, empty (allocated and zeroed here: on a loader's thread, that is done before the records
        /// come).
        var slots: [Slot]
        /// The regions' staged records: region r's are `staging[r × capacity ..< r × capacity + counts[r]]`.
        var staging: [Slot]
        /// Slots of staging per region: a little beyond the expected share of each.
        let capacity: Int
        var counts: [Int]
        /// Records beyond their region's `capacity` (more records than expected, or an unlucky region).
        var spill: [Slot] = []
        /// Records the packed form cannot hold, in the order added.
        var aside: [(id: UInt64, record: ContactRecord)] = []
        var staged = 0

        /// Staging for about `expectedCount` records (more or fewer are allowed).
        package init(expectedCount n: Int) {
            slotCount = Swift.max(16, n + n / 3 + 1)
            slots = ContactTable.emptySlots(slotCount)
            let count = (slotCount + (1 << Self.regionShift) - 1) >> Self.regionShift
            let share = n / count
            capacity = share + share / 8 + 16
            staging = Array(repeating: Slot(), count: count * capacity)
            counts = Array(repeating: 0, count: count)
        }

        /// Stages `id`'s record. Whether `id` is new is decided by `ContactTable(filling:)`.
        @inline(__always) package mutating func add(_ r: ContactRecord, forKey id: UInt64) {
            if let p = ContactTable.pack(id, r) {
                let region = ContactTable.home(id, slotCount) >> Self.regionShift
                let c = counts[region]
                if _fastPath(c < capacity) {
                    staging[region &* capacity &+ c] = p
                    counts[region] = c &+ 1
                } else {
                    spill.append(p)
                }
                staged &+= 1
            } else {
                aside.append((id, r))
            }
        }

        /// Calls `body` with every staged record, region by region, then the spill.
        func forEachStaged(_ body: (Slot) -> Bool) -> Bool {
            staging.withUnsafeBufferPointer { s in
                for region in counts.indices {
                    let base = region &* capacity
                    for k in base..<(base &+ counts[region]) { guard body(s[k]) else { return false } }
                }
                return true
            } && spill.allSatisfy(body)
        }
    }

    /// The table of `filling`'s records — what `insertNew` of each, in the order added, into a table sized by
    /// `reserveCapacity(expectedCount)` would hold —, or nil when an id was added twice (`insertNew` would have
    /// refused it; the caller that must name the first such id inserts one at a time instead).
    package init?(filling: consuming Filling) {
        let n = filling.slotCount
        // More records than the table takes at 4/5: the ordinary inserts, which grow it.
        guard filling.staged * 5 <= n * 4 else {
            var t = ContactTable()
            t.reserveCapacity(n * 3 / 4)
            guard filling.forEachStaged({ p in t.insertNew(Self.unpack(p), forKey: p.w0 & Self.idMask) }) else { return nil }
            for (id, r) in filling.aside { guard t.insertNew(r, forKey: id) else { return nil } }
            self = t
            return
        }
        slots = filling.slots
        filling.slots = []
        let unique: Bool = slots.withUnsafeMutableBufferPointer { s in
            filling.forEachStaged { p in
                guard let k = Self.freeSlot(for: p.w0 & Self.idMask, in: s) else { return false }
                s[k] = p
                return true
            }
        }
        // The staging goes now (given back to the system), before the records aside are inserted.
        filling.staging = []
        filling.spill = []
        guard unique else { return nil }
        packedCount = filling.staged
        for (id, r) in filling.aside { guard insertNew(r, forKey: id) else { return nil } }
    }

    /// Calls `body` with each record's id and contactStart (the engine's start: its forgetting heap), without
    /// unpacking whole records.
    package func forEachStart(_ body: (UInt64, Int64) -> Void) {
        slots.withUnsafeBufferPointer { s in
            for e in s where e.w0 != 0 { body(e.w0 & Self.idMask, Self.start(e)) }
        }
        for (id, r) in overflow { body(id, r.contactStart) }
    }
}

extension ContactTable: Sequence {
    package struct Iterator: IteratorProtocol {
        let slots: [Slot]
        var k = 0
        var rest: IDMap<ContactRecord>.Iterator

        package mutating func next() -> (key: UInt64, value: ContactRecord)? {
            while k < slots.count {
                let s = slots[k]
                k += 1
                if s.w0 != 0 { return (s.w0 & ContactTable.idMask, ContactTable.unpack(s)) }
            }
            return rest.next()
        }
    }

    package func makeIterator() -> Iterator { Iterator(slots: slots, rest: overflow.makeIterator()) }
    package var underestimatedCount: Int { count }

    /// The ids, in table order.
    package var keys: [UInt64] { map { $0.key } }
}

extension ContactTable: Equatable {
    package static func == (a: ContactTable, b: ContactTable) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in a { guard b[k] == v else { return false } }
        return true
    }
}
