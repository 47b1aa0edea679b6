import AMQPClient
import Foundation
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Every interval: settles finished batches, then publishes a demand snapshot
/// (`metrics.demand` on `spotq.events`): per
/// unfinished batch, ready and unacknowledged messages, consumers, remaining work hours and
/// payload; pending items by checkpoint. `spotq.demand` keeps only the newest for the
/// provisioner.
public struct DemandPublisher: Service {
    public let amqp: AMQPClient
    public let store: DemandStore
    /// Images per GPU-hour, to turn remaining items into work hours.
    public let imagesPerHour: Double
    public var interval: Duration = .seconds(10)
    public let logger: Logger

    public init(amqp: AMQPClient, store: DemandStore, imagesPerHour: Double, interval: Duration = .seconds(10), logger: Logger) {
        self.amqp = amqp
        self.store = store
        self.imagesPerHour = imagesPerHour
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await settleFinishedBatches()
                    try await publishOnce()
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("demand: could not publish a snapshot; trying again", metadata: ["error": "\(error)"])
                }
                // A graceful shutdown cancels the sleep: that ends the loop, not in an error.
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Marks batches whose items are all finished done (or failed, when none was stored):
    /// its own step, so reading demand (here, `/metrics`, `spotq queues`) never changes state.
    public func settleFinishedBatches() async throws {
        for (batch, status) in try await BatchStore(client: store.client).settleFinished() {
            logger.info("demand: batch \(batch) settled", metadata: ["status": "\(status)"])
        }
    }

    /// Takes and publishes one snapshot; returns it.
    @discardableResult
    public func publishOnce(now: Date = Date()) async throws -> DemandSnapshot {
        let remaining = try await store.remaining()
        let unplanned = try await store.unplanned()
        var batches: [DemandSnapshot.BatchDemand] = []
        let connection = try await amqp.connection()
        // A batch queue not declared yet (its batch is still being published) counts zero.
        let infos = try await QueueInspector.look(connection, at: remaining.map { BrokerNames.batchQueue($0.batchID) })
        for batch in remaining {
            let info = infos[BrokerNames.batchQueue(batch.batchID)]
            let (ready, consumers) = (info?.messageCount ?? 0, info?.consumerCount ?? 0)
            batches.append(DemandSnapshot.BatchDemand(
                batchID: batch.batchID, ready: ready,
                unacknowledged: DemandSnapshot.unacknowledged(remainingItems: batch.remainingItems, ready: ready), consumers: consumers,
                remainingItems: batch.remainingItems, remainingWorkHours: Double(batch.remainingItems) / imagesPerHour, payloadBytes: batch.payloadBytes))
        }
        let snapshot = DemandSnapshot(takenAt: now, batches: batches, unplanned: unplanned)
        do {
            try await store.recordSamples(snapshot)
        } catch {
            logger.warning("demand: could not record queue samples", metadata: ["error": "\(error)"])
        }
        let channel = try await connection.openChannel()
        defer { Task { try? await channel.close() } }
        try await channel.publish(
            exchange: BrokerNames.eventsExchange, routingKey: BrokerNames.demandRoutingKey,
            body: Array(try DemandSnapshot.encoder.encode(snapshot)), properties: AMQPMessageProperties(contentType: "application/json"))
        return snapshot
    }
}
