import Foundation
import Logging
import PostgresClient

/// A database of its own, created next to the one a URL names and dropped afterwards:
/// benchmarks and tests work there without touching real data.
public enum ScratchDatabase {
    /// Creates an empty database named `prefix_<random>` on the server of `serverURL`,
    /// runs `body` with its configuration, then drops it (also when `body` throws).
    public static func with<T>(
        serverURL: String, prefix: String, logger: Logger, _ body: (PostgresConfiguration) async throws -> T
    ) async throws -> T {
        let admin = try PostgresConfiguration(url: serverURL)
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))_\(ProcessInfo.processInfo.processIdentifier)"
        let connection = try await PostgresConnection.connect(configuration: admin, logger: logger)
        do {
            try await connection.runScript("CREATE DATABASE \(PostgresQuery.quoteIdentifier(name))")
        } catch {
            await connection.close()
            throw StoreError(message: "cannot create a scratch database (the user needs CREATEDB): \(error)")
        }
        var configuration = try PostgresConfiguration(url: replacingDatabase(in: admin.url, with: name))
        configuration.statementTimeout = admin.statementTimeout
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

    /// `url` with another user (and no password).
    public static func replacingUser(in url: String, with user: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.user = user
        components.password = nil
        return components.string ?? url
    }

    public static func replacingDatabase(in url: String, with name: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + name
        return components.string ?? url
    }
}
