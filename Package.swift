// swift-tools-version:6.1
import PackageDescription

// Layers, bottom to top (see ../shared/DESIGN.md and README "Code map"):
//   C system libraries (module maps only)
//   → one thin Swift client per C library (PostgresClient, AMQPClient, CurlClient)
//   → SpotqCore: pure logic, no I/O
//   → services (SpotqStore, SpotqBroker, …)
//   → SpotqCLI, with a tiny `spotq` main.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// What the services' test targets and their support library build on.
let serviceTestDependencies: [Target.Dependency] = [
    "SpotqServer", "SpotqCLI", "SpotqBroker", "SpotqHTTP", "SpotqBundle", "SpotqIngest", "SpotqDevcloud", "SpotqWorker", "SpotqPod", "SpotqProvisioner",
    "SpotqSynthetic", "CurlClient", "PostgresTestSupport", "SpotqTestSupport",
    .product(name: "ZIPFoundation", package: "ZIPFoundation"),
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "HummingbirdTesting", package: "hummingbird"),
    .product(name: "Crypto", package: "swift-crypto"),
]

let package = Package(
    name: "spotq",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "spotq", targets: ["spotq"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: C libraries, found by pkg-config.
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CRabbitMQ", pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),

        // MARK: Thin clients, one per C library.
        .target(name: "DedicatedThread", swiftSettings: swiftSettings),
        .target(name: "ProcessLauncher", swiftSettings: swiftSettings),
        .target(
            name: "PostgresClient",
            dependencies: [
                "CLibPQ", "DedicatedThread",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AMQPClient",
            dependencies: [
                "CRabbitMQ", "DedicatedThread",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CurlClient",
            dependencies: [
                "CCurl", "DedicatedThread",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: spotq itself.
        .target(
            name: "SpotqCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // What devcloud, the benches and the tests make up: model bytes, PNGs, demo requests.
        .target(
            name: "SpotqSynthetic",
            dependencies: ["SpotqCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqStore",
            dependencies: [
                "SpotqCore", "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqBroker",
            dependencies: [
                "SpotqCore", "AMQPClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqServer",
            dependencies: [
                "SpotqCore", "SpotqStore", "SpotqBroker", "AMQPClient", "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The result bundle's format (write and read a zip); no database, so the worker can use it.
        .target(
            name: "SpotqBundle",
            dependencies: [
                "SpotqCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqIngest",
            dependencies: [
                "SpotqCore", "SpotqBundle", "SpotqStore", "PostgresClient", "DedicatedThread",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqHTTP",
            dependencies: [
                "SpotqPod",
                "SpotqCore", "SpotqBundle", "SpotqIngest", "SpotqStore", "PostgresClient", "DedicatedThread",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqDevcloud",
            dependencies: [
                "ProcessLauncher",
                "SpotqCore", "SpotqSynthetic",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // What runs around the worker on a pod: the bootstrap script (built in, so the server
        // and the provisioner agree on its hash) and the supervisor.
        .target(
            name: "SpotqPod",
            dependencies: ["DedicatedThread", "ProcessLauncher", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.embedInCode("bootstrap.sh")],
            swiftSettings: swiftSettings
        ),
        // A pod never touches the database: nothing here links libpq.
        .target(
            name: "SpotqWorker",
            dependencies: [
                "SpotqCore", "SpotqBroker", "SpotqBundle", "AMQPClient", "CurlClient",
                .product(name: "Logging", package: "swift-log"),
                "DedicatedThread", "ProcessLauncher",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqProvisioner",
            dependencies: [
                "SpotqPod",
                "SpotqCore", "SpotqStore", "SpotqBroker", "AMQPClient", "CurlClient", "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SpotqCLI",
            dependencies: [
                "SpotqCore", "SpotqStore", "SpotqBroker", "SpotqServer", "SpotqHTTP", "SpotqDevcloud", "SpotqWorker", "SpotqPod", "SpotqProvisioner",
                "SpotqSynthetic", "AMQPClient", "PostgresClient", "ProcessLauncher",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "spotq",
            dependencies: [
                "SpotqCLI", "SpotqCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests. Integration suites read SPOTQ_DATABASE_URL / SPOTQ_AMQP_URL (from the
        // environment, else from .spotq/env written by `make services`) and fail loudly without them.
        .target(
            name: "SpotqTestSupport",
            dependencies: [
                "ProcessLauncher",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PostgresTestSupport",
            dependencies: ["PostgresClient", "SpotqStore", "SpotqTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SpotqCoreTests", dependencies: ["SpotqCore", "SpotqSynthetic"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SpotqPodTests",
            dependencies: [
                "SpotqPod", "SpotqHTTP", "SpotqDevcloud", "SpotqCore", "SpotqTestSupport", "ProcessLauncher",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresClientTests",
            dependencies: ["PostgresClient", "PostgresTestSupport", "SpotqTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AMQPClientTests",
            dependencies: ["AMQPClient", "SpotqTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CurlClientTests",
            dependencies: [
                "CurlClient", "SpotqTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SpotqStoreTests",
            dependencies: ["SpotqStore", "SpotqSynthetic", "PostgresTestSupport", "SpotqTestSupport"],
            swiftSettings: swiftSettings
        ),
        // The services' integration tests, one target per area, sharing ServerTestSupport (the
        // fixtures: a migrated database with assets, a fleet of real processes, ingest, README blocks).
        .target(
            name: "ServerTestSupport",
            dependencies: serviceTestDependencies,
            path: "Tests/ServerTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SpotqEnqueueTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SpotqEventTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SpotqIngestTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SpotqWorkerTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SpotqProvisionerTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SpotqOperatorTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        // Faults and bad input on real processes; `make chaos` runs this target alone.
        .testTarget(name: "SpotqChaosTests", dependencies: serviceTestDependencies + ["ServerTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SpotqBrokerTests",
            dependencies: [
                "SpotqBroker", "SpotqCLI", "SpotqTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
