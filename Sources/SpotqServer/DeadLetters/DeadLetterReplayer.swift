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
