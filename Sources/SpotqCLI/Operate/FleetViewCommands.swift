import AMQPClient
import ArgumentParser
import Foundation
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqStore

/// Shared by the operators' views: a database client for one command.
enum OperatorView {
    static func withPostgres<T>(_ connection: ConnectionOptions, _ body: (PostgresClient) async throws -> T) async throws -> T {
        let logger = try connection.makeLogger(label: "spotq.ops")
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
        do {
            let result = try await body(postgres)
            await postgres.shutdown()
            return result
        } catch {
            await postgres.shutdown()
            throw error
        }
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func counts(_ values: [String: Int], order: [String]) -> String {
        let known = order.filter { values[$0] != nil }.map { "\($0) \(values[$0]!)" }
        let others = values.keys.filter { !order.contains($0) }.sorted().map { "\($0) \(values[$0]!)" }
        let all = known + others
        return all.isEmpty ? "none" : all.joined(separator: ", ")
    }

    static func usd(_ value: Double) -> String { String(format: "%.4f", value) }

    /// "42 s ago", "3 min ago", "2 h ago".
    static func ago(_ date: Date, now: Date = Date()) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        if seconds < 120 { return "\(seconds) s ago" }
        if seconds < 7_200 { return "\(seconds / 60) min ago" }
        return "\(seconds / 3_600) h ago"
    }
}

/// `spotq status`: one screen.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Items by status, batches, pods by state, USD per hour now and USD today, on one screen.")
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let summary = try await OperatorView.withPostgres(connection) { try await FleetStatusStore(client: $0).summary() }
        if json { return try OperatorView.printJSON(summary) }
        print("""
            items     \(OperatorView.counts(summary.itemsByStatus, order: ItemStatus.allCases.map(\.rawValue)))
            batches   \(OperatorView.counts(summary.batchesByStatus, order: BatchStatus.allCases.map(\.rawValue)))
            pods      \(OperatorView.counts(summary.podsByState, order: PodState.allCases.map(\.rawValue))) (terminated: last 24 h)
            cost      \(OperatorView.usd(summary.usdPerHourNow)) USD/h now, \(OperatorView.usd(summary.usdToday)) USD today (UTC)
            attention \(summary.deadLetters) dead letter\(summary.deadLetters == 1 ? "" : "s") (spotq dlq list), \(summary.alertsToday) fleet alert\(summary.alertsToday == 1 ? "" : "s") in 24 h
            """)
    }
}

/// `spotq batches`.
struct BatchesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batches", abstract: "Batches with progress, pods and cost (unfinished ones; --all for every batch).")
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Finished batches too.") var all = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let batches = try await OperatorView.withPostgres(connection) { try await FleetStatusStore(client: $0).batches(includeFinished: all) }
        if json { return try OperatorView.printJSON(batches) }
        var table = TextTable([("batch", .right), ("status", .left), ("done", .right), ("failed", .right), ("left", .right), ("progress", .left), ("pods", .right), ("payload", .right), ("est. USD", .right), ("USD", .right)])
        for batch in batches {
            let filled = batch.items > 0 ? min(20, batch.done * 20 / batch.items) : 0
            let bar: String = String(repeating: "█", count: filled) + String(repeating: "·", count: 20 - filled)
            let estimated: String = batch.estimatedUSD.map { OperatorView.usd($0) } ?? "-"
            table.add([
                "\(batch.id)", batch.status, "\(batch.done)", "\(batch.failed)", "\(batch.remaining)", bar, "\(batch.livePods)",
                ByteCount.format(batch.payloadBytes), estimated, OperatorView.usd(batch.accruedUSD),
            ])
        }
        print(batches.isEmpty ? "no \(all ? "" : "unfinished ")batches" : table.render())
    }
}

/// `spotq pods`.
struct PodsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pods", abstract: "Pods with state, cost and what their workers are doing (live ones; --all for every pod).")
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Terminated pods too.") var all = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let pods = try await OperatorView.withPostgres(connection) { try await FleetStatusStore(client: $0).pods(includeTerminated: all) }
        if json { return try OperatorView.printJSON(pods) }
        var table = TextTable([
            ("pod", .right), ("provider id", .left), ("batch", .right), ("market", .left), ("state", .left), ("provider", .left), ("USD/h", .right), ("USD", .right),
            ("reclaims", .right), ("seen", .left), ("doing", .left), ("since", .left), ("progress", .left), ("last error", .left),
        ])
        for pod in pods {
            // "progress": the worker's last step forward; one long ago while it is busy is a stall.
            table.add([
                "\(pod.id)", pod.providerPodID ?? "-", pod.batchID.map(String.init) ?? "-", pod.spot ? "spot" : "on-demand", pod.state,
                pod.providerStatus ?? "-", OperatorView.usd(pod.usdPerHour), OperatorView.usd(pod.accruedUSD), "\(pod.interruptions)",
                pod.lastSeenAt.map { OperatorView.ago($0) } ?? "-", String((pod.doing ?? "-").prefix(40)),
                pod.activitySince.map { OperatorView.ago($0) } ?? "-", pod.progressAt.map { OperatorView.ago($0) } ?? "-", String((pod.lastError ?? "").prefix(50)),
            ])
        }
        print(pods.isEmpty ? "no \(all ? "" : "live ")pods" : table.render())
    }
}

/// `spotq queues`: every spotq queue on the broker.
struct QueuesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queues",
        abstract: "Every spotq queue: ready, unacknowledged, consumers, and how fast ready changes.",
        discussion: """
            Ready and consumers come from RabbitMQ (passive declares, no management plugin needed);
            unacknowledged work of a batch queue is derived from PostgreSQL (items neither done nor failed,
            minus ready messages); the rate is the change of ready messages over --sample seconds
            (negative: draining).
            """)
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Seconds between the two looks that give the rate.") var sample = 2.0
    @Flag(help: "Print JSON.") var json = false

    struct QueueRow: Codable {
        var queue: String
        var ready: Int
        var unacknowledged: Int?
        var consumers: Int
        var readyChangePerSecond: Double

        enum CodingKeys: String, CodingKey {
            case queue, ready, unacknowledged, consumers, readyChangePerSecond = "ready_change_per_second"
        }
    }

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.ops")
        let remaining = try await OperatorView.withPostgres(connection) { try await DemandStore(client: $0).remaining() }
        let names = QueueInspector.spotqQueues(batches: remaining.map(\.batchID))
        let amqp = try await AMQPConnection.connect(configuration: AMQPConfiguration.spotq(url: try connection.resolvedAMQPURL(), connectionName: "spotq queues"), logger: logger)
        func look() async -> [String: AMQPQueueInfo] { (try? await QueueInspector.look(amqp, at: names)) ?? [:] }
        let first = await look()
        try await Task.sleep(for: .milliseconds(Int64(max(0.1, sample) * 1000)))
        let second = await look()
        await amqp.close()
        let rows = names.compactMap { name -> QueueRow? in
            guard let now = second[name] else { return nil }
            let before = first[name]?.messageCount ?? now.messageCount
            let batch = remaining.first { BrokerNames.batchQueue($0.batchID) == name }
            return QueueRow(
                queue: name, ready: now.messageCount, unacknowledged: batch.map { DemandSnapshot.unacknowledged(remainingItems: $0.remainingItems, ready: now.messageCount) },
                consumers: now.consumerCount, readyChangePerSecond: Double(now.messageCount - before) / max(0.1, sample))
        }
        if json { return try OperatorView.printJSON(rows) }
        var table = TextTable([("queue", .left), ("ready", .right), ("unacked", .right), ("consumers", .right), ("ready Δ/s", .right)])
        for row in rows {
            table.add([row.queue, "\(row.ready)", row.unacknowledged.map(String.init) ?? "-", "\(row.consumers)", String(format: "%+.1f", row.readyChangePerSecond)])
        }
        print(table.render())
    }
}
