import HeapModule

/// The engine's remembered contacts by contactStart, for `Engine.forgetExpired`: what the retention forgets next.
///
/// Items are kept in buckets by the UTC day of their start, appended as they come, so an insert writes at the end of
/// a recent day's bucket (a binary heap of every contact compared each insert with a parent far away in memory: a
/// cache miss an event once the heap outgrew the caches). A bucket is sorted once, when the cutoff first reaches its
/// day, then taken from the front in (start, contactId) order — the heap's order; an item added to a sorted bucket
/// goes to its sorted place. Items a later version left behind (its contact's start moved) stay, and are skipped by
/// the caller as the heap's were.
struct ForgetQueue {
    private struct Bucket {
        var day: Int64
        var items: [ForgetItem] = []
        /// Items before this index have been taken (0 until sorted).
        var taken = 0
        var sorted = false
    }

    private var buckets: [Bucket] = []
    /// Slots of `buckets` emptied by `popMin`, for the next new day.
    private var freeSlots: [Int] = []
    /// The slot of each day's bucket.
    private var slotOfDay: [Int64: Int] = [:]
    /// The days with a bucket, earliest first.
    private var days = Heap<Int64>()
    /// The last days asked for, direct-mapped by day mod 1024 (the days a stream's contacts fall on are a few hundred
    /// consecutive ones, so the dictionary is asked only for a new day).
    private var recentDays = [Int64](repeating: .min, count: 1024)
    private var recentSlots = [Int](repeating: 0, count: 1024)
    private(set) var count = 0
    /// No item starts before this (a lower bound, `.min` when unknown): `popMin` with a cutoff at or below it returns
    /// nil at once. Set by `popMin` when it finds nothing to take (then the earliest item's start, or the start of the
    /// earliest day holding items, or `.max` when empty), lowered by `insert`; taking items only raises the true
    /// minimum, so the bound holds. While the retention's cutoff trails every remembered start, as it does for the
    /// first `contactRetentionDays` of a stream and between expiries, each event's `forgetExpired` is one comparison.
    private var floor: Int64 = .min

    /// The items a restart began with, as a heap: built in linear time (bucketing millions of them one at a time cost
    /// the restart more than the heap did). Later items go to the buckets; `popMin` takes the smaller of the two.
    private var restored = Heap<ForgetItem>()

    init() {}

    init(_ items: [ForgetItem]) {
        restored = Heap(items)
        count = items.count
    }

    @inline(__always) private static func day(_ t: Int64) -> Int64 {
        let (q, r) = t.quotientAndRemainder(dividingBy: 86_400_000)
        return r < 0 ? q - 1 : q
    }

    /// The slot of `day`'s bucket, made when there is none.
    @inline(__always) private mutating func slot(of day: Int64) -> Int {
        let k = Int(truncatingIfNeeded: day & 1023)
        if recentDays[k] == day { return recentSlots[k] }
        let s = slotOfDay[day] ?? newBucket(day)
        recentDays[k] = day
        recentSlots[k] = s
        return s
    }

    private mutating func newBucket(_ day: Int64) -> Int {
        let s: Int
        if let f = freeSlots.popLast() {
            s = f
            buckets[s] = Bucket(day: day)
        } else {
            s = buckets.count
            buckets.append(Bucket(day: day))
        }
        slotOfDay[day] = s
        days.insert(day)
        return s
    }

    mutating func insert(_ item: ForgetItem) {
        if item.start < floor { floor = item.start }
        let s = slot(of: Self.day(item.start))
        count += 1
        guard buckets[s].sorted else { return buckets[s].items.append(item) }
        // A bucket already being taken: the item goes to its place among the ones not yet taken.
        var lo = buckets[s].taken, hi = buckets[s].items.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if buckets[s].items[mid] < item { lo = mid + 1 } else { hi = mid }
        }
        buckets[s].items.insert(item, at: lo)
    }

    /// Whether `popMin(before: cutoff)` would return nil by the floor alone (no item starts before `cutoff`).
    @inline(__always) func nothingBefore(_ cutoff: Int64) -> Bool { cutoff <= floor }

    /// Removes and returns the smallest item when its start is before `cutoff`; nil otherwise.
    @inline(__always) mutating func popMin(before cutoff: Int64) -> ForgetItem? {
        if cutoff <= floor { return nil }
        return popMinAfterFloor(before: cutoff)
    }

    /// `popMin` past the `floor` check.
    @inline(never) private mutating func popMinAfterFloor(before cutoff: Int64) -> ForgetItem? {
        var bound = Int64.max
        let bucketed = bucketMin(before: cutoff, bound: &bound)
        if let r = restored.min, r.start < cutoff, bucketed.map({ r < $0.item }) ?? true {
            restored.removeMin()
            count -= 1
            return r
        }
        guard let b = bucketed else {
            // Nothing starts before the cutoff: remember how far that holds.
            floor = Swift.min(bound, restored.min?.start ?? .max)
            return nil
        }
        buckets[b.slot].taken += 1
        count -= 1
        return b.item
    }

    /// The smallest bucketed item and its bucket's slot, when its start is before `cutoff` (sorting the earliest day's
    /// bucket when first asked, dropping the days spent). When there is none, `bound` is set to a start no bucketed
    /// item is before (`.max` when there are none).
    private mutating func bucketMin(before cutoff: Int64, bound: inout Int64) -> (item: ForgetItem, slot: Int)? {
        let cutoffDay = Self.day(cutoff)
        while let day = days.min {
            // Every start of a day after the cutoff's is after the cutoff.
            if day > cutoffDay {
                bound = day &* 86_400_000
                return nil
            }
            let s = slot(of: day)
            if !buckets[s].sorted {
                buckets[s].items.sort()
                buckets[s].sorted = true
            }
            let k = buckets[s].taken
            if k < buckets[s].items.count {
                let item = buckets[s].items[k]
                if item.start < cutoff { return (item, s) }
                bound = item.start
                return nil
            }
            // The day is spent: its bucket goes.
            days.removeMin()
            slotOfDay[day] = nil
            recentDays[Int(truncatingIfNeeded: day & 1023)] = .min
            buckets[s] = Bucket(day: .min)
            freeSlots.append(s)
        }
        bound = .max
        return nil
    }
}
