import Foundation
import SpotqCore

/// Where `spotq server` listens and what it accepts.
public struct HTTPServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var storageDirectory = URL(fileURLWithPath: "spotq-images")
    public var limits = IngestLimits()
    /// Guards the dashboard's data and actions (`SPOTQ_ADMIN_TOKEN`); nil: the dashboard
    /// answers 503 and says how to set it.
    public var adminToken: String?
    /// A connection that sends nothing for this long is closed, even in the middle of a
    /// request body: a pod whose host vanished mid-upload leaves a half-open connection no
    /// FIN ever ends, whose handler would otherwise wait for the rest of the body forever
    /// (and hold up a graceful shutdown). `SPOTQ_HTTP_IDLE_TIMEOUT_SECONDS`.
    public var idleTimeout: Duration = .seconds(60)

    public init() {}

    /// `SPOTQ_HTTP_ADDR` (host:port), `SPOTQ_STORAGE_DIR`, `SPOTQ_UPLOAD_MAX_BYTES`,
    /// `SPOTQ_UPLOAD_MAX_FILE_BYTES`, `SPOTQ_UPLOAD_MAX_FILES`, `SPOTQ_HTTP_IDLE_TIMEOUT_SECONDS`.
    public static func from(_ settings: SettingsSource) throws -> HTTPServerConfiguration {
        var configuration = HTTPServerConfiguration()
        if let address = settings.string(nil, env: "SPOTQ_HTTP_ADDR") {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65_535).contains(port) else {
                throw ConfigurationError(message: "SPOTQ_HTTP_ADDR='\(address)' is not host:port (e.g. 127.0.0.1:8080)")
            }
            configuration.host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            configuration.port = port
        }
        if let directory = settings.string(nil, env: "SPOTQ_STORAGE_DIR") { configuration.storageDirectory = URL(fileURLWithPath: directory) }
        configuration.limits.maxBodyBytes = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_BYTES", default: configuration.limits.maxBodyBytes, range: 1_024...(4 << 30))
        configuration.limits.maxFileBytes = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_FILE_BYTES", default: configuration.limits.maxFileBytes, range: 1_024...(4 << 30))
        configuration.limits.maxFiles = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_FILES", default: configuration.limits.maxFiles, range: 1...1_000)
        configuration.idleTimeout = .seconds(try settings.integer(nil, env: "SPOTQ_HTTP_IDLE_TIMEOUT_SECONDS", default: 60, range: 1...3_600))
        if let token = settings.string(nil, env: "SPOTQ_ADMIN_TOKEN") {
            guard token.count >= 32 else { throw ConfigurationError(message: "SPOTQ_ADMIN_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)") }
            configuration.adminToken = token
        }
        return configuration
    }
}
