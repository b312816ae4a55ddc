import ContactWatchTestThreads
import ContactWatchEngine
import ContactWatchStore
import Foundation
import Testing

func alert(_ rule: Rule, _ n: UInt64, evidence: String = ",\"daysWithoutInPerson\":31") -> OpenAlert {
    OpenAlert(id: AlertID(high: 0xDEAD_BEEF_0000_0000 &+ n, low: UInt64.max - n), rule: rule, severity: .high,
              triggerContactId: n, triggerContactVersion: UInt64.max, triggerStart: -ByteReader.largestTime,
              evidence: Array(evidence.utf8), deadline: -3, overdueRaised: n % 2 == 0)
}

func sampleCase() -> CaseState {
    var c = CaseState(crn: CRN(key: 23_123_456))
    c.setRegisters([Register(code: "MAPP", level: "M2"), Register(code: "ADVV", level: nil),
                    Register(code: "RVHR", level: "é")])
    c.sentenceType = .postSentenceSupervision
    c.lastInPersonAt = 1_775_000_000_123
    c.failures = [ContactRef(contactId: 9_007_199_254_740_991, start: -1), ContactRef(contactId: 1, start: ByteReader.largestTime)]
    c.remotes = [ContactRef(contactId: 5, start: 0)]
    c.warnings = [ContactRef(contactId: 6, start: 1_775_000_000_000)]
    c.breaches = []
    c.openNonCompliance = [alert(.warningDue, 1), alert(.breachDue, 2, evidence: "")]
    c.openTelephoneOnly = alert(.telephoneOnly, 3)
    return c
}

func encoded(_ body: (inout ByteWriter) -> Void) -> [UInt8] {
    var w = ByteWriter()
    body(&w)
    return w.bytes
}

@Suite(.computing) struct CodecTests {
    @Test func caseRoundTrip() throws {
        let c = sampleCase()
        #expect(c.categories.contains(.mappa23) && c.excludedFromRemote)
        let bytes = encoded { RecordCodec.encode(c, into: &$0) }
        let back = try bytes.withUnsafeBytes { b throws in try RecordCodec.decodeCase(crn: c.crn, b) }
        #expect(back == c)
        // A case never told anything.
        let empty = CaseState(crn: CRN(key: 0))
        let e = encoded { RecordCodec.encode(empty, into: &$0) }
        #expect(e.count <= 9)
        #expect(try e.withUnsafeBytes { b throws in try RecordCodec.decodeCase(crn: empty.crn, b) } == empty)
    }

    /// The four lists are written in order (failures, remotes, warnings, breaches), each as its count then each ref's
    /// id (varint) and start (zigzag) — the layout the load and every stored case have — whatever the lists' sizes,
    /// read with one `withUnsafeAllElements` call.
    @Test func caseListsLayout() throws {
        let empty = encoded { RecordCodec.encode(CaseState(crn: CRN(key: 9)), into: &$0) }
        // version, flags, sentence type, no registers | four empty lists | no open alerts
        #expect(empty.count == 9 && empty[4...7] == [0, 0, 0, 0] && empty[8] == 0)
        for sizes in [[0, 0, 0, 1], [3, 0, 2, 0], [1, 70, 0, 5], [130, 2, 1, 0]] {
            var c = CaseState(crn: CRN(key: 9))
            var expected = Array(empty[0..<4])
            var w = ByteWriter()
            for (k, n) in sizes.enumerated() {
                let refs = (0..<n).map { ContactRef(contactId: UInt64(k) << 40 | UInt64($0 * 977), start: 1_775_000_000_000 - Int64($0 * 61_000) * (k % 2 == 0 ? 1 : -1)) }
                switch k {
                case 0: c.failures = ContactLists.List(refs)
                case 1: c.remotes = ContactLists.List(refs)
                case 2: c.warnings = ContactLists.List(refs)
                default: c.breaches = ContactLists.List(refs)
                }
                w.varint(UInt64(n))
                for r in refs {
                    w.varint(r.contactId)
                    w.zigzag(r.start)
                }
            }
            expected += w.bytes + [0]
            #expect(encoded { RecordCodec.encode(c, into: &$0) } == expected, "lists of \(sizes)")
        }
    }

    /// The load reads a case's lists through 64 refs of stack, and a case with more through a buffer sized by its
    /// bytes: both give the case back, at every size around the limit and in every list.
    @Test func casesWithManyRefsRoundTrip() throws {
        for n in [0, 1, 63, 64, 65, 200] {
            for k in 0..<4 {
                var c = sampleCase()
                c.failures = []
                c.remotes = []
                c.warnings = []
                let refs = (0..<n).map { ContactRef(contactId: UInt64(2_500_000_000 + $0), start: 1_775_000_000_000 + Int64($0)) }
                switch k {
                case 0: c.failures = ContactLists.List(refs)
                case 1: c.remotes = ContactLists.List(refs)
                case 2: c.warnings = ContactLists.List(refs)
                default: c.breaches = ContactLists.List(refs)
                }
                c.warnings = ContactLists.List(Array(c.warnings) + [ContactRef(contactId: 7, start: -7)])
                let bytes = encoded { RecordCodec.encode(c, into: &$0) }
                let back = try bytes.withUnsafeBytes { b throws in try RecordCodec.decodeCase(crn: c.crn, b) }
                #expect(back == c, "\(n) refs in list \(k)")
                // Exactly the lists' size: the load allocates nothing to grow into.
                #expect(back.lists.allocatedBytes == 40 + back.lists.totalCount * 16)
            }
        }
    }

    @Test func contactRoundTripIsCompact() throws {
        let rec = ContactRecord(caseIndex: 199_999, actionId: 0x8000_1234, version: 3, contactStart: 1_775_000_000_000,
                                actionTime: 1_775_000_600_000, pduIndex: 4, contributionDate: 20_500,
                                flags: [.failure, .compliant, .privacyAlertRaised])
        let bytes = encoded { RecordCodec.encode(rec, into: &$0) }
        #expect(bytes.count <= 24)
        #expect(try bytes.withUnsafeBytes { b throws in try RecordCodec.decodeContact(b) } == rec)
        // Extremes: times and dates at the ends of what a record may hold (the action time as far from the start).
        let odd = ContactRecord(caseIndex: .max, actionId: .max, version: .max, contactStart: -ByteReader.largestTime,
                                actionTime: ByteReader.largestTime, pduIndex: -1, contributionDate: -largestDay,
                                flags: Flags(rawValue: 255))
        let b2 = encoded { RecordCodec.encode(odd, into: &$0) }
        #expect(try b2.withUnsafeBytes { b throws in try RecordCodec.decodeContact(b) } == odd)
        // The earliest time with its own day (−2^55 is not a whole day: its day is rounded down, past −2^55 / 1 day).
        var earliest = odd
        earliest.contributionDate = Int32(-ByteReader.largestDay)
        #expect(-ByteReader.largestTime / 86_400_000 - 1 == -ByteReader.largestDay)
        let b3 = encoded { RecordCodec.encode(earliest, into: &$0) }
        #expect(try b3.withUnsafeBytes { b throws in try RecordCodec.decodeContact(b) } == earliest)
    }
    typealias Flags = ContactRecord.Flags
    let largestDay = Int32(ByteReader.largestDay)

    @Test func pduAlertAndWithdrawnRoundTrip() throws {
        var p = PDUState(code: "N07SUF")
        p.buckets = [.init(date: -5, compliant: 3, nonCompliant: 0), .init(date: 20_000, compliant: 0, nonCompliant: 7),
                     .init(date: 20_001, compliant: 1 << 30, nonCompliant: -(1 << 30))]
        p.open = alert(.complianceRate, 9)
        let bp = encoded { RecordCodec.encode(p, into: &$0) }
        #expect(try bp.withUnsafeBytes { b throws in try RecordCodec.decodePDU(code: "N07SUF", b) } == p)
        let a = alert(.noPrivacy, 4)
        let ba = encoded { RecordCodec.encode(a, into: &$0) }
        #expect(try ba.withUnsafeBytes { b throws in try RecordCodec.decodeOpenAlert(b) } == a)
        let w = ActionRecord(contactId: 77, start: -99)
        let bw = encoded { RecordCodec.encode(w, into: &$0) }
        #expect(try bw.withUnsafeBytes { b throws in try RecordCodec.decodeActionRecord(b) } == w)
    }

    /// A time, day or PDU count beyond what the engine can write (damage with the row's bytes still decodable) is
    /// refused by the record's decoder, naming the field: the engine's arithmetic on it trapped later (a case's last
    /// face-to-face contact at −2^63 + 1 overflowed R2's `t - reference` at that case's next event, a reviewer,
    /// session 51). Each field at its limit decodes (the round trips above); one past it, either side, does not.
    @Test("every stored time, day and PDU count one past its limit is refused by its decoder, naming it",
          arguments: [ByteReader.largestTime + 1, -ByteReader.largestTime - 1, Int64.min + 1, Int64.max])
    func valuesPastTheirLimitsAreRefused(time: Int64) {
        // One day past the limit either side, for the times one past theirs (the others skip the day fields).
        let day: Int32 = abs(time) == ByteReader.largestTime + 1
            ? Int32((time > 0 ? 1 : -1) * (ByteReader.largestDay + 1)) : (time > 0 ? .max : .min)
        func refused(_ bytes: [UInt8], _ field: String, _ decode: (UnsafeRawBufferPointer) throws -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) {
            let error = #expect(throws: CodecError.self, sourceLocation: sourceLocation) {
                try bytes.withUnsafeBytes { try decode($0) }
            }
            #expect(error?.description.hasPrefix(field) == true && error?.description.hasSuffix("is out of range") == true,
                    "\(String(describing: error))", sourceLocation: sourceLocation)
        }
        let decodeCase: (UnsafeRawBufferPointer) throws -> Void = { _ = try RecordCodec.decodeCase(crn: CRN(key: 1), $0) }
        var c = CaseState(crn: CRN(key: 1))
        c.lastInPersonAt = time
        refused(encoded { RecordCodec.encode(c, into: &$0) }, "last face-to-face contact", decodeCase)
        if time != .max {  // (Int64.max is "none": not stored)
            c = CaseState(crn: CRN(key: 1))
            c.firstContactAt = time
            refused(encoded { RecordCodec.encode(c, into: &$0) }, "first contact", decodeCase)
        }
        c = CaseState(crn: CRN(key: 1))
        c.remotes = [ContactRef(contactId: 5, start: 0), ContactRef(contactId: 6, start: time)]
        refused(encoded { RecordCodec.encode(c, into: &$0) }, "listed contact's start", decodeCase)
        var a = alert(.warningDue, 1)
        a.triggerStart = time
        refused(encoded { RecordCodec.encode(a, into: &$0) }, "alert's contact start") { _ = try RecordCodec.decodeOpenAlert($0) }
        if day != Int32.max && day != Int32.min {
            a = alert(.warningDue, 1)
            a.deadline = day
            refused(encoded { RecordCodec.encode(a, into: &$0) }, "alert's deadline") { _ = try RecordCodec.decodeOpenAlert($0) }
            c = CaseState(crn: CRN(key: 1))
            c.openTelephoneOnly = a
            refused(encoded { RecordCodec.encode(c, into: &$0) }, "alert's deadline", decodeCase)
            refused(encoded { RecordCodec.encode(OutcomeTimer(version: 1, deadline: day, pendingCode: nil), into: &$0) },
                    "outcome deadline") { _ = try RecordCodec.decodeOutcomeTimer($0) }
        }
        refused(encoded { RecordCodec.encode(ActionRecord(contactId: 3, start: time), into: &$0) }, "withdrawn warning's start") {
            _ = try RecordCodec.decodeActionRecord($0)
        }

        // A contact: on its own (schema v1) and packed with its case's (the start summed from differences).
        let good = ContactRecord(caseIndex: 5, actionId: 2, version: 1, contactStart: 1_775_000_000_000,
                                 actionTime: 1_775_000_060_000, pduIndex: 0, contributionDate: 20_543, flags: [.failure])
        var bad = good
        bad.contactStart = time
        bad.contributionDate = 0
        let badStart = bad
        bad = good
        bad.actionTime = time
        let badAction = bad
        for (record, field) in [(badStart, "contact start"), (badAction, "action time")] {
            refused(encoded { RecordCodec.encode(record, into: &$0) }, field) { _ = try RecordCodec.decodeContact($0) }
            refused(Self.packed([(1, good), (2, record)]), field) { _ = try Self.unpacked(caseIndex: 5, Array($0)) }
        }
        if day != Int32.max && day != Int32.min {
            bad = good
            bad.contributionDate = day
            refused(encoded { RecordCodec.encode(bad, into: &$0) }, "contribution date") { _ = try RecordCodec.decodeContact($0) }
            refused(Self.packed([(1, good), (2, bad)]), "contribution date") { _ = try Self.unpacked(caseIndex: 5, Array($0)) }
            var p = PDUState(code: "N07")
            p.buckets = [.init(date: 0, compliant: 1, nonCompliant: 0), .init(date: day, compliant: 1, nonCompliant: 0)]
            if day < 0 { p.buckets.reverse() }  // (sorted: the date itself is what is refused)
            refused(encoded { RecordCodec.encode(p, into: &$0) }, "bucket date") { _ = try RecordCodec.decodePDU(code: "N07", $0) }
        }
        // Buckets out of date order, or two on one date (the engine's searches need them sorted, one a date).
        for dates: [Int32] in [[5, 4], [5, 5], [-3, 7, 7]] {
            var p = PDUState(code: "N07")
            p.buckets = dates.map { .init(date: $0, compliant: 1, nonCompliant: 0) }
            #expect(throws: CodecError.self, "\(dates)") {
                try encoded { RecordCodec.encode(p, into: &$0) }.withUnsafeBytes { _ = try RecordCodec.decodePDU(code: "N07", $0) }
            }
        }
        // A PDU day's count, at 2^30 + 1 either side.
        for n: Int32 in [(1 << 30) + 1, -(1 << 30) - 1] {
            var p = PDUState(code: "N07")
            p.buckets = [.init(date: 3, compliant: 0, nonCompliant: n)]
            refused(encoded { RecordCodec.encode(p, into: &$0) }, "bucket count") { _ = try RecordCodec.decodePDU(code: "N07", $0) }
        }
    }

    /// An open alert's evidence is published as it is stored, inside the resolution's evidence object: the load
    /// accepts what the engine writes (members each led by a comma, or none) and refuses anything that would not be
    /// JSON there (a store's hunter, session 52: an unescaped quote was published in a resolution).
    @Test func evidenceThatIsNotJSONIsRefused() throws {
        var check = RecordCodec.EvidenceCheck()
        for good in ["", ",\"daysWithoutInPerson\":31", ",\"outcomeCode\":\"UAAB\",\"lastWarningAt\":null,\"categories\":[\"HIGH_ROSH\"]",
                     ",\"reason\":\"é \\\" ok\",\"n\":{\"a\":[1,2.5e3]}"] {
            try check.check(alert(.warningDue, 1, evidence: good))
        }
        for bad in [",\"a\":\"x\"y\"", ",\"a\":1,\"a\":2", ",\"triggerContactId\":5", ",\"resolution\":\"x\"", ",\"resolvedByContactId\":1", "\"a\":1", ",\"a\":1,", ",\"a\":1}",
                    ",\"a\":1},\"b\":{\"c\":2", ",\"a\":\"\u{01}\"", ","] {
            #expect(throws: CodecError.self, "\(bad)") { try check.check(alert(.warningDue, 1, evidence: bad)) }
        }
        // Bytes that are not UTF-8 in a string.
        var a = alert(.warningDue, 1)
        a.evidence = Array(",\"a\":\"".utf8) + [0xFF, 0xFE] + Array("\"".utf8)
        #expect(throws: CodecError.self) { try check.check(a) }
        // A case's every open alert is checked: the telephone-only one here.
        var c = sampleCase()
        try check.check(c)
        c.openTelephoneOnly = alert(.telephoneOnly, 3, evidence: ",\"x\":tru")
        #expect(throws: CodecError.self) { try check.check(c) }
    }

    /// Every proper prefix of a valid record, and the record with a byte appended, is rejected with an error.
    @Test func truncatedAndExtendedRecordsThrow() {
        var p = PDUState(code: "X")
        p.buckets = [.init(date: 1, compliant: 2, nonCompliant: 3)]
        p.open = alert(.complianceRate, 1)
        let records: [([UInt8], (UnsafeRawBufferPointer) throws -> Void)] = [
            (encoded { RecordCodec.encode(sampleCase(), into: &$0) }, { b throws in _ = try RecordCodec.decodeCase(crn: CRN(key: 1), b) }),
            (encoded { RecordCodec.encode(ContactRecord(caseIndex: 1, actionId: 2, version: 3, contactStart: 4, actionTime: 5,
                                                        pduIndex: 6, contributionDate: 7, flags: []), into: &$0) },
             { b throws in _ = try RecordCodec.decodeContact(b) }),
            (encoded { RecordCodec.encode(p, into: &$0) }, { b throws in _ = try RecordCodec.decodePDU(code: "X", b) }),
            (encoded { RecordCodec.encode(alert(.breachDue, 1), into: &$0) }, { b throws in _ = try RecordCodec.decodeOpenAlert(b) }),
            (encoded { RecordCodec.encode(ActionRecord(contactId: 1, start: 2), into: &$0) },
             { b throws in _ = try RecordCodec.decodeActionRecord(b) }),
        ]
        for (bytes, decode) in records {
            #expect(throws: Never.self) { try bytes.withUnsafeBytes { b throws in try decode(b) } }
            for n in 0..<bytes.count {
                #expect(throws: CodecError.self, "prefix of \(n) bytes") {
                    try Array(bytes.prefix(n)).withUnsafeBytes { b throws in try decode(b) }
                }
            }
            #expect(throws: CodecError.self) { try (bytes + [0]).withUnsafeBytes { b throws in try decode(b) } }
            // An unknown format version.
            var v2 = bytes
            v2[0] = 2
            #expect(throws: CodecError.self) { try v2.withUnsafeBytes { b throws in try decode(b) } }
        }
    }

    /// Random bytes and random corruptions of valid records never crash the decoder.
    @Test func garbageNeverCrashes() {
        var rng = SyntheticStream.Rng(seed: 99)
        let valid = encoded { RecordCodec.encode(sampleCase(), into: &$0) }
        var rejected = 0
        for k in 0..<20_000 {
            var bytes: [UInt8]
            if k % 2 == 0 {
                bytes = (0..<rng.below(200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if !bytes.isEmpty && rng.chance(0.7) { bytes[0] = 1 }
            } else {
                bytes = valid
                for _ in 0..<(1 + rng.below(4)) { bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            bytes.withUnsafeBytes { b in
                do {
                    _ = try RecordCodec.decodeCase(crn: CRN(key: 1), b)
                    _ = try RecordCodec.decodeContact(b)
                } catch {
                    rejected += 1
                }
                _ = try? RecordCodec.decodePDU(code: "X", b)
                _ = try? RecordCodec.decodeOpenAlert(b)
                _ = try? RecordCodec.decodeActionRecord(b)
            }
        }
        #expect(rejected > 15_000)
    }

    @Test func varintEdges() throws {
        for v: UInt64 in [0, 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max] {
            let b = encoded { $0.varint(v) }
            #expect(b.count == max(1, (64 - v.leadingZeroBitCount + 6) / 7))
            let back = try b.withUnsafeBytes { p throws -> UInt64 in
                var r = ByteReader(p)
                let x = try r.varint()
                try r.expectEnd()
                return x
            }
            #expect(back == v)
        }
        for v: Int64 in [0, -1, 1, .min, .max, -1_775_000_000_000] {
            let b = encoded { $0.zigzag(v) }
            #expect(try b.withUnsafeBytes { p throws -> Int64 in var r = ByteReader(p); return try r.zigzag() } == v)
        }
        // Eleven continuation bytes, and a tenth byte with bits beyond 64.
        for bad: [UInt8] in [Array(repeating: 0xFF, count: 11), Array(repeating: 0xFF, count: 9) + [0x02]] {
            #expect(throws: CodecError.self) { try bad.withUnsafeBytes { p throws in var r = ByteReader(p); _ = try r.varint() } }
        }
        // Every length, followed by 0 to 12 more bytes: the reader's one-word path (eight bytes left), its
        // one-to-three-byte and ten-byte paths and its checked loop near the end of a record read the same values and
        // stop at the same place.
        var values: [UInt64] = [0, UInt64.max]
        for k in 1..<64 { values += [(1 << UInt64(k)) - 1, 1 << UInt64(k), (1 << UInt64(k)) + 1] }
        for v in values {
            let b = encoded { $0.varint(v) }
            for pad in 0...12 {
                let bytes = b + Array(repeating: 0x80, count: pad)
                let (x, offset) = try bytes.withUnsafeBytes { p throws -> (UInt64, Int) in
                    var r = ByteReader(p)
                    let x = try r.varint()
                    return (x, r.offset)
                }
                #expect(x == v && offset == b.count)
            }
        }
        for pad in 0...12 {
            for bad: [UInt8] in [Array(repeating: 0xFF, count: 10) + [0x01], Array(repeating: 0xFF, count: 9) + [0x02],
                                 Array(repeating: 0x80, count: 9) + [0x7F], [0x80, 0x80], [0xFF]] {
                let bytes = bad.count < 3 ? bad : bad + Array(repeating: 0x00, count: pad)
                #expect(throws: CodecError.self) {
                    try bytes.withUnsafeBytes { p throws in var r = ByteReader(p); _ = try r.varint() }
                }
            }
        }
    }

    // MARK: A case's packed contacts (schema v3)

    static func packed(_ contacts: [(id: UInt64, record: ContactRecord)]) -> [UInt8] {
        encoded { w in contacts.withUnsafeBufferPointer { RecordCodec.encodeContacts($0, into: &w) } }
    }

    static func unpacked(caseIndex: UInt32, _ bytes: [UInt8]) throws -> [(id: UInt64, record: ContactRecord)] {
        var out: [(id: UInt64, record: ContactRecord)] = []
        try bytes.withUnsafeBytes { b in try RecordCodec.decodeContacts(caseIndex: caseIndex, b) { out.append(($0, $1)) } }
        return out
    }

    /// A typical case's ten contacts: whole-minute starts a week apart, a PDU each, a few actions.
    static func typicalContacts(caseIndex: UInt32) -> [(id: UInt64, record: ContactRecord)] {
        (0..<10).map { k in
            let start: Int64 = 1_775_000_000_000 - 1_775_000_000_000 % 60_000 + Int64(k) * 7 * 86_400_000 + 3_600_000
            let failure = k % 4 == 3
            return (UInt64(2_500_000_000 + k * 37), ContactRecord(
                caseIndex: caseIndex, actionId: failure ? 12 : 0, version: failure ? 2 : 1, contactStart: start,
                actionTime: failure ? start + 86_400_000 : 0, pduIndex: Int32(k % 3), contributionDate: Int32(start / 86_400_000),
                flags: failure ? [.failure] : [.compliant, .attendedInPerson]))
        }
    }

    @Test func packedContactsRoundTripCompactly() throws {
        let typical = Self.typicalContacts(caseIndex: 77)
        let bytes = Self.packed(typical)
        // About 10 bytes a contact (a row of its own took ~30 on disk).
        #expect(bytes.count <= 2 + 10 * 12, "\(bytes.count) bytes for 10 contacts")
        let back = try Self.unpacked(caseIndex: 77, bytes)
        #expect(back.map(\.id) == typical.map(\.id) && back.map(\.record) == typical.map(\.record))
        #expect(try Self.unpacked(caseIndex: 1, Self.packed([])).isEmpty)

        // Extremes: every flag bit, times at the ends of what a record may hold and off the minute, an action time without an
        // action, a PDU index below -1, ids up to UInt64.max, dates far from the start.
        let odd: [(id: UInt64, record: ContactRecord)] = [
            (0, ContactRecord(caseIndex: 5, actionId: 0, version: 0, contactStart: -ByteReader.largestTime,
                              actionTime: ByteReader.largestTime, pduIndex: -1, contributionDate: largestDay,
                              flags: Flags(rawValue: 255))),
            (1, ContactRecord(caseIndex: 5, actionId: .max, version: .max, contactStart: ByteReader.largestTime,
                              actionTime: -ByteReader.largestTime, pduIndex: .min, contributionDate: -largestDay, flags: [])),
            (2, ContactRecord(caseIndex: 5, actionId: 0, version: 1, contactStart: -1, actionTime: 1, pduIndex: .max,
                              contributionDate: -1, flags: [.privacyAlertRaised])),
            (1 << 40, ContactRecord(caseIndex: 5, actionId: 3, version: 2, contactStart: 1_775_000_000_001,
                                    actionTime: 1_775_000_000_001, pduIndex: 0, contributionDate: 20_543,
                                    flags: [.remoteAlertRaised, .attendedRemote])),
            (.max, ContactRecord(caseIndex: 5, actionId: 0, version: 7, contactStart: 0, actionTime: 0, pduIndex: -1,
                                 contributionDate: 0, flags: [])),
        ]
        let oddBack = try Self.unpacked(caseIndex: 5, Self.packed(odd))
        #expect(oddBack.map(\.id) == odd.map(\.id) && oddBack.map(\.record) == odd.map(\.record))
    }

    @Test func damagedPackedContactsThrow() {
        let typical = Self.typicalContacts(caseIndex: 3)
        let bytes = Self.packed(typical)
        // A prefix (the list runs to the end of the blob) is refused, or cut at a contact's end: then it is exactly
        // the first contacts, never anything else.
        var cutAtContact = 0
        for n in 0..<bytes.count {
            if let got = try? Self.unpacked(caseIndex: 3, Array(bytes.prefix(n))) {
                #expect(n > 0 && got.count < typical.count)
                #expect(got.map(\.id) == typical.prefix(got.count).map(\.id) && got.map(\.record) == typical.prefix(got.count).map(\.record))
                cutAtContact += 1
            }
        }
        #expect(cutAtContact == typical.count, "one clean cut per contact (the empty list included)")
        #expect(throws: (any Error).self) { _ = try Self.unpacked(caseIndex: 3, bytes + [0]) }
        var v2 = bytes
        v2[0] = 2
        #expect(throws: (any Error).self) { _ = try Self.unpacked(caseIndex: 3, v2) }
        // Two contacts with the same id (a zero difference) are refused.
        var same = Self.typicalContacts(caseIndex: 3)
        same[1].id = same[0].id
        #expect(throws: (any Error).self) { _ = try Self.unpacked(caseIndex: 3, Self.packed(same)) }
        // Random corruptions never crash.
        var rng = SyntheticStream.Rng(seed: 7)
        var rejected = 0
        for _ in 0..<5_000 {
            var b = bytes
            for _ in 0..<(1 + rng.below(3)) { b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            if (try? Self.unpacked(caseIndex: 3, b)) == nil { rejected += 1 }
        }
        #expect(rejected > 1_000)
    }

    /// Merging into a stored list (kept contacts copied as stored bytes, only their id and start differences
    /// re-encoded) gives exactly the bytes of encoding the merged list from scratch, over random lists, replacements,
    /// additions and deletions; and reports a change exactly when there is one.
    @Test func mergeEqualsEncodingTheMergedList() throws {
        var rng = SyntheticStream.Rng(seed: 2026)
        func randomRecord() -> ContactRecord {
            let start = 1_700_000_000_000 + Int64(rng.below(1 << 30)) * (rng.chance(0.8) ? 60_000 : 1)
            let action = rng.chance(0.3)
            return ContactRecord(caseIndex: 9, actionId: action ? UInt32(1 + rng.below(20)) : 0, version: UInt64(1 + rng.below(5)),
                                 contactStart: start, actionTime: action ? start + Int64(rng.below(1 << 28)) : 0,
                                 pduIndex: rng.chance(0.8) ? Int32(rng.below(40)) : -1,
                                 contributionDate: Int32(start / 86_400_000) + Int32(rng.below(3)) - 1,
                                 flags: ContactRecord.Flags(rawValue: UInt8(truncatingIfNeeded: rng.next())))
        }
        for round in 0..<2_000 {
            var stored: [UInt64: ContactRecord] = [:]
            for _ in 0..<rng.below(14) { stored[UInt64(1 + rng.below(60))] = randomRecord() }
            let storedList = stored.keys.sorted().map { (id: $0, record: stored[$0]!) }
            var records: [(id: UInt64, record: ContactRecord)] = []
            var deleted: [UInt64] = []
            var expected = stored
            var changes = false
            for id in UInt64(1)...60 where rng.chance(0.08) {
                if stored[id] != nil && rng.chance(0.4) {
                    deleted.append(id)
                    expected[id] = nil
                } else {
                    let r = randomRecord()
                    records.append((id, r))
                    expected[id] = r
                }
                changes = true
            }
            // Deletions of contacts the list does not hold change nothing.
            if rng.chance(0.3) { deleted = (deleted + [61, 100]).sorted() }
            let expectedList = expected.keys.sorted().map { (id: $0, record: expected[$0]!) }
            var w = ByteWriter()
            let changed = try Self.packed(storedList).withUnsafeBytes { b throws(CodecError) -> Bool in
                try records.withUnsafeBufferPointer { r throws(CodecError) -> Bool in
                    try deleted.withUnsafeBufferPointer { d throws(CodecError) -> Bool in
                        try RecordCodec.mergeContacts(stored: round % 7 == 0 && storedList.isEmpty ? nil : b, records: r, deleted: d, into: &w)
                    }
                }
            }
            #expect(w.bytes == Self.packed(expectedList), "round \(round)")
            #expect(changed == changes, "round \(round)")
        }
    }

    /// The merge's walk over the entries it keeps (`RecordCodec.keptPrefix`) changes nothing: with and without it,
    /// `mergeContacts` gives the same bytes and the same answer, or refuses with the same message, over random lists
    /// (long ids, times out of the compact range, millisecond differences, flags above 16, actions, PDUs), random
    /// replacements, additions and deletions, and those lists damaged (bytes changed, cut short, inserted). And the
    /// walk is taken: on an intact list it reaches the first entry the batch touches, with that entry's predecessor's id
    /// and start.
    @Test func keptPrefixWalkChangesNothing() throws {
        var rng = SyntheticStream.Rng(seed: 909)
        func randomRecord() -> ContactRecord {
            var start = 1_700_000_000_000 + Int64(rng.below(1 << 30)) * (rng.chance(0.8) ? 60_000 : 1)
            if rng.chance(0.03) { start = rng.chance(0.5) ? Int64.min + Int64(rng.below(1000)) : Int64.max - Int64(rng.below(1000)) }
            let action = rng.chance(0.3)
            return ContactRecord(caseIndex: 9, actionId: action ? UInt32(rng.below(1 << 20)) : 0, version: UInt64(1 + rng.below(300)),
                                 contactStart: start,
                                 actionTime: action ? (rng.chance(0.05) ? Int64.min : start &+ Int64(rng.below(1 << 28))) : 0,
                                 pduIndex: rng.chance(0.8) ? Int32(rng.below(40)) : -1,
                                 contributionDate: Int32(truncatingIfNeeded: start / 86_400_000) &+ Int32(rng.below(3)) &- 1,
                                 flags: ContactRecord.Flags(rawValue: UInt8(truncatingIfNeeded: rng.next())))
        }
        func randomId() -> UInt64 {
            switch rng.below(4) {
            case 0: return UInt64(1 + rng.below(60))
            case 1: return 2_500_000_000 + UInt64(rng.below(60))
            case 2: return (1 << 62) + UInt64(rng.below(60))
            default: return UInt64.max - UInt64(rng.below(60))
            }
        }
        struct Outcome: Equatable { var bytes: [UInt8]; var changed: Bool; var error: String? }
        func merge(_ stored: [UInt8]?, _ records: [(id: UInt64, record: ContactRecord)], _ deleted: [UInt64],
                   walk: Bool) -> Outcome {
            var w = ByteWriter()
            do {
                let changed = try records.withUnsafeBufferPointer { r throws -> Bool in
                    try deleted.withUnsafeBufferPointer { d throws -> Bool in
                        if let stored {
                            return try stored.withUnsafeBytes { b throws -> Bool in
                                try RecordCodec.mergeContacts(stored: b, records: r, deleted: d, into: &w, walkKeptPrefix: walk)
                            }
                        }
                        return try RecordCodec.mergeContacts(stored: nil, records: r, deleted: d, into: &w, walkKeptPrefix: walk)
                    }
                }
                return Outcome(bytes: w.bytes, changed: changed, error: nil)
            } catch {
                return Outcome(bytes: [], changed: false, error: String(describing: error))
            }
        }
        var walked = 0, damagedRefused = 0
        for round in 0..<4_000 {
            var stored: [UInt64: ContactRecord] = [:]
            for _ in 0..<rng.below(16) { stored[randomId()] = randomRecord() }
            let storedList = stored.keys.sorted().map { (id: $0, record: stored[$0]!) }
            var records: [(id: UInt64, record: ContactRecord)] = []
            var deleted: [UInt64] = []
            for _ in 0..<rng.below(4) {
                let id = rng.chance(0.5) && !storedList.isEmpty ? storedList[rng.below(storedList.count)].id : randomId()
                if rng.chance(0.3) { deleted.append(id) } else if !records.contains(where: { $0.id == id }) { records.append((id, randomRecord())) }
            }
            records.sort { $0.id < $1.id }
            records.removeAll { r in deleted.contains(r.id) }
            deleted = Array(Set(deleted + (rng.chance(0.5) ? [randomId(), randomId()] : []))).sorted()
            var bytes = Self.packed(storedList)
            // The walk reaches the first entry the batch touches.
            let bound = records.first?.id ?? .max
            let keptCount = storedList.prefix { $0.id < bound && !deleted.contains($0.id) }.count
            let expected = (end: Self.packed(Array(storedList.prefix(keptCount))).count,
                            id: keptCount == 0 ? 0 : storedList[keptCount - 1].id,
                            start: keptCount == 0 ? 0 : storedList[keptCount - 1].record.contactStart)
            let prefix = bytes.withUnsafeBytes { b in
                deleted.withUnsafeBufferPointer { d in RecordCodec.keptPrefix(b, below: bound, deleted: d) }
            }
            // (Entries with a time out of the compact range or a varint beyond 7 bytes stop the walk early.)
            #expect(prefix.end <= expected.end, "round \(round)")
            if prefix.end == expected.end && prefix.end > 1 {
                walked += 1
                #expect(prefix.id == expected.id && prefix.start == expected.start, "round \(round)")
            }
            #expect(merge(bytes, records, deleted, walk: true) == merge(bytes, records, deleted, walk: false), "round \(round)")
            // Damaged: a byte changed, the list cut short, or a byte inserted.
            if bytes.count > 1 {
                switch rng.below(3) {
                case 0: bytes[1 + rng.below(bytes.count - 1)] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.removeLast(1 + rng.below(min(bytes.count - 1, 4)))
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()) | (rng.chance(0.5) ? 0x80 : 0), at: 1 + rng.below(bytes.count - 1))
                }
                let with = merge(bytes, records, deleted, walk: true)
                #expect(with == merge(bytes, records, deleted, walk: false), "damaged round \(round)")
                if with.error != nil { damagedRefused += 1 }
            }
        }
        // The cases above are exercised: walks to the touched entry, and damaged lists refused.
        #expect(walked > 1_000)
        #expect(damagedRefused > 300)
    }
}
