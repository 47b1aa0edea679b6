import AMQPClient
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Consumes `spotq.dead` into `dead_letters`, acking each message only after its row is
/// committed; while PostgreSQL is down the message is held and retried, never dropped.
public struct DeadLetterRecorder: Service {
    public var queue = BrokerNames.deadLetterQueue
    public let amqp: AMQPClient
    public let store: DeadLetterStore
    public let logger: Logger
    public var retryBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))

    public init(amqp: AMQPClient, store: DeadLetterStore, logger: Logger) {
        self.amqp = amqp
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await recordForever() }
    }

    /// Runs until the task is cancelled.
    public func recordForever() async throws {
        try await ConsumerLoop.run(amqp: amqp, queue: queue, prefetch: 50, backoff: retryBackoff, logger: logger, name: "dead letters") { delivery, _ in
            try await record(delivery)
        }
    }

    func record(_ delivery: AMQPDelivery) async throws {
        let record = DeadLetterRecord.from(body: delivery.body, properties: delivery.properties)
        var failures = 0
        while true {
            do {
                let id = try await store.record(record)
                logger.info("dead letters: recorded", metadata: ["id": "\(id)", "reason": "\(record.reason.prefix(200))", "origin": "\(record.originQueue ?? "?")"])
                return try await delivery.ack()
            } catch let error as PostgresError {
                failures += 1
                if failures == 1 { logger.warning("dead letters: cannot write to PostgreSQL; holding the message and retrying", metadata: ["error": "\(error)"]) }
                try await Task.sleep(for: retryBackoff.delay(afterFailures: failures))
            }
        }
    }
}

/// Republishes dead letters to where they came from, with a publisher confirm, and records it.
public struct DeadLetterReplayer: Sendable {
    public let amqp: AMQPClient
    public let store: DeadLetterStore

    public init(amqp: AMQPClient, store: DeadLetterStore) {
        self.amqp = amqp
        self.store = store
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Replays one entry; throws ``Failure`` saying why not.
    public func replay(_ entry: DeadLetterStore.Entry) async throws {
        guard let exchange = entry.originExchange, let routingKey = entry.originRoutingKey else {
            throw Failure(description: "dead letter \(entry.id) has no recorded origin; it cannot be sent back")
        }
        let message = DeadLetterRecord.replay(
            id: entry.id, body: entry.body, propertiesJSON: entry.propertiesJSON, headersJSON: entry.headersJSON, exchange: exchange, routingKey: routingKey)
        let channel = try await amqp.connection().openChannel()
        defer { Task { try? await channel.close() } }
        do {
            try await channel.publish(message)
        } catch {
            throw Failure(description: "dead letter \(entry.id) could not be replayed to exchange '\(exchange)' with routing key '\(routingKey)': \(error)")
        }
        try await store.replayed(entry)
    }
}
