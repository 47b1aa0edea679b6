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

@Suite("events: pod, asset and image events into pod_events")
struct EventRecorderTests {
    @Test func events_areRecordedOnce_updateItems_andBadOnesAreDeadLettered() async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            _ = try await TopologyDeclarer.declareStandard(amqpURL: fixture.amqp.configuration.url, logger: testLogger)
            let messages = (0..<3).map { index in
                let request = TextToImageRequest(requestID: "e-\(index)", checkpoint: EnqueueFixture.checkpoint, positive: "x")
                return EnqueueMessage(requestID: request.requestID, body: request.messageJSON())
            }
            _ = try await QueueStore(client: fixture.postgres).insert(messages)
            let (batches, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: String(repeating: "s", count: 32))
            let batch = batches[0].id
            try await fixture.postgres.query("UPDATE image_generation_queue SET status = 'queued'")
            let items = try await fixture.postgres.query("SELECT id FROM image_generation_queue ORDER BY id").map { try $0.decode(Int64.self, at: 0) }
            let pod = SpotqEvent.Pod(provider: "devcloud", id: "pod-1")
            let events = [
                SpotqEvent(eventKey: "k1", kind: .state, batchID: batch, pod: pod, state: .downloading),
                SpotqEvent(eventKey: "k2", kind: .assetReady, batchID: batch, pod: pod, detail: ["filename": .string(EnqueueFixture.checkpoint), "seconds": .number(3.5)]),
                SpotqEvent(eventKey: "k3", kind: .imageStarted, batchID: batch, itemID: items[0], pod: pod),
                SpotqEvent(eventKey: "k3", kind: .imageStarted, batchID: batch, itemID: items[0], pod: pod),
                SpotqEvent(eventKey: "k4", kind: .imageFailed, batchID: batch, itemID: items[1], pod: pod, detail: ["reason": .string("ComfyUI: out of memory"), "final": .bool(false)]),
                SpotqEvent(eventKey: "k5", kind: .imageFailed, batchID: batch, itemID: items[2], pod: pod, detail: ["reason": .string("value_not_in_list"), "final": .bool(true)]),
                SpotqEvent(eventKey: "k6", kind: .imageInterrupted, batchID: batch, itemID: items[0], pod: pod),
            ]
            try await fixture.connection.withChannel { channel in
                for event in events {
                    try await channel.publish(exchange: BrokerNames.eventsExchange, routingKey: event.routingKey, body: Array(try SpotqEvent.encoder.encode(event)))
                }
                try await channel.publish(exchange: BrokerNames.eventsExchange, routingKey: "image.done.\(batch)", body: Array("{\"not\": \"an event\"}".utf8))
                let unknownBatch = SpotqEvent(eventKey: "k7", kind: .assetReady, batchID: 987_654, pod: pod)
                try await channel.publish(exchange: BrokerNames.eventsExchange, routingKey: unknownBatch.routingKey, body: Array(try SpotqEvent.encoder.encode(unknownBatch)))
            }
            let recorder = EventRecorder(amqp: fixture.amqp, store: EventStore(client: fixture.postgres), logger: testLogger)
            let task = Task { try await recorder.recordForever() }
            do {
                try await eventually("6 recorded events") {
                    try await fixture.postgres.query("SELECT count(*)::bigint FROM pod_events")[0].decode(Int64.self, at: 0) == 6
                }
                let dead = try await fixture.deadLetters(2, from: BrokerNames.deadLetterQueue).map { $0.reason ?? "" }
                #expect(dead.contains { $0.contains("not a version-1 spotq event") })
                #expect(dead.contains { $0.contains("batch_id") || $0.contains("987654") })
            } catch {
                task.cancel()
                _ = await task.result
                throw error
            }
            task.cancel()
            _ = await task.result
            let rows = try await fixture.postgres.query("SELECT id, status, attempts, interruptions, coalesce(last_error, '') FROM image_generation_queue ORDER BY id")
            let state = try rows.map { "\(try $0.decode(String.self, at: 1))/\(try $0.decode(Int.self, at: 2))/\(try $0.decode(Int.self, at: 3))/\(try $0.decode(String.self, at: 4))" }
            #expect(state == ["queued/0/1/", "queued/1/0/ComfyUI: out of memory", "failed/1/0/value_not_in_list"])
            let kinds = try await fixture.postgres.query("SELECT kind, coalesce(state, '') FROM pod_events ORDER BY occurred_at, id").map { "\(try $0.decode(String.self, at: 0))\(try $0.decode(String.self, at: 1))" }
            #expect(kinds.contains("statedownloading"))
            #expect(kinds.filter { $0 == "image.started" }.count == 1)
        }
    }
}
