import ArgumentParser
import Foundation
import PostgresClient
import SpotqStore

/// `spotq cost`: where every cent went.
struct CostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Accrued USD per pod, per batch and per image; interruption rate; setup time.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let report = try await OperatorView.withPostgres(connection) { try await CostStore(client: $0).report() }
        if json { return try OperatorView.printJSON(report) }
        print(Self.render(report))
    }

    static func usd(_ value: Double) -> String { String(format: "%.4f", value) }

    static func render(_ report: CostStore.Report) -> String {
        var pods = TextTable([("pod", .right), ("provider id", .left), ("batch", .right), ("market", .left), ("state", .left), ("USD/h", .right), ("hours", .right), ("USD", .right), ("reclaims", .right), ("setup s", .right), ("images", .right)])
        for pod in report.pods {
            pods.add([
                "\(pod.pod)", pod.providerPodID ?? "-", pod.batch.map(String.init) ?? "-", pod.spot ? "spot" : "on-demand", pod.state,
                usd(pod.usdPerHour), String(format: "%.2f", pod.hours), usd(pod.accruedUSD), "\(pod.interruptions)",
                pod.setupSeconds.map { String(format: "%.0f", $0) } ?? "-", "\(pod.images)",
            ])
        }
        var batches = TextTable([("batch", .right), ("pods", .right), ("USD", .right), ("estimated USD", .right), ("images done", .right), ("USD/image", .right)])
        for batch in report.batches {
            batches.add([
                "\(batch.batch)", "\(batch.pods)", usd(batch.accruedUSD), batch.estimatedUSD.map(usd) ?? "-", "\(batch.imagesDone)",
                batch.usdPerImage.map { String(format: "%.5f", $0) } ?? "-",
            ])
        }
        return """
            Total: \(usd(report.totalUSD)) USD for \(report.imagesDone) images\(report.usdPerImage.map { String(format: " (%.5f USD per image)", $0) } ?? ""); \
            now \(usd(report.usdPerHourNow)) USD/h
            Pods: \(String(format: "%.2f", report.podHours)) pod-hours, \(report.interruptions) reclaims (\(String(format: "%.3f", report.interruptionRate)) per pod-hour), \
            average setup \(report.averageSetupSeconds.map { String(format: "%.0f s", $0) } ?? "unknown")

            \(pods.render())

            \(batches.render())
            """
    }
}
