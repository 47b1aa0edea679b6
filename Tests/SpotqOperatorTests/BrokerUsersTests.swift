import AMQPClient
import Foundation
import SpotqBroker
import SpotqCore
import PostgresTestSupport
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

@Suite("spotq broker-users: the components' own least-privilege broker users")
struct BrokerUsersTests {
    @Test func eachComponentsUser_canDoItsJobOnly_andItsURLIsInAFileOnlyItsOwnerReads() async throws {
        try await TemporaryVhost.with { amqpURL in
            _ = try await TopologyDeclarer.declareStandard(amqpURL: amqpURL, logger: testLogger)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-users-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let process = try ChildProcess(try ChildProcess.spotqBinary(), ["broker-users", "--write-to", folder, "--log-level", "error"], environment: [
                "SPOTQ_AMQP_URL": amqpURL, "SPOTQ_RABBITMQ_MANAGEMENT_URL": try TestEnvironment.rabbitMQManagementURL(),
            ])
            let status = await process.wait(timeout: .seconds(60))
            #expect(status == 0, "\(process.output)")
            await process.cleanUp()
            func url(_ component: ComponentBrokerGrant) throws -> String {
                let path = (folder as NSString).appendingPathComponent("\(component.user).env")
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(path) is readable by others")
                let text = try String(contentsOfFile: path, encoding: .utf8)
                #expect(!process.output.contains(URLComponents(string: String(text.dropFirst("SPOTQ_AMQP_URL=".count)).trimmingCharacters(in: .newlines))?.password ?? "-"))
                return String(text.dropFirst("SPOTQ_AMQP_URL=".count)).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func refused(_ url: String, _ what: String, _ move: @escaping @Sendable (AMQPChannel) async throws -> Void) async throws {
                let connection = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: url, connectionName: "spotq test"), logger: testLogger)
                defer { Task { await connection.close() } }
                let error = await #expect(throws: AMQPError.self, "\(what) must be refused") { try await connection.withChannel(move) }
                #expect(error?.replyCode == 403, "\(what): \(String(describing: error))")
            }
            func allowed(_ url: String, _ move: @escaping @Sendable (AMQPChannel) async throws -> Void) async throws {
                let connection = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: url, connectionName: "spotq test"), logger: testLogger)
                try await connection.withChannel(move)
                await connection.close()
            }
            let request = Array(#"{"version": 1}"#.utf8)
            let website = try url(.website)
            try await allowed(website) { try await $0.publish(exchange: BrokerNames.enqueueExchange, routingKey: "image.request", body: request) }
            try await refused(website, "the website reading spotq.enqueue") { _ = try await $0.consume(queue: BrokerNames.enqueueQueue) }
            try await refused(website, "the website publishing work") { try await $0.publish(exchange: BrokerNames.workExchange, routingKey: "spotq.batch.1", body: request) }
            let provisioner = try url(.provisioner)
            try await allowed(provisioner) { _ = try await $0.consume(queue: BrokerNames.demandQueue) }
            try await refused(provisioner, "the provisioner publishing demand") { try await $0.publish(exchange: BrokerNames.eventsExchange, routingKey: BrokerNames.demandRoutingKey, body: request) }
            try await refused(provisioner, "the provisioner reading spotq.enqueue") { _ = try await $0.consume(queue: BrokerNames.enqueueQueue) }
            let server = try url(.server)
            try await allowed(server) { channel in
                try await TopologyDeclarer.declareBatch(4_242, on: channel)
                _ = try await channel.consume(queue: BrokerNames.enqueueQueue)
                try await channel.publish(exchange: BrokerNames.workExchange, routingKey: "spotq.batch.4242", body: request)
                _ = try await channel.deleteQueue("spotq.batch.4242")
            }
            try await refused(server, "the server declaring outside spotq's names") { try await $0.declareQueue("elsewhere", durable: false, arguments: AMQPTable()) }
        }
    }
}
