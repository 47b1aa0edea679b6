import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqBundle
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("result ingest: the real server killed mid-upload")
struct IngestRestartTests {
    /// Starts `spotq server --only http` and waits until it answers /healthz.
    func startServer(database: String, port: Int, storage: URL) async throws -> ChildProcess {
        let server = try ChildProcess(try ChildProcess.spotqBinary(), ["server", "--only", "http"], environment: [
            "SPOTQ_DATABASE_URL": database, "SPOTQ_HTTP_ADDR": "127.0.0.1:\(port)", "SPOTQ_OPS_HTTP_ADDR": "127.0.0.1:0", "SPOTQ_STORAGE_DIR": storage.path,
            "SPOTQ_LOG_LEVEL": "info",
        ])
        try await eventually("the server's /healthz", timeout: .seconds(30)) {
            (try? RawSocket.rawRequest(port: port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 200")) == true
        }
        return server
    }

    @Test func killedWhileReceivingABundle_leavesNoTrace_andTheRetryAfterRestartStoresItOnce() async throws {
        try await TemporaryDatabase.with { database in
            let postgres = PostgresClient(configuration: database, logger: testLogger)
            try await EnqueueFixture.migrateAndRegister(postgres)
            let request = TextToImageRequest(requestID: "r-0", checkpoint: EnqueueFixture.checkpoint, positive: "x")
            _ = try await QueueStore(client: postgres).insert([EnqueueMessage(requestID: "r-0", body: request.messageJSON())])
            let secret = String(repeating: "q", count: 32)
            let batch = try await PlannerStore(client: postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: secret).batches[0].id
            let item = try await postgres.query("SELECT id FROM image_generation_queue")[0].decode(Int64.self, at: 0)
            let token = BatchToken.make(secret: secret, batchID: batch)
            let png = Data(PNGEncoder.encode(width: 256, height: 256) { x, y in (UInt8(x & 0xFF), UInt8(y & 0xFF), 7) })
            let bundle = try BundleWriter.make(item: BundleQueueRow(id: item, requestID: "r-0", batchID: batch), images: [.init(filename: "r-0.png", data: png)])
            let storage = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_storage"))
            defer { try? FileManager.default.removeItem(at: storage) }
            let port = try FreePort.find()
            let head = "POST /v1/batches/\(batch)/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/zip\r\nContent-Length: \(bundle.count)\r\nConnection: close\r\n\r\n"

            // Half the body, then the server dies (SIGKILL: no clean shutdown).
            let first = try await startServer(database: database.url, port: port, storage: storage)
            let socket = try RawSocket.connect(port: port)
            try RawSocket.send(socket, Data(head.utf8) + bundle.prefix(bundle.count / 2))
            try await Task.sleep(for: .milliseconds(300))
            first.signal(SIGKILL)
            _ = await first.wait(timeout: .seconds(10))
            close(socket)
            await first.cleanUp()
            #expect(try await postgres.query("SELECT count(*)::bigint FROM image_generation_files")[0].decode(Int64.self, at: 0) == 0)
            #expect(try await postgres.query("SELECT status FROM image_generation_queue")[0].decode(String.self, at: 0) == "planned")

            // Restarted, the pod's retry goes through once; a second retry changes nothing.
            let second = try await startServer(database: database.url, port: port, storage: storage)
            let answer = try RawSocket.rawRequest(port: port, head, body: bundle)
            #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer)\n\(second.output)")
            let again = try RawSocket.rawRequest(port: port, head, body: bundle)
            #expect(again.hasPrefix("HTTP/1.1 200"), "\(again)")
            #expect(try await postgres.query("SELECT count(*)::bigint FROM image_generation_files")[0].decode(Int64.self, at: 0) == 1)
            let files = (FileManager.default.enumerator(atPath: storage.path)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".png") || $0.contains(".incoming-") }
            #expect(files == ["\(batch)/\(item)/r-0.png"])
            #expect(!second.output.contains(token), "the token must never be logged")
            second.signal(SIGTERM)
            #expect(await second.wait(timeout: .seconds(20)) == 0)
            await second.cleanUp()
            await postgres.shutdown()
        }
    }
}
