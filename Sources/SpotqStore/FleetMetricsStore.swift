import Foundation
import PostgresClient
import SpotqCore

/// The numbers `/metrics` reports from PostgreSQL, read at scrape time.
public struct FleetMetricsStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public struct Snapshot: Sendable, Equatable {
        public var itemsByStatus: [String: Int] = [:]
        public var podsByState: [String: Int] = [:]
        public var interruptions = 0
        public var accruedUSD = 0.0
        public var usdPerHour = 0.0
        public var usdToday = 0.0
        public var deadLetters = 0
        public var downloads = 0
        public var downloadedBytes = 0.0
        public var downloadSeconds = 0.0
        /// Start to first image, over the pods of the last 24 hours.
        public var averageTimeToFirstImageSeconds: Double?
        public var lastTimeToFirstImageSeconds: Double?
        public var imagesDone = 0

        public init() {}
    }

    public func snapshot() async throws -> Snapshot {
        var snapshot = Snapshot()
        for row in try await client.query("SELECT status, count(*) FROM image_generation_queue GROUP BY status") {
            snapshot.itemsByStatus[try row.decode(String.self, at: 0)] = Int(try row.decode(Int64.self, at: 1))
        }
        for row in try await client.query("SELECT state, count(*) FROM pods WHERE state = ANY(\(PodState.live.sql)) GROUP BY state") {
            snapshot.podsByState[try row.decode(String.self, at: 0)] = Int(try row.decode(Int64.self, at: 1))
        }
        let row = try await client.query("""
            SELECT coalesce((SELECT sum(interruptions) FROM pods), 0)::bigint,
                   coalesce((SELECT sum(accrued_usd) FROM pods), 0)::float8,
                   coalesce((SELECT sum(price_usd_per_hour) FROM pods WHERE state = ANY(\(PodState.live.sql)) AND provider_status = ANY(\(FleetPod.ProviderStatus.billedForGPU.sql))), 0)::float8,
                   coalesce((SELECT usd FROM fleet_cost_days WHERE day = (now() AT TIME ZONE 'UTC')::date), 0)::float8,
                   (SELECT count(*) FROM dead_letters WHERE purged_at IS NULL),
                   (SELECT count(*) FROM pod_events WHERE kind = \(EventKind.assetReady.rawValue) AND NOT coalesce((detail ->> 'reused')::boolean, false)),
                   coalesce((SELECT sum((detail ->> 'bytes')::float8 - coalesce((detail ->> 'resumed_from')::float8, 0)) FROM pod_events WHERE kind = \(EventKind.assetReady.rawValue) AND detail ? 'bytes'), 0)::float8,
                   coalesce((SELECT sum((detail ->> 'seconds')::float8) FROM pod_events WHERE kind = \(EventKind.assetReady.rawValue) AND detail ? 'seconds'), 0)::float8,
                   (SELECT avg(extract(epoch FROM first_image_at - coalesce(started_at, requested_at)))::float8 FROM pods
                    WHERE first_image_at IS NOT NULL AND first_image_at > now() - interval '1 day'),
                   (SELECT extract(epoch FROM first_image_at - coalesce(started_at, requested_at))::float8 FROM pods
                    WHERE first_image_at IS NOT NULL ORDER BY first_image_at DESC LIMIT 1),
                   (SELECT count(*) FROM image_generation_files)
            """)[0]
        snapshot.interruptions = Int(try row.decode(Int64.self, at: 0))
        snapshot.accruedUSD = try row.decode(Double.self, at: 1)
        snapshot.usdPerHour = try row.decode(Double.self, at: 2)
        snapshot.usdToday = try row.decode(Double.self, at: 3)
        snapshot.deadLetters = Int(try row.decode(Int64.self, at: 4))
        snapshot.downloads = Int(try row.decode(Int64.self, at: 5))
        snapshot.downloadedBytes = try row.decode(Double.self, at: 6)
        snapshot.downloadSeconds = try row.decode(Double.self, at: 7)
        snapshot.averageTimeToFirstImageSeconds = try row.decode(Double?.self, at: 8)
        snapshot.lastTimeToFirstImageSeconds = try row.decode(Double?.self, at: 9)
        snapshot.imagesDone = Int(try row.decode(Int64.self, at: 10))
        return snapshot
    }
}
