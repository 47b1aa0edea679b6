import Foundation
import SpotqCore

/// A ``DeadLetter`` as stored in `dead_letters`: the dead letter itself, the id it was
/// recorded under, and what operators did with it since. Its fields read through
/// (`recorded.reason` is `recorded.deadLetter.reason`).
///
/// Its JSON (`spotq dlq list/show --json`) is one flat object: `id`, the dead letter's
/// fields (`reason`, `origin_exchange`, …, `headers`, `properties`, `body`), `recorded_at`,
/// `replay_count`, `replayed_at`, `purged_at`; absent optionals are left out.
@dynamicMemberLookup
public struct RecordedDeadLetter: Sendable, Equatable {
    public var id: Int64
    public var deadLetter: DeadLetter
    public var recordedAt: Date
    public var replayCount: Int
    public var replayedAt: Date?
    public var purgedAt: Date?

    public init(id: Int64, deadLetter: DeadLetter, recordedAt: Date, replayCount: Int, replayedAt: Date?, purgedAt: Date?) {
        self.id = id
        self.deadLetter = deadLetter
        self.recordedAt = recordedAt
        self.replayCount = replayCount
        self.replayedAt = replayedAt
        self.purgedAt = purgedAt
    }

    /// The dead letter's own fields, read through.
    public subscript<Value>(dynamicMember field: KeyPath<DeadLetter, Value>) -> Value {
        deadLetter[keyPath: field]
    }
}

extension RecordedDeadLetter: Codable {
    enum CodingKeys: String, CodingKey {
        case id, reason, originExchange = "origin_exchange", originRoutingKey = "origin_routing_key", originQueue = "origin_queue"
        case deathCount = "death_count", deadLetteredAt = "dead_lettered_at", recordedAt = "recorded_at", messageID = "message_id"
        case contentType = "content_type", headersJSON = "headers", propertiesJSON = "properties", body, replayCount = "replay_count"
        case replayedAt = "replayed_at", purgedAt = "purged_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(Int64.self, forKey: .id),
            deadLetter: DeadLetter(
                reason: try container.decode(String.self, forKey: .reason),
                originExchange: try container.decodeIfPresent(String.self, forKey: .originExchange),
                originRoutingKey: try container.decodeIfPresent(String.self, forKey: .originRoutingKey),
                originQueue: try container.decodeIfPresent(String.self, forKey: .originQueue),
                deathCount: try container.decode(Int.self, forKey: .deathCount),
                deadLetteredAt: try container.decode(Date.self, forKey: .deadLetteredAt),
                messageID: try container.decodeIfPresent(String.self, forKey: .messageID),
                contentType: try container.decodeIfPresent(String.self, forKey: .contentType),
                headersJSON: try container.decode(String.self, forKey: .headersJSON),
                propertiesJSON: try container.decode(String.self, forKey: .propertiesJSON),
                body: try container.decode([UInt8].self, forKey: .body)),
            recordedAt: try container.decode(Date.self, forKey: .recordedAt),
            replayCount: try container.decode(Int.self, forKey: .replayCount),
            replayedAt: try container.decodeIfPresent(Date.self, forKey: .replayedAt),
            purgedAt: try container.decodeIfPresent(Date.self, forKey: .purgedAt))
    }

    /// The keys and values the former synthesized encoding of the store's `Entry` wrote
    /// (absent optionals left out), so with `.sortedKeys` the bytes for a row are the same.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(deadLetter.reason, forKey: .reason)
        try container.encodeIfPresent(deadLetter.originExchange, forKey: .originExchange)
        try container.encodeIfPresent(deadLetter.originRoutingKey, forKey: .originRoutingKey)
        try container.encodeIfPresent(deadLetter.originQueue, forKey: .originQueue)
        try container.encode(deadLetter.deathCount, forKey: .deathCount)
        try container.encode(deadLetter.deadLetteredAt, forKey: .deadLetteredAt)
        try container.encode(recordedAt, forKey: .recordedAt)
        try container.encodeIfPresent(deadLetter.messageID, forKey: .messageID)
        try container.encodeIfPresent(deadLetter.contentType, forKey: .contentType)
        try container.encode(deadLetter.headersJSON, forKey: .headersJSON)
        try container.encode(deadLetter.propertiesJSON, forKey: .propertiesJSON)
        try container.encode(deadLetter.body, forKey: .body)
        try container.encode(replayCount, forKey: .replayCount)
        try container.encodeIfPresent(replayedAt, forKey: .replayedAt)
        try container.encodeIfPresent(purgedAt, forKey: .purgedAt)
    }
}
