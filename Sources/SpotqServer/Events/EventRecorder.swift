import AMQPClient
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// Consumes `spotq.events.recorder` (pod, asset and image events from `spotq.events`) into
/// `pod_events`, acking each after its commit. An event that can never be recorded (not
/// JSON, unknown batch, bad fields) is dead-lettered with its reason; while PostgreSQL is
/// unreachable the delivery is held and retried, never acked.
public struct EventRecorder: Service {
    public var queue = BrokerNames.eventsRecorderQueue
    public var deadLetterExchange = BrokerNames.deadLetterExchange
    public let amqp: AMQPClient
    public let store: EventStore
    public let logger: Logger
    public var retryBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(5))

    public init(amqp: AMQPClient, store: EventStore, logger: Logger) {
        self.amqp = amqp
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await recordForever() }
    }

    /// Runs until the task is cancelled.
    public func recordForever() async throws {
        try await ConsumerLoop.run(amqp: amqp, queue: queue, prefetch: 50, backoff: retryBackoff, logger: logger, name: "events") { delivery, channel in
            try await handle(delivery, on: channel)
        }
    }

    func handle(_ delivery: AMQPDelivery, on channel: AMQPChannel) async throws {
        let event: SpotqEvent
        do {
            event = try SpotqEvent.decoder.decode(SpotqEvent.self, from: Data(delivery.body))
            guard event.version == 1 else { throw EventStore.Rejected(description: "unknown event version \(event.version)") }
        } catch {
            return try await deadLetter(delivery, reason: "not a version-1 spotq event: \(error)", on: channel)
        }
        var failures = 0
        while true {
            do {
                try await store.record(event)
                return try await delivery.ack()
            } catch let rejected as EventStore.Rejected {
                return try await deadLetter(delivery, reason: rejected.description, on: channel)
            } catch let error as PostgresError {
                // Not the event's fault: hold it and try again.
                failures += 1
                if failures == 1 { logger.warning("events: cannot write to PostgreSQL; holding the event and retrying", metadata: ["error": "\(error)"]) }
                try await Task.sleep(for: retryBackoff.delay(afterFailures: failures))
            }
        }
    }

    func deadLetter(_ delivery: AMQPDelivery, reason: String, on channel: AMQPChannel) async throws {
        logger.warning("events: refused an event; dead-lettered", metadata: ["reason": "\(reason)", "routing_key": "\(delivery.routingKey)"])
        try await channel.publish(DeadLetter.message(for: delivery, queue: queue, exchange: deadLetterExchange, reason: reason))
        try await delivery.ack()
    }
}
