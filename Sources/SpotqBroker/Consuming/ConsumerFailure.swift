import AMQPClient

/// Why a ``QueueConsumer`` stopped without being asked to.
public struct QueueConsumerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

extension QueueConsumerConfiguration {
    /// True for errors reconnecting cannot fix (the consumer throws them): bad credentials,
    /// an invalid URL, a client this application closed. Everything else (a lost connection
    /// or channel, a timeout, a cancelled consumer, an unconfirmed publish) is retried.
    public static func isPermanent(_ error: any Error) -> Bool {
        if error is QueueConsumerError { return true }
        guard let error = error as? AMQPError else { return false }
        return [.authenticationFailed, .invalidURL, .closed].contains(error.code)
    }
}
