// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ContactWatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "contactwatchd", targets: ["contactwatchd"]),
        .executable(name: "contactwatch", targets: ["contactwatch"]),
        .library(name: "ContactWatchEngine", targets: ["ContactWatchEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        // C libraries, reached only through the files that own their handles.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // liblz4's block format, for the journal's rows (LZ4Block.swift, the one file that calls it).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // Sixteen bytes at a time for the event scanner (header only, SSE2; see scan.h).
        .systemLibrary(name: "CScanSIMD"),
        // A cache-line prefetch for the engine's per-event lookups (header only; see prefetch.h).
        .systemLibrary(name: "CPrefetch"),
        // SQLite's process-wide settings (`sqlite3_config`, variadic in C; see shim.h).
        .systemLibrary(name: "CSQLiteConfig"),
        // glibc's malloc_trim (header only; see shim.h).
        .systemLibrary(name: "CMalloc"),
        // The project's own ZeroMQ layer: context and socket lifetimes, frames read in scope.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ", "ContactWatchCommon"]),
        // What both executables share besides the engine: their exit statuses, the version (`--version`), endpoint
        // syntax, whole writes and the kind of a file (`FileKind`, behind every "not a regular file").
        .target(name: "ContactWatchCommon"),
        // The pure engine: bytes in, messages out. No I/O, no clock but the one passed in.
        .target(
            name: "ContactWatchEngine",
            dependencies: [
                "CScanSIMD", "CPrefetch",
                .product(name: "Crypto", package: "swift-crypto"),
                // The engine's timers (R6 and R7 deadlines, the days of ForgetQueue) are binary heaps.
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        // Durable state (SQLite through GRDB).
        .target(
            name: "ContactWatchStore",
            dependencies: [
                "ContactWatchCommon", "ContactWatchEngine", "CSQLiteConfig", "CLZ4",
                // SHA-256 of each journal row (`JournalChunk`, format 3).
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // The SQLite C API as GRDB links it, for the commit path's in-place binding (RawSQLite.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The daemon's edges: configuration, sockets, signals, systemd, the processing loop.
        .target(
            name: "ContactWatchRuntime",
            dependencies: [
                "ContactWatchCommon", "ContactWatchEngine", "ContactWatchStore", "ZeroMQ", "CSystemd", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                // Metrics (cli.md, Metrics): swift-metrics handles on a Prometheus registry, served by Hummingbird.
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The HTTP/1 request head (its version and keep-alive), which Hummingbird's HTTP types drop.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // The configuration file's key paths, to refuse the ones the daemon does not know.
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The companion tool's logic: replay, generate, tail.
        .target(
            name: "ContactWatchTools",
            dependencies: ["ContactWatchCommon", "ContactWatchEngine", "ZeroMQ"]
        ),
        .executableTarget(
            name: "contactwatchd",
            dependencies: [
                "ContactWatchCommon", "ContactWatchRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "contactwatch",
            dependencies: [
                "ContactWatchCommon", "ContactWatchTools",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks (`make bench`): the engine and the store in-process, without sockets.
        .executableTarget(
            name: "contactwatch-bench",
            dependencies: ["ContactWatchEngine", "ContactWatchStore", "ContactWatchTools"],
            path: "Benchmarks/Sources/contactwatch-bench"
        ),
        // Restart benchmark (`make bench`): open, check and load a large store; commit costs on it.
        .executableTarget(
            name: "contactwatch-restart-bench",
            dependencies: ["ContactWatchEngine", "ContactWatchStore", "ContactWatchTestSupport"],
            path: "Benchmarks/Sources/contactwatch-restart-bench"
        ),
        // `make fuzz`: a libFuzzer target over the engine (built with --sanitize=fuzzer -DFUZZING); built normally it
        // runs saved inputs as a reproducer.
        .executableTarget(name: "contactwatch-fuzz", dependencies: ["ContactWatchEngine"], path: "Tests/Fuzz"),
        // Fixtures and helpers the test targets share.
        .target(name: "ContactWatchTestSupport", dependencies: ["ContactWatchEngine"], path: "Tests/TestSupport"),
        // `.blocking`: suites whose tests block a thread run on threads of their own, side by side (tests only).
        .target(name: "ContactWatchTestThreads", path: "Tests/TestThreads"),
        .testTarget(name: "EngineTests", dependencies: ["ContactWatchEngine", "ContactWatchTestSupport", "ContactWatchTestThreads"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ", "ContactWatchTestSupport", "ContactWatchTestThreads"]),
        // The runtime in-process: the commit state machine with a fake writer, configuration, service shutdown.
        .testTarget(
            name: "RuntimeTests",
            dependencies: [
                "ContactWatchRuntime", "ContactWatchStore", "ContactWatchEngine", "ContactWatchCommon", "ZeroMQ",
                "ContactWatchTestSupport", "ContactWatchTestThreads",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "StoreTests", dependencies: ["ContactWatchStore", "ContactWatchEngine", "ContactWatchCommon", "ContactWatchTestSupport", "ContactWatchTestThreads"]),
        // The operator's side in-process: log output, progress lines, tail's text format.
        .testTarget(
            name: "OperationsTests",
            dependencies: [
                "ContactWatchRuntime", "ContactWatchTools", "ContactWatchCommon", "ContactWatchTestSupport", "ZeroMQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ContactWatchEngine", "ContactWatchTools", "ZeroMQ", "ContactWatchTestSupport", "ContactWatchCommon",
                "ContactWatchTestThreads", "contactwatchd", "contactwatch",
            ]
        ),
    ]
)
