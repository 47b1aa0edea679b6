import AMQPClient
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// The dead-letter recorder's handler: one dead letter at a time into `dead_letters`. A
/// dead letter is never refused (whatever it holds is recorded), so the only decisions are
/// ack and hold.
public struct DeadLetterHandler: QueueHandler {
    let store: DeadLetterStore
    let readiness: PostgresReadiness
    let logger: Logger

    public func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        var decisions: [DeliveryDecision] = []
        for delivery in deliveries {
            let record = DeadLetter(delivery: delivery)
            do {
                let id = try await store.record(record)
                logger.info("dead letters: recorded", metadata: ["id": "\(id)", "reason": "\(record.reason.prefix(200))", "origin": "\(record.originQueue ?? "?")"])
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
