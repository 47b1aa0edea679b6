import AMQPClient
import Foundation
import Logging
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import SpotqSynthetic

/// A migrated database of its own with two registered assets, and an enqueue queue of its
/// own (same arguments as `spotq.enqueue`) that dead-letters to an exchange and queue of
/// its own, so tests run side by side.
struct EnqueueFixture: Sendable {
    static let checkpoint = "base.safetensors"
    static let lora = "style.safetensors"

    let database: PostgresConfiguration
    let postgres: PostgresClient
    let amqp: AMQPClient
    let connection: AMQPConnection
    let queue: String
    let exchange: String
    let deadLetterExchange: String
    let deadQueue: String
    let logger: Logger

    /// Sets up on the shared test servers, or on `databaseURL`'s server when given. With
    /// `ownVhost`, RabbitMQ objects live in a vhost of the test's own: needed when the test
    /// makes batch queues, whose names (`spotq.batch.<id>`) repeat across test databases.
    static func with(databaseURL: String? = nil, ownVhost: Bool = false, _ body: (EnqueueFixture) async throws -> Void) async throws {
        if ownVhost {
            try await TemporaryVhost.with { amqpURL in try await with(databaseURL: databaseURL, amqpURL: amqpURL, body) }
        } else {
            try await with(databaseURL: databaseURL, amqpURL: try TestEnvironment.amqpURL(), body)
        }
    }

    static func with(databaseURL: String?, amqpURL: String, _ body: (EnqueueFixture) async throws -> Void) async throws {
        if let databaseURL {
            try await with(database: try PostgresConfiguration(url: databaseURL), amqpURL: amqpURL, body)
        } else {
            try await TemporaryDatabase.with { try await with(database: $0, amqpURL: amqpURL, body) }
        }
    }

    static func with(database: PostgresConfiguration, amqpURL: String, _ body: (EnqueueFixture) async throws -> Void) async throws {
        var database = database
        database.connectTimeout = .seconds(2)
        database.statementTimeout = .seconds(20)
        let postgres = PostgresClient(configuration: database, logger: testLogger)
        try await migrateAndRegister(postgres)
        let name = TestEnvironment.uniqueName("spotq.test.enqueue")
        let amqpConfiguration = AMQPConfiguration(url: amqpURL, connectionName: name)
        let connection = try await AMQPConnection.connect(configuration: amqpConfiguration, logger: testLogger)
        let fixture = EnqueueFixture(
            database: database, postgres: postgres,
            amqp: AMQPClient(configuration: amqpConfiguration, logger: testLogger), connection: connection,
            queue: name, exchange: name + ".x", deadLetterExchange: name + ".dlx", deadQueue: name + ".dead", logger: testLogger)
        let result: Result<Void, any Error>
        do {
            try await fixture.declare()
            result = .success(try await body(fixture))
        } catch {
            result = .failure(error)
        }
        _ = try? await connection.withChannel { channel in
            _ = try? await channel.deleteQueue(fixture.queue)
            _ = try? await channel.deleteQueue(fixture.deadQueue)
            try? await channel.deleteExchange(fixture.exchange)
            try? await channel.deleteExchange(fixture.deadLetterExchange)
        }
        await fixture.amqp.close()
        await connection.close()
        await postgres.shutdown()
        try result.get()
    }

    static func migrateAndRegister(_ postgres: PostgresClient) async throws {
        let migrations = try MigrationDirectory.load(TestEnvironment.packageRoot().appendingPathComponent("migrations"))
        _ = try await Migrator(client: postgres, logger: testLogger).migrate(migrations)
        _ = try await AssetStore(client: postgres).importAssets([
            Asset(filename: checkpoint, kind: .checkpoint, sizeBytes: 2_000_000, sha256: String(repeating: "1", count: 64), sourceURL: "http://127.0.0.1:9/base"),
            Asset(filename: lora, kind: .lora, sizeBytes: 100_000, sha256: String(repeating: "2", count: 64), sourceURL: "http://127.0.0.1:9/style"),
        ])
    }

    func declare() async throws {
        try await connection.withChannel { channel in
            try await channel.declareExchange(deadLetterExchange, type: .fanout, durable: true)
            _ = try await channel.declareQueue(deadQueue, durable: true, arguments: ["x-queue-type": "quorum"])
            try await channel.bindQueue(deadQueue, exchange: deadLetterExchange, routingKey: "")
            var arguments = AMQPTable()
            for (key, value) in BrokerTopology.quorumWithDeadLetters(deliveryLimit: 10) {
                switch value {
                case .string(let text): arguments[key] = .string(key == "x-dead-letter-exchange" ? deadLetterExchange : text)
                case .int(let number): arguments[key] = .int64(Int64(number))
                }
            }
            _ = try await channel.declareQueue(queue, durable: true, arguments: arguments)
            try await channel.declareExchange(exchange, type: .topic, durable: true)
            try await channel.bindQueue(queue, exchange: exchange, routingKey: "#")
        }
    }

    var consumerConfiguration: EnqueueConsumerConfiguration {
        var configuration = EnqueueConsumerConfiguration()
        configuration.queue = queue
        configuration.deadLetterExchange = deadLetterExchange
        configuration.retryBackoff = RetryBackoff(initial: .milliseconds(100), maximum: .milliseconds(500))
        return configuration
    }

    /// Runs the enqueue consumer for the duration of `body`.
    func withConsumer<T>(
        _ configure: (inout EnqueueConsumerConfiguration) -> Void = { _ in },
        postgres: PostgresClient? = nil,
        _ body: () async throws -> T
    ) async throws -> T {
        var configuration = consumerConfiguration
        configure(&configuration)
        let consumer = EnqueueConsumer(configuration: configuration, amqp: amqp, store: QueueStore(client: postgres ?? self.postgres), logger: logger)
        let task = Task { try await consumer.consumeForever() }
        do {
            let result = try await body()
            task.cancel()
            _ = await task.result
            return result
        } catch {
            task.cancel()
            _ = await task.result
            throw error
        }
    }

    func publish(_ body: [UInt8], properties: AMQPMessageProperties = AMQPMessageProperties(contentType: "application/json")) async throws {
        try await connection.withChannel { channel in
            try await channel.publish(exchange: exchange, routingKey: "image.request", body: body, properties: properties)
        }
    }

    func request(_ id: String, checkpoint: String = EnqueueFixture.checkpoint, loras: [LoraUse] = []) -> [UInt8] {
        TextToImageRequest(requestID: id, checkpoint: checkpoint, loras: loras, positive: "a test image \(id)").messageJSON()
    }

    func rowCount() async throws -> Int {
        let rows = try await postgres.query("SELECT count(*)::bigint FROM image_generation_queue")
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    func requestIDs() async throws -> [String] {
        try await postgres.query("SELECT request_id FROM image_generation_queue ORDER BY request_id").map { try $0.decode(String.self, at: 0) }
    }

    /// Messages ready in `queue` (not counting unacknowledged ones).
    func ready(_ queue: String) async throws -> Int {
        try await connection.withChannel { try await $0.declareQueuePassive(queue).messageCount }
    }

    /// Takes `count` dead letters off the fixture's dead queue, or off `queue` (the real
    /// topology's `spotq.dlq`, say), acked, waiting for them.
    func deadLetters(_ count: Int, from queue: String? = nil) async throws -> [AMQPDelivery] {
        guard count > 0 else { return [] }
        let channel = try await connection.openChannel()
        let consumer = try await channel.consume(queue: queue ?? deadQueue)
        let deliveries = try await withTimeout(.seconds(20), "\(count) dead letters") {
            var taken: [AMQPDelivery] = []
            for try await delivery in consumer {
                try await delivery.ack()
                taken.append(delivery)
                if taken.count == count { break }
            }
            return taken
        }
        try? await channel.close()
        return deliveries
    }
}

extension AMQPDelivery {
    var reason: String? { properties.headers?[BrokerNames.reasonHeader]?.stringValue }
}
