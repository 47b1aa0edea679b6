import AMQPClient
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Consumes `spotq.enqueue`: validates each request, inserts it into
/// `image_generation_queue`, and acks only after the transaction committed. A handler
/// (``EnqueueHandler``) on the consumer shell (``QueueConsumer``), in batches.
///
/// - A duplicate `request_id` is acked without a second row.
/// - A refused message (not JSON, unknown version, bad fields, unknown asset, too large) is
///   published to `spotq.dlx` with its reason in `x-spotq-reason`, logged, then acked: it
///   never loops and never holds up the valid messages behind it. A batch's dead letters are
///   all confirmed before any of it is acked.
/// - While PostgreSQL is unreachable nothing is acked. Deliveries in hand are held and the
///   insert retried for up to `holdLimit`; then they go back to the queue and the consumer
///   waits for PostgreSQL before consuming again.
/// - A message with `reply_to` gets an ``EnqueueReply`` there, with its `correlation_id`,
///   after it was acked.
public struct EnqueueConsumer: Service {
    public let configuration: EnqueueConsumerConfiguration
    public let amqp: AMQPClient
    public let store: QueueStore
    public let logger: Logger
    /// Called after each batch is settled (acked), with its outcomes; the bench counts with it.
    public var onSettled: @Sendable ([EnqueueOutcome]) -> Void = { _ in }

    public init(configuration: EnqueueConsumerConfiguration, amqp: AMQPClient, store: QueueStore, logger: Logger) {
        self.configuration = configuration
        self.amqp = amqp
        self.store = store
        self.logger = logger
    }

    /// Consumes until graceful shutdown (the batch in hand is finished first) or cancellation.
    public func run() async throws {
        try await shell.run()
    }

    /// Consumes until the task is cancelled, reconnecting and waiting out outages.
    public func consumeForever() async throws {
        try await shell.consumeUntilCancelled()
    }

    /// The consumer shell this runs on.
    var shell: QueueConsumer<some QueueHandler> {
        var shell = QueueConsumerConfiguration(queue: configuration.queue, name: "enqueue")
        shell.prefetch = UInt16(configuration.prefetch)
        shell.batchSize = configuration.batchSize
        shell.deadLetterExchange = configuration.deadLetterExchange
        shell.holdLimit = configuration.holdLimit
        shell.backoff = configuration.retryBackoff
        let handler = EnqueueHandler(
            store: store, validator: EnqueueMessageValidator(maxBytes: configuration.maxMessageBytes),
            backoff: configuration.retryBackoff, logger: logger, onSettled: onSettled)
        return QueueConsumer(configuration: shell, amqp: amqp, handler: handler, logger: logger)
    }
}
