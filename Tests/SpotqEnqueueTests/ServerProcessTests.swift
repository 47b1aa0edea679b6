import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("spotq server: the real binary")
struct ServerProcessTests {
    @Test func serverOnlyEnqueue_consumesSpotqEnqueue_deadLettersRefusals_andStopsCleanlyOnSIGTERM() async throws {
        try await TemporaryVhost.with { amqpURL in
            try await TemporaryDatabase.with { database in
                let postgres = PostgresClient(configuration: database, logger: testLogger)
                try await EnqueueFixture.migrateAndRegister(postgres)
                let server = try ChildProcess(try ChildProcess.spotqBinary(), ["server", "--only", "enqueue"], environment: [
                    "SPOTQ_DATABASE_URL": database.url, "SPOTQ_AMQP_URL": amqpURL, "SPOTQ_LOG_LEVEL": "info",
                ])
                let connection = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: amqpURL), logger: testLogger)
                do {
                    // The server declares the topology itself, then consumes.
                    try await eventually("the server's consumer on spotq.enqueue", timeout: .seconds(30)) {
                        try await connection.withChannel { try await $0.declareQueuePassive(BrokerNames.enqueueQueue).consumerCount } == 1
                    }
                    try await connection.withChannel { channel in
                        for id in ["p1", "p2", "p3"] {
                            let body = TextToImageRequest(requestID: id, checkpoint: EnqueueFixture.checkpoint, positive: "x").messageJSON()
                            try await channel.publish(exchange: BrokerNames.enqueueExchange, routingKey: "image.request", body: body,
                                                      properties: AMQPMessageProperties(contentType: "application/json"))
                        }
                        try await channel.publish(exchange: BrokerNames.enqueueExchange, routingKey: "image.request", body: Array("nonsense".utf8))
                    }
                    try await eventually("three rows", timeout: .seconds(30)) {
                        try await postgres.query("SELECT count(*)::bigint FROM image_generation_queue")[0].decode(Int64.self, at: 0) >= 3
                    }
                    let reason = try await withTimeout(.seconds(30), "the dead letter") { () -> String? in
                        let channel = try await connection.openChannel()
                        for try await delivery in try await channel.consume(queue: BrokerNames.deadLetterQueue) {
                            try await delivery.ack()
                            return delivery.properties.headers?[BrokerNames.reasonHeader]?.stringValue
                        }
                        return nil
                    }
                    #expect(reason?.hasPrefix("the body is not valid JSON") == true)

                    server.signal(SIGTERM)
                    let exitCode = await server.wait(timeout: .seconds(20))
                    #expect(exitCode == 0, "\(server.output)")
                    #expect(server.output.contains("server: stopped"))
                    #expect(!server.output.contains("guest:guest"), "the AMQP password must not be logged")
                } catch {
                    Issue.record("server output:\n\(server.output)")
                    await server.cleanUp()
                    await connection.close()
                    await postgres.shutdown()
                    throw error
                }
                await server.cleanUp()
                await connection.close()
                await postgres.shutdown()
            }
        }
    }
}
