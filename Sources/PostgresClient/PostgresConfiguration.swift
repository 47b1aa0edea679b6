import Foundation

/// How to reach PostgreSQL. Built once at start, validated, then shared.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URL, e.g. `postgresql://spotq:secret@127.0.0.1:5432/spotq`.
    public var url: String
    /// How long to wait for a connection to open (libpq's minimum is 2 s).
    public var connectTimeout: Duration = .seconds(5)
    /// The default limit for one statement; the client cancels it when the time is up.
    public var statementTimeout: Duration = .seconds(30)
    /// Shown in `pg_stat_activity.application_name`.
    public var applicationName: String = "spotq"
    /// A schema to put first on the search path (used to isolate tests); nil keeps the default.
    public var searchPath: String?
    /// How many connections a ``PostgresClient`` may open.
    public var maxConnections: Int = 4

    public init(url: String) throws {
        guard url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") else {
            throw PostgresError(
                code: .invalidConfiguration,
                message: "a PostgreSQL URL must start with postgresql:// (got \(Self.redact(url)))")
        }
        self.url = url
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    public var redactedURL: String { Self.redact(url) }

    /// `host:port` as written in the URL, for error messages.
    var endpoint: String {
        guard let components = URLComponents(string: url) else { return "the configured server" }
        return "\(components.host ?? "localhost"):\(components.port ?? 5432)"
    }

    static func redact(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "<unparseable URL>" }
        if components.password != nil { components.password = "***" }
        if let items = components.queryItems {
            components.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: $0.name, value: "***") : $0 }
        }
        return components.string ?? "<unparseable URL>"
    }
}
