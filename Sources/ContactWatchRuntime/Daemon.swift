import ContactWatchCommon
import ContactWatchEngine
import ContactWatchStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// The processing pipeline as a swift-service-lifecycle service: it runs the loop on its own thread and stops it
/// on graceful shutdown (SIGTERM, SIGINT) and on cancellation — the group cancels its services when one of them
/// fails, e.g. the metrics server after it bound; a loop left running there kept the group, and the daemon, from ever
/// ending. Stopped either way, the loop makes what is pending durable and publishes it. The loop's failure, if any, is
/// kept in `failure` as the `DaemonError` it was (the group may wrap what a service throws).
struct PipelineService: Service, CustomStringConvertible {
    /// ServiceLifecycle names each service in its debug lines (see `MetricsService.description`).
    var description: String { "pipeline" }
    let pipeline: Pipeline
    let logger: Logger
    let failure = FailureSlot()
    /// Called once the daemon is ready, after READY=1 (tests wait on it).
    var onReady: @Sendable () -> Void = {}
    /// Called as the service starts: the group's signal handlers exist from then on (`StopDuringStart`). False: a
    /// signal's handler is ending the process, and the loop must not start.
    var onRun: @Sendable () -> Bool = { true }
    /// With metrics: the sockets are opened only once the HTTP endpoint is bound, so READY=1 covers it too.
    var metricsBound: MetricsBound? = nil

    /// Where the loop's thread leaves its error for the caller of `ServiceGroup.run`.
    final class FailureSlot: Sendable {
        private let slot = Mutex<DaemonError?>(nil)
        func set(_ error: DaemonError) { slot.withLock { $0 = error } }
        var error: DaemonError? { slot.withLock { $0 } }
    }

    func run() async throws {
        guard onRun() else {
            // The process is being ended by the start's signal handler (`StopDuringStart`): nothing more to do.
            while true { try await Task.sleep(for: .seconds(60)) }
        }
        if let metricsBound, await metricsBound.wait() == nil { return }  // the metrics server failed: the group stops
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let body: @Sendable () -> Void = { [pipeline, logger, failure, onReady] in
                        do throws(DaemonError) {
                            try pipeline.run {
                                // A stop asked for during the last steps of the start (binding, republishing) is not
                                // followed by READY=1 and a `ready` line (systemd 252 showed `stopping`, then `ready`
                                // 4 ms later: sessions 38 and 39).
                                guard !pipeline.isStopRequested else {
                                    onReady()
                                    return
                                }
                                // Without waiting, as STOPPING=1 (the same queue keeps them in order): READY=1 can be
                                // sent from inside the loop (after republishing), when the heartbeat's pings may have
                                // filled the notification socket's queue, and a blocked sd_notify kept the loop from
                                // hearing of a SIGTERM until the supervisor read again (a reviewer, session 28).
                                // With a STATUS= line: the start's "starting: …" stayed in `systemctl status`
                                // until the heartbeat's first line, 5 s later (systemd 252, session 37).
                                Systemd.notifyWithoutWaiting("READY=1\nSTATUS=ready")
                                // With the version and the executable's build ID: after an upgrade, the journal
                                // tells which build a restart started (the packaging check, session 39).
                                logger.info("ready", metadata: [
                                    "version": "\(ContactWatchVersion.string)",
                                    "build": "\(BuildID.current ?? "none")",
                                    "input": "\(pipeline.config.inputs.joined(separator: ","))",
                                    "output": "\(pipeline.config.output)",
                                    "journal": "\(pipeline.config.journal ?? "off")",
                                ])
                                onReady()
                            }
                            continuation.resume()
                        } catch {
                            // Said as the loop found it between turns; here for one it threw (said once either way).
                            Systemd.notifyFailureStop(error)
                            failure.set(error)
                            continuation.resume(throwing: error)
                        }
                    }
                    // A thread the system refuses is said (SystemThread): `Thread.start()` said nothing, and this
                    // continuation was never resumed.
                    do throws(SystemThread.Refused) {
                        try SystemThread.start(name: ThreadPlacement.pipeline, body)
                    } catch {
                        let refused = DaemonError.threadRefused(error, while: "cannot run the processing loop")
                        onReady()
                        Systemd.notifyFailureStop(refused)
                        failure.set(refused)
                        continuation.resume(throwing: refused)
                    }
                }
            } onCancel: {
                // The group is ending because another service did: stop as on SIGTERM.
                pipeline.requestStop()
                logger.info("stopping: another service of the daemon ended")
                Systemd.notifyWithoutWaiting("STOPPING=1")
            }
        } onGracefulShutdown: {
            // The stop is asked for first, and STOPPING=1 never waits: sd_notify blocks while the notification
            // socket's queue is full, and sent here first it kept the loop from ever hearing of the SIGTERM (a
            // supervisor that had stopped reading: the test harness, once 10 STATUS= lines were queued).
            pipeline.requestStop()
            logger.info("stopping")
            Systemd.notifyWithoutWaiting("STOPPING=1")
        }
    }
}

/// Wires the daemon together: configuration, logging, state store, engine, sockets, signals. Returns the exit status.
public enum Daemon {
    public static func run(flags: DaemonFlags) async -> ExitStatus {
        // SIGHUP never ends the daemon (cli.md): ignored from the first instruction, until the reload handler is
        // installed once the state is loaded; what a HUP during the start would have applied (a configuration file or
        // an allow-list directory changed since the start read it) is read again then (`run(config:…)`).
        signal(SIGHUP, SIG_IGN)
        // A log pipe whose reader has gone (`contactwatchd … | tee` stopped, a logger restarted) must not end the
        // daemon: SIGPIPE killed it at its next log line, without a word and without a clean stop (a fault tester's
        // find). Ignored, the write fails with EPIPE and the line is dropped (`ContactWatchLogHandler.write`).
        // systemd ignores SIGPIPE for services already (IgnoreSIGPIPE=yes).
        signal(SIGPIPE, SIG_IGN)
        let config: DaemonConfiguration
        let environment = ProcessInfo.processInfo.environment
        // The configuration file as the start reads it: compared once the reload handler is installed.
        let configRead = flags.configFile.flatMap { FileStamp(path: $0) }
        var checkWarnings: [String] = []
        do {
            config = try await DaemonConfiguration.load(flags: flags, environment: environment)
            if flags.checkConfig {
                // The certificates and allow-lists are read as at start (nothing is bound, no state is touched).
                let security = try DaemonSecurity(settings: config.security, counters: RuntimeCounters(),
                                                  logger: Logger(label: "contactwatchd", factory: { _ in SwiftLogNoOpLogHandler() }),
                                                  environment: environment)
                checkWarnings = security.isCurve ? security.checkWarnings(inputBound: config.inputBind) : []
                // A file value a flag or variable overrides is not in force, so not checked; but a file that would
                // not load without them stops the start that lacks them with 64, and the check said "OK" (an
                // operator's audit, session 52). Said as a warning; the exit stays 0 (the configuration is usable).
                if let file = flags.configFile,
                   case .failure(let error) = await ConfigurationReload.loadFileAlone(file, metricsLookup: config.metricsLookup) {
                    checkWarnings.append(ConfigurationReload.unloadableLine(error))
                }
                checkWarnings += startRefusalsHere()
                // The store's own refusal at start (a file past the file-size limit), which the check passed in
                // silence (an adversarial tester, session 54).
                let store = (config.stateDir as NSString).appendingPathComponent(StateStore.fileName)
                if let size = (try? FileManager.default.attributesOfItem(atPath: store)[.size] as? NSNumber)?.intValue,
                   let refusal = StoreError.fileSizeLimitPassed(store, size: size) {
                    checkWarnings.append("this process would be refused a start from this shell (exit 74; a service's own "
                        + "LimitFSIZE= may differ): \(refusal.description)")
                }
            }
        } catch {
            // Before the log is set up, so written here; under journald with the priority of an error (`<3>`), as the
            // log's lines carry theirs: without it journald stored why a start failed at `info`, and `journalctl -p
            // warning` hid it (a README audit, session 24).
            let priority = LogOutput.standardErrorIsJournal(environment["JOURNAL_STREAM"]) ? "<3>" : ""
            // A configuration problem's values are escaped where it is made (`DaemonError.configuration`); each line
            // is escaped again here (idempotent) for the other kinds: a value quoted raw (`log.level: "\e[2J…\r…"`)
            // reached the terminal (a fault tester, session 33).
            for line in error.message.split(separator: "\n") {
                writeStandardError("\(priority)contactwatchd: \(ContactWatchLogHandler.textSafe(String(line)))\n")
            }
            if flags.checkConfig {
                writeStandardError("\(priority)contactwatchd: configuration check failed\n")
            } else {
                // Under systemd, `systemctl status` shows why, as for a failure found later: only failures found once
                // the sockets were being set up sent it (a documentation hunter, session 54).
                Systemd.notifyFailureStop(error, sayFailure: false)
                Systemd.flush(timeout: 1)
            }
            return error.exitStatus
        }
        if flags.checkConfig {
            // Written with `write(2)` and its failure said on standard error: printed, a report lost to a full disk
            // (`--check-config > report.txt`) left an empty file and not a word (a fault tester, session 34). The
            // exit stays 0 — cli.md: `--check-config` exits 0 or 64, and the configuration is usable.
            var report = Array((config.checkSummary(file: flags.configFile, warnings: checkWarnings) + "\n").utf8)
            if let failure = report.withUnsafeMutableBytes({ writeAll(1, UnsafeRawBufferPointer($0)) }) {
                writeStandardError("contactwatchd: the configuration is usable, but its report could not be written: \(String(cString: strerror(failure)))\n")
            }
            return .success
        }
        LogOutput.bootstrap(level: config.logLevel, format: config.logFormat,
                            environment: ProcessInfo.processInfo.environment)
        let logger = Logger(label: "contactwatchd")
        // SIGTERM and SIGINT during the start: exit 0 with a line (the group's handlers take over once it runs).
        let stopDuringStart = StopDuringStart(logger: logger)
        // The last lines (why it stopped, the counters) reach standard error before the exit, unless nobody reads it.
        defer {
            Systemd.flush(timeout: 1)
            LogOutput.flush(timeout: 2)
        }
        do {
            try await run(config: config, logger: logger, flags: flags, stopDuringStart: stopDuringStart, configRead: configRead)
            return .success
        } catch {
            // A failed start keeps its own exit status: a SIGTERM now must not turn it into 0 (a reviewer, session 38).
            stopDuringStart.startEnded()
            // Said once (a failure the loop found was said already): the store's, the lock's, the limits' and the
            // keys' failures sent nothing before (a documentation hunter, session 54).
            Systemd.notifyFailureStop(error)
            logger.critical("\(error.message)")
            return error.exitStatus
        }
    }

    static func makeEngine(_ settings: EngineSettings, _ state: EngineState) throws(DaemonError) -> Engine {
        do {
            return try Engine(settings: settings, state: state)
        } catch {
            throw DaemonError.configuration(key: error.key, problem: error.problem)
        }
    }

    /// The daemon's life once its configuration is known: security, state, engine, sockets and signals set up in
    /// order (each step undone in reverse on the way out), then the services run until a graceful shutdown.
    /// `configRead`: the configuration file as the start read it (read again once SIGHUP is handled, if it changed).
    static func run(config: DaemonConfiguration, logger: Logger, flags: DaemonFlags = DaemonFlags(),
                    stopDuringStart: StopDuringStart? = nil, configRead: FileStamp? = nil) async throws(DaemonError) {
        let started = ContinuousClock.now
        // Certificates and allow-lists first: a problem there is exit 64 before anything is touched.
        let metrics = try metricsEndpoint(config)
        let counters = RuntimeCounters(timings: metrics?.metrics)
        // The allow-list directories as the start reads them (a key added or removed changes its directory).
        let listsRead = [config.security.allowPublishers, config.security.allowConsumers].map { $0.flatMap { FileStamp(path: $0) } }
        let security = try DaemonSecurity(settings: config.security, counters: counters, logger: logger)
        for endpoint in config.exposedPlaintext {
            logger.warning("security.allowPlaintext: a plaintext socket reachable from other hosts", metadata: ["endpoint": "\(endpoint)"])
        }
        if let warning = config.exposedMetricsWarning { logger.warning("\(warning)") }
        if let warning = config.abstractPlaintextWarning { logger.warning("\(warning)") }
        for warning in config.openIPCDirectoryWarnings { logger.warning("\(warning)") }
        if !(ProcessInfo.processInfo.environment["INVOCATION_ID"] ?? "").isEmpty, !config.remoteEndpoints.isEmpty {
            let line = "the packaged unit admits IP traffic from localhost only (IPAddressDeny=any, IPAddressAllow=localhost): "
                + "peers on other hosts time out, unseen by the daemon, unless a drop-in allows their networks "
                + "(IPAddressAllow=; README: Under systemd)"
            logger.notice("\(line)", metadata: ["endpoints": "\(config.remoteEndpoints.joined(separator: ", "))"])
        }
        if let warning = config.smallInputQueueWarning {
            logger.warning("\(warning)", metadata: ["endpoints": "\(config.ipcInputs.joined(separator: " "))"])
        }
        // Before any socket or file: every connection costs a descriptor, and libzmq aborts on some paths when none is
        // left (DescriptorLimit).
        switch DescriptorLimit.raiseToHard() {
        case .failure(let unreadable):
            logger.warning("""
                cannot read the open-files limit (getrlimit: \(unreadable.reason)): it stays as the service manager set \
                it, and libzmq may abort the daemon when a bound ipc:// endpoint finds no descriptor left
                """)
        case .success(let files):
            if let refusal = DescriptorLimit.refusal(files) { throw DaemonError(.configuration, refusal) }
            if let failure = files.failure {
                logger.warning("cannot raise the open-files limit to its hard limit: \(failure)", metadata: [
                    "limit": "\(files.now)", "hardLimit": "\(files.hard)",
                ])
            } else {
                // raisedFrom only when it was raised: a limit already at its hard limit (or the ceiling) is not.
                var metadata: Logger.Metadata = ["limit": "\(files.now)", "hardLimit": "\(files.hard)"]
                if files.now != files.before { metadata["raisedFrom"] = "\(files.before)" }
                logger.info("open files limit", metadata: metadata)
            }
        }
        if let refusal = ThreadLimit.refusal() ?? umaskRefusal() { throw DaemonError(.configuration, refusal) }
        // Extends systemd's start timeout while the store's check and the state's load progress (until READY=1).
        let starting = SystemdStartExtension.start()
        defer { starting?.stop() }
        let lock = try StateDirectoryLock(directory: config.stateDir) { holder in
            // Said at once: otherwise the wait looks like a daemon that hangs without a word.
            let seconds = Int(StateDirectoryLock.waitSeconds)
            logger.notice("""
                the state directory is locked by another process: waiting up to \(seconds) s for it (a contactwatchd \
                still stopping, or another one pointed at the same directory)
                """, metadata: [
                    "stateDir": "\(config.stateDir)", "holderPid": "\(holder.map(String.init) ?? "unknown")",
                ])
        } unsupported: { why in
            logger.warning("\(why)", metadata: ["stateDir": "\(config.stateDir)"])
        }
        defer { lock.release() }
        // Heap freed anywhere goes back to the system (FreedHeapWatch).
        let heapWatch = FreedHeapWatch.Timer()
        defer { heapWatch.stop() }
        // A directory where a store was made (its lock file says so) without a store: the store was deleted or moved,
        // and a new one starts empty, its alertSequence again at 1 — numbers consumers already hold. Said: it was a
        // silent `state loaded … alertSequence=0` (a fault tester, session 41).
        // Judged after the load: a saved copy adopted in its place (nothing lost), and a `-wal` without its store
        // (refused, exit 74), are not that (a reviewer, session 41).
        let storePath = (config.stateDir as NSString).appendingPathComponent(StateStore.fileName)
        let storeMissing = access(storePath, F_OK) != 0 && errno == ENOENT
        let loaded: LoadedStore
        do {
            // A store of a few GB takes minutes to check and load: said in the log too, not only to systemd.
            let progress = StartProgressNotice(logger: logger, doing: "checking and loading the state store")
            defer { progress.stop() }
            loaded = try LoadedStore(directory: config.stateDir)
        }
        defer { loaded.store.close() }
        if storeMissing && lock.storeMadeBefore && loaded.state.alertSequence == 0 && loaded.state.cases.isEmpty {
            logger.warning("""
                no state store was found at \(storePath), though one was made in this directory before \
                (contactwatchd.lock says so): a new, empty store was started. Its alertSequence starts again at 1, \
                numbers consumers may already hold, and every case starts anew. If the store was moved aside on \
                purpose, nothing is wrong; otherwise stop the daemon and restore the store from a backup
                """, metadata: ["stateDir": "\(config.stateDir)"])
        }
        lock.noteStoreMade()
        let engine = try makeEngine(config.engine, loaded.state)
        // Not said once a stop has begun: the signal's handler has written `stopping: … during start` and is ending
        // the process, and `state loaded` came after it now and then (a systemd check, session 39).
        if stopDuringStart?.isStopping != true { loaded.log(to: logger, stateDir: config.stateDir, since: started) }
        let context: ZMQContext
        do { context = try ZMQContext(ioThreads: ThreadPlacement.ioThreads) } catch { throw DaemonError.internal("cannot create the ZeroMQ context: \(error)") }
        defer { context.close() }
        // The ZAP handler exists before any CURVE socket and stops after they are closed (before the context).
        try security.start(context: context, inputBound: config.inputBind)
        defer { security.stop() }
        let reload = reloadOnSIGHUP(config: config, flags: flags, security: security, logger: logger, counters: counters)
        defer { reload.cancel() }
        // A SIGHUP before the handler is ignored (it must not end the daemon), and the start may have waited seconds
        // since it read the file (a predecessor's lock, a large store): a file edited and signalled then was lost,
        // the old values in force without a word (the configuration's hunter, session 45); so was a key removed from
        // an allow-list, still admitted (a reviewer, session 45). Changed since they were read, the file and the
        // allow-lists are read again now, as a SIGHUP would.
        var changed: [String] = []
        if let path = flags.configFile, FileStamp(path: path) != configRead { changed.append("the configuration file \(path)") }
        for (dir, read) in zip([config.security.allowPublishers, config.security.allowConsumers], listsRead) {
            if let dir, FileStamp(path: dir) != read { changed.append("the allow-list directory \(dir)") }
        }
        if !changed.isEmpty {
            let line = "\(changed.joined(separator: " and ")) changed while the daemon started: read again, as at a "
                + "SIGHUP (one sent during the start is not kept)"
            logger.notice("\(line)")
            reload.request()
        }
        let pipeline = Pipeline(config: config, logger: logger, context: context, engine: engine, store: loaded.store,
                                publishedThrough: loaded.publishedThrough, unpublished: loaded.unpublished,
                                counters: counters, security: security)
        // The counts go out however the daemon stops: a failure's stop (a store failure, the journal socket, the ZAP
        // handler) wrote only its `critical` line, and up to a stats interval of counts — what led up to it — was
        // never written anywhere (an auditor, session 29). Then at `warning`, with the exit status, before the
        // `critical` line that says why.
        func stopped(failure: DaemonError?) {
            // A daemon that failed before its loop ever turned (a bind refused, the store not writable) processed
            // nothing: its failure's own line says all.
            if failure != nil && counters.lastTurnNanos.load(ordering: .relaxed) == 0 { return }
            // The sockets are closed now (the pipeline's thread has ended): the ZAP handler stops, and the refusals it
            // counted after the loop said its held-back lines are said too — 22 on the output and 18 on the journal
            // were only in the counters under a flood of refused handshakes during a stop (a bug hunter, session 46).
            security.stop()
            security.sayHeldBack(stopping: true)
            counters.checkpointFailures.store(loaded.store.checkpoints.failures, ordering: .relaxed)
            var summary: Logger.Metadata = [:]
            for (key, value) in pipeline.counters.summary { summary[key] = "\(value)" }
            if let reasons = pipeline.counters.invalidReasons { summary["invalidBy"] = "\(reasons)" }
            if let failure {
                summary["exitStatus"] = "\(failure.exitStatus.rawValue)"
                logger.warning("stopped", metadata: summary)
            } else {
                logger.info("stopped", metadata: summary)
            }
        }
        do {
            try await serve(pipeline, metrics: metrics, counters: counters, logger: logger, starting: starting,
                            stopDuringStart: stopDuringStart)
        } catch {
            await reload.stop()
            stopped(failure: error)
            throw error
        }
        await reload.stop()
        stopped(failure: nil)
    }

    /// A umask that takes the owner's own read or write bits (`UMask=0277`, 0777) made a state directory and a store
    /// the daemon could not use, refused at their creation with "Permission denied" or "cannot be written", and left
    /// so for every later start (a process-environment hunter, session 53): refused at start, before anything is made.
    static func umaskRefusal(_ mask: UInt32? = ProcessUmask.current()) -> String? {
        guard let mask, mask & 0o600 != 0 else { return nil }
        return "the umask is \(ProcessUmask.octal(mask)), which takes the owner's own read or write permission: the "
            + "daemon could not read or write the state store it creates; set UMask= to 0027 or 0077 (the packaged "
            + "unit's), or `umask 027` before the start"
    }

    /// `--check-config`'s warnings of what this process was started with that a start would refuse (the start's own
    /// refusals: the umask, the open-files hard limit, the limit on threads): the check said "configuration OK" where
    /// the start then exited 64 (an operator's review, session 53). Warnings, not problems: a shell's limits and
    /// umask are not the service's.
    static func startRefusalsHere() -> [String] {
        var files = rlimit()
        let hard: DescriptorLimit.Raised? = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0
            ? DescriptorLimit.Raised(before: UInt64(files.rlim_cur), now: UInt64(files.rlim_max), hard: UInt64(files.rlim_max),
                                   failure: nil)
            : nil
        return [umaskRefusal(), hard.flatMap(DescriptorLimit.refusal), ThreadLimit.refusal()].compactMap { $0 }.map {
            "this process would be refused a start from this shell (exit 64; a service's own UMask=, LimitNOFILE=, "
                + "LimitNPROC= and TasksMax= may differ): \($0)"
        }
    }

    /// `metrics.address` parsed, with the metrics it will serve (histograms fed through the counters' timing
    /// observer, the rest read at scrape); nil without `--metrics`.
    static func metricsEndpoint(_ config: DaemonConfiguration) throws(DaemonError) -> (address: MetricsAddress, metrics: DaemonMetrics)? {
        guard let text = config.metrics else { return nil }
        guard let address = MetricsAddress(text) else {
            throw DaemonError.configuration(key: "metrics.address", problem: "must be HOST:PORT (got \"\(text)\")")
        }
        return (address, DaemonMetrics())
    }

    /// SIGHUP re-reads the configuration (the log level and the allow-list directories apply at once), then the
    /// allow-lists from the directories in force, one reload at a time and in the order the signals came
    /// (`SerialReloads`).
    static func reloadOnSIGHUP(config: DaemonConfiguration, flags: DaemonFlags, security: DaemonSecurity,
                               logger: Logger, counters: RuntimeCounters) -> ReloadSignal {
        let reloader = ConfigurationReload(flags: flags, environment: ProcessInfo.processInfo.environment,
                                           inForce: config, logger: logger, counters: counters,
                                           keysInForce: (security.keyPair?.publicKey, security.inputServerKey))
        let reloads = SerialReloads(dropped: { logger.notice("reload: not done: the daemon is stopping") }) {
            // The allow-lists from the directories the configuration now names, as the reload read them (cli.md:
            // SIGHUP applies the allow-lists, flags and environment still winning over the file): a directory changed
            // in the file kept the old one in force until a restart, a revoked key still admitted (the
            // configuration's hunter, session 45). A configuration not applied still re-reads the lists in force: a
            // key removed to revoke a client is not held back by a typo in the file.
            if case .success(let outcome) = await reloader.reload(), let files = outcome.files {
                security.install(files)
            } else {
                security.reloadAllowLists()
            }
        }
        return ReloadSignal(reloads) {
            logger.info("reload: SIGHUP received")
        }
    }

    /// Runs the pipeline (and the metrics endpoint, when asked for) in a `ServiceGroup` until a graceful shutdown;
    /// throws the loop's own error if it failed.
    static func serve(_ pipeline: Pipeline, metrics: (address: MetricsAddress, metrics: DaemonMetrics)?,
                      counters: RuntimeCounters, logger: Logger,
                      starting: SystemdStartExtension? = nil,
                      stopDuringStart: StopDuringStart? = nil) async throws(DaemonError) {
        var service = PipelineService(pipeline: pipeline, logger: logger)
        service.onReady = { starting?.stop() }
        service.onRun = { stopDuringStart?.handOver() ?? true }
        // Services stop in reverse order: the pipeline first, the metrics endpoint once it has finished.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metrics {
            let bound = MetricsBound()
            service.metricsBound = bound
            services.append(.init(service: MetricsService(address: metrics.address, metrics: metrics.metrics,
                                                          counters: counters, logger: logger, bound: bound)))
        }
        // However the pipeline ends (a store failure included), the metrics endpoint is shut down gracefully, as on
        // SIGTERM: cancelled, Hummingbird logged "Server shutdown error: Already closed" and "Waiting on child
        // channel: CancellationError()" at error level beside the real reason (the fault tester's fourth round).
        services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        do {
            try await group.run()
        } catch {
            throw service.failure.error ?? (error as? DaemonError) ?? DaemonError.internal("\(error)")
        }
    }
}

/// The state store opened and read at start: the engine's state, the alerts committed but not published before the
/// last stop, and how far publication had got.
struct LoadedStore {
    let store: StateStore
    let state: EngineState
    let unpublished: [JournalEntry]
    let publishedThrough: UInt64

    init(directory: String) throws(DaemonError) {
        do {
            store = try StateStore(directory: directory)
            (state, unpublished) = try store.load()
            publishedThrough = try store.publishedThrough()
        } catch {
            throw DaemonError.store(error)
        }
    }

    func log(to logger: Logger, stateDir: String, since started: ContinuousClock.Instant) {
        logger.info("state loaded", metadata: [
            "stateDir": "\(stateDir)",
            "cases": "\(state.cases.count)",
            "contacts": "\(state.contacts.count)",
            "publishers": "\(state.publishers.count)",
            "pduCodes": "\(state.pdus.count)",
            "alertSequence": "\(state.alertSequence)",
            "unpublished": "\(unpublished.count)",
            // A number (it read "seconds=0.0237 seconds", Duration's own text).
            "seconds": "\(String(format: "%.3f", Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000))",
        ])
        logPublisherPositions(to: logger)
        if let from = store.migratedFrom {
            // Said: an upgrade changed the store's schema, and an older version will refuse it from now on.
            logger.notice("the state store was migrated from schema version \(from) to \(StateStore.schemaVersion): a version of ContactWatch older than this one refuses it from now on (exit 74); keep the backup taken before the upgrade to go back",
                          metadata: ["stateDir": "\(stateDir)"])
        }
        if let replaced = store.replacedBySavedCopy {
            // No database file to keep: a start cut short between its renames had moved it already (under an earlier
            // name), or it was gone.
            let kept = FileManager.default.fileExists(atPath: replaced)
                ? "the previous database file, which lacked its last commits, was kept as \(replaced) (delete it, and "
                    + "its -wal and -shm if any, once nothing reads it)"
                : "there was no previous database file to keep (a start cut short while it put the copy in place had "
                    + "moved it as \(store.path).replaced-<time>, or it was gone)"
            logger.warning("""
                the state store was replaced by the complete copy saved when its side file was deleted under the last \
                run (\(store.path)\(StateStore.savedSuffix)); \(kept)
                """, metadata: ["stateDir": "\(stateDir)"])
        }
        if state.publishers.count >= 1000 {
            let e = EngineLogEvent.trackedPublishers(state.publishers.count)
            logger.warning("\(e.message)", metadata: ["publishers": "\(state.publishers.count)"])
        }
        // The same for pduCodes: the running warning is said once when the count is reached, so a restart that loads
        // more than 1,000 said nothing again (session 48's note).
        if state.pdus.count >= 1000 {
            let e = EngineLogEvent.distinctPDUCodes(state.pdus.count)
            logger.warning("\(e.message)", metadata: ["pduCodes": "\(state.pdus.count)"])
        }
        if let limit = StoreError.fileSizeLimitBytes() {
            // Said at start, where it was said only by the commit that passed it (session 53's note).
            let size = (try? FileManager.default.attributesOfItem(atPath: store.path)[.size] as? NSNumber)?.intValue ?? 0
            logger.warning("a file-size limit of \(limit) bytes is set (\(StoreError.fileSizeLimitKnobs)): the state store (\(size) bytes now) and its -wal (tens of MB under load, up to \(StateStore.walSizeLimitBytes / 1_048_576) MiB) cannot grow past it: a checkpoint that would is said, and a commit that would stops the daemon (exit 74); remove the limit unless that is meant",
                           metadata: ["stateDir": "\(stateDir)"])
        }
        for problem in Self.openToOthers(stateDir: stateDir, store: store.path) {
            logger.warning("\(problem)", metadata: ["stateDir": "\(stateDir)"])
        }
    }

    /// The most publishers whose position is said at start, one line each (the rest counted in one more line).
    static let positionsSaid = 32

    /// Each publisher's position — the last `sequenceNumber` the daemon has seen from it, what a publisher resends
    /// after (README: *Restart*) — said at start, ordered by publisherId as the store orders them. It was only in the
    /// store, where nothing documented read it (a crash-consistency tester, session 50).
    private func logPublisherPositions(to logger: Logger) {
        guard !state.publishers.isEmpty else { return }
        let sorted = state.publishers.sorted { $0.key < $1.key }
        for (id, last) in sorted.prefix(Self.positionsSaid) {
            logger.info("publisher position: a resend goes on from the next sequenceNumber (contactwatch replay --publisher-id ID --resume-after N)",
                        metadata: ["publisherId": "\(id.value)", "lastSequence": "\(last)"])
        }
        if sorted.count > Self.positionsSaid {
            logger.info("publisher positions not said: \(sorted.count - Self.positionsSaid) more publishers (table publisher(id, lastSequence) of the store, README: Restart)",
                        metadata: ["publishers": "\(sorted.count)"])
        }
    }

    /// A state directory any user can write, or a store any user can read or write: the case references and
    /// safeguarding categories are readable, the journal and positions rewritable, the `-wal` deletable (each deletion
    /// a stop). New ones are made 0750/0640, but an existing one keeps its mode and was used without a word (a fault
    /// tester, session 35). Said at `warning` at each start, not refused (the operator's choice, as a group-writable
    /// allow-list is).
    static func openToOthers(stateDir: String, store: String) -> [String] {
        var problems: [String] = []
        var st = stat()
        if stat(stateDir, &st) == 0, st.st_mode & S_IWOTH != 0 {
            let delete = st.st_mode & S_ISVTX != 0 ? "" : " or delete the store's"
            problems.append("the state directory \(stateDir) can be written by any user (mode "
                + "\(String(st.st_mode & 0o7777, radix: 8))): any of them can put files in it (a saved copy the next start "
                + "adopts)\(delete); chmod o-w it")
        }
        // Owned by another user (not this process's, not root): that user can put files in it, whatever its mode — a
        // default ./state under a shared working directory held what another user had prepared there (a security
        // tester, session 44).
        if stat(stateDir, &st) == 0, st.st_uid != geteuid(), st.st_uid != 0 {
            problems.append("the state directory \(stateDir) belongs to another user (uid \(st.st_uid)): that user can "
                + "put files in it (a saved copy the next start adopts) and read what it may; give it to the daemon's "
                + "user (chown), or point state.dir (--state-dir) at a directory of its own")
        }
        if stat(store, &st) == 0, st.st_mode & (S_IROTH | S_IWOTH) != 0 {
            problems.append("the state store \(store) can be \(st.st_mode & S_IWOTH != 0 ? "written" : "read") by any "
                + "user (mode \(String(st.st_mode & 0o7777, radix: 8))): it holds case references and safeguarding "
                + "categories; chmod o-rwx it")
        }
        return problems
    }
}

/// An exclusive `flock` on `<state dir>/contactwatchd.lock`, and one on the state directory itself, held for the
/// daemon's life, so that a second daemon pointed at the same state directory stops instead of fighting over the store.
/// The directory's own lock is there because the file can be deleted under a running daemon (a clean-up job, an
/// operator): the next daemon then created a new lock file, locked it, and both wrote the same store (the fault
/// tester: case indices collided and alerts interleaved). The directory's lock has no file to delete; a directory
/// deleted whole takes the store with it, which the store's own check stops the daemon for. A lock still held by another process after `waitSeconds` is a temporary
/// failure (exit 75, cli.md): a restart cures it once that one is gone. `waiting` is called once per lock waited for,
/// before the wait, with the holder's process id when `/proc/locks` names it. A file system that refuses `flock` on a
/// directory (some network file systems) keeps the file's lock alone, and `unsupported` says so.
struct StateDirectoryLock {
    private let fd: Int32
    private let directoryFD: Int32
    /// A state store was made in this directory before (the lock file holds `storeMarker`, written once a store has
    /// been opened: `noteStoreMade`). Not merely the lock file: a first start that failed before making its store
    /// leaves the file, empty.
    let storeMadeBefore: Bool
    static let storeMarker = "a contactwatchd state store has been made in this directory\n"

    init(directory: String, waiting: (Int32?) -> Void = { _ in },
         unsupported: (String) -> Void = { _ in }) throws(DaemonError) {
        if let why = FileCheck.createDirectories(directory) {
            // A relative path is taken from the working directory: one deleted under the shell that started the
            // daemon said only "No such file or directory" of the path (a process-environment hunter, session 53).
            let gone = WorkingDirectory.goneReason(for: directory).map { "; " + $0 } ?? ""
            throw DaemonError.store("cannot create the state directory \(directory) (\(why)\(gone)). Point state.dir "
                + "(--state-dir) at a directory the daemon's user can create and write, or create it for that user.")
        }
        let path = (directory as NSString).appendingPathComponent("contactwatchd.lock")
        // Never through a symbolic link, and only a regular file: the daemon writes the marker into it, and whoever
        // could write the state directory planted a link there and had the daemon (root, outside the unit's sandbox)
        // overwrite a root-only file's first 60 bytes, or create the file a dangling link names (a security tester,
        // session 44). The store's own files were refused as links already (`StateStore.refuseLinks`).
        /// A lock file the daemon will not write into: `what` it is, and why.
        func refused(_ what: String) -> DaemonError {
            DaemonError(.store(.unreadable), "\(path) \(what). Remove it (the daemon makes the file), and see who could "
                + "put it there: the state directory should be writable by the daemon's user only.")
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o640)
        guard fd >= 0 else {
            let failure = errno
            if failure == ELOOP {
                throw refused("is a symbolic link (to \(symbolicLinkTarget(path) ?? "?")); it has not been used: the daemon "
                    + "writes its lock file, and would write wherever the link points")
            }
            if failure == ENOSPC || failure == EDQUOT {
                // No inode (or quota) left for the lock file: the disk full, temporary like a full disk at a commit.
                throw DaemonError(.store(.full), "cannot create \(path): \(String(cString: strerror(failure))): the disk "
                    + "holding the state directory is full. Free some space (or inodes); the daemon resumes where it stopped.")
            }
            if failure == EACCES || failure == EPERM {
                // A state directory (or lock file) made by another user — a first run from a root shell, then the
                // service's `User=` — said only "Permission denied" (a documentation hunter, session 54).
                // The lock file's owner when it exists (the directory may be fine: a reviewer, session 54), else the
                // directory's.
                var st = stat()
                let directory = (path as NSString).deletingLastPathComponent
                let what = lstat(path, &st) == 0 ? "the lock file" : stat(directory, &st) == 0 ? "the directory" : nil
                let owner = what.map { " (\($0) is owned by uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)); "
                    + "the daemon runs as uid \(geteuid()))" } ?? ""
                throw DaemonError.store("cannot open \(path): \(String(cString: strerror(failure)))\(owner). The state "
                    + "directory and every file in it must be readable and writable by the daemon's user: made by another "
                    + "user (a first run from a root shell), give them to this one (`chown -R`), or point state.dir "
                    + "(--state-dir) elsewhere")
            }
            throw DaemonError.store("cannot open \(path): \(String(cString: strerror(failure)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw refused("is \(FileKind(mode: st.st_mode).notRegularFile ?? "not a regular file"); it has not been used")
        }
        // A hard link passes both checks: another name for a file elsewhere on the file system (where
        // fs.protected_hardlinks is off), written through all the same (a reviewer, session 44).
        guard st.st_nlink == 1 else {
            close(fd)
            throw refused("has \(st.st_nlink) names (hard links); it has not been used: the daemon writes its lock file, "
                + "and would write the file its other names are")
        }
        do {
            try Self.lock(fd, directory: directory, waiting: waiting)
        } catch {
            close(fd)
            throw error
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD < 0 {
            let reason = String(cString: strerror(errno))
            flock(fd, LOCK_UN)
            close(fd)
            throw DaemonError.store("cannot open the state directory \(directory): \(reason)")
        }
        do {
            if let refused = try Self.lock(directoryFD, directory: directory, waiting: waiting, refusedIsFatal: false) {
                unsupported("the file system refuses a lock on the state directory \(directory) itself (\(refused)): "
                    + "only \(path) keeps a second daemon out, and deleting it while this one runs lets another share "
                    + "the store")
                close(directoryFD)
                self.directoryFD = -1
            } else {
                self.directoryFD = directoryFD
            }
        } catch {
            close(directoryFD)
            flock(fd, LOCK_UN)
            close(fd)
            throw error
        }
        self.fd = fd
        // Read under the lock: what an earlier daemon wrote is whole.
        let marker = Array(Self.storeMarker.utf8)
        var head = [UInt8](repeating: 0, count: marker.count)
        storeMadeBefore = pread(fd, &head, head.count, 0) == head.count && head == marker
    }

    /// Records in the lock file that a store has been made here (once: an unchanged file is not written again). A
    /// failure to write it only costs the warning of a later start that finds the store gone.
    func noteStoreMade() {
        guard !storeMadeBefore else { return }
        let marker = Array(Self.storeMarker.utf8)
        _ = marker.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Takes an exclusive `flock` on `fd`, waiting up to `waitSeconds` for another process that holds it. Returns nil
    /// when locked; a refusal of the lock itself (a failure other than "held by another") is thrown, or returned when
    /// `refusedIsFatal` is false; a wait for another holder that runs out or fails is always thrown.
    /// `blockingLock` is `flock(fd, LOCK_EX)` (a seam for tests: it returns 0, or the `errno` of its failure).
    @discardableResult
    static func lock(_ fd: Int32, directory: String, waiting: (Int32?) -> Void, refusedIsFatal: Bool = true,
                     waitSeconds: Double = Self.waitSeconds,
                     blockingLock: @escaping @Sendable (Int32) -> Int32 = { flock($0, LOCK_EX) == 0 ? 0 : errno })
        throws(DaemonError) -> String?
    {
        guard flock(fd, LOCK_EX | LOCK_NB) != 0 else { return nil }
        guard errno == EWOULDBLOCK else {
            let reason = String(cString: strerror(errno))
            if !refusedIsFatal { return reason }
            throw DaemonError.store("cannot lock the state directory \(directory): \(reason)")
        }
        let holder = Self.holder(of: fd)
        waiting(holder)
        // flock has no timed form: a thread blocks in it while this one waits on a semaphore. When the wait runs
        // out the daemon exits (75), which ends that thread with the process (the caller closes the descriptor on
        // its way out; a lock granted after that lapses with the file, which nothing else holds). A blocking flock
        // that fails (a signal: tried again; ENOLCK, a file system that stopped taking locks) ends the wait at once
        // with its own reason, not as a holder that stayed.
        let locked = DispatchSemaphore(value: 0)
        let outcome = BlockingLockOutcome()
        do {
            try SystemThread.start(name: "cw-lock-wait") {
                var code = blockingLock(fd)
                while code == EINTR { code = blockingLock(fd) }
                outcome.code.store(code, ordering: .releasing)
                locked.signal()
            }
        } catch {
            // Without the thread the wait below would run out and blame the lock's holder (SystemThread).
            throw DaemonError.threadRefused(error, while: "cannot wait for the state directory's lock")
        }
        guard locked.wait(timeout: .now() + waitSeconds) == .success else {
            // The holder is read from /proc/locks, which the unit's ProcSubset=pid hides: unknown there, and then
            // not necessarily a contactwatchd (a packaging check under systemd 252 held it with flock; session 37).
            let who = holder.map { "another process (process \($0), a contactwatchd still stopping or another one)" }
                ?? "another process (a contactwatchd still stopping, another one, or any program holding its lock file)"
            throw DaemonError(.store(.busy), "cannot lock the state directory \(directory): \(who) "
                + "has been using it for \(Int(waitSeconds)) s (exit 75: a restart retries once it has stopped)")
        }
        let code = outcome.code.load(ordering: .acquiring)
        // Fatal whatever `refusedIsFatal` says: the wait began because another process holds the lock, so the file
        // system does take it, and going on without it would let a second daemon share the store (a reviewer,
        // session 33: the directory lock, taken with `refusedIsFatal` false, did that on a blocking flock's ENOLCK).
        guard code == 0 else {
            let reason = String(cString: strerror(code))
            throw DaemonError.store("cannot lock the state directory \(directory): waiting for the lock failed: \(reason)")
        }
        return nil
    }

    /// The errno of the waiter thread's blocking `flock` (0: locked), read after its signal.
    private final class BlockingLockOutcome: Sendable {
        let code = Atomic<Int32>(0)
    }

    static let waitSeconds: Double = 5

    /// The process holding the `flock` on `fd`'s file, from `/proc/locks` (Linux; nil elsewhere or when not found).
    static func holder(of fd: Int32) -> Int32? {
        var st = stat()
        guard fstat(fd, &st) == 0, let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        return holder(inLocks: text, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The pid of the granted FLOCK on (`device`, `inode`) in the text of `/proc/locks`: lines such as
    /// `1: FLOCK  ADVISORY  WRITE 1234 fe:00:5309032 0 EOF`, device as major:minor in hex; waiters ("->") skipped.
    static func holder(inLocks text: String, device: UInt64, inode: UInt64) -> Int32? {
        // glibc's gnu_dev_major/minor (macros, not imported).
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 6, f[1] == "FLOCK", !line.contains("->") else { continue }
            let id = f[5].split(separator: ":")
            guard id.count == 3, UInt64(id[0], radix: 16) == major, UInt64(id[1], radix: 16) == minor,
                  UInt64(id[2]) == inode else { continue }
            return Int32(f[4])
        }
        return nil
    }

    func release() {
        if directoryFD >= 0 {
            flock(directoryFD, LOCK_UN)
            close(directoryFD)
        }
        flock(fd, LOCK_UN)
        close(fd)
    }
}
