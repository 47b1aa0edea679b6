import AMQPClient
import ArgumentParser
import Foundation
import Logging
import PostgresClient
import SpotqBroker
import SpotqServer
import SpotqStore

/// `spotq dlq`: the dead letters `spotq server` keeps in PostgreSQL.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, show, replay and purge dead letters (recorded by `spotq server`'s deadletters component).",
        subcommands: [List.self, Show.self, Replay.self, Purge.self])

    /// Runs `body` with a database client (and a broker client when `broker`).
    static func withClients<T>(_ connection: ConnectionOptions, broker: Bool, _ body: (PostgresClient, AMQPClient?) async throws -> T) async throws -> T {
        let logger = try connection.makeLogger(label: "spotq.dlq")
        let postgres = PostgresClient(configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
        let amqp = broker ? AMQPClient(configuration: AMQPConfiguration.spotq(url: try connection.resolvedAMQPURL(), connectionName: "spotq dlq"), logger: logger) : nil
        do {
            let result = try await body(postgres, amqp)
            await amqp?.close()
            await postgres.shutdown()
            return result
        } catch {
            await amqp?.close()
            await postgres.shutdown()
            throw error
        }
    }

    static func preview(_ body: [UInt8], limit: Int = 60) -> String {
        let text = String(decoding: body.prefix(limit * 4), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dead letters, oldest first.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only those whose reason contains this text.") var reason: String?
        @Flag(name: .customLong("include-purged"), help: "Show purged ones too.") var includePurged = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let entries = try await DeadLetterCommand.withClients(connection, broker: false) { postgres, _ in
                try await DeadLetterStore(client: postgres).list(reason: reason, includePurged: includePurged)
            }
            if json { return try OperatorView.printJSON(entries) }
            var table = TextTable([("id", .right), ("dead-lettered", .left), ("from queue", .left), ("deaths", .right), ("replays", .right), ("reason", .left), ("body", .left)])
            let formatter = ISO8601DateFormatter()
            for entry in entries {
                table.add([
                    "\(entry.id)", formatter.string(from: entry.deadLetteredAt), entry.originQueue ?? "?", "\(entry.deathCount)", "\(entry.replayCount)",
                    String(entry.reason.prefix(80)), DeadLetterCommand.preview(entry.body, limit: 40),
                ])
            }
            print(entries.isEmpty ? "no dead letters" + (reason.map { " with a reason containing '\($0)'" } ?? "") : table.render())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter whole: reason, origin, headers, properties, body.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Dead letter id.") var id: Int64
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard let entry = try await DeadLetterCommand.withClients(connection, broker: false, { postgres, _ in try await DeadLetterStore(client: postgres).entry(id) }) else {
                throw ValidationError("no dead letter \(id)")
            }
            if json { return try OperatorView.printJSON(entry) }
            print("""
                dead letter \(entry.id)\(entry.purgedAt.map { " (purged \($0))" } ?? "")
                reason:         \(entry.reason)
                origin:         exchange '\(entry.originExchange ?? "?")', routing key '\(entry.originRoutingKey ?? "?")', queue '\(entry.originQueue ?? "?")'
                deaths:         \(entry.deathCount)
                from:           \(entry.deadLetter.deadLetteredBy.map { "broker user '\($0)'" } ?? "no validated user_id")
                dead-lettered:  \(entry.deadLetteredAt), recorded \(entry.recordedAt)
                replays:        \(entry.replayCount)\(entry.replayedAt.map { ", last \($0)" } ?? "")
                properties:     \(entry.propertiesJSON)
                headers:        \(entry.headersJSON)
                body (\(entry.body.count) bytes):
                \(String(decoding: entry.body, as: UTF8.self))
                """)
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead letters back to where they came from (publisher confirm; recorded).",
            discussion: "A replayed work item is queued again, and its batch with it, so the provisioner rents pods for it.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Dead letter ids.") var ids: [Int64] = []
        @Flag(help: "Every dead letter not purged (with --reason: those whose reason contains it).") var all = false
        @Option(help: "With --all: only those whose reason contains this text.") var reason: String?

        func validate() throws {
            guard all != !ids.isEmpty else { throw ValidationError("give dead letter ids, or --all (optionally with --reason)") }
            guard reason == nil || all else { throw ValidationError("--reason goes with --all") }
        }

        func run() async throws {
            let (replayed, failures) = try await DeadLetterCommand.withClients(connection, broker: true) { postgres, amqp in
                let store = DeadLetterStore(client: postgres)
                let entries: [RecordedDeadLetter]
                if all {
                    entries = try await store.list(reason: reason)
                } else {
                    var found: [RecordedDeadLetter] = []
                    for id in ids {
                        guard let entry = try await store.entry(id) else { throw ValidationError("no dead letter \(id)") }
                        found.append(entry)
                    }
                    entries = found
                }
                let replayer = DeadLetterReplayer(amqp: amqp!, store: store)
                var replayed = 0
                var failures: [String] = []
                for entry in entries {
                    do {
                        try await replayer.replay(entry)
                        replayed += 1
                    } catch {
                        failures.append("\(error)")
                    }
                }
                return (replayed, failures)
            }
            print("replayed \(replayed) dead letter\(replayed == 1 ? "" : "s")")
            for failure in failures { print("not replayed: \(failure)") }
            if !failures.isEmpty { throw ExitCode(1) }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hide dead letters from the list (they stay in the table for the record).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Dead letter ids.") var ids: [Int64] = []
        @Flag(help: "Every dead letter (with --reason: those whose reason contains it).") var all = false
        @Option(help: "With --all: only those whose reason contains this text.") var reason: String?

        func validate() throws {
            guard all != !ids.isEmpty else { throw ValidationError("give dead letter ids, or --all (optionally with --reason)") }
            guard reason == nil || all else { throw ValidationError("--reason goes with --all") }
        }

        func run() async throws {
            let purged = try await DeadLetterCommand.withClients(connection, broker: false) { postgres, _ in
                try await DeadLetterStore(client: postgres).purge(ids: all ? nil : ids, reason: reason)
            }
            print("purged \(purged) dead letter\(purged == 1 ? "" : "s")")
        }
    }
}
