import Foundation
import PostgresClient
import SpotqCore

/// `dead_letters`: every message that reached `spotq.dead`.
public struct DeadLetterStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Stores a dead letter. A work message's item that is not finished yet becomes failed
    /// with the dead letter's reason in the same transaction (``ItemEvent/deadLettered``):
    /// the broker's delivery limit dead-letters work without any pod event saying so.
    @discardableResult
    public func record(_ letter: DeadLetter) async throws -> Int64 {
        try await client.withTransaction { connection in
            let id = try await Self.insert(letter, on: connection)
            if let work = letter.workItem {
                try await connection.query("""
                    UPDATE image_generation_queue SET status = \(ItemStatus.target(of: .deadLettered)), last_error = \(letter.reason.isEmpty ? "dead-lettered" : letter.reason)
                    WHERE id = \(work.itemID) AND batch_id = \(work.batchID) AND status = ANY(\(ItemStatus.sources(of: .deadLettered).sql))
                    """)
            }
            return id
        }
    }

    static func insert(_ letter: DeadLetter, on connection: PostgresConnection) async throws -> Int64 {
        let rows = try await connection.query("""
            INSERT INTO dead_letters (reason, origin_exchange, origin_routing_key, origin_queue, death_count, dead_lettered_at, message_id,
                                      content_type, headers, properties, body, dead_lettered_by)
            VALUES (\(letter.reason.isEmpty ? "no reason recorded" : letter.reason), \(letter.originExchange), \(letter.originRoutingKey), \(letter.originQueue),
                    \(letter.deathCount), \(letter.deadLetteredAt), \(letter.messageID), \(letter.contentType), \(PostgresRawJSON(letter.headersJSON))::jsonb,
                    \(PostgresRawJSON(letter.propertiesJSON))::jsonb, \(PostgresBytes(letter.body)), \(letter.deadLetteredBy))
            RETURNING id
            """)
        return try rows[0].decode(Int64.self, at: 0)
    }

    static let columns = """
        id, reason, origin_exchange, origin_routing_key, origin_queue, death_count, dead_lettered_at, recorded_at, message_id, content_type,
        headers::text, properties::text, body, replay_count, replayed_at, purged_at, dead_lettered_by
        """

    static func recorded(_ row: PostgresRow) throws -> RecordedDeadLetter {
        RecordedDeadLetter(
            id: try row.decode(Int64.self, at: 0),
            deadLetter: DeadLetter(
                reason: try row.decode(String.self, at: 1), originExchange: try row.decode(String?.self, at: 2),
                originRoutingKey: try row.decode(String?.self, at: 3), originQueue: try row.decode(String?.self, at: 4),
                deathCount: Int(try row.decode(Int32.self, at: 5)), deadLetteredAt: try row.decode(Date.self, at: 6),
                messageID: try row.decode(String?.self, at: 8), contentType: try row.decode(String?.self, at: 9),
                headersJSON: try row.decode(String.self, at: 10), propertiesJSON: try row.decode(String.self, at: 11),
                body: try row.decode(PostgresBytes.self, at: 12).bytes, deadLetteredBy: try row.decode(String?.self, at: 16)),
            recordedAt: try row.decode(Date.self, at: 7), replayCount: Int(try row.decode(Int32.self, at: 13)),
            replayedAt: try row.decode(Date?.self, at: 14), purgedAt: try row.decode(Date?.self, at: 15))
    }

    /// Dead letters not purged (or all), oldest first; `reason` matches as a substring.
    public func list(reason: String? = nil, includePurged: Bool = false) async throws -> [RecordedDeadLetter] {
        let rows = try await client.query(PostgresQuery(sql: """
            SELECT \(Self.columns) FROM dead_letters
            WHERE ($1 OR purged_at IS NULL) AND ($2::text IS NULL OR strpos(reason, $2::text) > 0)
            ORDER BY id
            """, parameters: [includePurged, reason]))
        return try rows.map(Self.recorded)
    }

    /// The dead letter recorded under `id`, purged or not; nil when there is none.
    public func entry(_ id: Int64) async throws -> RecordedDeadLetter? {
        try await client.query(PostgresQuery(sql: "SELECT \(Self.columns) FROM dead_letters WHERE id = $1", parameters: [id])).first.map(Self.recorded)
    }

    /// Records a replay. A work item that was replayed is queued again (and its batch with
    /// it), so the fleet sees it as demand.
    public func replayed(_ recorded: RecordedDeadLetter) async throws {
        try await client.withTransaction { connection in
            try await connection.query("UPDATE dead_letters SET replay_count = replay_count + 1, replayed_at = now() WHERE id = \(recorded.id)")
            guard let work = recorded.deadLetter.workItem else { return }
            try await connection.query("""
                UPDATE image_generation_queue SET status = \(ItemStatus.target(of: .replayed)), last_error = NULL
                WHERE id = \(work.itemID) AND batch_id = \(work.batchID) AND status = ANY(\(ItemStatus.sources(of: .replayed).sql))
                """)
            try await connection.query("""
                UPDATE batches SET status = \(BatchStatus.target(of: .replayed)), finished_at = NULL
                WHERE id = \(work.batchID) AND status = ANY(\(BatchStatus.sources(of: .replayed).sql))
                """)
        }
    }

    /// Marks entries purged (hidden from lists, kept for the record); returns how many.
    public func purge(ids: [Int64]? = nil, reason: String? = nil) async throws -> Int {
        let result = try await client.query(PostgresQuery(sql: """
            UPDATE dead_letters SET purged_at = now()
            WHERE purged_at IS NULL AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) AND ($2::text IS NULL OR strpos(reason, $2::text) > 0)
            """, parameters: [ids.map { "{" + $0.map(String.init).joined(separator: ",") + "}" }, reason]))
        return result.affectedRows
    }
}
