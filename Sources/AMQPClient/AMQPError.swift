/// The one error type of this module.
///
/// Every rabbitmq-c status and every broker `connection.close` / `channel.close` becomes an
/// `AMQPError` at the module boundary. `description` is safe to log: it never contains a
/// password (URLs are redacted before they get here).
public struct AMQPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a category code can switch on. Extensible: new codes are static lets.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The TCP connection could not be made, or the broker refused the handshake.
        public static let connectionFailed = Code("connectionFailed")
        /// The broker rejected the user name or password (ACCESS_REFUSED during login).
        public static let authenticationFailed = Code("authenticationFailed")
        /// The broker closed the channel (`channel.close`); `replyText` holds its reason.
        public static let channelClosed = Code("channelClosed")
        /// The connection died: socket error, `connection.close` from the broker, peer gone.
        public static let connectionClosed = Code("connectionClosed")
        /// An operation did not complete in time.
        public static let timeout = Code("timeout")
        /// No traffic from the broker for two heartbeat intervals.
        public static let heartbeatTimeout = Code("heartbeatTimeout")
        /// The broker or the library broke the protocol (unexpected frame, bad data).
        public static let protocolError = Code("protocolError")
        /// The AMQP URL could not be parsed or asks for something unsupported.
        public static let invalidURL = Code("invalidURL")
        /// The connection or channel was closed by this application and takes no more work.
        public static let closed = Code("closed")
        /// The broker cancelled the consumer (e.g. its queue was deleted).
        public static let consumerCancelled = Code("consumerCancelled")
        /// The broker answered a publish with `basic.nack`.
        public static let publishNacked = Code("publishNacked")
        /// A mandatory publish could not be routed and came back as `basic.return`.
        public static let publishReturned = Code("publishReturned")
        /// An argument was out of range (e.g. a field table the library cannot encode).
        public static let invalidArgument = Code("invalidArgument")
    }

    public var code: Code
    /// What happened and what to do about it, for a person.
    public var message: String
    /// The AMQP reply code the broker sent with `connection.close`, `channel.close` or `basic.return`.
    public var replyCode: Int?
    /// The broker's own text, e.g. `NOT_FOUND - no exchange 'x' in vhost '/'`.
    public var replyText: String?

    public init(code: Code, message: String, replyCode: Int? = nil, replyText: String? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.replyText = replyText
    }

    public var description: String {
        var text = "AMQP \(code): \(message)"
        if let replyText {
            text += " (broker: \(replyCode.map { "\($0) " } ?? "")\(replyText))"
        }
        return text
    }
}

extension AMQPError {
    static func closedByApplication(_ what: String) -> AMQPError {
        AMQPError(code: .closed, message: "the \(what) was closed by this application and takes no more work")
    }
}
