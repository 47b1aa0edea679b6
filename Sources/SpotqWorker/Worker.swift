import AMQPClient
import Foundation
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore

/// `spotq worker`: what runs on every pod. GPU check, manifest, models downloaded in the
/// manifest's order (resumable, verified, announced with `asset.ready`), then one work
/// message at a time: ComfyUI generates, the bundle is uploaded with retries, and the
/// message is acked only after the server answered 2xx. See README, "The pod worker".
///
/// Its parts run as services of one `ServiceGroup`, which turns SIGTERM and SIGINT into a
/// graceful shutdown: the heartbeat, the spot-notice poller (when configured), the model
/// downloads, and the batch run (``BatchRun``: the work loop on the consumer shell), shut
/// down in that order's reverse.
public struct Worker: Sendable {
    public let configuration: WorkerConfiguration
    public let logger: Logger

    public init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// How the worker ended; the process exit code.
    public enum Exit: Int32, Sendable {
        /// The batch is finished, or a termination notice was honoured.
        case finished = 0
        case gpuFailed = 3
        case refused = 4
        /// The pod is faulted (ComfyUI unreachable or failing for reasons not the items', or
        /// not seeing the models): work handed back, `pod.faulted` reported, to be replaced.
        case podFaulted = 5
    }

    /// Runs until the batch is finished, a termination notice is honoured (SIGTERM, SIGINT,
    /// a spot notice), the GPU check fails, the server refuses the pod or the pod is faulted; cancelling the
    /// calling task stops it at once (its deliveries go back to the queue).
    public func run() async throws -> Exit {
        let clients = try WorkerClients(logger: logger)
        defer { clients.shutdown() }
        let amqp = AMQPClient(configuration: try brokerConfiguration(), logger: logger)
        do {
            let exit = try await run(clients: clients, amqp: amqp)
            await amqp.close()
            return exit
        } catch {
            await amqp.close()
            throw error
        }
    }

    /// The broker connection's settings; a CA sent as PEM text is written to the workspace
    /// (a public certificate, not a secret) for rabbitmq-c, which reads CAs from files only.
    func brokerConfiguration() throws -> AMQPConfiguration {
        var amqp = AMQPConfiguration.spotq(url: configuration.amqpURL, connectionName: "spotq worker \(configuration.podID)")
        if let pem = configuration.amqpCAPEM {
            let folder = configuration.workspace.appendingPathComponent(".spotq", isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let file = folder.appendingPathComponent("broker-ca.pem")
            try Data(pem.utf8).write(to: file, options: .atomic)
            amqp.tls.caFile = file.path
        }
        if (try? amqp.endpoint())?.crossesNetworkInClear == true {
            logger.warning("worker: SPOTQ_AMQP_URL is plain amqp:// to another host: the broker password and every message cross the network in clear; use amqps://")
        }
        return amqp
    }

    func run(clients: WorkerClients, amqp: AMQPClient) async throws -> Exit {
        let events = EventPublisher(
            amqp: amqp, exchange: configuration.eventsExchange, batchID: configuration.batchID,
            pod: SpotqEvent.Pod(provider: configuration.provider, id: configuration.podID), logger: logger)
        let notice = TerminationNotice()
        let downloads = Handoff<AssetSetup.Plan>()
        let exit = Locked<Exit?>(nil)
        var services = [ServiceGroupConfiguration.ServiceConfiguration(service: Heartbeat(events: events, interval: configuration.heartbeatInterval))]
        if let base = configuration.spotMetadataURL {
            var poller = SpotNoticePoller(baseURL: base, http: clients.metadata, notice: notice, logger: logger)
            poller.interval = configuration.spotPollInterval
            services.append(.init(service: poller))
        }
        services.append(.init(service: AssetDownloads(setup: downloads, notice: notice)))
        let batch = BatchRun(
            configuration: configuration, clients: clients, amqp: amqp, events: events, notice: notice,
            downloads: downloads, exit: exit, logger: logger)
        services.append(.init(service: batch, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        guard let result = exit.withLock({ $0 }) else { throw CancellationError() }
        return result
    }
}
