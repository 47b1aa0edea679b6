/// The logger metadata keys this module sets, in one place.
public enum AMQPLogMetadata {
    /// The connection name from ``AMQPConfiguration/connectionName``.
    public static let connection = "amqp.connection"
    /// `host:port`, never with credentials.
    public static let endpoint = "amqp.endpoint"
    public static let vhost = "amqp.vhost"
    /// The wire channel number.
    public static let channel = "amqp.channel"
    public static let error = "amqp.error"
}
