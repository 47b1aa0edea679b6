import Foundation
import SpotqCore
import SpotqStore
import Testing

@Suite("recorded dead letters: their JSON and the dashboard's summary")
struct RecordedDeadLetterTests {
    /// The stored row's shape before it held a `DeadLetter` (the store's former `Entry`, with
    /// synthesized Codable): `spotq dlq list/show --json` must write the same bytes.
    struct FormerEntry: Codable {
        var id: Int64
        var reason: String
        var originExchange: String?
        var originRoutingKey: String?
        var originQueue: String?
        var deathCount: Int
        var deadLetteredAt: Date
        var recordedAt: Date
        var messageID: String?
        var contentType: String?
        var headersJSON: String
        var propertiesJSON: String
        var body: [UInt8]
        var replayCount: Int
        var replayedAt: Date?
        var purgedAt: Date?

        enum CodingKeys: String, CodingKey {
            case id, reason, originExchange = "origin_exchange", originRoutingKey = "origin_routing_key", originQueue = "origin_queue"
            case deathCount = "death_count", deadLetteredAt = "dead_lettered_at", recordedAt = "recorded_at", messageID = "message_id"
            case contentType = "content_type", headersJSON = "headers", propertiesJSON = "properties", body, replayCount = "replay_count"
            case replayedAt = "replayed_at", purgedAt = "purged_at"
        }

        init(_ recorded: RecordedDeadLetter) {
            let letter = recorded.deadLetter
            self.init(
                id: recorded.id, reason: letter.reason, originExchange: letter.originExchange, originRoutingKey: letter.originRoutingKey,
                originQueue: letter.originQueue, deathCount: letter.deathCount, deadLetteredAt: letter.deadLetteredAt, recordedAt: recorded.recordedAt,
                messageID: letter.messageID, contentType: letter.contentType, headersJSON: letter.headersJSON, propertiesJSON: letter.propertiesJSON,
                body: letter.body, replayCount: recorded.replayCount, replayedAt: recorded.replayedAt, purgedAt: recorded.purgedAt)
        }

        init(
            id: Int64, reason: String, originExchange: String?, originRoutingKey: String?, originQueue: String?, deathCount: Int, deadLetteredAt: Date,
            recordedAt: Date, messageID: String?, contentType: String?, headersJSON: String, propertiesJSON: String, body: [UInt8], replayCount: Int,
            replayedAt: Date?, purgedAt: Date?
        ) {
            (self.id, self.reason, self.originExchange, self.originRoutingKey, self.originQueue) = (id, reason, originExchange, originRoutingKey, originQueue)
            (self.deathCount, self.deadLetteredAt, self.recordedAt, self.messageID, self.contentType) = (deathCount, deadLetteredAt, recordedAt, messageID, contentType)
            (self.headersJSON, self.propertiesJSON, self.body) = (headersJSON, propertiesJSON, body)
            (self.replayCount, self.replayedAt, self.purgedAt) = (replayCount, replayedAt, purgedAt)
        }
    }

    let at = Date(timeIntervalSince1970: 1_700_000_000)

    var complete: RecordedDeadLetter {
        RecordedDeadLetter(
            id: 12,
            deadLetter: DeadLetter(
                reason: "bad fields", originExchange: "spotq.work", originRoutingKey: "spotq.batch.7", originQueue: "spotq.batch.7", deathCount: 2,
                deadLetteredAt: at, messageID: "item-70", contentType: "application/json", headersJSON: #"{"x-own":"kept"}"#,
                propertiesJSON: #"{"message_id":"item-70"}"#, body: Array(#"{"item_id": 70}"#.utf8)),
            recordedAt: at.addingTimeInterval(1), replayCount: 1, replayedAt: at.addingTimeInterval(2), purgedAt: at.addingTimeInterval(3))
    }

    var bare: RecordedDeadLetter {
        RecordedDeadLetter(
            id: 13,
            deadLetter: DeadLetter(
                reason: "no reason recorded", originExchange: nil, originRoutingKey: nil, originQueue: nil, deathCount: 1, deadLetteredAt: at,
                messageID: nil, contentType: nil, headersJSON: "{}", body: []),
            recordedAt: at, replayCount: 0, replayedAt: nil, purgedAt: nil)
    }

    /// The encoders that write it: `spotq dlq list/show --json` (pretty, sorted keys, ISO 8601
    /// dates) and compact sorted ones. Unsorted keys come out in hash order, so only their
    /// set is compared.
    func sortedEncoders() -> [JSONEncoder] {
        let cli = JSONEncoder()
        cli.outputFormatting = [.prettyPrinted, .sortedKeys]
        cli.dateEncodingStrategy = .iso8601
        let compact = JSONEncoder()
        compact.outputFormatting = [.sortedKeys]
        return [cli, compact]
    }

    @Test func itsJSON_isByteForByteTheFormerEntrys_withAndWithoutOptionals() throws {
        for encoder in sortedEncoders() {
            for recorded in [complete, bare] {
                #expect(try encoder.encode(recorded) == encoder.encode(FormerEntry(recorded)))
                #expect(try encoder.encode([recorded]) == encoder.encode([FormerEntry(recorded)]))
            }
        }
        for recorded in [complete, bare] {
            let new = try JSONSerialization.jsonObject(with: JSONEncoder().encode(recorded)) as? NSDictionary
            let former = try JSONSerialization.jsonObject(with: JSONEncoder().encode(FormerEntry(recorded))) as? NSDictionary
            #expect(new != nil && new == former)
        }
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(complete)) as? [String: Any])
        #expect(Set(object.keys) == [
            "id", "reason", "origin_exchange", "origin_routing_key", "origin_queue", "death_count", "dead_lettered_at", "recorded_at", "message_id",
            "content_type", "headers", "properties", "body", "replay_count", "replayed_at", "purged_at",
        ])
    }

    @Test func itsJSON_decodesBackToTheSameRecord() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        for recorded in [complete, bare] {
            #expect(try decoder.decode(RecordedDeadLetter.self, from: encoder.encode(recorded)) == recorded)
        }
    }

    @Test func theDeadLettersFields_readThrough() {
        let recorded = complete
        #expect(recorded.reason == "bad fields")
        #expect(recorded.originQueue == "spotq.batch.7")
        #expect(recorded.body == recorded.deadLetter.body)
    }

    @Test func theSummary_keepsWhatTheDashboardShows_andCutsTheBodyTo300Bytes() throws {
        var recorded = complete
        recorded.deadLetter.body = Array(String(repeating: "a", count: 500).utf8)
        let summary = recorded.summary
        #expect(summary.id == 12)
        #expect(summary.reason == "bad fields")
        #expect(summary.originQueue == "spotq.batch.7")
        #expect(summary.deadLetteredAt == at)
        #expect(summary.replayCount == 1)
        #expect(summary.body == String(repeating: "a", count: 300))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(bare.summary), as: UTF8.self)
        #expect(json == #"{"body":"","dead_lettered_at":"2023-11-14T22:13:20Z","id":13,"reason":"no reason recorded","replay_count":0}"#)
    }
}
