import AMQPClient
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqCore
import SpotqStore

/// The server's planner: watches pending demand (``PendingWatcher``) and plans and
/// publishes when enough images wait or the oldest has waited long enough. At start it
/// first finishes publishing whatever an earlier run left planned.
public struct AutoPlanner: Service {
    public let settings: PlanningSettings
    public let secret: String
    public let postgres: PostgresClient
    public let listener: PostgresListener
    public let publisher: BatchPublisher
    public let logger: Logger
    public var rescanInterval: Duration = .seconds(30)
    /// Called after each look at pending demand, with whether it was due for planning; tests
    /// wait on it instead of waiting a while to see that nothing happened.
    public var onDecision: @Sendable (_ demand: PendingDemand, _ due: Bool) -> Void = { _, _ in }

    public init(settings: PlanningSettings, secret: String, postgres: PostgresClient, listener: PostgresListener, publisher: BatchPublisher, logger: Logger) {
        self.settings = settings
        self.secret = secret
        self.postgres = postgres
        self.listener = listener
        self.publisher = publisher
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await planForever()
        }
    }

    /// Runs until the task is cancelled.
    public func planForever() async throws {
        await publishLeftovers()
        var watcher = PendingWatcher(listener: listener, store: QueueStore(client: postgres), logger: logger) { demand in
            await planIfDue(demand)
        }
        watcher.rescanInterval = rescanInterval
        try await watcher.watch()
    }

    func publishLeftovers() async {
        do {
            let published = try await publisher.publishPending()
            if published.messages > 0 {
                logger.info("planner: finished publishing \(published.batches) batches left planned by an earlier run", metadata: ["messages": "\(published.messages)"])
            }
        } catch {
            logger.warning("planner: could not publish planned batches yet; retrying on the next wake-up", metadata: ["error": "\(error)"])
        }
    }

    func planIfDue(_ demand: PendingDemand) async {
        let due = settings.shouldPlan(demand, now: Date().timeIntervalSince1970)
        defer { onDecision(demand, due) }
        guard due else { return }
        do {
            let started = ContinuousClock.now
            let (batches, plan, _) = try await PlannerStore(client: postgres).apply(policy: settings.policy, gpu: settings.gpu, secret: secret)
            let images = batches.reduce(0) { $0 + $1.planned.generationOrder.count }
            logger.info("planner: planned \(batches.count) batches", metadata: [
                "images": "\(images)", "unplannable": "\(plan.unplannable.count)",
                "usd": "\(String(format: "%.2f", batches.reduce(0) { $0 + $1.planned.estimate.usd }))",
                "took": "\(ContinuousClock.now - started)",
            ])
            for item in plan.unplannable.prefix(5) { logger.warning("planner: cannot plan an item: \(item.reason)") }
        } catch {
            logger.error("planner: planning failed; pending items stay pending", metadata: ["error": "\(error)"])
        }
        // Also after a failed plan: batches committed earlier may still wait to be published.
        await publishLeftovers()
    }
}
