import AMQPClient
import Logging
import SpotqCore

/// Consumes one queue until the task is cancelled, opening a fresh channel (with backoff)
/// whenever the broker closes it or the connection drops. The event and dead-letter
/// recorders are each this loop around their own handler.
enum ConsumerLoop {
    static func run(
        amqp: AMQPClient, queue: String, prefetch: UInt16, backoff: RetryBackoff, logger: Logger, name: String,
        handle: (AMQPDelivery, AMQPChannel) async throws -> Void
    ) async throws {
        var failures = 0
        while !Task.isCancelled {
            do {
                let channel = try await amqp.connection().openChannel()
                do {
                    try await channel.qos(prefetchCount: prefetch)
                    let consumer = try await channel.consume(queue: queue)
                    failures = 0
                    for try await delivery in consumer { try await handle(delivery, channel) }
                    try? await channel.close()
                } catch {
                    try? await channel.close()
                    throw error
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("\(name): consumer stopped; starting again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff.delay(afterFailures: failures))
            }
        }
    }
}
