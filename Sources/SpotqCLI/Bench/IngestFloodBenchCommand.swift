import ArgumentParser
import DedicatedThread
import Foundation
import Logging
import PostgresClient
import SpotqCore
import SpotqHTTP
import SpotqStore
import SpotqSynthetic

/// `spotq bench ingest-flood`: one token floods the pods' listener with maximum-size result
/// bundles, all at once, while another pod uploads ordinary ones. Shows the flood is held to
/// its share (429 with Retry-After, retried as the worker does), the other pod is still
/// answered, everything valid is stored once, and what the server's memory peaked at.
struct IngestFloodBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest-flood",
        abstract: "Flood the result ingest from one token while another pod uploads; report answers and peak memory.",
        discussion: """
            Creates a scratch database next to SPOTQ_DATABASE_URL's (the user needs CREATEDB) and a
            scratch storage folder, serves the pods' routes in this process with the SPOTQ_UPLOAD_* and
            SPOTQ_INGEST_* settings in effect, and runs the client (scripts/clients/flood_uploads.py,
            python3) in a process of its own, so this process's peak resident memory is the server's.
            Flood bundles are as large as the limits allow: two incompressible images, together just
            under SPOTQ_UPLOAD_MAX_BYTES and SPOTQ_UPLOAD_MAX_EXPANDED_BYTES.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Maximum-size uploads the flooding token sends at once.")
    var flood = 20

    @Option(help: "Uploads the other pod sends meanwhile, one after another.")
    var other = 10

    @Option(name: .customLong("other-image-bytes"), help: "Size of the other pod's images (SDXL at 1024² is about 1.5 MB).")
    var otherImageBytes = 1_500_000

    @Option(name: .customLong("migrations-dir"), help: "Folder of NNNN_name.sql files (env SPOTQ_MIGRATIONS_DIR).")
    var migrationsDirectory: String?

    func run() async throws {
        var logger = try connection.makeLogger(label: "spotq.bench")
        logger.logLevel = max(logger.logLevel, .warning)
        let settings = connection.settings
        let migrations = try MigrationDirectory.load(try MigrationDirectory.locate(explicit: settings.string(migrationsDirectory, env: "SPOTQ_MIGRATIONS_DIR")))
        let client = try TestClientScript.locate("flood_uploads.py")
        var server = try HTTPServerConfiguration.from(settings)
        server.host = "127.0.0.1"
        server.port = 0
        server.storageDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-bench-ingest-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: server.storageDirectory) }
        let (flood, other, otherImageBytes) = (self.flood, self.other, self.otherImageBytes)
        // The baseline, in the same run and after the real thing (freed memory stays resident):
        // the same flood with no admission to speak of, every upload let in at once.
        var unbounded = server
        unbounded.ingestConcurrency.maxConcurrent = flood + 1
        unbounded.ingestConcurrency.maxPerToken = flood
        var growth: [Int] = []
        for (index, (title, configured)) in [("with admission (as configured)", server), ("baseline: admission off (every upload let in)", unbounded)].enumerated() {
            var phase = configured
            phase.storageDirectory = server.storageDirectory.appendingPathComponent(String(index))
            let result = try await ScratchDatabase.with(serverURL: try connection.resolvedDatabaseURL(), prefix: "spotq_bench", logger: logger) { configuration in
                let postgres = PostgresClient(configuration: configuration, logger: logger)
                do {
                    _ = try await Migrator(client: postgres, logger: logger).migrate(migrations)
                    let benchmark = IngestFloodBenchmark(postgres: postgres, server: phase, client: client, logger: logger)
                    let result = try await benchmark.run(flood: flood, other: other, otherImageBytes: otherImageBytes)
                    await postgres.shutdown()
                    return result
                } catch {
                    await postgres.shutdown()
                    throw error
                }
            }
            print("== \(title)\n\(result.report)\n")
            growth.append(result.memoryGrowth)
        }
        print(String(format: "peak memory growth with admission: %.2f× the baseline's (%.0f MiB vs %.0f MiB)",
                     Double(growth[0]) / Double(max(1, growth[1])), Double(growth[0]) / 1_048_576, Double(growth[1]) / 1_048_576))
    }
}

/// Where `scripts/clients/<name>` is: beside the working directory's checkout, or the binary's.
enum TestClientScript {
    static func locate(_ name: String) throws -> String {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var folder = binary.deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(folder)
            folder = folder.deletingLastPathComponent()
        }
        for base in candidates {
            let path = base.appendingPathComponent("scripts/clients/\(name)").path
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw CLIError("cannot find scripts/clients/\(name); run from the spotq checkout")
    }
}

struct IngestFloodBenchmark {
    let postgres: PostgresClient
    let server: HTTPServerConfiguration
    let client: String
    let logger: Logger

    static let secret = "bench-ingest-flood-" + randomHex(bytes: 16)

    /// The sizes a flood bundle's two images get: together just under every limit.
    static func floodImageBytes(_ limits: IngestLimits) -> Int {
        let room = min(limits.maxBodyBytes, limits.maxExpandedBytes) - 64 << 10
        return max(1_024, min(limits.maxFileBytes, room / 2))
    }

    func run(flood: Int, other: Int, otherImageBytes: Int) async throws -> (report: String, memoryGrowth: Int) {
        let assets = BenchAssets.make()
        _ = try await AssetStore(client: postgres).importAssets(assets.all)
        let floodBatch = try await planBatch(count: flood, prefix: "flood", checkpoint: assets.checkpoints[0].filename)
        let otherBatch = try await planBatch(count: other, prefix: "other", checkpoint: assets.checkpoints[1].filename)

        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        var quiet = logger
        quiet.logLevel = .critical
        let app = SpotqHTTPServer.makePodApplication(configuration: server, postgres: postgres, logger: quiet) { port in
            portSink.yield(port)
            portSink.finish()
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            defer { group.cancelAll() }
            guard let port = await ports.first(where: { _ in true }), port > 0 else { throw CLIError("the pods' listener reported no port") }
            let orders = FloodOrders(
                url: "http://127.0.0.1:\(port)",
                flood: .init(batch: floodBatch.id, token: BatchToken.make(secret: Self.secret, batchID: floodBatch.id), items: floodBatch.items,
                             imageBytes: Self.floodImageBytes(server.limits), images: 2),
                other: .init(batch: otherBatch.id, token: BatchToken.make(secret: Self.secret, batchID: otherBatch.id), items: otherBatch.items,
                             imageBytes: otherImageBytes, images: 1))
            let idle = ProcessMemory.resetPeak()
            let output = try await PythonClient.run(script: client, input: try JSONEncoder().encode(orders))
            let peak = ProcessMemory.peakBytes()
            let answers = try JSONDecoder().decode(FloodAnswers.self, from: output)
            let done = try await postgres.query("SELECT count(*)::bigint FROM image_generation_queue WHERE status = 'done'")[0].decode(Int64.self, at: 0)
            let files = try await postgres.query("SELECT count(*)::bigint, count(DISTINCT item_id)::bigint FROM image_generation_files")[0]
            let report = render(answers, idle: idle, peak: peak, done: Int(done), fileRows: Int(try files.decode(Int64.self, at: 0)),
                                items: flood + other, expectedFiles: flood * 2 + other)
            return (report, max(0, peak - idle))
        }
    }

    /// Plans `count` requests of one checkpoint into one batch; its id and items.
    func planBatch(count: Int, prefix: String, checkpoint: String) async throws -> (id: Int64, items: [[FloodOrders.ItemField]]) {
        let messages = (0..<count).map { index in
            let request = TextToImageRequest(requestID: "bench-\(prefix)-\(index)", checkpoint: checkpoint, positive: "a flood, image \(index)")
            return EnqueueMessage(requestID: request.requestID, body: request.messageJSON())
        }
        _ = try await QueueStore(client: postgres).insert(messages)
        let (created, _, _) = try await PlannerStore(client: postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: Self.secret)
        guard created.count == 1, let batch = created.first else { throw CLIError("expected the \(prefix) requests in one batch, got \(created.count)") }
        let rows = try await postgres.query("SELECT id, request_id FROM image_generation_queue WHERE batch_id = \(batch.id) ORDER BY id")
        let items = try rows.map { [FloodOrders.ItemField.id(try $0.decode(Int64.self, at: 0)), .requestID(try $0.decode(String.self, at: 1))] }
        guard items.count == count else { throw CLIError("batch \(batch.id) has \(items.count) items, not \(count)") }
        return (batch.id, items)
    }

    func render(_ answers: FloodAnswers, idle: Int, peak: Int, done: Int, fileRows: Int, items: Int, expectedFiles: Int) -> String {
        let limits = server.limits
        let concurrency = server.ingestConcurrency
        let mib = { (bytes: Int) in String(format: "%.0f MiB", Double(bytes) / 1_048_576) }
        // What the admitted uploads may hold: each its body as collected (up to twice the
        // cap while NIO's buffer grows) and its inflate buffers; images go to disk.
        let admitted = min(concurrency.maxConcurrent, concurrency.maxPerToken + 1)
        let bound = admitted * 2 * limits.maxBodyBytes + (64 << 20)
        func side(_ name: String, _ s: FloodAnswers.Side) -> String {
            "\(name): stored \(s.stored), already stored \(s.alreadyStored), 429 \(s.answered429), 503 \(s.answered503)"
                + (s.otherStatuses.isEmpty ? "" : ", other \(s.otherStatuses)")
                + ", \(s.answers) answers, p50 \(s.answerMsP50.map { String(format: "%.0f ms", $0) } ?? "-"), slowest \(s.answerMsMax.map { String(format: "%.0f ms", $0) } ?? "-")"
                + (s.retryAfterValues.isEmpty ? "" : ", Retry-After \(s.retryAfterValues.joined(separator: "/")) s")
        }
        return """
            ingest flood: \(answers.flood.stored + answers.flood.alreadyStored) bundles of \(mib(answers.floodBodyBytes)) from one token at once, \
            with another pod uploading \(answers.other.stored + answers.other.alreadyStored) bundles; \(String(format: "%.1f", answers.seconds)) s
            limits: SPOTQ_INGEST_MAX_CONCURRENT=\(concurrency.maxConcurrent), SPOTQ_INGEST_MAX_PER_TOKEN=\(concurrency.maxPerToken), \
            SPOTQ_UPLOAD_MAX_BYTES=\(mib(limits.maxBodyBytes)), SPOTQ_UPLOAD_MAX_EXPANDED_BYTES=\(mib(limits.maxExpandedBytes))
            \(side("  flood", answers.flood))
            \(side("  other pod", answers.other))
            stored: \(done) of \(items) items done, \(fileRows) file rows (expected \(expectedFiles)); lost \(items - done)
            server memory: \(mib(idle)) resident before, peak \(mib(peak)) (+\(mib(max(0, peak - idle)))); \
            bound \(mib(idle)) + \(admitted) admitted × 2 × SPOTQ_UPLOAD_MAX_BYTES + 64 MiB = \(mib(idle + bound)): \(peak <= idle + bound ? "within" : "EXCEEDED")
            """
    }
}

/// What `flood_uploads.py` reads on stdin.
struct FloodOrders: Encodable {
    enum ItemField: Encodable {
        case id(Int64)
        case requestID(String)
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .id(let id): try container.encode(id)
            case .requestID(let requestID): try container.encode(requestID)
            }
        }
    }

    struct Side: Encodable {
        var batch: Int64
        var token: String
        var items: [[ItemField]]
        var imageBytes: Int
        var images: Int
        enum CodingKeys: String, CodingKey { case batch, token, items, imageBytes = "image_bytes", images }
    }

    var url: String
    var flood: Side
    var other: Side
}

/// What `flood_uploads.py` prints.
struct FloodAnswers: Decodable {
    struct Side: Decodable {
        var stored: Int
        var alreadyStored: Int
        var answered429: Int
        var answered503: Int
        var otherStatuses: [String: Int]
        var answers: Int
        var answerMsP50: Double?
        var answerMsMax: Double?
        var retryAfterValues: [String]
        enum CodingKeys: String, CodingKey {
            case stored, alreadyStored = "already_stored", answered429 = "answered_429", answered503 = "answered_503"
            case otherStatuses = "other_statuses", answers, answerMsP50 = "answer_ms_p50", answerMsMax = "answer_ms_max"
            case retryAfterValues = "retry_after_values"
        }
    }

    var seconds: Double
    var floodBodyBytes: Int
    var flood: Side
    var other: Side
    enum CodingKeys: String, CodingKey { case seconds, floodBodyBytes = "flood_body_bytes", flood, other }
}

/// This process's resident memory, from /proc/self/status.
enum ProcessMemory {
    /// Resets the peak (VmHWM) to the current resident size and returns that size.
    static func resetPeak() -> Int {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        return field("VmRSS")
    }

    static func peakBytes() -> Int { field("VmHWM") }

    static func field(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kilobytes = Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1_024
    }
}

/// Runs a Python script with `input` on its stdin and returns its stdout; a non-zero exit is an error.
enum PythonClient {
    static func run(script: String, input: Data) async throws -> Data {
        let thread = DedicatedThread(name: "spotq-bench-client")
        defer { thread.stop() }
        return try await thread.run {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script]
            let stdin = Pipe(), stdout = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            try process.run()
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw CLIError("\(script) exited with \(process.terminationStatus)") }
            return output
        }
    }
}
