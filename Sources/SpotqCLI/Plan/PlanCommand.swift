import AMQPClient
import ArgumentParser
import Foundation
import Logging
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqServer
import SpotqStore

/// `spotq plan`: what the planner would do with the pending items, or (`--apply`) doing it.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Plan pending items into batches (dry run), or create and publish them (--apply).",
        discussion: """
            Without --apply nothing changes: it prints, per batch, the checkpoints, images, payload,
            estimated setup, GPU hours, pods, USD and USD per image, and the predicted time to the
            first image under the chosen download order. --apply writes the batches, their manifests
            and token hashes, assigns the items, then publishes one work message per image, in
            generation order, with publisher confirms (needs SPOTQ_SECRET and SPOTQ_AMQP_URL). If it
            dies half-way, the next `spotq plan --apply` (or the server's planner) publishes the rest.
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var options: PlanOptions

    @Flag(help: "Create the batches and publish their work.")
    var apply = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.plan")
        let settings = try options.resolve(connection.settings)
        let secret = apply ? try ServerStartup.secret(connection.settings) : ""
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
        do {
            let report: PlanReport
            if apply {
                let amqp = AMQPClient(configuration: AMQPConfiguration.spotq(url: try connection.resolvedAMQPURL(), connectionName: "spotq plan"), logger: logger)
                do {
                    let (batches, plan, work) = try await PlannerStore(client: postgres).apply(policy: settings.policy, gpu: settings.gpu, secret: secret)
                    let published = try await BatchPublisher(postgres: postgres, amqp: amqp, signer: WorkSignature.Signer(secret: secret), logger: logger).publishPending()
                    report = PlanReport(plan: plan, work: work, batchIDs: batches.map(\.id), published: published.messages)
                    await amqp.close()
                } catch {
                    await amqp.close()
                    throw error
                }
            } else {
                let (work, _) = try await PlannerStore(client: postgres).loadPendingWork()
                report = PlanReport(plan: Planner.plan(work, policy: settings.policy, gpu: settings.gpu), work: work, batchIDs: nil, published: nil)
            }
            await postgres.shutdown()
            print(json ? try report.json() : report.table())
        } catch {
            await postgres.shutdown()
            throw error
        }
    }
}

/// A plan as `spotq plan` shows it.
struct PlanReport {
    let plan: Plan
    let work: PendingWork
    let batchIDs: [Int64]?
    let published: Int?

    struct BatchJSON: Encodable {
        var id: Int64?
        var checkpoints: [String]
        var loras: Int
        var downloadOrder: [String]
        var orderStrategy: String
        var estimate: BatchEstimate
        var predicted: Timeline

        enum CodingKeys: String, CodingKey {
            case id, checkpoints, loras
            case downloadOrder = "download_order"
            case orderStrategy = "order_strategy"
            case estimate, predicted
        }
    }

    struct Totals: Encodable {
        var batches: Int
        var images: Int
        var unplannable: Int
        var usd: Double
        var gpuHours: Double
        var published: Int?

        enum CodingKeys: String, CodingKey {
            case batches, images, unplannable, usd
            case gpuHours = "gpu_hours"
            case published
        }
    }

    var totals: Totals {
        Totals(
            batches: plan.batches.count, images: plan.batches.reduce(0) { $0 + $1.estimate.images },
            unplannable: plan.unplannable.count, usd: plan.batches.reduce(0) { $0 + $1.estimate.usd },
            gpuHours: plan.batches.reduce(0) { $0 + $1.estimate.runHours }, published: published)
    }

    func json() throws -> String {
        struct Document: Encodable {
            var applied: Bool
            var batches: [BatchJSON]
            var totals: Totals
            var unplannable: [String]
        }
        let batches = plan.batches.enumerated().map { index, batch in
            BatchJSON(
                id: batchIDs?[index], checkpoints: batch.checkpoints.map { work.assets[Int($0)].filename },
                loras: batch.downloadOrder.count - batch.checkpoints.count,
                downloadOrder: batch.downloadOrder.map { work.assets[Int($0)].filename },
                orderStrategy: batch.orderStrategy, estimate: batch.estimate, predicted: batch.timeline)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let document = Document(
            applied: batchIDs != nil, batches: batches, totals: totals,
            unplannable: plan.unplannable.map { "item \(work.items[Int($0.item)].id): \($0.reason)" })
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    func table() -> String {
        var table = TextTable([
            ("BATCH", .right), ("CHECKPOINTS", .left), ("IMAGES", .right), ("PAYLOAD", .right), ("SETUP", .right),
            ("GPU HOURS", .right), ("PODS", .right), ("USD", .right), ("USD/IMAGE", .right), ("FIRST IMAGE", .right), ("ORDER", .left),
        ])
        for (index, batch) in plan.batches.enumerated() {
            let names = batch.checkpoints.map { work.assets[Int($0)].filename }
            let loras = batch.downloadOrder.count - batch.checkpoints.count
            let label = (names.count > 2 ? "\(names[0]) +\(names.count - 1) more" : names.joined(separator: ", ")) + (loras > 0 ? " (+\(loras) LoRAs)" : "")
            let estimate = batch.estimate
            table.add([
                batchIDs.map { String($0[index]) } ?? "#\(index + 1)", label, String(estimate.images),
                ByteCount.format(batch.payloadBytes), Self.minutes(estimate.setupHours * 3600), String(format: "%.2f", estimate.runHours),
                String(estimate.pods), String(format: "%.2f", estimate.usd), String(format: "%.6f", estimate.usdPerImage),
                Self.minutes(batch.timeline.timeToFirstImage), batch.orderStrategy,
            ])
        }
        let totals = self.totals
        var text = plan.batches.isEmpty ? "nothing to plan: no pending items" : table.render()
        text += "\n\(totals.batches) batches, \(totals.images) images, \(String(format: "%.1f", totals.gpuHours)) GPU hours, "
            + "\(String(format: "%.2f", totals.usd)) USD estimated"
        if totals.images > 0 { text += " (\(String(format: "%.6f", totals.usd / Double(totals.images))) USD per image)" }
        if let published { text += "\napplied: \(totals.batches) batches created, \(published) work messages published" } else if !plan.batches.isEmpty {
            text += "\ndry run: nothing changed; --apply creates and publishes these batches"
        }
        if !plan.unplannable.isEmpty {
            text += "\n\(plan.unplannable.count) items cannot be planned and stay pending:"
            for item in plan.unplannable.prefix(10) { text += "\n  item \(work.items[Int(item.item)].id): \(item.reason)" }
        }
        return text
    }

    static func minutes(_ seconds: Double) -> String {
        seconds < 120 ? "\(Int(seconds.rounded())) s" : seconds < 7200 ? "\(Int((seconds / 60).rounded())) min" : String(format: "%.1f h", seconds / 3600)
    }
}
