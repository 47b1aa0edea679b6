import AMQPClient
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqDevcloud
import SpotqHTTP
import SpotqServer
import SpotqStore
import SpotqWorker
import SpotqSynthetic

/// `spotq bench worker`: time to first image on a real pod set-up, for our download order and
/// the seed's.
struct WorkerBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Measure a real worker's time to first image for our download order and the seed's.",
        discussion: """
            Runs, in this process, devcloud's model host (with a bandwidth cap) and ComfyUI
            stand-in, the spotq HTTP API on a scratch database next to SPOTQ_DATABASE_URL's,
            and `spotq worker` itself against SPOTQ_AMQP_URL's broker (a batch queue with an id no
            real batch has, and a scratch events exchange, both deleted afterwards). The batch
            is the README's case 2, in megabytes: checkpoint A (70 MB) whose 3 images share a
            1 MB LoRA, and checkpoint B (20 MB) with 40 LoRA-free images and one with a 10 MB
            LoRA. The seed sorts checkpoints by their LoRAs' total size, so it fetches A first.
            Time to first image runs from the worker's start to the first image stored by the
            server; its lower bound is the smallest download that makes an image possible
            divided by the bandwidth, plus one image.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Model host bandwidth, megabytes per second.") var megabytesPerSecond = 20.0
    @Option(help: "ComfyUI seconds per image.") var secondsPerImage = 0.5
    @Option(help: "Runs of each order; the median is printed.") var runs = 3

    @Option(name: .customLong("migrations-dir"), help: "Folder of NNNN_name.sql files (env SPOTQ_MIGRATIONS_DIR).")
    var migrationsDirectory: String?

    func run() async throws {
        var logger = try connection.makeLogger(label: "spotq.bench")
        logger.logLevel = max(logger.logLevel, .warning)
        let migrations = try MigrationDirectory.load(try MigrationDirectory.locate(
            explicit: connection.settings.string(migrationsDirectory, env: "SPOTQ_MIGRATIONS_DIR")))
        let amqpURL = try connection.resolvedAMQPURL()
        guard megabytesPerSecond > 0, secondsPerImage > 0, runs > 0 else { throw CLIError("bandwidth, seconds per image and runs must be positive") }
        let bench = WorkerBenchmark(amqpURL: amqpURL, bytesPerSecond: Int(megabytesPerSecond * 1_000_000), secondsPerImage: secondsPerImage, runs: runs, logger: logger)
        try await ScratchDatabase.with(serverURL: try connection.resolvedDatabaseURL(), prefix: "spotq_bench", logger: logger) { configuration in
            let client = PostgresClient(configuration: configuration, logger: logger)
            do {
                _ = try await Migrator(client: client, logger: logger).migrate(migrations)
                print(try await bench.run(postgres: client))
                await client.shutdown()
            } catch {
                await client.shutdown()
                throw error
            }
        }
    }
}

/// The runs of `spotq bench worker`.
struct WorkerBenchmark {
    let amqpURL: String
    let bytesPerSecond: Int
    let secondsPerImage: Double
    let runs: Int
    let logger: Logger

    static let secret = "spotq-bench-worker-" + UUID().uuidString
    /// The README's case 2 in megabytes: name, kind, size.
    static let assets: [(String, AssetKind, Int64)] = [
        ("bench_ckpt_a.safetensors", .checkpoint, 70_000_000), ("bench_lora_a.safetensors", .lora, 1_000_000),
        ("bench_ckpt_b.safetensors", .checkpoint, 20_000_000), ("bench_lora_b.safetensors", .lora, 10_000_000),
    ]

    static func requests() -> [TextToImageRequest] {
        var requests: [TextToImageRequest] = []
        for index in 0..<3 {
            requests.append(TextToImageRequest(requestID: "a-\(index)", checkpoint: assets[0].0, loras: [LoraUse(file: assets[1].0, strength: 0.8)], positive: "a \(index)"))
        }
        for index in 0..<40 {
            requests.append(TextToImageRequest(requestID: "b-\(index)", checkpoint: assets[2].0, positive: "b \(index)"))
        }
        requests.append(TextToImageRequest(requestID: "b-styled", checkpoint: assets[2].0, loras: [LoraUse(file: assets[3].0, strength: 0.8)], positive: "b styled"))
        return requests
    }

    /// The smallest download that makes any image possible, plus one image.
    var lowerBound: Double {
        let size = Dictionary(uniqueKeysWithValues: Self.assets.map { ($0.0, $0.2) })
        let smallest = Self.requests().map { request in ([request.checkpoint] + request.loras.map(\.file)).reduce(Int64(0)) { $0 + size[$1]! } }.min()!
        return Double(smallest) / Double(bytesPerSecond) + secondsPerImage
    }

    struct Measured {
        var order: PlanningPolicy.OrderChoice
        var strategy = ""
        var firstDownload = ""
        var predicted = 0.0
        var seconds: [Double] = []
        var median: Double { seconds.sorted()[seconds.count / 2] }
    }

    func run(postgres: PostgresClient) async throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-bench-worker-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var quiet = logger
        quiet.logLevel = .critical
        var assetConfiguration = DevcloudAssetServer.Configuration()
        assetConfiguration.catalog = Dictionary(uniqueKeysWithValues: Self.assets.map { ($0.0, $0.2) })
        assetConfiguration.bytesPerSecond = bytesPerSecond
        let assetServer = DevcloudAssetServer(configuration: assetConfiguration, logger: quiet)
        var comfyConfiguration = DevcloudComfy.Configuration(modelsDirectory: root.appendingPathComponent("workspace/models"), outputDirectory: root.appendingPathComponent("comfy-output"))
        comfyConfiguration.secondsPerImage = secondsPerImage
        let comfy = DevcloudComfy(configuration: comfyConfiguration, logger: quiet)
        var http = HTTPServerConfiguration()
        http.port = 0
        http.storageDirectory = root.appendingPathComponent("storage")

        let (ports, sink) = AsyncStream.makeStream(of: (String, Int).self)
        let assetsApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { assetServer.register(on: $0) }) { sink.yield(("assets", $0)) }
        let comfyApp = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: quiet, register: { comfy.register(on: $0) }) { sink.yield(("comfy", $0)) }
        let httpApp = SpotqHTTPServer.makePodApplication(configuration: http, postgres: postgres, logger: quiet) { sink.yield(("http", $0)) }
        let amqp = AMQPClient(configuration: AMQPConfiguration.spotq(url: amqpURL, connectionName: "spotq bench worker"), logger: quiet)
        let eventsExchange = "spotq.bench.events.\(UUID().uuidString.prefix(8).lowercased())"
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await assetsApp.run() }
            group.addTask { try await comfyApp.run() }
            group.addTask { try await httpApp.run() }
            defer { group.cancelAll() }
            var port: [String: Int] = [:]
            for await (name, value) in ports {
                port[name] = value
                if port.count == 3 { break }
            }
            let base = "http://127.0.0.1:\(port["assets"]!)/models/"
            _ = try await AssetStore(client: postgres).importAssets(Self.assets.map { name, kind, size in
                Asset(filename: name, kind: kind, sizeBytes: size, sha256: DeterministicBytes(filename: name, size: size).sha256(), sourceURL: base + name)
            })
            let channel = try await amqp.connection().openChannel()
            try await channel.declareExchange(eventsExchange, type: .topic, durable: false)
            var results = [Measured(order: .best), Measured(order: .seed)]
            // Alternate the orders so both see the same machine load.
            for run in 0..<runs {
                for index in results.indices {
                    let (seconds, planned) = try await measureOnce(
                        order: results[index].order, run: run, postgres: postgres, amqp: amqp, eventsExchange: eventsExchange,
                        comfyURL: "http://127.0.0.1:\(port["comfy"]!)", serverURL: "http://127.0.0.1:\(port["http"]!)", root: root)
                    results[index].seconds.append(seconds)
                    results[index].strategy = planned.orderStrategy
                    results[index].firstDownload = planned.firstDownload
                    results[index].predicted = planned.predicted
                }
            }
            try? await channel.deleteExchange(eventsExchange)
            await amqp.close()
            return render(results)
        }
    }

    struct Planned {
        var orderStrategy: String
        var firstDownload: String
        var predicted: Double
    }

    /// Enqueues the batch afresh, plans it with `order`, runs a worker on an empty workspace
    /// until the first image is stored, then stops it and removes the batch's queue.
    func measureOnce(
        order: PlanningPolicy.OrderChoice, run: Int, postgres: PostgresClient, amqp: AMQPClient, eventsExchange: String,
        comfyURL: String, serverURL: String, root: URL
    ) async throws -> (Double, Planned) {
        // A batch id no real batch has, so its queue meets no real one on a shared broker.
        try await BenchStore(client: postgres).startAfresh(firstBatchID: Int64.random(in: 1_000_000_000_000...9_000_000_000_000))
        let outcomes = try await QueueStore(client: postgres).insert(Self.requests().map { EnqueueMessage(requestID: $0.requestID, body: $0.messageJSON()) })
        guard outcomes.allSatisfy({ if case .accepted = $0 { true } else { false } }) else { throw CLIError("bench worker: the requests were refused: \(outcomes)") }
        var policy = PlanningPolicy()
        policy.order = order
        var gpu = GPUProfile()
        gpu.downloadMbps = Double(bytesPerSecond) * 8 / 1_000_000
        gpu.imagesPerHour = 3600 / secondsPerImage
        let (created, _, work) = try await PlannerStore(client: postgres).apply(policy: policy, gpu: gpu, secret: Self.secret)
        guard created.count == 1 else { throw CLIError("bench worker: expected one batch, the planner made \(created.count)") }
        let batch = created[0]
        try await BatchPublisher(postgres: postgres, amqp: amqp, logger: logger).publishPending()

        let workspace = root.appendingPathComponent("workspace")
        try? FileManager.default.removeItem(at: workspace)
        var configuration = WorkerConfiguration(
            batchID: batch.id, serverURL: serverURL, uploadToken: BatchToken.make(secret: Self.secret, batchID: batch.id),
            amqpURL: amqpURL, workspace: workspace, podID: "bench-\(order.rawValue)-\(run)")
        configuration.comfyURL = comfyURL
        configuration.gpuCheckCommand = "true"
        configuration.eventsExchange = eventsExchange
        // Errors only: stopping the worker after its first image makes it warn about events.
        var workerLogger = logger
        workerLogger.logLevel = .error
        let worker = Worker(configuration: configuration, logger: workerLogger)
        let started = ContinuousClock.now
        let running = Task { try await worker.run() }
        var seconds = 0.0
        while true {
            if try await BenchStore(client: postgres).storedFiles() > 0 {
                seconds = EnqueueBenchmark.seconds(ContinuousClock.now - started)
                break
            }
            guard ContinuousClock.now - started < .seconds(600) else { throw CLIError("bench worker: no image after 10 minutes") }
            try await Task.sleep(for: .milliseconds(10))
        }
        running.cancel()
        _ = try? await running.value
        let channel = try await amqp.connection().openChannel()
        _ = try? await channel.deleteQueue(BrokerNames.batchQueue(batch.id))
        try? await channel.close()
        let planned = Planned(
            orderStrategy: batch.planned.orderStrategy, firstDownload: work.assets[Int(batch.planned.downloadOrder[0])].filename,
            predicted: batch.planned.timeline.timeToFirstImage)
        return (seconds, planned)
    }

    func render(_ results: [Measured]) -> String {
        let bound = lowerBound
        let seed = results.first { $0.order == .seed }!.median
        var table = TextTable([("order", .left), ("first download", .left), ("predicted s", .right), ("measured s", .right), ("÷ lower bound", .right), ("vs seed", .right)])
        for result in results.sorted(by: { $0.order == .seed && $1.order != .seed }) {
            let name = result.order == .seed ? "seed's order (baseline)" : "spotq (\(result.strategy))"
            table.add([
                name, result.firstDownload, String(format: "%.2f", result.predicted), String(format: "%.2f", result.median),
                String(format: "%.2f", result.median / bound), String(format: "%.2f×", seed / result.median),
            ])
        }
        return """
            spotq bench worker: time to first image, median of \(runs) runs per order; \(String(format: "%.0f", Double(bytesPerSecond) / 1_000_000)) MB/s, \
            \(secondsPerImage) s per image, \(ProcessInfo.processInfo.activeProcessorCount) cores
            lower bound \(String(format: "%.2f", bound)) s (smallest download that makes an image possible ÷ bandwidth + one image)
            \(table.render())
            """
    }
}
