import Foundation

/// A RabbitMQ virtual host of a test's own, so a test can run spotq with its real queue
/// names (`spotq.enqueue`, `spotq.dead`, …) without meeting any other test's messages.
public enum TemporaryVhost {
    /// Creates a vhost, gives the test broker's user every permission on it, runs `body`
    /// with an AMQP URL for it, then deletes it.
    public static func with<T>(_ body: (_ amqpURL: String) async throws -> T) async throws -> T {
        let ctl = try TestEnvironment.value(of: "SPOTQ_RABBITMQCTL")
        let base = try TestEnvironment.amqpURL()
        guard var components = URLComponents(string: base) else {
            throw TestEnvironmentError(description: "SPOTQ_AMQP_URL is not a URL")
        }
        let vhost = TestEnvironment.uniqueName("spotq_vhost")
        let user = components.user ?? "guest"
        try await Shell.run(ctl, ["-q", "add_vhost", vhost])
        do {
            try await Shell.run(ctl, ["-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"])
            components.percentEncodedPath = "/" + vhost
            let result = try await body(components.string ?? base)
            _ = try? await Shell.run(ctl, ["-q", "delete_vhost", vhost])
            return result
        } catch {
            _ = try? await Shell.run(ctl, ["-q", "delete_vhost", vhost])
            throw error
        }
    }
}
