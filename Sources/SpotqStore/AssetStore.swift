import Foundation
import Logging
import PostgresClient
import SpotqCore

/// The asset registry: every checkpoint and LoRA queue items may name.
public struct AssetStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Every registered asset, checkpoints first, by file name.
    public func list() async throws -> [Asset] {
        let rows = try await client.query("""
            SELECT filename, kind, size_bytes, sha256, source_url FROM assets ORDER BY kind, filename
            """)
        return try rows.map(Self.asset)
    }

    /// Registers what is new, updates moved source URLs, and reports conflicts without
    /// touching them, all in one transaction: the registry never holds half an import.
    /// Re-importing the same file changes nothing.
    public func importAssets(_ incoming: [Asset]) async throws -> AssetImportPlan {
        try await client.withTransaction { connection in
            // Two imports at once see each other's rows, rather than both inserting one name.
            try await connection.runScript("LOCK TABLE assets IN SHARE ROW EXCLUSIVE MODE")
            let names = PostgresArray(incoming.map(\.filename))
            let rows = try await connection.query("""
                SELECT filename, kind, size_bytes, sha256, source_url FROM assets WHERE filename = ANY(\(names))
                """)
            var registered: [String: Asset] = [:]
            for row in rows {
                let asset = try Self.asset(row)
                registered[asset.filename] = asset
            }
            let plan = AssetImportPlan(incoming: incoming, registered: registered)
            if !plan.inserts.isEmpty {
                try await connection.query("""
                    INSERT INTO assets (filename, kind, size_bytes, sha256, source_url)
                    SELECT filename, kind, size_bytes, sha256, source_url
                    FROM jsonb_to_recordset(\(PostgresJSON(plan.inserts))::jsonb)
                        AS a(filename text, kind text, size_bytes bigint, sha256 text, source_url text)
                    """)
            }
            for asset in plan.sourceURLUpdates {
                try await connection.query("UPDATE assets SET source_url = \(asset.sourceURL) WHERE filename = \(asset.filename)")
            }
            return plan
        }
    }

    static func asset(_ row: PostgresRow) throws -> Asset {
        let kindText = try row.decode(String.self, column: "kind")
        guard let kind = AssetKind(rawValue: kindText) else {
            throw StoreError(message: "assets row has unknown kind '\(kindText)'")
        }
        return Asset(
            filename: try row.decode(String.self, column: "filename"),
            kind: kind,
            sizeBytes: try row.decode(Int64.self, column: "size_bytes"),
            sha256: try row.decode(String.self, column: "sha256"),
            sourceURL: try row.decode(String.self, column: "source_url"))
    }
}
