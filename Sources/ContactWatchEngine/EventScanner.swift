import CPrefetch
import CScanSIMD
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The engine's reader of event bodies: one pass over the bytes that validates UTF-8 and JSON syntax exactly as
// `isValidUTF8` followed by `JSONReader.parse` (no duplicate keys, depth 64) decide — same accept/reject decision, same
// error message — and keeps, instead of a node per value, only the members `EventDecoder` reads: each known member of
// the envelope, `personReference`, `additionalInformation`, `outcome` and `enforcementAction` lands in a fixed slot
// as it is scanned, and `personReference.identifiers` is summarised element by element (the first bad element, the
// CRN entries). Nothing is allocated per event on the usual path.
//
// How it stays equal to the two-step reader (`EventScannerDifferentialTests` and the fuzz target compare them):
// - UTF-8: bytes outside strings must be ASCII for the grammar; bytes ≥ 0x80 inside strings are validated as the
//   string scan meets them (the same RFC 3629 rules). So a body that scans cleanly is valid UTF-8; on any JSON error
//   the whole body is checked with `isValidUTF8` first, because UTF-8 is reported before JSON.
// - Syntax: the grammar functions below are `JSONReader`'s, with the same checks in the same order and the same
//   messages (byte offsets included).
// - Duplicate keys: a key known in its object's context sets its slot's bit, any other key a bit of a 64-bit hash
//   set; a second hit on a bit, or an escaped key, makes the object suspect, and a suspect object is checked exactly
//   when it closes (where `JSONReader` checks every object), reporting the same key `JSONReader` reports. The fast
//   path reads known members only in their list's order (so none repeats) and steps over any other member only when
//   its key has no escape and no earlier key of its object has the same bytes (`noteUnknownKey`); else it declines.

/// The members the engine reads: a value handle is its slot number (`EventScanner.value`).
package enum EventSlot {
    // The envelope (root object).
    static let eventType: Int32 = 0
    static let version: Int32 = 1
    static let occurredAt: Int32 = 2
    static let publisherId: Int32 = 3
    static let sequenceNumber: Int32 = 4
    static let personReference: Int32 = 5
    static let additionalInformation: Int32 = 6
    // personReference.
    static let identifiers: Int32 = 7
    // additionalInformation (both event kinds' fields; unknown fields are ignored anyway).
    static let contactId: Int32 = 8
    static let contactVersion: Int32 = 9
    static let contactStart: Int32 = 10
    static let contactType: Int32 = 11
    static let contactMode: Int32 = 12
    static let outcome: Int32 = 13
    static let enforcementAction: Int32 = 14
    static let interviewSetting: Int32 = 15
    static let sensitive: Int32 = 16
    static let sentenceType: Int32 = 17
    static let pduCode: Int32 = 18
    static let teamCode: Int32 = 19
    static let staffCode: Int32 = 20
    static let officeLocationCode: Int32 = 21
    static let registerTypeCode: Int32 = 22
    static let registerLevelCode: Int32 = 23
    // outcome.
    static let outcomeCode: Int32 = 24
    static let attended: Int32 = 25
    static let complied: Int32 = 26
    static let enforceable: Int32 = 27
    // enforcementAction.
    static let actionCode: Int32 = 28
    static let actionAt: Int32 = 29
    // One element of personReference.identifiers while it is scanned.
    static let identifierType: Int32 = 30
    static let identifierValue: Int32 = 31
    /// The `value` of the (last) identifier whose type is `CRN`.
    static let crnValue: Int32 = 32
    static let count = 33
}

/// The object contexts whose members have slots, and what the values of some slots contain.
private enum ScanContext {
    static let root: UInt8 = 0
    static let person: UInt8 = 1
    static let info: UInt8 = 2
    static let outcome: UInt8 = 3
    static let action: UInt8 = 4
    static let identifier: UInt8 = 5
    /// Any other object: no member has a slot.
    static let other: UInt8 = 6
    /// The elements of `personReference.identifiers` (an array context).
    static let identifierList: UInt8 = 7

    /// The context of the value in `slot` when it is a container (`identifierList` for personReference.identifiers),
    /// `other` for any other slot (-1 included).
    @inline(__always) static func child(of slot: Int) -> UInt8 {
        switch Int32(truncatingIfNeeded: slot) {
        case EventSlot.personReference: return person
        case EventSlot.additionalInformation: return info
        case EventSlot.outcome: return outcome
        case EventSlot.enforcementAction: return action
        case EventSlot.identifiers: return identifierList
        default: return other
        }
    }

    static let names: [(context: UInt8, name: StaticString, slot: Int32)] = [
        (root, "eventType", EventSlot.eventType), (root, "version", EventSlot.version),
        (root, "occurredAt", EventSlot.occurredAt), (root, "publisherId", EventSlot.publisherId),
        (root, "sequenceNumber", EventSlot.sequenceNumber), (root, "personReference", EventSlot.personReference),
        (root, "additionalInformation", EventSlot.additionalInformation),
        (person, "identifiers", EventSlot.identifiers),
        (info, "contactId", EventSlot.contactId), (info, "contactVersion", EventSlot.contactVersion),
        (info, "contactStart", EventSlot.contactStart), (info, "contactType", EventSlot.contactType),
        (info, "contactMode", EventSlot.contactMode), (info, "outcome", EventSlot.outcome),
        (info, "enforcementAction", EventSlot.enforcementAction), (info, "interviewSetting", EventSlot.interviewSetting),
        (info, "sensitive", EventSlot.sensitive), (info, "sentenceType", EventSlot.sentenceType),
        (info, "pduCode", EventSlot.pduCode), (info, "teamCode", EventSlot.teamCode),
        (info, "staffCode", EventSlot.staffCode), (info, "officeLocationCode", EventSlot.officeLocationCode),
        (info, "registerTypeCode", EventSlot.registerTypeCode), (info, "registerLevelCode", EventSlot.registerLevelCode),
        (outcome, "code", EventSlot.outcomeCode), (outcome, "attended", EventSlot.attended),
        (outcome, "complied", EventSlot.complied), (outcome, "enforceable", EventSlot.enforceable),
        (action, "code", EventSlot.actionCode), (action, "actionAt", EventSlot.actionAt),
        (identifier, "type", EventSlot.identifierType), (identifier, "value", EventSlot.identifierValue),
    ]
}

/// A known member name in the key table: its bytes as three little-endian words (zero-padded) and its length.
private struct KeyEntry {
    var w0: UInt64 = 0
    var w1: UInt64 = 0
    var w2: UInt64 = 0
    var length: Int32 = 0
    var slot: Int32 = -1
    /// Its position in its context's list (the order events.md's tables give, which bodies usually follow).
    var order: Int32 = 0
}

/// A known member as it usually appears, `"name":`, for the predicted-key path: three words, their masks, length.
private struct PredictedKey {
    var q0: UInt64 = 0
    var q1: UInt64 = 0
    var q2: UInt64 = 0
    var m0: UInt64 = 0
    var m1: UInt64 = 0
    var m2: UInt64 = 0
    var length: Int = 0
    var slot: Int = -1
    /// The fast path's frame for a container in this member, but for its start: `FastFrame(start: 0, slot:,
    /// context:, resume:)` with the member's context and its position in the list plus one.
    var frame: FastFrame = FastFrame(start: 0, slot: 0, context: 0, resume: 0)
}

/// A container the fast path (`EventScanner.scanFast`) is inside of, packed in one word: where it starts, its slot,
/// and the object it is a member of (that object's context, and the position in its list where the next member may
/// be, the container's own plus one).
private struct FastFrame {
    var word: Int
    init(start: Int, slot: Int, context: UInt8, resume: Int) {
        word = start | slot &<< 32 | Int(context) &<< 40 | resume &<< 48
    }
    /// The frame of a container that starts at `start` in the member whose frame (without a start) is `member`.
    init(start: Int, member: FastFrame) { word = start | member.word }
    /// The frame packed in `word` (a template's frame, its start moved: `TemplateMemo.frame`).
    init(word: Int) { self.word = word }
    var start: Int { word & 0xFFFF_FFFF }
    var slot: Int { (word &>> 32) & 0xFF }
    var context: UInt8 { UInt8(truncatingIfNeeded: word &>> 40) }
    var resume: Int { (word &>> 48) & 0xFF }
}

/// The first member of the last body the fast path read when it was eventType (`EventScanner.rememberPrefix`), and the
/// second when it was a number in `version`: their bytes from the root's `{` to the comma after the last of them, where
/// the values lie in them, and the event type. The empty memo matches nothing: its mask asks for 64 zero bytes, and a
/// body compared with it starts with `{`.
private struct PrefixMemo {
    /// The bytes, zero past `length` (the first field: `EventScanner.prefixBytes` points at it).
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Bit k set for each byte k < `length`.
    var mask: UInt64 = ~0
    var length = 0
    /// The value's offsets from the `{` (without its quotes).
    var valueStart = 0
    var valueEnd = 0
    /// `EventType.rawValue + 1`, or 6 for a type that is not listed (`EventScanner.knownEventType`).
    var eventType = 0
    /// The version member's node, its offsets from the `{`, when the memo holds it (`hasVersion`).
    var version = JSONNode(kind: .null, flag: false, start: 0, end: 0, count: 0, next: 0, integer: 0)
    var hasVersion = false
}

/// An envelope template (`EventScanner.recordTemplate`): what the fast path had read of a body when it entered its
/// additionalInformation object — the bytes from the root's `{` to that object's `{` (at most `templateMax`), which of
/// them must be the same in a later body (every byte but the contents of the occurredAt string and of the
/// identifiers' value strings, which may be anything but '"', '\\', a control character or a byte from 0x80 up, and
/// the digits of sequenceNumber, which may be any as many digits not starting with 0), and
/// the state the fast path was in there: the slots it had filled (offsets from the `{`), its frame, the identifiers'
/// summary and the event type. A body that begins with bytes the template accepts leaves the fast path in the same
/// state at the same offset: that state is a function of the bytes read, and the contents of a string without those
/// bytes are read only for where the string ends (at its closing quote, a byte the template fixes). The bytes, the
/// mask of exact bytes, the holes and the slots lie in `ScanState.templateData` (`templateStride` per template).
private struct TemplateMemo {
    /// Bytes from the root's `{` up to and including additionalInformation's `{`; 0: empty.
    var length = 0
    /// Sixteen-byte blocks compared (`length` rounded up).
    var chunks = 0
    /// Bit c set for each block c with holes in it.
    var holeChunks: UInt32 = 0
    /// The offset and length of sequenceNumber's digits, a hole of its own (-1: none): any digits, the first not 0,
    /// as many (the fast path's integer; its node is read again from the body).
    var numberAt = -1
    var numberLength = 0
    /// The slots filled (`found`).
    var found: UInt64 = 0
    /// additionalInformation's frame, its start an offset from the root's `{`.
    var frame = 0
    var element: Int32 = 0
    var problemIndex: Int32 = -1
    var problemIsType = false
    var crnCount: Int32 = 0
    var crnIndex: Int32 = 0
    /// `knownEventType` for these bytes (0 when eventType is not among the slots filled).
    var eventType = 0
    /// The root's members the fast path stepped over in these bytes (`UnknownKey`, at most four): each its key's
    /// offset from the `{` (low 32 bits) and length (high 32 bits). Put back in the list of keys stepped over on a hit,
    /// so that a later root member with the same key is still a duplicate.
    var unknownCount = 0
    var unknowns: (Int, Int, Int, Int) = (0, 0, 0, 0)
}

/// A member the fast path stepped over (`EventScanner.noteUnknownKey`): the `{` of its object, its key's bytes
/// (without escapes, so its bytes are its name), and the contents of its value when that is a string (else empty),
/// which an envelope template makes a hole.
private struct UnknownKey {
    var open: Int32
    var start: Int32
    var length: Int32
    var valueStart: Int32 = 0
    var valueEnd: Int32 = 0
}

/// What `EventScanner.scan` found.
package enum ScanOutcome: Equatable {
    case ok
    /// The body is not valid UTF-8.
    case utf8
    /// Valid UTF-8 but not JSON (the message `JSONReader` gives, e.g. `duplicate key "a"`).
    case json(String)
}

/// What a scan leaves besides the slots, and the key tables: `EventScanner`'s out-of-line part (`EventScanner.scan`).
private struct ScanState {
    var present: UInt64 = 0
    var base: UnsafePointer<UInt8>? = nil
    var length: Int = 0
    var rootKind: JSONKind = .null
    var failure: String = ""
    var problemIndex: Int32 = -1
    var problemIsType = false
    var crnCount: Int32 = 0
    var crnIndex: Int32 = 0
    let table: UnsafeMutablePointer<KeyEntry>
    let predicted: UnsafeMutablePointer<PredictedKey>
    /// The envelope templates (`TemplateMemo`, `EventScanner.templateCount` of them) and their bytes, masks, holes
    /// and slots (`EventScanner.templateStride` bytes each).
    let templates: UnsafeMutablePointer<TemplateMemo>
    let templateData: UnsafeMutableRawPointer
    /// The keys of the members the fast path stepped over in this body (`EventScanner.unknownKeyCapacity`; how many
    /// in entry 18 of `predictedCount`), then the stack of `{` and `[` offsets of the containers in such a member's
    /// value (`EventScanner.unknownDepth`).
    let unknownKeys: UnsafeMutablePointer<UnknownKey>
    let unknownOpens: UnsafeMutablePointer<Int>
    /// The templates from the most recently used (byte 0) to the least (byte 3): their indexes.
    var templateOrder: UInt32 = 0x0302_0100
    /// A known root member met out of its list's order (`skipUnknownMember` returned -2): its `lookup` result and the
    /// index of its key's closing quote, for `reorderedRootMember`.
    var reorderedKey: Int = 0
    var reorderedClose: Int = 0
    /// The root's list positions from which the reordered list (`reorderedRootMember`) ends as the root's own list.
    var reorderedTail: Int = 0
    /// `scanFast` declined a known root member out of the list's order; `reorderedRootMember` read one.
    var wantsReordering = false
    var reordered = false
}

/// Reads one event body at a time. Not thread-safe; one per processing thread. Noncopyable: it owns its slot and key
/// tables (allocated once, freed with it).
///
/// *Unsafe memory* — the contract of every pointer below, in one place: the scanner owns all of its tables (allocated
/// in `init`, freed in `deinit`, never shared: it is noncopyable and used by one thread); each region is bound in
/// `init` to the one type it is then read as (`predictedCount`'s words as `Int` but for the masks and powers as
/// `UInt64`, the frames, the date memos and the prefix memo as theirs; each template's bytes as `UInt8`, its holes as
/// `UInt16`, its slots as `JSONNode`), so `assumingMemoryBound` only names that binding (a region emptied later is
/// emptied by `memset` and filled by `copyMemory`, which keep it, where `initializeMemory(as:)` would rebind it);
/// every index into a table is within its capacity by construction (contexts `& 7`, hashes `& 31`, members `< 16`,
/// templates `< templateCount`, frames ≤ 3, keys stepped over `< unknownKeyCapacity`); body bytes are read only
/// below `length`: a load of several bytes (a word, three words, the sixteen and sixty-four of `scan.h`) is taken only
/// where its whole width lies below it, and near the end the bytes are read one at a time (`wordNearEnd`, `keyWords`).
///
/// Three words (`slots`, `predictedCount`, `state`), everything else out of line: a borrowed scanner is then passed in
/// registers. (At 96 bytes, each call of a function not inlined that borrowed it — the decoder's `eventType`,
/// `person`, `time`, … — copied it to the stack first, ~12 instructions each, five or six times an event.)
package struct EventScanner: ~Copyable {
    /// The value of each slot; valid when its bit is set in `present`.
    private let slots: UnsafeMutablePointer<JSONNode>
    /// The rest of the scan's state and the key tables.
    private let state: UnsafeMutablePointer<ScanState>
    /// 8 contexts × 32 entries, open addressing.
    private var table: UnsafeMutablePointer<KeyEntry> { state.pointee.table }
    /// 8 contexts × 16 members in order (`predictedCount` of them per context).
    private var predicted: UnsafeMutablePointer<PredictedKey> { state.pointee.predicted }
    /// 8 contexts: how many members each context's list has (0 for `other` and `identifierList`). Kept out of line so
    /// that the scanner stays small (see above).
    /// A ninth entry: 1 while the fast path (`scanFast`) is on (tests turn it off to compare the two paths); a tenth:
    /// 1 when the last scan was accepted by the fast path (tests check that it is taken); entries 10 to 14: the masks
    /// of `specialBytes` (`masks`); entry 15: `knownEventType`; entry 16: `lastScanUsedTemplate`; entry 17: 1 when
    /// `templatesEnabled` is off; entry 18: how many keys the fast path stepped over (`noteUnknownKey`); entry 19: how
    /// many more bodies `scanReordering` reads (0: `scanFast` reads them; entry 8 is then 0); entries 20 to 23:
    /// the fast path's `frames`; from 24: `dateMemos`; then `powers`, then the prefix memo (`PrefixMemo`).
    private let predictedCount: UnsafeMutablePointer<Int>
    private static let powersAt = 24 + 3 * RFC3339Fast.memoCount
    private static let prefixAt = (powersAt + 9 + 1) & ~1
    private static let storageCount = prefixAt + MemoryLayout<PrefixMemo>.stride / 8
    /// Slots holding a non-null value in the last scan.
    package private(set) var present: UInt64 {
        get { state.pointee.present }
        nonmutating set { state.pointee.present = newValue }
    }
    package private(set) var base: UnsafePointer<UInt8>? {
        get { state.pointee.base }
        nonmutating set { state.pointee.base = newValue }
    }
    private var length: Int {
        get { state.pointee.length }
        nonmutating set { state.pointee.length = newValue }
    }
    /// The kind of the body's top-level value (after a successful scan).
    package private(set) var rootKind: JSONKind {
        get { state.pointee.rootKind }
        nonmutating set { state.pointee.rootKind = newValue }
    }
    /// The error message of a failed scan (set by `fail`).
    private var failure: String {
        get { state.pointee.failure }
        nonmutating set { state.pointee.failure = newValue }
    }

    // personReference.identifiers, element by element (valid only when the identifiers slot holds an array).
    /// The first element that is not an object (`problemIsType` false) or has no string `type` (true); -1: none.
    package private(set) var problemIndex: Int32 {
        get { state.pointee.problemIndex }
        nonmutating set { state.pointee.problemIndex = newValue }
    }
    package private(set) var problemIsType: Bool {
        get { state.pointee.problemIsType }
        nonmutating set { state.pointee.problemIsType = newValue }
    }
    /// Identifiers of type CRN before the first problem, and the index of the last one.
    package private(set) var crnCount: Int32 {
        get { state.pointee.crnCount }
        nonmutating set { state.pointee.crnCount = newValue }
    }
    package private(set) var crnIndex: Int32 {
        get { state.pointee.crnIndex }
        nonmutating set { state.pointee.crnIndex = newValue }
    }

    static let maxDepth = 64

    /// Envelope templates kept (the bench streams have four envelopes: contact and registration events, with and
    /// without a NOMS identifier), the most bytes one covers, and the bytes of each in `ScanState.templateData`: the
    /// body's bytes (`templateMax`), the mask of exact bytes (0xFF each, `templateMax`), the holes (a bit per byte,
    /// sixteen per `UInt16`), the slots (`EventSlot.count` nodes, offsets from the root's `{`). (The bench's
    /// envelopes are 189 to 223 bytes; 384 leaves room for members the fast path steps over, e.g. a feed's URL.)
    static let templateCount = 4
    static let templateMax = 384
    private static let templateHolesAt = 2 * templateMax
    private static let templateNodesAt = templateHolesAt + templateMax / 8
    static let templateStride = templateNodesAt + EventSlot.count * MemoryLayout<JSONNode>.stride
    /// The fast path's bounds on the members it steps over (`skipUnknownMember`): keys per body (nested objects'
    /// included), and containers one inside the other in one member's value; past them it declines.
    static let unknownKeyCapacity = 64
    static let unknownDepth = 16

    package init() {
        slots = UnsafeMutablePointer<JSONNode>.allocate(capacity: EventSlot.count)
        slots.initialize(repeating: JSONNode(kind: .null, flag: false, start: 0, end: 0, count: 0, next: 0, integer: 0),
                         count: EventSlot.count)
        let table = UnsafeMutablePointer<KeyEntry>.allocate(capacity: 8 * 32)
        table.initialize(repeating: KeyEntry(), count: 8 * 32)
        let predicted = UnsafeMutablePointer<PredictedKey>.allocate(capacity: 8 * 16)
        predicted.initialize(repeating: PredictedKey(), count: 8 * 16)
        let templates = UnsafeMutablePointer<TemplateMemo>.allocate(capacity: EventScanner.templateCount)
        templates.initialize(repeating: TemplateMemo(), count: EventScanner.templateCount)
        let templateData = UnsafeMutableRawPointer.allocate(byteCount: EventScanner.templateCount * EventScanner.templateStride,
                                                            alignment: 16)
        for k in 0..<EventScanner.templateCount {
            // Each region bound to the type it is read as (see *Unsafe memory* above `EventScanner`).
            let base = templateData + k * EventScanner.templateStride
            base.initializeMemory(as: UInt8.self, repeating: 0, count: EventScanner.templateHolesAt)
            (base + EventScanner.templateHolesAt).initializeMemory(as: UInt16.self, repeating: 0,
                                                                  count: EventScanner.templateMax / 16)
            (base + EventScanner.templateNodesAt).initializeMemory(
                as: JSONNode.self, repeating: JSONNode(kind: .null, flag: false, start: 0, end: 0, count: 0, next: 0, integer: 0),
                count: EventSlot.count)
        }
        state = UnsafeMutablePointer<ScanState>.allocate(capacity: 1)
        let unknownKeys = UnsafeMutablePointer<UnknownKey>.allocate(capacity: EventScanner.unknownKeyCapacity)
        unknownKeys.initialize(repeating: UnknownKey(open: 0, start: 0, length: 0), count: EventScanner.unknownKeyCapacity)
        let unknownOpens = UnsafeMutablePointer<Int>.allocate(capacity: EventScanner.unknownDepth)
        unknownOpens.initialize(repeating: 0, count: EventScanner.unknownDepth)
        state.initialize(to: ScanState(table: table, predicted: predicted, templates: templates, templateData: templateData,
                                       unknownKeys: unknownKeys, unknownOpens: unknownOpens))
        predictedCount = UnsafeMutablePointer<Int>.allocate(capacity: EventScanner.storageCount)
        predictedCount.initialize(repeating: 0, count: EventScanner.storageCount)
        var power = 1
        for k in 0...8 {
            predictedCount[EventScanner.powersAt &+ k] = power
            power *= 10
        }
        let ones: UInt64 = 0x0101_0101_0101_0101
        for (k, m) in [ones &* 0x22, ones &* 0x5C, ones, ones &* 0x20, ones &* 0x80].enumerated() {
            predictedCount[10 + k] = Int(bitPattern: UInt(m))
        }
        predictedCount[8] = 1
        // The regions read as other types are bound to them (the masks and powers keep their values: `Int` and
        // `UInt64` have one layout); nothing reads them as `Int` after this.
        UnsafeMutableRawPointer(predictedCount + 10).bindMemory(to: UInt64.self, capacity: 5)
        UnsafeMutableRawPointer(predictedCount + EventScanner.powersAt).bindMemory(to: UInt64.self, capacity: 9)
        UnsafeMutableRawPointer(predictedCount + 20).initializeMemory(as: FastFrame.self, repeating: FastFrame(word: 0),
                                                                      count: 4)
        UnsafeMutableRawPointer(predictedCount + 24).initializeMemory(as: RFC3339Fast.DateMemo.self,
                                                                      repeating: RFC3339Fast.DateMemo(),
                                                                      count: RFC3339Fast.memoCount)
        UnsafeMutableRawPointer(predictedCount + EventScanner.prefixAt).initializeMemory(as: PrefixMemo.self,
                                                                                         repeating: PrefixMemo(), count: 1)
        var counts = [Int](repeating: 0, count: 8)
        for (context, name, slot) in ScanContext.names {
            let n = name.utf8CodeUnitCount
            precondition(n >= 1 && n <= 21)
            var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: name.utf8Start, count: n)) }
            let order = counts[Int(context)]
            counts[Int(context)] += 1
            let entry = KeyEntry(w0: UInt64(littleEndian: words.0), w1: UInt64(littleEndian: words.1),
                                 w2: UInt64(littleEndian: words.2), length: Int32(n), slot: slot, order: Int32(order))
            var h = EventScanner.keyHash(entry.w0, n)
            while table[Int(context) &* 32 &+ h].length != 0 { h = (h &+ 1) & 31 }
            table[Int(context) &* 32 &+ h] = entry
            // `"name":` (at most 24 bytes) and the masks of its bytes in each word.
            var quoted: (UInt64, UInt64, UInt64) = (0, 0, 0)
            var masks: (UInt64, UInt64, UInt64) = (0, 0, 0)
            let text = [UInt8(ascii: "\"")] + Array(UnsafeRawBufferPointer(start: name.utf8Start, count: n)) + [UInt8(ascii: "\""), UInt8(ascii: ":")]
            withUnsafeMutableBytes(of: &quoted) { q in text.withUnsafeBytes { q.copyMemory(from: $0) } }
            withUnsafeMutableBytes(of: &masks) { m in for k in 0..<text.count { m[k] = 0xFF } }
            precondition(order < 16)
            predicted[Int(context) &* 16 &+ order] = PredictedKey(
                q0: UInt64(littleEndian: quoted.0), q1: UInt64(littleEndian: quoted.1), q2: UInt64(littleEndian: quoted.2),
                m0: UInt64(littleEndian: masks.0), m1: UInt64(littleEndian: masks.1), m2: UInt64(littleEndian: masks.2),
                length: text.count, slot: Int(slot),
                frame: FastFrame(start: 0, slot: Int(slot), context: context, resume: order &+ 1))
        }
        for k in 0..<8 where k < Int(ScanContext.other) { predictedCount[k] = counts[k] }
    }

    deinit {
        slots.deallocate()
        table.deallocate()
        predicted.deallocate()
        predictedCount.deallocate()
        state.pointee.templates.deallocate()
        state.pointee.templateData.deallocate()
        state.pointee.unknownKeys.deallocate()
        state.pointee.unknownOpens.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    @inline(__always) private func membersKnown(in context: UInt8) -> Int { predictedCount[Int(context & 7)] }

    /// Whether `scan` tries the fast path first (on by default; tests turn it off to compare the two paths).
    package var fastPathEnabled: Bool {
        get { predictedCount[8] != 0 || predictedCount[19] != 0 }
        nonmutating set {
            predictedCount[8] = newValue ? 1 : 0
            predictedCount[19] = 0
        }
    }

    /// Whether the fast path reads the next body with `scanFastReordering` (after a body whose root's members came
    /// in another order; tests check the mode's edges).
    package var readsReorderedRoots: Bool { predictedCount[19] != 0 }

    /// `specialBytes`' constants `"`, `\\`, 0x01, 0x20, 0x80 in every byte, for `fastStringEnd`.
    private var masks: UnsafePointer<UInt64> {
        UnsafeRawPointer(predictedCount + 10).assumingMemoryBound(to: UInt64.self)
    }

    /// The date-time decoder's memo of dates (`RFC3339Fast.parse`), kept with the scanner that holds the bodies it reads.
    var dateMemos: UnsafeMutablePointer<RFC3339Fast.DateMemo> {
        UnsafeMutableRawPointer(predictedCount + 24).assumingMemoryBound(to: RFC3339Fast.DateMemo.self)
    }

    /// 10^0 ... 10^8, for `fastInteger`.
    private var powers: UnsafePointer<UInt64> {
        UnsafeRawPointer(predictedCount + EventScanner.powersAt).assumingMemoryBound(to: UInt64.self)
    }

    /// The first member of the last body the fast path read, when it was eventType (`PrefixMemo`).
    private var prefixMemo: UnsafeMutablePointer<PrefixMemo> {
        UnsafeMutableRawPointer(predictedCount + EventScanner.prefixAt).assumingMemoryBound(to: PrefixMemo.self)
    }

    /// The prefix memo's 64 bytes (`PrefixMemo.storage`, its first field).
    private var prefixBytes: UnsafeMutableRawPointer { UnsafeMutableRawPointer(predictedCount + EventScanner.prefixAt) }

    /// When the last scan's body began as the prefix memo's did (same bytes up to and including the comma after
    /// eventType's value): `EventType.rawValue + 1` of that value, or 6 when it is not a listed type; 0 otherwise (then
    /// the eventType slot is read as usual). `EventDecoder.eventType` reads it so that a repeated type is not compared
    /// again.
    package var knownEventType: UInt8 { UInt8(truncatingIfNeeded: predictedCount[15]) }

    /// The fast path's stack of open containers (`scanFast`: at most three deep).
    private var frames: UnsafeMutablePointer<FastFrame> {
        UnsafeMutableRawPointer(predictedCount + 20).assumingMemoryBound(to: FastFrame.self)
    }

    /// Whether the last scan was accepted by the fast path.
    package var lastScanWasFast: Bool { predictedCount[9] != 0 }

    /// Whether the last scan's fast path began from an envelope template (`TemplateMemo`), whatever it then decided.
    package var lastScanUsedTemplate: Bool { predictedCount[16] != 0 }

    /// Whether the fast path remembers envelope templates (on by default; tests of the prefix memo's own edges turn
    /// it off). Turning it off forgets the templates.
    package var templatesEnabled: Bool {
        get { predictedCount[17] == 0 }
        nonmutating set {
            predictedCount[17] = newValue ? 0 : 1
            if !newValue {
                for k in 0..<EventScanner.templateCount { state.pointee.templates[k] = TemplateMemo() }
            }
        }
    }

    /// Everything a scan leaves for its readers, as text (tests compare the fast path with the general one).
    package func stateDescription(_ outcome: ScanOutcome) -> String {
        var out = "\(outcome) root=\(rootKind) present=\(String(present, radix: 16)) problem=\(problemIndex)/\(problemIsType)"
            + " crn=\(crnCount)@\(crnIndex)"
        for k in 0..<Int32(EventSlot.count) where present & (1 &<< UInt64(k)) != 0 {
            let n = slots[Int(k)]
            out += " \(k):\(n.kind)/\(n.flag)/\(n.start)-\(n.end)/\(n.count)/\(n.next)"
            // `integer` is read only from numbers (the fast path leaves it as it was in other slots).
            if n.kind == .number { out += "/\(n.integer)" }
        }
        return out
    }

    @inline(__always) private static func keyHash(_ w0: UInt64, _ n: Int) -> Int {
        Int(truncatingIfNeeded: ((w0 ^ UInt64(truncatingIfNeeded: n)) &* 0x9E37_79B9_7F4A_7C15) &>> 59)
    }

    // MARK: - Inspection (handles are slot numbers)

    /// The slot's handle when it holds a non-null value, else -1.
    @inline(__always) package func value(_ slot: Int32) -> Int32 { present & (1 &<< UInt64(slot)) != 0 ? slot : -1 }

    @inline(__always) package func node(_ slot: Int32) -> JSONNode { slots[Int(slot)] }

    /// The raw bytes of a string slot without quotes (escapes not decoded).
    @inline(__always) package func rawBytes(_ slot: Int32) -> UnsafeRawBufferPointer {
        let n = slots[Int(slot)]
        return UnsafeRawBufferPointer(start: base! + Int(n.start), count: Int(n.end &- n.start))
    }

    /// The decoded UTF-8 bytes of a string slot.
    package func decodedBytes(_ slot: Int32) -> [UInt8] {
        let n = slots[Int(slot)]
        return JSONReader.unescape(base!, Int(n.start), Int(n.end))
    }

    /// The decoded value of a string slot.
    package func string(_ slot: Int32) -> String {
        if !slots[Int(slot)].flag { return String(decoding: rawBytes(slot), as: UTF8.self) }
        return String(decoding: decodedBytes(slot), as: UTF8.self)
    }

    /// Calls `body` with the decoded bytes of a string slot, without allocating when there are no escapes.
    @inline(__always)
    package func withStringBytes<R>(_ slot: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if !slots[Int(slot)].flag { return body(rawBytes(slot)) }
        let bytes = decodedBytes(slot)
        return bytes.withUnsafeBytes(body)
    }

    /// Whether a string slot's decoded value equals the given bytes.
    @inline(__always)
    package func stringEquals(_ slot: Int32, _ other: UnsafeRawBufferPointer) -> Bool {
        let n = slots[Int(slot)]
        if n.flag { return decodedBytes(slot).elementsEqual(other) }
        let len = Int(n.end &- n.start)
        return len == other.count && (len == 0 || bytesEqual(base! + Int(n.start), other.baseAddress!, count: len))
    }

    // MARK: - Scanning

    /// Scans `body`; the buffer must stay alive while the slots are inspected.
    package mutating func scan(_ body: UnsafeRawBufferPointer) -> ScanOutcome {
        present = 0
        problemIndex = -1
        problemIsType = false
        crnCount = 0
        crnIndex = 0
        rootKind = .null
        // Not fast until the fast path accepts this body (also when it is not tried: empty, not an object, turned off).
        predictedCount[9] = 0
        predictedCount[16] = 0
        guard let raw = body.baseAddress, body.count > 0 else {
            base = nil
            length = 0
            return .json("body is empty")
        }
        precondition(body.count < Int(Int32.max), "JSON body of \(body.count) bytes")
        let p = raw.assumingMemoryBound(to: UInt8.self)
        base = p
        length = body.count
        EventScanner.prefetchBody(raw, body.count)
        var i = skipWhitespace(p, 0)
        predictedCount[15] = 0
        if i < length, p[i] == UInt8(ascii: "{"), predictedCount[8] != 0 {
            rootKind = .object
            if scanFast(p, i) {
                predictedCount[9] = 1
                if predictedCount[15] == 0 && present & 1 != 0 { rememberPrefix(p, i) }
                return .ok
            }
            // Declined: start again from a clean state (the slots are read only where `present` says so).
            clearAfterDecline()
            if state.pointee.wantsReordering && scanReordering(p, i) { return .ok }
        } else if predictedCount[19] != 0, i < length, p[i] == UInt8(ascii: "{") {
            rootKind = .object
            if scanReordering(p, i) { return .ok }
        }
        var ok: Bool
        if i >= length {
            ok = fail("body is empty")
        } else {
            rootKind = kindAt(p[i])
            ok = parseValue(p, &i, depth: 0, slot: -1, context: ScanContext.root)
            if ok {
                i = skipWhitespace(p, i)
                if i != length { ok = fail("unexpected data after the JSON value at byte \(i)") }
            }
        }
        if ok { return .ok }
        return failed(body)
    }

    /// How many bodies the fast path reads with `scanFastReordering` before `scanFast` again, when none of them had
    /// its root's members in another order.
    static let reorderingBodies = 256

    /// The fast path for a body whose root's known members may come in another order (`scanFastReordering`): after
    /// `scanFast` declined this body for that (`wantsReordering`, then the bodies after it are read this way until
    /// `reorderingBodies` in a row were not reordered: `predictedCount[19]` counts down, and `predictedCount[8]` is 0
    /// meanwhile, so that `scan` comes here without a test of its own), or in that mode. True: accepted, as in `scan`;
    /// false: declined, the state clean for the general path.
    @inline(never)
    private mutating func scanReordering(_ p: UnsafePointer<UInt8>, _ start: Int) -> Bool {
        let declined = state.pointee.wantsReordering
        state.pointee.wantsReordering = false
        state.pointee.reordered = false
        predictedCount[15] = 0
        predictedCount[16] = 0
        let accepted = scanFastReordering(p, start)
        if state.pointee.reordered {
            predictedCount[19] = EventScanner.reorderingBodies
            predictedCount[8] = 0
        } else if !declined {
            predictedCount[19] &-= 1
            if predictedCount[19] == 0 { predictedCount[8] = 1 }
        }
        if accepted {
            predictedCount[9] = 1
            if predictedCount[15] == 0 && present & 1 != 0 { rememberPrefix(p, start) }
            return true
        }
        clearAfterDecline()
        return false
    }

    /// What a declined fast scan leaves for the general path: no member present, no problem noted, no CRN counted, and
    /// no template hit pending (`predictedCount[15]`).
    @inline(__always)
    private mutating func clearAfterDecline() {
        predictedCount[15] = 0
        present = 0
        problemIndex = -1
        problemIsType = false
        crnCount = 0
        crnIndex = 0
    }

    /// The outcome of a failed scan: UTF-8 comes first (the scan may have stopped before a bad byte).
    @inline(never)
    private mutating func failed(_ body: UnsafeRawBufferPointer) -> ScanOutcome {
        present = 0
        if failure.isEmpty || !isValidUTF8(body) { return .utf8 }
        return .json(failure)
    }

    /// Records a JSON error; always false.
    @inline(never)
    private mutating func fail(_ message: String) -> Bool {
        failure = message
        return false
    }

    /// Records invalid UTF-8 found inside a string; always false.
    @inline(never)
    private mutating func failUTF8() -> Bool {
        failure = ""
        return false
    }

    @inline(__always) private func kindAt(_ c: UInt8) -> JSONKind {
        switch c {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"): return .true
        case UInt8(ascii: "f"): return .false
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    @inline(__always)
    private func skipWhitespace(_ p: UnsafePointer<UInt8>, _ start: Int) -> Int { JSONReader.skipWhitespace(p, start, length) }

    @inline(__always)
    private mutating func record(_ slot: Int, _ node: JSONNode) {
        slots[slot] = node
        present |= 1 &<< UInt64(truncatingIfNeeded: slot)
    }

    /// Parses the value at `i`; with `slot` ≥ 0 records it there (null: nothing recorded). `context` is the context
    /// of the value when it is an object (`identifierList`: it is personReference.identifiers, when an array).
    private mutating func parseValue(_ p: UnsafePointer<UInt8>, _ i: inout Int, depth: Int, slot: Int, context: UInt8) -> Bool {
        guard i < length else { return fail("unexpected end of body") }
        switch p[i] {
        case UInt8(ascii: "\""):
            let start = i &+ 1
            guard let escapes = scanString(p, &i) else { return false }
            if slot >= 0 {
                record(slot, JSONNode(kind: .string, flag: escapes, start: Int32(truncatingIfNeeded: start),
                                      end: Int32(truncatingIfNeeded: i &- 1), count: 0, next: 0, integer: 0))
            }
            return true
        case UInt8(ascii: "{"):
            let start = i
            guard parseObject(p, &i, depth: depth, context: context) else { return false }
            if slot >= 0 {
                record(slot, JSONNode(kind: .object, flag: false, start: Int32(truncatingIfNeeded: start),
                                      end: Int32(truncatingIfNeeded: i), count: 0, next: 0, integer: 0))
            }
            return true
        case UInt8(ascii: "["):
            let start = i
            guard parseArray(p, &i, depth: depth, identifiers: context == ScanContext.identifierList) else { return false }
            if slot >= 0 {
                record(slot, JSONNode(kind: .array, flag: false, start: Int32(truncatingIfNeeded: start),
                                      end: Int32(truncatingIfNeeded: i), count: 0, next: 0, integer: 0))
            }
            return true
        case UInt8(ascii: "t"): return parseLiteral(p, &i, "true", .true, slot: slot)
        case UInt8(ascii: "f"): return parseLiteral(p, &i, "false", .false, slot: slot)
        case UInt8(ascii: "n"): return parseLiteral(p, &i, "null", .null, slot: -1)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return parseNumber(p, &i, slot: slot)
        default: return fail("unexpected character at byte \(i)")
        }
    }

    private mutating func parseLiteral(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ word: StaticString, _ kind: JSONKind,
                                       slot: Int) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i &+ n <= length, memcmp(p + i, word.utf8Start, n) == 0 else {
            return fail("invalid literal at byte \(i)")
        }
        if slot >= 0 {
            record(slot, JSONNode(kind: kind, flag: false, start: Int32(truncatingIfNeeded: i), end: Int32(truncatingIfNeeded: i &+ n),
                                  count: 0, next: 0, integer: 0))
        }
        i &+= n
        return true
    }

    /// The usual number, a positive integer of at most 16 digits at `i` (where the caller saw a digit 1–9): its node
    /// and end, or nil when the number goes on (another digit, a fraction or an exponent), which only `parseNumber`
    /// reads. The general and the fast path both read it here.
    @inline(__always)
    private static func shortInteger(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (node: JSONNode, end: Int)? {
        var j = i
        var value: UInt64 = 0
        let limit = min(i &+ 16, n)
        while j < limit, p[j] &- 48 < 10 {
            value = value &* 10 &+ UInt64(p[j] &- 48)
            j &+= 1
        }
        if j < n && (p[j] &- 48 < 10 || p[j] == UInt8(ascii: ".") || p[j] | 0x20 == UInt8(ascii: "e")) { return nil }
        let safe = value <= JSONReader.maxSafeInteger
        return (JSONNode(kind: .number, flag: safe, start: Int32(truncatingIfNeeded: i), end: Int32(truncatingIfNeeded: j),
                         count: 0, next: 0, integer: safe ? value : 0), j)
    }

    private mutating func parseNumber(_ p: UnsafePointer<UInt8>, _ pos: inout Int, slot: Int) -> Bool {
        guard let number = JSONReader.scanNumber(p, pos, length) else { return fail("invalid number at byte \(pos)") }
        if slot >= 0 {
            record(slot, JSONNode(kind: .number, flag: number.safe, start: Int32(truncatingIfNeeded: pos),
                                  end: Int32(truncatingIfNeeded: number.end), count: 0, next: 0,
                                  integer: number.safe ? number.value : 0))
        }
        pos = number.end
        return true
    }

    /// A mask with the high bit set in each byte of `w` that is `"`, `\\`, below 0x20 or above 0x7F; bits above the
    /// lowest one may be spurious (borrows), so only the lowest is meaningful.
    @inline(__always) private static func specialBytes(_ w: UInt64) -> UInt64 {
        // A byte below 0x80 gets its high bit from `x - 1` only when x is 0 (`"` or `\\` after the xor) and from
        // `w - 0x20` only when it is below 0x20; a byte from 0x80 up is flagged by `w` itself. Borrows run upwards only.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let q = w ^ (ones &* 0x22)
        let s = w ^ (ones &* 0x5C)
        return ((q &- ones) | (s &- ones) | (w &- ones &* 0x20) | w) & 0x8080_8080_8080_8080
    }

    /// Starts loading every cache line of the body's first 1,024 bytes (a hint, before anything reads them). A body
    /// that is not in the caches (the bench's stream of 174 MB) was otherwise read one miss at a time: the template's
    /// last block first, then the fast path's strings as it met them, each waiting for its line.
    @inline(__always) static func prefetchBody(_ raw: UnsafeRawPointer, _ count: Int) {
        // Lines from the one holding the first byte to the one holding byte min(count, 1024) - 1.
        let first = UInt(bitPattern: raw) & ~63
        let last = (UInt(bitPattern: raw) &+ UInt(Swift.min(count, 1024)) &- 1) & ~63
        var line = first
        while line <= last {
            cw_prefetch(UnsafeRawPointer(bitPattern: line))
            line &+= 64
        }
    }

    /// Scans the string whose opening quote is at `pos`; leaves `pos` after its closing quote. Returns whether it
    /// contains escapes, nil on an error (recorded).
    @inline(__always)
    private mutating func scanString(_ p: UnsafePointer<UInt8>, _ pos: inout Int) -> Bool? {
        let n = length
        let open = pos
        var i = open &+ 1
        var escapes = false
        while true {
            while i &+ 8 <= n {
                let m = EventScanner.specialBytes(UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)))
                if m == 0 { i &+= 8; continue }
                i &+= m.trailingZeroBitCount &>> 3
                break
            }
            guard i < n else { _ = fail("unterminated string at byte \(open)"); return nil }
            let c = p[i]
            if c == UInt8(ascii: "\"") { break }
            if c >= 0x80 {
                guard let next = EventScanner.utf8Sequence(p, i, n) else { _ = failUTF8(); return nil }
                i = next
                continue
            }
            if c < 0x20 { _ = fail("control character in string at byte \(i)"); return nil }
            if c == UInt8(ascii: "\\") {
                escapes = true
                guard scanEscape(p, &i, open: open) else { return nil }
                continue
            }
            i &+= 1
        }
        pos = i &+ 1
        return escapes
    }

    /// The index after the UTF-8 sequence whose lead byte (≥ 0x80) is at `i`, nil when it is not valid RFC 3629
    /// (the rules of `isValidUTF8`).
    @inline(never)
    private static func utf8Sequence(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int? {
        let c = p[i]
        if c >= 0xC2 && c <= 0xDF {
            guard i + 1 < n, p[i + 1] & 0xC0 == 0x80 else { return nil }
            return i + 2
        } else if c >= 0xE0 && c <= 0xEF {
            guard i + 2 < n else { return nil }
            let c1 = p[i + 1], c2 = p[i + 2]
            guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80 else { return nil }
            if c == 0xE0 && c1 < 0xA0 { return nil }
            if c == 0xED && c1 > 0x9F { return nil }
            return i + 3
        } else if c >= 0xF0 && c <= 0xF4 {
            guard i + 3 < n else { return nil }
            let c1 = p[i + 1], c2 = p[i + 2], c3 = p[i + 3]
            guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80, c3 & 0xC0 == 0x80 else { return nil }
            if c == 0xF0 && c1 < 0x90 { return nil }
            if c == 0xF4 && c1 > 0x8F { return nil }
            return i + 4
        }
        return nil
    }

    /// Validates the escape at `i` (a backslash in the string opened at `open`) and moves past it.
    @inline(never)
    private mutating func scanEscape(_ p: UnsafePointer<UInt8>, _ i: inout Int, open: Int) -> Bool {
        guard let problem = JSONReader.scanEscape(p, &i, open: open, length: length) else { return true }
        return fail(problem)
    }

    private mutating func parseArray(_ p: UnsafePointer<UInt8>, _ pos: inout Int, depth: Int, identifiers: Bool) -> Bool {
        guard depth < EventScanner.maxDepth else { return fail("nested too deeply") }
        var i = pos &+ 1
        i = skipWhitespace(p, i)
        if i < length, p[i] == UInt8(ascii: "]") {
            i &+= 1
        } else {
            var index: Int32 = 0
            while true {
                i = skipWhitespace(p, i)
                if identifiers {
                    // One element of personReference.identifiers: its type and value land in the identifier slots.
                    present &= ~(1 &<< UInt64(EventSlot.identifierType) | 1 &<< UInt64(EventSlot.identifierValue))
                    let isObject = i < length && p[i] == UInt8(ascii: "{")
                    guard parseValue(p, &i, depth: depth &+ 1, slot: -1, context: ScanContext.identifier)
                    else { return false }
                    noteIdentifier(index, isObject: isObject)
                    index &+= 1
                } else {
                    guard parseValue(p, &i, depth: depth &+ 1, slot: -1, context: ScanContext.other) else { return false }
                }
                i = skipWhitespace(p, i)
                guard i < length else { return fail("unterminated array") }
                if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if p[i] == UInt8(ascii: "]") { i &+= 1; break }
                return fail("expected ',' or ']' at byte \(i)")
            }
        }
        pos = i
        return true
    }

    /// Summarises one scanned element of personReference.identifiers (as `ReferenceEventDecoder.person` reads them).
    private mutating func noteIdentifier(_ index: Int32, isObject: Bool) {
        guard problemIndex < 0 else { return }
        guard isObject else {
            problemIndex = index
            problemIsType = false
            return
        }
        let type = value(EventSlot.identifierType)
        guard type >= 0, slots[Int(type)].kind == .string else {
            problemIndex = index
            problemIsType = true
            return
        }
        if withStringBytes(type, { bytesEqual($0, "CRN" as StaticString) }) {
            crnCount &+= 1
            crnIndex = index
            if value(EventSlot.identifierValue) >= 0 {
                record(Int(EventSlot.crnValue), slots[Int(EventSlot.identifierValue)])
            } else {
                present &= ~(1 &<< UInt64(EventSlot.crnValue))
            }
        }
    }

    /// The first (up to) eight bytes of `p[start..<start+count]`, little-endian, zero-padded.
    @inline(__always)
    private static func word(_ p: UnsafePointer<UInt8>, _ start: Int, _ count: Int, _ length: Int) -> UInt64 {
        if start &+ 8 <= length {
            let w = UInt64(littleEndian: UnsafeRawPointer(p + start).loadUnaligned(as: UInt64.self))
            return count >= 8 ? w : w & ((1 &<< UInt64(truncatingIfNeeded: count &* 8)) &- 1)
        }
        return wordNearEnd(p, start, count)
    }

    /// `word` within the last eight bytes of the buffer.
    @inline(never)
    private static func wordNearEnd(_ p: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> UInt64 {
        var v: UInt64 = 0
        var k = 0
        while k < count && k < 8 {
            v |= UInt64(p[start &+ k]) &<< UInt64(k &* 8)
            k &+= 1
        }
        return v
    }

    /// The slot of a key (unescaped bytes `p[start..<start+n]`, `w0` its first word) in `context`, plus its position
    /// in the context's list times 256; -1 when it is not a known member.
    @inline(__always)
    private func lookup(_ context: UInt8, _ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, _ w0: UInt64, limit: Int) -> Int {
        let row = table + Int(context) &* 32
        var h = EventScanner.keyHash(w0, n)
        while true {
            let e = row + h
            let len = Int(e.pointee.length)
            if len == 0 { return -1 }
            if len == n && e.pointee.w0 == w0 {
                if n <= 8 || EventScanner.tailEquals(e, p, start, n, limit) { return Int(e.pointee.slot) | Int(e.pointee.order) &<< 8 }
            }
            h = (h &+ 1) & 31
        }
    }

    /// Whether bytes 8..<n of a key equal the entry's (n > 8).
    @inline(never)
    private static func tailEquals(_ e: UnsafePointer<KeyEntry>, _ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, _ limit: Int) -> Bool {
        word(p, start &+ 8, n &- 8, limit) == e.pointee.w1 && (n <= 16 || word(p, start &+ 16, n &- 16, limit) == e.pointee.w2)
    }

    private mutating func parseObject(_ p: UnsafePointer<UInt8>, _ pos: inout Int, depth: Int, context: UInt8) -> Bool {
        guard depth < EventScanner.maxDepth else { return fail("nested too deeply") }
        let open = pos
        var i = pos &+ 1
        var count = 0
        // Duplicate-key screening: known keys by slot bit, other keys by a 64-bit hash set (see the file comment).
        var known: UInt64 = 0
        var others: UInt64 = 0
        var suspect = false
        i = skipWhitespace(p, i)
        if i < length, p[i] == UInt8(ascii: "}") {
            i &+= 1
        } else {
            let keyed = context < ScanContext.other
            let listed = membersKnown(in: context)
            let row = predicted + Int(context) &* 16
            /// The position in the context's list of the member expected next.
            var expect = 0
            while true {
                i = skipWhitespace(p, i)
                var slot = -1
                var matched = false
                // The predicted path: the next few members of the list, compared as `"name":` in place.
                if expect < listed && i &+ 24 <= length {
                    let q = UnsafeRawPointer(p + i)
                    let a = UInt64(littleEndian: q.loadUnaligned(as: UInt64.self))
                    let b = UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                    let c = UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
                    var k = expect
                    let last = min(expect &+ 4, listed)
                    while k < last {
                        let e = row + k
                        if a & e.pointee.m0 == e.pointee.q0 && b & e.pointee.m1 == e.pointee.q1 && c & e.pointee.m2 == e.pointee.q2 {
                            slot = e.pointee.slot
                            i &+= e.pointee.length
                            expect = k &+ 1
                            matched = true
                            break
                        }
                        k &+= 1
                    }
                }
                if matched {
                    let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: slot)
                    suspect = suspect || known & bit != 0
                    known |= bit
                } else {
                    guard i < length, p[i] == UInt8(ascii: "\"") else { return fail("expected a key at byte \(i)") }
                    let keyStart = i &+ 1
                    guard let escaped = scanString(p, &i) else { return false }
                    let keyLength = i &- 1 &- keyStart
                    var found = -1
                    if escaped {
                        suspect = true
                        if keyed {
                            let bytes = JSONReader.unescape(p, keyStart, keyStart &+ keyLength)
                            found = bytes.withUnsafeBufferPointer { b in
                                b.isEmpty ? -1 : lookup(context, b.baseAddress!, 0, b.count,
                                                        EventScanner.word(b.baseAddress!, 0, b.count, b.count), limit: b.count)
                            }
                        }
                    } else {
                        let w0 = EventScanner.word(p, keyStart, keyLength, length)
                        if keyed { found = lookup(context, p, keyStart, keyLength, w0, limit: length) }
                        if found >= 0 {
                            let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: found & 0xFF)
                            suspect = suspect || known & bit != 0
                            known |= bit
                        } else {
                            let bit: UInt64 = 1 &<< (((w0 ^ UInt64(truncatingIfNeeded: keyLength)) &* 0x9E37_79B9_7F4A_7C15) &>> 58)
                            suspect = suspect || others & bit != 0
                            others |= bit
                        }
                    }
                    if found >= 0 {
                        slot = found & 0xFF
                        expect = found &>> 8 &+ 1
                    }
                    i = skipWhitespace(p, i)
                    guard i < length, p[i] == UInt8(ascii: ":") else { return fail("expected ':' at byte \(i)") }
                    i &+= 1
                }
                i = skipWhitespace(p, i)
                let first = i < length ? p[i] : 0
                if first == UInt8(ascii: "\"") {
                    // A string value, the usual case, without a call.
                    let start = i &+ 1
                    guard let escapes = scanString(p, &i) else { return false }
                    if slot >= 0 {
                        record(slot, JSONNode(kind: .string, flag: escapes, start: Int32(truncatingIfNeeded: start),
                                              end: Int32(truncatingIfNeeded: i &- 1), count: 0, next: 0, integer: 0))
                    }
                } else if first &- UInt8(ascii: "1") < 9 {
                    // The usual number without a call; any other is read again by parseNumber.
                    if let (node, end) = Self.shortInteger(p, i, length) {
                        if slot >= 0 { record(slot, node) }
                        i = end
                    } else {
                        guard parseNumber(p, &i, slot: slot) else { return false }
                    }
                } else {
                    let childContext = ScanContext.child(of: slot)
                    guard parseValue(p, &i, depth: depth &+ 1, slot: slot, context: childContext) else { return false }
                }
                count &+= 1
                i = skipWhitespace(p, i)
                guard i < length else { return fail("unterminated object") }
                if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if p[i] == UInt8(ascii: "}") { i &+= 1; break }
                return fail("expected ',' or '}' at byte \(i)")
            }
        }
        pos = i
        if suspect && count > 1, let dup = duplicateKey(p, open) {
            return fail(JSONSyntaxError.duplicateKey(dup))
        }
        return true
    }

    // MARK: - Fast path

    // The usual body, read without the general machinery: every object of the envelope's known contexts with its
    // known members each in its context's list order (so no known key can repeat), string values without escapes,
    // positive integers of at most 16 digits, true/false/null, `personReference.identifiers` an array of such objects,
    // and whitespace anywhere the grammar allows it. Members it does not know (a key not in its object's list, without
    // escapes, whose bytes no earlier key of its object has) are stepped over with their values, whatever JSON they
    // hold (`skipUnknownMember`: nothing is recorded for them, as in the general path). Anything else — a known key
    // out of order or repeated, a repeated or escaped unknown key, an escape in a known member's string, a control
    // character, a number of another form, an empty or unexpected container in a known member, invalid UTF-8, any
    // syntax error — makes it decline, and `scan` runs the general path from the start, which alone decides errors
    // and their messages.
    // When it accepts, the body is valid (every byte was matched by the grammar: keys and punctuation exactly, strings
    // through the same UTF-8 rules) and it has recorded exactly what the general path records, in the same order
    // (`EventScannerDifferentialTests` compare the two paths' whole state on every line).

    /// Reads the root object at `start` (a `{`) and the known containers in it in one loop, without recursion: `frames`
    /// holds the containers the current object is inside of (at most three: root › personReference › identifiers ›
    /// one identifier; root › additionalInformation › outcome). True when the whole body was read; false: declined.
    /// A known root member out of the list's order declines (`wantsReordering` set): `scanFastReordering` reads it.
    @inline(never)
    private mutating func scanFast(_ p: UnsafePointer<UInt8>, _ start: Int) -> Bool {
        scanFast(p, start, reordering: false)
    }

    /// `scanFast` that also reads the root's known members in another order (`reorderedRootMember`): publisherId and
    /// sequenceNumber first or last, as another publisher may write them. A copy of its own, so that the copy the
    /// usual body takes is compiled as it was (with this case in it, the loop kept fewer values in registers: 11 to 61
    /// more instructions an event on the callgrind stream).
    @inline(never)
    private mutating func scanFastReordering(_ p: UnsafePointer<UInt8>, _ start: Int) -> Bool {
        scanFast(p, start, reordering: true)
    }

    @inline(__always)
    private mutating func scanFast(_ p: UnsafePointer<UInt8>, _ start: Int, reordering: Bool) -> Bool {
        let n = length
        let slots = self.slots
        let masks = self.masks
        let frames = self.frames
        let predicted = self.predicted
        let counts = self.predictedCount
        let powers = self.powers
        /// `present`, kept here until the end (`noteIdentifier` reads and writes it in `self`).
        var found: UInt64 = 0
        var depth = 0
        var context = ScanContext.root
        /// The members of the current object's list that may come next: from `next` up to `end`.
        var next = predicted + Int(ScanContext.root) &* 16
        var end = next + counts[Int(ScanContext.root)]
        /// The index in personReference.identifiers of the identifier being read.
        var element: Int32 = 0
        var i = start &+ 1
        counts[18] = 0
        // The body begins as one whose envelope was remembered: its state up to additionalInformation's `{` is the
        // template's (replayed below).
        let hit = templateHit(p, start, n)
        // The body begins as the last one whose first member was eventType did: that member is read from the memo.
        let memo = self.prefixMemo
        if hit < 0, start &+ 64 <= n,
           ~cw_equal64(p + start, prefixBytes.assumingMemoryBound(to: UInt8.self)) & memo.pointee.mask == 0 {
            EventScanner.set(slots, Int(EventSlot.eventType), .string, start &+ memo.pointee.valueStart, start &+ memo.pointee.valueEnd)
            found = 1 &<< UInt64(EventSlot.eventType)
            next = predicted + (Int(ScanContext.root) &* 16 &+ 1)
            if memo.pointee.hasVersion {
                var v = memo.pointee.version
                v.start &+= Int32(truncatingIfNeeded: start)
                v.end &+= Int32(truncatingIfNeeded: start)
                slots[Int(EventSlot.version)] = v
                found |= 1 &<< UInt64(EventSlot.version)
                next += 1
            }
            i = start &+ memo.pointee.length
            counts[15] = memo.pointee.eventType
        }

        /// Makes `child` the current object, from the member at position `resume` of its list.
        @inline(__always) func enter(_ child: UInt8, at resume: Int) {
            context = child
            let row = predicted + Int(child) &* 16
            next = row + resume
            end = row + counts[Int(child)]
        }
        /// At `i`: whitespace, then the `{` of an element of personReference.identifiers (as `parseArray` reads it).
        @inline(__always) func enterIdentifier() -> Bool {
            guard EventScanner.nextByte(p, &i, n) == UInt8(ascii: "{") else { return false }
            frames[depth] = FastFrame(start: i, slot: 0, context: ScanContext.identifierList, resume: 0)
            depth &+= 1
            found &= ~(1 &<< UInt64(EventSlot.identifierType) | 1 &<< UInt64(EventSlot.identifierValue))
            enter(ScanContext.identifier, at: 0)
            i &+= 1
            return true
        }
        if hit >= 0 {
            let t = state.pointee.templates + hit
            let nodes = (state.pointee.templateData + (hit &* EventScanner.templateStride &+ EventScanner.templateNodesAt))
                .assumingMemoryBound(to: JSONNode.self)
            let delta = Int32(truncatingIfNeeded: start)
            found = t.pointee.found
            var f = found
            while f != 0 {
                let k = f.trailingZeroBitCount
                var node = nodes[k]
                node.start &+= delta
                node.end &+= delta
                slots[k] = node
                f &= f &- 1
            }
            frames[0] = FastFrame(word: t.pointee.frame &+ start)
            depth = 1
            element = t.pointee.element
            problemIndex = t.pointee.problemIndex
            problemIsType = t.pointee.problemIsType
            crnCount = t.pointee.crnCount
            crnIndex = t.pointee.crnIndex
            if t.pointee.numberAt >= 0, let (node, _) = EventScanner.fastInteger(p, start &+ t.pointee.numberAt, n, powers) {
                slots[Int(EventSlot.sequenceNumber)] = node
            }
            counts[15] = t.pointee.eventType
            counts[16] = 1
            if t.pointee.unknownCount > 0 { replayUnknownKeys(t, start) }
            enter(ScanContext.info, at: 0)
            i = start &+ t.pointee.length
        }

        member: while true {
            // After `{` or `,`: the key, as `"name":`, among the members of the list not passed yet. No key starts
            // with whitespace, so whitespace before it is skipped only when nothing matched (then look again).
            var e = next
            while true {
                let (a, b, c) = EventScanner.keyWords(p, i, n)
                e = next
                while e < end && !(a & e.pointee.m0 == e.pointee.q0 && b & e.pointee.m1 == e.pointee.q1
                                   && c & e.pointee.m2 == e.pointee.q2) {
                    e += 1
                }
                if e < end { break }
                let j = i < n ? EventScanner.fastSkip(p, i, n) : i
                if j > i {
                    i = j
                    continue
                }
                // Not a member of the list from `next` on: one the fast path does not know, stepped over with its
                // value (or declined), then `,` and the next key, or `}` (read below as after a value: the
                // placeholder entry, slot -1 and no bytes, has no value).
                let after = skipUnknownMember(p, i, n, context, depth == 0 ? start : frames[depth &- 1].start)
                if after < 0 {
                    // A known root member out of the list's order (e.g. publisherId and sequenceNumber written first
                    // or last): read from a list that holds it and the root's members that may still come.
                    guard after == -2 else { return false }
                    guard reordering else {
                        state.pointee.wantsReordering = true
                        return false
                    }
                    let count = reorderedRootMember(p, i, n, seen: found, next: next, end: end)
                    guard count > 0 else { return false }
                    next = predicted + Int(ScanContext.other) &* 16
                    end = next + count
                    continue
                }
                i = after
                guard let s = EventScanner.nextByte(p, &i, n) else { return false }
                if s == UInt8(ascii: ",") {
                    i &+= 1
                    continue
                }
                guard s == UInt8(ascii: "}") else { return false }
                e = predicted + Int(ScanContext.identifierList) &* 16
                break
            }
            next = e + 1
            let slot = e.pointee.slot
            i &+= e.pointee.length
            guard let first = EventScanner.nextByte(p, &i, n) else { return false }
            if first == UInt8(ascii: "\"") {
                let close = EventScanner.fastStringEnd(p, i &+ 1, n, masks)
                guard close >= 0 else { return false }
                EventScanner.set(slots, slot, .string, i &+ 1, close)
                found |= 1 &<< UInt64(truncatingIfNeeded: slot)
                i = close &+ 1
            } else if first &- UInt8(ascii: "1") < 9 {
                // As parseObject reads it; anything else (and a body ending here) goes to the general path.
                guard let (node, after) = Self.fastInteger(p, i, n, powers), after < n else { return false }
                slots[slot] = node
                found |= 1 &<< UInt64(truncatingIfNeeded: slot)
                i = after
            } else if first == UInt8(ascii: "{") {
                let child = ScanContext.child(of: slot)
                guard child >= ScanContext.person && child <= ScanContext.action else { return false }
                frames[depth] = FastFrame(start: i, member: e.pointee.frame)
                depth &+= 1
                enter(child, at: 0)
                i &+= 1
                if child == ScanContext.info && depth == 1 && hit < 0 { recordTemplate(p, start, i, found, element) }
                continue member
            } else if first == UInt8(ascii: "[") {
                guard Int32(truncatingIfNeeded: slot) == EventSlot.identifiers else { return false }
                frames[depth] = FastFrame(start: i, member: e.pointee.frame)
                depth &+= 1
                element = 0
                i &+= 1
                guard enterIdentifier() else { return false }
                continue member
            } else if first == UInt8(ascii: "t") {
                guard i &+ 4 <= n, UInt32(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt32.self)) == 0x6575_7274 else { return false }
                EventScanner.set(slots, slot, .true, i, i &+ 4)
                found |= 1 &<< UInt64(truncatingIfNeeded: slot)
                i &+= 4
            } else if first == UInt8(ascii: "f") {
                guard i &+ 5 <= n, UInt32(littleEndian: UnsafeRawPointer(p + i + 1).loadUnaligned(as: UInt32.self)) == 0x6573_6C61 else { return false }
                EventScanner.set(slots, slot, .false, i, i &+ 5)
                found |= 1 &<< UInt64(truncatingIfNeeded: slot)
                i &+= 5
            } else if first == UInt8(ascii: "n") {
                guard i &+ 4 <= n, UInt32(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt32.self)) == 0x6C6C_756E else { return false }
                // Not recorded (its bit in `present` stays clear, as in the general path), but its slot says where
                // it was read: a root member read as null may not come again (`reorderedRootMember`).
                EventScanner.set(slots, slot, .null, i, i &+ 4)
                i &+= 4
            } else if first == UInt8(ascii: "}") && slot < 0 {
                // The placeholder after a member stepped over: its object closes (`next` is set again as it does).
            } else {
                return false
            }
            // After a value: `,` and the next member, or `}` closing the current object (and so on outwards).
            while true {
                guard let s = EventScanner.nextByte(p, &i, n) else { return false }
                if s == UInt8(ascii: ",") {
                    i &+= 1
                    continue member
                }
                guard s == UInt8(ascii: "}") else { return false }
                i &+= 1
                if depth == 0 { break member }
                depth &-= 1
                var f = frames[depth]
                var kind = JSONKind.object
                if context == ScanContext.identifier {
                    // One element of personReference.identifiers read: summarised, then `,` and the next, or `]`.
                    if problemIndex < 0 {
                        // `noteIdentifier(element, isObject: true)` inline: the fast path's strings have no escapes,
                        // so the type is its raw bytes.
                        let type = slots[Int(EventSlot.identifierType)]
                        if found & (1 &<< UInt64(EventSlot.identifierType)) == 0 || type.kind != .string {
                            problemIndex = element
                            problemIsType = true
                        } else if type.end &- type.start == 3, p[Int(type.start)] == UInt8(ascii: "C"),
                                  p[Int(type.start) &+ 1] == UInt8(ascii: "R"), p[Int(type.start) &+ 2] == UInt8(ascii: "N") {
                            crnCount &+= 1
                            crnIndex = element
                            if found & (1 &<< UInt64(EventSlot.identifierValue)) != 0 {
                                slots[Int(EventSlot.crnValue)] = slots[Int(EventSlot.identifierValue)]
                                found |= 1 &<< UInt64(EventSlot.crnValue)
                            } else {
                                found &= ~(1 &<< UInt64(EventSlot.crnValue))
                            }
                        }
                    }
                    element &+= 1
                    let after = EventScanner.nextByte(p, &i, n)
                    if after == UInt8(ascii: ",") {
                        i &+= 1
                        guard enterIdentifier() else { return false }
                        continue member
                    }
                    guard after == UInt8(ascii: "]") else { return false }
                    i &+= 1
                    depth &-= 1
                    f = frames[depth]
                    kind = .array
                }
                EventScanner.set(slots, f.slot, kind, f.start, i)
                found |= 1 &<< UInt64(truncatingIfNeeded: f.slot)
                enter(f.context, at: f.resume)
            }
        }
        present = found
        if i < n && p[i] <= 0x20 { i = EventScanner.fastSkip(p, i, n) }
        return i == n
    }

    /// Makes the first member of the body just read by the fast path (whose object starts at `start`) the prefix memo,
    /// when it is eventType with a string value followed by a comma, within the first 64 bytes: `{`, whitespace,
    /// `"eventType":`, whitespace, the string, whitespace, `,` — exactly what the fast path read for it, so that the
    /// same bytes leave the same state (the eventType slot, `present` bit 0, the next member searched from the list's
    /// second entry). When the second member is version with a number (which the fast path read as an integer) and a
    /// comma, still within 64 bytes, the memo holds it too (its slot, bit 1, the next member from the third entry).
    @inline(never)
    private func rememberPrefix(_ p: UnsafePointer<UInt8>, _ start: Int) {
        let n = length
        let value = slots[Int(EventSlot.eventType)]
        guard value.kind == .string, !value.flag else { return }
        var j = EventScanner.fastSkip(p, start &+ 1, n)
        guard j &+ 12 <= n, bytesEqual(UnsafeRawBufferPointer(start: p + j, count: 12), "\"eventType\":" as StaticString)
        else { return }
        j = EventScanner.fastSkip(p, j &+ 12, n)
        guard j &+ 1 == Int(value.start) else { return }
        let comma = EventScanner.fastSkip(p, Int(value.end) &+ 1, n)
        guard comma < n, p[comma] == UInt8(ascii: ","), comma &+ 1 &- start <= 64 else { return }
        var length = comma &+ 1 &- start
        var version: JSONNode? = nil
        if present & (1 &<< UInt64(EventSlot.version)) != 0, slots[Int(EventSlot.version)].kind == .number {
            let v = slots[Int(EventSlot.version)]
            var k = EventScanner.fastSkip(p, comma &+ 1, n)
            if k &+ 10 <= n, bytesEqual(UnsafeRawBufferPointer(start: p + k, count: 10), "\"version\":" as StaticString) {
                k = EventScanner.fastSkip(p, k &+ 10, n)
                let after = EventScanner.fastSkip(p, Int(v.end), n)
                if k == Int(v.start), after < n, p[after] == UInt8(ascii: ","), after &+ 1 &- start <= 64 {
                    length = after &+ 1 &- start
                    version = JSONNode(kind: v.kind, flag: v.flag, start: v.start &- Int32(start), end: v.end &- Int32(start),
                                       count: 0, next: 0, integer: v.integer)
                }
            }
        }
        let memo = prefixMemo
        memset(prefixBytes, 0, 64)  // untyped: the memo stays bound as `PrefixMemo` (see *Unsafe memory*)
        prefixBytes.copyMemory(from: p + start, byteCount: length)
        memo.pointee.mask = length == 64 ? ~0 : (1 &<< UInt64(length)) &- 1
        memo.pointee.length = length
        memo.pointee.valueStart = Int(value.start) &- start
        memo.pointee.valueEnd = Int(value.end) &- start
        let type = EventType(UnsafeRawBufferPointer(start: p + Int(value.start), count: Int(value.end &- value.start)))
        memo.pointee.eventType = type.map { Int($0.rawValue) &+ 1 } ?? 6
        memo.pointee.hasVersion = version != nil
        if let version { memo.pointee.version = version }
    }

    /// The template (`TemplateMemo`) whose bytes the body at `start` begins with, most recently used first (then made
    /// the most recent), or -1.
    @inline(__always)
    private func templateHit(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> Int {
        let templates = state.pointee.templates
        let data = state.pointee.templateData
        let order = UInt64(state.pointee.templateOrder)
        var rank = 0
        while rank < EventScanner.templateCount {
            let k = Int(truncatingIfNeeded: (order &>> UInt64(rank &* 8)) & 0xFF)
            let chunks = templates[k].chunks
            rank &+= 1
            guard chunks > 0, start &+ chunks &* 16 <= n else { continue }
            let bytes = (data + k &* EventScanner.templateStride).assumingMemoryBound(to: UInt8.self)
            let holes = (data + (k &* EventScanner.templateStride &+ EventScanner.templateHolesAt)).assumingMemoryBound(to: UInt16.self)
            // The exact bytes from the last block back (another envelope differs there first: the members after
            // eventType's value and after the identifiers move), then the holes' blocks.
            var c = chunks
            while c > 0, cw_template_differ16(p + (start &+ (c &- 1) &* 16), bytes + (c &- 1) &* 16,
                                             bytes + (EventScanner.templateMax &+ (c &- 1) &* 16)) == 0 {
                c &-= 1
            }
            guard c == 0 else { continue }
            var h = templates[k].holeChunks
            while h != 0, cw_string_specials16(p + (start &+ h.trailingZeroBitCount &* 16)) & UInt32(holes[h.trailingZeroBitCount]) == 0 {
                h &= h &- 1
            }
            guard h == 0 else { continue }
            let at = templates[k].numberAt
            if at >= 0 {
                let j = start &+ at
                guard p[j] &- UInt8(ascii: "1") < 9, let (_, after) = EventScanner.fastInteger(p, j, n, powers),
                      after == j &+ templates[k].numberLength else { continue }
            }
            if rank > 1 { state.pointee.templateOrder = EventScanner.toFront(k, rank &- 1, order) }
            return k
        }
        return -1
    }

    /// `order` (template indexes by recency, a byte each) with the index `k` at `rank` moved to the front.
    @inline(__always)
    private static func toFront(_ k: Int, _ rank: Int, _ order: UInt64) -> UInt32 {
        let below: UInt64 = (1 &<< UInt64(rank &* 8)) &- 1
        let through: UInt64 = (1 &<< UInt64((rank &+ 1) &* 8)) &- 1
        return UInt32(truncatingIfNeeded: (order & ~through) | ((order & below) &<< 8) | UInt64(k))
    }

    /// Makes the fast path's state on entering additionalInformation (its `{` just read, `after` the index after it)
    /// a template, in place of the least recently used one: when the envelope is at most `templateMax` bytes and the
    /// body has the blocks a comparison reads. The holes: the contents of occurredAt and of the identifiers' values
    /// (the last identifier's, and the CRN's), when they are strings. The root's members stepped over so far (at most
    /// four, else no template) are kept with it (`TemplateMemo.unknowns`).
    @inline(never)
    private func recordTemplate(_ p: UnsafePointer<UInt8>, _ start: Int, _ after: Int, _ found: UInt64, _ element: Int32) {
        let count = after &- start
        let chunks = (count &+ 15) &>> 4
        // (Not when a root member may have been null: a template keeps the slots filled, and a null fills none.)
        guard predictedCount[17] == 0, count <= EventScanner.templateMax, start &+ chunks &* 16 <= length,
              nullsRead(found, from: start, to: after) == 0 else { return }
        var unknowns: (Int, Int, Int, Int) = (0, 0, 0, 0)
        var unknownCount = 0
        let keys = state.pointee.unknownKeys
        for k in 0..<predictedCount[18] where Int(keys[k].open) == start {
            guard unknownCount < 4 else { return }
            let packed = (Int(keys[k].start) &- start) | Int(keys[k].length) &<< 32
            withUnsafeMutableBytes(of: &unknowns) { $0.storeBytes(of: packed, toByteOffset: unknownCount &* 8, as: Int.self) }
            unknownCount &+= 1
        }
        let order = UInt64(state.pointee.templateOrder)
        let k = Int(truncatingIfNeeded: order &>> 24)
        state.pointee.templateOrder = EventScanner.toFront(k, 3, order)
        let base = state.pointee.templateData + k &* EventScanner.templateStride
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        let exact = bytes + EventScanner.templateMax
        let holes = (base + EventScanner.templateHolesAt).assumingMemoryBound(to: UInt16.self)
        let nodes = (base + EventScanner.templateNodesAt).assumingMemoryBound(to: JSONNode.self)
        memset(base, 0, EventScanner.templateNodesAt)  // untyped: the holes stay bound as `UInt16`
        base.copyMemory(from: p + start, byteCount: count)
        exact.initialize(repeating: 0xFF, count: count)
        var holeChunks: UInt32 = 0
        func hole(_ from: Int, _ to: Int) {
            guard from >= 0 && to < count else { return }
            for j in from..<to {
                exact[j] = 0
                holes[j &>> 4] |= UInt16(1) &<< UInt16(j & 15)
                holeChunks |= 1 &<< UInt32(j &>> 4)
            }
        }
        func hole(_ slot: Int32) {
            guard found & (1 &<< UInt64(slot)) != 0, slots[Int(slot)].kind == .string else { return }
            hole(Int(slots[Int(slot)].start) &- start, Int(slots[Int(slot)].end) &- start)
        }
        hole(EventSlot.occurredAt)
        hole(EventSlot.crnValue)
        hole(EventSlot.identifierValue)
        // The string values of the members stepped over (their contents are read only for where they end).
        for k in 0..<predictedCount[18] where keys[k].valueEnd > keys[k].valueStart {
            hole(Int(keys[k].valueStart) &- start, Int(keys[k].valueEnd) &- start)
        }
        var numberAt = -1, numberLength = 0
        let sequence = Int(EventSlot.sequenceNumber)
        if found & (1 &<< UInt64(sequence)) != 0, slots[sequence].kind == .number {
            let from = Int(slots[sequence].start) &- start, to = Int(slots[sequence].end) &- start
            if from >= 0 && to < count && p[start &+ from] &- UInt8(ascii: "1") < 9 {
                for j in from..<to { exact[j] = 0 }
                numberAt = from
                numberLength = to &- from
            }
        }
        var f = found
        while f != 0 {
            let s = f.trailingZeroBitCount
            var node = slots[s]
            node.start &-= Int32(truncatingIfNeeded: start)
            node.end &-= Int32(truncatingIfNeeded: start)
            nodes[s] = node
            f &= f &- 1
        }
        var eventType = 0
        if found & 1 != 0, slots[Int(EventSlot.eventType)].kind == .string, !slots[Int(EventSlot.eventType)].flag {
            let v = slots[Int(EventSlot.eventType)]
            let type = EventType(UnsafeRawBufferPointer(start: p + Int(v.start), count: Int(v.end &- v.start)))
            eventType = type.map { Int($0.rawValue) &+ 1 } ?? 6
        }
        state.pointee.templates[k] = TemplateMemo(
            length: count, chunks: chunks, holeChunks: holeChunks, numberAt: numberAt, numberLength: numberLength, found: found, frame: frames[0].word &- start, element: element,
            problemIndex: problemIndex, problemIsType: problemIsType, crnCount: crnCount, crnIndex: crnIndex,
            eventType: eventType, unknownCount: unknownCount, unknowns: unknowns)
    }

    /// On a template hit (`t`, the body's root at `start`): the root's keys stepped over in the template's bytes
    /// become the list of keys stepped over (empty until then).
    @inline(never)
    private func replayUnknownKeys(_ t: UnsafePointer<TemplateMemo>, _ start: Int) {
        let keys = state.pointee.unknownKeys
        let count = t.pointee.unknownCount
        withUnsafeBytes(of: t.pointee.unknowns) { packed in
            for k in 0..<count {
                let u = packed.load(fromByteOffset: k &* 8, as: Int.self)
                keys[k] = UnknownKey(open: Int32(truncatingIfNeeded: start), start: Int32(truncatingIfNeeded: start &+ (u & 0xFFFF_FFFF)),
                                     length: Int32(truncatingIfNeeded: u &>> 32))
            }
        }
        predictedCount[18] = count
    }

    // MARK: - Fast path: the root's members in another order

    /// The root's slots (its members' positions in its list are their slots: 0 to 6).
    static let rootMembers = 0x7F

    /// The root's members (not in `found`) that may have been read as null in this body between the root's `{` at
    /// `from` and `to`: the fast path writes a null's kind and place into its slot without setting its bit
    /// (`scanFast`), so a member read as null there has a null slot whose `null` lies after `from`. (A slot never
    /// written holds a null at 0, which no member's value is at.) A slot left from an earlier body may look the same:
    /// then the member counts as read, which only makes the caller decline.
    @inline(__always)
    private func nullsRead(_ found: UInt64, from: Int, to: Int) -> UInt64 {
        var nulls: UInt64 = 0
        for k in 0..<7 where found & (1 &<< UInt64(k)) == 0 {
            let s = slots[k]
            if s.kind == .null && Int(s.start) > from && Int(s.start) < to { nulls |= 1 &<< UInt64(k) }
        }
        return nulls
    }

    /// At `i`, in the root: a known member that is not among the list's members from `next` to `end` (its key was read
    /// by `skipUnknownMember`, which returned -2). Another publisher may write the root's members in another order —
    /// publisherId and sequenceNumber first or last, above all. When the member has not come yet (in the root's list
    /// before the members that may still come, and no bit in `seen` — the slots filled — nor in the nulls read) and its
    /// key is followed by its colon (as the predicted path reads `"name":`), the row of `other` (whose own list is
    /// empty) becomes the list to read from: this member first, with its container's frame resuming at the root list's
    /// members that may still come (the tail), then the members before the tail that have not come, then the tail.
    /// Every member in it has not come yet, and each is in it once, so reading from it (the predicted path moves past
    /// each member it reads) repeats no key, as reading the root's list in order does; a key that comes again is not in
    /// the list and comes back here, where it has come: declined, and the general path reports the duplicate.
    /// Returns how many members the list holds (0: declined).
    @inline(never)
    private func reorderedRootMember(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int, seen: UInt64,
                                     next: UnsafeMutablePointer<PredictedKey>, end: UnsafeMutablePointer<PredictedKey>) -> Int {
        let close = state.pointee.reorderedClose
        guard close &+ 1 < n, p[close &+ 1] == UInt8(ascii: ":") else { return 0 }
        let row = predicted + Int(ScanContext.root) &* 16
        let listed = predictedCount[Int(ScanContext.root)]
        // The tail: from `next` in the root's own list, or as recorded for the reordered list.
        let tail = end == row + listed ? next - row : state.pointee.reorderedTail
        let member = state.pointee.reorderedKey &>> 8
        let come = (seen | nullsRead(seen, from: 0, to: i)) & UInt64(EventScanner.rootMembers)
        guard member < tail, come & (1 &<< UInt64(member)) == 0 else { return 0 }
        let list = predicted + Int(ScanContext.other) &* 16
        var count = 0
        func add(_ k: Int, resume: Int) {
            list[count] = row[k]
            list[count].frame = FastFrame(start: 0, slot: row[k].slot, context: ScanContext.root, resume: resume)
            count &+= 1
        }
        add(member, resume: tail)
        var k = member &+ 1
        while k < tail {
            if come & (1 &<< UInt64(k)) == 0 { add(k, resume: tail) }
            k &+= 1
        }
        while k < listed {
            list[count] = row[k]
            count &+= 1
            k &+= 1
        }
        state.pointee.reorderedTail = tail
        state.pointee.reordered = true
        return count
    }

    // MARK: - Fast path: members it does not know

    /// At `i` (not whitespace), in the object whose `{` is at `open` and whose members have the slots of `context`: a
    /// member that is not among the ones the fast path expects next, stepped over with its value when its key is not a
    /// known member of `context` (a known one here is out of order or repeated), has no escape, and repeats no key of
    /// its object stepped over before. Returns the index after the value (-1: declined), having recorded nothing —
    /// the general path records nothing for such a member either (no slot), and parses its value with the same
    /// grammar `skipUnknownValue` follows. A known member of the root: -2, its key kept for `reorderedRootMember`.
    @inline(never)
    private func skipUnknownMember(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ context: UInt8, _ open: Int) -> Int {
        guard i < n, p[i] == UInt8(ascii: "\"") else { return -1 }
        let close = EventScanner.fastStringEnd(p, i &+ 1, n, masks)
        guard close >= 0 else { return -1 }
        let keyStart = i &+ 1, keyLength = close &- keyStart
        let known = lookup(context, p, keyStart, keyLength, EventScanner.word(p, keyStart, keyLength, n), limit: n)
        if known >= 0 {
            guard context == ScanContext.root else { return -1 }
            state.pointee.reorderedKey = known
            state.pointee.reorderedClose = close
            return -2
        }
        guard noteUnknownKey(p, open, keyStart, keyLength) else { return -1 }
        var j = EventScanner.fastSkip(p, close &+ 1, n)
        guard j < n, p[j] == UInt8(ascii: ":") else { return -1 }
        j = EventScanner.fastSkip(p, j &+ 1, n)
        if j < n && p[j] == UInt8(ascii: "\"") {
            let end = EventScanner.anyStringEnd(p, j &+ 1, n)
            guard end >= 0 else { return -1 }
            let key = state.pointee.unknownKeys + (predictedCount[18] &- 1)
            key.pointee.valueStart = Int32(truncatingIfNeeded: j &+ 1)
            key.pointee.valueEnd = Int32(truncatingIfNeeded: end)
            return end &+ 1
        }
        return skipUnknownValue(p, j, n)
    }

    /// Adds a key stepped over (`p[start..<start+length]`, no escapes) in the object at `open` to the body's list;
    /// false (declined) when a key of the same object has the same bytes — a duplicate, whose error the general path
    /// reports — or the list is full.
    @inline(__always)
    private func noteUnknownKey(_ p: UnsafePointer<UInt8>, _ open: Int, _ start: Int, _ length: Int) -> Bool {
        let keys = state.pointee.unknownKeys
        let count = predictedCount[18]
        let o = Int32(truncatingIfNeeded: open), l = Int32(truncatingIfNeeded: length)
        var k = 0
        while k < count {
            if keys[k].open == o && keys[k].length == l && (length == 0 || memcmp(p + Int(keys[k].start), p + start, length) == 0) {
                return false
            }
            k &+= 1
        }
        guard count < EventScanner.unknownKeyCapacity else { return false }
        keys[count] = UnknownKey(open: o, start: Int32(truncatingIfNeeded: start), length: l)
        predictedCount[18] = count &+ 1
        return true
    }

    /// Steps over the value at `start` (not whitespace) of a member the fast path does not know, as the general path
    /// parses it (`parseValue` with no slot): strings (escapes checked as `scanEscape` checks them), numbers (as
    /// `parseNumber`), literals, and containers up to `unknownDepth` deep, their objects' keys without escapes and not
    /// repeated (`noteUnknownKey`). The index after the value, or -1: declined (anything else, an error included).
    @inline(never)
    private func skipUnknownValue(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> Int {
        let opens = state.pointee.unknownOpens
        /// Bit d set when the container at nesting d (of `depth`) is an object.
        var objects: UInt32 = 0
        var depth = 0
        var i = start
        value: while true {
            guard i < n else { return -1 }
            switch p[i] {
            case UInt8(ascii: "\""):
                let close = EventScanner.anyStringEnd(p, i &+ 1, n)
                guard close >= 0 else { return -1 }
                i = close &+ 1
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard let number = JSONReader.scanNumber(p, i, n) else { return -1 }
                i = number.end
            case UInt8(ascii: "t"):
                guard i &+ 4 <= n, UInt32(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt32.self)) == 0x6575_7274 else { return -1 }
                i &+= 4
            case UInt8(ascii: "f"):
                guard i &+ 5 <= n, UInt32(littleEndian: UnsafeRawPointer(p + i + 1).loadUnaligned(as: UInt32.self)) == 0x6573_6C61 else { return -1 }
                i &+= 5
            case UInt8(ascii: "n"):
                guard i &+ 4 <= n, UInt32(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt32.self)) == 0x6C6C_756E else { return -1 }
                i &+= 4
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < EventScanner.unknownDepth else { return -1 }
                let isObject = p[i] == UInt8(ascii: "{")
                opens[depth] = i
                if isObject { objects |= 1 &<< UInt32(depth) } else { objects &= ~(1 &<< UInt32(depth)) }
                depth &+= 1
                i = EventScanner.fastSkip(p, i &+ 1, n)
                guard i < n else { return -1 }
                if p[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    // Empty.
                    i &+= 1
                    depth &-= 1
                } else {
                    if isObject { guard unknownKey(p, &i, n, opens[depth &- 1]) else { return -1 } }
                    continue value
                }
            default:
                return -1
            }
            // After a value: done at the member's own level, else `,` and the next element or member, or the close.
            while depth > 0 {
                i = EventScanner.fastSkip(p, i, n)
                guard i < n else { return -1 }
                let isObject = objects & (1 &<< UInt32(depth &- 1)) != 0
                if p[i] == UInt8(ascii: ",") {
                    i = EventScanner.fastSkip(p, i &+ 1, n)
                    if isObject { guard unknownKey(p, &i, n, opens[depth &- 1]) else { return -1 } }
                    continue value
                }
                guard p[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return -1 }
                i &+= 1
                depth &-= 1
            }
            return i
        }
    }

    /// At `i`, just after `{` or `,` (and whitespace) in the object at `open` inside a value stepped over: its key
    /// (no escape, not repeated: `noteUnknownKey`), `:` and whitespace, `i` moved past them; false: declined.
    @inline(__always)
    private func unknownKey(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int, _ open: Int) -> Bool {
        guard i < n, p[i] == UInt8(ascii: "\"") else { return false }
        let close = EventScanner.fastStringEnd(p, i &+ 1, n, masks)
        guard close >= 0, noteUnknownKey(p, open, i &+ 1, close &- i &- 1) else { return false }
        i = EventScanner.fastSkip(p, close &+ 1, n)
        guard i < n, p[i] == UInt8(ascii: ":") else { return false }
        i = EventScanner.fastSkip(p, i &+ 1, n)
        return true
    }

    /// The index of the closing quote of the string whose body starts at `start`, escapes allowed (each checked as
    /// `scanEscape` checks it), or -1 when `scanString` would fail on it (or it does not end).
    private static func anyStringEnd(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> Int {
        var j = start
        while true {
            if j &+ 16 <= n {
                let m = cw_string_specials16(p + j)
                if m == 0 { j &+= 16; continue }
                j &+= m.trailingZeroBitCount
            }
            guard j < n else { return -1 }
            let ch = p[j]
            if ch == UInt8(ascii: "\"") { return j }
            if ch >= 0x80 {
                guard let next = EventScanner.utf8Sequence(p, j, n) else { return -1 }
                j = next
            } else if ch < 0x20 {
                return -1
            } else if ch == UInt8(ascii: "\\") {
                guard JSONReader.scanEscape(p, &j, open: j, length: n) == nil else { return -1 }
            } else {
                j &+= 1
            }
        }
    }

    /// `shortInteger` eight digits at a time (when 17 bytes are left from `i`: up to 16 digits and the byte after them):
    /// the same node and end, or nil for the same numbers (another digit after 16, a fraction or an exponent).
    /// `powers` holds 10^0 ... 10^8.
    @inline(__always)
    private static func fastInteger(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ powers: UnsafePointer<UInt64>) -> (node: JSONNode, end: Int)? {
        guard i &+ 17 <= n else { return shortInteger(p, i, n) }
        let q = UnsafeRawPointer(p + i)
        let a = UInt64(littleEndian: q.loadUnaligned(as: UInt64.self))
        let na = nonDigits(a)
        var count: Int
        var value: UInt64
        if na != 0 {
            // 1 to 7 digits (the caller saw a digit at `i`): moved to the top of the word, zeros before them.
            count = na.trailingZeroBitCount &>> 3
            value = eightDigits(a &<< UInt64(truncatingIfNeeded: (8 &- count) &* 8))
        } else {
            let b = UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let nb = nonDigits(b)
            let tail = nb != 0 ? nb.trailingZeroBitCount &>> 3 : 8
            count = 8 &+ tail
            value = eightDigits(a)
            if tail > 0 {
                value = value &* powers[tail] &+ eightDigits(b &<< UInt64(truncatingIfNeeded: (8 &- tail) &* 8))
            }
        }
        let j = i &+ count
        let c = p[j]
        if c &- 48 < 10 || c == UInt8(ascii: ".") || c | 0x20 == UInt8(ascii: "e") { return nil }
        let safe = value <= JSONReader.maxSafeInteger
        return (JSONNode(kind: .number, flag: safe, start: Int32(truncatingIfNeeded: i), end: Int32(truncatingIfNeeded: j),
                         count: 0, next: 0, integer: safe ? value : 0), j)
    }

    /// Nonzero bytes where `w`'s bytes are not ASCII digits; only the lowest nonzero byte is meaningful (adding 6 may
    /// carry out of a byte from 0xFA up, which is itself flagged by its high nibble).
    @inline(__always)
    private static func nonDigits(_ w: UInt64) -> UInt64 {
        let high: UInt64 = 0xF0F0_F0F0_F0F0_F0F0, threes: UInt64 = 0x3030_3030_3030_3030
        return ((w & high) ^ threes) | (((w &+ 0x0606_0606_0606_0606) & high) ^ threes)
    }

    /// The value of eight ASCII digits (or zero bytes) in `w`, the first (most significant) in its lowest byte.
    @inline(__always)
    private static func eightDigits(_ w: UInt64) -> UInt64 {
        var v = w & 0x0F0F_0F0F_0F0F_0F0F
        v = (v &* 2561) &>> 8
        v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) &>> 16
        return ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) &>> 32
    }

    /// The 24 bytes at `i` as three little-endian words, zero past the end of the body (no key has a zero byte, so
    /// nothing matches past the end).
    @inline(__always)
    private static func keyWords(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (UInt64, UInt64, UInt64) {
        if i &+ 24 <= n {
            let q = UnsafeRawPointer(p + i)
            return (UInt64(littleEndian: q.loadUnaligned(as: UInt64.self)),
                    UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                    UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        }
        let left = n &- i
        guard left > 0 else { return (0, 0, 0) }
        return (EventScanner.wordNearEnd(p, i, left),
                left > 8 ? EventScanner.wordNearEnd(p, i &+ 8, left &- 8) : 0,
                left > 16 ? EventScanner.wordNearEnd(p, i &+ 16, left &- 16) : 0)
    }

    /// Writes a slot's kind and span, with `flag` false, as the fast path records a value. The rest of the node is left
    /// as it is: `count` and `next` are 0 in every node the scanner writes, and `integer` is read only from numbers.
    @inline(__always)
    private static func set(_ slots: UnsafeMutablePointer<JSONNode>, _ slot: Int, _ kind: JSONKind, _ start: Int, _ end: Int) {
        slots[slot].kind = kind
        slots[slot].flag = false
        slots[slot].start = Int32(truncatingIfNeeded: start)
        slots[slot].end = Int32(truncatingIfNeeded: end)
    }

    /// The index of the closing quote of the string whose body starts at `start`, or -1 (declined) when the string
    /// has an escape or a control character, is not valid UTF-8 or does not end. Sixteen bytes at a time with SSE2
    /// (`cw_string_specials16`); within 16 bytes of the body's end eight at a time as `specialBytes` tests them, with
    /// its five constants read from `k` (as immediates the compiler rematerialises each of them in the loop).
    @inline(__always)
    private static func fastStringEnd(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, _ k: UnsafePointer<UInt64>) -> Int {
        var j = start
        while true {
            if j &+ 16 <= n {
                let m = cw_string_specials16(p + j)
                if m == 0 { j &+= 16; continue }
                j &+= m.trailingZeroBitCount
            } else {
                while j &+ 8 <= n {
                    let w = UInt64(littleEndian: UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self))
                    let m = (((w ^ k[0]) &- k[2]) | ((w ^ k[1]) &- k[2]) | (w &- k[3]) | w) & k[4]
                    if m == 0 { j &+= 8; continue }
                    j &+= m.trailingZeroBitCount &>> 3
                    break
                }
            }
            guard j < n else { return -1 }
            let ch = p[j]
            if ch == UInt8(ascii: "\"") { return j }
            if ch >= 0x80 {
                guard let next = EventScanner.utf8Sequence(p, j, n) else { return -1 }
                j = next
                continue
            }
            // A backslash or a control character: the general path.
            if ch < 0x20 || ch == UInt8(ascii: "\\") { return -1 }
            j &+= 1
        }
    }

    /// The byte at `i` after any whitespace (`i` moved to it), nil at the end of the body.
    @inline(__always)
    private static func nextByte(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) -> UInt8? {
        guard i < n else { return nil }
        var c = p[i]
        if c <= 0x20 {
            i = fastSkip(p, i, n)
            guard i < n else { return nil }
            c = p[i]
        }
        return c
    }

    /// `skipWhitespace` with the body's length at hand.
    @inline(__always)
    private static func fastSkip(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        var i = i
        while i < n {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { break }
            i &+= 1
        }
        return i
    }

    // MARK: - Exact duplicate check (suspect objects only)

    /// The key `JSONReader` reports for the (syntactically valid) object at `open`, or nil when no key repeats.
    @inline(never)
    private func duplicateKey(_ p: UnsafePointer<UInt8>, _ open: Int) -> String? {
        var keys: [[UInt8]] = []
        var i = skipWhitespace(p, open + 1)
        if p[i] != UInt8(ascii: "}") {
            while true {
                i = skipWhitespace(p, i)
                let start = i + 1
                i = skipString(p, i)
                keys.append(JSONReader.unescape(p, start, i - 1))
                i = skipWhitespace(p, i) + 1  // ':'
                i = skipWhitespace(p, i)
                i = skipValue(p, i)
                i = skipWhitespace(p, i)
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                break
            }
        }
        // JSONReader: the first key (in order) that has a later duplicate, whatever the object's size.
        var counts: [[UInt8]: Int] = [:]
        for k in keys { counts[k, default: 0] += 1 }
        return keys.first { counts[$0, default: 0] > 1 }.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The index after the (valid) string whose opening quote is at `i`.
    private func skipString(_ p: UnsafePointer<UInt8>, _ start: Int) -> Int {
        var i = start + 1
        while p[i] != UInt8(ascii: "\"") { i += p[i] == UInt8(ascii: "\\") ? 2 : 1 }
        return i + 1
    }

    /// The index after the (valid) value at `i`.
    private func skipValue(_ p: UnsafePointer<UInt8>, _ start: Int) -> Int {
        var i = start
        var depth = 0
        repeat {
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i = skipString(p, i)
                continue
            }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
            } else if depth == 0 {
                // A scalar at top level: numbers and literals end at a delimiter.
                while i < length, !(p[i] == UInt8(ascii: ",") || p[i] == UInt8(ascii: "}") || p[i] == UInt8(ascii: "]")
                                     || p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09) { i += 1 }
                return i
            }
            i += 1
        } while depth > 0
        return i
    }
}
