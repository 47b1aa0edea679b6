import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SpotqBundle
import SpotqCore
import SpotqHTTP
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("HTTP router: refusals become statuses and {\"error\": reason}, in process")
struct RouterErrorMappingTests {
    func upload(_ client: some TestClientProtocol, _ f: RouterFixture, _ body: Data, contentType: String = "application/zip") async throws -> TestResponse {
        var headers = RouterFixture.bearer(f.token(f.batchA))
        headers[.contentType] = contentType
        return try await client.execute(uri: "/v1/batches/\(f.batchA)/results", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    func bundle(_ f: RouterFixture) throws -> Data {
        let item = f.itemsA[0]
        let png = Data(PNGEncoder.encode(width: 8, height: 8) { x, y in (UInt8(x * 30), UInt8(y * 30), 7) })
        return try BundleWriter.make(item: BundleQueueRow(id: item.id, requestID: item.requestID, batchID: f.batchA), images: [.init(filename: "\(item.id)_0001.png", data: png)])
    }

    @Test func refusalKinds_mapToTheirStatuses() {
        #expect(SpotqHTTPError(IngestRefusal(.badBundle, "x")).status == .badRequest)
        #expect(SpotqHTTPError(IngestRefusal(.tooLarge, "x")).status == .contentTooLarge)
        #expect(SpotqHTTPError(IngestRefusal(.unsupportedType, "x")).status == .unsupportedMediaType)
        #expect(SpotqHTTPError(IngestRefusal(.wrongBatch, "x")).status == .forbidden)
        #expect(SpotqHTTPError(IngestRefusal(.storageFailed, "x")).status == .internalServerError)
        struct Unexpected: Error {}
        #expect(SpotqHTTPError.status(answering: Unexpected()) == .internalServerError)
        #expect(SpotqHTTPError.status(answering: HTTPError(.notFound)) == .notFound)
    }

    @Test func aBodyThatIsNotAZip_is415_anOversizedOne413_aTruncatedOne400() async throws {
        try await RouterFixture.with { f in
            let limits = { var limits = IngestLimits(); limits.maxBodyBytes = 4_096; return limits }()
            try await f.pods(limits: limits) { client in
                let good = try bundle(f)
                let text = try await upload(client, f, good, contentType: "text/plain")
                #expect(text.status == .unsupportedMediaType)
                #expect(text.headers[.contentType] == "application/json")
                #expect(text.refusal == #"Content-Type must be application/zip (a result bundle), not "text/plain""#, "\(text.text)")

                let oversized = try await upload(client, f, Data(repeating: 0x50, count: limits.maxBodyBytes + 1))
                #expect(oversized.status == .contentTooLarge)
                #expect(oversized.refusal == "the bundle is larger than 4096 bytes (SPOTQ_UPLOAD_MAX_BYTES)", "\(oversized.text)")

                let truncated = try await upload(client, f, good.prefix(good.count / 2))
                #expect(truncated.status == .badRequest)
                #expect(truncated.refusal?.contains("truncated or corrupt") == true, "\(truncated.text)")

                let unknown = try await client.execute(uri: "/v1/nothing-here", method: .get)
                #expect(unknown.status == .notFound)
            }
            #expect(try await f.postgres.count("SELECT count(*) FROM image_generation_files") == 0)
        }
    }

    @Test func anUpload_isStoredOnce_withCodableAnswers() async throws {
        try await RouterFixture.with { f in
            try await f.pods { client in
                let body = try bundle(f)
                let stored = try await upload(client, f, body)
                #expect(stored.status == .created, "\(stored.text)")
                #expect(try JSONDecoder().decode(UploadAnswer.self, from: Data(buffer: stored.body)) == UploadAnswer(itemID: f.itemsA[0].id, status: .stored, files: 1))
                let again = try await upload(client, f, body)
                #expect(again.status == .ok)
                #expect(try JSONDecoder().decode(UploadAnswer.self, from: Data(buffer: again.body)) == UploadAnswer(itemID: f.itemsA[0].id, status: .alreadyStored, files: nil))
            }
        }
    }

    @Test func theUploadCounters_countEveryAnswerOfTheResultsRoute_andNothingElse() async throws {
        try await RouterFixture.with { f in
            try await f.pods { client in
                let body = try bundle(f)
                _ = try await upload(client, f, body)                                              // stored
                _ = try await upload(client, f, body)                                              // duplicate
                _ = try await client.execute(uri: "/v1/batches/\(f.batchA)/results", method: .post) // refused: no token
                _ = try await upload(client, f, Data("not a zip".utf8))                            // refused: 400
                // Other pod routes are not uploads.
                _ = try await client.execute(uri: "/v1/batches/\(f.batchA)/manifest", method: .get)
                _ = try await client.execute(uri: "/v1/batches/\(f.batchA)/progress", method: .get, headers: RouterFixture.bearer(f.token(f.batchA)))
            }
            let scraped = try await f.ops { client in try await client.execute(uri: "/metrics", method: .get).text }
            #expect(scraped.contains(#"spotq_uploads_total{outcome="stored"} 1"#), "\(scraped)")
            #expect(scraped.contains(#"spotq_uploads_total{outcome="duplicate"} 1"#))
            #expect(scraped.contains(#"spotq_uploads_total{outcome="refused"} 2"#))
            #expect(scraped.contains("spotq_upload_failures_total 2"))
            #expect(!scraped.contains(#"spotq_uploads_total{outcome="error"}"#))
        }
    }
}
