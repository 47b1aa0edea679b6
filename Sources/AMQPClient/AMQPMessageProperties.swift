import Foundation

/// Whether the broker writes a message to disk.
public enum AMQPDeliveryMode: UInt8, Sendable, Hashable {
    case transient = 1
    case persistent = 2
}

/// The `basic` class properties of a message. Every field is optional on the wire; outgoing
/// messages default to ``AMQPDeliveryMode/persistent``.
public struct AMQPMessageProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: AMQPTable?
    public var deliveryMode: AMQPDeliveryMode?
    public var priority: UInt8?
    public var correlationID: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a string (AMQP's own type for it).
    public var expiration: String?
    public var messageID: String?
    public var timestamp: Date?
    public var type: String?
    /// Must equal the connection's user name when set; RabbitMQ checks it.
    public var userID: String?
    public var appID: String?

    public init(
        contentType: String? = nil,
        contentEncoding: String? = nil,
        headers: AMQPTable? = nil,
        deliveryMode: AMQPDeliveryMode? = .persistent,
        priority: UInt8? = nil,
        correlationID: String? = nil,
        replyTo: String? = nil,
        expiration: String? = nil,
        messageID: String? = nil,
        timestamp: Date? = nil,
        type: String? = nil,
        userID: String? = nil,
        appID: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageID = messageID
        self.timestamp = timestamp
        self.type = type
        self.userID = userID
        self.appID = appID
    }

    /// No property set at all (not even a delivery mode): what an inbound message without
    /// properties looks like.
    public static let none = AMQPMessageProperties(deliveryMode: nil)
}
