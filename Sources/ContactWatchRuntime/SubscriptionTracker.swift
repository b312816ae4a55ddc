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
struct SubscriptionTracker {
    private let logger: Logger
    private let counters: RuntimeCounters
    private let lines: LogLimiter
    /// Subscriptions held, all prefixes / alert prefixes (a consumer may hold several; XPUB reports each).
    private(set) var subscriptions = 0
    private(set) var alertSubscriptions = 0

    /// "subscriber joined" and "subscriber left" lines: each up to 100 at once (consumers starting together each
    /// have theirs), then one a second with `notLogged=N`.
    static func lineLimit() -> LogLimiter { LogLimiter(burst: 100, intervalSeconds: 1) }

    init(logger: Logger, counters: RuntimeCounters, lines: LogLimiter = SubscriptionTracker.lineLimit()) {
        self.logger = logger
        self.counters = counters
        self.lines = lines
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
        while let frames = try? output.receiveCopy(timeoutMilliseconds: 0) {
            guard let first = frames.first, let kind = first.first, kind <= 1 else { continue }
            let prefixBytes = first.dropFirst()
            let isAlert = Self.coversAlerts(prefixBytes)
            if kind == 1 {
                subscriptions += 1
                if isAlert {
                    alertSubscriptions += 1
                    alertJoined = true
                }
            } else {
                subscriptions = max(0, subscriptions - 1)
                if isAlert { alertSubscriptions = max(0, alertSubscriptions - 1) }
            }
            let what = kind == 1 ? "subscriber joined" : "subscriber left"
            guard let notLogged = lines.admit(what) else { continue }
            var metadata: Logger.Metadata = ["prefix": "\(String(decoding: prefixBytes, as: UTF8.self))"]
            if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
            logger.info("\(what)", metadata: metadata)
        }
        counters.subscriptions.store(subscriptions, ordering: .relaxed)
        counters.alertSubscriptions.store(alertSubscriptions, ordering: .relaxed)
        return alertJoined
    }
}
