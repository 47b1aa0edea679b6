import AMQPClient
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// A queue recorded into PostgreSQL by a handler on the consumer shell (``QueueConsumer``):
/// each message is acked only after its commit; while PostgreSQL is unreachable the message
/// is held unacknowledged and retried for up to the hold limit, then handed back, and the
/// recorder waits for PostgreSQL before consuming again. ``EventRecorder`` and
/// ``DeadLetterRecorder`` are the two.
public struct Recorder<Handler: QueueHandler>: Service {
    /// Queue, prefetch (50), hold limit (300 s), backoff and the name its log lines start with.
    public var configuration: QueueConsumerConfiguration
    public let amqp: AMQPClient
    public let logger: Logger
    let postgres: PostgresClient
    let makeHandler: @Sendable (PostgresReadiness) -> Handler

    init(queue: String, name: String, amqp: AMQPClient, postgres: PostgresClient, logger: Logger, makeHandler: @escaping @Sendable (PostgresReadiness) -> Handler) {
        var configuration = QueueConsumerConfiguration(queue: queue, name: name)
        configuration.prefetch = 50
        configuration.holdLimit = .seconds(300)
        configuration.backoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))
        self.configuration = configuration
        self.amqp = amqp
        self.postgres = postgres
        self.logger = logger
        self.makeHandler = makeHandler
    }

    /// Consumes until graceful shutdown (the message in hand is finished first) or cancellation.
    public func run() async throws {
        try await shell.run()
    }

    /// Runs until the task is cancelled.
    public func recordForever() async throws {
        try await shell.consumeUntilCancelled()
    }

    var shell: QueueConsumer<Handler> {
        let readiness = PostgresReadiness(store: QueueStore(client: postgres), backoff: configuration.backoff, name: configuration.name, logger: logger)
        return QueueConsumer(configuration: configuration, amqp: amqp, handler: makeHandler(readiness), logger: logger)
    }
}

/// Consumes `spotq.events.recorder` (pod, asset and image events from `spotq.events`) into
/// `pod_events`. An event that can never be recorded (not JSON, an unknown kind, batch or
/// field) is dead-lettered with its reason.
public typealias EventRecorder = Recorder<EventHandler>

extension Recorder where Handler == EventHandler {
    /// - Parameter trustedUsers: broker users besides the recorder's own whose events are
    ///   spotq's (SPOTQ_TRUSTED_BROKER_USERS): the provisioner's, when it has its own.
    public init(amqp: AMQPClient, store: EventStore, trustedUsers: Set<String> = [], logger: Logger) {
        let trusted = trustedUsers.union(amqp.userName.map { [$0] } ?? [])
        self.init(queue: BrokerNames.eventsRecorderQueue, name: "events", amqp: amqp, postgres: store.client, logger: logger) {
            EventHandler(store: store, readiness: $0, trustedUsers: trusted, logger: logger)
        }
    }
}

/// Consumes `spotq.dead` into `dead_letters`; a dead letter is never refused.
public typealias DeadLetterRecorder = Recorder<DeadLetterHandler>

extension Recorder where Handler == DeadLetterHandler {
    public init(amqp: AMQPClient, store: DeadLetterStore, logger: Logger) {
        self.init(queue: BrokerNames.deadLetterQueue, name: "dead letters", amqp: amqp, postgres: store.client, logger: logger) {
            DeadLetterHandler(store: store, readiness: $0, logger: logger)
        }
    }
}
