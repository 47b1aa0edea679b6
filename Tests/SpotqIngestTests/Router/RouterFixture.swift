import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresClient
import SpotqCore
import SpotqHTTP
import SpotqTestSupport
@testable import ServerTestSupport

/// The two HTTP applications of `spotq server`, driven in process (`app.test(.router)`), on a
/// real PostgreSQL holding two planned batches (A and B, three items each).
struct RouterFixture: Sendable {
    static let adminToken = String(repeating: "r", count: 40)

    let postgres: PostgresClient
    let batchA: Int64
    let batchB: Int64
    let itemsA: [(id: Int64, requestID: String)]
    let storage: URL
    let metrics: SpotqMetrics
    let logger: Logger

    func token(_ batch: Int64) -> String { BatchToken.make(secret: IngestFixture.secret, batchID: batch) }

    static func with(_ body: @Sendable (RouterFixture) async throws -> Void) async throws {
        try await EnqueueFixture.with { enqueue in
            let (batches, items) = try await IngestFixture.planTwoBatches(enqueue.postgres)
            let storage = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_router"))
            defer { try? FileManager.default.removeItem(at: storage) }
            var logger = Logger(label: "spotq.test.router")
            logger.logLevel = .critical
            try await body(RouterFixture(
                postgres: enqueue.postgres, batchA: batches[0], batchB: batches[1], itemsA: items[0], storage: storage,
                metrics: SpotqMetrics(postgres: enqueue.postgres, queues: nil, logger: logger), logger: logger))
        }
    }

    func configuration(limits: IngestLimits = IngestLimits(), adminToken: String? = RouterFixture.adminToken) -> HTTPServerConfiguration {
        var configuration = HTTPServerConfiguration()
        configuration.storageDirectory = storage
        configuration.limits = limits
        configuration.adminToken = adminToken
        return configuration
    }

    /// Runs `test` against the pod listener's router.
    func pods<Value: Sendable>(limits: IngestLimits = IngestLimits(), _ test: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        try await SpotqHTTPServer.makePodApplication(configuration: configuration(limits: limits), postgres: postgres, logger: logger, metrics: metrics)
            .test(.router, test)
    }

    /// Runs `test` against the ops listener's router.
    func ops<Value: Sendable>(adminToken: String? = RouterFixture.adminToken, _ test: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        try await SpotqHTTPServer.makeOpsApplication(configuration: configuration(adminToken: adminToken), postgres: postgres, logger: logger, metrics: metrics)
            .test(.router, test)
    }

    static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The reason of a `{"error": "<reason>"}` answer; nil for any other body.
    var refusal: String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any], object.count == 1 else { return nil }
        return object["error"] as? String
    }
}
