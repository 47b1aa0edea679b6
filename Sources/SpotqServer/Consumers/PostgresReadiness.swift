import Logging
import PostgresClient
import SpotqCore
import SpotqStore

/// The `ready()` of handlers that write to PostgreSQL: returns once it answers, so a consumer
/// that handed its held messages back consumes again only when they can be written.
struct PostgresReadiness: Sendable {
    let store: QueueStore
    let backoff: RetryBackoff
    /// Prefix of the log lines ("enqueue", "events", …).
    let name: String
    let logger: Logger

    func wait() async throws {
        var failures = 0
        var lastLog = ContinuousClock.now - .seconds(3600)
        while true {
            do {
                try await store.ping()
                if failures > 0 { logger.info("\(name): PostgreSQL is back; consuming again") }
                return
            } catch let error as PostgresError where !QueueStore.isRequestFault(error) {
                failures += 1
                if ContinuousClock.now - lastLog > .seconds(30) {
                    logger.warning("\(name): waiting for PostgreSQL; not consuming meanwhile", metadata: ["error": "\(error)"])
                    lastLog = .now
                }
                try await Task.sleep(for: backoff.delay(afterFailures: failures))
            }
        }
    }
}
