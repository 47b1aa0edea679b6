import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresClient
import Prometheus
import SpotqCore
import SpotqStore

/// `GET /metrics` in Prometheus' text format: counters kept by this server (uploads), and
/// gauges read at scrape time from PostgreSQL (items, pods, costs, downloads, time to first
/// image, dead letters) and, when the server has a broker, RabbitMQ (queue depths).
public struct SpotqMetrics: Sendable {
    /// A queue as the broker reports it.
    public struct QueueDepth: Sendable {
        public var queue: String
        public var ready: Int
        public var consumers: Int
        public var unacknowledged: Int?

        public init(queue: String, ready: Int, consumers: Int, unacknowledged: Int?) {
            self.queue = queue
            self.ready = ready
            self.consumers = consumers
            self.unacknowledged = unacknowledged
        }
    }

    /// Reads the broker's queue depths at scrape time.
    public struct QueueProbe: Sendable {
        let read: @Sendable () async -> [QueueDepth]
        public init(_ read: @escaping @Sendable () async -> [QueueDepth]) { self.read = read }
    }

    public let registry = PrometheusCollectorRegistry()
    let store: FleetMetricsStore
    let queues: QueueProbe?
    let logger: Logger


    public init(postgres: PostgresClient, queues: QueueProbe?, logger: Logger) {
        self.store = FleetMetricsStore(client: postgres)
        self.queues = queues
        self.logger = logger
    }

    /// Counts one upload by what the server answered.
    public func upload(_ outcome: String) {
        registry.makeCounter(name: "spotq_uploads_total", labels: [("outcome", outcome)], help: "Result bundles received, by outcome (stored, duplicate, refused).").increment()
        if outcome == "refused" {
            registry.makeCounter(name: "spotq_upload_failures_total", help: "Result bundles refused (4xx).").increment()
        }
    }

    func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty ? registry.makeGauge(name: name, help: help) : registry.makeGauge(name: name, labels: labels, help: help)
    }

    /// Refreshes the gauges and renders everything.
    public func render() async -> [UInt8] {
        do {
            let snapshot = try await store.snapshot()
            for status in ItemStatus.allCases.map(\.rawValue) {
                gauge("spotq_items", "Image requests by status.", labels: [("status", status)]).set(Double(snapshot.itemsByStatus[status] ?? 0))
            }
            for state in PodState.live.map(\.rawValue) {
                gauge("spotq_pods", "Pods not terminated, by state.", labels: [("state", state)]).set(Double(snapshot.podsByState[state] ?? 0))
            }
            gauge("spotq_images_stored", "Stored result files.").set(Double(snapshot.imagesDone))
            gauge("spotq_interruptions", "Reclaims of spot pods so far.").set(Double(snapshot.interruptions))
            gauge("spotq_usd_accrued", "USD accrued by all pods (GPU time and storage).").set(snapshot.accruedUSD)
            gauge("spotq_usd_per_hour", "What the running pods cost per hour now.").set(snapshot.usdPerHour)
            gauge("spotq_usd_today", "USD accrued since midnight UTC.").set(snapshot.usdToday)
            gauge("spotq_dead_letters", "Dead letters not purged.").set(Double(snapshot.deadLetters))
            gauge("spotq_model_downloads", "Model files downloaded by pods (reused ones not counted).").set(Double(snapshot.downloads))
            gauge("spotq_model_download_bytes", "Bytes of model files downloaded by pods.").set(snapshot.downloadedBytes)
            gauge("spotq_model_download_seconds", "Seconds pods spent downloading model files.").set(snapshot.downloadSeconds)
            gauge("spotq_time_to_first_image_seconds", "Pod start to first image: average over the last day, and the latest.", labels: [("stat", "average")])
                .set(snapshot.averageTimeToFirstImageSeconds ?? 0)
            gauge("spotq_time_to_first_image_seconds", "Pod start to first image: average over the last day, and the latest.", labels: [("stat", "latest")])
                .set(snapshot.lastTimeToFirstImageSeconds ?? 0)
        } catch {
            logger.warning("metrics: could not read PostgreSQL", metadata: ["error": "\(error)"])
        }
        if let queues {
            for depth in await queues.read() {
                gauge("spotq_queue_ready", "Messages ready in a spotq queue.", labels: [("queue", depth.queue)]).set(Double(depth.ready))
                gauge("spotq_queue_consumers", "Consumers of a spotq queue.", labels: [("queue", depth.queue)]).set(Double(depth.consumers))
                if let unacknowledged = depth.unacknowledged {
                    gauge("spotq_queue_unacknowledged", "Work held by pods (batch queues; from PostgreSQL).", labels: [("queue", depth.queue)]).set(Double(unacknowledged))
                }
            }
        }
        return registry.emitToBuffer()
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/metrics") { _, _ in
            let body = await self.render()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
