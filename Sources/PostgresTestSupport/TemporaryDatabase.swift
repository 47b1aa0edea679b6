import Foundation
import Logging
import PostgresClient
import SpotqTestSupport

/// A database of its own for one test, created on the test server and dropped afterwards.
public enum TemporaryDatabase {
    /// Creates an empty database, runs `body` with its configuration, then drops it.
    public static func with<T>(
        _ prefix: String = "spotq_test",
        _ body: (PostgresConfiguration) async throws -> T
    ) async throws -> T {
        let admin = try PostgresConfiguration(url: try TestEnvironment.databaseURL())
        let name = TestEnvironment.uniqueName(prefix)
        let connection = try await PostgresConnection.connect(configuration: admin, logger: testLogger)
        try await connection.runScript("CREATE DATABASE \(PostgresQuery.quoteIdentifier(name))")
        var configuration = try PostgresConfiguration(url: replacingDatabase(in: admin.url, with: name))
        configuration.statementTimeout = .seconds(60)
        do {
            let result = try await body(configuration)
            try await connection.runScript("DROP DATABASE \(PostgresQuery.quoteIdentifier(name)) WITH (FORCE)")
            await connection.close()
            return result
        } catch {
            _ = try? await connection.runScript("DROP DATABASE \(PostgresQuery.quoteIdentifier(name)) WITH (FORCE)")
            await connection.close()
            throw error
        }
    }

    static func replacingDatabase(in url: String, with name: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + name
        return components.string ?? url
    }
}

/// Logs at warning and above, so test output stays readable.
public let testLogger: Logger = {
    var logger = Logger(label: "spotq.test")
    logger.logLevel = .warning
    return logger
}()
