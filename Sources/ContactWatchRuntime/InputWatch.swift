import ContactWatchCommon
import Logging
import Synchronization
import ZeroMQ

/// What the input's monitor events mean for the daemon, as a plain value: fed the events and the time, it returns
/// what to do (reconnect, log, count), so the rules are tested in-process (events.md, over-size frames; cli.md,
/// *Security*).
///
/// - A connected input whose connection drops is re-established by the loop (disconnect and connect the endpoint
///   again) unless libzmq does it itself: after a protocol error (an over-size frame, a failed handshake) libzmq
///   never reconnects, after an ordinary drop (the publisher went away) it retries at once and reports
///   `connectRetried`/`connectDelayed`/`connected`. So the loop waits `libzmqGrace` for such a report, and then also
///   until every message already queued from the endpoint has been read (a disconnect discards them); after a failed
///   handshake it waits a second, so a refused daemon does not hammer its publisher — and after a failure libzmq does
///   retry (no detail: the peer closed, as a CURVE publisher does when the daemon holds the wrong server key) it
///   disconnects the endpoint first (`pause`, once what is queued was read, as for a reconnect), since libzmq tried
///   again every 100–200 ms (a security tester, session 44). libzmq tells only whether the
///   socket has input, not from which connection: other inputs sending without a pause kept it busy, and the dropped
///   one was not reconnected for as long (12.5 s and 248 events its publisher sent to nobody, a reviewer, session 28).
///   The queued messages of the dropped connection are read in turn with the others' (libzmq's fair queueing takes a
///   message from each connection with one queued, in turn), and it holds at most `receiveHighWaterMark` (+ 1), so
///   once (connections + 1) × (high-water mark + 1) messages have been read since the reconnect came due, nothing of
///   it is left: the reconnect is made then, drained or not. Without a high-water mark (0) the wait stays unbounded.
/// - Each disconnection is reported with the endpoint (logged at `warning` and counted); each failed handshake too
///   (counted as a refusal of the input), except a ZAP refusal on a bound input, which the ZAP handler reports.
/// - An endpoint without any connected publisher for `quietLimit` (a minute) is reported once, until one connects
///   again. A connection is a publisher once it has completed its ZeroMQ handshake, not when its TCP connection is
///   made: a peer that accepted the daemon's connection and never spoke kept the warning away for good, while no
///   event could arrive (a fault tester, session 35). libzmq's handshake success names no connection, so a
///   connection is taken for a publisher when a success comes while it is the only one of its endpoint whose
///   handshake is pending (or the only one left once the others ended in a failure), when as many successes have
///   come as connections are pending (two publishers connecting at once: a soak test, session 37), or once it has lasted
///   `handshakeLimit` — libzmq ends every connection that has not completed its handshake within 30 s
///   (`ZMQ_HANDSHAKE_IVL`; ZMTP 1.0/2.0 peers too, which never report a success: a reviewer, session 36, measured it).
///   Counted instead (one less at each drop that did not follow a failure), a peer dropped
///   for bad bytes with no failure reported took the count to 0 beside a working publisher, and the warning blamed
///   it (a reviewer, session 36).
struct InputWatch {
    enum Action: Equatable {
        /// Disconnect and connect this endpoint again (connected inputs only).
        case reconnect(String)
        /// Disconnect this endpoint, so that libzmq stops retrying it at once; its `reconnect` follows after
        /// `retryAfterFailure` (connected inputs only).
        case pause(String)
        /// A connection to/from this endpoint dropped (peer address when known).
        case disconnected(endpoint: String, peer: String?)
        /// A handshake failed on this endpoint.
        case handshakeFailed(ZMQSocketEvent)
        /// No publisher for this long on this endpoint (`handshaking`: connections open that never completed their
        /// handshake).
        case noPeer(endpoint: String, seconds: Int, handshaking: Int = 0)
        /// A connection to this (bound) endpoint could not be accepted (`errno`).
        case acceptFailed(endpoint: String, code: Int32)
    }

    let endpoints: [String]
    let bound: Bool
    let quietLimit: Duration
    /// The endpoints a connection was ever made to (its host name resolved then, whatever it does now): those with a
    /// connection counted for them that was not moved away (`reattribute`).
    var everConnected: Set<String> { Set(connectionsMade.filter { $0.value > 0 }.keys) }
    private var connectionsMade: [String: Int] = [:]
    let retryAfterFailure: Duration
    let libzmqGrace: Duration
    /// `input.receiveHighWaterMark`: the most messages a connection's queue holds (0: no limit).
    let receiveHighWaterMark: Int
    /// Live connections (descriptors) per endpoint, with when each was made; those taken for publishers (see the
    /// type's comment).
    private var connectedAt: [String: [UInt32: ContinuousClock.Instant]] = [:]
    private var publishers: [String: Set<UInt32>] = [:]
    /// Handshake successes that came while several handshakes were pending: given to the pending connections once
    /// there are no more of them than successes (a reviewer, session 36: otherwise only age told, up to 35 s late).
    /// Never more than the pending connections that did succeed: one less when a pending connection ends other than
    /// in a failure (it may have been one of them).
    private var unattributed: [String: Int] = [:]
    /// How long a connection must last to be taken for a publisher without a success of its own: libzmq's handshake
    /// interval (30 s, not changed by the daemon) and 5 s for a loop that read the drop late.
    let handshakeLimit: Duration
    /// Since when each endpoint has had no connection (nil while it has one), and whether that was reported.
    private var quietSince: [String: ContinuousClock.Instant] = [:]
    private var reportedQuiet: Set<String> = []
    /// The last handshake failure per endpoint: a disconnection soon after it belongs to it.
    private var lastFailure: [String: ContinuousClock.Instant] = [:]
    /// Endpoints whose last failure libzmq retries by itself (no detail): the due entry is a `pause`, not a reconnect.
    private var libzmqRetries: Set<String> = []
    /// Endpoints paused after such a failure: the pause is due (`true`), or was made and the reconnect is due
    /// (`false`). While an endpoint is here, libzmq's own retries (`connected`, `connectRetried`) leave its due entry
    /// alone: a retry reported after the pause's disconnect cancelled the reconnect, and the input stayed deaf to that
    /// endpoint for good.
    private var paused: [String: Bool] = [:]
    /// Reconnects due later (after a failed handshake).
    private var dueReconnects: [String: ContinuousClock.Instant] = [:]
    /// Messages read since each due reconnect came due.
    private var readSinceDue: [String: Int] = [:]

    init(endpoints: [String], bound: Bool, now: ContinuousClock.Instant, quietLimit: Duration = .seconds(60),
         retryAfterFailure: Duration = .seconds(1), libzmqGrace: Duration = .milliseconds(300),
         receiveHighWaterMark: Int = 0, handshakeLimit: Duration = .seconds(35)) {
        self.handshakeLimit = handshakeLimit
        self.endpoints = endpoints
        self.bound = bound
        self.quietLimit = quietLimit
        self.retryAfterFailure = retryAfterFailure
        self.libzmqGrace = libzmqGrace
        self.receiveHighWaterMark = receiveHighWaterMark
        for e in endpoints { quietSince[e] = now }
    }

    /// What the resolver said of each connected endpoint's host name (`learnHost`): its addresses, or none when it
    /// does not resolve.
    private var hostAddresses: [String: [String]] = [:]

    /// The endpoints with a connection taken for a publisher.
    var publisherEndpoints: Set<String> { Set(publishers.filter { !$0.value.isEmpty }.keys) }

    /// Records what the resolver said of `endpoint`'s host name (`HostCheck`), for `endpoint(of:)`.
    mutating func learnHost(_ endpoint: String, _ lookup: EndpointExposure.HostLookup) {
        hostAddresses[endpoint] = lookup.addresses
    }

    /// The address of the last connection named by an address that none of its port's endpoints' host names resolved
    /// to; nil once `lookedUpAgain()` is called. libzmq resolves a name again at each reconnection, the daemon looked
    /// its names up once at start: after a publisher's DNS record changed (months into a run), its connections went
    /// to whichever endpoint came first, and the real one was warned "no publisher" while its events flowed (an uptime
    /// hunter, session 48). The supervisor looks the names up again, and `reattribute` moves the live connections.
    private(set) var unmatchedAddress: String?

    /// The supervisor has started new lookups for `unmatchedAddress` (or found it matched by now).
    mutating func lookedUpAgain() { unmatchedAddress = nil }

    /// Whether `address` (a connection named by address) is on a port several endpoints share and none of their host
    /// names resolved to it as far as is known — a name with no answer yet, or none at start (a resolver that was not
    /// up), does not count as a match, so it is looked up again too.
    func isUnmatched(address: String) -> Bool { !surelyOf(address) }

    /// The host of `address` (an IPv4-mapped address as the IPv4 one: a socket with ZMQ_IPV6 on names an IPv4 peer
    /// so) and the configured endpoints with its port.
    private func peers(_ address: String) -> (host: Substring, samePort: [String])? {
        guard let (named, port) = EndpointExposure.destination(of: address) else { return nil }
        var host = named
        if host.hasPrefix("::ffff:"), host.dropFirst(7).contains(".") { host = host.dropFirst(7) }
        return (host, endpoints.filter { EndpointExposure.destination(of: $0)?.port == port })
    }

    /// The configured endpoint an event is about: the bound one; for connections, the one libzmq names. libzmq may
    /// name a resolved address instead (`tcp://127.0.0.1:7401` for `tcp://localhost:7401`): then the only configured
    /// endpoint with that port; among several, the first whose host name resolved to that address, else the first
    /// not known to be unresolvable. Publishers on different hosts often share a port: taken by port alone, a
    /// reconnection to the good host was counted for a mistyped one listed before it, which then counted as
    /// connected (its warning no longer said its name does not resolve) and had its quiet spell ended (a reviewer,
    /// session 42). An event other than a connection's start, named by an address a live connection was named by,
    /// goes where that connection went (`addressPins`).
    func endpoint(of event: ZMQSocketEvent) -> String {
        if bound || endpoints.count == 1 { return endpoints[0] }
        if endpoints.contains(event.endpoint) { return event.endpoint }
        if event.kind != .connected && event.kind != .accepted, let pin = addressPins[event.endpoint] { return pin.endpoint }
        return attribute(address: event.endpoint)
    }

    /// The first configured endpoint with the port of `address` whose host name resolved to its host; nil when none
    /// did (as far as is known).
    private func resolvedEndpoint(of address: String) -> String? {
        peers(address).flatMap { resolved($0.host, among: $0.samePort) }
    }

    /// The first of `samePort` whose host name resolved to `host`.
    private func resolved(_ host: Substring, among samePort: [String]) -> String? {
        samePort.first { hostAddresses[$0]?.contains(where: { $0 == host }) == true }
    }

    /// Whether an event named by `address` is surely the endpoint's it is counted for: named by the endpoint itself,
    /// the only one with its port, or by an address its host name resolved to. Only then does libzmq's own
    /// reconnection cancel a reconnect the loop has due: counted by port alone, a publisher of another endpoint
    /// reconnecting from a changed address cancelled the reconnect an over-size cut had made due, and the cut endpoint
    /// stayed deaf (a reviewer, session 49). `reattribute` cancels it for the endpoint a connection turns out to be.
    private func surelyOf(_ address: String) -> Bool {
        if bound || endpoints.count == 1 || endpoints.contains(address) { return true }
        guard let (host, samePort) = peers(address) else { return true }
        return samePort.count <= 1 || resolved(host, among: samePort) != nil
    }

    /// The endpoint a connection named by `address` is counted for, by what is known of the host names now.
    private func attribute(address: String) -> String {
        guard let (host, samePort) = peers(address) else { return address }
        guard samePort.count > 1 else { return samePort.first ?? address }
        if let match = resolved(host, among: samePort) { return match }
        return samePort.first(where: { hostAddresses[$0]?.isEmpty != true }) ?? samePort[0]
    }

    /// The endpoint each live connection (descriptor) was given when it was made: its drop goes to the same one. Taken
    /// afresh, a connection made before the host lookups were known went to a mistyped endpoint and its drop, after
    /// them, to the right one, so the mistyped one kept a publisher for good (a reviewer, session 43).
    private var connectionEndpoint: [UInt32: String] = [:]
    /// The address each live connection named by address was named by, and for each such address the endpoint its
    /// connections were given and how many are live. libzmq names a connection's handshake events by the address
    /// too, with no descriptor: attributed afresh, a host answer learnt between a connection's start and its
    /// handshake's success sent the success to another endpoint, and the connection counted as a publisher only 35 s
    /// later (a reviewer, session 49).
    private var connectionAddress: [UInt32: String] = [:]
    private var addressPins: [String: (endpoint: String, live: Int)] = [:]
    /// The live connections counted for their endpoint by port alone (`surelyOf` was false), until answers confirm or
    /// move them: the loop's reconnect of that endpoint does not end them if they are another endpoint's.
    private var countedByPortAlone: Set<UInt32> = []

    /// Moves every live connection named by an address to the endpoint that address is attributed to now (host names
    /// answered, or answered again, since it was made), and returns the moves (address, from, to). A publisher moved
    /// away leaves its old endpoint quiet from now on, unless it has another; the new one's quiet spell ends.
    mutating func reattribute(now: ContinuousClock.Instant) -> [(address: String, from: String, to: String)] {
        var moves: [(address: String, from: String, to: String)] = []
        for (fd, address) in connectionAddress {
            // Only a live connection, and only to an endpoint whose name resolves to its address: moved by the port's
            // fallback when the latest answers did not list it (a rotating set of records, a record changed while
            // the old host still serves the connection), a correctly counted publisher left its endpoint warned "no
            // publisher" while its events flowed (a reviewer, session 49).
            guard let old = connectionEndpoint[fd], connectedAt[old]?[fd] != nil,
                  let new = resolvedEndpoint(of: address) else { continue }
            guard new != old else {
                // Confirmed where it was counted: libzmq's own reconnection of `old`, which `handle` could not be sure
                // of, so a reconnect it had due stayed armed, and the loop cut the working connection once (a
                // reviewer, session 49).
                if countedByPortAlone.remove(fd) != nil && paused[old] == nil && dueReconnects[old] != nil {
                    schedule(old, at: nil)
                }
                continue
            }
            countedByPortAlone.remove(fd)
            connectionEndpoint[fd] = new
            addressPins[address]?.endpoint = new
            connectionsMade[old, default: 1] -= 1
            connectionsMade[new, default: 0] += 1
            if let at = connectedAt[old]?.removeValue(forKey: fd) { connectedAt[new, default: [:]][fd] = at }
            if publishers[old]?.remove(fd) != nil {
                becamePublisher(fd, of: new)
                if publishers[old, default: []].isEmpty && quietSince[old] == nil { quietSince[old] = now }
            }
            unattributed[old] = min(unattributed[old] ?? 0, pendingConnections(of: old).count)
            // libzmq's own reconnection of `new`, as `handle` takes one it is sure of.
            if paused[new] == nil { schedule(new, at: nil) }
            moves.append((address, old, new))
        }
        return moves
    }

    mutating func handle(_ event: ZMQSocketEvent, now: ContinuousClock.Instant) -> [Action] {
        var e = endpoint(of: event)
        switch event.kind {
        case .connected, .accepted:
            connectionEndpoint[event.value] = e
            if surelyOf(event.endpoint) { countedByPortAlone.remove(event.value) } else { countedByPortAlone.insert(event.value) }
            if let earlier = connectionAddress.removeValue(forKey: event.value) { unpin(earlier) }
            if !bound && endpoints.count > 1 && !endpoints.contains(event.endpoint) {
                connectionAddress[event.value] = event.endpoint
                addressPins[event.endpoint] = (e, (addressPins[event.endpoint]?.live ?? 0) + 1)
            }
        case .disconnected, .closed:
            countedByPortAlone.remove(event.value)
            if let given = connectionEndpoint.removeValue(forKey: event.value) { e = given }
            if let address = connectionAddress.removeValue(forKey: event.value) { unpin(address) }
        default: break
        }
        switch event.kind {
        case .connected, .accepted:
            if isUnmatched(address: event.endpoint) { unmatchedAddress = event.endpoint }
            connectionsMade[e, default: 0] += 1
            connectedAt[e, default: [:]][event.value] = now
            // libzmq's own retry, made before the pause: the pause stands (its handshake fails as the last did, or,
            // once its publisher's key is right, it is made again a second later).
            if paused[e] == nil && !countedByPortAlone.contains(event.value) { schedule(e, at: nil) }
            return []
        case .handshakeSucceeded:
            // A pause still to be made is dropped: the endpoint works now (libzmq's own retry met a publisher that
            // accepts), and disconnecting it would lose what it sends for a second.
            if paused[e] == true {
                paused[e] = nil
                schedule(e, at: nil)
            }
            // Whose it is, when only one connection's handshake is pending — or only one of those named by the
            // success's address (a reconnection is named by the address it reached, its success too: two publishers
            // counted for one endpoint by port, one moved by `reattribute` after its success was counted, left the
            // other a publisher only at 35 s; a reviewer, session 49); otherwise age tells (`promote`).
            var pending = pendingConnections(of: e)
            if pending.count > 1, addressPins[event.endpoint] != nil {
                let same = pending.filter { connectionAddress[$0] == event.endpoint }
                if same.count == 1 { pending = same }
            }
            if pending.count == 1 { becamePublisher(pending[0], of: e) }
            else if pending.count > 1 {
                unattributed[e] = min((unattributed[e] ?? 0) + 1, pending.count)
                promoteIfAllSucceeded(e)
            }
            return []
        case .acceptFailed:
            return [.acceptFailed(endpoint: e, code: Int32(bitPattern: event.value))]
        case .connectRetried, .connectDelayed:
            // libzmq is reconnecting this endpoint itself (after a failure it retries, at once: the pause stands).
            if paused[e] == nil && surelyOf(event.endpoint) { schedule(e, at: nil) }
            return []
        case .handshakeFailedProtocol, .handshakeFailedNoDetail, .handshakeFailedAuth:
            lastFailure[e] = now
            if event.kind == .handshakeFailedNoDetail { libzmqRetries.insert(e) } else { libzmqRetries.remove(e) }
            // A ZAP refusal on a bound input is the ZAP handler's to report.
            if bound && event.kind == .handshakeFailedAuth { return [] }
            return [.handshakeFailed(event)]
        case .disconnected, .closed:
            let wasLive = connectedAt[e]?.removeValue(forKey: event.value) != nil
            let wasPending = wasLive && publishers[e]?.contains(event.value) != true
            publishers[e]?.remove(event.value)
            let afterFailure = lastFailure[e].map { now - $0 < retryAfterFailure } ?? false
            // A pending connection that ended in a failure had not succeeded: the successes not yet given belong to
            // the pending ones left, once there are no more of them than successes. One that ended otherwise may have
            // been one of them: a success fewer, so that the count never exceeds the pending connections that did
            // succeed, and "as many successes as pending connections" stays proof that each of them did.
            if wasPending, let n = unattributed[e], n > 0 {
                if afterFailure { promoteIfAllSucceeded(e) } else { unattributed[e] = n - 1 }
            }
            unattributed[e] = min(unattributed[e] ?? 0, pendingConnections(of: e).count)
            if publishers[e, default: []].isEmpty && quietSince[e] == nil { quietSince[e] = now }
            guard event.kind == .disconnected, wasLive else { return [] }
            // On a bound input the endpoint is every peer's: a failure is another connection's, unless this one never
            // completed its handshake. A publisher's drop within a second of a port probe or a refused peer went
            // uncounted and unsaid — an over-size cut too (a bug hunter, session 47: a probe every 300 ms hid all 20).
            if afterFailure && (!bound || wasPending) {
                // The end of a refused handshake, already reported; retry later (connected inputs). After a failure
                // libzmq retries itself, the endpoint is disconnected first, as soon as what is queued was read.
                guard !bound else { return [] }
                // Never re-armed once made: a paused endpoint (disconnected by us) is connected again at most
                // `retryAfterFailure` after its pause, whatever libzmq reports meanwhile — late events of retries made
                // before it pushed the reconnect a second further each time, and the right publisher was never read
                // (the real-libzmq test under the whole suite, and a reviewer, session 44). Nor is an endpoint paused
                // while it has a working publisher: a connected endpoint has one libzmq session, so the failure is
                // another endpoint's, attributed by port (a reviewer, session 44: the working one was cut and kept deaf).
                if paused[e] == false {
                } else if libzmqRetries.contains(e) && publishers[e, default: []].isEmpty {
                    if paused[e] != true { schedule(e, at: now) }
                    paused[e] = true
                } else if libzmqRetries.contains(e) {
                } else {
                    schedule(e, at: now + retryAfterFailure)
                }
                return []
            }
            if !bound { schedule(e, at: now + libzmqGrace) }
            return [.disconnected(endpoint: e, peer: event.peerAddress)]
        default:
            return []
        }
    }

    /// One live connection fewer named by `address`.
    private mutating func unpin(_ address: String) {
        guard var pin = addressPins[address] else { return }
        pin.live -= 1
        addressPins[address] = pin.live > 0 ? pin : nil
    }

    /// Takes every pending connection of `endpoint` for a publisher when the unattributed successes are as many as
    /// they are: each connection succeeds once, so each of them did. Two publishers connecting at once were otherwise
    /// taken for publishers only once they had lasted 35 s, and an input quiet before them was reported as having no
    /// publisher — "2 connections … never completed the ZeroMQ handshake" — while both were delivering (a soak test,
    /// session 37).
    private mutating func promoteIfAllSucceeded(_ endpoint: String) {
        guard let n = unattributed[endpoint], n > 0 else { return }
        let pending = pendingConnections(of: endpoint)
        guard !pending.isEmpty, pending.count <= n else { return }
        for fd in pending { becamePublisher(fd, of: endpoint) }
        unattributed[endpoint] = n - pending.count
    }

    /// The connections of `endpoint` not (yet) taken for publishers.
    private func pendingConnections(of endpoint: String) -> [UInt32] {
        (connectedAt[endpoint] ?? [:]).keys.filter { !(publishers[endpoint]?.contains($0) ?? false) }
    }

    /// `fd` of `endpoint` is a publisher: the endpoint's quiet spell, if any, ends.
    private mutating func becamePublisher(_ fd: UInt32, of endpoint: String) {
        publishers[endpoint, default: []].insert(fd)
        quietSince[endpoint] = nil
        reportedQuiet.remove(endpoint)
    }

    /// Takes for publishers the connections that have lasted `handshakeLimit` (see the type's comment).
    private mutating func promote(now: ContinuousClock.Instant) {
        for (e, connections) in connectedAt {
            for (fd, at) in connections where now - at >= handshakeLimit && !(publishers[e]?.contains(fd) ?? false) {
                becamePublisher(fd, of: e)
            }
        }
    }

    /// Sets (or, nil, clears) when `endpoint`'s reconnect is due; its wait for the drain starts afresh.
    private mutating func schedule(_ endpoint: String, at instant: ContinuousClock.Instant?) {
        dueReconnects[endpoint] = instant
        readSinceDue[endpoint] = nil
    }

    /// Reconnects that have come due — once `inputDrained()` says nothing queued is left to read, since a disconnect
    /// discards what is queued, or once enough messages were read since (`messagesRead`: since the last tick) that
    /// none of the dropped connection's can be left — and endpoints quiet for too long (each reported once per quiet
    /// spell).
    mutating func tick(now: ContinuousClock.Instant, messagesRead: Int = 0,
                       inputDrained: () -> Bool = { true }) -> [Action] {
        var out: [Action] = []
        if dueReconnects.contains(where: { $0.value <= now }) {
            let drained = inputDrained()
            // Every connection that may have messages queued: the live ones and each dropped one not yet replaced.
            let queues = connectedAt.values.reduce(dueReconnects.count) { $0 + $1.count }
            let enough = receiveHighWaterMark > 0 ? queues.multipliedReportingOverflow(by: receiveHighWaterMark + 1)
                : (partialValue: 0, overflow: true)
            for (e, due) in dueReconnects where due <= now {
                // Counted from the first tick at which it is due (what was read before may predate the drop).
                let read = readSinceDue[e].map { $0 &+ messagesRead } ?? 0
                // After a pause nothing of the endpoint is queued (its disconnect discarded it): no wait for the
                // others' traffic to drain (a reviewer, session 44).
                if paused[e] == false || drained || (!enough.overflow && read >= enough.partialValue) {
                    if paused[e] == true {
                        paused[e] = false
                        schedule(e, at: now + retryAfterFailure)
                        out.append(.pause(e))
                    } else {
                        paused[e] = nil
                        schedule(e, at: nil)
                        out.append(.reconnect(e))
                    }
                } else {
                    readSinceDue[e] = read
                }
            }
        }
        // Only a quiet endpoint needs it (a connection promoted later is promoted when it counts), so a busy input's
        // turns do not walk its connections.
        if !quietSince.isEmpty { promote(now: now) }
        for e in endpoints {
            guard let since = quietSince[e], !reportedQuiet.contains(e), now - since >= quietLimit else { continue }
            reportedQuiet.insert(e)
            out.append(.noPeer(endpoint: e, seconds: Int((now - since).components.seconds),
                               handshaking: (connectedAt[e]?.count ?? 0) - (publishers[e]?.count ?? 0)))
        }
        return out
    }

    /// A reconnect was made: the old connections of `endpoint` are gone.
    mutating func reconnected(_ endpoint: String, now: ContinuousClock.Instant) {
        // libzmq reports nothing for the live connections its disconnect ends: forgotten here, or `reattribute` moved
        // a connection that no longer existed, and said so (a reviewer, session 49). One counted for it by port alone
        // may have been another endpoint's, which the disconnect leaves alive; kept, it was as often the endpoint's
        // own reconnection, ended without an event and counted as a publisher for good (a fourth reviewer, session 49):
        // forgotten too, the rarer loss.
        for fd in (connectedAt[endpoint] ?? [:]).keys {
            connectionEndpoint[fd] = nil
            countedByPortAlone.remove(fd)
            if let address = connectionAddress.removeValue(forKey: fd) { unpin(address) }
        }
        connectedAt[endpoint] = [:]
        publishers[endpoint] = []
        unattributed[endpoint] = 0
        if quietSince[endpoint] == nil { quietSince[endpoint] = now }
    }
}

/// Carries out `InputWatch`'s decisions on the processing thread, which owns the input socket and its monitor:
/// reconnects, warnings (rate-limited per endpoint) and counters.
struct InputSupervisor {
    private var watch: InputWatch
    let monitor: ZMQMonitor
    let security: DaemonSecurity
    let logger: Logger
    /// "input connection dropped" lines, per endpoint: 10 at once, then one every 6 s.
    private let limiter: LogLimiter
    /// The engine's count of messages received at the last tick.
    private var lastReceived = 0
    /// `input.maxMessageBytes`, named when libzmq cut a connection on a protocol error.
    let maxMessageBytes: Int
    /// Endpoints whose connection was dropped (the `disconnected` line said: after its handshake, or a peer libzmq
    /// took for ZMTP 1.0, which has none) and that libzmq has neither retried nor handshaken again since: their
    /// reconnect is the protocol error's. A reconnect after a failed handshake, or at the end of a pause, is not (a
    /// reviewer, session 52: the line came once a second on a CURVE mismatch, pointing at input.maxMessageBytes).
    private var droppedUnretried: Set<String> = []

    /// Whether each connected `tcp://` endpoint's host name resolves, asked once at start on a thread of its own:
    /// named in the quiet endpoint's warning while no connection was ever made to it (libzmq only retries, and the
    /// warning asked whether a publisher was running at a mistyped host; notes of sessions 41 and 42).
    let hostChecks: [String: HostCheck]
    /// The endpoints a connection was ever made to; those with a publisher now (tests).
    var everConnected: Set<String> { watch.everConnected }
    var publisherEndpoints: Set<String> { watch.publisherEndpoints }
    /// The endpoints whose check `watch` has not been told yet.
    private var untoldHostChecks: [String]
    /// The lookups made again after a connection came from an address none of the names resolved to
    /// (`InputWatch.unmatchedAddress`), until `watch` is told; when the last were started (at most one round a
    /// minute). They serve the attribution only: the quiet warning's "did not resolve at start" stays the start's.
    private(set) var relookups: [String: HostCheck] = [:]
    private var lastRelookup: ContinuousClock.Instant?
    static let relookupInterval: Duration = .seconds(60)
    private let lookUp: @Sendable (String) -> EndpointExposure.HostLookup?

    /// Starts the monitor; call before the input binds or connects, so that no connection goes unseen.
    init(input: ZMQSocket, endpoints: [String], bound: Bool, receiveHighWaterMark: Int, security: DaemonSecurity,
         logger: Logger, now: ContinuousClock.Instant, limiter: LogLimiter = LogLimiter(), maxMessageBytes: Int = 65_536,
         lookUp: @escaping @Sendable (String) -> EndpointExposure.HostLookup? = { EndpointExposure.lookUp($0) }) throws {
        self.limiter = limiter
        self.lookUp = lookUp
        self.maxMessageBytes = maxMessageBytes
        var checks: [String: HostCheck] = [:]
        if !bound {
            for e in endpoints where e.hasPrefix("tcp://") {
                let check = HostCheck()
                check.start(e, lookUp: lookUp)
                checks[e] = check
            }
        }
        hostChecks = checks
        untoldHostChecks = endpoints.filter { checks[$0] != nil }
        monitor = try input.startMonitor()
        watch = InputWatch(endpoints: endpoints, bound: bound, now: now, receiveHighWaterMark: receiveHighWaterMark)
        self.security = security
        self.logger = logger
    }

    /// The dropped-connection lines held back by the rate limit, once their flood is over.
    func sayHeldBack(stopping: Bool = false) {
        limiter.sayHeldBack(to: logger, level: .warning, stopping: stopping) { key in
            key.hasPrefix(Self.protocolErrorKey)
                ? "input connections cut on a protocol error on \(key.dropFirst(Self.protocolErrorKey.count))"
                : "dropped input connections on \(key.dropFirst(Self.disconnectedKey.count))"
        }
    }

    private static let disconnectedKey = "disconnected "
    private static let protocolErrorKey = "protocol error "

    /// Reads the monitor's pending events and acts on them.
    mutating func readEvents(input: ZMQSocket, now: ContinuousClock.Instant) {
        guard let events = try? monitor.events() else { return }
        if !events.isEmpty { tellHostChecks(now: now) }
        for event in events {
            switch event.kind {
            case .connectRetried, .connectDelayed, .handshakeSucceeded, .handshakeFailedProtocol, .handshakeFailedNoDetail,
                 .handshakeFailedAuth:
                if !droppedUnretried.isEmpty { droppedUnretried.remove(watch.endpoint(of: event)) }
            default: break
            }
            perform(watch.handle(event, now: now), input: input, now: now)
        }
        if watch.unmatchedAddress != nil { lookUpAgain(now: now) }
    }

    /// Starts the host lookups again, once the start's are all told and at most once every `relookupInterval`; a
    /// connection that comes sooner waits for the next round (counted for an endpoint by port until then).
    private mutating func lookUpAgain(now: ContinuousClock.Instant) {
        guard let address = watch.unmatchedAddress, untoldHostChecks.isEmpty, relookups.isEmpty,
              lastRelookup.map({ now - $0 >= Self.relookupInterval }) ?? true else { return }
        watch.lookedUpAgain()
        // The start's answers, told since, may have matched it.
        guard watch.isUnmatched(address: address) else { return }
        lastRelookup = now
        for endpoint in hostChecks.keys {
            let check = HostCheck()
            check.start(endpoint, lookUp: lookUp)
            relookups[endpoint] = check
        }
        logger.info("""
            a publisher connected from an address none of the input's host names is known to resolve to; looking them \
            up again (a changed DNS record?): its connection is counted for an endpoint with that port until the answers \
            come, then for the one whose name resolves to it
            """, metadata: ["address": "\(address)", "endpoints": "\(hostChecks.keys.sorted().joined(separator: ","))"])
    }

    /// Gives `watch` the host checks done since the last call, for the attribution of connections by address, and
    /// moves the live connections their answers attribute elsewhere (said at `info`).
    private mutating func tellHostChecks(now: ContinuousClock.Instant) {
        var learnt = false
        if !untoldHostChecks.isEmpty {
            var untold = untoldHostChecks
            untold.removeAll { endpoint in
                guard let check = hostChecks[endpoint] else { return true }
                let (known, found) = check.lookup
                if let found {
                    watch.learnHost(endpoint, found)
                    learnt = true
                }
                return known
            }
            untoldHostChecks = untold
        }
        if !relookups.isEmpty {
            for (endpoint, check) in relookups {
                let (known, found) = check.lookup
                guard known else { continue }
                if let found {
                    watch.learnHost(endpoint, found)
                    learnt = true
                }
                relookups[endpoint] = nil
            }
        }
        guard learnt else { return }
        for move in watch.reattribute(now: now) {
            logger.info("input connection counted for another endpoint: its host name resolves to the connection's address",
                        metadata: ["address": "\(move.address)", "from": "\(move.from)", "endpoint": "\(move.to)"])
        }
    }

    /// When the host checks still to be told are next looked at from `tick` (a connection may wait for their answers
    /// without any other monitor event coming).
    private var nextHostPoll: ContinuousClock.Instant?

    /// Due reconnects and quiet endpoints; call on every turn of the loop (no allocation when there is nothing to do).
    mutating func tick(input: ZMQSocket, now: ContinuousClock.Instant, received: Int) {
        if !relookups.isEmpty || !untoldHostChecks.isEmpty || watch.unmatchedAddress != nil,
           nextHostPoll.map({ now >= $0 }) ?? true {
            nextHostPoll = now + .milliseconds(100)
            tellHostChecks(now: now)
            // A connection left unmatched within a minute of the last round waits for the next one here, not for
            // the next monitor event (hours on a quiet, healthy input: a reviewer, session 49).
            if watch.unmatchedAddress != nil { lookUpAgain(now: now) }
        }
        let actions = watch.tick(now: now, messagesRead: received &- lastReceived,
                                 inputDrained: { (try? input.hasPendingInput) == false })
        lastReceived = received
        if !actions.isEmpty { perform(actions, input: input, now: now) }
    }

    private mutating func perform(_ actions: [InputWatch.Action], input: ZMQSocket, now: ContinuousClock.Instant) {
        for action in actions {
            switch action {
            case .reconnect(let endpoint):
                // libzmq does not reconnect after a protocol error (an over-size frame): start the connection afresh.
                try? input.disconnect(endpoint)
                do { try input.connect(endpoint) } catch {
                    logger.error("cannot reconnect the input", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                }
                watch.reconnected(endpoint, now: now)
                // A drop that libzmq did not retry is a protocol error, most often an over-size
                // message: lost without a word beyond the drop line, which at the end of every replay is normal (an
                // operator's audit, session 52). The bound side cannot tell; the connecting side can.
                guard droppedUnretried.remove(endpoint) != nil,
                      let notLogged = limiter.admit(Self.protocolErrorKey + endpoint) else { continue }
                var metadata: Logger.Metadata = ["endpoint": "\(endpoint)", "maxMessageBytes": "\(maxMessageBytes)"]
                if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
                logger.warning("""
                    the input connection was cut on a protocol error, which libzmq does not retry: most often a \
                    message over input.maxMessageBytes (\(maxMessageBytes) bytes), lost with any behind it on that \
                    connection (stream.gap says how many when the publisher numbers its events), or a peer that is \
                    not a ZeroMQ publisher; connected afresh
                    """, metadata: metadata)
            case .pause(let endpoint):
                // After a failed handshake libzmq retries: disconnected, it waits for the reconnect a second later.
                try? input.disconnect(endpoint)
                watch.reconnected(endpoint, now: now)
            case .disconnected(let endpoint, let peer):
                security.counters.disconnections.add(1, ordering: .relaxed)
                if !watch.bound { droppedUnretried.insert(endpoint) }
                guard let notLogged = limiter.admit(Self.disconnectedKey + endpoint) else { continue }
                var metadata: Logger.Metadata = ["endpoint": "\(endpoint)", "peer": "\(peer ?? "unknown")"]
                if notLogged > 0 { metadata["notLogged"] = "\(notLogged)" }
                // A warning: the input is the daemon's reason to be, and a feed that goes away needs attention. A
                // batch publisher that ends (a replay) leaves one such line: "re-established" read as if it had come
                // back (an operator audit, session 26).
                let reconnecting = watch.bound ? "" : "; reconnecting: input resumes when the publisher is back"
                logger.warning("input connection dropped (the publisher went away, or sent an over-size message)\(reconnecting)",
                               metadata: metadata)
            case .handshakeFailed(let event):
                // A connected CURVE input closed on at the handshake: what the operator needs to hear is that the
                // publisher may not hold the key the daemon was given (a security tester, session 44).
                let hint = !watch.bound && security.inputServerKey != nil && event.kind == .handshakeFailedNoDetail
                    ? "; a CURVE publisher whose secret key does not match input.curveServerKey (--input-curve-server-key) closes so"
                    : ""
                security.handshakeFailed(event, on: .input, endpoint: watch.endpoint(of: event), hint: hint)
            case .acceptFailed(let endpoint, let code):
                security.acceptFailures.report(.input, endpoint: endpoint, code: code)
            case .noPeer(let endpoint, let seconds, let handshaking):
                let open = handshaking == 0 ? ""
                    : " (\(handshaking) connection\(handshaking == 1 ? " is" : "s are") open that never completed the ZeroMQ "
                        + "handshake: is the peer a ZeroMQ publisher, and do both sides agree on CURVE?)"
                let host = watch.everConnected.contains(endpoint) ? nil : hostChecks[endpoint]?.unresolved
                let unresolved = host.map { " (the host name \($0.host) did not resolve at start: \($0.reason))" } ?? ""
                logger.warning("no publisher has been connected to the input for \(seconds) s\(unresolved)\(open)",
                               metadata: ["endpoint": "\(endpoint)"])
            }
        }
    }
}
