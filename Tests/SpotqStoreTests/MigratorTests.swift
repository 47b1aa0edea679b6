import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing

@Suite("spotq migrate: database")
struct MigratorTests {
    let folder = TestEnvironment.packageRoot().appendingPathComponent("migrations")

    @Test func migrate_appliesEveryFileOnce_andASecondRunDoesNothing() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            let migrator = Migrator(client: client, logger: testLogger)
            let files = try MigrationDirectory.load(folder)
            let first = try await migrator.migrate(files)
            #expect(first.applied.count == files.count)
            let second = try await migrator.migrate(files)
            #expect(second.applied.isEmpty)
            #expect(second.alreadyApplied == files.count)
            let tables = try await client.query("""
                SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY(\(
                    PostgresArray(["image_generation_queue", "image_generation_files", "assets", "batches", "pods", "pod_events"])))
                """)
            #expect(try tables.first?.decode(Int.self, column: "n") == 6)
            await client.shutdown()
        }
    }

    @Test func migrate_whenAnAppliedFileWasEdited_refusesBeforeChangingAnything() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            let migrator = Migrator(client: client, logger: testLogger)
            let files = try MigrationDirectory.load(folder)
            _ = try await migrator.migrate(Array(files.prefix(1)))
            let edited = try Migration(fileName: "0001_\(files[0].name).sql", sql: files[0].sql + "\n-- edited\n")
            await #expect(throws: MigrationError.self) {
                try await migrator.migrate([edited] + files.dropFirst())
            }
            #expect(try await migrator.applied().count == 1)
            await client.shutdown()
        }
    }

    @Test func pendingInsert_notifiesOnce_perStatement() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            _ = try await Migrator(client: client, logger: testLogger).migrate(try MigrationDirectory.load(folder))
            let sha = String(repeating: "a", count: 64)
            try await client.query("""
                INSERT INTO assets (filename, kind, size_bytes, sha256, source_url)
                VALUES ('base.safetensors', 'checkpoint', 1000, \(sha), 'http://127.0.0.1/base.safetensors')
                """)
            let events = PostgresListener(configuration: configuration, logger: testLogger).events(channels: ["spotq_pending"])
            let payload = try await withTimeout(.seconds(15), "the pending notification") {
                for await event in events {
                    switch event {
                    case .listening:
                        try await client.query("""
                            INSERT INTO image_generation_queue (request_id, checkpoint, prompt, workflow)
                            SELECT 'r' || g, 'base.safetensors', '{"positive": "a cat"}',
                                   '{"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}}}'
                            FROM generate_series(1, 3) g
                            """)
                    case .notification(let n): return n.payload
                    case .connectionLost: break
                    }
                }
                return ""
            }
            #expect(payload == "3")
            await client.shutdown()
        }
    }

    @Test func badRows_failWithAMessageThatNamesTheRule() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            _ = try await Migrator(client: client, logger: testLogger).migrate(try MigrationDirectory.load(folder))
            let unknown = try await #require(throws: PostgresError.self) {
                try await client.query("""
                    INSERT INTO image_generation_queue (request_id, checkpoint, prompt, workflow)
                    VALUES ('r1', 'nope.safetensors', '{"positive": "x"}', '{"1": {"class_type": "X", "inputs": {}}}')
                    """)
            }
            #expect(unknown.sqlState == "23503")
            #expect(unknown.message == "unknown checkpoint \"nope.safetensors\"")
            #expect(unknown.hint?.contains("spotq assets import") == true)

            let badHash = try await #require(throws: PostgresError.self) {
                try await client.query("""
                    INSERT INTO assets (filename, kind, size_bytes, sha256, source_url)
                    VALUES ('x.safetensors', 'checkpoint', 1, 'XYZ', 'http://127.0.0.1/x')
                    """)
            }
            #expect(badHash.sqlState == "23514")
            #expect(badHash.constraint == "sha256_is_64_lowercase_hex")
            await client.shutdown()
        }
    }
}
