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
        let admin = PostgresClient(configuration: database, logger: testLogger)
        let store = DatabaseLoginStore(client: admin)
        let login = TestEnvironment.uniqueName("\(group)_t")
        do {
            try await store.setLogin(login, memberOf: group, verifier: nil)
            var configuration = try PostgresConfiguration(url: ScratchDatabase.replacingUser(in: database.url, with: login))
            configuration.statementTimeout = database.statementTimeout
            let result = try await body(configuration)
            try await store.dropLogin(login)
            await admin.shutdown()
            return result
        } catch {
            try? await store.dropLogin(login)
            await admin.shutdown()
            throw error
        }
    }
}
