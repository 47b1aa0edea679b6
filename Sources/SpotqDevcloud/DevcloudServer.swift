import Hummingbird
import Logging

/// Runs devcloud's HTTP stand-ins as one Hummingbird application.
public enum DevcloudServer {
    public static func makeApplication(
        host: String, port: Int, logger: Logger, register: (Router<BasicRequestContext>) -> Void,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        register(router)
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "spotq-devcloud"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) }, logger: logger)
    }
}
