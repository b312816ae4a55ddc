import Logging
import ZeroMQ

/// Follows the subscriptions consumers hold on the alert socket (an XPUB in verbose mode reports each subscribe and
/// unsubscribe as a message: byte 1 or 0, then the prefix). It tells the loop when a consumer subscribes to alert
/// topics — a prefix of `alert.` (including "", everything) or a prefix under it — which is what republishing after
/// a restart waits for (alerts.md, *Delivery guarantees*).
///
/// Owned by the processing thread (the socket's owner); the counts it keeps are mirrored in `RuntimeCounters`.
///
/// Each subscription and unsubscription is logged, rate-limited (`lineLimit`): the socket reports every one, repeats
/// included (verboser), so a consumer that subscribes and unsubscribes in a loop wrote a line per message — an `info`
/// line at whatever rate it sent, with nothing else to pay. Every one is still counted.
///
/// It also bounds what consumers can make libzmq hold (`output.maxSubscriptions`). The XPUB keeps every distinct
/// prefix of every connection in a trie, a node per byte (~60 bytes of resident memory per byte of prefix), and no
/// option of libzmq 4.3.4 limits how many a peer may send (`ZMQ_XPUB_MANUAL` does not either: the socket then stores
/// each one in a second trie, `_manual_subscriptions`, whether or not the daemon applies it; nor does `ZMQ_RCVHWM`:
/// the socket takes subscriptions from a connection as fast as they arrive, ahead of the daemon). So the tracker
/// keeps what each open connection holds as libzmq's trie does — each distinct prefix once, from its subscription
/// to its unsubscription; libzmq names the connection in each message's metadata: its descriptor and peer address —
/// and, when a subscription takes the total over the cap, cuts the connection that holds the most (the sender on a
/// tie): libzmq ends it as if the peer had left and frees its subscriptions, which it reports as unsubscriptions
/// without a connection. Logged at `warning` (rate-limited) and counted (`subscribersCut`). A prefix, not a count:
/// libzmq 4.3.4 hands up an unsubscription of a prefix the connection never held (from a peer that speaks ZMTP
/// itself; a libzmq SUB never sends one), and with counts one such after each subscription kept the connection's
/// count at 0 while libzmq held every prefix — the cap was never reached (session 26).
struct SubscriptionTracker {
    private let logger: Logger
    private let counters: RuntimeCounters
    private let lines: LogLimiter
    /// Subscriptions held, all prefixes / alert prefixes (a consumer may hold several; XPUB reports each; a repeated
    /// subscription or an unsubscription of what the connection does not hold changes nothing): what the open
    /// connections hold (`held`), plus those that came without a connection's name (`inproc://`).
    ///
    /// Not a running sum of subscribe minus unsubscribe: counted that way, a connection's unsubscription read after
    /// libzmq had closed it and given its descriptor to a new connection from the same peer (TCP names the host, not
    /// the port) was held against the new connection, which did not hold the prefix, and never taken off — while
    /// libzmq, having applied it, had nothing left to report when the old connection ended. Consumers that churned and
    /// left kept the gauge at 2–18 with no connection open, which silences the "nobody receives alerts" alarm (a
    /// fault tester, session 35). Counted from what each open connection holds, a misattributed message can only be
    /// wrong while the connection it was put on is open: a closed connection's entry goes at the next sweep (when
    /// libzmq reports a connection ended, and at least once every `sweepInterval`).
    var subscriptions: Int { heldCount + unnamed }
    var alertSubscriptions: Int { heldAlertCount + unnamedAlert }
    /// Subscriptions from connections libzmq does not name (`inproc://`), as subscribe minus unsubscribe: libzmq's
    /// reports of an ended connection carry no name either and take them down.
    private var unnamed = 0
    private var unnamedAlert = 0
    /// Alert prefixes among `held`'s (`heldCount` counts all).
    private(set) var heldAlertCount = 0
    /// When the last sweep was; `sweepIfDue` sweeps when `sweepInterval` has passed.
    private var lastSweep: ContinuousClock.Instant?
    static let sweepInterval = Duration.seconds(1)
    /// `output.maxSubscriptions`: the most subscriptions the open connections may hold together.
    let maxSubscriptions: Int
    /// The output's bound endpoint (its real port): a connection first seen must be one it accepted. Nil: not checked.
    let outputEndpoint: String?
    /// What each open connection holds (keyed by descriptor, checked against the socket behind it when first seen and
    /// whenever connections end), and the total.
    private var held: [Int32: (connection: ZMQPeerConnection, prefixes: Set<[UInt8]>)] = [:]
    private(set) var heldCount = 0
    /// Connections cut: what they still send is not held against the cap again. Kept, by descriptor, until the number
    /// is given to a new connection from the same peer (at most `maxCut`, the oldest forgotten first): libzmq may
    /// close a connection, and give its number to another socket, before the daemon has received every message it
    /// read from it. What a cut connection still sends is not counted in `subscriptions`: libzmq ends it moments later.
    private var cut: [Int32: (connection: ZMQPeerConnection, order: Int)] = [:]
    private var cutOrder = 0
    static let maxCut = 256
    /// "cut a consumer's connection" lines: 10 at once, then one every 6 s.
    private let cutLines: LogLimiter
    /// Set when a connection was cut or connections ended (their subscriptions freed): `takeMemoryFreed`.
    private var memoryFreed = false

    /// "subscriber joined" and "subscriber left" lines: each up to 100 at once (consumers starting together each
    /// have theirs), then one a second with `notLogged=N`.
    static func lineLimit() -> LogLimiter { LogLimiter(burst: 100, intervalSeconds: 1) }

    static let defaultMaxSubscriptions = 1024

    /// The "subscriber joined/left" lines and the cuts held back by their rate limits, once each flood is over.
    func sayHeldBack(stopping: Bool = false) {
        lines.sayHeldBack(to: logger, level: .info, stopping: stopping) { "\"\($0)\" lines" }
        cutLines.sayHeldBack(to: logger, level: .warning, stopping: stopping) { _ in
            "cuts of consumers' connections (output.maxSubscriptions)"
        }
    }

    init(logger: Logger, counters: RuntimeCounters, lines: LogLimiter = SubscriptionTracker.lineLimit(),
         cutLines: LogLimiter = LogLimiter(), maxSubscriptions: Int = SubscriptionTracker.defaultMaxSubscriptions,
         outputEndpoint: String? = nil) {
        self.logger = logger
        self.counters = counters
        self.lines = lines
        self.cutLines = cutLines
        self.maxSubscriptions = maxSubscriptions
        self.outputEndpoint = outputEndpoint
    }

    /// Whether libzmq freed subscriptions since the last call (a connection cut or ended): the loop then gives free
    /// heap memory back to the system (`Housekeeping.memoryToReturn`).
    mutating func takeMemoryFreed() -> Bool {
        defer { memoryFreed = false }
        return memoryFreed
    }

    /// Whether a subscription to `prefix` receives alert messages (`alert.raised.<rule>`, `alert.resolved.<rule>`).
    static func coversAlerts(_ prefix: some Collection<UInt8>) -> Bool {
        let alert = Array("alert.".utf8)
        if prefix.count <= alert.count { return prefix.elementsEqual(alert.prefix(prefix.count)) }
        return prefix.starts(with: alert)
    }

    /// The most messages `read` takes from the output in one turn of the processing loop.
    static let messagesPerTurn = 1024

    /// Reads the pending subscription messages, at most `budget` (the rest wait for the next turn: the output stays
    /// readable). Returns whether a subscription covering alerts arrived and is held (by a connection still open, as far
    /// as the daemon can tell).
    /// A message that is not a subscription or an unsubscription (first byte 1 or 0) — an XSUB consumer's own message
    /// sent upstream, which libzmq's XPUB hands up too — is read and ignored: it was counted and logged as a consumer
    /// leaving.
    ///
    /// The budget keeps the input's share of the loop: read to the end, the messages of one consumer that subscribed
    /// and unsubscribed in a loop (each undone at once, so no cap applies) held the loop for as long as it sent them,
    /// since libzmq's XPUB queues them without bound — 8 such connections for 30 s delayed every event by up to 102 s,
    /// `/healthz` said 503 and the systemd watchdog went 75 s without a ping (a fault tester, session 35).
    mutating func read(_ output: ZMQSocket, budget: Int = SubscriptionTracker.messagesPerTurn) -> Bool {
        var alertJoined = false
        var ended = false
        var taken = 0
        while taken < budget, let (first, source) = try? output.receiveFirstFrameWithSource() {
            taken += 1
            guard let kind = first.first, kind <= 1 else { continue }
            let prefixBytes = first.dropFirst()
            let isAlert = Self.coversAlerts(prefixBytes)
            // A repeat, or an unsubscription of what the connection does not hold, changes nothing and is not logged.
            var changed: Bool
            if kind == 1 {
                if let source {
                    changed = hold(prefixBytes, by: source)  // false: a repeat, or a connection gone or cut
                } else {
                    changed = true
                    unnamed += 1
                    if isAlert { unnamedAlert += 1 }
                }
                // Only a subscription held counts: one from a connection already gone or cut (a probe that left
                // during the republish grace) would release the republish to nobody (a bug hunter, session 45).
                if isAlert && changed { alertJoined = true }
            } else if let source {
                changed = release(prefixBytes, by: source)
            } else {
                // libzmq's own report of a connection that ended, one per prefix it held (or an `inproc://`
                // consumer's unsubscription): the connections it names are swept below.
                // Taken off the unnamed count while there is one: in the daemon there never is (its output is not
                // `inproc://`), and beside named connections this may be one of theirs (kept consistent: never more
                // alert subscriptions than subscriptions; a reviewer, session 36).
                changed = true
                ended = true
                if unnamed > 0 {
                    unnamed -= 1
                    if isAlert && unnamedAlert > 0 { unnamedAlert -= 1 }
                    unnamedAlert = min(unnamedAlert, unnamed)
                }
            }
            guard changed else { continue }
            let what = kind == 1 ? "subscriber joined" : "subscriber left"
            guard let notLogged = lines.admit(what) else { continue }
            var metadata: Logger.Metadata = ["prefix": "\(String(decoding: prefixBytes, as: UTF8.self))"]
            if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
            logger.info("\(what)", metadata: metadata)
        }
        if ended {
            sweep()
            memoryFreed = true
        }
        publishCounts()
        // A consumer that subscribed and left within these messages holds nothing either.
        return alertJoined && alertSubscriptions > 0
    }

    /// Sweeps the connections libzmq has closed when `sweepInterval` has passed since the last sweep (each turn of the
    /// loop asks; two system calls per open connection): a connection whose prefixes were all taken off before it
    /// ended is not reported by libzmq when it ends, and an entry wrongly left on it would otherwise stay.
    mutating func sweepIfDue(at now: ContinuousClock.Instant) {
        if let lastSweep, now - lastSweep < Self.sweepInterval { return }
        lastSweep = now
        guard !held.isEmpty || !cut.isEmpty else { return }
        sweep()
        publishCounts()
    }

    private func publishCounts() {
        counters.subscriptions.store(subscriptions, ordering: .relaxed)
        counters.alertSubscriptions.store(alertSubscriptions, ordering: .relaxed)
    }

    /// Counts one subscription against the connection it came from; false when it counts nothing: the connection
    /// already held the prefix (libzmq keeps it once), was cut (libzmq holds the prefix until it ends the connection,
    /// moments later, then reports it), or is gone (libzmq closed it before its messages were read). The entry kept for
    /// the descriptor is that connection's only while the descriptor is not a new connection from the same peer
    /// (`mayBeSource`, one `fstat` a subscription): libzmq may have closed it and given the number to a new connection
    /// from the same peer (the same peer address) before the old one's end is read, and the new connection's
    /// subscriptions were then added to the old count, then forgotten with it at the next sweep.
    @discardableResult
    mutating func hold(_ prefix: ArraySlice<UInt8>, by source: ZMQMessageSource) -> Bool {
        if let entry = held[source.descriptor], entry.connection.peerAddress == source.peerAddress,
           entry.connection.mayBeSource {
            guard held[source.descriptor]!.prefixes.insert(Array(prefix)).inserted else { return false }
        } else {
            if isCut(source) { return false }
            // A connection not seen yet (or its descriptor now serves another peer): checked once against the socket.
            guard let connection = ZMQPeerConnection(source, acceptedBy: outputEndpoint) else { return false }
            forget(source.descriptor)
            held[source.descriptor] = (connection, [Array(prefix)])
        }
        heldCount += 1
        if Self.coversAlerts(prefix) { heldAlertCount += 1 }
        if heldCount > maxSubscriptions { enforceCap(sender: source.descriptor, prefix: prefix) }
        return true
    }

    /// Takes back one subscription of the connection it came from; false when the connection did not hold the prefix
    /// (libzmq hands such an unsubscription up all the same), was cut, is gone, or is open and never subscribed (a raw
    /// peer's unsubscriptions took `subscriptions` down while it held nothing: a reviewer, session 26).
    @discardableResult
    mutating func release(_ prefix: ArraySlice<UInt8>, by source: ZMQMessageSource) -> Bool {
        guard let entry = held[source.descriptor], entry.connection.peerAddress == source.peerAddress,
              entry.connection.mayBeSource,
              held[source.descriptor]!.prefixes.remove(Array(prefix)) != nil else { return false }
        heldCount -= 1
        if Self.coversAlerts(prefix) { heldAlertCount -= 1 }
        return true
    }

    /// Drops the entry of `descriptor`, with what it held.
    private mutating func forget(_ descriptor: Int32) {
        guard let entry = held.removeValue(forKey: descriptor) else { return }
        heldCount -= entry.prefixes.count
        heldAlertCount -= entry.prefixes.count { Self.coversAlerts($0) }
    }

    /// Whether `source` is a connection that was cut (its descriptor not given to a new connection from the same peer
    /// since).
    private func isCut(_ source: ZMQMessageSource) -> Bool {
        guard let entry = cut[source.descriptor] else { return false }
        return entry.connection.peerAddress == source.peerAddress && entry.connection.mayBeSource
    }

    /// Forgets connections libzmq has closed (their descriptor is no longer the same socket with the same peer).
    private mutating func sweep() {
        for (fd, entry) in held where !entry.connection.isOpen { forget(fd) }
        cut = cut.filter { $0.value.connection.mayBeSource }
    }

    /// Over the cap: cut the connection holding the most (the sender on a tie).
    private mutating func enforceCap(sender: Int32, prefix: ArraySlice<UInt8>) {
        sweep()
        guard heldCount > maxSubscriptions else { return }
        var victim = held[sender]
        for entry in held.values where entry.prefixes.count > (victim?.prefixes.count ?? 0) { victim = entry }
        guard let victim else { return }
        forget(victim.connection.descriptor)
        if cut.count >= Self.maxCut, let oldest = cut.min(by: { $0.value.order < $1.value.order }) { cut[oldest.key] = nil }
        cutOrder += 1
        cut[victim.connection.descriptor] = (victim.connection, cutOrder)
        victim.connection.cut()
        memoryFreed = true
        counters.subscribersCut.add(1, ordering: .relaxed)
        guard let notLogged = cutLines.admit("cut") else { return }
        var metadata: Logger.Metadata = [
            "peer": "\(victim.connection)", "held": "\(victim.prefixes.count)", "maxSubscriptions": "\(maxSubscriptions)",
            "prefix": "\(String(decoding: prefix.prefix(64), as: UTF8.self))",
        ]
        if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
        logger.warning("cut a consumer's connection: the output's subscriptions would exceed output.maxSubscriptions; it held the most of them",
                       metadata: metadata)
    }
}
