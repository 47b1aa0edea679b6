import AMQPClient
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Consumes `spotq.dead` into `dead_letters`, acking each message only after its row is
/// committed; while PostgreSQL is down the message is held and retried, never dropped, for up
/// to `holdLimit`; then it goes back to the queue and the recorder waits for PostgreSQL.
/// A handler (``DeadLetterHandler``) on the consumer shell (``QueueConsumer``).
public struct DeadLetterRecorder: Service {
    public var queue = BrokerNames.deadLetterQueue
    public let amqp: AMQPClient
    public let store: DeadLetterStore
    public let logger: Logger
    public var retryBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))
    /// How long a message is held unacknowledged while PostgreSQL is unreachable.
    public var holdLimit: Duration = .seconds(300)

    public init(amqp: AMQPClient, store: DeadLetterStore, logger: Logger) {
        self.amqp = amqp
        self.store = store
        self.logger = logger
    }

    /// Consumes until graceful shutdown (the message in hand is finished first) or cancellation.
    public func run() async throws {
        try await shell.run()
    }

    /// Runs until the task is cancelled.
    public func recordForever() async throws {
        try await shell.consumeUntilCancelled()
    }

    var shell: QueueConsumer<DeadLetterHandler> {
        var configuration = QueueConsumerConfiguration(queue: queue, name: "dead letters")
        configuration.prefetch = 50
        configuration.holdLimit = holdLimit
        configuration.backoff = retryBackoff
        let readiness = PostgresReadiness(store: QueueStore(client: store.client), backoff: retryBackoff, name: "dead letters", logger: logger)
        return QueueConsumer(configuration: configuration, amqp: amqp, handler: DeadLetterHandler(store: store, readiness: readiness, logger: logger), logger: logger)
    }
}

/// The dead-letter recorder's handler: one dead letter at a time into `dead_letters`. A
/// dead letter is never refused (whatever it holds is recorded), so the only decisions are
/// ack and hold.
struct DeadLetterHandler: QueueHandler {
    let store: DeadLetterStore
    let readiness: PostgresReadiness
    let logger: Logger

    func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
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

    func ready() async throws {
        try await readiness.wait()
    }
}
