import ArgumentParser
import Foundation
import Logging
import SpotqCore

/// Flags every command that talks to PostgreSQL or RabbitMQ shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (env SPOTQ_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("amqp-url"), help: "RabbitMQ URL, amqp://user:pass@host:port/vhost (env SPOTQ_AMQP_URL).")
    var amqpURL: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env SPOTQ_LOG_LEVEL; default info).")
    var logLevel: String?

    var settings: SettingsSource { SettingsSource(environment: ProcessInfo.processInfo.environment) }

    func resolvedDatabaseURL() throws -> String {
        try Self.refusePassword(in: databaseURL, flag: "--database-url", env: "SPOTQ_DATABASE_URL")
        return try settings.required(databaseURL, env: "SPOTQ_DATABASE_URL", flagName: "--database-url", what: "the PostgreSQL URL")
    }

    func resolvedAMQPURL() throws -> String {
        try Self.refusePassword(in: amqpURL, flag: "--amqp-url", env: "SPOTQ_AMQP_URL")
        return try settings.required(amqpURL, env: "SPOTQ_AMQP_URL", flagName: "--amqp-url", what: "the RabbitMQ URL")
    }

    /// A command line is visible to every user of the machine (`ps`): a URL given as a flag
    /// may name a host and a user, never a password.
    static func refusePassword(in flagValue: String?, flag: String, env: String) throws {
        guard let flagValue, let components = URLComponents(string: flagValue) else { return }
        let inQuery = components.queryItems?.contains { $0.name.lowercased() == "password" } ?? false
        if components.password?.isEmpty == false || inQuery {
            throw ValidationError("\(flag) holds a password, and a command line is visible to every user of this machine: set \(env) instead")
        }
    }

    func makeLogger(label: String) throws -> Logger {
        let text = settings.string(logLevel, env: "SPOTQ_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ConfigurationError(message: "log level '\(text)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
