import AMQPClient
import Foundation
import Logging
import SpotqCore

/// Keeps the newest demand snapshot from `spotq.demand` (which itself holds only one):
/// each delivery is decoded, kept if newer, and acked, so old snapshots never pile up.
public actor LatestDemand {
    private(set) var latest: DemandSnapshot?
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func offer(_ body: [UInt8]) {
        do {
            let snapshot = try DemandSnapshot.decoder.decode(DemandSnapshot.self, from: Data(body))
            if latest == nil || snapshot.takenAt >= latest!.takenAt { latest = snapshot }
        } catch {
            logger.warning("provisioner: ignored a demand snapshot it cannot read", metadata: ["error": "\(error)"])
        }
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

    /// Consumes `spotq.demand` until cancelled, reconnecting when the broker goes away.
    public func consume(amqp: AMQPClient) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let channel = try await amqp.connection().openChannel()
                try await channel.qos(prefetchCount: 10)
                for try await delivery in try await channel.consume(queue: BrokerNames.demandQueue) {
                    offer(delivery.body)
                    try await delivery.ack()
                    failures = 0
                }
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                logger.warning("provisioner: lost the demand queue; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: RetryBackoff().delay(afterFailures: failures))
            }
        }
    }
}

extension LatestDemand {
    /// Takes a snapshot directly (a provisioner run without a broker, and tests).
    public func offer(_ snapshot: DemandSnapshot) {
        if latest == nil || snapshot.takenAt >= latest!.takenAt { latest = snapshot }
    }
}
