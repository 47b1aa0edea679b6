import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("dashboard: a real headless Chromium against spotq server")
struct DashboardTests {
    static let token = String(repeating: "a", count: 24) + "dashboard-admin"

    func curl(_ arguments: [String]) async throws -> (status: Int, body: String) {
        let result = try await Shell.capture("/usr/bin/curl", ["-s", "-w", "\n%{http_code}"] + arguments)
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    @Test func thePageShowsLiveNumbers_keepsHostileTextAsText_andReplaysADeadLetter() async throws {
        try await TemporaryVhost.with { amqpURL in
            try await TemporaryDatabase.with { database in
                let postgres = PostgresClient(configuration: database, logger: testLogger)
                defer { Task { await postgres.shutdown() } }
                try await EnqueueFixture.migrateAndRegister(postgres)
                _ = try await QueueStore(client: postgres).insert((0..<5).map { index in
                    EnqueueMessage(requestID: "d-\(index)", body: TextToImageRequest(requestID: "d-\(index)", checkpoint: EnqueueFixture.checkpoint, positive: "x").messageJSON())
                })
                let (port, opsPort) = (try FreePort.find(), try FreePort.find())
                let server = try ChildProcess(try ChildProcess.spotqBinary(), ["server", "--only", "http,deadletters,demand"], environment: [
                    "SPOTQ_DATABASE_URL": database.url, "SPOTQ_AMQP_URL": amqpURL, "SPOTQ_HTTP_ADDR": "127.0.0.1:\(port)", "SPOTQ_OPS_HTTP_ADDR": "127.0.0.1:\(opsPort)",
                    "SPOTQ_ADMIN_TOKEN": Self.token, "SPOTQ_DEMAND_INTERVAL_SECONDS": "1", "SPOTQ_LOG_LEVEL": "info",
                ])
                defer { Task { await server.cleanUp() } }
                // The dashboard and its routes are on the ops listener, and only there.
                let base = "http://127.0.0.1:\(opsPort)"
                let pods = "http://127.0.0.1:\(port)"
                try await eventually("the server", timeout: .seconds(30), poll: .milliseconds(100)) {
                    let opsUp = (try? await curl([base + "/healthz"]).status) == 200
                    let podsUp = (try? await curl([pods + "/healthz"]).status) == 200
                    return opsUp && podsUp
                }
                #expect(try await curl([pods + "/v1/ops/overview"]).status == 404)
                #expect(try await curl([pods + "/metrics"]).status == 404)
                #expect(try await curl([pods + "/"]).status == 404)
                // A refused request, with a hostile body, lands in spotq.dead and is recorded.
                let connection = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: amqpURL), logger: testLogger)
                try await connection.withChannel { channel in
                    var properties = AMQPMessageProperties(contentType: "application/json")
                    properties.headers = [BrokerNames.reasonHeader: "unknown checkpoint \"<b>bold</b>\"", BrokerNames.originExchangeHeader: .string(BrokerNames.enqueueExchange),
                                          BrokerNames.originRoutingKeyHeader: "image.request", BrokerNames.originQueueHeader: .string(BrokerNames.enqueueQueue)]
                    try await channel.publish(AMQPOutgoingMessage(
                        exchange: BrokerNames.deadLetterExchange, routingKey: "image.request",
                        body: Array(#"{"request_id": "<img src=x onerror=alert(1)>"}"#.utf8), properties: properties))
                }
                let id = try await eventually("the dead letter recorded", timeout: .seconds(30)) { () -> Int64? in
                    try await postgres.query("SELECT id FROM dead_letters").first?.decode(Int64.self, at: 0)
                }
                // A pod whose worker said, a minute ago, it has been generating item 7 for ten minutes.
                try await postgres.query("""
                    INSERT INTO pods (provider, provider_pod_id, gpu_type, interruptible, bid_usd_per_gpu_hour, state, activity, activity_since, progress_at, activity_item_id)
                    VALUES ('devcloud', 'dash-1', 'A4000', true, 0.12, 'generating', 'generating', now() - interval '10 minutes', now() - interval '10 minutes', 7)
                    """)

                // The doors: no token, a wrong one, and another site's page.
                #expect(try await curl([base + "/v1/ops/overview"]).status == 401)
                #expect(try await curl(["-H", "Authorization: Bearer wrong-token-wrong-token-wrong-token", base + "/v1/ops/overview"]).status == 403)
                #expect(try await curl(["-X", "POST", "-H", "Authorization: Bearer \(Self.token)", "-H", "Origin: https://evil.example", base + "/v1/ops/dead-letters/\(id)/replay"]).status == 403)
                let page = try await Shell.capture("/usr/bin/curl", ["-s", "-D", "-", base + "/"]).output
                #expect(page.lowercased().contains("content-security-policy: default-src 'none'"))

                let python = TestEnvironment.packageRoot().appendingPathComponent(".spotq/venv/bin/python").path
                let script = TestEnvironment.packageRoot().appendingPathComponent("scripts/clients/dashboard_check.py").path
                let run = try await Shell.capture(python, [script, base + "/", Self.token, "--replay", "\(id)", "--timeout", "60"])
                let shown = try #require(try JSONSerialization.jsonObject(with: Data((run.output.split(separator: "\n").last ?? "").utf8)) as? [String: Any], "\(run.output)")
                #expect(run.exitCode == 0, "\(run.output)")
                #expect(shown["waiting"] as? String == "5")
                #expect(shown["dead_letters"] as? String == "1")
                #expect(shown["dead_letter_ids"] as? [String] == ["\(id)"])
                #expect(shown["injected_elements"] as? Int == 0, "hostile text must stay text")
                #expect(shown["replay"] as? String == "replayed", "\(shown)")
                #expect((shown["pods_rows"] as? [String])?.contains { $0.contains("generating item 7") && $0.contains("10 min ago") } == true, "what the pod's worker is doing: \(shown)")
                // The replay really happened: recorded, and the request is back in spotq.enqueue.
                #expect(try await postgres.query("SELECT replay_count FROM dead_letters WHERE id = \(id)")[0].decode(Int32.self, at: 0) == 1)
                let ready = try await connection.withChannel { try await $0.declareQueuePassive(BrokerNames.enqueueQueue).messageCount }
                #expect(ready == 1)
                await connection.close()
                server.signal(SIGTERM)
                #expect(await server.wait(timeout: .seconds(20)) == 0)
                #expect(!server.output.contains(Self.token), "the admin token must never be logged")
            }
        }
    }
}
