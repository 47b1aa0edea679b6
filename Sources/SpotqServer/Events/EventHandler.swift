import AMQPClient
import Foundation
import Logging
import SpotqBroker
import SpotqCore
import SpotqStore

/// The event recorder's handler on the consumer shell: one event at a time into `pod_events`,
/// each judged first by who the broker says sent it (``EventTrust``): a forged event is
/// dead-lettered with the reason and changes nothing.
public struct EventHandler: QueueHandler {
    let store: EventStore
    let readiness: PostgresReadiness
    /// spotq's own broker users, whose events are recorded as they say.
    let trustedUsers: Set<String>
    let logger: Logger

    public func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        var decisions: [DeliveryDecision] = []
        for delivery in deliveries { decisions.append(await decide(delivery)) }
        return decisions
    }

    func decide(_ delivery: AMQPDelivery) async -> DeliveryDecision {
        let decision: DeliveryDecision
        switch EventDecisions.read(delivery.body) {
        case .failure(let refusal):
            decision = .deadLetter(reason: refusal.reason)
        case .success(let event):
            do {
                let publisher = EventTrust.sender(
                    userID: delivery.properties.userID, publishedBy: delivery.properties.headers?[BrokerNames.publishedByHeader]?.stringValue,
                    trustedUsers: trustedUsers)
                // spotq's own events need no lookup; anyone else's must be a pod's.
                var pod: EventTrust.PodRecord?
                if let publisher, !trustedUsers.contains(publisher) { pod = try await store.podRecord(brokerUser: publisher) }
                switch EventTrust.judge(event, publisher: publisher, trustedUsers: trustedUsers, pod: pod) {
                case .refused(let reason):
                    decision = .deadLetter(reason: reason)
                case .trusted:
                    _ = try await store.record(event)
                    decision = .ack
                case .fromPod(let rowID):
                    _ = try await store.record(event, podRowID: rowID)
                    decision = .ack
                }
            } catch {
                decision = EventDecisions.decision(afterRecordingFailed: error)
            }
        }
        if case .deadLetter(let reason) = decision {
            logger.warning("events: refused an event; dead-lettered", metadata: [
                "reason": "\(reason)", "routing_key": "\(delivery.routingKey)", "user_id": "\(delivery.properties.userID ?? "-")",
            ])
        }
        return decision
    }

    public func ready() async throws {
        try await readiness.wait()
    }
}

/// The event recorder's decisions, without I/O.
public enum EventDecisions {
    public struct Refusal: Error, Equatable {
        public var reason: String
    }

    /// The event a body holds, or why it is none (not JSON, not a version-1 spotq event).
    public static func read(_ body: [UInt8]) -> Result<SpotqEvent, Refusal> {
        do {
            let event = try SpotqEvent.decoder.decode(SpotqEvent.self, from: Data(body))
            guard event.version == 1 else { throw EventStore.Rejected(description: "unknown event version \(event.version)") }
            return .success(event)
        } catch {
            return .failure(Refusal(reason: "not a version-1 spotq event: \(error)"))
        }
    }

    /// An event the database refused (unknown batch, bad fields) is dead-lettered; any other
    /// failure (PostgreSQL unreachable) is not the event's fault: it is held.
    public static func decision(afterRecordingFailed error: any Error) -> DeliveryDecision {
        if let rejected = error as? EventStore.Rejected { return .deadLetter(reason: rejected.description) }
        return .hold(reason: "cannot write to PostgreSQL: \(error)")
    }
}
