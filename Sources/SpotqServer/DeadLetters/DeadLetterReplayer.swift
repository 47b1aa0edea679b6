import AMQPClient
import SpotqBroker
import SpotqStore

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

    /// Replays one recorded dead letter; throws ``Failure`` saying why not.
    public func replay(_ recorded: RecordedDeadLetter) async throws {
        guard let exchange = recorded.originExchange, let routingKey = recorded.originRoutingKey else {
            throw Failure(description: "dead letter \(recorded.id) has no recorded origin; it cannot be sent back")
        }
        let message = AMQPOutgoingMessage.replay(of: recorded.deadLetter, id: recorded.id, exchange: exchange, routingKey: routingKey)
        let channel = try await amqp.connection().openChannel()
        defer { Task { try? await channel.close() } }
        do {
            try await channel.publish(message)
        } catch {
            throw Failure(description: "dead letter \(recorded.id) could not be replayed to exchange '\(exchange)' with routing key '\(routingKey)': \(error)")
        }
        try await store.replayed(recorded)
    }
}
