import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing

/// The whole system as separate processes, the way an operator runs it: `spotq devcloud`
/// (RunPod's API, pods as `spotq worker` processes, a model host), `spotq server` and
/// `spotq provisioner`, in a database and vhost of their own.
struct FleetWorld: Sendable {
    let fixture: EnqueueFixture
    let root: URL
    let apiURL: String
    let apiKey: String
    let serverURL: String
    var processes: [(String, ChildProcess)] = []

    static let models: [(String, AssetKind, Int64)] = [
        ("e2e_base.safetensors", .checkpoint, 20_000_000), ("e2e_anime.safetensors", .checkpoint, 12_000_000),
        ("e2e_ink.safetensors", .lora, 2_000_000),
    ]

    func count(_ sql: String) async throws -> Int {
        try await fixture.postgres.count(sql)
    }

    var logs: String {
        processes.map { "--- \($0.0):\n\($0.1.output.split(separator: "\n").suffix(25).joined(separator: "\n"))" }.joined(separator: "\n")
    }

    /// Starts devcloud (`devcloudArguments` added), registers the models, enqueues `images`
    /// requests, starts server and provisioner; runs `body`; stops everything.
    static func with(images: Int, devcloudArguments: [String], _ body: (FleetWorld) async throws -> Void) async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_e2e"))
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            let (apiPort, modelsPort, httpPort) = (try FreePort.find(), try FreePort.find(), try FreePort.find())
            let apiKey = "e2e-" + UUID().uuidString
            let secret = String(repeating: "e", count: 48)
            var world = FleetWorld(fixture: fixture, root: root, apiURL: "http://127.0.0.1:\(apiPort)", apiKey: apiKey, serverURL: "http://127.0.0.1:\(httpPort)")
            let spotq = try ChildProcess.spotqBinary()
            let base: [String: String] = ["SPOTQ_DATABASE_URL": fixture.database.url, "SPOTQ_AMQP_URL": fixture.amqp.configuration.url, "SPOTQ_LOG_LEVEL": "info"]
            let assetArguments = models.flatMap { ["--asset", "\($0.0):\($0.1.rawValue):\($0.2)"] }
            defer { for (_, process) in world.processes { process.signal(SIGTERM) } }
            world.processes.append(("devcloud", try ChildProcess(spotq, ["devcloud", "--port", "\(apiPort)", "--assets-port", "\(modelsPort)", "--api-key", apiKey,
                "--work-dir", root.appendingPathComponent("devcloud").path, "--mbps", "800", "--seconds-per-image", "0.2", "--start-seconds", "0.5",
                "--worker-env", "SPOTQ_IDLE_EXIT_SECONDS=3", "--worker-env", "SPOTQ_TERMINATION_GRACE_MS=1500"] + assetArguments + devcloudArguments, environment: base)))
            try await fixture.eventually("devcloud listening", timeout: .seconds(30)) {
                (try? Shell.capture("/usr/bin/curl", ["-fsS", "http://127.0.0.1:\(apiPort)/healthz"]))?.exitCode == 0
            }
            _ = try await AssetStore(client: fixture.postgres).importAssets(models.map { name, kind, size in
                Asset(filename: name, kind: kind, sizeBytes: size, sha256: DeterministicBytes(filename: name, size: size).sha256(), sourceURL: "http://127.0.0.1:\(modelsPort)/models/\(name)")
            })
            let requests = (0..<images).map { index in
                TextToImageRequest(requestID: "e2e-\(index)", checkpoint: models[index % 3 == 0 ? 1 : 0].0,
                                   loras: index % 4 == 1 ? [LoraUse(file: models[2].0, strength: 0.7)] : [], positive: "e2e \(index)")
            }
            let outcomes = try await QueueStore(client: fixture.postgres).insert(requests.map { EnqueueMessage(requestID: $0.requestID, body: $0.messageJSON()) })
            guard outcomes.allSatisfy({ if case .accepted = $0 { true } else { false } }) else { throw TestEnvironmentError(description: "setup: \(outcomes)") }
            // 0.2 s per image is 18,000 an hour; about 6 s of work per pod gives a fleet of several.
            let planning: [String: String] = [
                "SPOTQ_SECRET": secret, "SPOTQ_GPU_IMAGES_PER_HOUR": "18000", "SPOTQ_PLAN_TARGET_POD_HOURS": "0.0017",
                "SPOTQ_PLAN_MIN_BATCH_HOURS": "0.001", "SPOTQ_SETUP_SECONDS": "1", "SPOTQ_DOWNLOAD_MBPS": "800",
                "SPOTQ_PLAN_AT_ITEMS": "1", "SPOTQ_PLAN_AFTER_SECONDS": "1",
            ]
            world.processes.append(("server", try ChildProcess(spotq, ["server"], environment: base.merging(planning) { $1 }.merging([
                "SPOTQ_HTTP_ADDR": "127.0.0.1:\(httpPort)", "SPOTQ_STORAGE_DIR": root.appendingPathComponent("images").path, "SPOTQ_DEMAND_INTERVAL_SECONDS": "1",
            ]) { $1 })))
            world.processes.append(("provisioner", try ChildProcess(spotq, ["provisioner"], environment: base.merging(planning) { $1 }.merging([
                "SPOTQ_RUNPOD_API_URL": "http://127.0.0.1:\(apiPort)/graphql", "SPOTQ_RUNPOD_API_KEY": apiKey,
                "SPOTQ_POD_SERVER_URL": "http://127.0.0.1:\(httpPort)", "SPOTQ_PROVISION_INTERVAL_SECONDS": "1",
                "SPOTQ_DEMAND_MAX_AGE_SECONDS": "20", "SPOTQ_MAX_PODS": "5", "SPOTQ_POD_START_TIMEOUT_SECONDS": "30",
            ]) { $1 })))
            do {
                try await body(world)
            } catch {
                Issue.record("logs:\n\(world.logs)")
                throw error
            }
            for (name, process) in world.processes {
                process.signal(SIGTERM)
                let status = await process.wait(timeout: .seconds(20))
                #expect(status == 0, "\(name) did not stop cleanly: \(process.output.suffix(2_000))")
                await process.cleanUp()
            }
        }
    }

    /// Waits until every item is settled (done or failed).
    /// Waits until every item is settled; `inject` runs once when `at` images are done.
    func untilSettled(_ images: Int, timeout: Duration, inject: [(at: Int, path: String)] = []) async throws {
        let deadline = ContinuousClock.now + timeout
        var pending = inject
        while try await count("SELECT count(*) FROM image_generation_queue WHERE status IN ('done', 'failed', 'dead')") < images {
            let done = try await count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
            // An injection that found no pod to hit (all between lives) is tried again next look.
            if let next = pending.first, done >= next.at,
               (try? Shell.capture("/usr/bin/curl", ["-fsS", "-X", "POST", apiURL + next.path]))?.exitCode == 0 {
                pending.removeFirst()
            }
            for (name, process) in processes where await process.wait(timeout: .zero) != nil {
                throw TestEnvironmentError(description: "spotq \(name) stopped:\n\(process.output.suffix(3_000))")
            }
            guard ContinuousClock.now < deadline else {
                throw TestEnvironmentError(description: "not all \(images) images settled within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    func devcloudSummary() throws -> [String: Int] {
        let text = try Shell.capture("/usr/bin/curl", ["-fsS", apiURL + "/devcloud/summary"]).output
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Int]) ?? [:]
    }
}

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
            let summary = try world.devcloudSummary()
            #expect((summary["reclaims"] ?? 0) >= 1 && (summary["kills"] ?? 0) >= 1, "chaos happened: \(summary)")
            #expect(summary["broken_gpus"] == 1)
            // The broken pod was replaced, reclaims were recorded, and every pod is released.
            try await world.fixture.eventually("every pod terminated", timeout: .seconds(30)) {
                try await world.count("SELECT count(*) FROM pods WHERE state <> 'terminated'") == 0
            }
            try await world.fixture.eventually("devcloud holds no pod (nothing left costing money)", timeout: .seconds(10)) {
                try world.devcloudSummary()["pods"] == 0
            }
            #expect(try await world.count("SELECT count(*) FROM pods WHERE last_error = 'its GPU check failed'") == 1)
            #expect(try await world.count("SELECT coalesce(sum(interruptions), 0) FROM pods") >= 2)
            #expect(try await world.count("SELECT count(*) FROM pods WHERE bid_usd_per_gpu_hour = 0.13") >= 1)  // 0.12 refused, 0.13 taken
            #expect(try await world.count("SELECT count(*) FROM pods WHERE accrued_usd <= 0 AND provider_pod_id IS NOT NULL") == 0)
            // `spotq cost` accounts for it: every image, every pod, the reclaims.
            let cost = try Shell.capture(try ChildProcess.spotqBinary(), ["cost", "--json", "--log-level", "error", "--database-url", world.fixture.database.url])
            #expect(cost.exitCode == 0, "\(cost.output)")
            let report = try JSONSerialization.jsonObject(with: Data(cost.output.utf8)) as? [String: Any]
            #expect(report?["images_done"] as? Int == images)
            #expect((report?["total_usd"] as? Double ?? 0) > 0)
            #expect((report?["interruptions"] as? Int ?? 0) >= 2)
            // The operators' views agree.
            let url = world.fixture.database.url
            let status = try Shell.capture(try ChildProcess.spotqBinary(), ["status", "--json", "--log-level", "error", "--database-url", url])
            let summary2 = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
            #expect((summary2?["items_by_status"] as? [String: Int])?["done"] == images, "\(status.output)")
            #expect((summary2?["usd_today"] as? Double ?? 0) > 0)
            let pods = try Shell.capture(try ChildProcess.spotqBinary(), ["pods", "--all", "--json", "--log-level", "error", "--database-url", url])
            #expect((try JSONSerialization.jsonObject(with: Data(pods.output.utf8)) as? [[String: Any]])?.count == (try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id IS NOT NULL")))
            let batches = try Shell.capture(try ChildProcess.spotqBinary(), ["batches", "--all", "--json", "--log-level", "error", "--database-url", url])
            let doneInBatches = (try JSONSerialization.jsonObject(with: Data(batches.output.utf8)) as? [[String: Any]])?.reduce(0) { $0 + ($1["done"] as? Int ?? 0) }
            #expect(doneInBatches == images)
            let queues = try Shell.capture(try ChildProcess.spotqBinary(), ["queues", "--json", "--sample", "0.2", "--log-level", "error", "--database-url", url, "--amqp-url", world.fixture.amqp.configuration.url])
            #expect(queues.exitCode == 0 && queues.output.contains("\"spotq.dead\""), "\(queues.output)")
            // And so does /metrics, for Prometheus.
            let metrics = try Shell.capture("/usr/bin/curl", ["-fsS", world.serverURL + "/metrics"]).output
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
