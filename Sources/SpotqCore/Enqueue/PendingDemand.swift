import Foundation

/// Pending work: what the planner waits for.
public struct PendingDemand: Sendable, Equatable {
    public var items: Int
    public var oldestCreatedAt: Date?

    public init(items: Int, oldestCreatedAt: Date?) {
        self.items = items
        self.oldestCreatedAt = oldestCreatedAt
    }

    /// Age of the oldest pending item at `now`, or nil when nothing is pending.
    public func oldestAge(now: Date) -> TimeInterval? {
        oldestCreatedAt.map { max(0, now.timeIntervalSince($0)) }
    }
}
