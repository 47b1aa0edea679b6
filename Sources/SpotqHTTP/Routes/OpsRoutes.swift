import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresClient
import SpotqCore
import SpotqStore

/// The operators' HTTP side, on the ops listener: the dashboard page (`GET /`), its data
/// (`GET /v1/ops/overview`) and dead-letter replays (`POST /v1/ops/dead-letters/{id}/replay`).
///
/// Data and actions sit behind `AdminTokenMiddleware` (`SPOTQ_ADMIN_TOKEN`). The token lives
/// in the page's session storage and travels only in that header, never in a cookie, so
/// another site cannot make a browser send it; a POST whose `Origin` is not this server is
/// refused as well.
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
        router.group("/v1/ops")
            .add(middleware: AdminTokenMiddleware(adminToken: adminToken))
            .get("overview") { _, _ in JSONAnswer(try await overview(), headers: Self.noStore) }
            .post("dead-letters/:id/replay") { _, context in JSONAnswer(try await replay(context.parameters.get("id")), headers: Self.noStore) }
    }

    static let contentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    static let noStore: HTTPFields = [.cacheControl: "no-store"]

    func replay(_ idText: String?) async throws -> ReplayAnswer {
        guard let id = idText.flatMap(Int64.init) else { throw SpotqHTTPError(.notFound, "no such dead letter") }
        guard let replay else { throw SpotqHTTPError(.serviceUnavailable, "this server has no broker connection (started with --only http); replay with `spotq dlq replay \(id)`") }
        do {
            try await replay.run(id)
        } catch {
            throw SpotqHTTPError(.conflict, "\(error)")
        }
        logger.info("ops: replayed a dead letter from the dashboard", metadata: ["id": "\(id)"])
        return ReplayAnswer(replayed: id)
    }

    struct Overview: Encodable, Sendable {
        var generatedAt: Date
        var summary: FleetStatusStore.Summary
        var usdPerImage: Double?
        var totalUSD: Double
        var imagesDone: Int
        var batches: [FleetStatusStore.BatchRow]
        var pods: [FleetStatusStore.PodRow]
        var deadLetters: [RecordedDeadLetter.Summary]
        var queueHistory: [Sample]

        struct Sample: Encodable, Sendable {
            var at: Date
            var ready: Int
            var unacknowledged: Int
        }

        enum CodingKeys: String, CodingKey {
            case generatedAt = "generated_at", summary, usdPerImage = "usd_per_image", totalUSD = "total_usd", imagesDone = "images_done"
            case batches, pods, deadLetters = "dead_letters", queueHistory = "queue_history"
        }
    }

    func overview() async throws -> Overview {
        let status = FleetStatusStore(client: postgres)
        let cost = try await CostStore(client: postgres).report()
        let letters = try await DeadLetterStore(client: postgres).list().suffix(50).reversed().map(\.summary)
        let history = try await DemandStore(client: postgres).samples(since: Date().addingTimeInterval(-3_600)).map {
            Overview.Sample(at: $0.takenAt, ready: $0.ready, unacknowledged: $0.unacknowledged)
        }
        let overview = Overview(
            generatedAt: Date(), summary: try await status.summary(), usdPerImage: cost.usdPerImage, totalUSD: cost.totalUSD, imagesDone: cost.imagesDone,
            batches: Array(try await status.batches(includeFinished: true).prefix(30)), pods: Array(try await status.pods(includeTerminated: true).prefix(50)),
            deadLetters: Array(letters), queueHistory: history)
        return overview
    }
}
