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
