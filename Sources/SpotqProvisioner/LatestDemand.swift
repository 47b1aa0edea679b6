import AMQPClient
import Foundation
import Logging
import SpotqBroker
import SpotqCore

/// Keeps the newest demand snapshot from `spotq.demand` (which itself holds only one):
/// each delivery is decoded, kept if newer, and acked, so old snapshots never pile up.
/// Only snapshots the server published count: the broker-validated `user_id` must be one of
/// ``publishers`` (pods' users cannot publish there, and this holds even if one could).
public actor LatestDemand {
    private(set) var latest: DemandSnapshot?
    /// Broker users whose snapshots are accepted (SPOTQ_DEMAND_PUBLISHERS); nil: the
    /// provisioner's own broker user, for deployments where the server shares it.
    public let publishers: Set<String>?
    let logger: Logger

    public init(publishers: Set<String>? = nil, logger: Logger) {
        self.publishers = publishers
        self.logger = logger
    }

    /// Offers a delivery's body if `publisher` (its validated `user_id`) is one of `accepted`.
    public func offer(_ body: [UInt8], from publisher: String?, accepted: Set<String>, now: Date = Date()) {
        guard let publisher, accepted.contains(publisher) else {
            logger.warning("provisioner: ignored a demand snapshot not published by the server", metadata: [
                "user_id": "\(publisher ?? "none")", "accepted": "\(accepted.sorted().joined(separator: ","))",
            ])
            return
        }
        offer(body, now: now)
    }

    /// How far ahead of this clock a snapshot's `taken_at` may be (clocks differ a little).
    /// A snapshot from further in the future would outrank every genuine one after it.
    public static let allowedClockSkew: TimeInterval = 60

    public func offer(_ body: [UInt8], now: Date = Date()) {
        do {
            offer(try DemandSnapshot.decoder.decode(DemandSnapshot.self, from: Data(body)), now: now)
        } catch {
            logger.warning("provisioner: ignored a demand snapshot it cannot read", metadata: ["error": "\(error)"])
        }
    }

    /// Keeps `snapshot` if it is the newest so far and not from the future.
    public func offer(_ snapshot: DemandSnapshot, now: Date = Date()) {
        guard snapshot.takenAt.timeIntervalSince(now) <= Self.allowedClockSkew else {
            logger.warning("provisioner: ignored a demand snapshot taken in the future (forged, or a clock far off)", metadata: [
                "taken_at": "\(snapshot.takenAt)", "now": "\(now)",
            ])
            return
        }
        if latest == nil || snapshot.takenAt >= latest!.takenAt { latest = snapshot }
    }

    /// The newest snapshot if it is younger than `maxAge`; a stale one is dropped.
    public func fresh(maxAge: TimeInterval, now: Date) -> DemandSnapshot? {
        guard let latest else { return nil }
        guard now.timeIntervalSince(latest.takenAt) <= maxAge else {
            logger.warning("provisioner: the newest demand snapshot is stale; not sizing the fleet on it", metadata: ["taken_at": "\(latest.takenAt)"])
            self.latest = nil
            return nil
        }
        return latest
    }
}

extension LatestDemand {
    /// The consumer of `spotq.demand`: a ``DemandReader`` on the consumer shell, reconnecting
    /// when the broker goes away.
    public nonisolated func consumer(amqp: AMQPClient) -> QueueConsumer<DemandReader> {
        var configuration = QueueConsumerConfiguration(queue: BrokerNames.demandQueue, name: "provisioner: demand queue")
        configuration.prefetch = 10
        configuration.backoff = RetryBackoff()
        let accepted = publishers ?? Set([amqp.userName].compactMap { $0 })
        return QueueConsumer(configuration: configuration, amqp: amqp, handler: DemandReader(demand: self, publishers: accepted), logger: logger)
    }
}

/// The handler reading `spotq.demand`: each snapshot is offered to ``LatestDemand`` (kept if
/// newest and from one of `publishers`, ignored with a warning otherwise) and acked, so old
/// snapshots never pile up.
public struct DemandReader: QueueHandler {
    public let demand: LatestDemand
    public let publishers: Set<String>

    public func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        for delivery in deliveries { await demand.offer(delivery.body, from: delivery.properties.userID, accepted: publishers) }
        return deliveries.map { _ in .ack }
    }
}
