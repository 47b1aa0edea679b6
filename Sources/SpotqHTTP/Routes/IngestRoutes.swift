import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SpotqBundle
import SpotqCore
import SpotqIngest
import SpotqStore

/// What pods call: their batch's manifest, its progress, and one result bundle per image.
/// Every route sits behind `BatchTokenMiddleware` (the pod's or the batch's token); the
/// results route is counted by `UploadMetricsMiddleware` around it, and admitted by
/// `IngestGate` before its body is read.
public struct IngestRoutes: Sendable {
    public let batches: BatchAccessStore
    public let results: ResultStore
    public let limits: IngestLimits
    public let gate: IngestGate
    public let logger: Logger
    public let metrics: SpotqMetrics?

    public init(batches: BatchAccessStore, results: ResultStore, limits: IngestLimits, gate: IngestGate, logger: Logger, metrics: SpotqMetrics? = nil) {
        self.batches = batches
        self.results = results
        self.limits = limits
        self.gate = gate
        self.logger = logger
        self.metrics = metrics
    }

    public func register(on router: Router<PodRequestContext>) {
        let authorised = BatchTokenMiddleware(store: batches)
        let batch = router.group("/v1/batches/:id")
        let uploads = batch.group("results")
        if let metrics { uploads.add(middleware: UploadMetricsMiddleware(metrics: metrics)) }
        uploads.add(middleware: authorised).post(use: upload)
        batch.add(middleware: authorised)
            .get("manifest", use: manifest)
            .get("progress", use: progress)
    }

    /// The manifest as stored: `batches.manifest` is JSON text, answered byte for byte (not
    /// decoded and encoded again).
    @Sendable func manifest(_ request: Request, _ context: PodRequestContext) async throws -> Response {
        let batch = try context.requireAuthorisedBatch()
        guard let text = try await batches.manifestJSON(batch: batch) else { throw SpotqHTTPError(.notFound, "batch \(batch) has no manifest") }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// How much of the batch is left: pods leave when nothing is (README, "The pod worker").
    @Sendable func progress(_ request: Request, _ context: PodRequestContext) async throws -> JSONAnswer<ProgressAnswer> {
        let batch = try context.requireAuthorisedBatch()
        let progress = try await batches.progress(batch: batch)
        return JSONAnswer(ProgressAnswer(batchID: batch, items: progress.items, done: progress.done, failed: progress.failed, remaining: progress.remaining))
    }

    @Sendable func upload(_ request: Request, _ context: PodRequestContext) async throws -> JSONAnswer<UploadAnswer> {
        let batch = try context.requireAuthorisedBatch()
        if let type = request.headers[.contentType], !Self.isZip(type) {
            throw IngestRefusal.unsupportedType("Content-Type must be application/zip (a result bundle), not \"\(type.prefix(80))\"")
        }
        // Admitted before the body is read: a refused upload costs no memory.
        return try await gate.admit(token: context.tokenHash ?? "batch-\(batch)") { thread in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limits.maxBodyBytes)
            } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
                throw IngestRefusal.tooLarge("the bundle is larger than \(limits.maxBodyBytes) bytes (SPOTQ_UPLOAD_MAX_BYTES)")
            } catch {
                throw IngestRefusal.badBundle("the body ended before all of it arrived (a truncated upload); send the bundle again")
            }
            // The zip is read where it lies in the request's buffer, not copied.
            let bundle = body.getData(at: body.readerIndex, length: body.readableBytes, byteTransferStrategy: .noCopy) ?? Data()
            let (item, outcome) = try await results.store(bundle, batch: batch, limits: limits, on: thread)
            switch outcome {
            case .created(let files):
                logger.info("ingest: stored a result", metadata: ["batch": "\(batch)", "item": "\(item)", "files": "\(files)"])
                return JSONAnswer(UploadAnswer(itemID: item, status: .stored, files: files), status: .created)
            case .alreadyStored:
                logger.info("ingest: result was already stored", metadata: ["batch": "\(batch)", "item": "\(item)"])
                return JSONAnswer(UploadAnswer(itemID: item, status: .alreadyStored, files: nil))
            }
        }
    }

    /// `application/zip` (or the older `application/x-zip-compressed`), parameters ignored.
    /// A missing Content-Type is let through: the zip checks that follow still apply.
    static func isZip(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return media == "application/zip" || media == "application/x-zip-compressed"
    }
}
