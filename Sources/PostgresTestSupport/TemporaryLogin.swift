import Foundation
import PostgresClient
import SpotqStore
import SpotqTestSupport

/// A login user of its own, a member of one of spotq's roles (`spotq_website`,
/// `spotq_server`, `spotq_provisioner`), for a test to connect as that component does.
/// Roles belong to the whole cluster, so the name is unique and the user is dropped after.
/// The tests' cluster trusts local connections: no password.
public enum TemporaryLogin {
    public static func with<T>(
        memberOf group: String, on database: PostgresConfiguration, _ body: (PostgresConfiguration) async throws -> T
    ) async throws -> T {
        let login = TestEnvironment.uniqueName("\(group)_t")
        try await asAdmin(database) { try await $0.setLogin(login, memberOf: group, verifier: nil) }
        let result: Result<T, any Error>
        do {
            var configuration = try PostgresConfiguration(url: ScratchDatabase.replacingUser(in: database.url, with: login))
            configuration.statementTimeout = database.statementTimeout
            result = .success(try await body(configuration))
        } catch {
            result = .failure(error)
        }
        // A connection of its own: the body may have restarted the server meanwhile.
        try await asAdmin(database) { try await $0.dropLogin(login) }
        return try result.get()
    }

    static func asAdmin(_ database: PostgresConfiguration, _ work: (DatabaseLoginStore) async throws -> Void) async throws {
        let admin = PostgresClient(configuration: database, logger: testLogger)
        do {
            try await work(DatabaseLoginStore(client: admin))
            await admin.shutdown()
        } catch {
            await admin.shutdown()
            throw error
        }
    }
}
