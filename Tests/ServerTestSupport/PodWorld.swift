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
        /// False: ComfyUI reads a models folder of its own, as real ComfyUI started without
        /// `--base-directory` does, and never sees the worker's downloads.
        var comfySeesWorkspace = true
    }

    let fixture: EnqueueFixture
    let batch: Int64
    let server: ServerSwitch
    let comfy: DevcloudComfy
    /// ComfyUI's HTTP server, which a test can stop (ComfyUI down) and start again.
    let comfyServer: ComfySwitch
    /// Where ComfyUI writes its images.
    let comfyOutput: URL
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
        configuration.comfyOutputDirectory = comfyOutput
        configuration.modelListWait = .seconds(3)
        configuration.comfyUnreachableLimit = .seconds(3)
        return configuration
    }

    /// The environment a pod gets, for the real `spotq worker` binary.
    func workerEnvironment(pod: String) -> [String: String] {
        [
            "SPOTQ_BATCH_ID": "\(batch)", "SPOTQ_SERVER_URL": serverURL,
            "SPOTQ_UPLOAD_TOKEN": BatchToken.make(secret: Self.secret, batchID: batch),
            "SPOTQ_AMQP_URL": fixture.amqp.configuration.url, "SPOTQ_COMFY_URL": comfyURL,
            "SPOTQ_WORKSPACE": workspace.path, "SPOTQ_POD_ID": pod, "SPOTQ_GPU_CHECK": "true",
            "SPOTQ_IDLE_EXIT_SECONDS": "2", "SPOTQ_LOG_LEVEL": "info", "SPOTQ_MODEL_LIST_WAIT_SECONDS": "3",
        ]
    }

    func count(_ sql: String) async throws -> Int {
        try await fixture.postgres.count(sql)
    }

    /// The PNGs left in ComfyUI's output folder.
    func outputsLeft() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: comfyOutput.path)) ?? []).filter { $0.hasSuffix(".png") }.count
    }

    /// The headers of the first message in the dead-letter queue (left there).
    func firstDeadLetterHeaders() async throws -> AMQPTable? {
        try await firstHeaders(in: BrokerNames.deadLetterQueue)
    }

    /// The headers of the first message in `queue` (left there).
    func firstHeaders(in queue: String) async throws -> AMQPTable? {
        try await fixture.connection.withChannel { channel -> AMQPTable? in
            let consumer = try await channel.consume(queue: queue)
            for try await delivery in consumer {
                defer { Task { try? await delivery.nack(requeue: true) } }
                return delivery.properties.headers
            }
            return nil
        }
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
        ingest concurrency: IngestConcurrency = IngestConcurrency(),
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
            let comfyOutput = root.appendingPathComponent("comfy-output")
            let comfyModels = models.comfySeesWorkspace ? workspace.appendingPathComponent("models") : root.appendingPathComponent("comfy-own-models")
            var comfyConfiguration = DevcloudComfy.Configuration(modelsDirectory: comfyModels, outputDirectory: comfyOutput)
            comfyConfiguration.secondsPerImage = secondsPerImage
            let comfy = DevcloudComfy(configuration: comfyConfiguration, logger: quiet)
            var httpConfiguration = HTTPServerConfiguration()
            httpConfiguration.storageDirectory = storage
            httpConfiguration.ingestConcurrency = concurrency
            let server = ServerSwitch(configuration: httpConfiguration, postgres: fixture.postgres, logger: quiet)

            let (ports, sink) = AsyncStream.makeStream(of: (String, Int).self)
            let assetsApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { assetServer.register(on: $0); spot.register(on: $0) }) { sink.yield(("assets", $0)) }
            let comfyServer = ComfySwitch(comfy: comfy, logger: quiet)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await assetsApp.run() }
                let recorder = EventRecorder(amqp: fixture.amqp, store: EventStore(client: fixture.postgres), logger: quiet)
                group.addTask { try await recorder.recordForever() }
                var port: [String: Int] = [:]
                for await (name, value) in ports {
                    port[name] = value
                    if port.count == 1 { break }
                }
                port["comfy"] = try await comfyServer.start()
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
                    fixture: fixture, batch: created[0].id, server: server, comfy: comfy, comfyServer: comfyServer, comfyOutput: comfyOutput, spot: spot,
                    serverURL: "http://127.0.0.1:\(serverPort)", comfyURL: "http://127.0.0.1:\(port["comfy"]!)",
                    metadataURL: "http://127.0.0.1:\(port["assets"]!)", workspace: workspace, storage: storage)
                let result: Result<Void, any Error>
                do { result = .success(try await body(world)) } catch { result = .failure(error) }
                await server.stop()
                await comfyServer.stop()
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
final class ServerSwitch: Sendable {
    /// Its ingest admission, kept across restarts (a test waits on its counts).
    let gate: IngestGate
    let listener: RestartableListener

    init(configuration: HTTPServerConfiguration, postgres: PostgresClient, logger: Logger) {
        let gate = IngestGate(limits: configuration.ingestConcurrency)
        self.gate = gate
        listener = RestartableListener(name: "the spotq HTTP server") { port, listening in
            var configuration = configuration
            configuration.port = port
            let app = SpotqHTTPServer.makePodApplication(configuration: configuration, postgres: postgres, logger: logger, gate: gate, onServerRunning: listening)
            return { try await app.run() }
        }
    }

    func start() async throws -> Int { try await listener.start() }
    func stop() async { await listener.stop() }
}

/// The HTTP server of a ``PodWorld``'s ComfyUI stand-in, which a test can stop (connections
/// refused, as when ComfyUI died) and start again on the same port, the stand-in's queue and
/// history kept.
final class ComfySwitch: Sendable {
    let comfy: DevcloudComfy
    let listener: RestartableListener

    init(comfy: DevcloudComfy, logger: Logger) {
        self.comfy = comfy
        listener = RestartableListener(name: "devcloud's ComfyUI") { port, listening in
            let app = DevcloudServer.makeApplication(host: "127.0.0.1", port: port, logger: logger, register: { comfy.register(on: $0) }, onServerRunning: listening)
            return { try await app.run() }
        }
    }

    func start() async throws -> Int { try await listener.start() }
    func stop() async { await listener.stop() }
}
