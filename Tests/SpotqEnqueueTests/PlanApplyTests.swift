import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("spotq plan --apply: batches, manifests, publishing")
struct PlanApplyTests {
    static let secret = String(repeating: "s", count: 40)

    /// Enqueues `count` items (a third with the fixture's LoRA) through the shared insert path.
    func enqueue(_ fixture: EnqueueFixture, _ count: Int, prefix: String = "p") async throws {
        let messages = (0..<count).map { index in
            let request = TextToImageRequest(
                requestID: "\(prefix)-\(index)", checkpoint: EnqueueFixture.checkpoint,
                loras: index % 3 == 0 ? [LoraUse(file: EnqueueFixture.lora, strength: 0.5)] : [], positive: "image \(index)")
            return EnqueueMessage(requestID: request.requestID, body: request.messageJSON())
        }
        _ = try await QueueStore(client: fixture.postgres).insert(messages)
    }

    /// Takes every message of `queue` (acking them) and returns their bodies.
    func drain(_ fixture: EnqueueFixture, _ queue: String, count: Int) async throws -> [[String: Any]] {
        let channel = try await fixture.connection.openChannel()
        let consumer = try await channel.consume(queue: queue)
        let bodies = try await withTimeout(.seconds(20), "\(count) work messages") { () -> [[UInt8]] in
            var bodies: [[UInt8]] = []
            for try await delivery in consumer {
                try await delivery.ack()
                bodies.append(delivery.body)
                if bodies.count == count { break }
            }
            return bodies
        }
        try? await channel.close()
        return bodies.map { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] ?? [:] }
    }

    @Test func apply_writesBatchManifestAndTokenHash_assignsEveryItem_andPublishesInGenerationOrder() async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            try await enqueue(fixture, 30)
            let (batches, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: Self.secret)
            #expect(batches.count == 1)
            let id = batches[0].id
            let row = try await fixture.postgres.query("SELECT status, item_count, manifest::text, upload_token_hash FROM batches WHERE id = \(id)")[0]
            #expect(try row.decode(String.self, at: 0) == "planned")
            #expect(try row.decode(Int.self, at: 1) == 30)
            let manifest = try JSONDecoder().decode(BatchManifest.self, from: Data(try row.decode(String.self, at: 2).utf8))
            #expect(manifest.assets.map(\.filename) == [EnqueueFixture.checkpoint, EnqueueFixture.lora])
            #expect(manifest.assets[0].sha256 == String(repeating: "1", count: 64))
            #expect(try row.decode(String.self, at: 3) == BatchToken.hash(BatchToken.make(secret: Self.secret, batchID: id)))
            #expect(!(try row.decode(String.self, at: 2)).contains(BatchToken.make(secret: Self.secret, batchID: id)))

            let published = try await BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: testLogger).publishPending()
            #expect(published == .init(batches: 1, messages: 30))
            let statuses = try await fixture.postgres.query("SELECT status, count(*)::bigint FROM image_generation_queue GROUP BY 1").map { try $0.decode(String.self, at: 0) }
            #expect(statuses == ["queued"])
            let bodies = try await drain(fixture, BrokerNames.batchQueue(id), count: 30)
            #expect(bodies.map { $0["position"] as? Int } == (0..<30).map { $0 })
            // Items that need only the checkpoint come before those waiting on the LoRA.
            let needsLoRA = bodies.map { (($0["loras"] as? [Any]) ?? []).isEmpty ? 0 : 1 }
            #expect(needsLoRA == needsLoRA.sorted())
            #expect(bodies.allSatisfy { $0["workflow"] is [String: Any] && $0["batch_id"] as? Int64 == id })
            #expect(try await fixture.postgres.query("SELECT status FROM batches WHERE id = \(id)")[0].decode(String.self, at: 0) == "queued")
        }
    }

    @Test func aPublisherThatDiesHalfWay_isFinishedByTheNextRun_withEveryItemPublished() async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            try await enqueue(fixture, 120)
            let (batches, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: Self.secret)
            let id = batches[0].id
            struct Crash: Error {}
            var dying = BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: testLogger)
            dying.chunkSize = 50
            dying.afterChunk = { _, published in if published >= 50 { throw Crash() } }
            await #expect(throws: Crash.self) { try await dying.publishPending() }
            let planned = try await fixture.postgres.query("SELECT count(*)::bigint FROM image_generation_queue WHERE status = 'planned'")[0].decode(Int64.self, at: 0)
            #expect(planned == 70)
            #expect(try await fixture.postgres.query("SELECT status FROM batches WHERE id = \(id)")[0].decode(String.self, at: 0) == "publishing")

            let rest = try await BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: testLogger).publishPending()
            #expect(rest.messages == 70)
            let bodies = try await drain(fixture, BrokerNames.batchQueue(id), count: 120)
            #expect(bodies.compactMap { $0["position"] as? Int } == Array(0..<120))
            #expect(try await fixture.postgres.query("SELECT status FROM batches WHERE id = \(id)")[0].decode(String.self, at: 0) == "queued")
            // Nothing left to do: a third run publishes nothing.
            #expect(try await BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: testLogger).publishPending().messages == 0)
        }
    }

    @Test func theServersPlanner_plansWhenEnoughImagesArePending() async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            var settings = PlanningSettings()
            settings.planAtItems = 20
            var planner = AutoPlanner(
                settings: settings, secret: Self.secret, postgres: fixture.postgres,
                listener: PostgresListener(configuration: fixture.database, logger: testLogger),
                publisher: BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: testLogger), logger: testLogger)
            planner.rescanInterval = .seconds(3600)
            let decisions = DemandLog()
            planner.onDecision = { demand, due in if !due { decisions.append(demand) } }
            let ready = planner
            let task = Task { try await ready.planForever() }
            do {
                try await enqueue(fixture, 10, prefix: "early")
                try await eventually("the planner judging 10 pending images") { decisions.all.contains { $0.items == 10 } }
                #expect(try await fixture.postgres.query("SELECT count(*)::bigint FROM batches")[0].decode(Int64.self, at: 0) == 0, "10 of 20 is not enough yet")
                try await enqueue(fixture, 10, prefix: "late")
                try await eventually("a queued batch") {
                    try await fixture.postgres.query("SELECT count(*)::bigint FROM batches WHERE status = 'queued'")[0].decode(Int64.self, at: 0) == 1
                }
            } catch {
                task.cancel()
                _ = await task.result
                throw error
            }
            task.cancel()
            _ = await task.result
            let id = try await fixture.postgres.query("SELECT id FROM batches")[0].decode(Int64.self, at: 0)
            #expect(try await drain(fixture, BrokerNames.batchQueue(id), count: 20).count == 20)
        }
    }
}
