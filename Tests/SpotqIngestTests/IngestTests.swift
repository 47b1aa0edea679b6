import CurlClient
import Foundation
import PostgresClient
import SpotqCore
import SpotqBundle
import SpotqTestSupport
import Testing
import ZIPFoundation
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("result ingest: authorization")
struct IngestAuthorizationTests {
    @Test func manifestAndUpload_needTheirOwnBatchsToken() async throws {
        try await IngestFixture.with { f in
            let itemA = f.itemsA[0]
            let bundle = try f.bundle(itemA, batch: f.batchA)
            let manifestA = "/v1/batches/\(f.batchA)/manifest"

            // No token, a garbage token, another batch's token: 401 / 403, and nothing stored.
            #expect(try await f.get(manifestA, token: nil).status == 401)
            #expect(try await f.get(manifestA, token: nil).headers["WWW-Authenticate"]?.hasPrefix("Bearer") == true)
            #expect(try await f.get(manifestA, token: "sqb1_nonsense").status == 403)
            #expect(try await f.get(manifestA, token: f.token(f.batchB)).status == 403)
            #expect(try await f.get("/v1/batches/999999/manifest", token: f.token(f.batchA)).status == 403)
            #expect(try await f.post(bundle, batch: f.batchA, token: nil).status == 401)
            #expect(try await f.post(bundle, batch: f.batchA, token: f.token(f.batchB)).status == 403)
            // B's token on B's URL, but an item of A: refused as not in the batch.
            let wrongItem = try await f.post(try f.bundle(itemA, batch: f.batchB), batch: f.batchB, token: f.token(f.batchB))
            #expect(wrongItem.status == 403)
            #expect(wrongItem.text.contains("is not in batch"))
            #expect(try await f.fileRows(itemA.id) == 0)
            #expect(f.storedFiles().isEmpty)

            // The right token.
            let manifest = try await f.get(manifestA, token: f.token(f.batchA))
            #expect(manifest.status == 200)
            let decoded = try JSONDecoder().decode(BatchManifest.self, from: Data(manifest.body))
            #expect(decoded.batchID == f.batchA)
            #expect(decoded.assets.first?.filename == EnqueueFixture.checkpoint)
            let stored = try await f.post(bundle, batch: f.batchA, token: f.token(f.batchA))
            #expect(stored.status == 201, "\(stored.text)")
            let again = try await f.post(bundle, batch: f.batchA, token: f.token(f.batchA))
            #expect(again.status == 200)
            #expect(again.text.contains("already_stored"))
            #expect(try await f.fileRows(itemA.id) == 1)
            #expect(f.storedFiles() == ["\(f.batchA)/\(itemA.id)/\(itemA.id)_0001.png"])
            let status = try await f.postgres.query("SELECT status, finished_at IS NOT NULL FROM image_generation_queue WHERE id = \(itemA.id)")[0]
            #expect(try status.decode(String.self, at: 0) == "done")
        }
    }
}

@Suite("result ingest: bad bundles leave no trace")
struct IngestBadBundleTests {
    func png(_ seed: UInt8 = 0) -> Data { Data(PNGEncoder.encode(width: 4, height: 4) { _, _ in (seed, seed, seed) }) }

    /// Sends `body` for item A0 and expects `status` with `reason` in the answer, and no trace.
    func expectRefused(_ f: IngestFixture, _ body: Data, status: Int, reason: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let response = try await f.post(body, batch: f.batchA, token: f.token(f.batchA))
        #expect(response.status == status, "\(response.text)", sourceLocation: sourceLocation)
        #expect(response.text.contains(reason), "\(response.text)", sourceLocation: sourceLocation)
        #expect(try await f.fileRows(f.itemsA[0].id) == 0, sourceLocation: sourceLocation)
        #expect(f.storedFiles().isEmpty, sourceLocation: sourceLocation)
        let item = try await f.postgres.query("SELECT status FROM image_generation_queue WHERE id = \(f.itemsA[0].id)")[0]
        #expect(try item.decode(String.self, at: 0) != "done", sourceLocation: sourceLocation)
    }

    func jsonEntries(_ f: IngestFixture, files: [BundleFileRow]) throws -> [(String, Data)] {
        let item = f.itemsA[0]
        return [
            (BundleEntryName.queueRow, try JSONEncoder().encode(BundleQueueRow(id: item.id, requestID: item.requestID, batchID: f.batchA))),
            (BundleEntryName.fileRows, try JSONEncoder().encode(files)),
        ]
    }

    func row(_ name: String, _ data: Data, type: String = "image/png") -> BundleFileRow {
        BundleFileRow(filename: name, bytes: Int64(data.count), sha256: BundleWriterTestSupport.sha256(data), contentType: type)
    }

    @Test func zipSlip_absolutePaths_duplicates_andLinks_areRefused() async throws {
        try await IngestFixture.with { f in
            let image = png()
            for name in ["../evil.png", "/etc/evil.png", "sub/evil.png"] {
                let body = try BundleWriter.zip(try jsonEntries(f, files: [row(name, image)]) + [(name, image)])
                try await expectRefused(f, body, status: 400, reason: "entry")
            }
            let duplicate = try BundleWriter.zip(try jsonEntries(f, files: [row("a.png", image)]) + [("a.png", image), ("a.png", image)])
            try await expectRefused(f, duplicate, status: 400, reason: "appears twice")

            let archive = try Archive(data: Data(), accessMode: .create)
            for (name, data) in try jsonEntries(f, files: [row("a.png", image)]) {
                try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count)) { p, s in data.subdata(in: Int(p) ..< Int(p) + s) }
            }
            let target = Data("/etc/passwd".utf8)
            try archive.addEntry(with: "a.png", type: .symlink, uncompressedSize: Int64(target.count)) { p, s in target.subdata(in: Int(p) ..< Int(p) + s) }
            try await expectRefused(f, archive.data!, status: 400, reason: "symbolic link")
        }
    }

    @Test func aZipBomb_stopsAtTheExpandedSizeCap() async throws {
        var limits = IngestLimits()
        limits.maxFileBytes = 1 << 20
        try await IngestFixture.with(limits: limits) { f in
            // 50 MB of zeros deflate to about 50 kB.
            let bomb = Data(count: 50 << 20)
            let body = try BundleWriter.zip(try jsonEntries(f, files: [row("bomb.png", bomb)]) + [("bomb.png", bomb)])
            #expect(body.count < 1 << 20)
            try await expectRefused(f, body, status: 413, reason: "the limit is 1048576 (SPOTQ_UPLOAD_MAX_FILE_BYTES)")
        }
    }

    @Test func aPNGThatIsNotOne_aHashMismatch_andATruncatedZip_areRefused() async throws {
        try await IngestFixture.with { f in
            let fake = Data("this is not a png at all".utf8)
            try await expectRefused(f, try BundleWriter.zip(try jsonEntries(f, files: [row("x.png", fake)]) + [("x.png", fake)]), status: 415, reason: "not a PNG")

            let image = png()
            var lying = row("x.png", image)
            lying.sha256 = String(repeating: "0", count: 64)
            try await expectRefused(f, try BundleWriter.zip(try jsonEntries(f, files: [lying]) + [("x.png", image)]), status: 400, reason: "SHA-256")

            let whole = try f.bundle(f.itemsA[0], batch: f.batchA)
            try await expectRefused(f, whole.prefix(whole.count / 2), status: 400, reason: "zip")

            let unlisted = try BundleWriter.zip(try jsonEntries(f, files: [row("x.png", image)]) + [("x.png", image), ("extra.png", image)])
            try await expectRefused(f, unlisted, status: 400, reason: "not listed")

            let jpegNamedPNG = Data([0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 0, count: 20))
            try await expectRefused(f, try BundleWriter.zip(try jsonEntries(f, files: [row("x.png", jpegNamedPNG)]) + [("x.png", jpegNamedPNG)]), status: 415, reason: "image/jpeg")
        }
    }

    @Test func aBodyOverTheCap_isRefusedWith413() async throws {
        var limits = IngestLimits()
        limits.maxBodyBytes = 64 << 10
        try await IngestFixture.with(limits: limits) { f in
            let noise = Data((0..<(200 << 10)).map { _ in UInt8.random(in: 0...255) })
            try await expectRefused(f, noise, status: 413, reason: "larger than")
        }
    }
}

@Suite("result ingest: the same item twice")
struct IngestConcurrencyTests {
    @Test func twoClientsUploadingTheSameItemAtOnce_storeItOnce() async throws {
        try await IngestFixture.with { f in
            let item = f.itemsA[1]
            // Two pods made different pixels for the same item (a reclaim mid-image).
            let first = try f.bundle(item, batch: f.batchA, seed: 1)
            let second = try f.bundle(item, batch: f.batchA, seed: 2)
            let other = IngestFixture(enqueue: f.enqueue, port: f.port, storage: f.storage, batchA: f.batchA, batchB: f.batchB, itemsA: f.itemsA, itemsB: f.itemsB, client: try HTTPClient(configuration: CurlConfiguration(), logger: testLoggerForIngest), gate: f.gate)
            async let a = f.post(first, batch: f.batchA, token: f.token(f.batchA))
            async let b = other.post(second, batch: f.batchA, token: f.token(f.batchA))
            let statuses = try await [a.status, b.status].sorted()
            #expect(statuses == [200, 201])
            #expect(try await f.fileRows(item.id) == 1)
            let stored = try await f.postgres.query("SELECT sha256, storage_path FROM image_generation_files WHERE item_id = \(item.id)")[0]
            let onDisk = try Data(contentsOf: f.storage.appendingPathComponent(try stored.decode(String.self, at: 1)))
            #expect(BundleWriterTestSupport.sha256(onDisk) == (try stored.decode(String.self, at: 0)))
            #expect(f.storedFiles().count == 1)
        }
    }
}

import Crypto
import Logging

let testLoggerForIngest: Logger = {
    var logger = Logger(label: "spotq.test.ingest")
    logger.logLevel = .critical
    return logger
}()
