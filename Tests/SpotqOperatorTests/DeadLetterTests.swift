import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqBroker
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("dead letters: kept in PostgreSQL, replayed, purged")
struct DeadLetterTests {
    /// A vhost with the standard topology, and the recorder consuming spotq.dead.
    static func withRecorder(_ body: @Sendable (EnqueueFixture, DeadLetterStore) async throws -> Void) async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            _ = try await TopologyDeclarer.declareStandard(amqpURL: fixture.amqp.configuration.url, logger: testLogger)
            let store = DeadLetterStore(client: fixture.postgres)
            let recorder = DeadLetterRecorder(amqp: fixture.amqp, store: store, logger: testLogger)
            let running = Task { try await recorder.recordForever() }
            defer { running.cancel() }
            try await body(fixture, store)
        }
    }

    func count(_ fixture: EnqueueFixture, _ sql: String) async throws -> Int {
        try await fixture.postgres.count(sql)
    }

    @Test func spotqsAndTheBrokersDeadLetters_areRecordedWithReasonOriginAndBody_thenAcked() async throws {
        try await Self.withRecorder { fixture, store in
            // One spotq dead-letters itself (with a reason), one the broker dead-letters (a reject).
            try await fixture.connection.withChannel { channel in
                var properties = AMQPMessageProperties(contentType: "application/json", correlationID: "c-1", replyTo: "website.answers", messageID: "m-1")
                properties.headers = [BrokerNames.reasonHeader: "unknown checkpoint \"x.safetensors\"", BrokerNames.originExchangeHeader: .string(BrokerNames.enqueueExchange),
                                      BrokerNames.originRoutingKeyHeader: "image.request", BrokerNames.originQueueHeader: .string(BrokerNames.enqueueQueue),
                                      BrokerNames.deadLetteredAtHeader: "2026-11-23T10:00:00Z", "x-website-tag": "summer"]
                try await channel.publish(AMQPOutgoingMessage(exchange: BrokerNames.deadLetterExchange, routingKey: "image.request", body: Array(#"{"request_id":"r-1"}"#.utf8), properties: properties))
                try await channel.publish(exchange: BrokerNames.enqueueExchange, routingKey: "image.request", body: Array("rejected by a consumer".utf8))
                let consumer = try await channel.consume(queue: BrokerNames.enqueueQueue)
                for try await delivery in consumer {
                    try await delivery.reject(requeue: false)
                    break
                }
            }
            try await eventually("both recorded, spotq.dead empty") {
                let dead = try await fixture.connection.withChannel { try await $0.declareQueuePassive(BrokerNames.deadLetterQueue).messageCount }
                return try await store.list().count == 2 && dead == 0
            }
            let entries = try await store.list()
            let ours = try #require(entries.first { $0.messageID == "m-1" })
            #expect(ours.reason == #"unknown checkpoint "x.safetensors""#)
            #expect(ours.originExchange == BrokerNames.enqueueExchange && ours.originRoutingKey == "image.request" && ours.originQueue == BrokerNames.enqueueQueue)
            #expect(ours.deadLetteredAt == ISO8601DateFormatter().date(from: "2026-11-23T10:00:00Z"))
            #expect(String(decoding: ours.body, as: UTF8.self) == #"{"request_id":"r-1"}"#)
            let brokers = try #require(entries.first { $0.messageID == nil })
            #expect(brokers.reason == "broker: rejected")
            #expect(brokers.originQueue == BrokerNames.enqueueQueue && brokers.originExchange == BrokerNames.enqueueExchange)
            #expect(brokers.deathCount == 1)
        }
    }

    @Test func aReplay_goesBackToItsOrigin_withItsPropertiesButNotTheDeadLetterHeaders_andIsRecorded() async throws {
        try await Self.withRecorder { fixture, store in
            try await fixture.connection.withChannel { channel in
                var properties = AMQPMessageProperties(contentType: "application/json", correlationID: "c-9", replyTo: "website.answers", messageID: "m-9")
                properties.headers = [BrokerNames.reasonHeader: "PostgreSQL was down too long", BrokerNames.originExchangeHeader: .string(BrokerNames.enqueueExchange),
                                      BrokerNames.originRoutingKeyHeader: "image.request", BrokerNames.originQueueHeader: .string(BrokerNames.enqueueQueue), "x-attempt": 2]
                try await channel.publish(AMQPOutgoingMessage(exchange: BrokerNames.deadLetterExchange, routingKey: "image.request", body: Array("{}".utf8), properties: properties))
            }
            try await eventually("recorded") { try await store.list().count == 1 }
            let entry = try await store.list()[0]
            try await DeadLetterReplayer(amqp: fixture.amqp, store: store).replay(entry)
            let replayed = try await fixture.connection.withChannel { channel -> AMQPDelivery? in
                for try await delivery in try await channel.consume(queue: BrokerNames.enqueueQueue) {
                    try await delivery.ack()
                    return delivery
                }
                return nil
            }
            let message = try #require(replayed)
            #expect(message.properties.correlationID == "c-9" && message.properties.replyTo == "website.answers" && message.properties.messageID == "m-9")
            #expect(message.properties.headers?["x-attempt"]?.intValue == 2)
            #expect(message.properties.headers?["x-spotq-replayed-from"]?.intValue == entry.id)
            #expect(message.properties.headers?[BrokerNames.reasonHeader] == nil)
            let after = try #require(try await store.entry(entry.id))
            #expect(after.replayCount == 1 && after.replayedAt != nil)
        }
    }

    @Test func aReplayedWorkItem_isQueuedAgain_withItsBatch_soTheFleetSeesIt() async throws {
        try await Self.withRecorder { fixture, store in
            _ = try await QueueStore(client: fixture.postgres).insert([EnqueueMessage(requestID: "w-1", body: TextToImageRequest(requestID: "w-1", checkpoint: EnqueueFixture.checkpoint, positive: "x").messageJSON())])
            let batch = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: String(repeating: "d", count: 32)).batches[0].id
            try await BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: testLogger).publishPending()
            // The worker dead-letters it (ComfyUI refused it); the item and batch end failed.
            try await fixture.connection.withChannel { channel in
                for try await delivery in try await channel.consume(queue: BrokerNames.batchQueue(batch)) {
                    try await channel.publish(AMQPOutgoingMessage.deadLetter(of: delivery, queue: BrokerNames.batchQueue(batch), exchange: BrokerNames.deadLetterExchange, reason: "ComfyUI refused the workflow"))
                    try await delivery.ack()
                    break
                }
            }
            try await fixture.postgres.query("UPDATE image_generation_queue SET status = 'failed', last_error = 'ComfyUI refused the workflow'")
            #expect(try await DemandStore(client: fixture.postgres).remaining().isEmpty)
            try await eventually("recorded") { try await store.list(reason: "ComfyUI").count == 1 }
            try await DeadLetterReplayer(amqp: fixture.amqp, store: store).replay(try await store.list()[0])
            #expect(try await fixture.ready(BrokerNames.batchQueue(batch)) == 1)
            #expect(try await count(fixture, "SELECT count(*) FROM image_generation_queue WHERE status = 'queued' AND last_error IS NULL") == 1)
            #expect(try await DemandStore(client: fixture.postgres).remaining().map(\.remainingItems) == [1])
        }
    }

    @Test func nothingIsCapped_purgeHidesButKeeps_andTheCLIListsShowsAndPurges() async throws {
        try await Self.withRecorder { fixture, store in
            try await fixture.connection.withChannel { channel in
                let messages = (0..<300).map { index in
                    AMQPOutgoingMessage(exchange: BrokerNames.deadLetterExchange, routingKey: "x", body: Array("poison \(index)".utf8), properties: AMQPMessageProperties(
                        headers: [BrokerNames.reasonHeader: .string(index % 3 == 0 ? "model missing: 404" : "workflow refused")]))
                }
                _ = try await channel.publishBatch(messages)
            }
            try await eventually("all 300 recorded", timeout: .seconds(90)) { try await store.list().count == 300 }
            let spotq = try ChildProcess.spotqBinary()
            let url = fixture.database.url
            let listed = try await Shell.capture(spotq, ["dlq", "list", "--reason", "404", "--json", "--log-level", "error", "--database-url", url])
            #expect(listed.exitCode == 0)
            #expect((try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])?.count == 100)
            let first = try await store.list()[0].id
            let shown = try await Shell.capture(spotq, ["dlq", "show", "\(first)", "--log-level", "error", "--database-url", url])
            #expect(shown.output.contains("reason:         model missing: 404") && shown.output.contains("poison 0"))
            let purged = try await Shell.capture(spotq, ["dlq", "purge", "--all", "--reason", "404", "--log-level", "error", "--database-url", url])
            #expect(purged.output.contains("purged 100 dead letters"))
            #expect(try await store.list().count == 200)
            #expect(try await store.list(includePurged: true).count == 300)
            let refused = try await Shell.capture(spotq, ["dlq", "replay", "--log-level", "error", "--database-url", url])
            #expect(refused.exitCode != 0 && refused.output.contains("give dead letter ids, or --all"))
        }
    }
}
