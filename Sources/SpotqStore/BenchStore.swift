import PostgresClient
import SpotqCore

/// The statements `spotq bench` times or prepares with, on a scratch database of its own:
/// the website's INSERT, row counts, and emptying the tables between runs.
public struct BenchStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The README's INSERT for one request, as a website sends it, with its values as parameters.
    public static func websiteInsert(
        requestID: String, checkpoint: String, lorasJSON: String, promptJSON: String, workflowJSON: String, priority: Int
    ) -> PostgresQuery {
        """
        INSERT INTO image_generation_queue (request_id, checkpoint, loras, prompt, workflow, priority)
        VALUES (\(requestID), \(checkpoint), \(PostgresRawJSON(lorasJSON))::jsonb,
                \(PostgresRawJSON(promptJSON))::jsonb, \(PostgresRawJSON(workflowJSON))::jsonb, \(priority))
        ON CONFLICT (request_id) DO NOTHING
        """
    }

    public func queueRows() async throws -> Int {
        Int(try await client.query("SELECT count(*)::bigint FROM image_generation_queue")[0].decode(Int64.self, at: 0))
    }

    public func storedFiles() async throws -> Int {
        Int(try await client.query("SELECT count(*)::bigint FROM image_generation_files")[0].decode(Int64.self, at: 0))
    }

    /// Empties the queue (and what hangs off it).
    public func emptyQueue() async throws {
        try await client.query("TRUNCATE image_generation_queue CASCADE")
    }

    /// Empties items, files and batches, and makes new batch ids start at `firstBatchID`.
    public func startAfresh(firstBatchID: Int64) async throws {
        try await client.query("TRUNCATE image_generation_files, image_generation_queue, batches RESTART IDENTITY CASCADE")
        try await client.query(PostgresQuery(sql: "ALTER TABLE batches ALTER COLUMN id RESTART WITH \(firstBatchID)"))
    }

    public func serverVersion() async throws -> String {
        try await client.query("SHOW server_version")[0].decode(String.self, at: 0)
    }
}

extension Migrator {
    /// Whether `spotq migrate` has made the schema in this database.
    public static func schemaIsApplied(_ client: PostgresClient) async throws -> Bool {
        try await client.query("SELECT to_regclass('image_generation_queue') IS NOT NULL")[0].decode(Bool.self, at: 0)
    }
}
