import Foundation
import SpotqTestSupport

/// A PostgreSQL cluster of a test's own, for tests that stop or restart the server and
/// must not disturb the shared one. Driven by `scripts/postgres-instance.sh`.
public final class PrivatePostgres: Sendable {
    public let directory: String
    public let port: Int

    public var url: String { "postgresql://spotq@127.0.0.1:\(port)/spotq" }

    public init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent(TestEnvironment.uniqueName("spotq_pg")).path
        port = try FreePort.find()
    }

    public func start() async throws { try await run("start") }
    public func stop() async throws { try await run("stop") }
    public func restart() async throws { try await run("restart") }

    /// Stops the cluster and deletes its folder.
    public func destroy() async {
        try? await run("stop")
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func run(_ action: String) async throws {
        try await Shell.run(try TestEnvironment.script("postgres-instance.sh"), [action, directory, String(port)])
    }
}
