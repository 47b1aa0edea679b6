/// A message to publish.
public struct AMQPOutgoingMessage: Sendable, Hashable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: AMQPMessageProperties
    /// Ask the broker to return the message (``AMQPBatchOutcome/returned``) when no queue
    /// takes it, instead of dropping it silently.
    public var mandatory: Bool

    public init(
        exchange: String,
        routingKey: String,
        body: [UInt8],
        properties: AMQPMessageProperties = AMQPMessageProperties(),
        mandatory: Bool = false
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// A mandatory message the broker could not route, as `basic.return` reported it.
public struct AMQPReturnedMessage: Sendable, Hashable {
    /// Position of the message in the batch passed to ``AMQPChannel/publishBatch(_:)``.
    public var index: Int
    /// 312 (NO_ROUTE) for an unroutable message.
    public var replyCode: Int
    public var replyText: String
    public var exchange: String
    public var routingKey: String

    public init(index: Int, replyCode: Int, replyText: String, exchange: String, routingKey: String) {
        self.index = index
        self.replyCode = replyCode
        self.replyText = replyText
        self.exchange = exchange
        self.routingKey = routingKey
    }
}

/// How the broker answered every message of a batch. A returned message is also acked by the
/// broker; it is listed in ``returned`` only, not counted as confirmed.
public struct AMQPBatchOutcome: Sendable, Hashable {
    /// Number of messages published.
    public var count: Int
    /// Indexes of the messages the broker nacked (it could not take responsibility for them).
    public var nacked: [Int]
    /// Mandatory messages that no queue took.
    public var returned: [AMQPReturnedMessage]

    public init(count: Int, nacked: [Int] = [], returned: [AMQPReturnedMessage] = []) {
        self.count = count
        self.nacked = nacked
        self.returned = returned
    }

    /// Messages the broker acked and routed.
    public var confirmedCount: Int { count - nacked.count - returned.count }
    /// True when every message was acked and none came back.
    public var allConfirmed: Bool { nacked.isEmpty && returned.isEmpty }
}

/// What `queue.declare` (active or passive) reports.
public struct AMQPQueueInfo: Sendable, Hashable {
    /// The queue's name (the broker's choice when declared with an empty name).
    public var name: String
    /// Messages ready for delivery (not counting unacked ones).
    public var messageCount: Int
    /// Active consumers.
    public var consumerCount: Int

    public init(name: String, messageCount: Int, consumerCount: Int) {
        self.name = name
        self.messageCount = messageCount
        self.consumerCount = consumerCount
    }
}

/// An exchange type; extensible for plugin types (e.g. `AMQPExchangeType("x-delayed-message")`).
public struct AMQPExchangeType: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public init(_ name: String) { self.name = name }
    public var description: String { name }

    public static let direct = AMQPExchangeType("direct")
    public static let topic = AMQPExchangeType("topic")
    public static let fanout = AMQPExchangeType("fanout")
    public static let headers = AMQPExchangeType("headers")
}
