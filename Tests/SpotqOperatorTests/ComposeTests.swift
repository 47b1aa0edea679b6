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

    /// The stack as `docker-compose config` resolves it, as JSON (PyYAML, which Debian's
    /// docker-compose depends on, reads its YAML).
    static func resolvedStack() async throws -> [String: Any] {
        let env = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_compose") + ".env")
        defer { try? FileManager.default.removeItem(at: env) }
        var text = try String(contentsOf: root.appendingPathComponent("compose/.env.example"), encoding: .utf8)
        for name in ["POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "SPOTQ_SECRET", "SPOTQ_ADMIN_TOKEN", "GRAFANA_PASSWORD", "SPOTQ_RUNPOD_API_KEY"] {
            text = text.replacingOccurrences(of: "\n\(name)=\n", with: "\n\(name)=test-\(name.lowercased())\n")
        }
        try text.write(to: env, atomically: true, encoding: .utf8)
        let config = try await compose(["--env-file", env.path, "-f", composeFile, "config"])
        #expect(config.exitCode == 0, "\(config.output)")
        let yaml = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_compose") + ".yml")
        defer { try? FileManager.default.removeItem(at: yaml) }
        try config.output.write(to: yaml, atomically: true, encoding: .utf8)
        let json = try await Shell.run("/usr/bin/python3", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", yaml.path])
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func onlyTheTLSDoorsFaceTheWorld_andPostgreSQLTheOpsListenerAndMetricsStayInternal() async throws {
        let stack = try await Self.resolvedStack()
        let services = try #require(stack["services"] as? [String: [String: Any]])
        func published(_ service: String) -> [String] {
            ((services[service]?["ports"] as? [Any]) ?? []).map { port in
                if let long = port as? [String: Any] { return "\(long["host_ip"] as? String ?? "*"):\(long["published"] ?? "")" }
                let short = "\(port)".replacingOccurrences(of: "/tcp", with: "")
                return short.split(separator: ":").count == 3 ? String(short.split(separator: ":").prefix(2).joined(separator: ":")) : "*:\(short.split(separator: ":").first ?? "")"
            }
        }
        #expect(published("proxy") == ["*:443"])
        #expect(published("rabbitmq") == ["*:5671"])
        #expect(published("server") == ["127.0.0.1:8081"], "the ops listener (dashboard, /metrics) on the host's loopback only")
        #expect(published("grafana") == ["127.0.0.1:3000"])
        for service in ["postgres", "prometheus", "migrate", "credentials", "provisioner"] {
            #expect(published(service).isEmpty, "\(service) publishes \(published(service))")
        }
        let networks = try #require(stack["networks"] as? [String: [String: Any]])
        func attached(_ service: String) -> Set<String> {
            if let map = services[service]?["networks"] as? [String: Any] { return Set(map.keys) }
            return Set((services[service]?["networks"] as? [String]) ?? [])
        }
        #expect(networks["internal"]?["internal"] as? Bool == true)
        #expect(networks["pods-http"]?["internal"] as? Bool == true)
        #expect(attached("postgres") == ["internal"], "PostgreSQL only on the internal network")
        #expect(attached("prometheus") == ["internal"])
        #expect(attached("proxy").isDisjoint(with: ["internal"]), "the proxy reaches the server's pod listener only")
        // The server and the provisioner log in as their own least-privilege users, from files.
        for component in ["server", "provisioner"] {
            let environment = try #require(services[component]?["environment"] as? [String: Any])
            #expect(environment["SPOTQ_DATABASE_URL"] == nil && environment["SPOTQ_DATABASE_URL_FILE"] != nil, "\(component)")
            #expect(environment["SPOTQ_AMQP_URL"] == nil && environment["SPOTQ_AMQP_URL_FILE"] != nil, "\(component)")
        }
        let provisioner = try #require(services["provisioner"]?["environment"] as? [String: Any])
        #expect(provisioner["SPOTQ_SECRET"] == nil, "the provisioner needs no SPOTQ_SECRET")
        #expect((provisioner["SPOTQ_POD_SERVER_URL"] as? String).map { !$0.hasPrefix("http://") } ?? true)

        let rabbitmq = try String(contentsOf: Self.root.appendingPathComponent("compose/rabbitmq.conf"), encoding: .utf8)
        #expect(rabbitmq.contains("listeners.ssl.default = 5671"))
        #expect(rabbitmq.contains("max_message_size = "))
        let proxy = try String(contentsOf: Self.root.appendingPathComponent("compose/nginx/spotq.conf.template"), encoding: .utf8)
        #expect(proxy.contains("limit_req_zone") && proxy.contains("limit_conn_zone"), "connection and request limits")
        #expect(proxy.contains("client_max_body_size ${SPOTQ_UPLOAD_MAX_BYTES}"))
        #expect(proxy.contains("location ~ ^/v1/pod/(bootstrap\\.sh|spotq|manifest)$"), "new pods fetch the bootstrap and the binary through the proxy")
        #expect(!proxy.contains("proxy_pass http://server:8081") && proxy.contains("set $spotq_pods server:8080;"), "the proxy passes on to the pod listener only")
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
