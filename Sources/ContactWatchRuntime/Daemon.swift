import ContactWatchEngine
import ContactWatchStore
import Foundation
import Logging
import ServiceLifecycle
import ZeroMQ

/// The processing pipeline as a swift-service-lifecycle service: it runs the loop on its own thread and stops it
/// on graceful shutdown (SIGTERM, SIGINT).
struct PipelineService: Service {
    let pipeline: Pipeline
    let logger: Logger

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread { [pipeline, logger] in
                    do {
                        try pipeline.run {
                            Systemd.notify("READY=1")
                            logger.info("ready", metadata: [
                                "input": "\(pipeline.config.inputs.joined(separator: ","))",
                                "output": "\(pipeline.config.output)",
                                "journal": "\(pipeline.config.journal ?? "off")",
                            ])
                        }
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "contactwatch-pipeline"
                thread.start()
            }
        } onGracefulShutdown: {
            Systemd.notify("STOPPING=1")
            logger.info("stopping")
            pipeline.requestStop()
        }
    }
}

/// Wires the daemon together: configuration, logging, state store, engine, sockets, signals. Returns the exit code.
public enum Daemon {
    public static func run(flags: DaemonFlags) async -> Int32 {
        let config: DaemonConfiguration
        do {
            config = try await DaemonConfiguration.load(flags: flags, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("contactwatchd: \(error.message)\n".utf8))
            return error.exitCode
        }
        let level = config.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "contactwatchd")
        if let metrics = config.metrics {
            logger.warning("metrics are not served by this version; ignoring metrics.address \(metrics)")
        }
        do {
            try await run(config: config, logger: logger)
            return 0
        } catch let error as DaemonError {
            logger.critical("\(error.message)")
            return error.exitCode
        } catch {
            logger.critical("internal error: \(error)")
            return 70
        }
    }

    static func makeEngine(_ settings: EngineSettings, _ state: EngineState) throws(DaemonError) -> Engine {
        do {
            return try Engine(settings: settings, state: state)
        } catch {
            throw DaemonError.configuration(key: error.key, problem: error.problem)
        }
    }

    static func run(config: DaemonConfiguration, logger: Logger) async throws {
        let started = ContinuousClock.now
        let lock = try StateDirectoryLock(directory: config.stateDir)
        defer { lock.release() }
        let store: StateStore
        let loaded: (state: EngineState, unpublished: [JournalEntry])
        do {
            store = try StateStore(directory: config.stateDir)
            loaded = try store.load()
        } catch {
            throw DaemonError.store("\(error)")
        }
        defer { store.close() }
        let engine = try makeEngine(config.engine, loaded.state)
        logger.info("state loaded", metadata: [
            "stateDir": "\(config.stateDir)",
            "cases": "\(loaded.state.cases.count)",
            "contacts": "\(loaded.state.contacts.count)",
            "alertSequence": "\(loaded.state.alertSequence)",
            "seconds": "\(ContinuousClock.now - started)",
        ])
        let context: ZMQContext
        do { context = try ZMQContext() } catch { throw DaemonError.internal("cannot create the ZeroMQ context: \(error)") }
        defer { context.close() }
        let pipeline = Pipeline(config: config, logger: logger, context: context, engine: engine, store: store,
                                unpublished: loaded.unpublished)
        let group = ServiceGroup(services: [PipelineService(pipeline: pipeline, logger: logger)],
                                 gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        do {
            try await group.run()
        } catch let error as DaemonError {
            throw error
        } catch {
            // ServiceGroup wraps a service's error; surface ours when it is one.
            if let inner = Mirror(reflecting: error).descendant("error") as? DaemonError { throw inner }
            throw DaemonError.internal("\(error)")
        }
        let c = pipeline.counters
        var summary: Logger.Metadata = [:]
        summary["received"] = "\(c.received)"
        summary["processed"] = "\(c.processed)"
        summary["invalid"] = "\(c.invalid)"
        summary["ignored"] = "\(c.ignored)"
        summary["duplicates"] = "\(c.duplicates)"
        summary["stale"] = "\(c.stale)"
        summary["gaps"] = "\(c.gaps)"
        summary["alertsRaised"] = "\(c.raisedByRule.reduce(0, +))"
        summary["alertsResolved"] = "\(c.resolvedByRule.reduce(0, +))"
        summary["disconnections"] = "\(pipeline.disconnections)"
        summary["commits"] = "\(pipeline.commits)"
        logger.info("stopped", metadata: summary)
    }
}

/// An exclusive `flock` on `<state dir>/contactwatchd.lock`, held for the daemon's life, so that a second daemon
/// pointed at the same state directory stops at once (exit 74) instead of fighting over the store.
struct StateDirectoryLock {
    private let fd: Int32

    init(directory: String) throws(DaemonError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DaemonError.store("cannot create the state directory \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent("contactwatchd.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw DaemonError.store("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? "another contactwatchd is using this state directory"
                                              : String(cString: strerror(errno))
            close(fd)
            throw DaemonError.store("cannot lock the state directory \(directory): \(reason)")
        }
        self.fd = fd
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
