import Foundation
import PostgresClient
import SpotqCore

/// The database's half of a demand snapshot: what each unfinished batch has left, and
/// pending items by checkpoint. (The broker's half, ready messages and consumers, is
/// added by the server's demand publisher.)
public struct DemandStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public struct BatchRemaining: Sendable, Equatable {
        public var batchID: Int64
        public var remainingItems: Int
        public var payloadBytes: Int64
    }

    /// Unfinished batches and their remaining items. Batches whose items are all settled
    /// are marked `done` on the way (`failed` when none of their items was done).
    public func remaining() async throws -> [BatchRemaining] {
        try await client.withTransaction { connection in
            try await connection.query("""
                UPDATE batches b SET status = CASE WHEN EXISTS (SELECT 1 FROM image_generation_queue q WHERE q.batch_id = b.id AND q.status = 'done')
                                                   THEN 'done' ELSE 'failed' END,
                                     finished_at = now()
                WHERE b.status IN ('queued', 'running')
                  AND NOT EXISTS (SELECT 1 FROM image_generation_queue q WHERE q.batch_id = b.id AND q.status NOT IN ('done', 'failed', 'dead'))
                """)
            let rows = try await connection.query("""
                SELECT b.id, count(q.id) FILTER (WHERE q.status NOT IN ('done', 'failed', 'dead')), b.payload_bytes
                FROM batches b JOIN image_generation_queue q ON q.batch_id = b.id
                WHERE b.status IN ('planned', 'publishing', 'queued', 'running')
                GROUP BY b.id, b.payload_bytes
                ORDER BY b.id
                """)
            return try rows.map { row in
                BatchRemaining(batchID: try row.decode(Int64.self, at: 0), remainingItems: Int(try row.decode(Int64.self, at: 1)), payloadBytes: try row.decode(Int64.self, at: 2))
            }.filter { $0.remainingItems > 0 }
        }
    }

    public func unplanned() async throws -> [DemandSnapshot.CheckpointDemand] {
        let rows = try await client.query("SELECT checkpoint, count(*) FROM image_generation_queue WHERE status = 'pending' GROUP BY checkpoint ORDER BY 2 DESC, 1")
        return try rows.map { DemandSnapshot.CheckpointDemand(checkpoint: try $0.decode(String.self, at: 0), items: Int(try $0.decode(Int64.self, at: 1))) }
    }
}
