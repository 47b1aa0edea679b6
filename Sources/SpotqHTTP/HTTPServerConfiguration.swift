import Foundation
import SpotqCore
import SpotqPod

/// Where `spotq server` listens and what it accepts.
public struct HTTPServerConfiguration: Sendable {
    /// The pod listener (`SPOTQ_HTTP_ADDR`): manifests, progress, result uploads.
    public var host = "127.0.0.1"
    public var port = 8080
    /// The ops listener (`SPOTQ_OPS_HTTP_ADDR`): `/metrics`, the dashboard and its routes.
    /// Its own address, so the pods' routes can be exposed without it.
    public var opsHost = "127.0.0.1"
    public var opsPort = 8081
    public var storageDirectory = URL(fileURLWithPath: "spotq-images")
    /// The spotq binary served to pods (`SPOTQ_POD_BINARY`; default: this executable).
    public var podBinaryPath = PodSoftware.binaryPath(environment: [:])
    public var limits = IngestLimits()
    /// How many uploads are stored at once, in all and per token.
    public var ingestConcurrency = IngestConcurrency()
    /// Guards the dashboard's data and actions (`SPOTQ_ADMIN_TOKEN`); nil: the dashboard
    /// answers 503 and says how to set it.
    public var adminToken: String?
    /// A connection that sends nothing for this long is closed, even in the middle of a
    /// request body: a pod whose host vanished mid-upload leaves a half-open connection no
    /// FIN ever ends, whose handler would otherwise wait for the rest of the body forever
    /// (and hold up a graceful shutdown). `SPOTQ_HTTP_IDLE_TIMEOUT_SECONDS`.
    public var idleTimeout: Duration = .seconds(60)

    public init() {}

    /// `SPOTQ_HTTP_ADDR` and `SPOTQ_OPS_HTTP_ADDR` (host:port), `SPOTQ_STORAGE_DIR`, `SPOTQ_UPLOAD_MAX_BYTES`,
    /// `SPOTQ_UPLOAD_MAX_FILE_BYTES`, `SPOTQ_UPLOAD_MAX_EXPANDED_BYTES`, `SPOTQ_UPLOAD_MAX_FILES`,
    /// `SPOTQ_INGEST_MAX_CONCURRENT`, `SPOTQ_INGEST_MAX_PER_TOKEN`, `SPOTQ_INGEST_RETRY_AFTER_SECONDS`,
    /// `SPOTQ_HTTP_IDLE_TIMEOUT_SECONDS`, `SPOTQ_POD_BINARY`.
    public static func from(_ settings: SettingsSource) throws -> HTTPServerConfiguration {
        var configuration = HTTPServerConfiguration()
        if let address = settings.string(nil, env: "SPOTQ_HTTP_ADDR") {
            (configuration.host, configuration.port) = try hostAndPort(address, "SPOTQ_HTTP_ADDR", example: "127.0.0.1:8080")
        }
        if let address = settings.string(nil, env: "SPOTQ_OPS_HTTP_ADDR") {
            (configuration.opsHost, configuration.opsPort) = try hostAndPort(address, "SPOTQ_OPS_HTTP_ADDR", example: "127.0.0.1:8081")
        }
        if configuration.port != 0, configuration.port == configuration.opsPort, configuration.host == configuration.opsHost {
            throw ConfigurationError(message: "SPOTQ_HTTP_ADDR and SPOTQ_OPS_HTTP_ADDR are both \(configuration.host):\(configuration.port); the ops listener needs an address of its own")
        }
        if let directory = settings.string(nil, env: "SPOTQ_STORAGE_DIR") { configuration.storageDirectory = URL(fileURLWithPath: directory) }
        if let binary = settings.string(nil, env: "SPOTQ_POD_BINARY") {
            guard FileManager.default.isReadableFile(atPath: binary) else {
                throw ConfigurationError(message: "SPOTQ_POD_BINARY is \(binary), which cannot be read: it must be the spotq build pods run")
            }
            configuration.podBinaryPath = binary
        }
        configuration.limits.maxBodyBytes = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_BYTES", default: configuration.limits.maxBodyBytes, range: 1_024...(4 << 30))
        configuration.limits.maxFileBytes = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_FILE_BYTES", default: configuration.limits.maxFileBytes, range: 1_024...(4 << 30))
        configuration.limits.maxExpandedBytes = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_EXPANDED_BYTES", default: configuration.limits.maxExpandedBytes, range: 1_024...(16 << 30))
        configuration.limits.maxFiles = try settings.integer(nil, env: "SPOTQ_UPLOAD_MAX_FILES", default: configuration.limits.maxFiles, range: 1...1_000)
        configuration.ingestConcurrency.maxConcurrent = try settings.integer(nil, env: "SPOTQ_INGEST_MAX_CONCURRENT", default: configuration.ingestConcurrency.maxConcurrent, range: 1...256)
        configuration.ingestConcurrency.maxPerToken = try settings.integer(nil, env: "SPOTQ_INGEST_MAX_PER_TOKEN", default: configuration.ingestConcurrency.maxPerToken, range: 1...256)
        configuration.ingestConcurrency.retryAfterSeconds = try settings.integer(nil, env: "SPOTQ_INGEST_RETRY_AFTER_SECONDS", default: configuration.ingestConcurrency.retryAfterSeconds, range: 1...300)
        configuration.idleTimeout = .seconds(try settings.integer(nil, env: "SPOTQ_HTTP_IDLE_TIMEOUT_SECONDS", default: 60, range: 1...3_600))
        if let token = settings.string(nil, env: "SPOTQ_ADMIN_TOKEN") {
            guard token.count >= 32 else { throw ConfigurationError(message: "SPOTQ_ADMIN_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)") }
            configuration.adminToken = token
        }
        return configuration
    }

    static func hostAndPort(_ address: String, _ name: String, example: String) throws -> (host: String, port: Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ConfigurationError(message: "\(name)='\(address)' is not host:port (e.g. \(example))")
        }
        return (String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }
}
