import Foundation
import PostgresClient
import SpotqCore

/// Batches' lifecycle moves that are not the planner's: publishing their work (for the
/// batch publisher) and settling them once every item is finished (``BatchStatus``).
public struct BatchStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Batches with work not yet published, oldest first.
    public func unpublished() async throws -> [Int64] {
        try await client.query("SELECT id FROM batches WHERE status = ANY(\(BatchStatus.sources(of: .allPublished).sql)) ORDER BY id")
            .map { try $0.decode(Int64.self, at: 0) }
    }

    /// Records `publicKey` as one that signs batch `id`'s work (before any is published with
    /// it), so the batch's pods are given it (migration 0016).
    public func recordSigningKey(_ id: Int64, publicKey: String) async throws {
        try await client.query("""
            UPDATE batches SET work_public_keys = array_append(work_public_keys, \(publicKey))
            WHERE id = \(id) AND NOT (\(publicKey) = ANY(work_public_keys))
            """)
    }

    /// Batches published before signing keys were recorded were signed with the key of the
    /// secret in use then; while the secret has not changed since, that is `publicKey`.
    public func adoptSigningKeyForUnrecordedBatches(publicKey: String) async throws -> Int {
        try await client.query("""
            UPDATE batches SET work_public_keys = ARRAY[\(publicKey)]
            WHERE cardinality(work_public_keys) = 0 AND status <> ALL(\([BatchStatus.planned, .done, .failed].sql))
            RETURNING id
            """).count
    }

    /// The publisher starts on batch `id` (planned → publishing; a no-op when it already is).
    public func startPublishing(_ id: Int64) async throws {
        try await client.query("""
            UPDATE batches SET status = \(BatchStatus.target(of: .publishing))
            WHERE id = \(id) AND status = ANY(\(BatchStatus.sources(of: .publishing).sql))
            """)
    }

    /// One work message still to publish: its item and its body (version 1, README "Work messages").
    public struct WorkMessage: Sendable {
        public var itemID: Int64
        public var body: [UInt8]
    }

    /// Up to `limit` of the batch's items not yet published, in generation order.
    public func unpublishedWork(batch id: Int64, limit: Int) async throws -> [WorkMessage] {
        try await client.query("""
            SELECT id, jsonb_build_object(
                'version', 1, 'batch_id', batch_id, 'item_id', id, 'request_id', request_id,
                'position', batch_position, 'checkpoint', checkpoint, 'loras', loras,
                'prompt', prompt, 'workflow', workflow)::text
            FROM image_generation_queue
            WHERE batch_id = \(id) AND status = ANY(\(ItemStatus.sources(of: .published).sql))
            ORDER BY batch_position
            LIMIT \(limit)
            """).map { WorkMessage(itemID: try $0.decode(Int64.self, at: 0), body: Array(try $0.decode(String.self, at: 1).utf8)) }
    }

    /// The broker confirmed these items' work messages.
    public func published(items ids: [Int64]) async throws {
        try await client.query("""
            UPDATE image_generation_queue SET status = \(ItemStatus.target(of: .published))
            WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND status = ANY(\(ItemStatus.sources(of: .published).sql))
            """)
    }

    /// Batch `id` is queued once none of its items is left unpublished.
    public func finishPublishing(_ id: Int64) async throws {
        try await client.query("""
            UPDATE batches SET status = \(BatchStatus.target(of: .allPublished)), published_at = coalesce(published_at, now())
            WHERE id = \(id) AND status = ANY(\(BatchStatus.sources(of: .allPublished).sql))
              AND NOT EXISTS (SELECT 1 FROM image_generation_queue
                              WHERE batch_id = \(id) AND status = ANY(\(ItemStatus.sources(of: .published).sql)))
            """)
    }

    /// Marks every batch whose items are all finished: done when at least one image was
    /// stored, else failed. Returns the batches it settled and how.
    @discardableResult
    public func settleFinished() async throws -> [(batchID: Int64, status: BatchStatus)] {
        let settledSources = Set(BatchStatus.sources(of: .settled)).union(BatchStatus.sources(of: .settledAllFailed))
        return try await client.query("""
            UPDATE batches b
            SET status = CASE WHEN EXISTS (SELECT 1 FROM image_generation_queue q WHERE q.batch_id = b.id AND q.status = \(ItemStatus.done))
                              THEN \(BatchStatus.target(of: .settled)) ELSE \(BatchStatus.target(of: .settledAllFailed)) END,
                finished_at = now()
            WHERE b.status = ANY(\(BatchStatus.allCases.filter(settledSources.contains).sql))
              AND NOT EXISTS (SELECT 1 FROM image_generation_queue q WHERE q.batch_id = b.id AND q.status = ANY(\(ItemStatus.unfinished.sql)))
            RETURNING b.id, b.status
            """).map { (try $0.decode(Int64.self, at: 0), try $0.decode(BatchStatus.self, at: 1)) }
    }
}
