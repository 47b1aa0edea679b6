import Foundation

/// What spotq keeps of a dead letter: why, where it came from, and the message itself.
/// Read from a delivery's headers by SpotqBroker (`DeadLetter(delivery:)`), stored by SpotqStore
/// (`RecordedDeadLetter`).
public struct DeadLetter: Sendable, Equatable {
    public var reason: String
    public var originExchange: String?
    public var originRoutingKey: String?
    public var originQueue: String?
    public var deathCount: Int
    public var deadLetteredAt: Date
    public var messageID: String?
    public var contentType: String?
    /// The message's headers as JSON (for `spotq dlq show`).
    public var headersJSON: String
    /// Its other properties as JSON, kept for a replay.
    public var propertiesJSON: String
    public var body: [UInt8]

    public init(
        reason: String, originExchange: String?, originRoutingKey: String?, originQueue: String?, deathCount: Int, deadLetteredAt: Date,
        messageID: String?, contentType: String?, headersJSON: String, propertiesJSON: String = "{}", body: [UInt8]
    ) {
        self.reason = reason
        self.originExchange = originExchange
        self.originRoutingKey = originRoutingKey
        self.originQueue = originQueue
        self.deathCount = deathCount
        self.deadLetteredAt = deadLetteredAt
        self.messageID = messageID
        self.contentType = contentType
        self.headersJSON = headersJSON
        self.propertiesJSON = propertiesJSON
        self.body = body
    }
}

extension DeadLetter {
    /// The image request a dead-lettered work message was for: its origin routing key names
    /// the batch queue (`spotq.batch.<id>`) and its body the item; nil for any other message.
    public var workItem: WorkItemReference? { WorkItemReference(routingKey: originRoutingKey, body: body) }
}
