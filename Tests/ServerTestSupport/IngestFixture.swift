import CurlClient
import Foundation
import Hummingbird
import Logging
import PostgresClient
import SpotqCore
import SpotqHTTP
import SpotqBundle
import SpotqStore
import SpotqTestSupport
import SpotqSynthetic

/// Two planned batches (A and B, 3 items each) in a database of their own, the HTTP server
/// on an ephemeral port, a storage folder of its own, and a client.
struct IngestFixture: Sendable {
    static let secret = String(repeating: "k", count: 40)

    let enqueue: EnqueueFixture
    let port: Int
    let storage: URL
    let batchA: Int64
    let batchB: Int64
    let itemsA: [(id: Int64, requestID: String)]
    let itemsB: [(id: Int64, requestID: String)]
    let client: HTTPClient
    /// The server's ingest admission, to wait until stalled uploads hold their slots.
    let gate: IngestGate

    var postgres: PostgresClient { enqueue.postgres }
    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }
    func token(_ batch: Int64) -> String { BatchToken.make(secret: Self.secret, batchID: batch) }

    static func with(
        limits: IngestLimits = IngestLimits(), concurrency: IngestConcurrency = IngestConcurrency(), idleTimeout: Duration = .seconds(60),
        _ body: @Sendable (IngestFixture) async throws -> Void) async throws {
        try await EnqueueFixture.with { enqueue in
            let (batches, items) = try await planTwoBatches(enqueue.postgres)
            let storage = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_storage"))
            defer { try? FileManager.default.removeItem(at: storage) }
            var configuration = HTTPServerConfiguration()
            configuration.port = 0
            configuration.storageDirectory = storage
            configuration.limits = limits
            configuration.ingestConcurrency = concurrency
            configuration.idleTimeout = idleTimeout
            let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
            var logger = Logger(label: "spotq.test.http")
            logger.logLevel = .critical
            let gate = IngestGate(limits: concurrency)
            let app = SpotqHTTPServer.makePodApplication(configuration: configuration, postgres: enqueue.postgres, logger: logger, gate: gate) { port in
                portSink.yield(port)
                portSink.finish()
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.run() }
                guard let port = await ports.first(where: { _ in true }), port > 0 else { throw TestEnvironmentError(description: "the HTTP server reported no port") }
                let fixture = IngestFixture(
                    enqueue: enqueue, port: port, storage: storage, batchA: batches[0], batchB: batches[1],
                    itemsA: items[0], itemsB: items[1],
                    client: try HTTPClient(configuration: CurlConfiguration(), logger: logger), gate: gate)
                let result: Result<Void, any Error>
                do { result = .success(try await body(fixture)) } catch { result = .failure(error) }
                group.cancelAll()
                try? await group.waitForAll()
                try result.get()
            }
        }
    }

    /// Batches A and B, three items each, planned with `secret` (so `token(_:)` is theirs).
    static func planTwoBatches(_ postgres: PostgresClient) async throws -> (batches: [Int64], items: [[(id: Int64, requestID: String)]]) {
        var batches: [Int64] = []
        var items: [[(id: Int64, requestID: String)]] = []
        for prefix in ["a", "b"] {
            let messages = (0..<3).map { index in
                let request = TextToImageRequest(requestID: "\(prefix)-\(index)", checkpoint: EnqueueFixture.checkpoint, positive: "x")
                return EnqueueMessage(requestID: request.requestID, body: request.messageJSON())
            }
            _ = try await QueueStore(client: postgres).insert(messages)
            let (created, _, _) = try await PlannerStore(client: postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: secret)
            batches.append(created[0].id)
            let rows = try await postgres.query("SELECT id, request_id FROM image_generation_queue WHERE batch_id = \(created[0].id) ORDER BY id")
            items.append(try rows.map { (id: try $0.decode(Int64.self, at: 0), requestID: try $0.decode(String.self, at: 1)) })
        }
        return (batches, items)
    }

    /// A valid bundle for `item` with one PNG (`seed` varies its pixels).
    func bundle(_ item: (id: Int64, requestID: String), batch: Int64, seed: UInt8 = 1) throws -> Data {
        let png = Data(PNGEncoder.encode(width: 8, height: 8) { x, y in (UInt8(x * 30), UInt8(y * 30), seed) })
        return try BundleWriter.make(
            item: BundleQueueRow(id: item.id, requestID: item.requestID, batchID: batch),
            images: [.init(filename: "\(item.id)_0001.png", data: png)])
    }

    func post(_ body: Data, batch: Int64, token: String?, contentType: String? = "application/zip") async throws -> CurlClient.HTTPResponse {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        return try await client.send(CurlClient.HTTPRequest(method: .post, url: url("/v1/batches/\(batch)/results"), headers: headers, body: [UInt8](body)))
    }

    /// Opens an upload and sends part of its body: the server holds an ingest slot for it
    /// until the rest comes or the connection is closed (`close` the descriptor).
    func stalledUpload(batch: Int64, token: String) throws -> Int32 {
        let socket = try RawSocket.connect(port: port)
        try RawSocket.send(socket, Data("POST /v1/batches/\(batch)/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/zip\r\nContent-Length: 100000\r\n\r\n".utf8) + Data(count: 1_000))
        return socket
    }

    /// Waits until `count` uploads hold ingest slots (stalled ones, say).
    func untilInProgress(_ count: Int) async throws {
        let gate = self.gate
        try await eventually("\(count) uploads in progress") { gate.inProgress == count }
    }

    func get(_ path: String, token: String?) async throws -> CurlClient.HTTPResponse {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        return try await client.send(CurlClient.HTTPRequest(url: url(path), headers: headers))
    }

    func fileRows(_ item: Int64) async throws -> Int {
        Int(try await postgres.query("SELECT count(*)::bigint FROM image_generation_files WHERE item_id = \(item)")[0].decode(Int64.self, at: 0))
    }

    /// Every file under the storage folder (relative paths).
    func storedFiles() -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: storage.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { !$0.isEmpty && !(try! URL(fileURLWithPath: storage.path + "/" + $0).resourceValues(forKeys: [.isDirectoryKey]).isDirectory ?? false) }.sorted()
    }
}

extension CurlClient.HTTPResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
}
