@testable import ContactWatchEngine
import ContactWatchTestThreads
import ContactWatchTestSupport
import Testing

/// `ContactLists` keeps a case's four lists in one allocation: each list must behave exactly as the `[ContactRef]`
/// it replaced (order kept, appends at the end, removals closing the gap), and a copy must be a value (a change to
/// one copy never shows in another), through growth and sharing.
@Suite("ContactLists: a case's four lists in one allocation", .computing)
struct ContactListsTests {
    static func check(_ l: ContactLists, _ model: [[ContactRef]]) {
        for k in ContactLists.Kind.allCases {
            #expect(Array(l[k]) == model[k.rawValue], "list \(k)")
            #expect(l[k].count == model[k.rawValue].count)
        }
        #expect(l.totalCount == model.reduce(0) { $0 + $1.count })
    }

    @Test func randomOperationsMatchFourArrays() {
        var rng = SplitMix64(seed: 42)
        var lists = ContactLists()
        var model: [[ContactRef]] = [[], [], [], []]
        // Snapshots taken along the way: each must keep reading as it was when taken.
        var snapshots: [(ContactLists, [[ContactRef]])] = []
        for step in 0..<20_000 {
            let k = ContactLists.Kind(rawValue: rng.below(4))!
            // Few distinct ids, so that removals by id often match several elements.
            let ref = ContactRef(contactId: UInt64(rng.below(12)), start: Int64(bitPattern: rng.next()))
            switch rng.below(10) {
            case 0...4:
                lists.append(ref, to: k)
                model[k.rawValue].append(ref)
            case 5, 6:
                lists.removeAll(contactId: ref.contactId, from: k)
                model[k.rawValue].removeAll { $0.contactId == ref.contactId }
            case 7:
                if !model[k.rawValue].isEmpty {
                    let i = rng.below(model[k.rawValue].count)
                    let removed = lists.remove(at: lists[k].startIndex + i, from: k)
                    #expect(removed == model[k.rawValue].remove(at: i))
                }
            case 8:
                let n = rng.below(5)
                let refs = (0..<n).map { ContactRef(contactId: UInt64($0), start: Int64(step)) }
                lists.replace(k, with: refs)
                model[k.rawValue] = refs
            default:
                if snapshots.count < 50 { snapshots.append((lists, model)) }
            }
            if step % 97 == 0 { Self.check(lists, model) }
        }
        Self.check(lists, model)
        for (l, m) in snapshots { Self.check(l, m) }
    }

    @Test func aCopyIsAValue() {
        var a = ContactLists()
        for i in 0..<5 { a.append(ContactRef(contactId: UInt64(i), start: Int64(i)), to: .warnings) }
        let b = a
        a.append(ContactRef(contactId: 9, start: 9), to: .failures)
        a.removeAll(contactId: 2, from: .warnings)
        #expect(Array(b[.warnings].map(\.contactId)) == [0, 1, 2, 3, 4])
        #expect(b[.failures].isEmpty)
        #expect(Array(a[.warnings].map(\.contactId)) == [0, 1, 3, 4])
        #expect(Array(a[.failures].map(\.contactId)) == [9])
        #expect(a != b)
        // A view keeps reading what it saw.
        let view = a[.warnings]
        a.removeAll(contactId: 0, from: .warnings)
        #expect(Array(view.map(\.contactId)) == [0, 1, 3, 4])
        #expect(Array(a[.warnings].map(\.contactId)) == [1, 3, 4])
    }

    @Test func equalityIsByContentNotByAllocation() {
        var a = ContactLists(), b = ContactLists()
        #expect(a == b)
        a.append(ContactRef(contactId: 1, start: 1), to: .remotes)
        #expect(a != b)
        b.append(ContactRef(contactId: 1, start: 1), to: .breaches)
        #expect(a != b, "same elements in another list")
        b.removeAll(contactId: 1, from: .breaches)
        b.append(ContactRef(contactId: 1, start: 1), to: .remotes)
        #expect(a == b)
        // Emptied lists equal lists that never had anything.
        a.removeAll(contactId: 1, from: .remotes)
        #expect(a == ContactLists())
    }

    @Test func builtFromConcatenatedListsAtExactSize() {
        let refs = (0..<7).map { ContactRef(contactId: UInt64($0), start: -Int64($0)) }
        let l = refs.withUnsafeBufferPointer { ContactLists(concatenated: $0, ends: (2, 2, 5, 7)) }
        Self.check(l, [Array(refs[0..<2]), [], Array(refs[2..<5]), Array(refs[5..<7])])
        // The allocation is the object header, the four ends and the capacity, and seven refs.
        #expect(l.allocatedBytes == 40 + 7 * 16)
        #expect(ContactLists().allocatedBytes == 0)
    }

    @Test func caseStateKeepsItsListsAsArraysDid() {
        var c = CaseState(crn: CRN(key: 1))
        c.failures = [ContactRef(contactId: 1, start: 10), ContactRef(contactId: 2, start: 20)]
        c.warnings = [ContactRef(contactId: 3, start: 30)]
        let before = c
        c.lists.append(ContactRef(contactId: 4, start: 40), to: .remotes)
        #expect(Array(c.failures) == [ContactRef(contactId: 1, start: 10), ContactRef(contactId: 2, start: 20)])
        #expect(Array(c.remotes) == [ContactRef(contactId: 4, start: 40)])
        #expect(Array(c.warnings) == [ContactRef(contactId: 3, start: 30)])
        #expect(c.breaches.isEmpty)
        #expect(before.remotes.isEmpty)
        #expect(c != before)
        #expect(MemoryLayout<CaseState>.size <= 64)
    }
}
