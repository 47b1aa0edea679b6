import Foundation
import PostgresClient
import SpotqCore

/// What operators look at: items, batches and pods, as `spotq status|batches|pods` show them.
public struct FleetStatusStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public struct Summary: Sendable, Codable, Equatable {
        public var itemsByStatus: [String: Int]
        public var batchesByStatus: [String: Int]
        public var podsByState: [String: Int]
        public var usdPerHourNow: Double
        public var usdToday: Double
        public var deadLetters: Int
        public var alertsToday: Int

        enum CodingKeys: String, CodingKey {
            case itemsByStatus = "items_by_status", batchesByStatus = "batches_by_status", podsByState = "pods_by_state"
            case usdPerHourNow = "usd_per_hour_now", usdToday = "usd_today", deadLetters = "dead_letters", alertsToday = "alerts_today"
        }
    }

    func counts(_ query: PostgresQuery) async throws -> [String: Int] {
        var result: [String: Int] = [:]
        for row in try await client.query(query) { result[try row.decode(String.self, at: 0)] = Int(try row.decode(Int64.self, at: 1)) }
        return result
    }

    public func summary() async throws -> Summary {
        let items = try await counts("SELECT status, count(*) FROM image_generation_queue GROUP BY status")
        let batches = try await counts("SELECT status, count(*) FROM batches GROUP BY status")
        let pods = try await counts("SELECT state, count(*) FROM pods WHERE state = ANY(\(PodState.live.sql)) OR terminated_at > now() - interval '1 day' GROUP BY state")
        let money = try await client.query("""
            SELECT coalesce((SELECT sum(price_usd_per_hour) FROM pods WHERE state = ANY(\(PodState.live.sql)) AND provider_status = ANY(\(FleetPod.ProviderStatus.billedForGPU.sql))), 0)::float8,
                   coalesce((SELECT usd FROM fleet_cost_days WHERE day = (now() AT TIME ZONE 'UTC')::date), 0)::float8,
                   (SELECT count(*) FROM dead_letters WHERE purged_at IS NULL),
                   (SELECT count(*) FROM fleet_alerts WHERE raised_at > now() - interval '1 day')
            """)
        return Summary(
            itemsByStatus: items, batchesByStatus: batches, podsByState: pods, usdPerHourNow: try money[0].decode(Double.self, at: 0),
            usdToday: try money[0].decode(Double.self, at: 1), deadLetters: Int(try money[0].decode(Int64.self, at: 2)),
            alertsToday: Int(try money[0].decode(Int64.self, at: 3)))
    }

    public struct BatchRow: Sendable, Codable, Equatable {
        public var id: Int64
        public var status: String
        public var items: Int
        public var done: Int
        public var failed: Int
        public var remaining: Int
        public var livePods: Int
        public var payloadBytes: Int64
        public var estimatedUSD: Double?
        public var accruedUSD: Double
        public var createdAt: Date

        enum CodingKeys: String, CodingKey {
            case id, status, items, done, failed, remaining, livePods = "live_pods", payloadBytes = "payload_bytes"
            case estimatedUSD = "estimated_usd", accruedUSD = "accrued_usd", createdAt = "created_at"
        }
    }

    /// Batches, newest first; finished ones only with `includeFinished`.
    public func batches(includeFinished: Bool) async throws -> [BatchRow] {
        let rows = try await client.query("""
            SELECT b.id, b.status, b.item_count,
                   count(q.id) FILTER (WHERE q.status = \(ItemStatus.done)), count(q.id) FILTER (WHERE q.status = \(ItemStatus.failed)),
                   count(q.id) FILTER (WHERE q.status = ANY(\(ItemStatus.unfinished.sql))),
                   (SELECT count(*) FROM pods p WHERE p.batch_id = b.id AND p.state = ANY(\(PodState.live.sql))),
                   b.payload_bytes, b.estimated_usd::float8,
                   coalesce((SELECT sum(accrued_usd) FROM pods p WHERE p.batch_id = b.id), 0)::float8, b.created_at
            FROM batches b LEFT JOIN image_generation_queue q ON q.batch_id = b.id
            WHERE \(includeFinished) OR b.status = ANY(\(BatchStatus.unfinished.sql))
            GROUP BY b.id ORDER BY b.id DESC
            """)
        return try rows.map { row in
            BatchRow(
                id: try row.decode(Int64.self, at: 0), status: try row.decode(String.self, at: 1), items: Int(try row.decode(Int32.self, at: 2)),
                done: Int(try row.decode(Int64.self, at: 3)), failed: Int(try row.decode(Int64.self, at: 4)), remaining: Int(try row.decode(Int64.self, at: 5)),
                livePods: Int(try row.decode(Int64.self, at: 6)), payloadBytes: try row.decode(Int64.self, at: 7), estimatedUSD: try row.decode(Double?.self, at: 8),
                accruedUSD: try row.decode(Double.self, at: 9), createdAt: try row.decode(Date.self, at: 10))
        }
    }

    public struct PodRow: Sendable, Codable, Equatable {
        public var id: Int64
        public var provider: String
        public var providerPodID: String?
        public var batchID: Int64?
        public var spot: Bool
        public var state: String
        public var providerStatus: String?
        public var usdPerHour: Double
        public var accruedUSD: Double
        public var interruptions: Int
        public var lastSeenAt: Date?
        public var lastError: String?
        /// What its worker's last heartbeat said it was doing, since when, and its progress
        /// mark (migration 0019); nil before a heartbeat said.
        public var activity: String?
        public var activitySince: Date?
        public var progressAt: Date?
        public var activityItemID: Int64?
        public var activityPromptID: String?
        public var activityAsset: String?
        public var activityBytes: Int64?

        enum CodingKeys: String, CodingKey {
            case id, provider, providerPodID = "provider_pod_id", batchID = "batch_id", spot, state, providerStatus = "provider_status"
            case usdPerHour = "usd_per_hour", accruedUSD = "accrued_usd", interruptions, lastSeenAt = "last_seen_at", lastError = "last_error"
            case activity, activitySince = "activity_since", progressAt = "progress_at", activityItemID = "activity_item_id"
            case activityPromptID = "activity_prompt_id", activityAsset = "activity_asset", activityBytes = "activity_bytes"
        }

        /// The activity in a few words, e.g. "generating item 12", "downloading base.safetensors
        /// (1.2 GB)"; nil when none was reported.
        public var doing: String? {
            guard let activity else { return nil }
            var words = [activity.replacingOccurrences(of: "_", with: " ")]
            if let item = activityItemID { words.append("item \(item)") }
            if let asset = activityAsset { words.append(asset) }
            if let bytes = activityBytes { words.append("(\(Self.size(bytes)))") }
            return words.joined(separator: " ")
        }

        static func size(_ bytes: Int64) -> String {
            let value = Double(bytes)
            if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
            if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
            return "\(bytes) B"
        }
    }

    /// Pods, newest first; terminated ones only with `includeTerminated`.
    public func pods(includeTerminated: Bool) async throws -> [PodRow] {
        let rows = try await client.query(PostgresQuery(sql: """
            SELECT id, provider, provider_pod_id, batch_id, interruptible, state, provider_status, coalesce(price_usd_per_hour, 0)::float8,
                   accrued_usd::float8, interruptions, last_seen_at, last_error,
                   activity, activity_since, progress_at, activity_item_id, activity_prompt_id, activity_asset, activity_bytes
            FROM pods WHERE ($1 OR state = ANY($2)) AND provider_pod_id IS NOT NULL ORDER BY id DESC
            """, parameters: [includeTerminated, PodState.live.sql]))
        return try rows.map { row in
            PodRow(
                id: try row.decode(Int64.self, at: 0), provider: try row.decode(String.self, at: 1), providerPodID: try row.decode(String?.self, at: 2),
                batchID: try row.decode(Int64?.self, at: 3), spot: try row.decode(Bool.self, at: 4), state: try row.decode(String.self, at: 5),
                providerStatus: try row.decode(String?.self, at: 6), usdPerHour: try row.decode(Double.self, at: 7), accruedUSD: try row.decode(Double.self, at: 8),
                interruptions: Int(try row.decode(Int32.self, at: 9)), lastSeenAt: try row.decode(Date?.self, at: 10), lastError: try row.decode(String?.self, at: 11),
                activity: try row.decode(String?.self, at: 12), activitySince: try row.decode(Date?.self, at: 13), progressAt: try row.decode(Date?.self, at: 14),
                activityItemID: try row.decode(Int64?.self, at: 15), activityPromptID: try row.decode(String?.self, at: 16),
                activityAsset: try row.decode(String?.self, at: 17), activityBytes: try row.decode(Int64?.self, at: 18))
        }
    }
}
