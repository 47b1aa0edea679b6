import DedicatedThread
import Foundation
import Logging

/// A notification sent with `NOTIFY channel, 'payload'` or `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    public let channel: String
    public let payload: String
    public let senderPID: Int
}

/// What a listener reports.
public enum PostgresListenerEvent: Sendable {
    /// LISTEN is in effect (at start and after every reconnect). Notifications sent
    /// while the connection was down are lost, so a consumer should rescan on each one.
    case listening
    case notification(PostgresNotification)
    /// The connection dropped; the listener keeps retrying until the stream ends.
    case connectionLost(PostgresError)
}

/// LISTEN/NOTIFY as an async stream, on a connection and thread of its own.
public struct PostgresListener: Sendable {
    public let configuration: PostgresConfiguration
    public let logger: Logger
    /// How long to wait before reconnecting after a failure (doubles up to 30 s).
    public var initialRetryDelay: Duration = .milliseconds(200)

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Listens on `channels` until the stream is dropped or its task cancelled.
    public func events(channels: [String]) -> AsyncStream<PostgresListenerEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: PostgresListenerEvent.self, bufferingPolicy: .bufferingNewest(10_000))
        let stop = CancellationFlag()
        let thread = DedicatedThread(name: "spotq-postgres-listen")
        let configuration = self.configuration
        let logger = self.logger
        let initialRetryDelay = self.initialRetryDelay
        continuation.onTermination = { _ in
            stop.cancel()
            thread.stop()
        }
        thread.submit {
            var retryDelay = initialRetryDelay
            while !stop.isCancelled {
                do {
                    let session = try LibPQSession.connect(configuration)
                    defer { session.close() }
                    let listen = channels.map { "LISTEN \(PostgresQuery.quoteIdentifier($0))" }.joined(separator: "; ")
                    _ = try session.runScript(listen, deadline: .now + configuration.statementTimeout, isCancelled: { stop.isCancelled })
                    continuation.yield(.listening)
                    retryDelay = initialRetryDelay
                    while !stop.isCancelled {
                        for notification in try session.awaitNotifications(milliseconds: 200) {
                            continuation.yield(.notification(notification))
                        }
                    }
                } catch let error as PostgresError {
                    guard !stop.isCancelled else { break }
                    logger.warning("PostgreSQL listener lost its connection; retrying",
                                   metadata: ["error": "\(error)", "retry.in": "\(retryDelay)"])
                    continuation.yield(.connectionLost(error))
                } catch {
                    break
                }
                sleepUnlessStopped(retryDelay, stop: stop)
                retryDelay = min(retryDelay * 2, .seconds(30))
            }
            continuation.finish()
        }
        return stream
    }
}

private func sleepUnlessStopped(_ delay: Duration, stop: CancellationFlag) {
    let end = ContinuousClock.now + delay
    while !stop.isCancelled && ContinuousClock.now < end {
        Thread.sleep(forTimeInterval: 0.05)
    }
}
