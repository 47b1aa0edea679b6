import SpotqCore

/// How long a consumer keeps held deliveries unacknowledged, retrying, before handing them
/// back to the queue. Kept well under RabbitMQ's consumer_timeout (15 min by default), past
/// which the broker closes the channel itself.
public struct HoldPolicy: Sendable, Hashable {
    public enum Next: Sendable, Hashable {
        /// Offer the held deliveries to the handler again after this wait.
        case retry(after: Duration)
        /// Close the channel (everything in hand goes back to the queue) and wait for the
        /// handler's `ready()`.
        case handBack
    }

    public var limit: Duration
    public var backoff: RetryBackoff

    public init(limit: Duration, backoff: RetryBackoff) {
        self.limit = limit
        self.backoff = backoff
    }

    /// After the `holds`-th consecutive hold, `elapsed` after the first: retry (never waiting
    /// past the limit) or hand back.
    public func next(afterHolds holds: Int, elapsed: Duration) -> Next {
        guard elapsed < limit else { return .handBack }
        return .retry(after: min(backoff.delay(afterFailures: max(holds, 1)), limit - elapsed))
    }
}
