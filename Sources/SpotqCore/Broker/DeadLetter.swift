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
    /// The validated `user_id` the dead letter reached `spotq.dead` with: who dead-lettered
    /// it (or, for the broker's own dead letters, who first published it).
    public var deadLetteredBy: String?

    public init(
        reason: String, originExchange: String?, originRoutingKey: String?, originQueue: String?, deathCount: Int, deadLetteredAt: Date,
        messageID: String?, contentType: String?, headersJSON: String, propertiesJSON: String = "{}", body: [UInt8], deadLetteredBy: String? = nil
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
        self.deadLetteredBy = deadLetteredBy
    }
}

extension DeadLetter {
    /// The image request a dead-lettered work message was for: its origin routing key names
    /// the batch queue (`spotq.batch.<id>`) and its body the item; nil for any other message.
    /// Work a pod refused as forged (not the planner's) fails nothing: its item's genuine
    /// message is elsewhere.
    public var workItem: WorkItemReference? {
        guard !reason.hasPrefix(WorkSignature.refusalPrefix) else { return nil }
        return WorkItemReference(routingKey: originRoutingKey, body: body)
    }
}

extension DeadLetter {
    /// This dead letter as spotq may trust it when a pod sent it through `spotq.pod.dead`: its
    /// origin is the pod's own batch queue (`batchID`, from the routing key the pod's topic
    /// permission allowed), whatever its headers claim, so a replay, and the item it fails,
    /// stay inside that batch. Without a batch it has no origin and cannot be replayed.
    public func sentByPod(batchID: Int64?) -> DeadLetter {
        var trusted = self
        let claimed = (originExchange ?? "?") + "/" + (originRoutingKey ?? "?")
        guard let batchID else {
            trusted.originExchange = nil
            trusted.originRoutingKey = nil
            trusted.originQueue = nil
            trusted.reason = "\(reason) [sent through \(BrokerNames.podDeadLetterExchange) for no batch: it cannot be replayed]"
            return trusted
        }
        let queue = BrokerNames.batchQueue(batchID)
        trusted.originExchange = BrokerNames.workExchange
        trusted.originRoutingKey = queue
        trusted.originQueue = queue
        // Work reaches a batch queue from the planner (spotq.work) or as a retry (spotq.pod.retry).
        let genuine = [BrokerNames.workExchange, BrokerNames.podRetryExchange].map { $0 + "/" + queue }
        if !genuine.contains(claimed) {
            trusted.reason = "\(reason) [origin claimed by the pod: \(claimed); replays go to its own batch, \(queue)]"
        }
        return trusted
    }
}
