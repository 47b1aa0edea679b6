import Hummingbird
import Logging
import NIOCore
import PostgresClient
import SpotqIngest
import SpotqStore

/// The HTTP side of `spotq server`: two Hummingbird applications (two `Service`s), so an
/// operator can expose the pods' routes without the operators' ones.
/// - the pod listener (`SPOTQ_HTTP_ADDR`): `/v1/batches/{id}/manifest|progress|results`, and
///   what new pods fetch: `/v1/pod/bootstrap.sh`, `/v1/pod/spotq`, `/v1/pod/manifest`;
/// - the ops listener (`SPOTQ_OPS_HTTP_ADDR`): `/metrics`, the dashboard `/` and `/v1/ops/…`.
/// Both answer `/healthz`. The upload counters the pod listener keeps are served by the ops
/// listener's `/metrics`, so both are made with the same `SpotqMetrics`.
public enum SpotqHTTPServer {
    /// The pod listener.
    public static func makePodApplication(
        configuration: HTTPServerConfiguration, postgres: PostgresClient, logger: Logger,
        metrics: SpotqMetrics? = nil,
        gate: IngestGate? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: PodRequestContext.self)
        router.add(middleware: ErrorMappingMiddleware(area: "ingest", logger: logger))
        router.get("/healthz") { _, _ in "ok\n" }
        let results = ResultStore(postgres: postgres, storageDirectory: configuration.storageDirectory, logger: logger)
        let removed = results.removeStaleIncoming()
        if removed > 0 { logger.info("ingest: removed \(removed) partial files left by an earlier run") }
        IngestRoutes(
            batches: BatchAccessStore(client: postgres), results: results, limits: configuration.limits,
            gate: gate ?? IngestGate(limits: configuration.ingestConcurrency), logger: logger, metrics: metrics)
            .register(on: router)
        PodSoftwareRoutes(binaryPath: configuration.podBinaryPath).register(on: router)
        return application(router, host: configuration.host, port: configuration.port, configuration: configuration, logger: logger, onServerRunning: onServerRunning)
    }

    /// The ops listener.
    public static func makeOpsApplication(
        configuration: HTTPServerConfiguration, postgres: PostgresClient, logger: Logger,
        metrics: SpotqMetrics,
        replay: OpsRoutes.Replay? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: ErrorMappingMiddleware(area: "ops", logger: logger))
        router.get("/healthz") { _, _ in "ok\n" }
        metrics.register(on: router)
        OpsRoutes(postgres: postgres, adminToken: configuration.adminToken, replay: replay, logger: logger).register(on: router)
        return application(router, host: configuration.opsHost, port: configuration.opsPort, configuration: configuration, logger: logger, onServerRunning: onServerRunning)
    }

    static func application<Context>(
        _ router: Router<Context>, host: String, port: Int, configuration: HTTPServerConfiguration, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void
    ) -> some ApplicationProtocol where Context.Source == ApplicationRequestContextSource {
        let (seconds, attoseconds) = configuration.idleTimeout.components
        let idle = TimeAmount.milliseconds(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: idle)),
            configuration: .init(address: .hostname(host, port: port), serverName: "spotq"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
