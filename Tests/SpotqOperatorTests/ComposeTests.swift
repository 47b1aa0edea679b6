import Foundation
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

@Suite("compose/: the production stack")
struct ComposeTests {
    static let root = TestEnvironment.packageRoot()
    static var composeFile: String { root.appendingPathComponent("compose/docker-compose.yml").path }

    /// `docker compose` (v2) where installed, else Debian's `docker-compose` (v1.29).
    static func compose(_ arguments: [String]) async throws -> (exitCode: Int32, output: String) {
        if FileManager.default.isExecutableFile(atPath: "/usr/libexec/docker/cli-plugins/docker-compose") {
            return try await Shell.capture("/usr/bin/docker", ["compose"] + arguments)
        }
        return try await Shell.capture("/usr/bin/docker-compose", arguments)
    }

    @Test func dockerComposeConfig_validatesTheStack_andMissingSecretsAreNamed() async throws {
        let env = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_compose") + ".env")
        defer { try? FileManager.default.removeItem(at: env) }
        var text = try String(contentsOf: Self.root.appendingPathComponent("compose/.env.example"), encoding: .utf8)
        for name in ["POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "SPOTQ_SECRET", "SPOTQ_ADMIN_TOKEN", "GRAFANA_PASSWORD", "SPOTQ_RUNPOD_API_KEY"] {
            text = text.replacingOccurrences(of: "\n\(name)=\n", with: "\n\(name)=test-\(name.lowercased())\n")
        }
        try text.write(to: env, atomically: true, encoding: .utf8)
        let valid = try await Self.compose(["--env-file", env.path, "-f", Self.composeFile, "config"])
        #expect(valid.exitCode == 0, "\(valid.output)")
        for service in ["postgres:", "rabbitmq:", "migrate:", "server:", "provisioner:", "prometheus:", "grafana:"] {
            #expect(valid.output.contains("  \(service)\n"), "missing \(service)")
        }
        #expect(valid.output.contains("/etc/rabbitmq/conf.d/90-spotq.conf"))
        #expect(valid.output.contains("SPOTQ_ADMIN_TOKEN: test-spotq_admin_token"))
        // The pods' environment comes from the provisioner; database credentials never reach it.
        #expect(!valid.output.contains("SPOTQ_POD_DATABASE"))

        let missing = try await Self.compose(["-f", Self.composeFile, "config"])
        #expect(missing.exitCode != 0)
        #expect(missing.output.contains("set POSTGRES_PASSWORD in compose/.env") || missing.output.contains("compose/.env"), "\(missing.output)")
    }

    @Test func theGrafanaDashboard_andPrometheus_useMetricsTheServerEmits() throws {
        let dashboard = try String(contentsOf: Self.root.appendingPathComponent("compose/grafana/dashboards/spotq.json"), encoding: .utf8)
        #expect(try JSONSerialization.jsonObject(with: Data(dashboard.utf8)) is [String: Any])
        let emitted = try String(contentsOf: Self.root.appendingPathComponent("Sources/SpotqHTTP/Metrics/MetricsRoute.swift"), encoding: .utf8)
        let used = Set(dashboard.matches(of: /spotq_[a-z_]+/).map { String($0.output) })
        #expect(used.count >= 8)
        for metric in used {
            #expect(emitted.contains("\"\(metric)\""), "the dashboard uses \(metric), which /metrics does not emit")
        }
        let prometheus = try String(contentsOf: Self.root.appendingPathComponent("compose/prometheus.yml"), encoding: .utf8)
        // /metrics is on the server's ops listener, not on the pods' one.
        #expect(prometheus.contains("server:8081") && prometheus.contains("/metrics"))
        #expect(!prometheus.contains("server:8080"))
    }
}
