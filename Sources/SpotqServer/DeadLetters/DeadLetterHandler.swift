import AMQPClient
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// The dead-letter recorder's handler: one dead letter at a time into `dead_letters`. A
/// dead letter is never refused (whatever it holds is recorded), so the only decisions are
/// ack and hold. One a pod sent through `spotq.pod.dead` is recorded with its own batch (its
/// routing key, which the pod's topic permission holds to its batch) as its origin
/// (``DeadLetter/sentByPod(batchID:)``), whatever its headers claim.
public struct DeadLetterHandler: QueueHandler {
    let store: DeadLetterStore
    let readiness: PostgresReadiness
    let logger: Logger

    public func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        var decisions: [DeliveryDecision] = []
        for delivery in deliveries {
            var record = DeadLetter(delivery: delivery)
            do {
                if delivery.exchange == BrokerNames.podDeadLetterExchange {
                    // A pod may publish there only with its own batch's key (its topic permission):
                    // the key the broker let through says whose batch it is, user_id or not.
                    record = record.sentByPod(batchID: WorkItemReference.batchID(ofQueue: delivery.routingKey))
                }
                let id = try await store.record(record)
                logger.info("dead letters: recorded", metadata: [
                    "id": "\(id)", "reason": "\(record.reason.prefix(200))", "origin": "\(record.originQueue ?? "?")", "by": "\(record.deadLetteredBy ?? "-")",
                ])
                decisions.append(.ack)
            } catch {
                decisions.append(.hold(reason: "cannot write to PostgreSQL: \(error)"))
            }
        }
        return decisions
    }

    public func ready() async throws {
        try await readiness.wait()
    }
}
