import AMQPClient
import ArgumentParser
import Foundation
import Logging
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqSynthetic

/// `spotq bench enqueue`: how fast requests get into `image_generation_queue`.
struct EnqueueBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Measure SQL and AMQP enqueue rates (scratch database and queue; real data untouched).",
        discussion: """
            Creates a scratch database next to SPOTQ_DATABASE_URL's (the user needs CREATEDB) and
            a scratch queue on SPOTQ_AMQP_URL's broker, and drops both afterwards. Phases:
            one INSERT per request (the baseline: what a website does), `spotq enqueue --via sql`,
            publishing to RabbitMQ with confirms, and the server's AMQP→PostgreSQL consumer
            draining the published messages.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Requests per phase.")
    var count = 50_000

    @Option(name: .customLong("migrations-dir"), help: "Folder of NNNN_name.sql files (env SPOTQ_MIGRATIONS_DIR).")
    var migrationsDirectory: String?

    func run() async throws {
        var logger = try connection.makeLogger(label: "spotq.bench")
        logger.logLevel = max(logger.logLevel, .warning)
        let migrations = try MigrationDirectory.load(try MigrationDirectory.locate(
            explicit: connection.settings.string(migrationsDirectory, env: "SPOTQ_MIGRATIONS_DIR")))
        let amqpURL = try connection.resolvedAMQPURL()
        let count = self.count
        try await ScratchDatabase.with(serverURL: try connection.resolvedDatabaseURL(), prefix: "spotq_bench", logger: logger) { configuration in
            var configuration = configuration
            configuration.statementTimeout = .seconds(600)
            let client = PostgresClient(configuration: configuration, logger: logger)
            do {
                _ = try await Migrator(client: client, logger: logger).migrate(migrations)
                let benchmark = EnqueueBenchmark(client: client, amqpURL: amqpURL, count: count, logger: logger)
                let report = try await benchmark.run()
                await client.shutdown()
                print(report)
            } catch {
                await client.shutdown()
                throw error
            }
        }
    }
}

/// The phases of `spotq bench enqueue`, each on an emptied table.
struct EnqueueBenchmark {
    let client: PostgresClient
    let amqpURL: String
    let count: Int
    let logger: Logger

    struct Phase {
        var name: String
        var seconds: Double
    }

    func run() async throws -> String {
        let assets = BenchAssets.make()
        _ = try await AssetStore(client: client).importAssets(assets.all)
        var phases: [Phase] = []

        // 1. Baseline: one autocommitted INSERT per request, as a website inserts.
        let single = BenchAssets.requests(count: count, prefix: "single", assets: assets).map(BenchAssets.insertStatement)
        phases.append(Phase(name: "SQL, one INSERT per request (baseline)", seconds: try await measure {
            try await client.withConnection { connection in
                for statement in single { try await connection.query(statement) }
            }
        }))
        try await verifyAndEmpty(expect: count)

        // 2. spotq enqueue --via sql: 500 per transaction.
        let bulk = BenchAssets.messages(count: count, prefix: "bulk", assets: assets)
        let averageBytes = bulk.reduce(0) { $0 + $1.body.count } / max(1, bulk.count)
        let lines = bulk.enumerated().map { EnqueueLine(number: $0.offset + 1, body: $0.element.body) }
        phases.append(Phase(name: "SQL bulk (spotq enqueue --via sql)", seconds: try await measure {
            let summary = try await SQLBulkEnqueuer(store: QueueStore(client: client)).run(lines)
            guard summary.accepted == count else { throw CLIError("bulk phase accepted \(summary.accepted) of \(count): \(summary.reasonsByCount.first?.reason ?? "")") }
        }))
        try await verifyAndEmpty(expect: count)

        // 3 and 4. Publish to a scratch queue, then let the server's consumer drain it.
        let viaAMQP = BenchAssets.messages(count: count, prefix: "amqp", assets: assets)
        let (publish, ingest) = try await measureAMQP(viaAMQP)
        phases.append(Phase(name: "AMQP publish with confirms (batches of 500)", seconds: publish))
        phases.append(Phase(name: "AMQP → PostgreSQL (spotq server enqueue)", seconds: ingest))
        try await verifyAndEmpty(expect: count)

        return try await render(phases, averageBytes: averageBytes)
    }

    func measure(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        return Self.seconds(ContinuousClock.now - start)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func verifyAndEmpty(expect: Int) async throws {
        let found = try await BenchStore(client: client).queueRows()
        guard found == expect else { throw CLIError("expected \(expect) rows after the phase, found \(found)") }
        try await BenchStore(client: client).emptyQueue()
    }

    func measureAMQP(_ messages: [EnqueueMessage]) async throws -> (publish: Double, ingest: Double) {
        let scratch = "spotq.bench.\(UInt32.random(in: 0...UInt32.max))"
        let connection = try await AMQPConnection.connect(configuration: AMQPConfiguration.spotq(url: amqpURL, connectionName: "spotq bench"), logger: logger)
        let amqp = AMQPClient(configuration: AMQPConfiguration.spotq(url: amqpURL, connectionName: "spotq bench consumer"), logger: logger)
        do {
            let result = try await connection.withChannel { channel in
                // The same queue type and arguments as spotq.enqueue, dead-lettering to a scratch queue.
                try await channel.declareExchange(scratch + ".dlx", type: .fanout, durable: false)
                _ = try await channel.declareQueue(scratch + ".dead", durable: true, arguments: ["x-queue-type": "quorum"])
                try await channel.bindQueue(scratch + ".dead", exchange: scratch + ".dlx", routingKey: "")
                var arguments = AMQPTable()
                for (key, value) in BrokerTopology.quorumWithDeadLetters(deliveryLimit: 10) {
                    switch value {
                    case .string(let text): arguments[key] = .string(key == "x-dead-letter-exchange" ? scratch + ".dlx" : text)
                    case .int(let number): arguments[key] = .int64(Int64(number))
                    }
                }
                _ = try await channel.declareQueue(scratch, durable: true, arguments: arguments)
                let publish = try await measure {
                    var start = 0
                    while start < messages.count {
                        let chunk = messages[start..<min(messages.count, start + 500)]
                        start += chunk.count
                        let outcome = try await channel.publishBatch(chunk.map {
                            AMQPOutgoingMessage(exchange: "", routingKey: scratch, body: $0.body,
                                                properties: AMQPMessageProperties(contentType: EnqueueMessage.contentType))
                        })
                        guard outcome.allConfirmed else { throw CLIError("the broker refused \(outcome.count - outcome.confirmedCount) messages") }
                    }
                }

                var configuration = EnqueueConsumerConfiguration()
                configuration.queue = scratch
                configuration.deadLetterExchange = scratch + ".dlx"
                let settledCount = SettledCounter()
                var consumer = EnqueueConsumer(configuration: configuration, amqp: amqp, store: QueueStore(client: client), logger: logger)
                consumer.onSettled = { outcomes in settledCount.add(outcomes.count) }
                let ready = consumer
                let ingest = try await measure {
                    let task = Task { try await ready.consumeForever() }
                    while settledCount.value < messages.count {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    task.cancel()
                    _ = await task.result
                }
                return (publish, ingest)
            }
            await deleteScratch(scratch, on: connection)
            await connection.close()
            await amqp.close()
            return result
        } catch {
            await deleteScratch(scratch, on: connection)
            await connection.close()
            await amqp.close()
            throw error
        }
    }

    /// The scratch queues must not linger on the broker, whatever happened.
    func deleteScratch(_ scratch: String, on connection: AMQPConnection) async {
        _ = try? await connection.withChannel { channel in
            _ = try await channel.deleteQueue(scratch)
            _ = try await channel.deleteQueue(scratch + ".dead")
            try await channel.deleteExchange(scratch + ".dlx")
        }
    }

    func render(_ phases: [Phase], averageBytes: Int) async throws -> String {
        let postgres = try await BenchStore(client: client).serverVersion()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let baseline = Double(count) / phases[0].seconds
        var table = TextTable([("phase", .left), ("seconds", .right), ("requests/s", .right), ("vs baseline", .right)])
        for phase in phases {
            let rate = Double(count) / phase.seconds
            table.add([phase.name, String(format: "%.2f", phase.seconds), String(Int(rate.rounded())), String(format: "%.2f×", rate / baseline)])
        }
        return """
            spotq bench enqueue: \(count) requests per phase, \(cores) cores, PostgreSQL \(postgres.split(separator: " ").first ?? "?"), \
            \(averageBytes)-byte messages (text-to-image workflow, 0-2 LoRAs)
            \(table.render())
            """
    }
}

/// Counts settled messages across the consumer's task and the waiting one.
final class SettledCounter: @unchecked Sendable {
    // Every access holds `lock`.
    private let lock = NSLock()
    private var total = 0
    func add(_ count: Int) { lock.withLock { total += count } }
    var value: Int { lock.withLock { total } }
}

/// Deterministic assets and requests for the benchmarks.
struct BenchAssets {
    var checkpoints: [Asset]
    var loras: [Asset]
    var all: [Asset] { checkpoints + loras }

    static func make() -> BenchAssets {
        func asset(_ name: String, _ kind: AssetKind, _ size: Int64, _ n: Int) -> Asset {
            Asset(filename: name, kind: kind, sizeBytes: size, sha256: String(repeating: String(format: "%02x", n % 256), count: 32),
                  sourceURL: "http://127.0.0.1:9/models/\(name)")
        }
        return BenchAssets(
            checkpoints: (0..<8).map { asset("bench_checkpoint_\($0).safetensors", .checkpoint, 6_938_040_682, $0) },
            loras: (0..<40).map { asset("bench_lora_\($0).safetensors", .lora, 228_460_000, 100 + $0) })
    }

    /// The README's INSERT for one request, with its values as parameters.
    static func insertStatement(_ request: TextToImageRequest) -> PostgresQuery {
        guard case .object(let fields) = request.message() else { preconditionFailure("a message is an object") }
        func json(_ key: String) -> String {
            String(decoding: (fields.first { $0.0 == key }?.1 ?? .null).serialized(), as: UTF8.self)
        }
        return BenchStore.websiteInsert(
            requestID: request.requestID, checkpoint: request.checkpoint, lorasJSON: json("loras"), promptJSON: json("prompt"),
            workflowJSON: json("workflow"), priority: request.priority)
    }

    static func messages(count: Int, prefix: String, assets: BenchAssets) -> [EnqueueMessage] {
        requests(count: count, prefix: prefix, assets: assets).map { EnqueueMessage(requestID: $0.requestID, body: $0.messageJSON()) }
    }

    static func requests(count: Int, prefix: String, assets: BenchAssets) -> [TextToImageRequest] {
        (0..<count).map { index in
            var loras: [LoraUse] = []
            for k in 0..<(index % 3) { loras.append(LoraUse(file: assets.loras[(index * 7 + k * 13) % assets.loras.count].filename, strength: 0.8)) }
            var request = TextToImageRequest(
                requestID: "bench-\(prefix)-\(index)", checkpoint: assets.checkpoints[index % assets.checkpoints.count].filename,
                loras: loras, positive: "a lighthouse on a cliff at dawn, detailed, photograph number \(index)")
            request.seed = UInt64(index) &* 2_654_435_761
            return request
        }
    }
}
