import AMQPClient
import Logging
import SpotqCore

/// Declares a ``BrokerTopology`` on RabbitMQ. Idempotent: declaring what exists with the
/// same arguments changes nothing; different arguments fail with the broker's
/// PRECONDITION_FAILED text naming the queue.
public enum TopologyDeclarer {
    public struct Counts: Sendable, Equatable {
        public var exchanges = 0
        public var queues = 0
        public var bindings = 0
    }

    /// Connects to `amqpURL`, declares ``BrokerTopology/standard(_:)`` and disconnects.
    public static func declareStandard(
        amqpURL: String, settings: BrokerTopologySettings = .init(), logger: Logger
    ) async throws -> Counts {
        let connection = try await AMQPConnection.connect(
            configuration: AMQPConfiguration.spotq(url: amqpURL, connectionName: "spotq migrate"), logger: logger)
        do {
            let counts = try await connection.withChannel { channel in
                try await declare(.standard(settings), on: channel)
            }
            await connection.close()
            return counts
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Declares batch `id`'s work queue and binds it to `spotq.work` and `spotq.pod.retry`
    /// (declared too, so the bindings cannot fail on a broker that lost them); returns the queue name.
    @discardableResult
    public static func declareBatch(_ id: Int64, settings: BrokerTopologySettings = .init(), on channel: AMQPChannel) async throws -> String {
        let (queue, bindings) = BrokerTopology.batch(id, settings: settings)
        let needed: Set = [BrokerNames.workExchange, BrokerNames.deadLetterExchange, BrokerNames.podRetryExchange]
        let exchanges = BrokerTopology.standard(settings).exchanges.filter { needed.contains($0.name) }
        _ = try await declare(BrokerTopology(exchanges: exchanges, queues: [queue], bindings: bindings), on: channel)
        return queue.name
    }

    /// Declares every exchange, then every queue, then every binding of `topology`.
    public static func declare(_ topology: BrokerTopology, on channel: AMQPChannel) async throws -> Counts {
        var counts = Counts()
        for exchange in topology.exchanges {
            try await channel.declareExchange(
                exchange.name, type: AMQPExchangeType(exchange.kind.rawValue), durable: exchange.durable)
            counts.exchanges += 1
        }
        for queue in topology.queues {
            try await channel.declareQueue(queue.name, durable: queue.durable, arguments: table(queue.arguments))
            counts.queues += 1
        }
        for binding in topology.bindings {
            try await channel.bindQueue(binding.queue, exchange: binding.exchange, routingKey: binding.routingKey)
            counts.bindings += 1
        }
        return counts
    }

    /// Arguments in a fixed (sorted) order, so every declaration sends the same table.
    static func table(_ arguments: [String: BrokerTopology.QueueArgument]) -> AMQPTable {
        AMQPTable(arguments.sorted { $0.key < $1.key }.map { key, value in
            switch value {
            case .string(let text): (key, AMQPFieldValue.string(text))
            case .int(let number): (key, AMQPFieldValue.int64(Int64(number)))
            }
        })
    }
}
