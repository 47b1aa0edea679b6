import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqTestSupport
import SpotqWorker
import Testing
@testable import ServerTestSupport

/// A real worker's heartbeats, recorded on its pod's row by the real event recorder: what it
/// is doing, and a progress mark that moves while its download's bytes advance and stands
/// still while an image hangs in ComfyUI.
@Suite("pod worker: what its heartbeats say")
struct HeartbeatActivityTests {
    struct Row: Sendable {
        var activity: String?
        var asset: String?
        var bytes: Int64?
        var item: Int64?
        var prompt: String?
        var since: Date?
        var progress: Date?
        var seen: Date?
    }

    static func row(_ world: PodWorld) async throws -> Row {
        let row = try await world.fixture.postgres.query("""
            SELECT activity, activity_asset, activity_bytes, activity_item_id, activity_prompt_id, activity_since, progress_at, last_seen_at
            FROM pods WHERE provider_pod_id = 'pod-1'
            """)[0]
        return Row(
            activity: try row.decode(String?.self, at: 0), asset: try row.decode(String?.self, at: 1), bytes: try row.decode(Int64?.self, at: 2),
            item: try row.decode(Int64?.self, at: 3), prompt: try row.decode(String?.self, at: 4), since: try row.decode(Date?.self, at: 5),
            progress: try row.decode(Date?.self, at: 6), seen: try row.decode(Date?.self, at: 7))
    }

    @Test func itsHeartbeatsSayDownloadingWithBytesThatAdvance_thenGeneratingItsItem_withProgressStandingStillWhileTheImageHangs() async throws {
        // About 5 s for the checkpoint; then every image takes ten minutes.
        try await PodWorld.with(secondsPerImage: 600, models: PodWorld.Models(bytesPerSecond: 400_000), requests: { checkpoint, _ in
            (0..<2).map { PodWorld.request("hang-\($0)", checkpoint: checkpoint) }
        }) { world in
            try await world.fixture.postgres.query("""
                INSERT INTO pods (batch_id, provider, provider_pod_id, gpu_type, interruptible, state)
                VALUES (\(world.batch), 'devcloud', 'pod-1', 'A4000', false, 'requested')
                """)
            var configuration = world.workerConfiguration()
            configuration.heartbeatInterval = .seconds(1)
            let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
            defer { worker.cancel() }

            let first = try await eventually("a heartbeat saying it downloads", timeout: .seconds(30), poll: .milliseconds(100)) { () -> Row? in
                let row = try await Self.row(world)
                return row.activity == "downloading" && (row.bytes ?? 0) > 0 ? row : nil
            }
            #expect(first.asset == PodWorld.checkpoint || first.asset == PodWorld.lora)
            let later = try await eventually("a later one with more bytes, and progress with them", timeout: .seconds(30), poll: .milliseconds(100)) { () -> Row? in
                let row = try await Self.row(world)
                return row.activity == "downloading" && row.asset == first.asset && (row.bytes ?? 0) > (first.bytes ?? 0) ? row : nil
            }
            #expect((later.progress ?? .distantPast) > (first.progress ?? .distantFuture), "bytes advancing are progress")
            #expect(later.since == first.since, "the same download since it began")

            let hanging = try await eventually("a heartbeat saying it generates", timeout: .seconds(60), poll: .milliseconds(100)) { () -> Row? in
                let row = try await Self.row(world)
                return row.activity == "generating" && row.prompt != nil ? row : nil
            }
            let items = try await world.fixture.postgres.query("SELECT id FROM image_generation_queue").map { try $0.decode(Int64.self, at: 0) }
            #expect(hanging.item.map(items.contains) == true)
            // Two more heartbeats: alive, same activity, and no step forward.
            let stuck = try await eventually("two more heartbeats", timeout: .seconds(30), poll: .milliseconds(100)) { () -> Row? in
                let row = try await Self.row(world)
                return (row.seen ?? .distantPast) > (hanging.seen ?? .distantFuture).addingTimeInterval(2) ? row : nil
            }
            #expect(stuck.activity == "generating" && stuck.item == hanging.item && stuck.prompt == hanging.prompt)
            #expect(stuck.since == hanging.since)
            #expect(stuck.progress == hanging.progress, "an image that hangs moves nothing forward")
            #expect((stuck.progress ?? .distantFuture) <= (stuck.since ?? .distantPast), "its last progress came before the image began")
            worker.cancel()
            _ = await worker.result
        }
    }
}
