import Hummingbird
import NIOCore
import Logging
import PostgresClient
import SpotqIngest

/// The HTTP side of `spotq server`, as a Hummingbird application (a `Service`).
public enum SpotqHTTPServer {
    public static func makeApplication(
        configuration: HTTPServerConfiguration, postgres: PostgresClient, logger: Logger,
        queues: SpotqMetrics.QueueProbe? = nil,
        replay: OpsRoutes.Replay? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let metrics = SpotqMetrics(postgres: postgres, queues: queues, logger: logger)
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        let results = ResultStore(postgres: postgres, storageDirectory: configuration.storageDirectory, logger: logger)
        let removed = results.removeStaleIncoming()
        if removed > 0 { logger.info("ingest: removed \(removed) partial files left by an earlier run") }
        IngestRoutes(postgres: postgres, results: results, limits: configuration.limits, logger: logger, metrics: metrics).register(on: router)
        metrics.register(on: router)
        OpsRoutes(postgres: postgres, adminToken: configuration.adminToken, replay: replay, logger: logger).register(on: router)
        let (seconds, attoseconds) = configuration.idleTimeout.components
        let idle = TimeAmount.milliseconds(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: idle)),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "spotq"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
