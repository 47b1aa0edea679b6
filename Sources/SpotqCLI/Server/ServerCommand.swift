import AMQPClient
import ArgumentParser
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqHTTP
import SpotqServer
import SpotqStore

/// `spotq server`: the long-running background services.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run spotq's background services until SIGTERM or SIGINT.",
        discussion: """
            Components: enqueue (consumes spotq.enqueue into image_generation_queue), planner
            (wakes on NOTIFY spotq_pending; plans and publishes batches when SPOTQ_PLAN_AT_ITEMS
            images wait or the oldest waited SPOTQ_PLAN_AFTER_SECONDS), http (manifests and result
            uploads for pods on SPOTQ_HTTP_ADDR, default 127.0.0.1:8080; /metrics and the dashboard
            on SPOTQ_OPS_HTTP_ADDR, default 127.0.0.1:8081), events (records
            pod, asset and image events), deadletters (records everything reaching spotq.dead in
            PostgreSQL; see `spotq dlq`) and demand (publishes demand snapshots for the
            provisioner every SPOTQ_DEMAND_INTERVAL_SECONDS, default 10).
            All run by default; --only picks some, e.g. `spotq server --only enqueue` to scale
            consumers out. The planner needs SPOTQ_SECRET (batch tokens and its signing key derive from it).
            Every setting is in the README.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("only"), help: "Comma-separated components to run: enqueue, planner, http, events, deadletters, demand (env SPOTQ_SERVER_ONLY; default all).")
    var only: String?

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.server")
        let settings = connection.settings
        let components = try settings.string(only, env: "SPOTQ_SERVER_ONLY").map { try ServerComponent.parseList($0) }
            ?? Set(ServerComponent.allCases)
        let enqueueConfiguration = try EnqueueConsumerConfiguration.from(settings)
        let planning = try PlanningSettings.resolve(settings)
        let httpConfiguration = try HTTPServerConfiguration.from(settings)
        let secret = components.contains(.planner) ? try ServerStartup.secret(settings) : ""
        let postgresConfiguration = try PostgresConfiguration(url: try connection.resolvedDatabaseURL())
        // Only the HTTP component works without RabbitMQ.
        let needsBroker = !components.isSubset(of: [.http])
        let amqpURL = needsBroker ? try connection.resolvedAMQPURL() : "amqp://unused@127.0.0.1:1/"

        let postgres = PostgresClient(configuration: postgresConfiguration, logger: logger)
        let amqp = AMQPClient(configuration: AMQPConfiguration.spotq(url: amqpURL, connectionName: "spotq server"), logger: logger)
        do {
            try await ServerStartup.checkSchema(postgres)
            if needsBroker {
                try await ServerStartup.declareTopology(amqpURL: amqpURL, logger: logger)
                try await ServerStartup.declareUnfinishedBatches(postgres: postgres, amqp: amqp, logger: logger)
            }
            let store = QueueStore(client: postgres)
            var services: [any Service] = []
            if components.contains(.enqueue) {
                services.append(EnqueueConsumer(configuration: enqueueConfiguration, amqp: amqp, store: store, logger: logger))
            }
            if components.contains(.http) {
                let probe = needsBroker ? SpotqMetrics.QueueProbe.broker(amqp: amqp, postgres: postgres) : nil
                let replayer = DeadLetterReplayer(amqp: amqp, store: DeadLetterStore(client: postgres))
                let replay = needsBroker ? OpsRoutes.Replay { id in
                    guard let entry = try await replayer.store.entry(id) else { throw DeadLetterReplayer.Failure(description: "no dead letter \(id)") }
                    try await replayer.replay(entry)
                } : nil
                let metrics = SpotqMetrics(postgres: postgres, queues: probe, logger: logger)
                services.append(SpotqHTTPServer.makePodApplication(configuration: httpConfiguration, postgres: postgres, logger: logger, metrics: metrics))
                services.append(SpotqHTTPServer.makeOpsApplication(configuration: httpConfiguration, postgres: postgres, logger: logger, metrics: metrics, replay: replay))
            }
            if components.contains(.events) {
                // The server's own user is trusted; the provisioner's too, when it has its own.
                let trusted = settings.names(env: "SPOTQ_TRUSTED_BROKER_USERS") ?? []
                services.append(EventRecorder(amqp: amqp, store: EventStore(client: postgres), trustedUsers: trusted, logger: logger))
            }
            if components.contains(.deadletters) {
                services.append(DeadLetterRecorder(amqp: amqp, store: DeadLetterStore(client: postgres), logger: logger))
            }
            if components.contains(.demand) {
                let seconds = try settings.integer(nil, env: "SPOTQ_DEMAND_INTERVAL_SECONDS", default: 10, range: 1...3_600)
                services.append(DemandPublisher(
                    amqp: amqp, store: DemandStore(client: postgres), imagesPerHour: planning.gpu.imagesPerHour,
                    interval: .seconds(seconds), logger: logger))
            }
            if components.contains(.planner) {
                let signer = WorkSignature.Signer(secret: secret)
                let adopted = try await BatchStore(client: postgres).adoptSigningKeyForUnrecordedBatches(publicKey: signer.publicKey)
                if adopted > 0 { logger.info("planner: recorded the signing key of \(adopted) batches published before keys were kept per batch") }
                services.append(AutoPlanner(
                    settings: planning, secret: secret, postgres: postgres,
                    listener: PostgresListener(configuration: postgresConfiguration, logger: logger),
                    publisher: BatchPublisher(postgres: postgres, amqp: amqp, signer: signer, logger: logger), logger: logger))
            }
            logger.info("server: starting", metadata: ["components": "\(components.map(\.rawValue).sorted().joined(separator: ","))"])
            let shutdown = ShutdownMarker()
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                // Last, so it hears of the shutdown first (the group stops services in reverse order).
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
                    + [ServiceGroupConfiguration.ServiceConfiguration(service: shutdown, successTerminationBehavior: .ignore)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            do {
                try await group.run()
            } catch is CancellationError where shutdown.began {
                // Hummingbird's quiescing occasionally fails while connections close under it
                // ("Already closed"), and the group is then cancelled: still the stop asked for.
                logger.warning("server: a component was cancelled while shutting down")
            }
            logger.info("server: stopped")
        } catch {
            await amqp.close()
            await postgres.shutdown()
            throw error
        }
        await amqp.close()
        await postgres.shutdown()
    }
}

/// Checks made once before the services start, with errors that say what to do.
enum ServerStartup {
    /// SPOTQ_SECRET, checked: batch upload tokens and the planner's work-signing key derive from it.
    static func secret(_ settings: SettingsSource) throws -> String {
        guard let secret = settings.string(nil, env: "SPOTQ_SECRET") else {
            throw ConfigurationError(message: "SPOTQ_SECRET is not set: the planner derives batch upload tokens and its work-signing key from it (e.g. `export SPOTQ_SECRET=$(openssl rand -hex 32)`)")
        }
        try BatchToken.validateSecret(secret)
        return secret
    }

    static func checkSchema(_ postgres: PostgresClient) async throws {
        guard try await Migrator.schemaIsApplied(postgres) else {
            throw ValidationError("the database has no spotq schema yet: run `spotq migrate` first")
        }
    }

    /// Declares the standard topology, retrying while RabbitMQ is starting.
    /// Declares every unfinished batch's queue and bindings again: a batch planned by an
    /// older spotq lacks the `spotq.pod.retry` binding its pods' retries need.
    static func declareUnfinishedBatches(postgres: PostgresClient, amqp: AMQPClient, logger: Logger) async throws {
        let batches = try await DemandStore(client: postgres).remaining().map(\.batchID)
        guard !batches.isEmpty else { return }
        try await amqp.connection().withChannel { channel in
            for batch in batches { try await TopologyDeclarer.declareBatch(batch, on: channel) }
        }
        logger.info("server: declared the queues of \(batches.count) unfinished batches")
    }

    static func declareTopology(amqpURL: String, logger: Logger) async throws {
        var failures = 0
        while true {
            do {
                _ = try await TopologyDeclarer.declareStandard(amqpURL: amqpURL, logger: logger)
                return
            } catch let error as AMQPError where error.code == .connectionFailed && failures < 30 {
                failures += 1
                logger.warning("server: RabbitMQ not reachable yet; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: RetryBackoff().delay(afterFailures: failures))
            }
        }
    }
}

extension SpotqMetrics.QueueProbe {
    /// Reads, at each scrape, the depths of spotq's standard queues and of the unfinished
    /// batches' queues from the broker.
    static func broker(amqp: AMQPClient, postgres: PostgresClient) -> Self {
        Self { await depths(amqp: amqp, postgres: postgres) }
    }

    static func depths(amqp: AMQPClient, postgres: PostgresClient) async -> [SpotqMetrics.QueueDepth] {
        let remaining = (try? await DemandStore(client: postgres).remaining()) ?? []
        let names = QueueInspector.spotqQueues(batches: remaining.map(\.batchID))
        guard let connection = try? await amqp.connection(), let infos = try? await QueueInspector.look(connection, at: names) else { return [] }
        let depths = names.compactMap { name -> SpotqMetrics.QueueDepth? in
            guard let info = infos[name] else { return nil }
            let batch = remaining.first { BrokerNames.batchQueue($0.batchID) == name }
            return SpotqMetrics.QueueDepth(
                queue: name, ready: info.messageCount, consumers: info.consumerCount,
                unacknowledged: batch.map { DemandSnapshot.unacknowledged(remainingItems: $0.remainingItems, ready: info.messageCount) })
        }
        return depths
    }
}

/// A service that only notes that a graceful shutdown began, so the server can tell the stop
/// it was asked for from a failure.
final class ShutdownMarker: Service, @unchecked Sendable {
    private let lock = NSLock()
    private var started = false

    var began: Bool { lock.withLock { started } }

    func run() async throws {
        try? await gracefulShutdown()
        lock.withLock { started = true }
    }
}
