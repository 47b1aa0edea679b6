import AMQPClient
import ArgumentParser
import Foundation
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqServer
import SpotqStore

/// `spotq enqueue FILE.jsonl`: bulk enqueue, one request per line.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue image requests from a JSON Lines file (one version-1 message per line).",
        discussion: """
            Each line is a message in the format spotq.enqueue takes (README, "Enqueue by AMQP").
            --via amqp (default) publishes each line to spotq.enqueue with publisher confirms
            and waits for the server's answers, so `spotq server` must be running; --via sql
            writes straight to PostgreSQL, 500 lines per transaction. Either way the summary
            counts accepted lines, duplicates (request_id already queued) and rejected lines
            with their reasons and line numbers. Exits 1 when a line was rejected or not answered.
            """
    )

    enum Via: String, ExpressibleByArgument, CaseIterable { case amqp, sql }

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The JSONL file, or - for stdin.")
    var file: String

    @Option(help: "amqp (through spotq.enqueue and the server) or sql (straight into PostgreSQL).")
    var via: Via = .amqp

    @Option(name: .customLong("answer-timeout"), help: "Seconds to wait for the server's answers after the last one arrived (--via amqp).")
    var answerTimeout: Int = 60

    @Option(help: "Exchange to publish to (--via amqp).")
    var exchange: String = BrokerNames.enqueueExchange

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.enqueue")
        let lines = JSONLines.split(try InputFile.read(file))
        let maxBytes = try connection.settings.integer(nil, env: "SPOTQ_ENQUEUE_MAX_BYTES", default: EnqueueMessageValidator.defaultMaxBytes, range: 1_024...64 << 20)
        let validator = EnqueueMessageValidator(maxBytes: maxBytes)
        let progressLine = ProgressLine(label: "enqueue", total: lines.count)
        let progress: EnqueueProgress = { summary, _ in
            progressLine.update(done: summary.total, detail: "accepted \(summary.accepted)  duplicates \(summary.duplicates)  rejected \(summary.rejected)")
        }
        let started = ContinuousClock.now
        var summary: EnqueueSummary
        var unanswered = 0
        switch via {
        case .sql:
            let client = PostgresClient(configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
            do {
                var enqueuer = SQLBulkEnqueuer(store: QueueStore(client: client))
                enqueuer.validator = validator
                summary = try await enqueuer.run(lines, progress: progress)
                await client.shutdown()
            } catch {
                await client.shutdown()
                throw error
            }
        case .amqp:
            let amqp = try await AMQPConnection.connect(
                configuration: AMQPConfiguration.spotq(url: try connection.resolvedAMQPURL(), connectionName: "spotq enqueue"), logger: logger)
            do {
                var enqueuer = AMQPBulkEnqueuer(connection: amqp)
                enqueuer.validator = validator
                enqueuer.exchange = exchange
                enqueuer.answerTimeout = .seconds(answerTimeout)
                let result = try await enqueuer.run(lines, progress: progress)
                summary = result.summary
                unanswered = result.unanswered
                await amqp.close()
            } catch {
                await amqp.close()
                throw error
            }
        }
        progressLine.finish()
        print(EnqueueReport.render(summary: summary, unanswered: unanswered, lines: lines.count, via: via.rawValue, elapsed: ContinuousClock.now - started))
        if summary.rejected > 0 || unanswered > 0 { throw ExitCode(1) }
    }
}

/// The summary `spotq enqueue` prints.
enum EnqueueReport {
    static func render(summary: EnqueueSummary, unanswered: Int, lines: Int, via: String, elapsed: Duration) -> String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var text = "enqueue: \(lines) lines via \(via) in \(String(format: "%.1f", seconds)) s"
        if seconds > 0 { text += " (\(Int(Double(lines) / seconds)) lines/s)" }
        text += "\n  accepted    \(summary.accepted)\n  duplicates  \(summary.duplicates)\n  rejected    \(summary.rejected)"
        for entry in summary.reasonsByCount.prefix(20) {
            let places = entry.places.map(String.init).joined(separator: ", ") + (entry.count > entry.places.count ? ", …" : "")
            text += "\n    \(entry.count) × \(entry.reason) (line \(places))"
        }
        if summary.reasonsByCount.count > 20 { text += "\n    … and \(summary.reasonsByCount.count - 20) other reasons" }
        if unanswered > 0 {
            text += "\n  unanswered  \(unanswered): published and confirmed by RabbitMQ but not answered in time; "
                + "they stay queued for `spotq server` (is it running?)"
        }
        return text
    }
}
