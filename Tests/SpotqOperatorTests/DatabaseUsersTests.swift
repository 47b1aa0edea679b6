import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

@Suite("spotq db-users: the components' own database logins")
struct DatabaseUsersTests {
    @Test func eachComponentsLogin_isAMemberOfItsRole_andItsURLIsInAFileOnlyItsOwnerReads_andARunAgainRenewsIt() async throws {
        try await TemporaryDatabase.with { database in
            let owner = PostgresClient(configuration: database, logger: testLogger)
            let migrations = try MigrationDirectory.load(TestEnvironment.packageRoot().appendingPathComponent("migrations"))
            _ = try await Migrator(client: owner, logger: testLogger).migrate(migrations)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-db-users-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: folder) }
            func run() async throws -> [DatabaseComponent: String] {
                let process = try ChildProcess(try ChildProcess.spotqBinary(), ["db-users", "--write-to", folder, "--log-level", "error"], environment: ["SPOTQ_DATABASE_URL": database.url])
                let status = await process.wait(timeout: .seconds(60))
                #expect(status == 0, "\(process.output)")
                var urls: [DatabaseComponent: String] = [:]
                for component in DatabaseComponent.allCases {
                    let path = (folder as NSString).appendingPathComponent("\(component.rawValue).database-url")
                    #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600, "\(path) is readable by others")
                    let url = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines)
                    let password = try #require(URLComponents(string: url)?.password)
                    #expect(!process.output.contains(password), "a password was printed")
                    urls[component] = url
                }
                await process.cleanUp()
                return urls
            }
            let first = try await run()
            for component in DatabaseComponent.allCases {
                let row = try await owner.query("""
                    SELECT rolcanlogin, pg_has_role(rolname, \(component.group), 'MEMBER'), rolpassword LIKE 'SCRAM-SHA-256$4096:%', rolsuper OR rolcreaterole OR rolcreatedb
                    FROM pg_authid WHERE rolname = \(component.login)
                    """)[0]
                #expect(try row.decode(Bool.self, at: 0) && row.decode(Bool.self, at: 1) && row.decode(Bool.self, at: 2), "\(component.login)")
                #expect(try row.decode(Bool.self, at: 3) == false, "\(component.login) has no administrative attribute")
                let url = try #require(first[component])
                #expect(URLComponents(string: url)?.user == component.login)
                #expect(URLComponents(string: url)?.path == URLComponents(string: database.url)?.path)
            }
            let again = try await run()
            #expect(DatabaseComponent.allCases.allSatisfy { first[$0] != again[$0] }, "a second run renews every password")
            for component in DatabaseComponent.allCases { try await DatabaseLoginStore(client: owner).dropLogin(component.login) }
            await owner.shutdown()
        }
    }
}
