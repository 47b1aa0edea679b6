import CurlClient
import Foundation
import SpotqBundle
import SpotqCore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

@Suite("result ingest: under hostile load")
struct IngestLoadTests {
    /// Item A0's header and one declared image, with whatever bytes `image` holds.
    func bundle(_ f: IngestFixture, item: (id: Int64, requestID: String), rows: [BundleFileRow], files: [(String, Data)]) throws -> Data {
        try BundleWriter.zip([
            (BundleEntryName.queueRow, try JSONEncoder().encode(BundleQueueRow(id: item.id, requestID: item.requestID, batchID: f.batchA))),
            (BundleEntryName.fileRows, try JSONEncoder().encode(rows)),
        ] + files)
    }

    func pngLike(_ count: Int) -> Data {
        Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data((0..<(count - 8)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    }

    func row(_ name: String, _ data: Data) -> BundleFileRow {
        BundleFileRow(filename: name, bytes: Int64(data.count), sha256: BundleWriterTestSupport.sha256(data), contentType: "image/png")
    }

    @Test func imagesEachUnderTheFileCap_butOverTheExpandedTotal_are413_beforeAnyIsInflated() async throws {
        var limits = IngestLimits()
        limits.maxFileBytes = 1 << 20
        limits.maxExpandedBytes = 1 << 20
        try await IngestFixture.with(limits: limits) { f in
            let images = (0..<4).map { ("\($0).png", pngLike(400_000)) }
            let body = try bundle(f, item: f.itemsA[0], rows: images.map { row($0.0, $0.1) }, files: images)
            let answer = try await f.post(body, batch: f.batchA, token: f.token(f.batchA))
            #expect(answer.status == 413, "\(answer.text)")
            #expect(answer.text.contains("SPOTQ_UPLOAD_MAX_EXPANDED_BYTES"), "\(answer.text)")
            #expect(f.storedFiles().isEmpty)
        }
    }

    @Test func anItemStoredAlready_answers200_withoutReadingItsImages() async throws {
        try await IngestFixture.with { f in
            let item = f.itemsA[0]
            #expect(try await f.post(try f.bundle(item, batch: f.batchA), batch: f.batchA, token: f.token(f.batchA)).status == 201)
            // A second bundle whose image does not match its row: read, it would be a 400.
            let image = pngLike(1_000)
            var lying = row("\(item.id)_0001.png", image)
            lying.sha256 = String(repeating: "0", count: 64)
            let again = try await f.post(try bundle(f, item: item, rows: [lying], files: [(lying.filename, image)]), batch: f.batchA, token: f.token(f.batchA))
            #expect(again.status == 200, "\(again.text)")
            #expect(again.text.contains("already_stored"))
            #expect(try await f.fileRows(item.id) == 1)
        }
    }

    @Test func aFloodFromOneToken_is429WithRetryAfter_whileAnotherBatchIsStillStored_andAFullServerIs503() async throws {
        let concurrency = IngestConcurrency(maxConcurrent: 3, maxPerToken: 2, retryAfterSeconds: 7)
        try await IngestFixture.with(concurrency: concurrency) { f in
            let flood = try (0..<2).map { _ in try f.stalledUpload(batch: f.batchA, token: f.token(f.batchA)) }
            try await f.untilInProgress(2)
            let overShare = try await f.post(Data("not a zip".utf8), batch: f.batchA, token: f.token(f.batchA))
            #expect(overShare.status == 429)
            #expect(overShare.headers["Retry-After"] == "7")
            #expect(overShare.text.contains("SPOTQ_INGEST_MAX_PER_TOKEN"), "\(overShare.text)")

            // The other batch's pod still gets its turn.
            let other = try await f.post(try f.bundle(f.itemsB[0], batch: f.batchB), batch: f.batchB, token: f.token(f.batchB))
            #expect(other.status == 201, "\(other.text)")

            // With the last slot held too, everyone waits: 503.
            let third = try f.stalledUpload(batch: f.batchB, token: f.token(f.batchB))
            try await f.untilInProgress(3)
            let full = try await f.post(Data("not a zip".utf8), batch: f.batchB, token: f.token(f.batchB))
            #expect(full.status == 503)
            #expect(full.headers["Retry-After"] == "7")
            #expect(full.text.contains("SPOTQ_INGEST_MAX_CONCURRENT"), "\(full.text)")

            // Closed connections give their slots back; nothing of them was kept.
            for socket in flood + [third] { close(socket) }
            // Generous: under the whole suite's load a closed socket's slot is noticed late.
            let after = try await eventually("slots come back", timeout: .seconds(60)) {
                let answer = try await f.post(try f.bundle(f.itemsA[0], batch: f.batchA), batch: f.batchA, token: f.token(f.batchA))
                return answer.status == 201 ? answer : nil
            }
            #expect(after.status == 201)
            #expect(f.storedFiles().count == 2)
        }
    }
}
