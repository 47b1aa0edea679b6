import AMQPClient
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Consumes `spotq.events.recorder` (pod, asset and image events from `spotq.events`) into
/// `pod_events`, acking each after its commit. An event that can never be recorded (not
/// JSON, unknown batch, bad fields) is dead-lettered with its reason; while PostgreSQL is
/// unreachable the delivery is held and retried, never acked, for up to `holdLimit`; then it
/// goes back to the queue and the recorder waits for PostgreSQL before consuming again.
/// A handler (``EventHandler``) on the consumer shell (``QueueConsumer``).
public struct EventRecorder: Service {
    public var queue = BrokerNames.eventsRecorderQueue
    public var deadLetterExchange = BrokerNames.deadLetterExchange
    public let amqp: AMQPClient
    public let store: EventStore
    public let logger: Logger
    public var retryBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))
    /// How long an event is held unacknowledged while PostgreSQL is unreachable.
    public var holdLimit: Duration = .seconds(300)

    public init(amqp: AMQPClient, store: EventStore, logger: Logger) {
        self.amqp = amqp
        self.store = store
        self.logger = logger
    }

    /// Consumes until graceful shutdown (the event in hand is finished first) or cancellation.
    public func run() async throws {
        try await shell.run()
    }

    /// Runs until the task is cancelled.
    public func recordForever() async throws {
        try await shell.consumeUntilCancelled()
    }

    var shell: QueueConsumer<EventHandler> {
        var configuration = QueueConsumerConfiguration(queue: queue, name: "events")
        configuration.prefetch = 50
        configuration.deadLetterExchange = deadLetterExchange
        configuration.holdLimit = holdLimit
        configuration.backoff = retryBackoff
        let readiness = PostgresReadiness(store: QueueStore(client: store.client), backoff: retryBackoff, name: "events", logger: logger)
        return QueueConsumer(configuration: configuration, amqp: amqp, handler: EventHandler(store: store, readiness: readiness, logger: logger), logger: logger)
    }
}
