// What `replay`'s XPUB has been told about its subscribers, as a plain value: the subscriptions held now, and whether
// one was held while messages went out. A subscriber that joined and left before the first message, or that was
// dropped for an over-size subscription after a short one, was counted as seen: `--wait-subscribers` stopped waiting
// for it and the replay exited 0 having delivered nothing (the fault tester, session 25).

/// Subscriptions and unsubscriptions as the XPUB reports them, and the messages sent between them. The XPUB either
/// reports every subscription and every unsubscription, a leaving peer's included (`ZMQ_XPUB_VERBOSER`, with
/// `--wait-subscribers`), or only the first subscription to a prefix and the last one's end (the default): `live`
/// counts subscriptions in the first case and subscribed prefixes in the second, and is above 0 exactly while some
/// peer holds a subscription. A peer subscribing twice to one prefix is counted twice and ends once (libzmq keeps a
/// prefix once per peer): it then stays counted, as before.
struct SubscriberLedger: Equatable {
    /// Subscriptions held now.
    private(set) var live = 0
    /// Subscription messages seen.
    private(set) var joined = 0
    /// Unsubscription messages seen (a peer that left, or withdrew a subscription).
    private(set) var left = 0
    /// Messages sent so far.
    private(set) var sent = 0
    /// A subscription was held while a message was sent, or came after one had been (it may have taken some of those
    /// sent since the XPUB was last read): false at the end means every message was dropped.
    private(set) var reached = false

    /// One message from the XPUB: a subscription (first byte 1) or an unsubscription (0).
    mutating func note(subscribe: Bool) {
        if subscribe {
            joined += 1
            live += 1
            if sent > 0 { reached = true }
        } else {
            left += 1
            live = max(0, live - 1)
        }
    }

    /// A message was handed to the socket: it reached a subscriber when one was held as the XPUB was last read.
    mutating func noteSent() {
        sent += 1
        if live > 0 { reached = true }
    }
}
