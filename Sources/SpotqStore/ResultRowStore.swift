import Foundation
import PostgresClient
import SpotqCore

/// The rows of a stored result: the item it answers, its `image_generation_files` rows and
/// the item's `done` status, written in one transaction with the item's row locked, so two
/// uploads of the same item (a retry, or a second pod after a reclaim) cannot both store it.
/// The image bytes themselves are the caller's (SpotqIngest's `ResultStore`).
public struct ResultRowStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// An item as an upload sees it.
    public struct Item: Sendable, Equatable {
        public var batchID: Int64?
        public var requestID: String
        /// Its result is stored already.
        public var isDone: Bool
    }

    public func item(_ id: Int64) async throws -> Item? {
        let rows = try await client.query("SELECT batch_id, request_id, status = \(ItemStatus.done) FROM image_generation_queue WHERE id = \(id)")
        guard let row = rows.first else { return nil }
        return Item(batchID: try row.decode(Int64?.self, at: 0), requestID: try row.decode(String.self, at: 1), isDone: try row.decode(Bool.self, at: 2))
    }

    /// One image file of a result, where it is stored (relative to the storage folder).
    public struct StoredFile: Sendable, Equatable {
        public var row: BundleFileRow
        public var storagePath: String

        public init(row: BundleFileRow, storagePath: String) {
            self.row = row
            self.storagePath = storagePath
        }
    }

    /// Locks the item's row; unless it is done already, runs `moveIntoPlace` (the files'
    /// final renames: a throw rolls everything back), inserts the file rows and marks the
    /// item done. False when it was done already (nothing is moved or written).
    public func recordDone(item: Int64, files: [StoredFile], moveIntoPlace: () async throws -> Void) async throws -> Bool {
        try await client.withTransaction { connection in
            let status = try await connection.query("SELECT status = \(ItemStatus.done) FROM image_generation_queue WHERE id = \(item) FOR UPDATE")
            guard let row = status.first else { throw StoreError(message: "item \(item) vanished while its result was being stored") }
            guard try !row.decode(Bool.self, at: 0) else { return false }
            try await moveIntoPlace()
            for file in files {
                try await connection.query("""
                    INSERT INTO image_generation_files (item_id, filename, bytes, sha256, content_type, storage_path)
                    VALUES (\(item), \(file.row.filename), \(file.row.bytes), \(file.row.sha256), \(file.row.contentType), \(file.storagePath))
                    ON CONFLICT (item_id, filename) DO NOTHING
                    """)
            }
            try await connection.query("""
                UPDATE image_generation_queue SET status = \(ItemStatus.target(of: .stored)), finished_at = now(), last_error = NULL
                WHERE id = \(item) AND status = ANY(\(ItemStatus.sources(of: .stored).sql))
                """)
            return true
        }
    }
}
