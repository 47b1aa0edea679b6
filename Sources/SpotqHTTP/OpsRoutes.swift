import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresClient
import SpotqCore
import SpotqStore

/// The operators' HTTP side: the dashboard page (`GET /`), its data (`GET /v1/ops/overview`)
/// and dead-letter replays (`POST /v1/ops/dead-letters/{id}/replay`).
///
/// Data and actions need `Authorization: Bearer <SPOTQ_ADMIN_TOKEN>`. The token lives in the
/// page's session storage and travels only in that header, never in a cookie, so another
/// site cannot make a browser send it; a POST whose `Origin` is not this server is refused
/// as well.
public struct OpsRoutes: Sendable {
    /// Replays one dead letter (the server's broker side); nil without a broker.
    public struct Replay: Sendable {
        let run: @Sendable (Int64) async throws -> Void
        public init(_ run: @escaping @Sendable (Int64) async throws -> Void) { self.run = run }
    }

    let postgres: PostgresClient
    let adminToken: String?
    let replay: Replay?
    let logger: Logger

    public init(postgres: PostgresClient, adminToken: String?, replay: Replay?, logger: Logger) {
        self.postgres = postgres
        self.adminToken = adminToken
        self.replay = replay
        self.logger = logger
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.contentSecurityPolicy],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/v1/ops/overview") { request, _ in
            await answer { try authorize(request); return try await overview() }
        }
        router.post("/v1/ops/dead-letters/:id/replay") { request, context in
            await answer {
                try authorize(request)
                try checkOrigin(request)
                guard let id = context.parameters.get("id").flatMap(Int64.init) else { throw IngestError(404, "no such dead letter") }
                guard let replay else { throw IngestError(503, "this server has no broker connection (started with --only http); replay with `spotq dlq replay \(id)`") }
                do {
                    try await replay.run(id)
                } catch {
                    throw IngestError(409, "\(error)")
                }
                logger.info("ops: replayed a dead letter from the dashboard", metadata: ["id": "\(id)"])
                return #"{"replayed": \#(id)}"#
            }
        }
    }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func authorize(_ request: Request) throws {
        guard let adminToken else { throw IngestError(503, "set SPOTQ_ADMIN_TOKEN (32 or more characters) on the server to use the dashboard") }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw IngestError(401, "an Authorization: Bearer <SPOTQ_ADMIN_TOKEN> header is required")
        }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        guard ConstantTime.equals(BatchToken.hash(token), BatchToken.hash(adminToken)) else { throw IngestError(403, "wrong admin token") }
    }

    /// Refuses a request sent by a page of another origin (defence in depth: the bearer
    /// header already cannot be forged cross-site).
    func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        let host = request.head.authority ?? ""
        guard let url = URL(string: origin), let originHost = url.host else { throw IngestError(403, "cross-site request refused") }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        guard originAuthority == host else { throw IngestError(403, "cross-site request refused (Origin \(origin) is not \(host))") }
    }

    func answer(_ body: () async throws -> String) async -> Response {
        do {
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: ResponseBody(byteBuffer: ByteBuffer(string: try await body())))
        } catch let error as IngestError {
            var response = Response(status: HTTPResponse.Status(code: error.status), headers: [.contentType: "application/json"],
                                    body: ResponseBody(byteBuffer: ByteBuffer(string: IngestRoutes.errorJSON(error.reason))))
            if error.status == 401 { response.headers[.wwwAuthenticate] = #"Bearer realm="spotq-admin""# }
            return response
        } catch {
            logger.error("ops: failed", metadata: ["error": "\(error)"])
            return Response(status: .internalServerError, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: IngestRoutes.errorJSON("internal error"))))
        }
    }

    struct Overview: Encodable {
        var generatedAt: Date
        var summary: FleetStatusStore.Summary
        var usdPerImage: Double?
        var totalUSD: Double
        var imagesDone: Int
        var batches: [FleetStatusStore.BatchRow]
        var pods: [FleetStatusStore.PodRow]
        var deadLetters: [DeadLetterView]
        var queueHistory: [Sample]

        struct DeadLetterView: Encodable {
            var id: Int64
            var reason: String
            var originQueue: String?
            var deadLetteredAt: Date
            var replayCount: Int
            var body: String

            enum CodingKeys: String, CodingKey {
                case id, reason, originQueue = "origin_queue", deadLetteredAt = "dead_lettered_at", replayCount = "replay_count", body
            }
        }

        struct Sample: Encodable {
            var at: Date
            var ready: Int
            var unacknowledged: Int
        }

        enum CodingKeys: String, CodingKey {
            case generatedAt = "generated_at", summary, usdPerImage = "usd_per_image", totalUSD = "total_usd", imagesDone = "images_done"
            case batches, pods, deadLetters = "dead_letters", queueHistory = "queue_history"
        }
    }

    func overview() async throws -> String {
        let status = FleetStatusStore(client: postgres)
        let cost = try await CostStore(client: postgres).report()
        let letters = try await DeadLetterStore(client: postgres).list().suffix(50).reversed().map {
            Overview.DeadLetterView(
                id: $0.id, reason: $0.reason, originQueue: $0.originQueue, deadLetteredAt: $0.deadLetteredAt, replayCount: $0.replayCount,
                body: String(String(decoding: $0.body.prefix(300), as: UTF8.self)))
        }
        let history = try await DemandStore(client: postgres).samples(since: Date().addingTimeInterval(-3_600)).map {
            Overview.Sample(at: $0.takenAt, ready: $0.ready, unacknowledged: $0.unacknowledged)
        }
        let overview = Overview(
            generatedAt: Date(), summary: try await status.summary(), usdPerImage: cost.usdPerImage, totalUSD: cost.totalUSD, imagesDone: cost.imagesDone,
            batches: Array(try await status.batches(includeFinished: true).prefix(30)), pods: Array(try await status.pods(includeTerminated: true).prefix(50)),
            deadLetters: Array(letters), queueHistory: history)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(overview), as: UTF8.self)
    }
}
