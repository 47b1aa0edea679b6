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

    /// Unfinished batches with items left, and how many. A read only: settling finished
    /// batches is ``BatchStore/settleFinished()``, a step of the demand service.
    public func remaining() async throws -> [BatchRemaining] {
        let rows = try await client.query("""
            SELECT b.id, count(q.id) FILTER (WHERE q.status = ANY(\(ItemStatus.unfinished.sql))), b.payload_bytes
            FROM batches b JOIN image_generation_queue q ON q.batch_id = b.id
            WHERE b.status = ANY(\(BatchStatus.unfinished.sql))
            GROUP BY b.id, b.payload_bytes
            ORDER BY b.id
            """)
        return try rows.map { row in
            BatchRemaining(batchID: try row.decode(Int64.self, at: 0), remainingItems: Int(try row.decode(Int64.self, at: 1)), payloadBytes: try row.decode(Int64.self, at: 2))
        }.filter { $0.remainingItems > 0 }
    }

    public func unplanned() async throws -> [DemandSnapshot.CheckpointDemand] {
        let rows = try await client.query("SELECT checkpoint, count(*) FROM image_generation_queue WHERE status = \(ItemStatus.pending) GROUP BY checkpoint ORDER BY 2 DESC, 1")
        return try rows.map { DemandSnapshot.CheckpointDemand(checkpoint: try $0.decode(String.self, at: 0), items: Int(try $0.decode(Int64.self, at: 1))) }
    }
}

extension DemandStore {
    /// Records a snapshot's work queues (and their sum as queue `all`) and drops samples
    /// older than seven days.
    public func recordSamples(_ snapshot: DemandSnapshot) async throws {
        var queues = snapshot.batches.map { (BrokerNames.batchQueue($0.batchID), $0.ready, $0.unacknowledged) }
        queues.append(("all", snapshot.batches.reduce(0) { $0 + $1.ready }, snapshot.batches.reduce(0) { $0 + $1.unacknowledged }))
        try await client.withTransaction { connection in
            for (queue, ready, unacknowledged) in queues {
                try await connection.query("""
                    INSERT INTO queue_samples (taken_at, queue, ready, unacknowledged) VALUES (\(snapshot.takenAt), \(queue), \(ready), \(unacknowledged))
                    ON CONFLICT DO NOTHING
                    """)
            }
            try await connection.query("DELETE FROM queue_samples WHERE taken_at < now() - interval '7 days'")
        }
    }

    /// Samples of queue `queue` since `since`, oldest first.
    public func samples(queue: String = "all", since: Date) async throws -> [(takenAt: Date, ready: Int, unacknowledged: Int)] {
        try await client.query("SELECT taken_at, ready, unacknowledged FROM queue_samples WHERE queue = \(queue) AND taken_at >= \(since) ORDER BY taken_at").map {
            (try $0.decode(Date.self, at: 0), Int(try $0.decode(Int32.self, at: 1)), Int(try $0.decode(Int32.self, at: 2)))
        }
    }
}
