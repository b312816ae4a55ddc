import ContactWatchEngine
import ContactWatchStore
import Foundation
import Testing

func alert(_ rule: Rule, _ n: UInt64, evidence: String = "\"daysWithoutInPerson\":31") -> OpenAlert {
    OpenAlert(id: AlertID(high: 0xDEAD_BEEF_0000_0000 &+ n, low: UInt64.max - n), rule: rule, severity: .high,
              triggerContactId: n, triggerContactVersion: UInt64.max, triggerStart: Int64.min + 5,
              evidence: Array(evidence.utf8), deadline: -3, overdueRaised: n % 2 == 0)
}

func sampleCase() -> CaseState {
    var c = CaseState(crn: CRN(key: 23_123_456))
    c.setRegisters([Register(code: "MAPP", level: "M2"), Register(code: "ADVV", level: nil),
                    Register(code: "RVHR", level: "é")])
    c.sentenceType = .postSentenceSupervision
    c.lastInPersonAt = 1_775_000_000_123
    c.failures = [ContactRef(contactId: 9_007_199_254_740_991, start: -1), ContactRef(contactId: 1, start: Int64.max)]
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

@Suite struct CodecTests {
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

    @Test func contactRoundTripIsCompact() throws {
        let rec = ContactRecord(caseIndex: 199_999, actionId: 0x8000_1234, version: 3, contactStart: 1_775_000_000_000,
                                actionTime: 1_775_000_600_000, pduIndex: 4, contributionDate: 20_500,
                                flags: [.failure, .compliant, .privacyAlertRaised])
        let bytes = encoded { RecordCodec.encode(rec, into: &$0) }
        #expect(bytes.count <= 24)
        #expect(try bytes.withUnsafeBytes { b throws in try RecordCodec.decodeContact(b) } == rec)
        // Extremes (the action time far from the start wraps and still round-trips).
        let odd = ContactRecord(caseIndex: .max, actionId: .max, version: .max, contactStart: .min, actionTime: .max,
                                pduIndex: -1, contributionDate: .min, flags: Flags(rawValue: 255))
        let b2 = encoded { RecordCodec.encode(odd, into: &$0) }
        #expect(try b2.withUnsafeBytes { b throws in try RecordCodec.decodeContact(b) } == odd)
    }
    typealias Flags = ContactRecord.Flags

    @Test func pduAlertAndWithdrawnRoundTrip() throws {
        var p = PDUState(code: "N07SUF")
        p.buckets = [.init(date: -5, compliant: 3, nonCompliant: 0), .init(date: 20_000, compliant: 0, nonCompliant: 7),
                     .init(date: 20_001, compliant: Int32.max, nonCompliant: 1)]
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
        var rng = SyntheticStream.Rng(s: 99)
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
    }
}
