import Foundation
import PostgresClient
import SpotqCore

/// Where the money went: per pod, per batch, per image, with interruptions and setup time.
public struct CostStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public struct PodCostRow: Sendable, Codable, Equatable {
        public var pod: Int64
        public var providerPodID: String?
        public var batch: Int64?
        public var spot: Bool
        public var state: String
        public var usdPerHour: Double
        public var hours: Double
        public var accruedUSD: Double
        public var interruptions: Int
        public var setupSeconds: Double?
        public var images: Int

        enum CodingKeys: String, CodingKey {
            case pod, providerPodID = "provider_pod_id", batch, spot, state, usdPerHour = "usd_per_hour", hours
            case accruedUSD = "accrued_usd", interruptions, setupSeconds = "setup_seconds", images
        }
    }

    public struct BatchCostRow: Sendable, Codable, Equatable {
        public var batch: Int64
        public var pods: Int
        public var accruedUSD: Double
        public var imagesDone: Int
        public var estimatedUSD: Double?
        public var usdPerImage: Double?

        enum CodingKeys: String, CodingKey {
            case batch, pods, accruedUSD = "accrued_usd", imagesDone = "images_done", estimatedUSD = "estimated_usd", usdPerImage = "usd_per_image"
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var pods: [PodCostRow]
        public var batches: [BatchCostRow]
        public var totalUSD: Double
        public var imagesDone: Int
        public var usdPerImage: Double?
        public var podHours: Double
        /// Reclaims per pod-hour.
        public var interruptionRate: Double
        public var interruptions: Int
        public var averageSetupSeconds: Double?
        public var usdPerHourNow: Double

        enum CodingKeys: String, CodingKey {
            case pods, batches, totalUSD = "total_usd", imagesDone = "images_done", usdPerImage = "usd_per_image", podHours = "pod_hours"
            case interruptionRate = "interruptions_per_pod_hour", interruptions, averageSetupSeconds = "average_setup_seconds", usdPerHourNow = "usd_per_hour_now"
        }
    }

    public func report() async throws -> Report {
        let podRows = try await client.query("""
            SELECT p.id, p.provider_pod_id, p.batch_id, p.interruptible, p.state, coalesce(p.price_usd_per_hour, 0)::float8,
                   (extract(epoch FROM (coalesce(p.terminated_at, now()) - p.requested_at)) / 3600)::float8,
                   p.accrued_usd::float8, p.interruptions,
                   (extract(epoch FROM (p.first_image_at - coalesce(p.started_at, p.requested_at))))::float8,
                   (SELECT count(*) FROM pod_events e WHERE e.kind = \(EventKind.imageDone.rawValue) AND e.provider = p.provider AND e.provider_pod_id = p.provider_pod_id)
            FROM pods p WHERE p.provider_pod_id IS NOT NULL ORDER BY p.id
            """)
        let pods = try podRows.map { row in
            PodCostRow(
                pod: try row.decode(Int64.self, at: 0), providerPodID: try row.decode(String?.self, at: 1), batch: try row.decode(Int64?.self, at: 2),
                spot: try row.decode(Bool.self, at: 3), state: try row.decode(String.self, at: 4), usdPerHour: try row.decode(Double.self, at: 5),
                hours: try row.decode(Double.self, at: 6), accruedUSD: try row.decode(Double.self, at: 7), interruptions: Int(try row.decode(Int32.self, at: 8)),
                setupSeconds: try row.decode(Double?.self, at: 9), images: Int(try row.decode(Int64.self, at: 10)))
        }
        let batchRows = try await client.query("""
            SELECT b.id, (SELECT count(*) FROM pods p WHERE p.batch_id = b.id AND p.provider_pod_id IS NOT NULL),
                   coalesce((SELECT sum(accrued_usd) FROM pods p WHERE p.batch_id = b.id), 0)::float8,
                   (SELECT count(*) FROM image_generation_queue q WHERE q.batch_id = b.id AND q.status = \(ItemStatus.done)),
                   b.estimated_usd::float8
            FROM batches b ORDER BY b.id
            """)
        let batches = try batchRows.map { row in
            let usd = try row.decode(Double.self, at: 2)
            let done = Int(try row.decode(Int64.self, at: 3))
            return BatchCostRow(
                batch: try row.decode(Int64.self, at: 0), pods: Int(try row.decode(Int64.self, at: 1)), accruedUSD: usd, imagesDone: done,
                estimatedUSD: try row.decode(Double?.self, at: 4), usdPerImage: done > 0 ? usd / Double(done) : nil)
        }
        let total = pods.reduce(0) { $0 + $1.accruedUSD }
        let images = batches.reduce(0) { $0 + $1.imagesDone }
        let hours = pods.reduce(0) { $0 + $1.hours }
        let interruptions = pods.reduce(0) { $0 + $1.interruptions }
        let setups = pods.compactMap(\.setupSeconds)
        let now = pods.filter { $0.state != PodState.terminated.rawValue && $0.state != PodState.reclaimed.rawValue }.reduce(0) { $0 + $1.usdPerHour }
        return Report(
            pods: pods, batches: batches, totalUSD: total, imagesDone: images, usdPerImage: images > 0 ? total / Double(images) : nil,
            podHours: hours, interruptionRate: hours > 0 ? Double(interruptions) / hours : 0, interruptions: interruptions,
            averageSetupSeconds: setups.isEmpty ? nil : setups.reduce(0, +) / Double(setups.count), usdPerHourNow: now)
    }
}
