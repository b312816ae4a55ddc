import HeapModule

/// The engine's remembered contacts by contactStart, for `Engine.forgetExpired`: what the retention forgets next.
///
/// It holds items only for the contacts that start before `end` — a window a little past the retention's cutoff —,
/// not for every remembered contact: the rest are found in the contacts table itself when the cutoff reaches them.
/// A copy of every contact's (start, id) cost 16 bytes a contact, ~160 a case, as much as the cases' lists.
///
/// Invariant: every remembered contact whose start is before `end` has an item in `window[taken...]` or `late` (with
/// its current start). `refill` establishes it: when both are spent and the cutoff has passed `end`, one pass over
/// the table counts the contacts by day past the cutoff and a second collects those before the new `end` (the
/// cutoff plus the fewest whole days that hold `target` contacts, at most `maxDays`), sorted once. A contact the
/// engine sets with a new start before `end` is inserted into `late` (a heap); one at or after `end` needs nothing
/// (the next refill finds it in the table). Items are taken in (start, contactId) order, the order a heap of every
/// contact gave; items a later version left behind (its start moved) are skipped by the caller, as before.
struct ForgetQueue {
    /// The last refill's items, sorted; those before `taken` have been taken.
    private var window: [ForgetItem] = []
    private var taken = 0
    /// Items inserted since the refill (starts before `end`).
    private var late = Heap<ForgetItem>()
    /// Contacts that start before this are all in `window[taken...]` or `late`. `.min` until the first refill.
    private(set) var end: Int64 = .min
    /// No remembered contact starts before this (a lower bound, `.min` when unknown): `popMin` with a cutoff at or
    /// below it returns nil at once. While the retention's cutoff trails every remembered start, as it does for the
    /// first `contactRetentionDays` of a stream and between expiries, each event's `forgetExpired` is one comparison.
    private var floor: Int64 = .min
    /// A refill's window holds at least this share of the table's contacts (when days that close hold as many).
    static let targetDivisor = 8
    /// ... and at least this many contacts; ...
    static let minimumTarget = 1_024
    /// ... and spans at most this many days past the cutoff.
    static let maxDays = 128

    init() {}

    /// Items waiting (taken or skipped by the caller as they come; stale ones included).
    var count: Int { window.count - taken + late.count }

    /// Bytes held (the window's room and the heap's items, with their headers and malloc's overhead).
    var footprint: Int {
        (window.capacity == 0 ? 0 : 48 + window.capacity * MemoryLayout<ForgetItem>.stride)
            + (late.isEmpty ? 0 : 48 + late.count * MemoryLayout<ForgetItem>.stride)
    }

    /// A contact's (new) start, after the engine set it in the table.
    @inline(__always) mutating func insert(_ item: ForgetItem) {
        guard item.start < end else { return }
        insertLate(item)
    }

    @inline(never) private mutating func insertLate(_ item: ForgetItem) {
        if item.start < floor { floor = item.start }
        late.insert(item)
    }

    /// Whether `popMin(before: cutoff, ...)` would return nil by the floor alone (no contact starts before `cutoff`).
    @inline(__always) func nothingBefore(_ cutoff: Int64) -> Bool { cutoff <= floor }

    /// Removes and returns the smallest item when its start is before `cutoff`; nil otherwise (then, when
    /// `needsRefill(before: cutoff)`, `refill` and ask again).
    @inline(__always) mutating func popMin(before cutoff: Int64) -> ForgetItem? {
        if cutoff <= floor { return nil }
        return popMinAfterFloor(before: cutoff)
    }

    /// `popMin` past the `floor` check.
    @inline(never) private mutating func popMinAfterFloor(before cutoff: Int64) -> ForgetItem? {
        let w = taken < window.count ? window[taken] : nil
        if let l = late.min, w.map({ l < $0 }) ?? true {
            if l.start < cutoff {
                late.removeMin()
                return l
            }
            floor = l.start
            return nil
        }
        if let w {
            if w.start < cutoff {
                taken += 1
                // A spent window's memory goes now, not at the next refill.
                if taken == window.count {
                    window = []
                    taken = 0
                }
                return w
            }
            floor = w.start
            return nil
        }
        // Both spent: no contact starts before `end`.
        if cutoff <= end { floor = end }
        return nil
    }

    /// Whether the queue is spent and `cutoff` has passed `end`: the contacts before the cutoff are then in the table
    /// only, and `refill` must collect them.
    @inline(__always) func needsRefill(before cutoff: Int64) -> Bool {
        cutoff > end && taken == window.count && late.isEmpty
    }

    /// Starts the queue on `contacts` (an engine's start from a stored state) for the retention's `cutoff`.
    mutating func prepare(cutoff: Int64, from contacts: ContactTable) {
        window = []
        taken = 0
        late = Heap()
        end = .min
        floor = .min
        if cutoff != .min { refill(cutoff: cutoff, from: contacts) }
    }

    /// Sets `end` past `cutoff` and collects, sorted, every contact of `contacts` that starts before it. The queue
    /// must be spent (`window[taken...]` and `late` empty).
    mutating func refill(cutoff: Int64, from contacts: ContactTable) {
        precondition(taken == window.count && late.isEmpty, "ForgetQueue.refill: items still waiting")
        // Pass 1: the contacts before the cutoff (all due), by whole day past it (up to `maxDays`), the earliest after.
        var due = 0
        var byDay = [Int](repeating: 0, count: Self.maxDays)
        var earliest = Int64.max
        byDay.withUnsafeMutableBufferPointer { days in
            contacts.forEachStart { _, start in
                if start < cutoff {
                    due &+= 1
                    return
                }
                if start < earliest { earliest = start }
                // start − cutoff ≥ 0 here, and does not overflow (both within Int64, start ≥ cutoff).
                let d = UInt64(bitPattern: start &- cutoff) / UInt64(millisPerDay)
                if d < UInt64(Self.maxDays) { days[Int(d)] &+= 1 }
            }
        }
        window = []
        taken = 0
        let target = Swift.max(Self.minimumTarget, contacts.count / Self.targetDivisor)
        var n = due, days = 0
        while days < Self.maxDays && (n < target || days == 0) {
            n += byDay[days]
            days += 1
        }
        let (reach, overflow) = cutoff.addingReportingOverflow(Int64(days) * millisPerDay)
        if n == 0 {
            // No contact starts before `earliest`: the window is empty up to there (an empty table: up to `reach`,
            // so that the contacts set later are not all inserted into `late`).
            end = earliest == .max ? (overflow ? .max : reach) : earliest
            floor = end
            return
        }
        end = overflow ? .max : reach
        // Pass 2: each contact before `end` placed in its segment (the due ones, then one a day: where each begins,
        // from pass 1's counts), then each segment sorted on its own (a day's items, not the whole window's: fewer
        // comparisons).
        var next = [Int](repeating: 0, count: days + 1)
        next[0] = 0
        var at = due
        for d in 0..<days {
            next[d + 1] = at
            at += byDay[d]
        }
        let bounds = next + [n]
        let limit = end
        window = [ForgetItem](unsafeUninitializedCapacity: n) { b, initialized in
            next.withUnsafeMutableBufferPointer { next in
                contacts.forEachStart { id, start in
                    guard start < limit else { return }
                    let seg = start < cutoff ? 0 : 1 &+ Int(UInt64(bitPattern: start &- cutoff) / UInt64(millisPerDay))
                    let k = next[seg]
                    precondition(k < bounds[seg + 1], "ForgetQueue.refill: the table changed between its passes")
                    (b.baseAddress! + k).initialize(to: ForgetItem(start: start, contactId: id))
                    next[seg] = k &+ 1
                }
            }
            initialized = n
            for seg in 0...days where bounds[seg + 1] - bounds[seg] > 1 {
                var segment = UnsafeMutableBufferPointer(rebasing: b[bounds[seg]..<bounds[seg + 1]])
                segment.sort()
            }
        }
        floor = window.first?.start ?? end
    }
}
