import Logging

/// Hands out a live ``AMQPConnection``, reconnecting on demand after the previous one died.
///
/// Higher layers loop: `connection()` → open a channel → consume or publish → on error, log
/// and go round again. Concurrent callers share one connection attempt. After failed
/// attempts each new one waits per ``AMQPReconnectPolicy`` (exponential backoff with
/// jitter), so such a loop never spins; a cancelled caller stops waiting at once.
public actor AMQPClient {
    public nonisolated let configuration: AMQPConfiguration
    public nonisolated let reconnectPolicy: AMQPReconnectPolicy
    /// The user this client logs in as: the only `user_id` the broker lets it publish with.
    public nonisolated var userName: String? { try? configuration.endpoint().user }
    private let logger: Logger
    private var current: AMQPConnection?
    private var attempt: AsyncPromise<AMQPConnection>?
    private var consecutiveFailures = 0
    private var connectedBefore = false
    private var closed = false

    public init(configuration: AMQPConfiguration, reconnectPolicy: AMQPReconnectPolicy = AMQPReconnectPolicy(), logger: Logger) {
        self.configuration = configuration
        self.reconnectPolicy = reconnectPolicy
        self.logger = logger
    }

    /// The open connection, or a new one when there is none or it died.
    public func connection() async throws -> AMQPConnection {
        if closed { throw AMQPError.closedByApplication("AMQP client") }
        if let current {
            if current.isOpen { return current }
            logger.warning(
                "AMQP connection is gone; reconnecting",
                metadata: [AMQPLogMetadata.error: "\(current.closeReason.map { "\($0)" } ?? "-")"])
            self.current = nil
        }
        let promise: AsyncPromise<AMQPConnection>
        if let attempt {
            promise = attempt
        } else {
            promise = AsyncPromise()
            attempt = promise
            let delay = reconnectPolicy.delay(afterFailures: consecutiveFailures)
            Task { await self.establish(promise, after: delay) }
        }
        return try await promise.value()
    }

    private func establish(_ promise: AsyncPromise<AMQPConnection>, after delay: Duration) async {
        if delay > .zero {
            logger.debug("AMQP reconnect backing off", metadata: ["delay": "\(delay)", "failures": "\(consecutiveFailures)"])
            try? await Task.sleep(for: delay)
        }
        do {
            let connection = try await AMQPConnection.connect(configuration: configuration, logger: logger)
            attempt = nil
            if closed {
                await connection.close()
                promise.fail(AMQPError.closedByApplication("AMQP client"))
                return
            }
            current = connection
            if connectedBefore {
                logger.info("AMQP reconnected", metadata: ["after_failures": "\(consecutiveFailures)"])
            } else {
                logger.info("AMQP connected")
            }
            connectedBefore = true
            consecutiveFailures = 0
            promise.succeed(connection)
        } catch {
            attempt = nil
            consecutiveFailures += 1
            logger.warning(
                "AMQP connection attempt failed",
                metadata: [AMQPLogMetadata.error: "\(error)", "failures": "\(consecutiveFailures)"])
            promise.fail(error)
        }
    }

    /// Closes the current connection; later ``connection()`` calls throw code `closed`.
    public func close() async {
        closed = true
        let connection = current
        current = nil
        await connection?.close()
    }
}
