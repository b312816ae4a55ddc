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
/// counts what each open connection holds — its subscriptions minus its unsubscriptions; libzmq names the connection
/// in each message's metadata: its descriptor and peer address — and, when a subscription takes the total over the
/// cap, cuts the connection that holds the most (the sender on a tie): libzmq ends it as if the peer had left and
/// frees its subscriptions, which it reports as unsubscriptions without a connection. Logged at `warning`
/// (rate-limited) and counted (`subscribersCut`).
struct SubscriptionTracker {
    private let logger: Logger
    private let counters: RuntimeCounters
    private let lines: LogLimiter
    /// Subscriptions held, all prefixes / alert prefixes (a consumer may hold several; XPUB reports each).
    private(set) var subscriptions = 0
    private(set) var alertSubscriptions = 0
    /// `output.maxSubscriptions`: the most subscriptions the open connections may hold together.
    let maxSubscriptions: Int
    /// What each open connection holds (keyed by descriptor, checked against the socket behind it when first seen and
    /// whenever connections end), and the total.
    private var held: [Int32: (connection: ZMQPeerConnection, count: Int)] = [:]
    private(set) var heldCount = 0
    /// Connections cut and not yet closed by libzmq: what they still send is not held against the cap again.
    private var cut: Set<ZMQPeerConnection> = []
    private let cutLines = LogLimiter()
    /// Set when a connection was cut or connections ended (their subscriptions freed): `takeMemoryFreed`.
    private var memoryFreed = false

    /// "subscriber joined" and "subscriber left" lines: each up to 100 at once (consumers starting together each
    /// have theirs), then one a second with `notLogged=N`.
    static func lineLimit() -> LogLimiter { LogLimiter(burst: 100, intervalSeconds: 1) }

    static let defaultMaxSubscriptions = 1024

    init(logger: Logger, counters: RuntimeCounters, lines: LogLimiter = SubscriptionTracker.lineLimit(),
         maxSubscriptions: Int = SubscriptionTracker.defaultMaxSubscriptions) {
        self.logger = logger
        self.counters = counters
        self.lines = lines
        self.maxSubscriptions = maxSubscriptions
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

    /// Reads every pending subscription message. Returns whether a subscription covering alerts arrived.
    /// A message that is not a subscription or an unsubscription (first byte 1 or 0) — an XSUB consumer's own message
    /// sent upstream, which libzmq's XPUB hands up too — is read and ignored: it was counted and logged as a consumer
    /// leaving.
    mutating func readAll(_ output: ZMQSocket) -> Bool {
        var alertJoined = false
        var ended = false
        while let (first, source) = try? output.receiveFirstFrameWithSource() {
            guard let kind = first.first, kind <= 1 else { continue }
            let prefixBytes = first.dropFirst()
            let isAlert = Self.coversAlerts(prefixBytes)
            if kind == 1 {
                subscriptions += 1
                if isAlert {
                    alertSubscriptions += 1
                    alertJoined = true
                }
                if let source { hold(prefixBytes, by: source) }
            } else {
                subscriptions = max(0, subscriptions - 1)
                if isAlert { alertSubscriptions = max(0, alertSubscriptions - 1) }
                // Without a source: libzmq's own report of a connection that ended, one per prefix it held.
                if let source { release(by: source) } else { ended = true }
            }
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
        counters.subscriptions.store(subscriptions, ordering: .relaxed)
        counters.alertSubscriptions.store(alertSubscriptions, ordering: .relaxed)
        return alertJoined
    }

    /// Counts one subscription against the connection it came from. The entry kept for the descriptor is that
    /// connection's only while the descriptor is still its socket (one `fstat` a subscription): libzmq may have
    /// closed it and given the number to a new connection from the same peer (the same peer address) before the old
    /// one's end is read, and the new connection's subscriptions were then added to the old count, then forgotten with
    /// it at the next sweep (held by libzmq, not counted against the cap).
    mutating func hold(_ prefix: ArraySlice<UInt8>, by source: ZMQMessageSource) {
        if let entry = held[source.descriptor], entry.connection.peerAddress == source.peerAddress,
           entry.connection.holdsDescriptor {
            held[source.descriptor]!.count += 1
        } else {
            // A connection not seen yet (or its descriptor now serves another peer): checked once against the socket.
            guard let connection = ZMQPeerConnection(source), !cut.contains(connection) else { return }
            heldCount -= held[source.descriptor]?.count ?? 0
            held[source.descriptor] = (connection, 1)
        }
        heldCount += 1
        if heldCount > maxSubscriptions { enforceCap(sender: source.descriptor, prefix: prefix) }
    }

    mutating func release(by source: ZMQMessageSource) {
        guard let entry = held[source.descriptor], entry.connection.peerAddress == source.peerAddress,
              entry.count > 0, entry.connection.holdsDescriptor else { return }
        held[source.descriptor]!.count -= 1
        heldCount -= 1
    }

    /// Forgets connections libzmq has closed (their descriptor is no longer the same socket with the same peer).
    private mutating func sweep() {
        for (fd, entry) in held where !entry.connection.isOpen {
            heldCount -= entry.count
            held[fd] = nil
        }
        cut = cut.filter { $0.isOpen }
    }

    /// Over the cap: cut the connection holding the most (the sender on a tie).
    private mutating func enforceCap(sender: Int32, prefix: ArraySlice<UInt8>) {
        sweep()
        guard heldCount > maxSubscriptions else { return }
        var victim = held[sender]
        for entry in held.values where entry.count > (victim?.count ?? 0) { victim = entry }
        guard let victim else { return }
        held[victim.connection.descriptor] = nil
        heldCount -= victim.count
        cut.insert(victim.connection)
        victim.connection.cut()
        memoryFreed = true
        counters.subscribersCut.add(1, ordering: .relaxed)
        guard let notLogged = cutLines.admit("cut") else { return }
        var metadata: Logger.Metadata = [
            "peer": "\(victim.connection)", "held": "\(victim.count)", "maxSubscriptions": "\(maxSubscriptions)",
            "prefix": "\(String(decoding: prefix.prefix(64), as: UTF8.self))",
        ]
        if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
        logger.warning("cut a consumer's connection: the output's subscriptions would exceed output.maxSubscriptions; it held the most of them",
                       metadata: metadata)
    }
}
