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

    /// Records `event` once (a repeated `event_key` is a no-op) and applies it to its item
    /// as ``EventKind/itemEvent(final:)`` and ``ItemStatus/after(_:)`` say: `image.started`
    /// → running (and its batch's first → batch running); `image.failed` → attempts + 1 and
    /// `last_error`, then failed when the detail says `"final": true`, else queued;
    /// `image.interrupted` → interruptions + 1, queued. A done item never changes.
    /// Returns false for a repeat.
    ///
    /// - Parameter podRowID: the pod that proved it sent the event (its broker user, see
    ///   ``EventTrust``): the event is recorded against that row, and an item it names must
    ///   be in the event's batch. nil (spotq's own events): the pod the event names.
    @discardableResult
    public func record(_ event: SpotqEvent, podRowID: Int64? = nil) async throws -> Bool {
        do {
            return try await client.withTransaction { connection in
                var pod = podRowID
                if pod == nil { pod = try await Self.podRow(named: event.pod, on: connection) }
                if podRowID != nil, let item = event.itemID {
                    let owner = try await connection.query("SELECT batch_id FROM image_generation_queue WHERE id = \(item)").first?.decode(Int64?.self, at: 0)
                    guard owner == event.batchID else {
                        throw Rejected(description: "forged: item \(item) is not in batch \(event.batchID.map(String.init) ?? "none"), the sending pod's")
                    }
                }
                if event.kind == .heartbeat {
                    // Kept on the pod's row, not as a row of its own.
                    try await Self.applyHeartbeat(event, pod: pod, on: connection)
                    return true
                }
                let detail = String(decoding: try SpotqEvent.encoder.encode(event.detail), as: UTF8.self)
                let inserted = try await connection.query("""
                    INSERT INTO pod_events (pod_id, provider, provider_pod_id, batch_id, event_key, kind, state, detail, occurred_at)
                    VALUES (\(pod), \(event.pod.provider), \(event.pod.id), \(event.batchID), \(event.eventKey), \(event.kind.rawValue), \(event.state),
                            \(PostgresRawJSON(detail))::jsonb, \(event.occurredAt))
                    ON CONFLICT (event_key) DO NOTHING
                    """)
                guard inserted.affectedRows == 1 else { return false }
                try await Self.applyToPod(event, pod: pod, on: connection)
                guard let item = event.itemID, let batch = event.batchID,
                      let itemEvent = event.kind.itemEvent(final: event.detail["final"]?.boolValue ?? false)
                else { return true }
                try await Self.apply(itemEvent, item: item, batch: batch, event: event, on: connection)
                return true
            }
        } catch let error as PostgresError where QueueStore.isRequestFault(error) {
            throw Rejected(description: QueueStore.reason(error))
        }
    }

    /// The row of the pod an event names; nil when spotq does not know it (yet).
    static func podRow(named pod: SpotqEvent.Pod, on connection: PostgresConnection) async throws -> Int64? {
        try await connection.query("SELECT id FROM pods WHERE provider = \(pod.provider) AND provider_pod_id = \(pod.id)").first?.decode(Int64.self, at: 0)
    }

    /// A sign of life, and what the worker is doing (``HeartbeatReport``), its times on the
    /// recorder's clock: a report that cannot be believed (an unknown activity, times in the
    /// future) is refused whole, so the pod is not seen alive on its word either. One without
    /// a report keeps the last one.
    static func applyHeartbeat(_ event: SpotqEvent, pod: Int64?, on connection: PostgresConnection) async throws {
        let stated: HeartbeatReport?
        switch HeartbeatReport.read(event) {
        case .failure(let refusal): throw Rejected(description: refusal.description)
        case .success(let read): stated = read
        }
        guard let report = stated?.onRecorderClock(sentAt: event.occurredAt, receivedAt: Date()) else {
            try await connection.query("UPDATE pods SET last_seen_at = now() WHERE id = \(pod) AND state = ANY(\(PodState.live.sql))")
            return
        }
        try await connection.query("""
            UPDATE pods SET last_seen_at = now(), activity = \(report.activity.rawValue), activity_since = \(report.since), progress_at = \(report.progressAt),
                            activity_item_id = \(report.itemID), activity_prompt_id = \(report.promptID), activity_asset = \(report.asset),
                            activity_bytes = \(report.bytes)
            WHERE id = \(pod) AND state = ANY(\(PodState.live.sql))
            """)
    }

    /// What ``EventTrust`` needs to know of the pod whose own broker user is `brokerUser`;
    /// nil when no pod has it.
    public func podRecord(brokerUser: String) async throws -> EventTrust.PodRecord? {
        let rows = try await client.query("SELECT id, provider, provider_pod_id, batch_id, state = \(PodState.terminated) FROM pods WHERE broker_user = \(brokerUser)")
        guard let row = rows.first else { return nil }
        return EventTrust.PodRecord(
            rowID: try row.decode(Int64.self, at: 0), provider: try row.decode(String.self, at: 1), providerPodID: try row.decode(String?.self, at: 2),
            batchID: try row.decode(Int64?.self, at: 3), terminated: try row.decode(Bool.self, at: 4))
    }

    /// Moves the item (and, on its batch's first start, the batch) as `itemEvent` says.
    static func apply(_ itemEvent: ItemEvent, item: Int64, batch: Int64, event: SpotqEvent, on connection: PostgresConnection) async throws {
        let (target, sources) = (ItemStatus.target(of: itemEvent), ItemStatus.sources(of: itemEvent).sql)
        switch itemEvent {
        case .started:
            try await connection.query("""
                UPDATE image_generation_queue SET status = \(target), started_at = coalesce(started_at, \(event.occurredAt))
                WHERE id = \(item) AND batch_id = \(batch) AND status = ANY(\(sources))
                """)
            try await connection.query("""
                UPDATE batches SET status = \(BatchStatus.target(of: .imageStarted)), started_at = coalesce(started_at, \(event.occurredAt))
                WHERE id = \(batch) AND status = ANY(\(BatchStatus.sources(of: .imageStarted).sql))
                """)
        case .retried, .gaveUp:
            try await connection.query("""
                UPDATE image_generation_queue
                SET attempts = attempts + 1, last_error = \(event.detail["reason"]?.stringValue ?? "no reason given"), status = \(target)
                WHERE id = \(item) AND batch_id = \(batch) AND status = ANY(\(sources))
                """)
        case .interrupted:
            try await connection.query("""
                UPDATE image_generation_queue SET interruptions = interruptions + 1, status = \(target)
                WHERE id = \(item) AND batch_id = \(batch) AND status = ANY(\(sources))
                """)
        case .planned, .published, .stored, .deadLettered, .replayed:
            break  // not a pod's to say
        }
    }

    /// A pod's own events keep its row current: `state` events move its state as
    /// ``PodState/after(_:)`` allows (a pod cannot report itself reclaimed or terminated, and
    /// a reclaimed, GPU-failed or terminated pod's late reports change nothing), the first
    /// `image.done` sets `first_image_at`, `image.done` and `asset.ready` move its progress
    /// mark on, and every event is a sign of life.
    static func applyToPod(_ event: SpotqEvent, pod: Int64?, on connection: PostgresConnection) async throws {
        switch event.kind {
        case .state:
            guard let reported = event.state else { return }
            let move = PodEvent.reported(reported)
            let sources = PodState.sources(of: move)
            guard !sources.isEmpty else {
                try await connection.query("UPDATE pods SET last_seen_at = now() WHERE id = \(pod) AND state = ANY(\(PodState.live.sql))")
                return
            }
            let target = PodState.target(of: move)
            try await connection.query("""
                UPDATE pods SET state = CASE WHEN state = ANY(\(sources.sql)) THEN \(target) ELSE state END, last_seen_at = now(),
                                resume_attempts = CASE WHEN state = ANY(\(sources.sql)) AND \(target == .generating) THEN 0 ELSE resume_attempts END,
                                started_at = CASE WHEN state = ANY(\(sources.sql)) AND \(target == .starting) THEN coalesce(started_at, \(event.occurredAt)) ELSE started_at END
                WHERE id = \(pod) AND state = ANY(\(PodState.live.sql))
                """)
        case .imageDone, .assetReady:
            // Progress the next heartbeat will report anyway; kept now (on the recorder's clock,
            // like heartbeats' times), so a pod that moved on just before the stall bound is not
            // judged by the heartbeat before. A pod with no reported activity keeps none (the
            // columns go together).
            try await connection.query("""
                UPDATE pods SET first_image_at = CASE WHEN \(event.kind == .imageDone) THEN coalesce(first_image_at, \(event.occurredAt)) ELSE first_image_at END,
                                progress_at = CASE WHEN progress_at IS NULL THEN NULL ELSE greatest(progress_at, now()) END,
                                last_seen_at = now()
                WHERE id = \(pod)
                """)
        case .heartbeat, .assetFailed, .imageStarted, .imageFailed, .imageInterrupted:
            try await connection.query("UPDATE pods SET last_seen_at = now() WHERE id = \(pod)")
        }
    }
}
