@testable import ContactWatchEngine
import ContactWatchTestThreads
import ContactWatchTestSupport
import Testing

/// `ContactTable` packs records into 24 bytes and keeps the ones that do not fit aside: every record read back must be
/// the one stored, whichever form it took, through inserts, replacements, removals and growth.
@Suite("ContactTable: packed contact records", .computing)
struct ContactTableTests {
    static let day: Int64 = 86_400_000

    /// The day of `t`, worked out apart from `floorDays` (the code under test): exact for these instants (< 2^53).
    static func floorDay(_ t: Int64) -> Int64 { Int64((Double(t) / Double(day)).rounded(.down)) }

    /// A record as the engine makes them (mostly), or with a field at or beyond the packed form's limits.
    static func record(_ rng: inout SplitMix64) -> ContactRecord {
        let near: Int64 = 1_740_000_000_000 + Int64(rng.below(1 << 30)) * 1000 + Int64(rng.below(1000))
        // The packed form's limits (±2^43 ms) and the 32-byte form's (±2^49), each side.
        let starts: [Int64] = [near, (1 << 43) - 1, -(1 << 43), 1 << 43, -(1 << 43) - 1, (1 << 49) - 1, -(1 << 49),
                               1 << 49, -(1 << 49) - 1, 0, -1, Int64.min, Int64.max, -62_135_596_800_000, 253_402_300_799_999]
        let start = rng.pick(starts)
        let hashed: UInt32 = 0x8000_0000 | UInt32(truncatingIfNeeded: rng.next() >> 33)
        let actionIds: [UInt32] = [0, 0, 1, 10, 11, 255, 256, hashed, .max]
        let actionId = rng.pick(actionIds)
        var actionTime: Int64 = 0
        if actionId != 0 {
            let seconds: Int64 = Int64(rng.below(1 << 20)) * 1000
            let wild = Int64(bitPattern: rng.next() >> 8)
            // The packed form's limits (±2^30 ms or s) and the 32-byte form's (±2^34), each side.
            let limit: Int64 = 1 << 30, old: Int64 = 1 << 34
            let deltas: [Int64] = [0, 1, -1, limit - 1, -limit, limit, -limit - 1, 86_400_000, seconds, (limit - 1) * 1000,
                                   -limit * 1000, limit * 1000, (-limit - 1) * 1000, limit * 1000 + 1, old - 1, -old, old,
                                   (old - 1) * 1000, old * 1000, 400 * day + 1, 13 * day + 7, wild]
            let d = rng.pick(deltas)
            actionTime = start &+ d
        } else if rng.below(20) == 0 {
            actionTime = start // not something the engine records: goes aside
        }
        let offsets: [Int64] = [0, 0, 1, -1, 2, -2]
        let date = floorDay(start) + rng.pick(offsets)
        let caseIndexes: [UInt32] = [0, 1, UInt32(rng.below(300_000)), (1 << 20) - 1, 1 << 20, (1 << 24) - 1, 1 << 24, .max]
        let versions: [UInt64] = [0, 1, 2, UInt64(rng.below(1000)), (1 << 16) - 1, 1 << 16, (1 << 42) - 1, 1 << 42,
                                  (1 << 53) - 1, .max]
        let pdus: [Int32] = [-1, -1, 0, Int32(rng.below(200)), 2045, 2046, .max, -2, .min]
        let flags: UInt8 = UInt8(rng.below(64)) | (rng.below(30) == 0 ? 64 : 0)
        return ContactRecord(caseIndex: rng.pick(caseIndexes), actionId: actionId, version: rng.pick(versions),
                             contactStart: start, actionTime: actionTime, pduIndex: rng.pick(pdus),
                             contributionDate: Int32(clamping: date), flags: ContactRecord.Flags(rawValue: flags))
    }

    @Test("records round-trip exactly, packed or aside, through sets, replacements, removals and growth")
    func randomOperations() {
        var rng = SplitMix64(seed: 11)
        var table = ContactTable()
        var model: [UInt64: ContactRecord] = [:]
        let ids: [UInt64] = (0..<3000).map { k in
            switch k % 50 {
            case 0: return 0
            case 1: return (1 << 53) - 1
            case 2: return 1 << 53
            case 3: return UInt64.max - UInt64(k)
            default: return UInt64(2_500_000_000 + k * 7)
            }
        }
        for step in 0..<40_000 {
            let id = ids[rng.below(ids.count)]
            switch rng.below(10) {
            case 0..<5:
                let r = Self.record(&rng)
                table.set(r, forKey: id)
                model[id] = r
            case 5:
                let r = Self.record(&rng)
                #expect(table.updateValue(r, forKey: id) == model.updateValue(r, forKey: id))
            case 6:
                let r = Self.record(&rng)
                let added = table.insertNew(r, forKey: id)
                #expect(added == (model[id] == nil))
                if added { model[id] = r }
            case 7, 8:
                #expect(table.removeValue(forKey: id) == model.removeValue(forKey: id))
            default:
                #expect(table[id] == model[id])
            }
            if step % 4000 == 0 {
                #expect(table.count == model.count)
                for (k, v) in model { #expect(table[k] == v) }
            }
        }
        #expect(table.count == model.count)
        var seen: [UInt64: ContactRecord] = [:]
        for (k, v) in table { #expect(seen.updateValue(v, forKey: k) == nil) }
        #expect(seen == model)
        #expect(table.overflowCount > 0 && table.overflowCount < table.count)
        var starts: [UInt64: Int64] = [:]
        table.forEachStart { id, start in starts[id] = start }
        #expect(starts == model.mapValues(\.contactStart))
    }

    /// Records aside are rare in a caseload (the big stream: ~1,700 of ~390,000, unknown action codes): the table
    /// keeps a bit per group of ids for them (`overflowBits`), so that the ids never aside skip the side table. Every
    /// answer must stay the same, for ids whose bit is set by another id aside as for the rest.
    @Test("few records aside among many packed: every read, replacement, insert and removal as a dictionary's")
    func fewRecordsAside() {
        var rng = SplitMix64(seed: 12)
        var table = ContactTable()
        var model: [UInt64: ContactRecord] = [:]
        func packed(_ id: UInt64) -> ContactRecord {
            let start = 1_740_000_000_000 + Int64(id % 1_000_000_000)
            return ContactRecord(caseIndex: UInt32(id % 1000), actionId: 0, version: 1, contactStart: start, actionTime: 0,
                                 pduIndex: -1, contributionDate: Int32(Self.floorDay(start)), flags: [])
        }
        func aside(_ id: UInt64) -> ContactRecord {
            var r = packed(id)
            r.actionId = 0x8000_1234  // an unknown action code's hashed id: not packed
            r.actionTime = r.contactStart
            return r
        }
        let ids = (0..<40_000).map { _ in 1 + rng.next() % ((1 << 53) - 1) }
        for (k, id) in ids.enumerated() {
            let r = k % 97 == 0 ? aside(id) : packed(id)
            table.set(r, forKey: id)
            model[id] = r
        }
        #expect(table.overflowCount > 300 && table.overflowCount < 500)
        for step in 0..<60_000 {
            let id = rng.below(4) == 0 ? 1 + rng.next() % ((1 << 53) - 1) : ids[rng.below(ids.count)]
            switch rng.below(8) {
            case 0, 1:
                let r = rng.below(10) == 0 ? aside(id) : packed(id)
                table.set(r, forKey: id)
                model[id] = r
            case 2:
                let r = rng.below(10) == 0 ? aside(id) : packed(id)
                let added = table.insertNew(r, forKey: id)
                #expect(added == (model[id] == nil))
                if added { model[id] = r }
            case 3:
                #expect(table.removeValue(forKey: id) == model.removeValue(forKey: id))
            default:
                #expect(table[id] == model[id])
            }
            if step % 20_000 == 0 { #expect(table.count == model.count) }
        }
        #expect(table.count == model.count)
        for (k, v) in model { #expect(table[k] == v) }
        for (k, v) in table { #expect(model[k] == v) }
    }

    @Test("records as the engine makes them are all packed; a record moves between packed and aside as it changes")
    func packedAndAside() {
        var table = ContactTable(minimumCapacity: 1000)
        let slots = table.slotCount
        for k in 0..<1000 {
            let start = 1_740_000_000_000 + Int64(k) * 3_600_123
            let action = k % 3 == 0
            // An action up to 150 days after the start in whole seconds, or up to 12 days in milliseconds.
            let delta = k % 2 == 0 ? Int64(k) * 86_400_007 % (150 * Self.day) / 1000 * 1000 : Int64(k) * 1_000_007 % (12 * Self.day)
            // The last ten at the packed form's limits: case index, version and action id.
            let edge = k >= 990
            table.set(ContactRecord(caseIndex: edge ? (1 << 20) - 1 : UInt32(k / 10), actionId: action ? (edge ? 255 : 1) : 0,
                                    version: edge ? (1 << 16) - 1 : UInt64(k % 5 + 1),
                                    contactStart: start, actionTime: action ? start + delta : 0,
                                    pduIndex: k % 7 == 0 ? -1 : Int32(k % 90), contributionDate: Int32(Self.floorDay(start) + 1),
                                    flags: [.failure, .privacyAlertRaised]), forKey: UInt64(1 + k))
        }
        #expect(table.count == 1000 && table.overflowCount == 0 && table.slotCount == slots)
        #expect(ContactTable.slotBytes == 24)
        #expect(table.footprint < 1000 * 33)
        var r = table[500]!
        r.version = 1 << 50
        table[500] = r
        #expect(table.overflowCount == 1 && table.count == 1000 && table[500] == r)
        r.version = 7
        table[500] = r
        #expect(table.overflowCount == 0 && table.count == 1000 && table[500] == r)
        var copy = table
        #expect(copy == table)
        copy[1] = nil
        #expect(copy != table && copy.count == 999 && table[1] != nil)
    }
}

/// `ContactTable(filling:)`, a restart's way of building the table (records staged by region, then written region by
/// region), against `insertNew` one record at a time: the same records, the same refusals.
@Suite("ContactTable: filling in bulk", .computing)
struct ContactTableFillingTests {
    /// `count` records under distinct ids: mostly as the engine makes them, some that go aside, ids spread over the
    /// whole range (those beyond 2^53 go aside).
    static func records(_ count: Int, seed: UInt64) -> [(id: UInt64, record: ContactRecord)] {
        var rng = SplitMix64(seed: seed)
        var ids = Set<UInt64>()
        var out: [(id: UInt64, record: ContactRecord)] = []
        while out.count < count {
            let id: UInt64 = switch rng.below(20) {
            case 0: rng.next()
            case 1: 1 + rng.next() % 1000
            default: 1 + rng.next() >> 12
            }
            guard ids.insert(id).inserted else { continue }
            var r = ContactTableTests.record(&rng)
            if rng.below(4) != 0 {
                // As the engine makes them (packed).
                let start = 1_740_000_000_000 + Int64(rng.below(1 << 32))
                r = ContactRecord(caseIndex: UInt32(rng.below(300_000)), actionId: 0, version: UInt64(1 + rng.below(9)),
                                  contactStart: start, actionTime: 0, pduIndex: Int32(rng.below(30)) - 1,
                                  contributionDate: Int32(ContactTableTests.floorDay(start)), flags: [.failure])
            }
            out.append((id, r))
        }
        return out
    }

    static func oneByOne(_ records: [(id: UInt64, record: ContactRecord)], expected: Int) -> ContactTable? {
        var t = ContactTable()
        t.reserveCapacity(expected)
        for (id, r) in records { guard t.insertNew(r, forKey: id) else { return nil } }
        return t
    }

    static func filled(_ records: [(id: UInt64, record: ContactRecord)], expected: Int) -> ContactTable? {
        var f = ContactTable.Filling(expectedCount: expected)
        for (id, r) in records { f.add(r, forKey: id) }
        return ContactTable(filling: f)
    }

    @Test("the same records as inserts one at a time, whatever the expected count; the table works on after it",
          arguments: [(0, 30_000), (1, 1), (2, 20_000), (3, 26_000), (4, 40_000), (5, 0)] as [(UInt64, Int)])
    func sameAsOneByOne(seed: UInt64, expected: Int) throws {
        let records = Self.records(seed == 1 ? 1 : 25_000, seed: seed)
        let reference = try #require(Self.oneByOne(records, expected: expected))
        var table = try #require(Self.filled(records, expected: expected))
        #expect(table.count == records.count)
        #expect(table.overflowCount == reference.overflowCount)
        #expect(table == reference)
        for (id, r) in records { #expect(table[id] == r) }
        var starts: [UInt64: Int64] = [:]
        table.forEachStart { id, start in #expect(starts.updateValue(start, forKey: id) == nil) }
        #expect(starts == Dictionary(uniqueKeysWithValues: records.map { ($0.id, $0.record.contactStart) }))
        // Every probe run intact: removals (backward shifts), replacements and new records afterwards.
        var model = Dictionary(uniqueKeysWithValues: records.map { ($0.id, $0.record) })
        var rng = SplitMix64(seed: seed + 100)
        for k in 0..<records.count {
            let id = records[rng.below(records.count)].id
            switch k % 3 {
            case 0: #expect(table.removeValue(forKey: id) == model.removeValue(forKey: id))
            case 1:
                let r = ContactTableTests.record(&rng)
                table[id] = r
                model[id] = r
            default:
                let fresh = rng.next() >> 11 | 1
                let r = ContactTableTests.record(&rng)
                #expect(table.insertNew(r, forKey: fresh) == (model[fresh] == nil))
                if model[fresh] == nil { model[fresh] = r }
            }
        }
        #expect(table.count == model.count)
        for (id, r) in model { #expect(table[id] == r) }
    }

    @Test("records beyond their region's staging capacity (more than expected) still land, and duplicates among them are refused")
    func spill() throws {
        // 25,000 packed records for an expected 26,000: the table's 4/5 holds them all, but its four full regions
        // get ~5,900 each against a staging capacity of 5,866.
        let records = Array(Self.records(40_000, seed: 21).filter { ContactTable.pack($0.id, $0.record) != nil }.prefix(25_000))
        #expect(records.count == 25_000)
        var f = ContactTable.Filling(expectedCount: 26_000)
        for (id, r) in records { f.add(r, forKey: id) }
        #expect(f.spill.count > 0)
        #expect(f.staged * 5 <= f.slotCount * 4)
        let table = try #require(ContactTable(filling: f))
        #expect(table == (try #require(Self.oneByOne(records, expected: 26_000))))
        for (id, r) in records { #expect(table[id] == r) }
        // A duplicate staged in the spill (its region is full): refused.
        let full = try #require(records.firstIndex { ContactTable.pack($0.id, $0.record) != nil
            && f.counts[ContactTable.home($0.id, f.slotCount) >> ContactTable.Filling.regionShift] == f.capacity })
        var g = ContactTable.Filling(expectedCount: 26_000)
        for (id, r) in records + [records[full]] { g.add(r, forKey: id) }
        #expect(g.spill.count == f.spill.count + 1)
        #expect(ContactTable(filling: g) == nil)
    }

    @Test("an id added twice is refused, packed or aside, wherever the second one comes")
    func twiceIsRefused() throws {
        let records = Self.records(5_000, seed: 9)
        #expect(Self.filled(records, expected: records.count) != nil)
        let packed = try #require(records.firstIndex { ContactTable.pack($0.id, $0.record) != nil })
        let aside = try #require(records.firstIndex { ContactTable.pack($0.id, $0.record) == nil })
        // Aside for a field, not its id: the same id with another record can be packed.
        let asidePackable = try #require(records.firstIndex { $0.id < 1 << 53 && ContactTable.pack($0.id, $0.record) == nil })
        let packedRecord = records[packed].record
        let cases: [(UInt64, ContactRecord, String)] = [
            (records[packed].id, packedRecord, "packed twice"),
            (records[aside].id, records[aside].record, "aside twice"),
            (records[asidePackable].id, packedRecord, "aside, then packed"),
            (records[packed].id, records[asidePackable].record, "packed, then aside"),
        ]
        for (id, r, what) in cases {
            for at in [0, 1, records.count / 2, records.count] {
                var twice = records
                twice.insert((id, r), at: at)
                #expect(Self.oneByOne(twice, expected: twice.count) == nil, "\(what) at \(at): reference")
                #expect(Self.filled(twice, expected: twice.count) == nil, "\(what) at \(at)")
                #expect(Self.filled(twice, expected: 10) == nil, "\(what) at \(at), more than expected")
            }
        }
    }
}
