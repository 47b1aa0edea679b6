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

/// Heartbeats' reports kept on the pod's row (migration 0019), the ones that cannot be
/// believed refused with their reason, and what operators see of them.
@Suite("events: what heartbeats say, on the pod's row")
struct HeartbeatRecordingTests {
    /// A queued batch of two items and a rented pod working for it.
    func rentedPod(_ fixture: EnqueueFixture) async throws -> (batch: Int64, items: [Int64], pod: Int64) {
        let messages = (0..<2).map { index in
            let request = TextToImageRequest(requestID: "hb-\(index)", checkpoint: EnqueueFixture.checkpoint, positive: "x")
            return EnqueueMessage(requestID: request.requestID, body: request.messageJSON())
        }
        _ = try await QueueStore(client: fixture.postgres).insert(messages)
        let (batches, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: String(repeating: "s", count: 32))
        try await fixture.postgres.query("UPDATE image_generation_queue SET status = 'queued'")
        let items = try await fixture.postgres.query("SELECT id FROM image_generation_queue ORDER BY id").map { try $0.decode(Int64.self, at: 0) }
        let pods = PodStore(client: fixture.postgres)
        let id = try await pods.insertRequested(.init(
            batchID: batches[0].id, provider: "devcloud", name: "spotq-hb", gpuType: "A4000", gpuCount: 1, interruptible: true, bidUSDPerGPUHour: 0.12,
            volumeGB: 20, containerDiskGB: 1, storageUSDPerGBMonth: 0.1))
        try await pods.rented(id, providerPodID: "hb-1", interruptible: true, bid: 0.12, priceUSDPerHour: 0.12)
        return (batches[0].id, items, id)
    }

    @Test func aHeartbeatsActivity_isKeptOnItsPod_andOnesWithAbsurdFieldsAreDeadLetteredWithTheReason() async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            _ = try await TopologyDeclarer.declareStandard(amqpURL: fixture.amqp.configuration.url, logger: testLogger)
            let (batch, items, id) = try await rentedPod(fixture)
            let pod = SpotqEvent.Pod(provider: "devcloud", id: "hb-1")
            let now = Date()
            let report = HeartbeatReport(activity: .generating, since: now.addingTimeInterval(-40), progressAt: now.addingTimeInterval(-45), itemID: items[0], promptID: "prompt-1")
            let since = JSONScalar.string(HeartbeatReport(activity: .starting, since: now, progressAt: now).detail["activity_since"]!.stringValue!)
            let events = [
                SpotqEvent(eventKey: "hb-good", kind: .heartbeat, batchID: batch, itemID: items[0], pod: pod, detail: report.detail),
                SpotqEvent(eventKey: "hb-mining", kind: .heartbeat, batchID: batch, pod: pod, detail: ["activity": .string("mining"), "activity_since": since, "progress_at": since]),
                SpotqEvent(eventKey: "hb-future", kind: .heartbeat, batchID: batch, pod: pod, detail: [
                    "activity": .string("generating"), "activity_since": since,
                    "progress_at": .string(HeartbeatReport(activity: .starting, since: now, progressAt: now.addingTimeInterval(86_400)).detail["progress_at"]!.stringValue!),
                ]),
            ]
            try await fixture.connection.withChannel { channel in
                for event in events {
                    try await channel.publish(exchange: BrokerNames.eventsExchange, routingKey: event.routingKey, body: Array(try SpotqEvent.encoder.encode(event)))
                }
            }
            let recorder = EventRecorder(amqp: fixture.amqp, store: EventStore(client: fixture.postgres), logger: testLogger)
            let task = Task { try await recorder.recordForever() }
            let expectRecorded = { () async throws -> Void in
                try await eventually("the good heartbeat on the pod's row") {
                    try await fixture.postgres.count("SELECT count(*) FROM pods WHERE id = \(id) AND activity = 'generating'") == 1
                }
                let dead = try await fixture.deadLetters(2, from: BrokerNames.deadLetterQueue).map { $0.reason ?? "" }
                #expect(dead.contains { $0.hasPrefix("heartbeat refused: unknown activity 'mining'") }, "\(dead)")
                #expect(dead.contains { $0.hasPrefix("heartbeat refused: progress_at") && $0.contains("is in the future") }, "\(dead)")
                // Still the good one's word: the refused ones changed nothing.
                let row = try #require(try await FleetStatusStore(client: fixture.postgres).pods(includeTerminated: false).first { $0.id == id })
                #expect(row.activity == "generating" && row.activityItemID == items[0] && row.activityPromptID == "prompt-1")
                #expect(row.doing == "generating item \(items[0])")
                #expect(abs((row.activitySince ?? .distantPast).timeIntervalSince(report.since)) < 0.01)
                #expect(abs((row.progressAt ?? .distantPast).timeIntervalSince(report.progressAt)) < 0.01)
                let provisioned = try #require(try await PodStore(client: fixture.postgres).pod(id))
                #expect(provisioned.fleetPod.activity == .generating && provisioned.fleetPod.progressAt != nil)
            }
            let outcome: Result<Void, any Error>
            do { outcome = .success(try await expectRecorded()) } catch { outcome = .failure(error) }
            task.cancel()
            _ = await task.result
            try outcome.get()
        }
    }

    @Test func aPodsImageDone_movesItsProgressOn_andAResumeForgetsTheOldWorkersWord() async throws {
        try await EnqueueFixture.with { fixture in
            let (batch, items, id) = try await rentedPod(fixture)
            let store = EventStore(client: fixture.postgres)
            let pod = SpotqEvent.Pod(provider: "devcloud", id: "hb-1")
            let stale = Date().addingTimeInterval(-600)
            try await store.record(SpotqEvent(
                eventKey: "hb-1", kind: .heartbeat, batchID: batch, itemID: items[1], pod: pod,
                detail: HeartbeatReport(activity: .uploading, since: stale, progressAt: stale, itemID: items[1]).detail), podRowID: id)
            #expect(try await fixture.postgres.count("SELECT count(*) FROM pods WHERE id = \(id) AND progress_at < now() - interval '500 seconds'") == 1)
            try await store.record(SpotqEvent(eventKey: "done-1", kind: .imageDone, batchID: batch, itemID: items[1], pod: pod), podRowID: id)
            #expect(try await fixture.postgres.count("SELECT count(*) FROM pods WHERE id = \(id) AND progress_at > now() - interval '60 seconds'") == 1)
            // A heartbeat naming an item of another batch is refused like any forged event.
            await #expect(throws: EventStore.Rejected.self) {
                try await store.record(SpotqEvent(
                    eventKey: "hb-2", kind: .heartbeat, batchID: batch, itemID: 987_654, pod: pod,
                    detail: HeartbeatReport(activity: .generating, since: Date(), progressAt: Date(), itemID: 987_654).detail), podRowID: id)
            }
            // A pod whose clock runs an hour behind: 30 s without progress, not an hour.
            let recording = Date()
            let behind = recording.addingTimeInterval(-3_600)
            try await store.record(SpotqEvent(
                eventKey: "hb-3", kind: .heartbeat, batchID: batch, pod: pod,
                detail: HeartbeatReport(activity: .waitingForAsset, since: behind.addingTimeInterval(-30), progressAt: behind.addingTimeInterval(-30)).detail,
                occurredAt: behind), podRowID: id)
            // 30 s before the moment it was recorded (however long that took under load).
            let progress = try await fixture.postgres.query(
                "SELECT extract(epoch FROM progress_at)::float8 FROM pods WHERE id = \(id) AND activity = 'waiting_for_asset'"
            ).first.flatMap { try $0.decode(Double?.self, at: 0) }
            let recorded = Date()
            #expect(progress.map { $0 >= recording.timeIntervalSince1970 - 40 && $0 <= recorded.timeIntervalSince1970 - 20 } == true, "progress_at \(String(describing: progress))")
            try await PodStore(client: fixture.postgres).resuming(id, bid: nil)
            #expect(try await fixture.postgres.count("SELECT count(*) FROM pods WHERE id = \(id) AND activity IS NULL AND progress_at IS NULL AND activity_item_id IS NULL") == 1)
        }
    }

    @Test func theSchema_takesEveryActivityTheWorkerReports_andNoOther() async throws {
        try await EnqueueFixture.with { fixture in
            let (_, _, id) = try await rentedPod(fixture)
            for activity in WorkerActivity.allCases {
                try await fixture.postgres.query("UPDATE pods SET activity = \(activity.rawValue), activity_since = now(), progress_at = now() WHERE id = \(id)")
            }
            await #expect(throws: PostgresError.self) {
                try await fixture.postgres.query("UPDATE pods SET activity = 'mining', activity_since = now(), progress_at = now() WHERE id = \(id)")
            }
            // An activity comes with its times.
            await #expect(throws: PostgresError.self) {
                try await fixture.postgres.query("UPDATE pods SET activity = 'generating', activity_since = now(), progress_at = NULL WHERE id = \(id)")
            }
        }
    }
}
