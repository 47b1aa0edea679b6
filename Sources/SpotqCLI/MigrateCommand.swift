import ArgumentParser
import Foundation
import Logging
import PostgresClient
import SpotqBroker
import SpotqCore
import SpotqStore

/// `spotq migrate`: brings the database schema and the broker topology up to date.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending SQL migrations and declare the RabbitMQ topology (both idempotent).",
        discussion: """
            Each migration runs in its own transaction and is recorded with its checksum in
            spotq_schema_migrations. A migration edited after it was applied stops the run
            before anything changes. Running migrate twice does nothing the second time.
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("migrations-dir"), help: "Folder of NNNN_name.sql files (env SPOTQ_MIGRATIONS_DIR; default ./migrations or beside the binary).")
    var migrationsDirectory: String?

    @Flag(name: .customLong("skip-broker"), help: "Only migrate the database; do not declare the RabbitMQ topology.")
    var skipBroker = false

    @Flag(name: .customLong("status"), help: "Only list applied and pending migrations.")
    var statusOnly = false

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.migrate")
        let folder = try MigrationDirectory.locate(
            explicit: connection.settings.string(migrationsDirectory, env: "SPOTQ_MIGRATIONS_DIR"))
        let migrations = try MigrationDirectory.load(folder)
        let client = PostgresClient(
            configuration: try PostgresConfiguration(url: try connection.resolvedDatabaseURL()), logger: logger)
        do {
            try await migrate(migrations, from: folder, client: client, logger: logger)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private func migrate(_ migrations: [Migration], from folder: URL, client: PostgresClient, logger: Logger) async throws {
        let migrator = Migrator(client: client, logger: logger)

        if statusOnly {
            let applied = try await migrator.applied()
            let pending = try MigrationPlanner.pending(files: migrations, applied: applied)
            for record in applied { print(String(format: "applied  %04d_%@", record.version, record.name)) }
            for migration in pending { print("pending  \(migration.label)") }
            return
        }

        let report = try await migrator.migrate(migrations)
        if report.applied.isEmpty {
            print("database: up to date (\(report.alreadyApplied) migrations applied before, from \(folder.path))")
        } else {
            for label in report.applied { print("database: applied \(label)") }
        }

        guard !skipBroker else { return }
        let declared = try await TopologyDeclarer.declareStandard(amqpURL: try connection.resolvedAMQPURL(), logger: logger)
        print("broker: declared \(declared.exchanges) exchanges, \(declared.queues) queues, \(declared.bindings) bindings")
    }
}
