import PostgresClient
import SpotqCore

/// spotq's components as the database knows them: the group role migration 0015 makes for
/// each, and the login user `spotq db-users` makes a member of it.
public enum DatabaseComponent: String, Sendable, CaseIterable {
    case server, provisioner, website

    /// The NOLOGIN role holding the component's privileges.
    public var group: String { "spotq_\(rawValue)" }
    /// The login user `spotq db-users` makes.
    public var login: String { "spotq_\(rawValue)_login" }
}

/// Makes or renews login users that are members of a component's role. Roles belong to the
/// whole PostgreSQL cluster, not one database; the user running this needs CREATEROLE.
public struct DatabaseLoginStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Makes `login` (or renews it: LOGIN, the new password) a member of `group`.
    /// `verifier` is PostgreSQL's stored form of the password (``PostgresSCRAM``); nil makes a
    /// login without a password (for clusters that trust local connections, as the tests' does).
    public func setLogin(_ login: String, memberOf group: String, verifier: String?) async throws {
        guard try await roleExists(group) else {
            throw StoreError(message: "the role \(group) does not exist: run `spotq migrate` first (migration 0015 makes it)")
        }
        let name = PostgresQuery.quoteIdentifier(login)
        let password = verifier.map { " PASSWORD " + PostgresQuery.quoteLiteral($0) } ?? ""
        try await client.withConnection { connection in
            if try await roleExists(login, on: connection) {
                try await connection.runScript("ALTER ROLE \(name) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE\(password)")
                try await connection.runScript("GRANT \(PostgresQuery.quoteIdentifier(group)) TO \(name)")
            } else {
                try await connection.runScript("CREATE ROLE \(name) LOGIN\(password) IN ROLE \(PostgresQuery.quoteIdentifier(group))")
            }
        }
    }

    /// Drops `login`; nothing when it does not exist.
    public func dropLogin(_ login: String) async throws {
        try await client.withConnection { try await $0.runScript("DROP ROLE IF EXISTS \(PostgresQuery.quoteIdentifier(login))") }
    }

    public func roleExists(_ name: String) async throws -> Bool {
        try await client.withConnection { try await roleExists(name, on: $0) }
    }

    func roleExists(_ name: String, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("SELECT 1 FROM pg_roles WHERE rolname = \(name)").isEmpty == false
    }
}
