import Foundation
import Logging
import PostgresClient
import SpotqCore

/// Applies `migrations/` to the database: each pending file in its own transaction,
/// recorded with its checksum in `spotq_schema_migrations`.
///
/// Two `spotq migrate` runs at once are safe: the second waits on an advisory lock and
/// then finds nothing to do.
public struct Migrator: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    /// The outcome of a run.
    public struct Report: Sendable {
        public var applied: [String]
        public var alreadyApplied: Int
    }

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies what is pending. Refuses (before changing anything) when an applied file
    /// was edited, is missing, or a new file is numbered below an applied one.
    public func migrate(_ migrations: [Migration]) async throws -> Report {
        try await client.withConnection { connection in
            try await connection.runScript("""
                CREATE TABLE IF NOT EXISTS spotq_schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text        NOT NULL,
                    checksum   text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    duration_ms integer    NOT NULL
                )
                """)
            try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", timeout: .seconds(600))
            do {
                let report = try await applyPending(migrations, on: connection)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
                return report
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
                throw error
            }
        }
    }

    /// The migrations recorded as applied, oldest first.
    public func applied() async throws -> [AppliedMigration] {
        try await client.withConnection { try await Self.applied(on: $0) }
    }

    private func applyPending(_ migrations: [Migration], on connection: PostgresConnection) async throws -> Report {
        let applied = try await Self.applied(on: connection)
        let pending = try MigrationPlanner.pending(files: migrations, applied: applied)
        var report = Report(applied: [], alreadyApplied: applied.count)
        for migration in pending {
            let started = ContinuousClock.now
            do {
                try await connection.withTransaction { transaction in
                    try await transaction.runScript(migration.sql, timeout: .seconds(3600))
                    let elapsed = ContinuousClock.now - started
                    let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                    try await transaction.query("""
                        INSERT INTO spotq_schema_migrations (version, name, checksum, duration_ms)
                        VALUES (\(migration.version), \(migration.name), \(migration.checksum), \(milliseconds))
                        """)
                }
            } catch let error as PostgresError {
                throw StoreError(message: "migration \(migration.label) failed and was rolled back: \(error)")
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.label)"])
            report.applied.append(migration.label)
        }
        return report
    }

    private static func applied(on connection: PostgresConnection) async throws -> [AppliedMigration] {
        let exists = try await connection.query("SELECT to_regclass('spotq_schema_migrations') IS NOT NULL AS present")
        guard try exists.first?.decode(Bool.self, column: "present") == true else { return [] }
        let rows = try await connection.query("SELECT version, name, checksum FROM spotq_schema_migrations ORDER BY version")
        return try rows.map { row in
            AppliedMigration(
                version: try row.decode(Int.self, column: "version"),
                name: try row.decode(String.self, column: "name"),
                checksum: try row.decode(String.self, column: "checksum"))
        }
    }

    /// An arbitrary constant naming spotq's migration lock among other advisory locks.
    static let lockKey: Int64 = 0x5370_6F74_714D_6967  // "SpotqMig"
}
