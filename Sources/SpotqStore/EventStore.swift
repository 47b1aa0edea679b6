import Foundation
import PostgresClient
import SpotqCore

/// Records pod, asset and image events in `pod_events` and keeps items' status current.
public struct EventStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// An event that can never be recorded (the message's fault).
    public struct Rejected: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Records `event` once (a repeated `event_key` is a no-op) and applies it to its item:
    /// `image.started` → running; `image.failed` → attempts + 1 and `last_error`, and
    /// `failed` when the detail says `"final": true`, else back to queued;
    /// `image.interrupted` → interruptions + 1, back to queued. A `done` item never changes.
    /// Returns false for a repeat.
    @discardableResult
    public func record(_ event: SpotqEvent) async throws -> Bool {
        if event.kind == SpotqEvent.heartbeatKind {
            // A sign of life only: kept on the pod's row, not as a row of its own.
            try await client.query("UPDATE pods SET last_seen_at = now() WHERE provider = \(event.pod.provider) AND provider_pod_id = \(event.pod.id) AND state <> 'terminated'")
            return true
        }
        do {
            return try await client.withTransaction { connection in
                let detail = String(decoding: try SpotqEvent.encoder.encode(event.detail), as: UTF8.self)
                let inserted = try await connection.query("""
                    INSERT INTO pod_events (pod_id, provider, provider_pod_id, batch_id, event_key, kind, state, detail, occurred_at)
                    VALUES ((SELECT id FROM pods WHERE provider = \(event.pod.provider) AND provider_pod_id = \(event.pod.id)),
                            \(event.pod.provider), \(event.pod.id), \(event.batchID), \(event.eventKey), \(event.kind), \(event.state),
                            \(PostgresRawJSON(detail))::jsonb, \(event.occurredAt))
                    ON CONFLICT (event_key) DO NOTHING
                    """)
                guard inserted.affectedRows == 1 else { return false }
                try await Self.applyToPod(event, on: connection)
                guard let item = event.itemID, let batch = event.batchID else { return true }
                let reason = event.detail["reason"]?.stringValue
                switch event.kind {
                case "image.started":
                    try await connection.query("""
                        UPDATE image_generation_queue SET status = 'running', started_at = coalesce(started_at, \(event.occurredAt))
                        WHERE id = \(item) AND batch_id = \(batch) AND status IN ('planned', 'queued', 'failed')
                        """)
                case "image.failed":
                    let final = event.detail["final"]?.boolValue ?? false
                    try await connection.query("""
                        UPDATE image_generation_queue
                        SET attempts = attempts + 1, last_error = \(reason ?? "no reason given"),
                            status = \(final ? "failed" : "queued")
                        WHERE id = \(item) AND batch_id = \(batch) AND status <> 'done'
                        """)
                case "image.interrupted":
                    try await connection.query("""
                        UPDATE image_generation_queue SET interruptions = interruptions + 1, status = 'queued'
                        WHERE id = \(item) AND batch_id = \(batch) AND status IN ('queued', 'running')
                        """)
                default:
                    break
                }
                return true
            }
        } catch let error as PostgresError where QueueStore.isRequestFault(error) {
            throw Rejected(description: QueueStore.reason(error))
        }
    }

    /// A pod's own events keep its row current: `state` events set its state (a pod spotq
    /// terminated stays terminated), the first `image.done` sets `first_image_at`, and every
    /// event is a sign of life.
    static func applyToPod(_ event: SpotqEvent, on connection: PostgresConnection) async throws {
        switch event.kind {
        case "state":
            try await connection.query("""
                UPDATE pods SET state = \(event.state), last_seen_at = now(),
                                resume_attempts = CASE WHEN \(event.state) = 'generating' THEN 0 ELSE resume_attempts END,
                                started_at = CASE WHEN \(event.state) = 'starting' THEN coalesce(started_at, \(event.occurredAt)) ELSE started_at END
                WHERE provider = \(event.pod.provider) AND provider_pod_id = \(event.pod.id) AND state <> 'terminated'
                """)
        case "image.done":
            try await connection.query("""
                UPDATE pods SET first_image_at = coalesce(first_image_at, \(event.occurredAt)), last_seen_at = now()
                WHERE provider = \(event.pod.provider) AND provider_pod_id = \(event.pod.id)
                """)
        default:
            try await connection.query("UPDATE pods SET last_seen_at = now() WHERE provider = \(event.pod.provider) AND provider_pod_id = \(event.pod.id)")
        }
    }
}
