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

/// A whole pod's world on loopback: the database and a vhost of their own, the server's HTTP
/// API and event recorder, devcloud's model host and ComfyUI stand-in, and a planned,
/// published batch whose models the model host serves.
struct PodWorld: Sendable {
    static let secret = String(repeating: "w", count: 40)
    static let checkpoint = "pod_base.safetensors"
    static let lora = "pod_style.safetensors"

    let fixture: EnqueueFixture
    let batch: Int64
    let serverURL: String
    let comfyURL: String
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
        return configuration
    }

    func count(_ sql: String) async throws -> Int {
        Int(try await fixture.postgres.query(PostgresQuery(sql: sql))[0].decode(Int64.self, at: 0))
    }

    /// Builds the world with `requests` (made by `requests(checkpoint, lora)`), runs `body`.
    static func with(
        secondsPerImage: Double = 0.05,
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
            assetConfiguration.catalog = [checkpoint: 2_000_000, lora: 300_000]
            let assetServer = DevcloudAssetServer(configuration: assetConfiguration, logger: quiet)
            var comfyConfiguration = DevcloudComfy.Configuration(modelsDirectory: workspace.appendingPathComponent("models"), outputDirectory: root.appendingPathComponent("comfy-output"))
            comfyConfiguration.secondsPerImage = secondsPerImage
            let comfy = DevcloudComfy(configuration: comfyConfiguration, logger: quiet)
            var httpConfiguration = HTTPServerConfiguration()
            httpConfiguration.port = 0
            httpConfiguration.storageDirectory = storage

            let (ports, sink) = AsyncStream.makeStream(of: (String, Int).self)
            let assetsApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { assetServer.register(on: $0) }) { sink.yield(("assets", $0)) }
            let comfyApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { comfy.register(on: $0) }) { sink.yield(("comfy", $0)) }
            let httpApp = SpotqHTTPServer.makeApplication(configuration: httpConfiguration, postgres: fixture.postgres, logger: quiet) { sink.yield(("http", $0)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await assetsApp.run() }
                group.addTask { try await comfyApp.run() }
                group.addTask { try await httpApp.run() }
                let recorder = EventRecorder(amqp: fixture.amqp, store: EventStore(client: fixture.postgres), logger: quiet)
                group.addTask { try await recorder.recordForever() }
                var port: [String: Int] = [:]
                for await (name, value) in ports {
                    port[name] = value
                    if port.count == 3 { break }
                }
                let assetBase = "http://127.0.0.1:\(port["assets"]!)/models/"
                _ = try await AssetStore(client: fixture.postgres).importAssets([
                    Asset(filename: checkpoint, kind: .checkpoint, sizeBytes: 2_000_000, sha256: DeterministicBytes(filename: checkpoint, size: 2_000_000).sha256(), sourceURL: assetBase + checkpoint),
                    Asset(filename: lora, kind: .lora, sizeBytes: 300_000, sha256: DeterministicBytes(filename: lora, size: 300_000).sha256(), sourceURL: assetBase + lora),
                ])
                let bodies = requests(checkpoint, lora)
                let messages = bodies.map { EnqueueMessage(requestID: ((try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any])?["request_id"] as? String ?? "", body: $0) }
                let outcomes = try await QueueStore(client: fixture.postgres).insert(messages)
                guard outcomes.allSatisfy({ if case .accepted = $0 { true } else { false } }) else { throw TestEnvironmentError(description: "setup: \(outcomes)") }
                let (created, _, _) = try await PlannerStore(client: fixture.postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: secret)
                try await BatchPublisher(postgres: fixture.postgres, amqp: fixture.amqp, logger: quiet).publishPending()
                let world = PodWorld(
                    fixture: fixture, batch: created[0].id, serverURL: "http://127.0.0.1:\(port["http"]!)",
                    comfyURL: "http://127.0.0.1:\(port["comfy"]!)", workspace: workspace, storage: storage)
                let result: Result<Void, any Error>
                do { result = .success(try await body(world)) } catch { result = .failure(error) }
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
