// What `replay`'s XPUB has been told about its subscribers, as a plain value: the subscriptions held now, and whether
// one was held while messages went out. A subscriber that joined and left before the first message, or that was
// dropped for an over-size subscription after a short one, was counted as seen: `--wait-subscribers` stopped waiting
// for it and the replay exited 0 having delivered nothing (the fault tester, session 25).

import ZeroMQ

/// Subscriptions and unsubscriptions as the XPUB reports them (`ZMQ_XPUB_VERBOSER`: every one, a peer's repeats and
/// a leaving peer's included), and the messages sent between them. Kept as libzmq's trie keeps them: each connection's
/// distinct prefixes (libzmq names the connection in each message it hands up: its descriptor and peer address), so
/// a repeated subscription, or an unsubscription of a prefix the connection does not hold, changes nothing — a libzmq
/// SUB subscribing twice to one prefix sends two subscriptions and, unsubscribing twice, one unsubscription, and a peer
/// that speaks ZMTP itself can send an unsubscription of what it never held (libzmq 4.3.4 hands both up; a reviewer,
/// session 26, made replay claim delivery with the first and loss with the second). An unsubscription without a
/// connection is libzmq's own report of one that ended, a prefix at a time: taken from a connection holding it. A
/// message counts as reaching a subscriber only when a held prefix matches its first frame (its topic), as libzmq's
/// own filter decides.
struct SubscriberLedger: Equatable {
    /// Subscriptions held now: (connection, prefix) pairs.
    private(set) var live = 0
    /// Subscribers holding at least one subscription now (cli.md: `--wait-subscribers N` waits for N subscribers):
    /// connections libzmq named, each once however many prefixes it holds (a daemon subscribed to two prefixes was
    /// counted twice, so `--wait-subscribers 2` before a redundant pair started the replay once the first had joined:
    /// a contract auditor, session 41); the unnamed connection (`inproc://`, where libzmq names no peer) counts its
    /// prefixes, as no two peers can be told apart there.
    var subscribers: Int {
        connections.reduce(0) { $0 + ($1.key == nil ? $1.value.count : 1) }
    }
    /// Subscriptions taken (a repeat not counted).
    private(set) var joined = 0
    /// Unsubscriptions taken (a peer that left, or withdrew a subscription).
    private(set) var left = 0
    /// Unsubscriptions of a prefix the connection did not hold, and repeated subscriptions.
    private(set) var ignored = 0
    /// Messages sent so far.
    private(set) var sent = 0
    /// A message was sent while a held prefix matched it, or a subscription came after one had been sent (it may have
    /// taken some of those sent since the XPUB was last read): false at the end means every message was dropped.
    private(set) var reached = false
    /// Messages certainly dropped: sent while no held prefix matched them, in a stretch between two reads of the XPUB
    /// that brought no subscription (libzmq puts a subscription in its trie as it reads it from the peer, before the
    /// XPUB hands it up, so a stretch whose read brings one may have reached it). A lower bound: a subscriber that
    /// leaves mid-stretch is not counted.
    private(set) var dropped = 0
    /// Messages sent while subscriptions were held and no prefix ever held matched them, in a stretch whose read
    /// brought no subscription: the subscribers' own filters left them out (a daemon subscribes to `probation-case.`
    /// by default), not a subscriber missing; with the first such topic (its first `maxTopicBytes`).
    private(set) var unmatched = 0
    /// The earliest unmatched topic still counted as such (one later moved to `dropped` is not named: a reviewer,
    /// session 41); nil when none of those kept is left.
    var firstUnmatchedTopic: [UInt8]? { earliestUnmatched?.key }
    /// Whether that topic is longer than the bytes kept of it (a reviewer, session 41: one of exactly `maxTopicBytes`
    /// was said "cut").
    var firstUnmatchedTopicCut: Bool { earliestUnmatched?.value.cut ?? false }
    private var earliestUnmatched: (key: [UInt8], value: UnmatchedTopic)? {
        unmatchedByTopic.min { $0.value.order < $1.value.order }
    }
    static let maxTopicBytes = 200
    /// Messages sent since the XPUB was last read while no held prefix matched them: those a prefix held earlier
    /// matches (its subscriber left), or with none held, and those no prefix ever held matches (`unmatched`).
    private var sentUnheld = 0
    private var sentUnmatched = 0
    /// Every prefix held at some time, by length: a message one of them matches was wanted by a subscriber that has
    /// left (dropped), one none matches was never wanted (unmatched; a reviewer, session 41: one of two subscribers
    /// with other prefixes leaving made its messages "unmatched", exit 0).
    private var everHeld: [Int: Set<[UInt8]>] = [:]
    /// The unmatched messages by topic (at most `maxUnmatchedTopics` distinct ones kept): a subscriber that joins later
    /// with a prefix matching them wanted them, so they move to `dropped` (a reviewer, session 41: a second subscriber
    /// joining mid-run left its first messages "unmatched", exit 0).
    private var unmatchedByTopic: [[UInt8]: UnmatchedTopic] = [:]
    static let maxUnmatchedTopics = 1024
    private var pendingByTopic: [[UInt8]: UnmatchedTopic] = [:]
    /// An unmatched topic (its first `maxTopicBytes`): how many messages, in which order it came first, and whether
    /// the first one was longer than the bytes kept.
    private struct UnmatchedTopic: Equatable {
        var count: Int
        var order: Int
        var cut: Bool
    }
    /// Counts the topics kept, for their order.
    private var topicsSeen = 0
    /// Whether the read under way brought a subscription.
    private var readBroughtSubscription = false
    /// The prefixes each connection holds (nil: a connection libzmq did not name, over `inproc://`).
    private var connections: [ZMQMessageSource?: Set<[UInt8]>] = [:]
    /// How many connections hold each prefix.
    private var prefixes: [[UInt8]: Int] = [:]
    /// How many distinct prefixes held have each length.
    private var lengths: [Int: Int] = [:]
    /// Unsubscriptions without a source taken from a connection while another held the prefix too (at most
    /// `maxCharges`, any forgotten first): a later message from that connection about the prefix shows it was still
    /// open then, and the charge moves to another holder (`recharge`).
    private var charges: Set<Charge> = []
    static let maxCharges = 1024

    struct Charge: Hashable {
        let source: ZMQMessageSource
        let prefix: [UInt8]
    }

    /// One message from the XPUB as it came (`first`: its first frame): a subscription or an unsubscription; anything
    /// else (an XSUB peer's own message, which libzmq hands up too) is skipped. `isClosed`: see `note(subscribe:…)`.
    mutating func note(message first: [UInt8], source: ZMQMessageSource?,
                       isClosed: (ZMQMessageSource) -> Bool = { _ in false }) {
        guard let kind = first.first, kind <= 1 else { return }
        note(subscribe: kind == 1, prefix: Array(first.dropFirst()), source: source, isClosed: isClosed)
    }

    /// One message from the XPUB: a subscription (first byte 1) or an unsubscription (0) of `prefix`, from `source`.
    /// Between `readStarts` and `readEnds`. `isClosed` tells whether a connection has ended (replay asks the
    /// descriptor, `ZMQPeerConnection`): an unsubscription without a source is taken from such a holder first.
    mutating func note(subscribe: Bool, prefix: [UInt8] = [], source: ZMQMessageSource? = nil,
                       isClosed: (ZMQMessageSource) -> Bool = { _ in false }) {
        if let source, !charges.isEmpty { recharge(prefix, to: source, isClosed: isClosed) }
        if subscribe {
            guard connections[source, default: []].insert(prefix).inserted else { ignored += 1; return }
            joined += 1
            live += 1
            prefixes[prefix, default: 0] += 1
            if prefixes[prefix] == 1 { lengths[prefix.count, default: 0] += 1 }
            everHeld[prefix.count, default: []].insert(prefix)
            if !unmatchedByTopic.isEmpty {
                for (topic, kept) in unmatchedByTopic where topic.starts(with: prefix) {
                    unmatchedByTopic[topic] = nil
                    unmatched -= kept.count
                    dropped += kept.count
                }
            }
            if sent > 0 { reached = true }
            readBroughtSubscription = true
            return
        }
        guard let holder = holder(of: prefix, unsubscribedBy: source, isClosed: isClosed) else { ignored += 1; return }
        if source == nil, let charged = holder, (prefixes[prefix] ?? 0) > 1 {
            if charges.count >= Self.maxCharges { charges.removeFirst() }
            charges.insert(Charge(source: charged, prefix: prefix))
        }
        release(prefix, from: holder)
        left += 1
        live -= 1
        let n = prefixes[prefix] ?? 1
        prefixes[prefix] = n > 1 ? n - 1 : nil
        if n == 1 {
            let m = lengths[prefix.count] ?? 1
            lengths[prefix.count] = m > 1 ? m - 1 : nil
        }
    }

    /// The connection an unsubscription of `prefix` takes it from (`.some(nil)`: the unnamed one), or nil when none
    /// holds it. Without a source it is libzmq's report of a connection that ended (or an `inproc://` peer's own):
    /// from the unnamed connection if it holds the prefix, else from one that holds it and has closed, else from any
    /// that holds it. Taken from one still open, the closed one's prefix stayed held: a later withdrawal by the open
    /// one was then ignored, and messages sent to nobody counted as reaching a subscriber (a descriptor given to a new
    /// connection from the same peer still looks open, and is the same key: then any; the daemon's tracker tells them
    /// apart by the socket's inode, this ledger does not).
    private func holder(of prefix: [UInt8], unsubscribedBy source: ZMQMessageSource?,
                        isClosed: (ZMQMessageSource) -> Bool) -> ZMQMessageSource?? {
        if connections[source]?.contains(prefix) == true { return Optional<ZMQMessageSource?>.some(source) }
        guard source == nil, let holder = holder(of: prefix, other: nil, isClosed: isClosed) else { return nil }
        return Optional<ZMQMessageSource?>.some(holder)
    }

    /// A connection other than `other` holding `prefix`, a closed one first; nil when there is none.
    private func holder(of prefix: [UInt8], other: ZMQMessageSource?,
                        isClosed: (ZMQMessageSource) -> Bool) -> ZMQMessageSource?? {
        let holders = connections.filter { $0.key != other && $0.value.contains(prefix) }.keys
        guard let any = holders.first else { return nil }
        return Optional<ZMQMessageSource?>.some(holders.first { $0.map(isClosed) ?? false } ?? any)
    }

    /// Takes `prefix` from `holder`'s set, forgetting a connection left holding nothing.
    private mutating func release(_ prefix: [UInt8], from holder: ZMQMessageSource?) {
        connections[holder]?.remove(prefix)
        if connections[holder]?.isEmpty == true { connections[holder] = nil }
    }

    /// `source` speaks of `prefix` after an unsubscription without a source was taken from it while another
    /// connection held the prefix too: it was open after that report, which was the other's (both can look closed by
    /// the time the XPUB is read: the other ended, then this one withdrew the prefix and closed; a reviewer, session
    /// 27). The prefix goes back to `source` and is taken from another holder, a closed one first.
    private mutating func recharge(_ prefix: [UInt8], to source: ZMQMessageSource, isClosed: (ZMQMessageSource) -> Bool) {
        guard charges.remove(Charge(source: source, prefix: prefix)) != nil,
              connections[source]?.contains(prefix) != true else { return }
        guard let other = holder(of: prefix, other: source, isClosed: isClosed) else { return }
        release(prefix, from: other)
        connections[source, default: []].insert(prefix)
    }

    /// The XPUB is about to be read (every message it holds).
    mutating func readStarts() {
        readBroughtSubscription = false
    }

    /// The XPUB was read to its end: the messages sent unheld since the read before are dropped unless this one
    /// brought a subscription.
    mutating func readEnds() {
        if !readBroughtSubscription {
            dropped += sentUnheld
            unmatched += sentUnmatched
            for (topic, kept) in pendingByTopic {
                if unmatchedByTopic[topic] != nil { unmatchedByTopic[topic]?.count += kept.count } else { unmatchedByTopic[topic] = kept }
            }
        }
        sentUnheld = 0
        sentUnmatched = 0
        pendingByTopic.removeAll(keepingCapacity: true)
    }

    /// A message whose first frame is `first` was handed to the socket: it reached a subscriber when a prefix held as
    /// the XPUB was last read matches it; with subscriptions held and none matching, the subscribers left it out
    /// (`unmatched`: counted as dropped, it failed a replay of a feed with topics the daemon does not subscribe to
    /// with exit 75, a temporary failure no retry cures: a contract auditor, session 41); with none held, it was
    /// dropped unless the read under way brings a subscription.
    mutating func noteSent(_ first: some Collection<UInt8>) {
        sent += 1
        if matches(first) {
            reached = true
        } else if live > 0 && !everMatched(first) {
            sentUnmatched += 1
            let topic = Array(first.prefix(Self.maxTopicBytes))
            if pendingByTopic[topic] != nil {
                pendingByTopic[topic]?.count += 1
            } else if unmatchedByTopic.count + pendingByTopic.count < Self.maxUnmatchedTopics {
                topicsSeen += 1
                let cut = topic.count == Self.maxTopicBytes && first.dropFirst(Self.maxTopicBytes).first != nil
                pendingByTopic[topic] = UnmatchedTopic(count: 1, order: topicsSeen, cut: cut)
            }
        } else {
            sentUnheld += 1
        }
    }

    /// Whether a prefix held at any time matches `first`.
    private func everMatched(_ first: some Collection<UInt8>) -> Bool {
        let topic = Array(first)
        return everHeld.contains { length, set in length <= topic.count && set.contains(Array(topic[..<length])) }
    }

    /// Whether a held prefix matches `first`: the empty prefix (everything) first, then the topic's own prefixes of
    /// each length a held prefix has (one lookup a length, however many prefixes a peer holds; it assumed a match past
    /// 64 distinct prefixes, so a peer holding 65 that match nothing made messages count as reaching it).
    private func matches(_ first: some Collection<UInt8>) -> Bool {
        guard live > 0 else { return false }
        if prefixes[[]] != nil { return true }
        let topic = Array(first)
        return lengths.keys.contains { $0 <= topic.count && prefixes[Array(topic[..<$0])] != nil }
    }
}
