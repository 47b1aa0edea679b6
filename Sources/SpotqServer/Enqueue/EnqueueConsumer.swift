import AMQPClient
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Consumes `spotq.enqueue`: validates each request, inserts it into
/// `image_generation_queue`, and acks only after the transaction committed.
///
/// - A duplicate `request_id` is acked without a second row.
/// - A refused message (not JSON, unknown version, bad fields, unknown asset, too large) is
///   published to `spotq.dlx` with its reason in `x-spotq-reason`, logged, then acked: it
///   never loops and never holds up the valid messages behind it.
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

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await consumeForever()
        }
    }

    /// PostgreSQL stayed unreachable for the whole hold limit.
    struct DatabaseUnavailable: Error, CustomStringConvertible {
        var cause: PostgresError
        var description: String { "PostgreSQL unavailable: \(cause)" }
    }

    /// Consumes until the task is cancelled, reconnecting and waiting out outages.
    public func consumeForever() async throws {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await waitForDatabase()
                try await consumeUntilFailure { failures = 0 }
            } catch is CancellationError {
                return
            } catch let error as DatabaseUnavailable {
                logger.warning("enqueue: handed held messages back to the queue; waiting for PostgreSQL", metadata: ["error": "\(error.cause)"])
            } catch {
                if Task.isCancelled { return }
                failures += 1
                let delay = configuration.retryBackoff.delay(afterFailures: failures)
                logger.warning("enqueue: consumer stopped; starting again", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Returns once PostgreSQL answers; consuming before that would only hold messages.
    func waitForDatabase() async throws {
        var failures = 0
        var lastLog = ContinuousClock.now - .seconds(3600)
        while true {
            do {
                _ = try await store.client.query("SELECT 1", timeout: .seconds(5))
                if failures > 0 { logger.info("enqueue: PostgreSQL is back; consuming again") }
                return
            } catch let error as PostgresError where !QueueStore.isRequestFault(error) {
                failures += 1
                if ContinuousClock.now - lastLog > .seconds(30) {
                    logger.warning("enqueue: waiting for PostgreSQL; not consuming meanwhile", metadata: ["error": "\(error)"])
                    lastLog = .now
                }
                try await Task.sleep(for: configuration.retryBackoff.delay(afterFailures: failures))
            }
        }
    }

    func consumeUntilFailure(onConsuming: () -> Void) async throws {
        let connection = try await amqp.connection()
        let channel = try await connection.openChannel()
        do {
            try await channel.qos(prefetchCount: UInt16(configuration.prefetch))
            let consumer = try await channel.consume(queue: configuration.queue)
            logger.info("enqueue: consuming", metadata: ["queue": "\(configuration.queue)", "consumer": "\(consumer.tag)"])
            onConsuming()
            var deliveries = consumer.makeAsyncIterator()
            while let batch = try await deliveries.nextBatch(max: configuration.batchSize) {
                try await handle(batch, on: channel)
            }
            try? await channel.close()
        } catch {
            // Closing the channel hands every unacknowledged delivery back to the queue.
            try? await channel.close()
            throw error
        }
    }

    /// Validates, inserts, dead-letters, replies and acks one batch of deliveries.
    func handle(_ deliveries: [AMQPDelivery], on channel: AMQPChannel) async throws {
        let validator = EnqueueMessageValidator(maxBytes: configuration.maxMessageBytes)
        var outcomes = [EnqueueOutcome?](repeating: nil, count: deliveries.count)
        var requestIDs = [String?](repeating: nil, count: deliveries.count)
        var valid: [(index: Int, message: EnqueueMessage)] = []
        for (index, delivery) in deliveries.enumerated() {
            switch validator.validate(
                body: delivery.body, contentType: delivery.properties.contentType,
                contentEncoding: delivery.properties.contentEncoding)
            {
            case .success(let message):
                valid.append((index, message))
                requestIDs[index] = message.requestID
            case .failure(let rejection):
                outcomes[index] = .rejected(reason: rejection.reason)
                requestIDs[index] = rejection.requestID
            }
        }
        if !valid.isEmpty {
            let inserted = try await insertHoldingDeliveries(valid.map(\.message))
            for (entry, outcome) in zip(valid, inserted) { outcomes[entry.index] = outcome }
        }
        let settled = outcomes.map { $0! }

        // Dead letters first: a refused message is acked only once its copy is safe.
        var deadLetters: [AMQPOutgoingMessage] = []
        for (index, outcome) in settled.enumerated() {
            guard case .rejected(let reason) = outcome else { continue }
            logger.warning("enqueue: refused a message; dead-lettered", metadata: [
                "request_id": "\(requestIDs[index] ?? "-")", "reason": "\(reason)",
                "message_id": "\(deliveries[index].properties.messageID ?? "-")",
            ])
            deadLetters.append(DeadLetter.message(
                for: deliveries[index], queue: configuration.queue, exchange: configuration.deadLetterExchange, reason: reason))
        }
        if !deadLetters.isEmpty {
            let outcome = try await channel.publishBatch(deadLetters)
            guard outcome.allConfirmed else {
                throw AMQPError(code: .publishNacked, message: "the broker did not confirm \(outcome.count - outcome.confirmedCount) dead letters; their messages stay queued")
            }
        }

        // Ack, then answer: an answer means the broker already forgot the request. (A crash
        // in between loses the answer, never the request: it is committed.)
        for delivery in deliveries { try await delivery.ack() }
        await sendReplies(for: deliveries, outcomes: settled, requestIDs: requestIDs, on: channel)

        let accepted = settled.reduce(0) { if case .accepted = $1 { $0 + 1 } else { $0 } }
        logger.debug("enqueue: batch committed", metadata: [
            "messages": "\(deliveries.count)", "accepted": "\(accepted)", "refused": "\(deadLetters.count)",
        ])
        onSettled(settled)
    }

    /// Inserts, retrying while PostgreSQL is unreachable, for at most the hold limit.
    func insertHoldingDeliveries(_ messages: [EnqueueMessage]) async throws -> [EnqueueOutcome] {
        let started = ContinuousClock.now
        var failures = 0
        while true {
            do {
                let outcomes = try await store.insert(messages)
                if failures > 0 { logger.info("enqueue: PostgreSQL answered again; held messages written") }
                return outcomes
            } catch let error as PostgresError {
                failures += 1
                if failures == 1 {
                    logger.warning("enqueue: cannot write to PostgreSQL; holding \(messages.count) messages unacknowledged and retrying", metadata: ["error": "\(error)"])
                }
                guard ContinuousClock.now - started < configuration.holdLimit else { throw DatabaseUnavailable(cause: error) }
                try await Task.sleep(for: configuration.retryBackoff.delay(afterFailures: failures))
            }
        }
    }

    /// Best effort: a reply queue that is gone does not keep a request from being acked.
    func sendReplies(for deliveries: [AMQPDelivery], outcomes: [EnqueueOutcome], requestIDs: [String?], on channel: AMQPChannel) async {
        var replies: [AMQPOutgoingMessage] = []
        for (index, delivery) in deliveries.enumerated() {
            guard let replyTo = delivery.properties.replyTo, !replyTo.isEmpty else { continue }
            let reply = EnqueueReply(requestID: requestIDs[index], outcome: outcomes[index])
            replies.append(AMQPOutgoingMessage(
                exchange: "", routingKey: replyTo, body: reply.encoded(),
                properties: AMQPMessageProperties(
                    contentType: EnqueueMessage.contentType, deliveryMode: .transient,
                    correlationID: delivery.properties.correlationID)))
        }
        guard !replies.isEmpty else { return }
        do {
            _ = try await channel.publishBatch(replies)
        } catch {
            logger.warning("enqueue: could not send replies", metadata: ["error": "\(error)", "replies": "\(replies.count)"])
        }
    }
}
