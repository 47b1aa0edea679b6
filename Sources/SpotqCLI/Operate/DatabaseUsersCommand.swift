import ArgumentParser
import Foundation
import Logging
import PostgresClient
import SpotqCore
import SpotqProvisioner
import SpotqStore

/// `spotq db-users`: makes (or renews) the login users of spotq's components, each a member
/// of the least-privilege role migration 0015 made for it, and writes each one's database
/// URL to a file only its owner can read. Passwords are generated, sent to PostgreSQL only as
/// SCRAM-SHA-256 verifiers, and never printed.
struct DatabaseUsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db-users",
        abstract: "Make the server's, provisioner's and website's own database users; write their URLs to files.",
        discussion: """
            Connects with SPOTQ_DATABASE_URL (the schema's owner, with CREATEROLE). Writes
            DIR/server.database-url, DIR/provisioner.database-url and DIR/website.database-url (mode
            600); point each component at its file with SPOTQ_DATABASE_URL_FILE. Run again to renew
            every password (running components keep their connections until they reconnect).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Where each component's `<component>.database-url` is written, mode 600.")
    var writeTo: String

    @Option(help: "The URL components reach the database at (its host, port and database are used; default SPOTQ_DATABASE_URL).")
    var databaseHostURL: String?

    @Option(help: "Only these components (server, provisioner, website; comma-separated). Default: all three.")
    var only: String?

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.db-users")
        let ownerURL = try connection.resolvedDatabaseURL()
        try ConnectionOptions.refusePassword(in: databaseHostURL, flag: "--database-host-url", env: "SPOTQ_DATABASE_URL")
        let base = databaseHostURL ?? ownerURL
        let components = try only.map { list in
            try list.split(separator: ",").map { name in
                guard let component = DatabaseComponent(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--only: \"\(name)\" is not one of server, provisioner, website")
                }
                return component
            }
        } ?? DatabaseComponent.allCases
        let client = PostgresClient(configuration: try PostgresConfiguration(url: ownerURL), logger: logger)
        do {
            try await write(components, logins: DatabaseLoginStore(client: client), base: base)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private func write(_ components: [DatabaseComponent], logins: DatabaseLoginStore, base: String) async throws {
        try FileManager.default.createDirectory(atPath: writeTo, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for component in components {
            let password = randomHex(bytes: 24)
            try await logins.setLogin(component.login, memberOf: component.group, verifier: PostgresSCRAM.verifier(password: password))
            let path = (writeTo as NSString).appendingPathComponent("\(component.rawValue).database-url")
            // The same replacement the broker users' URLs get (names and hex passwords need no escaping).
            try SecretFile.write(PodBrokerAccess.url(base, user: component.login, password: password) + "\n", to: path)
            print("\(component.login): a member of \(component.group); its URL is in \(path)")
        }
    }
}

/// A file only its owner can read, created so (no moment where another user could open it).
enum SecretFile {
    static func write(_ text: String, to path: String) throws {
        unlink(path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ValidationError("could not create \(path): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try handle.write(contentsOf: Data(text.utf8))
    }
}
