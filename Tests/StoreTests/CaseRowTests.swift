import ContactWatchTestThreads
import ContactWatchEngine
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import GRDB
import Testing

/// The case rows a commit writes (`StateStore.writeCases`: multi-row upserts of up to `upsertRows` cases, the stored
/// contacts merged by `cw_merge_contacts`, new cases' contacts written after their insert, cases named only by their
/// contacts updated one by one), compared after every commit with the rows the state encodes to.
@Suite(.computing) struct CaseRowTests {
    /// Every case row as stored: index -> (crn, data, contacts).
    static func rows(_ path: String) throws -> [Int64: (crn: Int64, data: [UInt8], contacts: [UInt8]?)] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            var out: [Int64: (crn: Int64, data: [UInt8], contacts: [UInt8]?)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT caseIndex, crn, data, contacts FROM caseState") {
                let contacts: Data? = row[3]
                out[row[0]] = (row[1], Array(row[2] as Data), contacts.map { Array($0) })
            }
            return out
        }
    }

    /// The row `state` encodes case `ci` to: its record, and all its contacts packed (nil when it has none).
    /// (`contacts`: the state's contacts by case, each ascending by id.)
    static func expectedRow(_ state: EngineState, _ contacts: [UInt32: [(id: UInt64, record: ContactRecord)]],
                            _ ci: Int) -> (crn: Int64, data: [UInt8], contacts: [UInt8]?) {
        var w = ByteWriter(capacity: 256)
        RecordCodec.encode(state.cases[ci], into: &w)
        let data = w.bytes
        let mine = contacts[UInt32(ci)] ?? []
        var c = ByteWriter(capacity: 256)
        mine.withUnsafeBufferPointer { RecordCodec.encodeContacts($0, into: &c) }
        return (Int64(state.cases[ci].crn.key), data, mine.isEmpty ? nil : c.bytes)
    }

    /// Batches of every size around the statements' sizes (1 … 150 cases), each mixing cases already stored and new
    /// ones, changed, added and forgotten contacts, and cases named only by a changed contact: after each commit
    /// every stored row is what the state encodes to, and no other row exists.
    @Test func caseRowsForBatchesOfEverySize() throws {
        var state = syntheticState(cases: 900, contactsPerCase: 3)
        let byCase = Dictionary(grouping: state.contacts.keys, by: { state.contacts[$0]!.caseIndex })
        var rng = SplitMix64(seed: 11)
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        var stored = Set<Int>()
        var contactSerial: UInt64 = 9_000_000_000
        // The last batch: stored cases whose own record changes and nothing else (their contacts kept as stored).
        for n in [1, 2, 3, 5, 8, 31, 32, 33, 63, 64, 65, 96, 127, 128, 129, 150, -40] {
            var changes = ChangeSet()
            var named = Set<Int>()
            if n < 0 {
                named = Set(stored.sorted().prefix(-n))
                for ci in named {
                    changes.cases.insert(UInt32(ci))
                    state.cases[ci].lastInPersonAt += 1
                }
            }
            while named.count < n { named.insert(rng.below(state.cases.count)) }
            for ci in named.sorted() where n > 0 {
                changes.cases.insert(UInt32(ci))
                state.cases[ci].lastInPersonAt += 1
                if !stored.contains(ci) {
                    // New to the store: its contacts (it may have none left) go with it.
                    for id in byCase[UInt32(ci)] ?? [] where state.contacts[id] != nil { changes.contacts.append(id) }
                    continue
                }
                switch rng.below(4) {
                case 0:  // a contact forgotten, its case named (as the engine does)
                    if let id = (byCase[UInt32(ci)] ?? []).first(where: { state.contacts[$0] != nil }) {
                        state.contacts.removeValue(forKey: id)
                        changes.forgottenContacts.append(id)
                    }
                case 1:  // a new contact
                    contactSerial += 1
                    state.contacts[contactSerial] = ContactRecord(caseIndex: UInt32(ci), actionId: 0, version: 1,
                                                                  contactStart: 1_750_000_000_000 + Int64(n),
                                                                  actionTime: 0, pduIndex: 3, contributionDate: 20_254,
                                                                  flags: [.compliant])
                    changes.contacts.append(contactSerial)
                case 2:  // a contact's new version
                    if let id = (byCase[UInt32(ci)] ?? []).first(where: { state.contacts[$0] != nil }) {
                        state.contacts[id]!.version += 1
                        changes.contacts.append(id)
                    }
                default:  // the case record only
                    break
                }
            }
            // Cases named only by a changed contact (stored ones, not in this batch's cases).
            for ci in stored.sorted().prefix(3) where n > 0 && !named.contains(ci) {
                if let id = (byCase[UInt32(ci)] ?? []).first(where: { state.contacts[$0] != nil }) {
                    state.contacts[id]!.version += 1
                    changes.contacts.append(id)
                }
            }
            try store.commit(changes: changes, state: state, journal: [], publishedThrough: nil, now: 0)
            stored.formUnion(named)

            let rows = try Self.rows(dir.storePath)
            #expect(Set(rows.keys.map(Int.init)) == stored, "batch of \(n)")
            var contacts: [UInt32: [(id: UInt64, record: ContactRecord)]] = [:]
            for id in state.contacts.keys.sorted() {
                let r = state.contacts[id]!
                contacts[r.caseIndex, default: []].append((id, r))
            }
            for ci in stored {
                let want = Self.expectedRow(state, contacts, ci)
                let got = rows[Int64(ci)]
                #expect(got?.crn == want.crn && got?.data == want.data, "case \(ci), batch of \(n)")
                #expect(got?.contacts == want.contacts, "contacts of case \(ci), batch of \(n)")
            }
        }
        #expect(stored.count > 500)
    }

    /// Cases new to the store are inserted whole, their contacts with them: a store built batch by batch through the
    /// commit path takes no more pages than a rebuilt (VACUUMed) copy of itself. (Inserted without their contacts and
    /// then grown by them, the rows split the pages they had just filled: 3% more pages here, 4% in the restart bench.)
    @Test func newCasesFillTheirPages() throws {
        let cases = 6_000
        let state = syntheticState(cases: cases)
        let byCase = Dictionary(grouping: state.contacts.keys, by: { state.contacts[$0]!.caseIndex })
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        for start in stride(from: 0, to: cases, by: 1_000) {
            var changes = ChangeSet()
            for ci in start..<(start + 1_000) {
                changes.cases.insert(UInt32(ci))
                changes.contacts.append(contentsOf: (byCase[UInt32(ci)] ?? []).sorted())
            }
            try store.commit(changes: changes, state: state, journal: [], publishedThrough: nil, now: 0)
        }
        store.close()
        let copy = dir.path + "/vacuumed.sqlite"
        let q = try DatabaseQueue(path: dir.storePath)
        let pages = try q.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM INTO ?", arguments: [copy])
            return try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        }
        try q.close()
        let v = try DatabaseQueue(path: copy)
        let vacuumed = try v.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        try v.close()
        #expect(vacuumed > 250)
        #expect(pages <= vacuumed + 2, "\(pages) pages, \(vacuumed) rebuilt")
        #expect(Set(try Self.rows(dir.storePath).keys) == Set((0..<Int64(cases))))
    }

    /// A changed contact whose case is neither stored nor in the batch is refused (a corrupt batch), and nothing of
    /// the batch is written.
    @Test func contactOfAnUnknownCaseIsRefused() throws {
        let state = syntheticState(cases: 10, contactsPerCase: 2)
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        var first = ChangeSet()
        first.cases = DenseSet(0..<UInt32(5))
        first.contacts = ContactLog(state.contacts.keys.filter { state.contacts[$0]!.caseIndex < 5 })
        try store.commit(changes: first, state: state, journal: [], publishedThrough: nil, now: 0)

        var bad = ChangeSet()
        bad.cases.insert(2)
        bad.contacts = ContactLog(state.contacts.keys.filter { state.contacts[$0]!.caseIndex == 7 })
        #expect {
            try store.commit(changes: bad, state: state, journal: [], publishedThrough: nil, now: 0)
        } throws: { e in
            (e as? StoreError)?.kind == .corrupt && "\(e)".contains("neither stored nor in the batch")
        }
        #expect(try Self.rows(dir.storePath).keys.sorted() == [0, 1, 2, 3, 4])
    }

    /// The merge function fails, instead of reading another case's records, when it is called for a case its
    /// batch does not hold.
    @Test func mergeFunctionRefusesACaseNotInItsRows() throws {
        let q = try DatabaseQueue()
        try q.write { db in
            try MergeContacts.register(db)
            let merge = MergeContacts()
            var rows = [MergeContacts.Row(caseIndex: 3, start: 0, end: 0), MergeContacts.Row(caseIndex: 5, start: 0, end: 0)]
            try rows.withUnsafeMutableBufferPointer { rows in
                merge.rows = rows
                defer { merge.rows = UnsafeMutableBufferPointer(start: nil, count: 0) }
                let s = try RawStatement(db, "SELECT cw_merge_contacts(NULL, ?1, ?2)")
                defer { s.clear() }
                for (ci, known) in [(5, true), (3, true), (4, false), (6, false)] {
                    merge.next = 0
                    merge.error = nil
                    try merge.bind(s, 1)
                    try s.int64(2, Int64(ci))
                    if known {
                        var isNull = false
                        #expect(try s.withRowBlob { isNull = $0 == nil })
                        #expect(isNull)
                    } else {
                        #expect(throws: DatabaseError.self) { try s.withRowBlob { _ in } }
                        #expect(merge.error?.description.contains("case \(ci) is not in the batch") == true)
                    }
                }
                #expect(rows[0].found && rows[1].found)
            }
        }
    }
}
