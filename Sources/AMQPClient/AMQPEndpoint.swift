internal import CRabbitMQ

/// Where a parsed AMQP URL points. `description` leaves the password out.
public struct AMQPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    /// The virtual host, percent-decoded (`%2F` → `/`).
    public var vhost: String
    /// `amqps://`: TLS, the broker's certificate checked (``AMQPConfiguration/tls``).
    public var usesTLS: Bool
    var password: String

    /// Parses with rabbitmq-c's `amqp_parse_url`, so the rules are the library's: defaults
    /// guest/guest@localhost:5672 (5671 for `amqps://`), vhost `/` when the URL has no path,
    /// percent-decoding.
    public init(parsing url: String) throws(AMQPError) {
        var buffer = Array(url.utf8CString)
        var info = amqp_connection_info()
        amqp_default_connection_info(&info)
        let status = buffer.withUnsafeMutableBufferPointer { amqp_parse_url($0.baseAddress, &info) }
        let redacted = Self.redact(url)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(
                code: .invalidURL,
                message: "cannot parse AMQP URL '\(redacted)': expected amqp://user:password@host:port/vhost "
                    + "(percent-encode '/' in the vhost as %2F; no query parameters)")
        }
        usesTLS = info.ssl.boolValue
        // The info points into `buffer` (or at static defaults); copy before it goes.
        host = String(cString: info.host)
        port = Int(info.port)
        user = String(cString: info.user)
        password = String(cString: info.password)
        vhost = String(cString: info.vhost)
        guard !host.isEmpty else {
            throw AMQPError(code: .invalidURL, message: "AMQP URL '\(redacted)' names no host")
        }
    }

    public init(host: String, port: Int = 5672, user: String = "guest", password: String = "guest", vhost: String = "/", usesTLS: Bool = false) {
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
        self.user = user
        self.password = password
        self.vhost = vhost
    }

    /// A plain `amqp://` connection to a host that is not this machine: the password and
    /// every message cross the network readable by anyone on the path.
    public var crossesNetworkInClear: Bool {
        !usesTLS && !["localhost", "127.0.0.1", "::1"].contains(host.lowercased()) && !host.hasPrefix("127.")
    }

    /// `host:port` as used in error messages and logs.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String { "\(usesTLS ? "amqps" : "amqp")://\(user)@\(address) vhost '\(vhost)'" }

    /// Replaces the password of an `amqp://user:password@…` URL with `***`.
    static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        guard let at = rest.lastIndex(of: "@") else { return url }
        let userInfo = rest[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<schemeEnd.upperBound]) + userInfo[..<colon] + ":***" + rest[at...]
    }
}

extension amqp_boolean_t {
    var boolValue: Bool { self != 0 }
}
