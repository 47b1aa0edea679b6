import Foundation
import Logging
import PostgresClient
import SpotqCore

/// The `pods` table as the provisioner keeps it: rentals, provider status, recovery,
/// termination and accrued cost; and `fleet_alerts`.
public struct PodStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One pod row, as the provisioner needs it.
    public struct PodRow: Sendable, Equatable {
        public var id: Int64
        public var batchID: Int64?
        public var provider: String
        public var providerPodID: String?
        public var name: String?
        public var state: PodState
        public var providerStatus: String?
        public var interruptible: Bool
        public var bidUSDPerGPUHour: Double?
        public var priceUSDPerHour: Double
        public var gpuCount: Int
        public var volumeGB: Int
        public var storageUSDPerGBMonth: Double
        public var requestedAt: Date
        public var accruedUntil: Date?
        public var accruedUSD: Double
        public var resumeAttempts: Int
        public var stopRequested: Bool
        /// Last event from the pod's worker (or its rental).
        public var lastSeenAt: Date?
        /// The pod's own broker user; nil when pods share one login.
        public var brokerUser: String?
        /// What its worker's last heartbeat said (``HeartbeatReport``); nil before one did.
        public var activity: WorkerActivity?
        public var activitySince: Date?
        public var progressAt: Date?

        public var fleetPod: FleetPod {
            FleetPod(
                id: id, batchID: batchID, state: state, providerStatus: providerStatus.flatMap(FleetPod.ProviderStatus.init(rawValue:)),
                interruptible: interruptible, requestedAt: requestedAt, priceUSDPerHour: priceUSDPerHour,
                resumeAttempts: resumeAttempts, stopRequested: stopRequested, lastSeenAt: lastSeenAt,
                activity: activity, activitySince: activitySince, progressAt: progressAt)
        }
    }

    static let columns = """
        id, batch_id, provider, provider_pod_id, name, state, provider_status, interruptible, bid_usd_per_gpu_hour::float8,
        coalesce(price_usd_per_hour, 0)::float8, gpu_count, coalesce(volume_gb, 0), coalesce(storage_usd_per_gb_month, 0)::float8,
        requested_at, accrued_until, accrued_usd::float8, resume_attempts, stop_requested_at IS NOT NULL, last_seen_at, broker_user,
        activity, activity_since, progress_at
        """

    static func row(_ row: PostgresRow) throws -> PodRow {
        PodRow(
            id: try row.decode(Int64.self, at: 0), batchID: try row.decode(Int64?.self, at: 1), provider: try row.decode(String.self, at: 2),
            providerPodID: try row.decode(String?.self, at: 3), name: try row.decode(String?.self, at: 4), state: try row.decode(PodState.self, at: 5),
            providerStatus: try row.decode(String?.self, at: 6), interruptible: try row.decode(Bool.self, at: 7),
            bidUSDPerGPUHour: try row.decode(Double?.self, at: 8), priceUSDPerHour: try row.decode(Double.self, at: 9),
            gpuCount: Int(try row.decode(Int32.self, at: 10)), volumeGB: Int(try row.decode(Int32.self, at: 11)),
            storageUSDPerGBMonth: try row.decode(Double.self, at: 12), requestedAt: try row.decode(Date.self, at: 13),
            accruedUntil: try row.decode(Date?.self, at: 14), accruedUSD: try row.decode(Double.self, at: 15),
            resumeAttempts: Int(try row.decode(Int32.self, at: 16)), stopRequested: try row.decode(Bool.self, at: 17),
            lastSeenAt: try row.decode(Date?.self, at: 18), brokerUser: try row.decode(String?.self, at: 19),
            activity: try row.decode(String?.self, at: 20).flatMap(WorkerActivity.init(rawValue:)), activitySince: try row.decode(Date?.self, at: 21),
            progressAt: try row.decode(Date?.self, at: 22))
    }

    /// Pods not yet terminated.
    public func live() async throws -> [PodRow] {
        try await client.query(PostgresQuery(sql: "SELECT \(Self.columns) FROM pods WHERE state = ANY($1) ORDER BY id", parameters: [PodState.live.sql])).map(Self.row)
    }

    public func pod(_ id: Int64) async throws -> PodRow? {
        try await client.query(PostgresQuery(sql: "SELECT \(Self.columns) FROM pods WHERE id = $1", parameters: [id])).first.map(Self.row)
    }

    /// A request for a pod, written before the provider is asked, so a crash in between
    /// leaves a trace the next run reconciles.
    public struct Request: Sendable {
        public var batchID: Int64
        public var provider: String
        public var name: String
        public var gpuType: String
        public var gpuCount: Int
        public var interruptible: Bool
        public var bidUSDPerGPUHour: Double?
        public var volumeGB: Int
        public var containerDiskGB: Int
        public var storageUSDPerGBMonth: Double

        public init(batchID: Int64, provider: String, name: String, gpuType: String, gpuCount: Int, interruptible: Bool, bidUSDPerGPUHour: Double?, volumeGB: Int, containerDiskGB: Int, storageUSDPerGBMonth: Double) {
            self.batchID = batchID
            self.provider = provider
            self.name = name
            self.gpuType = gpuType
            self.gpuCount = gpuCount
            self.interruptible = interruptible
            self.bidUSDPerGPUHour = bidUSDPerGPUHour
            self.volumeGB = volumeGB
            self.containerDiskGB = containerDiskGB
            self.storageUSDPerGBMonth = storageUSDPerGBMonth
        }
    }

    /// Writes the request; with `brokerUserVhost`, the pod's own broker user is named from
    /// its new id (``PodBrokerGrant/userName(podRowID:vhost:)``) in the same transaction.
    /// - Parameter uploadTokenHash: the hash of the pod's own upload token.
    public func insertRequested(_ request: Request, brokerUserVhost: String? = nil, uploadTokenHash: String? = nil) async throws -> Int64 {
        try await client.withTransaction { connection in
            let id = try await Self.insertRequested(request, uploadTokenHash: uploadTokenHash, on: connection)
            if let vhost = brokerUserVhost {
                try await connection.query("UPDATE pods SET broker_user = \(PodBrokerGrant.userName(podRowID: id, vhost: vhost)) WHERE id = \(id)")
            }
            return id
        }
    }

    static func insertRequested(_ request: Request, uploadTokenHash: String?, on connection: PostgresConnection) async throws -> Int64 {
        let rows = try await connection.query("""
            INSERT INTO pods (batch_id, provider, name, gpu_type, gpu_count, interruptible, bid_usd_per_gpu_hour, volume_gb,
                              container_disk_gb, storage_usd_per_gb_month, state, accrued_until, upload_token_hash)
            VALUES (\(request.batchID), \(request.provider), \(request.name), \(request.gpuType), \(request.gpuCount), \(request.interruptible),
                    \(request.bidUSDPerGPUHour), \(request.volumeGB), \(request.containerDiskGB), \(request.storageUSDPerGBMonth), \(PodState.requested), now(),
                    \(uploadTokenHash))
            RETURNING id
            """)
        return try rows[0].decode(Int64.self, at: 0)
    }

    /// Removes the record of a rental the provider never accepted (no pod, no cost).
    /// The keys that signed batch `batch`'s work (empty before it is published).
    public func workPublicKeys(batch: Int64) async throws -> [String] {
        // Base64 has no commas.
        guard let row = try await client.query("SELECT array_to_string(work_public_keys, ',') FROM batches WHERE id = \(batch)").first else { return [] }
        return try row.decode(String.self, at: 0).split(separator: ",").map(String.init)
    }

    public func discardUnrented(_ id: Int64) async throws {
        try await client.query("DELETE FROM pods WHERE id = \(id) AND provider_pod_id IS NULL")
    }

    /// The provider accepted the rental.
    public func rented(_ id: Int64, providerPodID: String, interruptible: Bool, bid: Double?, priceUSDPerHour: Double) async throws {
        try await client.query("""
            UPDATE pods SET provider_pod_id = \(providerPodID), interruptible = \(interruptible), bid_usd_per_gpu_hour = \(bid),
                            price_usd_per_hour = \(priceUSDPerHour), provider_status = \(FleetPod.ProviderStatus.starting), last_seen_at = now()
            WHERE id = \(id)
            """)
    }

    /// Ends a pod's record (after the provider terminated it, or when it was never rented).
    public func terminated(_ id: Int64, reason: String) async throws {
        try await accrue(now: Date(), only: id)
        try await client.query("""
            UPDATE pods SET state = \(PodState.target(of: .terminated)), terminated_at = coalesce(terminated_at, now()), provider_status = \(FleetPod.ProviderStatus.gone),
                            last_error = \(reason)
            WHERE id = \(id) AND state = ANY(\(PodState.sources(of: .terminated).sql))
            """)
    }

    /// Applies what the provider reports. An exit spotq did not ask for is a reclaim:
    /// state `reclaimed`, interruptions + 1. Returns true when this call recorded a reclaim.
    @discardableResult
    public func providerStatus(_ id: Int64, _ status: FleetPod.ProviderStatus) async throws -> Bool {
        let exited = FleetPod.ProviderStatus.exited
        let rows = try await client.query("""
            UPDATE pods SET
                interruptions = interruptions + CASE WHEN \(status == exited) AND coalesce(provider_status, '') <> \(exited)
                                                      AND stop_requested_at IS NULL THEN 1 ELSE 0 END,
                state = CASE WHEN \(status == exited) AND coalesce(provider_status, '') <> \(exited) AND stop_requested_at IS NULL
                                  AND state = ANY(\(PodState.sources(of: .reclaimed).sql))
                             THEN \(PodState.target(of: .reclaimed)) ELSE state END,
                started_at = CASE WHEN \(status == .running) THEN coalesce(started_at, now()) ELSE started_at END,
                provider_status = \(status)
            WHERE id = \(id) AND state = ANY(\(PodState.live.sql))
            RETURNING state = \(PodState.reclaimed) AND interruptions > 0 AND \(status == exited)
            """)
        return try rows.first?.decode(Bool.self, at: 0) ?? false
    }

    /// A reclaimed pod is being resumed (with a new bid, for spot). What its old worker was
    /// doing is forgotten: the new one has said nothing yet, and is not judged stalled on the
    /// old one's progress.
    public func resuming(_ id: Int64, bid: Double?) async throws {
        try await client.query("""
            UPDATE pods SET resume_attempts = resume_attempts + 1, provider_status = \(FleetPod.ProviderStatus.starting), last_seen_at = now(),
                            activity = NULL, activity_since = NULL, progress_at = NULL, activity_item_id = NULL, activity_prompt_id = NULL,
                            activity_asset = NULL, activity_bytes = NULL,
                            state = CASE WHEN state = ANY(\(PodState.sources(of: .resumed).sql)) THEN \(PodState.target(of: .resumed)) ELSE state END,
                            bid_usd_per_gpu_hour = coalesce(\(bid), bid_usd_per_gpu_hour)
            WHERE id = \(id)
            """)
    }

    public func stopRequested(_ id: Int64) async throws {
        try await client.query("UPDATE pods SET stop_requested_at = now() WHERE id = \(id)")
    }

    public func failed(_ id: Int64, error: String) async throws {
        try await client.query("UPDATE pods SET last_error = \(error) WHERE id = \(id)")
    }

    /// Accrues every live pod's cost up to `now` (``PodCost``): GPU price while the
    /// provider reports it starting or running, volume storage until it is terminated.
    public func accrue(now: Date, only id: Int64? = nil) async throws {
        let pods = if let id { try await pod(id).map { [$0] } ?? [] } else { try await live() }
        for pod in pods {
            let since = pod.accruedUntil ?? pod.requestedAt
            let hours = now.timeIntervalSince(since) / 3600
            guard hours > 0 else { continue }
            let running = pod.providerStatus.flatMap(FleetPod.ProviderStatus.init(rawValue:))?.isBilledForGPU ?? false
            let usd = PodCost.accrued(
                hours: hours, running: running, priceUSDPerHour: pod.priceUSDPerHour, volumeGB: Double(pod.volumeGB),
                storageUSDPerGBMonth: pod.storageUSDPerGBMonth)
            try await client.withTransaction { connection in
                let updated = try await connection.query("UPDATE pods SET accrued_usd = accrued_usd + \(usd), accrued_until = \(now) WHERE id = \(pod.id) AND state = ANY(\(PodState.live.sql))")
                guard updated.affectedRows == 1 else { return }
                try await connection.query("""
                    INSERT INTO fleet_cost_days (day, usd) VALUES ((\(now) AT TIME ZONE 'UTC')::date, \(usd))
                    ON CONFLICT (day) DO UPDATE SET usd = fleet_cost_days.usd + EXCLUDED.usd
                    """)
            }
        }
    }

    public func alert(kind: String, message: String, pod: Int64? = nil) async throws {
        try await client.query("INSERT INTO fleet_alerts (kind, message, pod_id) VALUES (\(kind), \(message), \(pod))")
    }
}

extension PodStore {
    /// What the fleet's past says: reclaims per pod-hour, and images per hour by GPU type
    /// (only for types with at least an hour of running pods).
    public struct History: Sendable, Equatable {
        public var interruptionsPerHour: Double
        public var podHours: Double
        public var imagesPerHourByGPU: [String: Double]

        public init(interruptionsPerHour: Double, podHours: Double, imagesPerHourByGPU: [String: Double]) {
            self.interruptionsPerHour = interruptionsPerHour
            self.podHours = podHours
            self.imagesPerHourByGPU = imagesPerHourByGPU
        }
    }

    public func history() async throws -> History {
        let rows = try await client.query("""
            SELECT p.gpu_type,
                   sum(extract(epoch FROM (coalesce(p.terminated_at, now()) - coalesce(p.started_at, p.requested_at))) / 3600)::float8,
                   sum(p.interruptions)::float8,
                   (SELECT count(*) FROM pod_events e JOIN pods q ON q.id = e.pod_id WHERE e.kind = \(EventKind.imageDone.rawValue) AND q.gpu_type = p.gpu_type)::float8
            FROM pods p WHERE p.provider_pod_id IS NOT NULL
            GROUP BY p.gpu_type
            """)
        var hours = 0.0, interruptions = 0.0
        var rates: [String: Double] = [:]
        for row in rows {
            let type = try row.decode(String.self, at: 0)
            let podHours = try row.decode(Double?.self, at: 1) ?? 0
            hours += podHours
            interruptions += try row.decode(Double?.self, at: 2) ?? 0
            let images = try row.decode(Double?.self, at: 3) ?? 0
            if podHours >= 1, images > 0 { rates[type] = images / podHours }
        }
        return History(interruptionsPerHour: hours > 0 ? interruptions / hours : 0, podHours: hours, imagesPerHourByGPU: rates)
    }
}
