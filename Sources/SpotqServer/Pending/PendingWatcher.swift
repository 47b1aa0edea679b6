import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqCore
import SpotqStore

/// Watches pending demand: wakes on `NOTIFY spotq_pending` (sent when a statement inserts
/// pending items, by SQL or by the enqueue consumer), on (re)connecting, and every
/// `rescanInterval` as a safety net, then reads the pending count and the oldest item's age.
/// Bursts of notifications collapse into one scan. The planner acts on what it reports.
public struct PendingWatcher: Service {
    public static let channel = "spotq_pending"

    public let listener: PostgresListener
    public let store: QueueStore
    public let logger: Logger
    public var rescanInterval: Duration = .seconds(30)
    /// Receives every scan's result.
    public var onDemand: @Sendable (PendingDemand) async -> Void

    public init(listener: PostgresListener, store: QueueStore, logger: Logger, onDemand: @escaping @Sendable (PendingDemand) async -> Void) {
        self.listener = listener
        self.store = store
        self.logger = logger
        self.onDemand = onDemand
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await watch()
        }
    }

    /// Watches until the task is cancelled.
    public func watch() async throws {
        // Newest-only: a scan requested while one runs is one more scan, not a backlog.
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in listener.events(channels: [Self.channel]) {
                    switch event {
                    case .listening, .notification: wake.yield()
                    case .connectionLost(let error):
                        logger.warning("pending: lost the LISTEN connection; reconnecting", metadata: ["error": "\(error)"])
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: rescanInterval)
                    wake.yield()
                }
            }
            group.addTask {
                var last: PendingDemand?
                for await _ in wakeups {
                    do {
                        let demand = try await store.pendingDemand()
                        if demand.items != last?.items {
                            logger.info("pending: \(demand.items) items waiting to be planned", metadata: [
                                "oldest_age_s": "\(demand.oldestAge(now: Date()).map { String(Int($0)) } ?? "-")",
                            ])
                        }
                        last = demand
                        await onDemand(demand)
                    } catch {
                        logger.warning("pending: could not read pending demand", metadata: ["error": "\(error)"])
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}
