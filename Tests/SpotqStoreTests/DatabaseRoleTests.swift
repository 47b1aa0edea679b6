import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing

@Suite("database roles: the components' least privilege, made by migration 0015")
struct DatabaseRoleTests {
    @Test func ourSCRAMVerifier_isTheOnePostgreSQLStoresForThePassword() async throws {
        try await TemporaryDatabase.with { database in
            let client = PostgresClient(configuration: database, logger: testLogger)
            let role = TestEnvironment.uniqueName("spotq_scram_t")
            let password = randomHex(bytes: 24)
            // PostgreSQL hashes this password itself (a test's throwaway), with a salt of its choosing.
            try await client.withConnection { try await $0.runScript("SET password_encryption = 'scram-sha-256'; CREATE ROLE \(PostgresQuery.quoteIdentifier(role)) PASSWORD \(PostgresQuery.quoteLiteral(password))") }
            let stored = try await client.query("SELECT rolpassword FROM pg_authid WHERE rolname = \(role)")[0].decode(String.self, at: 0)
            try await DatabaseLoginStore(client: client).dropLogin(role)
            await client.shutdown()
            // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
            let parts = stored.split(separator: "$")
            let head = try #require(parts.count == 3 ? parts[1].split(separator: ":") : nil)
            let iterations = try #require(Int(head[0]))
            let salt = try #require(Data(base64Encoded: String(head[1])))
            #expect(PostgresSCRAM.verifier(password: password, salt: Array(salt), iterations: iterations) == stored)
            #expect(PostgresSCRAM.verifier(password: password + "x", salt: Array(salt), iterations: iterations) != stored)
        }
    }

    @Test func theServersAndProvisionersRoles_canDoTheirOwnWritesOnly() async throws {
        try await TemporaryDatabase.with { database in
            let owner = PostgresClient(configuration: database, logger: testLogger)
            let migrations = try MigrationDirectory.load(TestEnvironment.packageRoot().appendingPathComponent("migrations"))
            _ = try await Migrator(client: owner, logger: testLogger).migrate(migrations)
            await owner.shutdown()
            func denied(_ group: String, _ statements: [String]) async throws {
                try await TemporaryLogin.with(memberOf: group, on: database) { login in
                    let client = PostgresClient(configuration: login, logger: testLogger)
                    for statement in statements {
                        do {
                            try await client.withConnection { try await $0.runScript(statement) }
                            Issue.record("\(group) may run: \(statement)")
                        } catch let error as PostgresError {
                            #expect(error.sqlState == "42501", "\(group), \(statement): \(error)")
                        }
                    }
                    await client.shutdown()
                }
            }
            try await denied("spotq_server", [
                "UPDATE assets SET source_url = 'https://attacker.example/x'",
                "INSERT INTO pods (batch_id, provider, name, gpu_type, gpu_count, interruptible, volume_gb, container_disk_gb, state) VALUES (1, 'runpod', 'x', 'g', 1, true, 1, 1, 'requested')",
                "UPDATE pods SET upload_token_hash = repeat('0', 64)",
                "DELETE FROM image_generation_queue",
                "INSERT INTO fleet_cost_days (day, usd) VALUES (current_date, 0)",
                "CREATE TABLE spotq_planted (x int)",
            ])
            try await denied("spotq_provisioner", [
                "UPDATE batches SET upload_token_hash = repeat('0', 64)",
                "SELECT * FROM image_generation_queue",
                "UPDATE assets SET sha256 = repeat('0', 64)",
                "INSERT INTO dead_letters (reason) VALUES ('x')",
                "DELETE FROM image_generation_files",
            ])
        }
    }
}
