/// A message delivered to a consumer. Acknowledge it exactly once with ``ack()``,
/// ``nack(requeue:)`` or ``reject(requeue:)``; the broker redelivers unacknowledged messages
/// when their channel closes.
public struct AMQPDelivery: Sendable {
    public let body: [UInt8]
    public let properties: AMQPMessageProperties
    public let deliveryTag: UInt64
    /// True when the broker delivered this message before (to anyone) without an ack.
    public let redelivered: Bool
    public let exchange: String
    public let routingKey: String
    public let consumerTag: String
    let route: AckRoute

    /// The message is done with; the broker forgets it.
    public func ack() async throws {
        try await route.acknowledge(deliveryTag, .ack)
    }

    /// The message was not processed; `requeue: false` dead-letters it (or drops it when its
    /// queue has no dead-letter exchange).
    public func nack(requeue: Bool = true) async throws {
        try await route.acknowledge(deliveryTag, .nack(requeue: requeue))
    }

    /// Like ``nack(requeue:)``, as `basic.reject`; defaults to dead-lettering.
    public func reject(requeue: Bool = false) async throws {
        try await route.acknowledge(deliveryTag, .reject(requeue: requeue))
    }
}

enum AckKind: Sendable, CustomStringConvertible {
    case ack
    case nack(requeue: Bool)
    case reject(requeue: Bool)

    var description: String {
        switch self {
        case .ack: "ack"
        case .nack: "nack"
        case .reject: "reject"
        }
    }
}

/// Where a delivery's acknowledgement goes: the channel incarnation it arrived on.
struct AckRoute: Sendable {
    let handle: LoopHandle
    let logicalChannel: Int
    let generation: Int

    func acknowledge(_ tag: UInt64, _ kind: AckKind) async throws {
        let (channel, generation) = (logicalChannel, self.generation)
        try await handle.perform { core in
            try core.acknowledge(logicalChannel: channel, generation: generation, deliveryTag: tag, kind: kind)
        }
    }
}
