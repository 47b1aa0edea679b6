import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

/// The stores apply the lifecycles of SpotqCore/Lifecycle to real rows: only the moves the
/// transition functions allow happen, and reading never changes state.
@Suite("lifecycles in the database")
struct LifecycleStoreTests {
    /// Three items planned into one batch, which is then marked queued (as the publisher would).
    func queuedBatch(_ fixture: EnqueueFixture) async throws -> (batch: Int64, items: [Int64]) {
        let messages = (0..<3).map { index in
            let request = TextToImageRequest(requestID: "life-\(index)", checkpoint: EnqueueFixture.checkpoint, positive: "x")
            return EnqueueMessage(requestID: request.requestID, body: request.messageJSON())
        }
        _ = try await QueueStore(client: fixture.postgres).insert(messages)
        let (batches, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: String(repeating: "s", count: 32))
        let batch = batches[0].id
        let items = try await fixture.postgres.query("SELECT id FROM image_generation_queue ORDER BY id").map { try $0.decode(Int64.self, at: 0) }
        try await BatchStore(client: fixture.postgres).published(items: items)
        try await BatchStore(client: fixture.postgres).finishPublishing(batch)
        return (batch, items)
    }

    func status(_ fixture: EnqueueFixture, _ sql: String) async throws -> String {
        try await fixture.postgres.query(PostgresQuery(sql: sql))[0].decode(String.self, at: 0)
    }

    @Test func aPodsOwnReports_moveItOnlyAsItsLifecycleAllows() async throws {
        try await EnqueueFixture.with { fixture in
            let (batch, _) = try await queuedBatch(fixture)
            let pods = PodStore(client: fixture.postgres)
            let id = try await pods.insertRequested(.init(batchID: batch, provider: "devcloud", name: "spotq-life", gpuType: "A4000", gpuCount: 1, interruptible: true, bidUSDPerGPUHour: 0.12, volumeGB: 20, containerDiskGB: 1, storageUSDPerGBMonth: 0.1))
            try await pods.rented(id, providerPodID: "life-1", interruptible: true, bid: 0.12, priceUSDPerHour: 0.12)
            let events = EventStore(client: fixture.postgres)
            var sequence = 0
            func report(_ state: PodState) async throws {
                sequence += 1
                try await events.record(SpotqEvent(eventKey: "life-\(sequence)", kind: .state, batchID: batch, pod: .init(provider: "devcloud", id: "life-1"), state: state))
            }
            func state() async throws -> PodState? { try await pods.pod(id)?.state }

            try await report(.generating)
            #expect(try await state() == .generating)
            try await report(.terminated)  // a pod cannot end its own record
            try await report(.reclaimed)
            #expect(try await state() == .generating)
            #expect(try await pods.providerStatus(id, .exited) == true)
            #expect(try await state() == .reclaimed)
            try await report(.draining)  // late, from before the reclaim
            #expect(try await state() == .reclaimed)
            try await pods.resuming(id, bid: 0.13)
            #expect(try await state() == .starting)
            try await pods.terminated(id, reason: "test")
            try await report(.generating)
            #expect(try await state() == .terminated)
            // Every report is kept in pod_events, refused moves included.
            #expect(try await fixture.postgres.count("SELECT count(*) FROM pod_events WHERE kind = 'state'") == 5)
        }
    }

    @Test func aBatch_becomesRunningOnItsFirstStartedImage() async throws {
        try await EnqueueFixture.with { fixture in
            let (batch, items) = try await queuedBatch(fixture)
            #expect(try await status(fixture, "SELECT status FROM batches WHERE id = \(batch)") == "queued")
            try await EventStore(client: fixture.postgres).record(SpotqEvent(eventKey: "s1", kind: .imageStarted, batchID: batch, itemID: items[0], pod: .init(provider: "devcloud", id: "p")))
            #expect(try await status(fixture, "SELECT status || '/' || (started_at IS NOT NULL) FROM batches WHERE id = \(batch)") == "running/true")
            #expect(try await status(fixture, "SELECT status FROM image_generation_queue WHERE id = \(items[0])") == "running")
        }
    }

    @Test func aRecordedWorkDeadLetter_failsItsItem_andAReplayQueuesItAgain() async throws {
        try await EnqueueFixture.with { fixture in
            let (batch, items) = try await queuedBatch(fixture)
            let store = DeadLetterStore(client: fixture.postgres)
            let body = Array(#"{"version": 1, "batch_id": \#(batch), "item_id": \#(items[1])}"#.utf8)
            // The broker's delivery limit: a dead letter with no pod event behind it.
            let id = try await store.record(DeadLetter(
                reason: "delivery limit 5 reached", originExchange: BrokerNames.workExchange, originRoutingKey: BrokerNames.batchQueue(batch),
                originQueue: BrokerNames.batchQueue(batch), deathCount: 5, deadLetteredAt: Date(), messageID: "item-\(items[1])", contentType: "application/json",
                headersJSON: "{}", body: body))
            #expect(try await status(fixture, "SELECT status || '/' || last_error FROM image_generation_queue WHERE id = \(items[1])") == "failed/delivery limit 5 reached")
            #expect(try await status(fixture, "SELECT status FROM image_generation_queue WHERE id = \(items[0])") == "queued")
            // A dead letter naming another batch's queue changes nothing.
            _ = try await store.record(DeadLetter(
                reason: "forged", originExchange: BrokerNames.workExchange, originRoutingKey: BrokerNames.batchQueue(batch + 1),
                originQueue: nil, deathCount: 1, deadLetteredAt: Date(), messageID: nil, contentType: nil, headersJSON: "{}",
                body: Array(#"{"batch_id": \#(batch), "item_id": \#(items[2])}"#.utf8)))
            #expect(try await status(fixture, "SELECT status FROM image_generation_queue WHERE id = \(items[2])") == "queued")
            try await store.replayed(try #require(try await store.entry(id)))
            #expect(try await status(fixture, "SELECT status || '/' || coalesce(last_error, '-') FROM image_generation_queue WHERE id = \(items[1])") == "queued/-")
        }
    }

    @Test func readingDemand_changesNoState_settlingIsItsOwnStep() async throws {
        try await EnqueueFixture.with { fixture in
            let (batch, _) = try await queuedBatch(fixture)
            try await fixture.postgres.query("UPDATE image_generation_queue SET status = 'done', finished_at = now() WHERE id = (SELECT min(id) FROM image_generation_queue)")
            try await fixture.postgres.query("UPDATE image_generation_queue SET status = 'failed' WHERE status <> 'done'")
            #expect(try await DemandStore(client: fixture.postgres).remaining().isEmpty)
            #expect(try await FleetStatusStore(client: fixture.postgres).batches(includeFinished: false).map(\.id) == [batch])
            #expect(try await status(fixture, "SELECT status FROM batches WHERE id = \(batch)") == "queued")
            let settled = try await BatchStore(client: fixture.postgres).settleFinished()
            #expect(settled.map(\.batchID) == [batch] && settled.map(\.status) == [.done])
            #expect(try await status(fixture, "SELECT status FROM batches WHERE id = \(batch)") == "done")
            #expect(try await BatchStore(client: fixture.postgres).settleFinished().isEmpty)
        }
    }
}
