import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

@Suite("end to end: server, provisioner and devcloud as processes")
struct EndToEndTests {
    @Test func withRandomReclaimsAndKills_everyImageIsDoneExactlyOnce_andThePodsAreReleased() async throws {
        let images = 90
        try await FleetWorld.with(images: images, devcloudArguments: [
            "--gpu-failure-rate", "0", "--break-gpu", "2", "--reclaim-every", "4", "--reclaim-grace", "2", "--min-bid", "0.13", "--seed", "7",
        ]) { world in
            // Besides devcloud's random ones: a hard kill early, then a reclaim (SIGTERM, SIGKILL 2 s later).
            try await world.untilSettled(images, timeout: .seconds(240), inject: [(10, "/devcloud/reclaim-one?hard=true"), (40, "/devcloud/reclaim-one")])
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == images)
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == images)
            #expect(try await world.count("SELECT count(*) FROM (SELECT item_id FROM image_generation_files GROUP BY 1 HAVING count(*) > 1) twice") == 0)
            let summary = try await world.devcloudSummary()
            #expect((summary["reclaims"] ?? 0) >= 1 && (summary["kills"] ?? 0) >= 1, "chaos happened: \(summary)")
            #expect(summary["broken_gpus"] == 1)
            // The broken pod was replaced, reclaims were recorded, and every pod is released.
            try await eventually("every pod terminated", timeout: .seconds(30)) {
                try await world.count("SELECT count(*) FROM pods WHERE state <> 'terminated'") == 0
            }
            try await eventually("devcloud holds no pod (nothing left costing money)", timeout: .seconds(10)) {
                try await world.devcloudSummary()["pods"] == 0
            }
            #expect(try await world.count("SELECT count(*) FROM pods WHERE last_error = 'its GPU check failed'") == 1)
            #expect(try await world.count("SELECT coalesce(sum(interruptions), 0) FROM pods") >= 2)
            #expect(try await world.count("SELECT count(*) FROM pods WHERE bid_usd_per_gpu_hour = 0.13") >= 1)  // 0.12 refused, 0.13 taken
            #expect(try await world.count("SELECT count(*) FROM pods WHERE accrued_usd <= 0 AND provider_pod_id IS NOT NULL") == 0)
            // `spotq cost` accounts for it: every image, every pod, the reclaims.
            let cost = try await Shell.capture(try ChildProcess.spotqBinary(), ["cost", "--json", "--log-level", "error", "--database-url", world.fixture.database.url])
            #expect(cost.exitCode == 0, "\(cost.output)")
            let report = try JSONSerialization.jsonObject(with: Data(cost.output.utf8)) as? [String: Any]
            #expect(report?["images_done"] as? Int == images)
            #expect((report?["total_usd"] as? Double ?? 0) > 0)
            #expect((report?["interruptions"] as? Int ?? 0) >= 2)
            // The operators' views agree.
            let url = world.fixture.database.url
            let status = try await Shell.capture(try ChildProcess.spotqBinary(), ["status", "--json", "--log-level", "error", "--database-url", url])
            let summary2 = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
            #expect((summary2?["items_by_status"] as? [String: Int])?["done"] == images, "\(status.output)")
            #expect((summary2?["usd_today"] as? Double ?? 0) > 0)
            let pods = try await Shell.capture(try ChildProcess.spotqBinary(), ["pods", "--all", "--json", "--log-level", "error", "--database-url", url])
            #expect((try JSONSerialization.jsonObject(with: Data(pods.output.utf8)) as? [[String: Any]])?.count == (try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id IS NOT NULL")))
            let batches = try await Shell.capture(try ChildProcess.spotqBinary(), ["batches", "--all", "--json", "--log-level", "error", "--database-url", url])
            let doneInBatches = (try JSONSerialization.jsonObject(with: Data(batches.output.utf8)) as? [[String: Any]])?.reduce(0) { $0 + ($1["done"] as? Int ?? 0) }
            #expect(doneInBatches == images)
            // The broker URL holds a password: by environment, never on the command line.
            let refused = try await Shell.capture(try ChildProcess.spotqBinary(), ["queues", "--log-level", "error", "--database-url", url, "--amqp-url", world.fixture.amqp.configuration.url])
            #expect(refused.exitCode != 0 && refused.output.contains("--amqp-url holds a password"), "\(refused.output)")
            let queues = try ChildProcess(try ChildProcess.spotqBinary(), ["queues", "--json", "--sample", "0.2", "--log-level", "error", "--database-url", url], environment: [
                "SPOTQ_AMQP_URL": world.fixture.amqp.configuration.url,
            ])
            let queuesExit = await queues.wait(timeout: .seconds(60))
            let queuesOutput = queues.output
            await queues.cleanUp()
            #expect(queuesExit == 0 && queuesOutput.contains("\"spotq.dead\""), "\(queuesOutput)")
            // And so does /metrics, for Prometheus, on the ops listener.
            let metrics = try await Shell.capture("/usr/bin/curl", ["-fsS", world.opsURL + "/metrics"]).output
            #expect(metrics.contains("spotq_items{status=\"done\"} \(images)"), "\(metrics)")
            #expect(metrics.contains("spotq_images_stored \(images)"))
            #expect(metrics.contains("spotq_queue_ready{queue=\"spotq.dead\"} 0"))
            let stored = metrics.firstMatch(of: /spotq_uploads_total\{outcome="stored"\} (\d+)/).flatMap { Int($0.1) }
            #expect(stored == images)
            let interruptions = metrics.firstMatch(of: /spotq_interruptions (\d+)/).flatMap { Int($0.1) }
            #expect((interruptions ?? 0) >= 2)
            let bytes = metrics.firstMatch(of: /spotq_model_download_bytes ([0-9.e+]+)/).flatMap { Double($0.1) }
            #expect((bytes ?? 0) > 0)
            print("end to end: \(images) images, devcloud \(summary), pods \(try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id IS NOT NULL"))")
        }
    }
}
