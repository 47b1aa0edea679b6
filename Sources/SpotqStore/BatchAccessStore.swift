import Foundation
import PostgresClient
import SpotqCore

/// What the pod routes read about one batch: the hash of its upload token (to check a
/// pod's bearer token), its manifest, and how much of it is left.
public struct BatchAccessStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The stored SHA-256 of the batch's upload token: nil when there is no such batch,
    /// `.some(nil)` when the batch has no token.
    public func uploadTokenHash(batch: Int64) async throws -> String?? {
        let rows = try await client.query("SELECT upload_token_hash FROM batches WHERE id = \(batch)")
        guard let row = rows.first else { return nil }
        return .some(try row.decode(String?.self, at: 0))
    }

    /// The pod whose own upload token has this hash: its batch and whether it is terminated;
    /// nil when no pod has it.
    public func podToken(hash: String) async throws -> (batchID: Int64?, terminated: Bool)? {
        let rows = try await client.query("SELECT batch_id, state = \(PodState.terminated) FROM pods WHERE upload_token_hash = \(hash)")
        guard let row = rows.first else { return nil }
        return (try row.decode(Int64?.self, at: 0), try row.decode(Bool.self, at: 1))
    }

    /// The batch's manifest, the JSON text as stored in `batches.manifest`; nil when the
    /// batch has none.
    public func manifestJSON(batch: Int64) async throws -> String? {
        let rows = try await client.query("SELECT manifest::text FROM batches WHERE id = \(batch)")
        return try rows.first?.decode(String?.self, at: 0)
    }

    /// A batch's items by outcome.
    public struct Progress: Sendable, Equatable {
        public var items: Int64
        public var done: Int64
        /// Failed or dead: they will not be generated.
        public var failed: Int64
        public var remaining: Int64 { items - done - failed }
    }

    public func progress(batch: Int64) async throws -> Progress {
        let row = try await client.query("""
            SELECT count(*)::bigint, count(*) FILTER (WHERE status = \(ItemStatus.done))::bigint,
                   count(*) FILTER (WHERE status = \(ItemStatus.failed))::bigint
            FROM image_generation_queue WHERE batch_id = \(batch)
            """)[0]
        return Progress(items: try row.decode(Int64.self, at: 0), done: try row.decode(Int64.self, at: 1), failed: try row.decode(Int64.self, at: 2))
    }
}
