// What `replay`'s XPUB has been told about its subscribers, as a plain value: the subscriptions held now, and whether
// one was held while messages went out. A subscriber that joined and left before the first message, or that was
// dropped for an over-size subscription after a short one, was counted as seen: `--wait-subscribers` stopped waiting
// for it and the replay exited 0 having delivered nothing (the fault tester, session 25).

/// Subscriptions and unsubscriptions as the XPUB reports them, and the messages sent between them. The XPUB either
/// reports every subscription and every unsubscription, a leaving peer's included (`ZMQ_XPUB_VERBOSER`, with
/// `--wait-subscribers`), or only the first subscription to a prefix and the last one's end (the default): `live`
/// counts subscriptions in the first case and subscribed prefixes in the second, and is above 0 exactly while some
/// peer holds a subscription. A peer subscribing twice to one prefix is counted twice and ends once (libzmq keeps a
/// prefix once per peer): it then stays counted, as before. libzmq 4.3.4 also hands up an unsubscription of a prefix
/// the peer never held, from a peer that speaks ZMTP itself (a libzmq SUB never sends one); one of a prefix nobody
/// holds is ignored (`ignored`), so a peer cannot talk `live` down that way (it can for a prefix another peer holds:
/// the XPUB does not say which peer sent what).
struct SubscriberLedger: Equatable {
    /// Subscriptions held now.
    private(set) var live = 0
    /// Subscription messages seen.
    private(set) var joined = 0
    /// Unsubscription messages taken (a peer that left, or withdrew a subscription).
    private(set) var left = 0
    /// Unsubscriptions of a prefix no subscription held.
    private(set) var ignored = 0
    /// Subscriptions held, by prefix.
    private var held: [[UInt8]: Int] = [:]
    /// Messages sent so far.
    private(set) var sent = 0
    /// A subscription was held while a message was sent, or came after one had been (it may have taken some of those
    /// sent since the XPUB was last read): false at the end means every message was dropped.
    private(set) var reached = false
    /// Messages certainly dropped: sent while no subscription was held, in a stretch between two reads of the XPUB
    /// that brought no subscription (libzmq puts a subscription in its trie as it reads it from the peer, before the
    /// XPUB hands it up, so a stretch whose read brings one may have reached it). A lower bound: a subscriber that
    /// leaves mid-stretch is not counted.
    private(set) var dropped = 0
    /// Messages sent since the XPUB was last read while no subscription was held.
    private var sentUnheld = 0
    /// Whether the read under way brought a subscription.
    private var readBroughtSubscription = false

    /// One message from the XPUB: a subscription (first byte 1) or an unsubscription (0) of `prefix`. Between
    /// `readStarts` and `readEnds`.
    mutating func note(subscribe: Bool, prefix: [UInt8] = []) {
        if subscribe {
            joined += 1
            live += 1
            held[prefix, default: 0] += 1
            if sent > 0 { reached = true }
            readBroughtSubscription = true
        } else if let n = held[prefix] {
            left += 1
            live -= 1
            held[prefix] = n > 1 ? n - 1 : nil
        } else {
            ignored += 1
        }
    }

    /// The XPUB is about to be read (every message it holds).
    mutating func readStarts() {
        readBroughtSubscription = false
    }

    /// The XPUB was read to its end: the messages sent unheld since the read before are dropped unless this one
    /// brought a subscription.
    mutating func readEnds() {
        if !readBroughtSubscription { dropped += sentUnheld }
        sentUnheld = 0
    }

    /// A message was handed to the socket: it reached a subscriber when one was held as the XPUB was last read.
    mutating func noteSent() {
        sent += 1
        if live > 0 { reached = true } else { sentUnheld += 1 }
    }
}
