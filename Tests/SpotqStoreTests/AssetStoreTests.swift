import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic

/// A migrated temporary database.
func withMigratedDatabase(_ body: (PostgresClient) async throws -> Void) async throws {
    try await TemporaryDatabase.with { configuration in
        let client = PostgresClient(configuration: configuration, logger: testLogger)
        do {
            let migrations = try MigrationDirectory.load(TestEnvironment.packageRoot().appendingPathComponent("migrations"))
            _ = try await Migrator(client: client, logger: testLogger).migrate(migrations)
            try await body(client)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

@Suite("assets import: the registry")
struct AssetStoreTests {
    let base = Asset(filename: "base.safetensors", kind: .checkpoint, sizeBytes: 6_938_078_334, sha256: String(repeating: "a", count: 64), sourceURL: "https://h.example/base")
    let style = Asset(filename: "style.safetensors", kind: .lora, sizeBytes: 228_460_000, sha256: String(repeating: "b", count: 64), sourceURL: "https://h.example/style")

    @Test func importingTheSameFileTwice_changesNothingTheSecondTime() async throws {
        try await withMigratedDatabase { client in
            let store = AssetStore(client: client)
            let first = try await store.importAssets([base, style])
            #expect(first.inserts.count == 2)
            let stamp = try await client.query("SELECT max(updated_at) FROM assets")[0].decode(Date.self, at: 0)
            let second = try await store.importAssets([base, style])
            #expect(second.inserts.isEmpty && second.sourceURLUpdates.isEmpty && second.conflicts.isEmpty)
            #expect(second.unchanged.count == 2)
            #expect(try await client.query("SELECT max(updated_at) FROM assets")[0].decode(Date.self, at: 0) == stamp)
            #expect(try await store.list() == [base, style])
        }
    }

    @Test func aDifferentSizeOrHash_isReportedAndNotOverwritten_whileOthersImport() async throws {
        try await withMigratedDatabase { client in
            let store = AssetStore(client: client)
            _ = try await store.importAssets([base])
            var resized = base
            resized.sizeBytes += 1
            var moved = base
            moved.sourceURL = "https://mirror.example/base"
            let plan = try await store.importAssets([resized, style])
            #expect(plan.conflicts.map(\.filename) == ["base.safetensors"])
            #expect(plan.inserts == [style])
            #expect(try await store.list() == [base, style])
            let update = try await store.importAssets([moved])
            #expect(update.sourceURLUpdates == [moved])
            #expect(try await store.list().first == moved)
        }
    }
}

@Suite("enqueue by SQL: the shared insert path")
struct QueueStoreTests {
    func register(_ client: PostgresClient) async throws {
        _ = try await AssetStore(client: client).importAssets([
            Asset(filename: "base.safetensors", kind: .checkpoint, sizeBytes: 10, sha256: String(repeating: "a", count: 64), sourceURL: "https://h/base"),
            Asset(filename: "style.safetensors", kind: .lora, sizeBytes: 10, sha256: String(repeating: "b", count: 64), sourceURL: "https://h/style"),
        ])
    }

    func message(_ id: String, checkpoint: String = "base.safetensors") -> EnqueueMessage {
        EnqueueMessage(requestID: id, body: TextToImageRequest(requestID: id, checkpoint: checkpoint, positive: "p").messageJSON())
    }

    @Test func oneBadRequest_isRejectedWithTheDatabasesReason_andTheOthersAreInserted() async throws {
        try await withMigratedDatabase { client in
            try await register(client)
            let store = QueueStore(client: client)
            let outcomes = try await store.insert([message("a"), message("b", checkpoint: "missing.safetensors"), message("c"), message("a")])
            #expect(outcomes[0] != .duplicate)
            guard case .rejected(let reason) = outcomes[1] else { Issue.record("expected a rejection"); return }
            #expect(reason.contains(#"unknown checkpoint "missing.safetensors""#))
            #expect(reason.contains("spotq assets import"))
            if case .accepted = outcomes[2] {} else { Issue.record("c should be accepted") }
            #expect(outcomes[3] == .duplicate)
            let again = try await store.insert([message("c")])
            #expect(again == [.duplicate])
            #expect(try await store.pendingDemand().items == 2)
        }
    }

    @Test func withinOneBatch_theFirstCopyOfARequestIDWins() async throws {
        try await withMigratedDatabase { client in
            try await register(client)
            let outcomes = try await QueueStore(client: client).insert([message("x"), message("x"), message("x")])
            guard case .accepted(let id) = outcomes[0] else { Issue.record("expected the first to be accepted"); return }
            #expect(id > 0)
            #expect(Array(outcomes.dropFirst()) == [.duplicate, .duplicate])
        }
    }
}
