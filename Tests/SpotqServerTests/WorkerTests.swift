import AMQPClient
import Foundation
import Hummingbird
import Logging
import PostgresClient
import PostgresTestSupport
import SpotqBroker
import SpotqCore
import SpotqDevcloud
import SpotqHTTP
import SpotqServer
import SpotqStore
import SpotqTestSupport
import SpotqWorker
import Testing
import SpotqSynthetic

/// A whole pod's world on loopback: the database and a vhost of their own, the server's HTTP
/// API (which a test can take down and bring back) and event recorder, devcloud's model
/// host, spot metadata and ComfyUI stand-in, and a planned, published batch whose models
/// the model host serves.
struct PodWorld: Sendable {
    static let secret = String(repeating: "w", count: 40)
    static let checkpoint = "pod_base.safetensors"
    static let lora = "pod_style.safetensors"
    static let checkpointSize: Int64 = 2_000_000
    static let loraSize: Int64 = 1_200_000

    /// How the model host behaves.
    struct Models: Sendable {
        var bytesPerSecond = 0
        var missing: Set<String> = []
    }

    let fixture: EnqueueFixture
    let batch: Int64
    let server: ServerSwitch
    let comfy: DevcloudComfy
    let spot: SpotMetadata
    let serverURL: String
    let comfyURL: String
    let metadataURL: String
    let workspace: URL
    let storage: URL

    func workerConfiguration(pod: String = "pod-1") -> WorkerConfiguration {
        var configuration = WorkerConfiguration(
            batchID: batch, serverURL: serverURL, uploadToken: BatchToken.make(secret: Self.secret, batchID: batch),
            amqpURL: fixture.amqp.configuration.url, workspace: workspace, podID: pod)
        configuration.comfyURL = comfyURL
        configuration.gpuCheckCommand = "true"
        configuration.idleExit = .seconds(2)
        configuration.assetWait = .seconds(5)
        configuration.uploadBackoff = RetryBackoff(initial: .milliseconds(200), maximum: .seconds(1))
        return configuration
    }

    /// The environment a pod gets, for the real `spotq worker` binary.
    func workerEnvironment(pod: String) -> [String: String] {
        [
            "SPOTQ_BATCH_ID": "\(batch)", "SPOTQ_SERVER_URL": serverURL,
            "SPOTQ_UPLOAD_TOKEN": BatchToken.make(secret: Self.secret, batchID: batch),
            "SPOTQ_AMQP_URL": fixture.amqp.configuration.url, "SPOTQ_COMFY_URL": comfyURL,
            "SPOTQ_WORKSPACE": workspace.path, "SPOTQ_POD_ID": pod, "SPOTQ_GPU_CHECK": "true",
            "SPOTQ_IDLE_EXIT_SECONDS": "2", "SPOTQ_LOG_LEVEL": "info",
        ]
    }

    func count(_ sql: String) async throws -> Int {
        try await fixture.postgres.count(sql)
    }

    func events(_ kind: String) async throws -> Int {
        try await count("SELECT count(*) FROM pod_events WHERE kind = '\(kind)'")
    }

    /// Ready messages in the batch's queue and in the dead-letter queue.
    func queueDepths() async throws -> (ready: Int, dead: Int) {
        try await fixture.connection.withChannel { channel in
            (Int(try await channel.declareQueuePassive(BrokerNames.batchQueue(batch)).messageCount),
             Int(try await channel.declareQueuePassive(BrokerNames.deadLetterQueue).messageCount))
        }
    }

    /// Every item done, one stored file each, no item stored twice.
    func expectAllDone(_ total: Int) async throws {
        #expect(try await count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == total)
        #expect(try await count("SELECT count(*) FROM image_generation_files") == total)
        #expect(try await count("SELECT count(*) FROM (SELECT item_id FROM image_generation_files GROUP BY 1 HAVING count(*) > 1) twice") == 0)
    }

    /// Builds the world with `requests` (made by `requests(checkpoint, lora)`), runs `body`.
    static func with(
        secondsPerImage: Double = 0.05,
        models: Models = Models(),
        requests: @escaping @Sendable (_ checkpoint: String, _ lora: String) -> [[UInt8]],
        _ body: @Sendable (PodWorld) async throws -> Void
    ) async throws {
        try await EnqueueFixture.with(ownVhost: true) { fixture in
            _ = try await TopologyDeclarer.declareStandard(amqpURL: fixture.amqp.configuration.url, logger: testLogger)
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_pod"))
            defer { try? FileManager.default.removeItem(at: root) }
            let workspace = root.appendingPathComponent("workspace")
            let storage = root.appendingPathComponent("storage")
            var quiet = Logger(label: "spotq.test.pod")
            quiet.logLevel = .critical

            var assetConfiguration = DevcloudAssetServer.Configuration()
            assetConfiguration.catalog = [checkpoint: checkpointSize, lora: loraSize]
            assetConfiguration.bytesPerSecond = models.bytesPerSecond
            assetConfiguration.missing = models.missing
            let assetServer = DevcloudAssetServer(configuration: assetConfiguration, logger: quiet)
            let spot = SpotMetadata()
            var comfyConfiguration = DevcloudComfy.Configuration(modelsDirectory: workspace.appendingPathComponent("models"), outputDirectory: root.appendingPathComponent("comfy-output"))
            comfyConfiguration.secondsPerImage = secondsPerImage
            let comfy = DevcloudComfy(configuration: comfyConfiguration, logger: quiet)
            var httpConfiguration = HTTPServerConfiguration()
            httpConfiguration.storageDirectory = storage
            let server = ServerSwitch(configuration: httpConfiguration, postgres: fixture.postgres, logger: quiet)

            let (ports, sink) = AsyncStream.makeStream(of: (String, Int).self)
            let assetsApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { assetServer.register(on: $0); spot.register(on: $0) }) { sink.yield(("assets", $0)) }
            let comfyApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { comfy.register(on: $0) }) { sink.yield(("comfy", $0)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await assetsApp.run() }
                group.addTask { try await comfyApp.run() }
                let recorder = EventRecorder(amqp: fixture.amqp, store: EventStore(client: fixture.postgres), logger: quiet)
                group.addTask { try await recorder.recordForever() }
                var port: [String: Int] = [:]
                for await (name, value) in ports {
                    port[name] = value
                    if port.count == 2 { break }
                }
                let serverPort = try await server.start()
                let assetBase = "http://127.0.0.1:\(port["assets"]!)/models/"
                _ = try await AssetStore(client: fixture.postgres).importAssets([
                    Asset(filename: checkpoint, kind: .checkpoint, sizeBytes: checkpointSize, sha256: DeterministicBytes(filename: checkpoint, size: checkpointSize).sha256(), sourceURL: assetBase + checkpoint),
                    Asset(filename: lora, kind: .lora, sizeBytes: loraSize, sha256: DeterministicBytes(filename: lora, size: loraSize).sha256(), sourceURL: assetBase + lora),
                ])
                let bodies = requests(checkpoint, lora)
                let messages = bodies.map { EnqueueMessage(requestID: ((try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any])?["request_id"] as? String ?? "", body: $0) }
                let outcomes = try await QueueStore(client: fixture.postgres).insert(messages)
                guard outcomes.allSatisfy({ if case .accepted = $0 { true } else { false } }) else { throw TestEnvironmentError(description: "setup: \(outcomes)") }
                let (created, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: secret)
                guard created.count == 1 else { throw TestEnvironmentError(description: "setup: expected one batch, planned \(created.count)") }
                try await BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: quiet).publishPending()
                let world = PodWorld(
                    fixture: fixture, batch: created[0].id, server: server, comfy: comfy, spot: spot,
                    serverURL: "http://127.0.0.1:\(serverPort)", comfyURL: "http://127.0.0.1:\(port["comfy"]!)",
                    metadataURL: "http://127.0.0.1:\(port["assets"]!)", workspace: workspace, storage: storage)
                let result: Result<Void, any Error>
                do { result = .success(try await body(world)) } catch { result = .failure(error) }
                await server.stop()
                group.cancelAll()
                try? await group.waitForAll()
                try result.get()
            }
        }
    }

    static func request(_ id: String, checkpoint: String, loras: [String] = [], extraNode: String? = nil) -> [UInt8] {
        let request = TextToImageRequest(requestID: id, checkpoint: checkpoint, loras: loras.map { LoraUse(file: $0, strength: 0.8) }, positive: "image \(id)")
        guard extraNode != nil, case .object(var fields) = request.message(), let index = fields.firstIndex(where: { $0.0 == "workflow" }),
              case .object(var nodes) = fields[index].1
        else { return request.messageJSON() }
        nodes.append(("99", ["class_type": .string(extraNode!), "inputs": [:]]))
        fields[index].1 = .object(nodes)
        return JSONValue.object(fields).serialized()
    }
}

/// The spotq HTTP server of a ``PodWorld``, which a test can stop (connections refused) and
/// start again on the same port.
actor ServerSwitch {
    let configuration: HTTPServerConfiguration
    let postgres: PostgresClient
    let logger: Logger
    private var running: Task<Void, any Error>?
    private var port = 0

    init(configuration: HTTPServerConfiguration, postgres: PostgresClient, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.logger = logger
    }

    /// Starts the server (on its earlier port, if it had one) and returns the port. Binding
    /// the old port again is retried for a while (the old listener may still be closing).
    func start() async throws -> Int {
        guard running == nil else { return port }
        for _ in 0..<100 {
            var configuration = self.configuration
            configuration.port = port
            let (bound, sink) = AsyncStream.makeStream(of: Int.self)
            let app = SpotqHTTPServer.makePodApplication(configuration: configuration, postgres: postgres, logger: logger) { sink.yield($0) }
            // A failed bind ends the stream instead of leaving the wait below hanging.
            let task = Task {
                defer { sink.finish() }
                try await app.run()
            }
            var boundPort: Int?
            for await value in bound {
                boundPort = value
                break
            }
            if let boundPort {
                running = task
                port = boundPort
                return port
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestEnvironmentError(description: "the spotq HTTP server could not listen on port \(port) again")
    }

    func stop() async {
        running?.cancel()
        _ = try? await running?.value
        running = nil
    }
}

@Suite("pod worker: downloads, ComfyUI, uploads, acks")
struct WorkerTests {
    @Test func aPodRunsItsBatch_storesEveryImageOnce_deadLettersWhatComfyUIRefuses_andLeaves() async throws {
        try await PodWorld.with(requests: { checkpoint, lora in
            (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
                + (0..<3).map { PodWorld.request("styled-\($0)", checkpoint: checkpoint, loras: [lora]) }
                + [PodWorld.request("poison", checkpoint: checkpoint, extraNode: "MysteryNode")]
        }) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 7)
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 7)
            let dead = try await world.fixture.connection.withChannel { try await $0.declareQueuePassive(BrokerNames.deadLetterQueue).messageCount }
            #expect(dead == 1)
            try await world.fixture.eventually("the poison item marked failed") {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id = 'poison' AND status = 'failed' AND last_error LIKE '%MysteryNode%'") == 1
            }
            try await world.fixture.eventually("asset.ready and image.done events recorded") {
                let ready = try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'asset.ready'")
                let done = try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'image.done'")
                return ready == 2 && done == 7
            }
            // Markers let a restarted pod skip verified downloads; with nothing left it leaves at once.
            let again = try await withTimeout(.seconds(60), "a second worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-2"), logger: testLogger).run() }
            #expect(again == .finished)
            try await world.fixture.eventually("reused models announced") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'asset.ready' AND detail ->> 'reused' = 'true'") == 2
            }
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 7)
        }
    }
}

@Suite("pod worker: kills, reclaims, outages and broken models")
struct WorkerFaultTests {
    static func mixed(_ checkpoint: String, _ lora: String) -> [[UInt8]] {
        (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
            + (0..<2).map { PodWorld.request("styled-\($0)", checkpoint: checkpoint, loras: [lora]) }
    }

    /// Waits until ComfyUI has started `count` images in all.
    static func untilComfyStarted(_ world: PodWorld, _ count: Int) async throws {
        try await world.fixture.eventually("ComfyUI started \(count) image(s)", timeout: .seconds(30)) { await world.comfy.started >= count }
    }

    @Test func aFailedGPUCheck_reportsGPUFailed_takesNoWork_andExitsThree() async throws {
        try await PodWorld.with(requests: Self.mixed) { world in
            var environment = world.workerEnvironment(pod: "pod-broken-gpu")
            environment["SPOTQ_GPU_CHECK"] = "echo 'CUDA error: no CUDA-capable device is detected' >&2; exit 1"
            let worker = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: environment)
            defer { Task { await worker.cleanUp() } }
            #expect(await worker.wait(timeout: .seconds(30)) == 3, "worker output:\n\(worker.output)")
            try await world.fixture.eventually("gpu_failed recorded") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'gpu_failed' AND provider_pod_id = 'pod-broken-gpu'") == 1
            }
            // What the check printed is kept, in the event and in the log.
            #expect(try await world.count("""
                SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'gpu_failed' AND provider_pod_id = 'pod-broken-gpu'
                AND detail ->> 'output' LIKE '%no CUDA-capable device is detected%' AND (detail ->> 'status')::numeric = 1
                """) == 1)
            #expect(worker.output.contains("no CUDA-capable device is detected"), "worker output:\n\(worker.output)")
            #expect(try await world.queueDepths() == (6, 0))
            #expect(await world.comfy.started == 0)
        }
    }

    @Test func aWorkerKilledMidImage_hasItsMessagesFinishedByAnother_withNoDuplicates() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: Self.mixed) { world in
            let first = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: world.workerEnvironment(pod: "pod-killed"))
            try await Self.untilComfyStarted(world, 1)
            first.signal(SIGKILL)
            #expect(await first.wait(timeout: .seconds(10)) == -1)
            await first.cleanUp()
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 0)
            // The pod's ComfyUI died with it; the broker hands the killed pod's deliveries
            // back, and a second pod finishes them.
            await world.comfy.setSecondsPerImage(0.05)
            await world.comfy.interrupt()
            let exit = try await withTimeout(.seconds(90), "the second worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-2"), logger: testLogger).run() }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            #expect(try await world.queueDepths().dead == 0)
        }
    }

    @Test func sigtermMidImage_requeuesEveryUnfinishedDeliveryAtOnce_andExitsZero() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: Self.mixed) { world in
            var environment = world.workerEnvironment(pod: "pod-reclaimed")
            environment["SPOTQ_TERMINATION_GRACE_MS"] = "3000"
            environment["SPOTQ_LOG_LEVEL"] = "debug"
            let worker = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: environment)
            defer { Task { await worker.cleanUp() } }
            try await Self.untilComfyStarted(world, 1)
            let signalled = ContinuousClock.now
            worker.signal(SIGTERM)
            // Nothing stays with the gone pod: all six are ready again, none dead-lettered, before
            // RunPod's SIGKILL (5 s): the prefetched one at once, the interrupted image at the grace.
            try await world.fixture.eventually("all deliveries back in the queue", timeout: .seconds(30)) { try await world.queueDepths() == (6, 0) }
            let requeued = ContinuousClock.now - signalled
            let status = await worker.wait(timeout: .seconds(10))
            let exited = ContinuousClock.now - signalled
            // By the worker's own clock (this process is the busier one while the suite runs):
            // the image could not finish within the 3 s grace, so it was interrupted and handed
            // back at the grace, not waited for.
            let handedBack = worker.output.firstMatch(of: /handed_back_after_ms=(\d+)/).flatMap { Int($0.1) }
            print("SIGTERM: all deliveries back after \(requeued) here, worker exited after \(exited); the worker handed back after \(handedBack.map(String.init) ?? "?") ms")
            #expect(status == 0, "worker output:\n\(worker.output)")
            #expect((handedBack ?? .max) < 4_000, "worker output:\n\(worker.output)")
            #expect(try await world.count("SELECT count(*) FROM image_generation_files") == 0)
            try await world.fixture.eventually("the draining state recorded") {
                try await world.count("SELECT count(*) FROM pod_events WHERE kind = 'state' AND state = 'draining' AND detail ->> 'reason' = 'SIGTERM'") == 1
            }
        }
    }

    @Test func aSpotNoticeFromTheMetadataService_stopsTheWorkerLikeSIGTERM() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: Self.mixed) { world in
            var configuration = world.workerConfiguration(pod: "pod-noticed")
            configuration.spotMetadataURL = world.metadataURL
            configuration.spotPollInterval = .milliseconds(100)
            let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
            try await Self.untilComfyStarted(world, 1)
            #expect(await world.spot.polls > 0)
            await world.spot.announceTermination(lead: 2)
            let exit = try await withTimeout(.seconds(20), "the noticed worker") { try await worker.value }
            #expect(exit == .finished)
            try await world.fixture.eventually("all deliveries back in the queue") { try await world.queueDepths() == (6, 0) }
        }
    }

    @Test func anImageReclaimedTwentyTimes_isNeverDeadLettered_andIsFinishedOnce() async throws {
        try await PodWorld.with(secondsPerImage: 30, requests: { checkpoint, _ in [PodWorld.request("unlucky", checkpoint: checkpoint)] }) { world in
            for round in 1...20 {
                await world.spot.clear()
                var configuration = world.workerConfiguration(pod: "pod-\(round)")
                configuration.spotMetadataURL = world.metadataURL
                configuration.spotPollInterval = .milliseconds(50)
                let worker = Task { try await Worker(configuration: configuration, logger: testLogger).run() }
                try await Self.untilComfyStarted(world, round)
                await world.spot.announceTermination(lead: 0)
                #expect(try await withTimeout(.seconds(20), "reclaimed worker \(round)") { try await worker.value } == .finished)
            }
            #expect(try await world.queueDepths() == (1, 0))
            await world.spot.clear()
            await world.comfy.setSecondsPerImage(0.05)
            #expect(try await Worker(configuration: world.workerConfiguration(pod: "pod-last"), logger: testLogger).run() == .finished)
            try await world.expectAllDone(1)
            #expect(try await world.queueDepths() == (0, 0))
        }
    }

    @Test func theUploadServerDownForAWhile_acksNothingMeanwhile_andEverythingIsUploadedAfterwards() async throws {
        try await PodWorld.with(secondsPerImage: 0.2, requests: Self.mixed) { world in
            let worker = Task { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            try await world.fixture.eventually("a first image stored") { try await world.count("SELECT count(*) FROM image_generation_files") >= 1 }
            await world.server.stop()
            let storedBefore = try await world.count("SELECT count(*) FROM image_generation_files")
            // An image generated while the server is away: ComfyUI started one more than was
            // stored, and finished it, so the worker is uploading (and retrying) it now.
            try await world.fixture.eventually("an image generated while the server is down", timeout: .seconds(30)) {
                let started = await world.comfy.started
                let generating = await world.comfy.isGenerating
                return started > storedBefore && !generating
            }
            // None was acked: `image.done` follows the ack, which follows a 2xx.
            #expect(await world.comfy.started > storedBefore)
            #expect(try await world.events("image.done") <= storedBefore)
            _ = try await world.server.start()
            let exit = try await withTimeout(.seconds(90), "the worker") { try await worker.value }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            #expect(try await world.queueDepths() == (0, 0))
        }
    }

    @Test func anImageThatKeepsFailing_isRetriedWithItsCount_andDeadLetteredAtTheThirdFailure() async throws {
        try await PodWorld.with(requests: { checkpoint, _ in
            (0..<4).map { PodWorld.request("plain-\($0)", checkpoint: checkpoint) }
                + [TextToImageRequest(requestID: "cursed", checkpoint: checkpoint, positive: "a cat \(DevcloudComfy.executionErrorMarker)").messageJSON()]
        }) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") == 4)
            #expect(try await world.queueDepths() == (0, 1))
            #expect(await world.comfy.started == 4 + 3)
            try await world.fixture.eventually("the item failed after three attempts, with ComfyUI's error") {
                try await world.count("""
                    SELECT count(*) FROM image_generation_queue WHERE request_id = 'cursed' AND status = 'failed' AND attempts = 3
                    AND last_error LIKE 'failed 3 times; last: %illegal memory access%'
                    """) == 1
            }
            let reason = try await world.fixture.connection.withChannel { channel -> String? in
                let consumer = try await channel.consume(queue: BrokerNames.deadLetterQueue)
                for try await delivery in consumer {
                    defer { Task { try? await delivery.nack(requeue: true) } }
                    if case .string(let text)? = delivery.properties.headers?[BrokerNames.reasonHeader] { return text }
                    return nil
                }
                return nil
            }
            #expect(reason?.hasPrefix("failed 3 times; last: ComfyUI could not run the prompt: RuntimeError: CUDA error") == true)
        }
    }

    @Test func aMissingModel_deadLettersOnlyTheImagesThatNeedIt_withTheReason() async throws {
        try await PodWorld.with(models: .init(missing: [PodWorld.lora]), requests: Self.mixed) { world in
            let exit = try await withTimeout(.seconds(90), "the worker") { try await Worker(configuration: world.workerConfiguration(), logger: testLogger).run() }
            #expect(exit == .finished)
            #expect(try await world.count("SELECT count(*) FROM image_generation_queue WHERE status = 'done' AND request_id LIKE 'plain-%'") == 4)
            #expect(try await world.queueDepths().dead == 2)
            try await world.fixture.eventually("the styled items failed, naming the model") {
                try await world.count("SELECT count(*) FROM image_generation_queue WHERE request_id LIKE 'styled-%' AND status = 'failed' AND last_error LIKE '%pod_style.safetensors%404%'") == 2
            }
            try await world.fixture.eventually("asset.failed recorded") { try await world.events("asset.failed") == 1 }
        }
    }

    @Test func aDownloadCutByAKilledPod_isResumedByTheNext_andImagesStartBeforeTheLastModel() async throws {
        // 400 kB/s: the checkpoint takes 5 s, the LoRA 3 s.
        try await PodWorld.with(secondsPerImage: 0.4, models: .init(bytesPerSecond: 400_000), requests: Self.mixed) { world in
            let partial = world.workspace.appendingPathComponent("models/checkpoints/\(PodWorld.checkpoint).partial")
            let first = try ChildProcess(try ChildProcess.spotqBinary(), ["worker"], environment: world.workerEnvironment(pod: "pod-cut"))
            try await world.fixture.eventually("a partial checkpoint on disk") {
                ((try? FileManager.default.attributesOfItem(atPath: partial.path))?[.size] as? Int64 ?? 0) > 600_000
            }
            first.signal(SIGKILL)
            _ = await first.wait(timeout: .seconds(10))
            await first.cleanUp()
            let exit = try await withTimeout(.seconds(90), "the next worker") { try await Worker(configuration: world.workerConfiguration(pod: "pod-next"), logger: testLogger).run() }
            #expect(exit == .finished)
            try await world.expectAllDone(6)
            #expect(try await world.count("""
                SELECT count(*) FROM pod_events WHERE kind = 'asset.ready' AND detail ->> 'filename' = '\(PodWorld.checkpoint)'
                AND (detail ->> 'resumed_from')::numeric > 600000
                """) == 1)
            // The GPU did not wait for the LoRA: plain images were under way before it arrived.
            #expect(try await world.count("""
                SELECT count(*) FROM pod_events started, pod_events lora
                WHERE started.kind = 'image.started' AND lora.kind = 'asset.ready' AND lora.detail ->> 'filename' = '\(PodWorld.lora)'
                AND started.provider_pod_id = 'pod-next' AND started.id < lora.id
                """) >= 1)
        }
    }
}
