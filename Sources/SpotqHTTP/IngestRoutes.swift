import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresClient
import SpotqCore
import SpotqIngest

/// What pods call: their batch's manifest, and one result bundle per image. Every route
/// needs `Authorization: Bearer <the batch's upload token>`.
public struct IngestRoutes: Sendable {
    public let postgres: PostgresClient
    public let results: ResultStore
    public let limits: IngestLimits
    public let logger: Logger
    public let metrics: SpotqMetrics?

    public init(postgres: PostgresClient, results: ResultStore, limits: IngestLimits, logger: Logger, metrics: SpotqMetrics? = nil) {
        self.postgres = postgres
        self.results = results
        self.limits = limits
        self.logger = logger
        self.metrics = metrics
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/batches/:id/manifest") { request, context in
            await respond { try await manifest(request, context) }
        }
        router.post("/v1/batches/:id/results") { request, context in
            let response = await respond { try await upload(request, context) }
            metrics?.upload(Self.outcome(response.status.code))
            return response
        }
        router.get("/v1/batches/:id/progress") { request, context in
            await respond { try await progress(request, context) }
        }
    }

    func manifest(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let batch = try await authorize(request, context)
        let rows = try await postgres.query("SELECT manifest::text FROM batches WHERE id = \(batch)")
        guard let text = try rows.first?.decode(String?.self, at: 0) else { throw IngestError(404, "batch \(batch) has no manifest") }
        return Self.json(.ok, text)
    }

    /// How much of the batch is left: pods leave when nothing is (README, "The pod worker").
    func progress(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let batch = try await authorize(request, context)
        let row = try await postgres.query("""
            SELECT count(*)::bigint, count(*) FILTER (WHERE status = 'done')::bigint,
                   count(*) FILTER (WHERE status IN ('failed', 'dead'))::bigint
            FROM image_generation_queue WHERE batch_id = \(batch)
            """)[0]
        let (items, done, failed) = (try row.decode(Int64.self, at: 0), try row.decode(Int64.self, at: 1), try row.decode(Int64.self, at: 2))
        return Self.json(.ok, #"{"batch_id": \#(batch), "items": \#(items), "done": \#(done), "failed": \#(failed), "remaining": \#(items - done - failed)}"#)
    }

    func upload(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let batch = try await authorize(request, context)
        if let type = request.headers[.contentType], !Self.isZip(type) {
            throw IngestError(415, "Content-Type must be application/zip (a result bundle), not \"\(type.prefix(80))\"")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limits.maxBodyBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw IngestError(413, "the bundle is larger than \(limits.maxBodyBytes) bytes (SPOTQ_UPLOAD_MAX_BYTES)")
        } catch {
            throw IngestError(400, "the body ended before all of it arrived (a truncated upload); send the bundle again")
        }
        let bundle = try BundleReader.read(Data(buffer: body), limits: limits)
        let outcome = try await results.store(bundle, batch: batch)
        switch outcome {
        case .created(let files):
            logger.info("ingest: stored a result", metadata: ["batch": "\(batch)", "item": "\(bundle.item.id)", "files": "\(files)"])
            return Self.json(.created, #"{"item_id": \#(bundle.item.id), "status": "stored", "files": \#(files)}"#)
        case .alreadyStored:
            logger.info("ingest: result was already stored", metadata: ["batch": "\(batch)", "item": "\(bundle.item.id)"])
            return Self.json(.ok, #"{"item_id": \#(bundle.item.id), "status": "already_stored"}"#)
        }
    }

    /// The batch of the URL, once the bearer token is that batch's: 401 without a token,
    /// 403 with anyone else's (or for a batch that does not exist, which is not revealed).
    func authorize(_ request: Request, _ context: BasicRequestContext) async throws -> Int64 {
        guard let text = context.parameters.get("id"), let batch = Int64(text), batch > 0 else {
            throw IngestError(404, "no such batch")
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
              case let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces), !token.isEmpty
        else {
            throw IngestError(401, "an Authorization: Bearer <batch upload token> header is required")
        }
        let rows = try await postgres.query("SELECT upload_token_hash FROM batches WHERE id = \(batch)")
        // Hash and compare even when the batch is unknown, so timing does not tell.
        let stored = try rows.first?.decode(String?.self, at: 0) ?? String(repeating: "0", count: 64)
        guard ConstantTime.equals(stored, BatchToken.hash(token)), !rows.isEmpty else {
            throw IngestError(403, "this token is not valid for batch \(batch)")
        }
        return batch
    }

    /// Turns refusals into JSON answers; anything else is a 500 that says little.
    func respond(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as IngestError {
            if error.status >= 500 { logger.error("ingest: \(error.reason)") } else { logger.notice("ingest: refused", metadata: ["status": "\(error.status)", "reason": "\(error.reason)"]) }
            var response = Self.json(HTTPResponse.Status(code: error.status), Self.errorJSON(error.reason))
            if error.status == 401 { response.headers[.wwwAuthenticate] = #"Bearer realm="spotq""# }
            return response
        } catch {
            logger.error("ingest: failed", metadata: ["error": "\(error)"])
            return Self.json(.internalServerError, Self.errorJSON("internal error; try again later"))
        }
    }

    /// `application/zip` (or the older `application/x-zip-compressed`), parameters ignored.
    /// A missing Content-Type is let through: the zip checks that follow still apply.
    static func isZip(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return media == "application/zip" || media == "application/x-zip-compressed"
    }

    /// An upload's answer as the metrics count it.
    static func outcome(_ status: Int) -> String {
        switch status {
        case 201: "stored"
        case 200: "duplicate"
        case 400..<500: "refused"
        default: "error"
        }
    }

    static func errorJSON(_ reason: String) -> String {
        String(decoding: JSONValue.object([("error", .string(reason))]).serialized(), as: UTF8.self)
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
