import ContactWatchEngine
@testable import ContactWatchRuntime
import ContactWatchStore
import Foundation
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import ZeroMQ

/// `PipelineService` under swift-service-lifecycle's test kit: a graceful shutdown stops the loop, which makes its
/// state durable and releases its sockets.
@Suite("PipelineService")
struct PipelineServiceTests {
    final class Ready: Sendable {
        let stream: AsyncStream<Void>
        let continuation: AsyncStream<Void>.Continuation
        init() { (stream, continuation) = AsyncStream.makeStream() }
    }

    /// A daemon's configuration with every endpoint and the state directory inside `dir` (input bound).
    static func configuration(in dir: String) -> DaemonConfiguration {
        var config = DaemonConfiguration()
        config.inputs = ["ipc://\(dir)/in"]
        config.inputBind = true
        config.output = "ipc://\(dir)/out"
        config.stateDir = dir + "/state"
        return config
    }

    @Test("graceful shutdown stops the loop, records the start in the store and closes the sockets; alive from READY")
    func gracefulShutdown() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-svc-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = Self.configuration(in: dir)
        config.journal = "ipc://\(dir)/journal"
        let store = try StateStore(directory: config.stateDir)
        let context = try ZMQContext()
        defer { context.close() }
        let engine = try Engine(settings: config.engine, state: EngineState())
        let pipeline = Pipeline(config: config, logger: Logger(label: "test"), context: context, engine: engine,
                                store: store, publishedThrough: 0, unpublished: [])
        let ready = Ready()
        final class Flag: Sendable { let value = Atomic<Bool>(false) }
        let aliveAtReady = Flag()
        var configured = PipelineService(pipeline: pipeline, logger: Logger(label: "test"))
        configured.onReady = {
            // /healthz answers 200 from READY=1 on (it used to answer 503 until the loop's first turn).
            aliveAtReady.value.store(DaemonMetrics.isAlive(pipeline.counters), ordering: .relaxed)
            ready.continuation.yield()
        }
        let service = configured
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                var it = ready.stream.makeAsyncIterator()
                _ = await it.next()
                #expect(!pipeline.isStopRequested)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(pipeline.isStopRequested)
        #expect(service.failure.error == nil)
        let wasAlive = aliveAtReady.value.load(ordering: .relaxed)
        #expect(wasAlive, "/healthz would answer 503 right after READY=1")
        store.close()
        // The sockets are closed: once the context is terminated (which waits for every socket of it to be closed;
        // libzmq closes a closed socket's listener asynchronously), nothing listens on the endpoints any more, so
        // they can be bound again (a bind refuses an ipc:// path another socket still listens on).
        context.close()
        let fresh = try ZMQContext()
        defer { fresh.close() }
        let again = try fresh.socket(.xpub)
        defer { again.close() }
        try again.bind(config.output)
        let journal = try fresh.socket(.router)
        defer { journal.close() }
        try journal.bind(config.journal!)
    }

    @Test("a store that cannot be written stops the service before it is ready, with the store's error kind")
    func unwritableStoreFailsBeforeReady() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-svc-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = Self.configuration(in: dir)
        let store = try StateStore(directory: config.stateDir)
        store.close() // every later statement throws: as a store that cannot be written
        let context = try ZMQContext()
        defer { context.close() }
        let engine = try Engine(settings: config.engine, state: EngineState())
        let pipeline = Pipeline(config: config, logger: Logger(label: "test"), context: context, engine: engine,
                                store: store, publishedThrough: 0, unpublished: [])
        final class Flag: Sendable { let value = Atomic<Bool>(false) }
        let readyCalled = Flag()
        var service = PipelineService(pipeline: pipeline, logger: Logger(label: "test"))
        service.onReady = { readyCalled.value.store(true, ordering: .relaxed) }
        await #expect(throws: DaemonError.self) { try await service.run() }
        let wasReady = readyCalled.value.load(ordering: .relaxed)
        #expect(!wasReady)
        if case .store = service.failure.error?.kind {} else { Issue.record("not a store error: \(String(describing: service.failure.error))") }
    }
}

/// A `ServiceGroup` cancels its services when one of them fails (swift-service-lifecycle's default `cancelGroup`):
/// with `--metrics`, the metrics server failing after start. `PipelineService` must then stop its loop (making what is
/// pending durable and publishing it) and return; it used to wait on its thread forever, so the group never
/// returned, the daemon never exited, and SIGTERM found no handler left to stop it gracefully.
@Suite("PipelineService in a ServiceGroup")
struct PipelineServiceGroupTests {
    /// Fails once the pipeline is ready, as a metrics server that dies after it has bound.
    struct FailsAfterReady: Service {
        let ready: PipelineServiceTests.Ready
        struct Died: Error {}
        func run() async throws {
            var it = ready.stream.makeAsyncIterator()
            _ = await it.next()
            throw Died()
        }
    }

    @Test("another service of the group failing cancels the group: the loop stops and the pipeline service returns")
    func cancelledWhenAnotherServiceFails() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cw-svc-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = PipelineServiceTests.configuration(in: dir)
        let store = try StateStore(directory: config.stateDir)
        defer { store.close() }
        let context = try ZMQContext()
        defer { context.close() }
        let engine = try Engine(settings: config.engine, state: EngineState())
        let pipeline = Pipeline(config: config, logger: Logger(label: "test"), context: context, engine: engine,
                                store: store, publishedThrough: 0, unpublished: [])
        let ready = PipelineServiceTests.Ready()
        var service = PipelineService(pipeline: pipeline, logger: Logger(label: "test"))
        service.onReady = { ready.continuation.yield() }
        let group = ServiceGroup(services: [FailsAfterReady(ready: ready), service], gracefulShutdownSignals: [],
                                 cancellationSignals: [], logger: Logger(label: "test"))
        // A bound on the wait, not a synchronisation: past it the test stops the loop itself so that it can end.
        final class Flag: Sendable { let value = Atomic<Bool>(false) }
        let gaveUp = Flag()
        let bound = Task {
            try await Task.sleep(for: .seconds(60))
            gaveUp.value.store(true, ordering: .relaxed)
            pipeline.requestStop()
        }
        await #expect(throws: FailsAfterReady.Died.self) { try await group.run() }
        bound.cancel()
        let hung = gaveUp.value.load(ordering: .relaxed)
        #expect(!hung, "the pipeline service ignored the group's cancellation (stopped by the test after 60 s)")
        #expect(pipeline.isStopRequested)
    }
}
