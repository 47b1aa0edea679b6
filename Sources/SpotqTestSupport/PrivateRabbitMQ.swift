import Foundation

/// A RabbitMQ node of a test's own, for tests that stop or restart the broker and must not
/// disturb the shared one. Driven by `scripts/rabbitmq-instance.sh`; it uses five ports in
/// a row (AMQP, its epmd, Erlang distribution, AMQP over TLS, the management API).
public final class PrivateRabbitMQ: Sendable {
    public let directory: String
    public let port: Int

    public var url: String { "amqp://guest:guest@127.0.0.1:\(port)/%2F" }
    /// The same node over TLS; its certificate is signed by ``caFile`` and names `localhost`.
    public var tlsURL: String { "amqps://guest:guest@localhost:\(port + 3)/%2F" }
    public var caFile: String { directory + "/tls/ca.pem" }
    public var managementURL: String { "http://guest:guest@127.0.0.1:\(port + 4)" }

    public init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent(TestEnvironment.uniqueName("spotq_rmq")).path
        port = try FreePort.find(consecutive: 5)
    }

    public func start() async throws { try await run("start") }
    public func stop() async throws { try await run("stop") }

    /// Stops the node and deletes its folder.
    public func destroy() async {
        try? await run("destroy")
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func run(_ action: String) async throws {
        try await Shell.run(try TestEnvironment.script("rabbitmq-instance.sh"), [action, directory, String(port)])
    }
}
