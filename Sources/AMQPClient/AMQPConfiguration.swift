import Foundation

/// How to reach a RabbitMQ broker and how patient to be with it.
///
/// Defaults suit a broker on the same network: a 30 s heartbeat, 10 s to connect and log in,
/// 30 s for any RPC and for publisher confirms. Validate once with ``endpoint()`` at start.
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    /// `amqp://user:password@host:port/vhost`, or `amqps://…` for TLS (see ``tls``); the
    /// vhost is percent-decoded (`%2F` is `/`), an absent path means vhost `/`.
    public var url: String
    /// How an `amqps://` connection checks the broker. Ignored for `amqp://`.
    public var tls: AMQPTLSSettings = AMQPTLSSettings()
    /// Sent as client property `connection_name`, so `rabbitmqctl list_connections name`
    /// and the management UI show who this is.
    public var connectionName: String?
    /// Heartbeat interval asked of the broker, in seconds; 0 turns heartbeats off. The broker
    /// may lower it. A broker silent for twice this long is taken for dead.
    public var heartbeatSeconds: Int
    /// Time allowed for the TCP connect.
    public var connectTimeout: Duration
    /// Time allowed for the AMQP handshake (protocol header to `connection.open-ok`).
    public var handshakeTimeout: Duration
    /// Time allowed for one synchronous AMQP method (declare, bind, qos, consume, close…).
    /// rabbitmq-c closes the socket when it passes, so the connection dies with it.
    public var rpcTimeout: Duration
    /// Time allowed for the broker to confirm a publish (or a whole batch).
    public var confirmTimeout: Duration
    /// Largest frame asked of the broker, in bytes (the broker may lower it).
    public var frameMax: Int
    /// Most channels asked of the broker on one connection.
    public var channelMax: Int

    public init(
        url: String,
        connectionName: String? = nil,
        heartbeatSeconds: Int = 30,
        connectTimeout: Duration = .seconds(10),
        handshakeTimeout: Duration = .seconds(10),
        rpcTimeout: Duration = .seconds(30),
        confirmTimeout: Duration = .seconds(30),
        frameMax: Int = 131_072,
        channelMax: Int = 2047
    ) {
        self.url = url
        self.connectionName = connectionName
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.rpcTimeout = rpcTimeout
        self.confirmTimeout = confirmTimeout
        self.frameMax = frameMax
        self.channelMax = channelMax
    }

    /// The URL with its password replaced by `***`, safe for logs.
    public var redactedURL: String { AMQPEndpoint.redact(url) }

    public var description: String {
        "AMQPConfiguration(url: \(redactedURL), connectionName: \(connectionName ?? "-"), "
            + "heartbeat: \(heartbeatSeconds)s)"
    }

    /// Parses and checks the settings; throws `invalidURL` / `invalidArgument` with a message
    /// saying what to fix.
    public func endpoint() throws(AMQPError) -> AMQPEndpoint {
        guard (0...65_535).contains(heartbeatSeconds) else {
            throw AMQPError(code: .invalidArgument, message: "heartbeatSeconds must be 0...65535, not \(heartbeatSeconds)")
        }
        guard frameMax >= 4096 else {
            throw AMQPError(code: .invalidArgument, message: "frameMax must be at least 4096 bytes, not \(frameMax)")
        }
        guard (1...65_535).contains(channelMax) else {
            throw AMQPError(code: .invalidArgument, message: "channelMax must be 1...65535, not \(channelMax)")
        }
        for (name, value) in [("connectTimeout", connectTimeout), ("handshakeTimeout", handshakeTimeout),
                              ("rpcTimeout", rpcTimeout), ("confirmTimeout", confirmTimeout)]
        where value <= .zero {
            throw AMQPError(code: .invalidArgument, message: "\(name) must be positive")
        }
        let endpoint = try AMQPEndpoint(parsing: url)
        if endpoint.usesTLS, let caFile = tls.caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw AMQPError(code: .invalidArgument, message: "the CA file '\(caFile)' for amqps:// (SPOTQ_AMQP_CA_FILE) cannot be read")
        }
        return endpoint
    }
}

/// How an `amqps://` connection checks the broker's certificate. Both checks are on by
/// default; turning either off lets anyone on the network path read and forge the traffic.
public struct AMQPTLSSettings: Sendable, Equatable {
    /// PEM file of the CA (or CAs) that signed the broker's certificate. Without one, the
    /// system's bundle (``systemBundle``) is used: rabbitmq-c itself loads no default CAs.
    public var caFile: String?
    /// Check that a trusted CA signed the broker's certificate.
    public var verifyPeer = true
    /// Check that the certificate names the host in the URL. rabbitmq-c 0.11 matches DNS
    /// names only, never IP addresses: connect by name (`localhost`, not `127.0.0.1`).
    public var verifyHostname = true

    public init(caFile: String? = nil, verifyPeer: Bool = true, verifyHostname: Bool = true) {
        self.caFile = caFile
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
    }

    /// Whether `text` holds a PEM certificate (what rabbitmq-c loads as a CA file).
    public static func isPEMCertificate(_ text: String) -> Bool {
        text.contains("-----BEGIN CERTIFICATE-----")
    }

    /// Debian's (and most Linux distributions') bundle of public CAs.
    public static let systemBundle = "/etc/ssl/certs/ca-certificates.crt"

    /// The CA file a connection loads: the configured one, else the system's if present.
    var effectiveCAFile: String? {
        caFile ?? (FileManager.default.isReadableFile(atPath: Self.systemBundle) ? Self.systemBundle : nil)
    }
}
