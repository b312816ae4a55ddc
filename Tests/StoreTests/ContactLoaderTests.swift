import ContactWatchTestThreads
import ContactWatchEngine
@testable import ContactWatchStore
import ContactWatchTestSupport
import Foundation
import GRDB
import Testing

/// The load's contacts on a second thread (`ContactLoader`): the state it gives is the one the store holds, over
/// more chunks than its queue takes; a store it refuses is refused with the message the load one contact at a time
/// gives, naming the first fault in the store's order.
@Suite(.computing) struct ContactLoaderTests {
    static let cases = 8000

    /// A closed store of `cases` synthetic cases (ten contacts each: ~740 KB of packed contacts, twelve chunks).
    static func bigStore() throws -> (TempDir, EngineState) {
        let state = syntheticState(cases: cases)
        let dir = TempDir()
        let store = try StateStore(directory: dir.path)
        var changes = ChangeSet()
        changes.cases = DenseSet(0..<UInt32(state.cases.count))
        changes.contacts = ContactLog(state.contacts.keys)
        changes.pdus = DenseSet(0..<Int32(state.pdus.count))
        changes.publishers = Set(state.publishers.keys)
        try store.commit(changes: changes, state: state, journal: [], publishedThrough: nil, now: 0)
        store.close()
        return (dir, state)
    }

    @Test func loadsTheStoredStateOverManyChunks() throws {
        let (dir, state) = try Self.bigStore()
        defer { dir.cleanup() }
        let bytes = try DatabaseQueue(path: dir.storePath).read { db in
            try Int.fetchOne(db, sql: "SELECT sum(length(contacts)) FROM caseState")
        }
        #expect((bytes ?? 0) > (ContactLoader.maxQueued + 1) * ContactLoader.chunkBytes)
        let store = try StateStore(directory: dir.path)
        defer { store.close() }
        let loaded = try store.load().state
        #expect(loaded.contacts.count == Self.cases * 10)
        #expect(sameState(loaded, state))
    }

    /// The id of the first contact in case `index`'s row.
    static func firstContact(_ db: Database, case index: Int) throws -> UInt64 {
        let blob = try #require(try Data.fetchOne(db, sql: "SELECT contacts FROM caseState WHERE caseIndex = ?", arguments: [index]))
        var first: UInt64? = nil
        try blob.withUnsafeBytes { b in
            try RecordCodec.decodeContacts(caseIndex: UInt32(index), b) { id, _ in if first == nil { first = id } }
        }
        return try #require(first)
    }

    /// Case 4000's contacts copied into case 5000's row (a contact in two cases), and another fault before or after
    /// it: the load names whichever comes first in the store.
    @Test func firstFaultIsNamed() throws {
        let (template, _) = try Self.bigStore()
        defer { template.cleanup() }
        for other in [4500, 5500] {
        for fault in ["crn", "contacts", "pdu"] {
            let dir = TempDir()
            defer { dir.cleanup() }
            try FileManager.default.copyItem(atPath: template.storePath, toPath: dir.storePath)
            var twice: UInt64 = 0
            try tamper(dir) { db in
                twice = try Self.firstContact(db, case: 4000)
                try db.execute(sql: "UPDATE caseState SET contacts = (SELECT contacts FROM caseState WHERE caseIndex = 4000) WHERE caseIndex = 5000")
                switch fault {
                case "crn": try db.execute(sql: "UPDATE caseState SET crn = 'X123456' WHERE caseIndex = ?", arguments: [other])
                case "contacts":
                    try db.execute(sql: "UPDATE caseState SET contacts = x'0102ffffffffffffffffffff' WHERE caseIndex = ?", arguments: [other])
                default:
                    // A contact of that case refers to a PDU index beyond the table's: case `other`'s contacts
                    // re-encoded with PDU 999.
                    let blob = try #require(try Data.fetchOne(db, sql: "SELECT contacts FROM caseState WHERE caseIndex = ?", arguments: [other]))
                    var contacts: [(id: UInt64, record: ContactRecord)] = []
                    try blob.withUnsafeBytes { b in
                        try RecordCodec.decodeContacts(caseIndex: UInt32(other), b) { id, r in
                            var r = r
                            r.pduIndex = 999
                            contacts.append((id, r))
                        }
                    }
                    var w = ByteWriter()
                    contacts.withUnsafeBufferPointer { RecordCodec.encodeContacts($0, into: &w) }
                    try db.execute(sql: "UPDATE caseState SET contacts = ? WHERE caseIndex = ?", arguments: [Data(w.bytes), other])
                }
            }
            let words: [String] = other > 5000 ? ["contact \(twice) appears in two cases"]
                : fault == "crn" ? ["not an integer"] : fault == "pdu" ? ["missing PDU"] : []
            try expectCorruptLoad(dir, mentioning: words)
            let store = try StateStore(directory: dir.path)
            defer { store.close() }
            let error = #expect(throws: StoreError.self) { try store.load() }
            #expect(error?.description.contains("two cases") == (other > 5000), "\(fault) at \(other): \(String(describing: error))")
        }
        }
    }
}
