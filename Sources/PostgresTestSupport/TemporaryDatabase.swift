import Foundation
import Logging
import PostgresClient
import SpotqStore
import SpotqTestSupport

/// A database of its own for one test, created on the test server and dropped afterwards.
public enum TemporaryDatabase {
    /// Creates an empty database, runs `body` with its configuration, then drops it.
    public static func with<T>(
        _ prefix: String = "spotq_test",
        _ body: (PostgresConfiguration) async throws -> T
    ) async throws -> T {
        try await ScratchDatabase.with(serverURL: try TestEnvironment.databaseURL(), prefix: prefix, logger: testLogger) { configuration in
            var configuration = configuration
            configuration.statementTimeout = .seconds(60)
            return try await body(configuration)
        }
    }
}

/// Logs at warning and above (or `SPOTQ_TEST_LOG_LEVEL`), so test output stays readable.
public let testLogger: Logger = {
    var logger = Logger(label: "spotq.test")
    logger.logLevel = ProcessInfo.processInfo.environment["SPOTQ_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}()

extension PostgresClient {
    /// The single number a `SELECT count(*) …` (or any one-bigint query) answers.
    public func count(_ sql: String) async throws -> Int {
        Int(try await query(PostgresQuery(sql: sql))[0].decode(Int64.self, at: 0))
    }
}
