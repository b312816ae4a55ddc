import ContactWatchCommon
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// A token bucket per key: at most `burst` lines, then one per `interval`, saying how many were not logged in
/// between, so that a flood (bad handshakes, a peer that keeps sending over-size frames) cannot flood the journal.
/// The lines held back after the last one logged are said once the flood is over (`sayHeldBack`, called by the
/// limiter's owner from its loop): otherwise a flood's tail went unsaid, seen only in a counter.
/// Callable from any thread.
final class LogLimiter: Sendable {
    private struct Bucket { var tokens: Double; var last: Double; var suppressed: Int }
    private let burst: Double
    private let interval: Double
    private let now: @Sendable () -> Double
    private let buckets = Mutex<[String: Bucket]>([:])

    init(burst: Int = 10, intervalSeconds: Double = 6,
         now: @escaping @Sendable () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }) {
        self.burst = Double(burst)
        self.interval = intervalSeconds
        self.now = now
    }

    /// nil: do not log now (counted as not logged); else the number of lines not logged since the last one.
    func admit(_ key: String) -> Int? {
        let t = now()
        return buckets.withLock { table in
            var b = table[key] ?? Bucket(tokens: burst, last: t, suppressed: 0)
            refill(&b, at: t)
            defer { table[key] = b }
            guard b.tokens >= 1 else { b.suppressed += 1; return nil }
            b.tokens -= 1
            defer { b.suppressed = 0 }
            return b.suppressed
        }
    }

    /// The keys with lines held back and no line asked for during a whole `interval` (the flood over; with
    /// `stopping`, every key with lines held back: the owner's loop is ending), with how many were held back since the
    /// last one logged; each is then cleared.
    func takeHeldBack(stopping: Bool = false) -> [(key: String, count: Int)] {
        let t = now()
        return buckets.withLock { table in
            var over: [(key: String, count: Int)] = []
            for (key, b) in table where b.suppressed > 0 && (stopping || t - b.last >= interval) {
                over.append((key, b.suppressed))
                // The line takes a token as an admitted one does: a burst, an interval's quiet, a burst… logged two
                // lines per interval where the limit promises one (a reviewer, session 33).
                var taken = b
                refill(&taken, at: t)
                taken.tokens = max(0, taken.tokens - 1)
                taken.suppressed = 0
                table[key] = taken
            }
            return over.sorted { $0.key < $1.key }
        }
    }

    /// `b` with the tokens earned since its last line asked for, up to `burst`, as of `t`.
    private func refill(_ b: inout Bucket, at t: Double) {
        b.tokens = min(burst, b.tokens + (t - b.last) / interval)
        b.last = t
    }

    /// Logs, one line per key whose flood is over, how many of its lines were held back and not logged:
    /// "`count` more `what(key)` not logged at `level` (rate limit)", at `level`, with `notLogged`. ("At `level`": a
    /// refusal held back is still logged at `debug`.) With `stopping` (the owner's loop is ending, so no later turn
    /// would say them: a reviewer, session 33), every key with lines held back, "…; the daemon is stopping".
    func sayHeldBack(to logger: Logger, level: Logger.Level, stopping: Bool = false, _ what: (String) -> String) {
        for (key, count) in takeHeldBack(stopping: stopping) {
            logger.log(level: level, "\(count) more \(what(key)) not logged at \(level) (rate limit); \(Self.ending(stopping))",
                       metadata: ["notLogged": "\(count)"])
        }
    }

    /// How a held-back count's line ends: the flood is over, or the daemon is stopping.
    static func ending(_ stopping: Bool) -> String { stopping ? "the daemon is stopping" : "the flood is over" }
}

/// Logs refusals at `warning`, rate-limited per socket (`LogLimiter`), with the socket, the peer and a key prefix.
/// A refusal the limiter holds back is still logged at `debug` (off unless asked for), so that with `--log-level
/// debug` every refusal has its line — what an operator chasing one peer, and the tests, need.
final class RefusalLog: Sendable {
    private let logger: Logger
    let limiter: LogLimiter

    init(logger: Logger, limiter: LogLimiter = LogLimiter()) {
        self.logger = logger
        self.limiter = limiter
    }

    /// Logs `refusal` at `warning` unless its socket has used up its lines (then at `debug`); returns whether it
    /// logged at `warning`.
    @discardableResult
    func log(_ refusal: ZMQRefusal) -> Bool {
        guard let suppressed = limiter.admit(refusal.domain) else {
            if logger.logLevel <= .debug {
                logger.debug("refused a peer at the handshake: \(refusal.reason)", metadata: Self.metadata(refusal))
            }
            return false
        }
        var metadata = Self.metadata(refusal)
        if suppressed > 0 { metadata["notLogged"] = "\(suppressed)" }
        logger.warning("refused a peer at the handshake: \(refusal.reason)", metadata: metadata)
        return true
    }

    /// The refusals held back by the rate limit once their flood is over (`LogLimiter.sayHeldBack`).
    func sayHeldBack(stopping: Bool = false) {
        limiter.sayHeldBack(to: logger, level: .warning, stopping: stopping) { "refusals at the handshake on the \($0) socket" }
    }

    private static func metadata(_ refusal: ZMQRefusal) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "socket": "\(refusal.domain)",
            "peer": "\(refusal.peerDescription ?? "unknown")",
        ]
        if let key = refusal.keyPrefix { metadata["key"] = "\(key)" }
        return metadata
    }
}

/// The CURVE side of the daemon: its certificate, the allow-lists and the ZAP handler.
///
/// Loaded once at start (exit 64 for anything unusable, naming the file and the line), then owned by the daemon
/// for its life. The ZAP handler runs on its own thread (ZeroMQ layer); the sockets stay on their owning threads
/// and only call `secureServer`/`secureClient` there before they bind or connect.
public final class DaemonSecurity: Sendable {
    public let settings: SecuritySettings
    /// The daemon's own key pair (nil: plaintext everywhere).
    public let keyPair: CurveKeyPair?
    /// The publishers' public key when the input connects over CURVE.
    public let inputServerKey: CurveKey?
    public let counters: RuntimeCounters
    private let logger: Logger
    private let refusals: RefusalLog
    /// Failed accepts on the bound sockets, from whichever thread reads their monitor.
    let acceptFailures: AcceptFailureLog
    /// Whether the input binds (`start`): an empty publishers' list is said only then.
    private let inputBound = Atomic<Bool>(true)
    /// The ZAP handler once started (set once, before any CURVE socket exists): read without a lock, so that `failure`
    /// costs the processing loop one atomic load a turn.
    private let authenticator = AtomicLazyReference<ZMQAuthenticator>()
    /// Whether the warning that libzmq lacks `ZMQ_ZAP_ENFORCE_DOMAIN` was logged (once, whichever socket found it).
    private let saidZAPNotEnforced = Atomic<Bool>(false)

    /// The ZAP handler while it is started (tests).
    var zapHandler: ZMQAuthenticator? { authenticator.load() }

    /// The ZAP handler's thread ended while the daemon runs (an error of its poll): no handshake is answered any
    /// more, so the daemon stops (asked every turn of the processing loop, as the journal thread's failure is).
    var failure: DaemonError? {
        guard let auth = authenticator.load(), auth.endedUnexpectedly, let why = auth.unexpectedEnd else { return nil }
        return DaemonError.internal("the CURVE handshake handler (ZAP) ended while the daemon ran (\(why)): no new "
            + "peer can be authenticated, so the daemon stops; a restart starts a new one")
    }
    /// Which allow-list each bound CURVE socket uses.
    private let domains = Mutex<[SocketRole: String]>([:])
    /// What the certificates and allow-lists read at start hold that is likely a mistake (`SecurityFiles.warnings`):
    /// logged by `start`, printed by `--check-config`.
    public let warnings: [String]
    /// The directories last loaded, per allow-list setting, with their keys.
    private let lists = Mutex<[String: Set<CurveKey>]>([:])
    /// The allow-list directories in force: the start's, or those a reload named (`reloadAllowLists(publishers:consumers:)`).
    private let directories: Mutex<(publishers: String?, consumers: String?)>

    /// Reads the certificates and allow-lists the settings name.
    /// - Throws: `DaemonError` 64 naming the setting, the file and (for a malformed certificate) the line.
    /// Plaintext everywhere (no certificate): nothing to load.
    public init(plaintextWith counters: RuntimeCounters, logger: Logger) {
        settings = SecuritySettings()
        directories = Mutex((nil, nil))
        self.counters = counters
        self.logger = logger
        refusals = RefusalLog(logger: logger)
        acceptFailures = AcceptFailureLog(counters: counters, logger: logger)
        keyPair = nil
        inputServerKey = nil
        warnings = []
    }

    public init(settings: SecuritySettings, counters: RuntimeCounters, logger: Logger,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws(DaemonError) {
        self.settings = settings
        directories = Mutex((settings.allowPublishers, settings.allowConsumers))
        self.counters = counters
        self.logger = logger
        refusals = RefusalLog(logger: logger)
        acceptFailures = AcceptFailureLog(counters: counters, logger: logger)
        let files = SecurityFiles.read(settings, environment: environment)
        warnings = files.warnings
        keyPair = files.keyPair
        inputServerKey = files.inputServerKey
        lists.withLock { $0 = files.lists.mapValues(\.keys) }
        // Every unusable file is reported, not only the first (one line each, exit 64).
        var problems = DaemonConfiguration.Problems()
        for (_, problem) in files.problems { problems.add(problem) }
        try problems.throwIfAny()
    }

    /// Whether the bound sockets are CURVE servers.
    public var isCurve: Bool { keyPair != nil }

    /// Starts the ZAP handler in `context` (before any CURVE socket is created), with the allow-lists loaded.
    /// `inputBound`: whether the input binds (only then does `security.curve.allowPublishers` admit anyone, and only
    /// then is an empty one worth a warning).
    public func start(context: ZMQContext, inputBound: Bool = true) throws(DaemonError) {
        guard isCurve else { return }
        self.inputBound.store(inputBound, ordering: .relaxed)
        let log = refusals
        do {
            let failures = acceptFailures
            let auth = try ZMQAuthenticator(context: context, onRefusal: { log.log($0) }, onAcceptFailure: { domain, event in
                failures.report(SocketRole(rawValue: domain) ?? .output, endpoint: event.endpoint,
                                code: Int32(bitPattern: event.value))
            })
            for socket in SocketRole.allCases { auth.useCounter(counters.authRejected(socket), forDomain: socket.rawValue) }
            _ = authenticator.storeIfNil(auth)
        } catch {
            throw DaemonError.internal("cannot start the ZAP handler: \(error)")
        }
        applyLists()
        let l = lists.withLock { $0 }
        for (key, dir) in emptyLists() { warnEmpty(key, dir) }
        for warning in warnings { logger.warning("\(warning)") }
        logger.info("CURVE on", metadata: [
            "publicKey": "\(keyPair!.publicKey.z85)",
            "publishers": "\(l["security.curve.allowPublishers"]?.count ?? 0)",
            "consumers": "\(l["security.curve.allowConsumers"]?.count ?? 0)",
        ])
    }

    /// An allow-list directory with no certificate in it: every handshake on its sockets is refused. Said at `warning`
    /// at start and at each reload that finds it so (it was an `info` count of 0: a fault tester, session 28).
    /// Not for the publishers' list of a connecting input: it admits nobody, and nobody needs it.
    private func warnEmpty(_ key: String, _ dir: String) {
        guard let line = Self.emptyListWarning(key, dir, inputBound: inputBound.load(ordering: .relaxed)) else { return }
        logger.warning("\(line)", metadata: ["setting": "\(key)", "dir": "\(dir)"])
    }

    /// The warnings a start with these certificates and allow-lists logs, for `--check-config`.
    func checkWarnings(inputBound: Bool) -> [String] {
        emptyLists().compactMap { Self.emptyListWarning($0.key, $0.dir, inputBound: inputBound) } + warnings
    }

    /// The allow-lists the settings name that hold no key, with their directories (in the settings' order).
    private func emptyLists() -> [(key: String, dir: String)] {
        let l = lists.withLock { $0 }
        return SecurityFiles.listSettings.compactMap { key, path in
            guard let dir = settings[keyPath: path], l[key]?.isEmpty ?? true else { return nil }
            return (key, dir)
        }
    }

    /// The warning for an allow-list directory without a certificate (nil for the publishers' list of a connecting
    /// input), also printed by `--check-config`: the check said "configuration OK" of the README's own set-up step,
    /// an empty consumers' directory, where the start then warned (a README walk-through, session 47).
    static func emptyListWarning(_ key: String, _ dir: String, inputBound: Bool) -> String? {
        if key == "security.curve.allowPublishers" && !inputBound { return nil }
        let who = key == "security.curve.allowPublishers" ? "publisher" : "consumer"
        return "\(key): \(dir) holds no *.key certificate, so every \(who)'s handshake is refused; add the \(who)s' public certificates there and send SIGHUP"
    }

    /// Stops the ZAP handler: after every CURVE socket is closed.
    public func stop() {
        authenticator.load()?.stop()
    }

    private static func listKey(_ socket: SocketRole) -> String {
        socket == .input ? "security.curve.allowPublishers" : "security.curve.allowConsumers"
    }

    private func applyLists() {
        guard let auth = authenticator.load() else { return }
        let l = lists.withLock { $0 }
        for socket in SocketRole.allCases {
            auth.setAllowedKeys(l[Self.listKey(socket)] ?? [], forDomain: socket.rawValue, listName: Self.listKey(socket))
        }
    }

    /// Makes a bound socket a CURVE server of its own ZAP domain (when CURVE is on), on the socket's owning
    /// thread, before it binds. `watchHandshakes`: count and log failed handshakes from the ZAP handler's thread
    /// (false for a socket whose one monitor its owner reads, the input: it reports through `handshakeFailed`).
    public func secureServer(_ socket: ZMQSocket, as name: SocketRole, watchHandshakes: Bool = true) throws {
        guard let keyPair, let auth = authenticator.load() else { return }
        if try !socket.makeCurveServer(secretKey: keyPair.secretKey, zapDomain: name.rawValue),
           !saidZAPNotEnforced.exchange(true, ordering: .relaxed) {
            logger.warning("""
                this libzmq does not take ZMQ_ZAP_ENFORCE_DOMAIN (a build without the draft API): should the CURVE \
                handshake handler end early, libzmq would let every CURVE peer in until the daemon stops for it (which \
                it then does at once); Debian's libzmq5 has it
                """)
        }
        if watchHandshakes { try auth.watchHandshakes(of: socket, domain: name.rawValue) }
    }

    /// Makes the connecting input a CURVE client of the publishers (when `input.curveServerKey` is set).
    public func secureInputClient(_ socket: ZMQSocket) throws {
        guard let keyPair, let inputServerKey else { return }
        try socket.makeCurveClient(keyPair: keyPair, serverKey: inputServerKey)
    }

    /// A failed handshake seen by a socket's own monitor (the input's always; the output's and the journal's without
    /// CURVE, when no ZAP handler watches them): counted and logged (rate-limited) as a refusal. The peer is the
    /// connection's address when the monitor learnt it, else `unknown` — never the listening endpoint, which the
    /// reason names (a fault tester, session 35, saw the endpoint given as the peer).
    func handshakeFailed(_ event: ZMQSocketEvent, on socket: SocketRole, endpoint: String, hint: String = "") {
        let refusal = ZMQRefusal(domain: socket.rawValue, peerAddress: event.peerAddress, keyPrefix: nil,
                                 reason: event.failureReason + " on \(endpoint)" + hint)
        counters.authRejected(socket).increment()
        refusals.log(refusal)
    }

    /// The events of a bound socket's own monitor (`ZMQMonitor.unsecuredServerEvents`: the output and the journal
    /// without CURVE): failed accepts and failed handshakes counted and logged; the rest only names connections.
    ///
    /// A connection closed before its greeting (a TCP port probe, a health check) counts too, as on the input and on
    /// every CURVE socket: a CURVE client against a plaintext socket is often seen only so (it closes on the mismatch
    /// before the daemon reads its greeting), and counting only protocol failures lost those under load (a reviewer
    /// suggested it, session 35; the test of three sockets failed beside the whole suite).
    func reportUnsecuredServerEvents(_ events: [ZMQSocketEvent], on socket: SocketRole, endpoint: String) {
        for e in events {
            if e.kind == .acceptFailed {
                acceptFailures.report(socket, endpoint: endpoint, code: Int32(bitPattern: e.value))
            } else if e.isHandshakeFailure {
                handshakeFailed(e, on: socket, endpoint: endpoint)
            }
        }
    }

    /// Re-reads the allow-list directories in force (SIGHUP after a configuration that was not applied), from
    /// `publishers` and `consumers` when given, and installs them (`install`).
    public func reloadAllowLists(publishers: String? = nil, consumers: String? = nil) {
        guard isCurve else { return }
        var settings = SecuritySettings()
        let dirs = directories.withLock { $0 }
        settings.allowPublishers = dirs.publishers.map { publishers ?? $0 }
        settings.allowConsumers = dirs.consumers.map { consumers ?? $0 }
        install(SecurityFiles.read(settings, environment: [:]))
    }

    /// Installs the allow-lists a reload read (SIGHUP), for the settings the start had a list for (an allow-list the
    /// start had none of is not made: that changes which sockets are CURVE servers, a restart's business): each list
    /// read, with its directory, logged with the counts; one that could not be read keeps its old list and directory,
    /// said once (at `error`), with why and that the next start would fail (a bug hunter, session 47: it was said
    /// twice, once as "the certificates … cannot be used"). What is likely a mistake (`SecurityFiles.warnings`) is
    /// said again. Connections already made stay; a removed key cannot make a new one.
    func install(_ files: SecurityFiles) {
        guard isCurve else { return }
        var current = lists.withLock { $0 }
        let problems = Dictionary(files.problems.map { ($0.key, $0.error) }, uniquingKeysWith: { a, _ in a })
        var dirs = directories.withLock { $0 }
        for (key, path) in [("security.curve.allowPublishers", \(publishers: String?, consumers: String?).publishers),
                            ("security.curve.allowConsumers", \(publishers: String?, consumers: String?).consumers)] {
            guard dirs[keyPath: path] != nil else { continue }
            if let list = files.lists[key] {
                let old = current[key] ?? []
                current[key] = list.keys
                dirs[keyPath: path] = list.directory
                logger.notice("allow-list reloaded", metadata: [
                    "setting": "\(key)", "dir": "\(list.directory)", "keys": "\(list.keys.count)",
                    "added": "\(list.keys.subtracting(old).count)", "removed": "\(old.subtracting(list.keys).count)",
                ])
                if list.keys.isEmpty { warnEmpty(key, list.directory) }
            } else if let problem = problems[key] {
                let why = problem.message.hasPrefix("configuration: \(key): ")
                    ? String(problem.message.dropFirst("configuration: \(key): ".count)) : problem.message
                let kept = files.keptForNow.contains(key)
                let then = kept ? "until the restart, which drops it (the configuration no longer names it)"
                    : "and the next start would fail"
                // An `error` when the next start would fail: a revocation not made and a start that will stop, which
                // a daemon kept at `log.level: error` left unsaid (an operator's audit, session 52).
                logger.log(level: kept ? .warning : .error,
                           "allow-list not reloaded; the old one stays in force (\(current[key]?.count ?? 0) keys), \(then)",
                           metadata: ["setting": "\(key)", "problem": "\(why)"])
            }
        }
        directories.withLock { $0 = dirs }
        lists.withLock { $0 = current }
        applyLists()
        for warning in files.warnings { logger.warning("\(warning)") }
    }
}

/// The certificate and allow-list files the security settings name, each read once, as a start, `--check-config` and
/// a reload read them: what they hold, and the problem of each one that cannot be used, by its setting. A reload
/// installs the lists it read here (`DaemonSecurity.install`): read a second time, a directory that changed in between
/// was said "applied" while its old keys stayed in force (a bug hunter, session 47: F5).
struct SecurityFiles: Sendable {
    /// An allow-list as read: its directory and the keys of its `*.key` files.
    struct List: Sendable, Equatable {
        var directory: String
        var keys: Set<CurveKey>
    }

    var keyPair: CurveKeyPair?
    var inputServerKey: CurveKey?
    /// By setting (`security.curve.allowPublishers`, `security.curve.allowConsumers`): the lists that could be read.
    var lists: [String: List] = [:]
    /// By setting, in the settings' order: why a file cannot be used (exit 64 at start, `configuration: KEY: …`).
    var problems: [(key: String, error: DaemonError)] = []
    /// The allow-lists read from their directories in force because the configuration no longer names them (they
    /// stay until a restart, which drops them): a problem of theirs does not make the next start fail.
    var keptForNow: Set<String> = []
    /// What is usable but likely a mistake, one sentence each: the same key in two files of a list (the client the
    /// operator meant to add is not on it), one directory or one key on both lists (a publisher's key reads alerts).
    var warnings: [String] = []

    static var listSettings: [(key: String, path: KeyPath<SecuritySettings, String?>)] {
        [("security.curve.allowPublishers", \.allowPublishers), ("security.curve.allowConsumers", \.allowConsumers)]
    }

    static func read(_ settings: SecuritySettings, environment: [String: String]) -> SecurityFiles {
        var files = SecurityFiles()
        // A relative path is read from $CREDENTIALS_DIRECTORY when set (systemd's LoadCredential=), else from the
        // current directory: a `--check-config` from a shell, without it, failed on the recommended configuration and
        // did not say why (an operator audit, session 36).
        // Under systemd (which sets INVOCATION_ID) the credential is missing from the unit: the shell's check did not
        // help there (a packaging check, session 37).
        let underSystemd = !(environment["INVOCATION_ID"] ?? "").isEmpty
        /// A relative path's hint, for a file that could not be read: a file found and refused (mode 0640) was given
        /// the hint too (a README walk-through, session 47).
        func problem(_ error: CurveCertificateError, path: String, key: String) -> String {
            guard !path.hasPrefix("/"), environment["CREDENTIALS_DIRECTORY"] == nil, error.kind == .unreadable else {
                return error.description
            }
            if underSystemd {
                // A credential's name has no directory: systemd refuses `LoadCredential=curve/x:…` (a reviewer,
                // session 37). The setting named is the one that failed: `input.curveServerKey`'s hint named the
                // daemon's own certificate (a README walk-through, session 47).
                let name = path.split(separator: "/").last.map(String.init) ?? path
                let rename = name == path ? "" : "A credential is named without a directory: set \(key): \(name). "
                return error.description + " (a relative path is read from $CREDENTIALS_DIRECTORY, which systemd did not "
                    + "set: the unit loads no credential. \(rename)Give the unit the file in a drop-in, "
                    + "`systemctl edit contactwatchd`: [Service] LoadCredential=\(name):/etc/contactwatch/curve/\(name); "
                    + "editing the unit file itself is undone by the next upgrade)"
            }
            return error.description + " (a relative path is read from $CREDENTIALS_DIRECTORY, which is not set here, so "
                + "from the current directory; to check the unit's configuration from a shell: "
                + "CREDENTIALS_DIRECTORY=/etc/contactwatch/curve contactwatchd --check-config …)"
        }
        if let path = settings.certificate {
            let resolved = CurveCertificate.resolve(path, environment: environment)
            do { files.keyPair = try CurveCertificate.readKeyPair(path: resolved) } catch {
                files.problems.append(("security.curve.certificate", DaemonError.configuration(
                    key: "security.curve.certificate", problem: problem(error, path: path, key: "security.curve.certificate"))))
            }
        }
        if let path = settings.inputServerKey {
            let resolved = CurveCertificate.resolve(path, environment: environment)
            do { files.inputServerKey = try CurveCertificate.readPublicKey(path: resolved) } catch {
                files.problems.append(("input.curveServerKey", DaemonError.configuration(
                    key: "input.curveServerKey", problem: problem(error, path: path, key: "input.curveServerKey"))))
            }
        }
        var holders: [String: [(key: CurveKey, file: String)]] = [:]
        for (key, path) in listSettings {
            guard let dir = settings[keyPath: path] else { continue }
            do {
                let read = try CurveCertificate.readAllowList(directory: dir)
                files.lists[key] = List(directory: dir, keys: Set(read.map(\.key)))
                holders[key] = read.map { ($0.key, $0.path) }
                var first: [CurveKey: String] = [:]
                for (file, k) in read {
                    if let earlier = first[k] {
                        files.warnings.append("\(key): \(file) holds the same key as \(earlier): one of them is probably "
                            + "the wrong file, and the client it was meant for is refused")
                    } else {
                        first[k] = file
                    }
                }
            } catch {
                files.problems.append((key, DaemonError.configuration(key: key, problem: error.description)))
            }
        }
        if let publishers = settings.allowPublishers, let consumers = settings.allowConsumers,
           let p = files.lists["security.curve.allowPublishers"], let c = files.lists["security.curve.allowConsumers"] {
            if let a = FileIdentity(path: publishers), a == FileIdentity(path: consumers) {
                files.warnings.append("security.curve.allowPublishers and security.curve.allowConsumers name one directory "
                    + "(\(publishers), \(consumers)): every publisher's key may read the alerts and every consumer's key "
                    + "may send events; give each its own directory")
            } else {
                let both = p.keys.intersection(c.keys)
                for file in (holders["security.curve.allowConsumers"] ?? []).filter({ both.contains($0.key) }).map(\.file) {
                    files.warnings.append("\(file) is a key on both allow-lists (security.curve.allowPublishers too): that "
                        + "peer may send events and read the alerts; keep a publisher's and a consumer's keys apart")
                }
            }
        }
        return files
    }
}

/// The security settings (cli.md, *Security*), as configured.
public struct SecuritySettings: Sendable, Equatable {
    /// `security.curve.certificate`: the daemon's secret certificate.
    public var certificate: String?
    /// `security.curve.allowPublishers`: a directory of `*.key` certificates allowed to publish to a bound input.
    public var allowPublishers: String?
    /// `security.curve.allowConsumers`: a directory of `*.key` certificates allowed to read the output and the journal.
    public var allowConsumers: String?
    /// `input.curveServerKey`: the publishers' public certificate when the input connects over CURVE.
    public var inputServerKey: String?
    /// `security.allowPlaintext`: allow plaintext sockets on addresses other than loopback and ipc.
    public var allowPlaintext = false

    public init() {}
}

extension SecuritySettings {
    /// The combinations cli.md rules out, and plaintext where others can listen; exit 64 with the reason.
    /// - Returns: the plaintext endpoints allowed only by `security.allowPlaintext` (to log at start).
    func check(inputs: [String], inputBind: Bool, output: String, journal: String?) throws(DaemonError) -> [String] {
        var problems = DaemonConfiguration.Problems()
        let exposed = check(inputs: inputs, inputBind: inputBind, output: output, journal: journal, problems: &problems)
        try problems.throwIfAny()
        return exposed
    }

    /// As `check`, with every problem added to `problems` (each ruled-out combination, each exposed endpoint).
    func check(inputs: [String], inputBind: Bool, output: String, journal: String?,
               problems: inout DaemonConfiguration.Problems) -> [String] {
        let curve = certificate != nil
        if inputServerKey != nil {
            if inputBind {
                problems.add(DaemonError.configuration(key: "input.curveServerKey", problem:
                    "names the server key of publishers the input connects to; with --input-bind the daemon is the server (use security.curve.allowPublishers)"))
            }
            if !curve {
                problems.add(DaemonError.configuration(key: "input.curveServerKey", problem:
                    "needs security.curve.certificate (--curve-cert): the daemon authenticates to the publishers with its own certificate"))
            }
        }
        if curve {
            if allowConsumers == nil {
                problems.add(DaemonError.configuration(key: "security.curve.allowConsumers", problem:
                    "required with security.curve.certificate: " + (journal != nil ? "the output and the journal are CURVE servers and need" : "the output is a CURVE server and needs") + " the consumers' allow-list (--curve-allow-consumers DIR)"))
            }
            if inputBind && allowPublishers == nil {
                problems.add(DaemonError.configuration(key: "security.curve.allowPublishers", problem:
                    "required with security.curve.certificate and --input-bind: the input is a CURVE server and needs the publishers' allow-list (--curve-allow-publishers DIR)"))
            }
        } else {
            for (key, value) in [("security.curve.allowPublishers", allowPublishers), ("security.curve.allowConsumers", allowConsumers)] where value != nil {
                problems.add(DaemonError.configuration(key: key, problem:
                    "has no effect without security.curve.certificate (--curve-cert); refusing to run in plaintext with an allow-list configured"))
            }
        }
        // Plaintext sockets: every socket when CURVE is off; the connecting input without a server key when it is on.
        var plaintext: [(key: String, endpoint: String, bind: Bool)] = []
        let inputPlain = !curve || (!inputBind && inputServerKey == nil)
        if inputPlain { plaintext += inputs.map { ("input.endpoints", $0, inputBind) } }
        if !curve {
            plaintext.append(("output.endpoint", output, true))
            if let journal { plaintext.append(("journal.endpoint", journal, true)) }
        }
        // (An endpoint of no usable kind is reported as such, not again here; judged as it is used, bound or connected:
        // judged as bound, a connected input naming a host had a "problem" — a bound host must be an address — and
        // was left out of this check, so `tcp://example.com:7401` in plaintext passed without a word; a fault tester,
        // session 24, the day that rule came.)
        let exposed = plaintext.filter {
            DaemonConfiguration.endpointProblem($0.endpoint, bind: $0.bind) == nil && !EndpointExposure.isLocal($0.endpoint)
        }
        if !allowPlaintext {
            for e in exposed {
                // With CURVE on, only a connected input without its publisher's key is left: "turn on CURVE" sent the
                // operator to what was already on (the CLI auditor, session 28).
                let encrypt = curve ? "give the publisher's public certificate (input.curveServerKey, --input-curve-server-key FILE)"
                    : "turn on CURVE (security.curve.certificate)"
                problems.add(DaemonError.configuration(key: e.key, problem:
                    "\(e.endpoint) is reachable from other hosts but is not encrypted: use ipc:// or a loopback tcp:// address, \(encrypt), or set security.allowPlaintext: true deliberately"))
            }
        }
        return exposed.map(\.endpoint)
    }
}

extension DaemonSecurity {
    /// The refusals and failed accepts held back by their rate limits, once each flood is over (`LogLimiter`). From
    /// the processing thread's loop; the limiters are thread-safe.
    func sayHeldBack(stopping: Bool = false) {
        refusals.sayHeldBack(stopping: stopping)
        acceptFailures.sayHeldBack(stopping: stopping)
    }
}
