import AMQPClient

/// The content of a delivery, without its acknowledgement route: what handlers' pure
/// decisions and ``SettlementPlan`` read, and what unit tests build without a broker.
public struct ReceivedMessage: Sendable, Hashable {
    public var body: [UInt8]
    public var properties: AMQPMessageProperties
    public var exchange: String
    public var routingKey: String
    public var redelivered: Bool

    public init(body: [UInt8], properties: AMQPMessageProperties = AMQPMessageProperties(), exchange: String = "", routingKey: String = "", redelivered: Bool = false) {
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
    }

    public init(_ delivery: AMQPDelivery) {
        self.init(body: delivery.body, properties: delivery.properties, exchange: delivery.exchange, routingKey: delivery.routingKey, redelivered: delivery.redelivered)
    }
}
