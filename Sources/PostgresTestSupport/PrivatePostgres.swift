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

    public func start() throws { try run("start") }
    public func stop() throws { try run("stop") }
    public func restart() throws { try run("restart") }

    /// Stops the cluster and deletes its folder.
    public func destroy() {
        try? run("stop")
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func run(_ action: String) throws {
        try Shell.run(try TestEnvironment.script("postgres-instance.sh"), [action, directory, String(port)])
    }
}
