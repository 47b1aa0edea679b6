@testable import AMQPClient
import Foundation
import SpotqTestSupport
import Testing

@Suite("AMQP connections: failures, liveness, reconnects")
struct AMQPConnectionTests {
    private func closedPort() throws -> Int {
        try FakeBroker.closedPort()
    }

    @Test func connectionRefused_errorNamesHostAndPort_andNotThePassword() async throws {
        let port = try closedPort()
        let configuration = AMQPConfiguration(url: "amqp://spotq:s3cret-pw@127.0.0.1:\(port)/%2F", connectTimeout: .seconds(2))
        let error = try await #require(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        }
        #expect(error.code == .connectionFailed)
        #expect(error.message.contains("127.0.0.1:\(port)"))
        #expect(error.message.contains("refused"))
        #expect(!error.description.contains("s3cret-pw"))
        #expect(!configuration.description.contains("s3cret-pw"))
    }

    @Test func wrongPassword_throwsAuthenticationFailed() async throws {
        let endpoint = try AMQPEndpoint(parsing: try TestEnvironment.amqpURL())
        let url = "amqp://\(endpoint.user):not-the-password@\(endpoint.address)/%2F"
        let error = try await #require(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: url), logger: AMQPTest.logger)
        }
        #expect(error.code == .authenticationFailed)
        #expect(error.replyCode == 403)
        #expect(error.replyText?.hasPrefix("ACCESS_REFUSED") == true)
        #expect(!error.description.contains("not-the-password"))
    }

    @Test func unknownVhost_throwsConnectionFailedWithBrokerText() async throws {
        let endpoint = try AMQPEndpoint(parsing: try TestEnvironment.amqpURL())
        let vhost = TestEnvironment.uniqueName("novhost")
        var configuration = try AMQPTest.configuration()
        configuration.url = "amqp://\(endpoint.user):\(endpoint.password)@\(endpoint.address)/\(vhost)"
        let error = try await #require(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        }
        #expect(error.code == .connectionFailed)
        #expect(error.replyCode == 530)
        #expect(error.replyText?.contains(vhost) == true)
    }

    @Test func silentServer_failsTheHandshakeWithTimeout_insteadOfHanging() async throws {
        let broker = try FakeBroker(.silent)
        defer { broker.stop() }
        let configuration = AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F", handshakeTimeout: .seconds(1))
        let error = try await #require(throws: AMQPError.self) {
            _ = try await withTimeout(.seconds(5), "connect to a silent server") {
                try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
            }
        }
        #expect(error.code == .timeout)
        #expect(error.message.contains("127.0.0.1:\(broker.port)"))
    }

    @Test func brokerThatStopsAnswering_isDetectedByHeartbeat_andFailsPendingWork() async throws {
        let broker = try FakeBroker(.handshakeThenSilence(heartbeat: 1))
        defer { broker.stop() }
        let configuration = AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F", heartbeatSeconds: 1)
        // No isOpen check here: on a loaded machine two silent seconds may pass before it.
        let connection = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        let reason = try await withTimeout(.seconds(6), "heartbeat timeout") { try await connection.waitUntilClosed() }
        #expect(reason.code == .heartbeatTimeout)
        #expect(!connection.isOpen)
        let error = try await #require(throws: AMQPError.self) { _ = try await connection.openChannel() }
        #expect(error.code == .heartbeatTimeout)
    }

    @Test func hungBroker_rpcTimesOut_andTheConnectionIsClosed() async throws {
        let broker = try FakeBroker(.handshakeThenSilence(heartbeat: 0))
        defer { broker.stop() }
        let configuration = AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F", rpcTimeout: .seconds(1))
        let connection = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        let error = try await #require(throws: AMQPError.self) {
            _ = try await withTimeout(.seconds(5), "open a channel on a hung broker") { try await connection.openChannel() }
        }
        #expect(error.code == .timeout)
        #expect(try await connection.waitUntilClosed().code == .timeout)
    }

    @Test func cancellingACallWaitingOnAHungBroker_throwsCancellationErrorPromptly() async throws {
        let broker = try FakeBroker(.handshakeThenSilence(heartbeat: 0))
        let configuration = AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F", rpcTimeout: .seconds(20))
        let connection = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        let call = Task { try await connection.openChannel() }
        try await eventually("channel.open reached the broker", timeout: .seconds(10)) { broker.receivedMethods.contains([0, 20, 0, 10]) }
        let started = ContinuousClock.now
        call.cancel()
        let result = try await withTimeout(.seconds(10), "the cancelled call returns") { await call.result }
        #expect(throws: CancellationError.self) { try result.get() }
        // Well before the 20 s RPC timeout: the cancellation, not the timeout, ended the call.
        // (A bound, not a speed goal; generous so a loaded CI machine does not fail it.)
        #expect(ContinuousClock.now - started < .seconds(10))

        // The broker goes away: the connection notices and ends.
        broker.stop()
        let reason = try await withTimeout(.seconds(5), "the connection ends") { try await connection.waitUntilClosed() }
        #expect(reason.code == .connectionClosed)
    }

    @Test func connectionDyingWhilePublishesAwaitConfirms_failsThem_insteadOfHanging() async throws {
        let broker = try FakeBroker(.opensChannelsButNeverConfirms)
        let configuration = AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(broker.port)/%2F")
        let connection = try await AMQPConnection.connect(configuration: configuration, logger: AMQPTest.logger)
        let channel = try await connection.openChannel()
        let publish = Task {
            try await channel.publishBatch([AMQPOutgoingMessage(exchange: "", routingKey: "q", body: "x".bytes)])
        }
        try await eventually("basic.publish reached the broker", timeout: .seconds(10)) { broker.receivedMethods.contains([0, 60, 0, 40]) }
        broker.stop()
        let result = try await withTimeout(.seconds(5), "the publish fails") { await publish.result }
        let error = try #require(throws: AMQPError.self) { try result.get() }
        #expect(error.code == .connectionClosed)
        #expect(!connection.isOpen)
    }

    @Test func idleConnectionWithShortHeartbeat_staysAlive() async throws {
        let queue = TestEnvironment.uniqueName("q")
        let connection = try await AMQPTest.connect(heartbeatSeconds: 1)
        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue, autoDelete: false)
        // Five heartbeat intervals of silence from the application: both sides must keep
        // exchanging heartbeats or one of them gives up after two.
        try await Task.sleep(for: .seconds(5))
        #expect(connection.isOpen)
        try await channel.publish(exchange: "", routingKey: queue, body: "still here".bytes)
        #expect(try await channel.declareQueuePassive(queue).messageCount == 1)
        try await channel.deleteQueue(queue)
        await connection.close()
        #expect(connection.closeReason?.code == .closed)
    }

    @Test func closingTheConnection_endsConsumersNormally_andRefusesFurtherWork() async throws {
        let queue = TestEnvironment.uniqueName("q")
        let connection = try await AMQPTest.connect()
        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue, exclusive: true)
        let consumer = try await channel.consume(queue: queue)
        let iterator = consumer.makeAsyncIterator()
        await connection.close()
        #expect(try await nextDelivery(iterator) == nil)
        let error = try await #require(throws: AMQPError.self) { try await channel.declareQueue(queue) }
        #expect(error.code == .closed)
        await connection.close()
    }

    @Test func brokerForcedClose_endsConsumerWithReason_andClientReconnects() async throws {
        let name = TestEnvironment.uniqueName("amqp_forced")
        let queue = TestEnvironment.uniqueName("q")
        let client = AMQPClient(
            configuration: try AMQPTest.configuration(name: name),
            reconnectPolicy: AMQPReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200)),
            logger: AMQPTest.logger)
        let first = try await client.connection()
        let channel = try await first.openChannel()
        try await channel.declareQueue(queue)
        let consumer = try await channel.consume(queue: queue)
        let iterator = consumer.makeAsyncIterator()
        #expect(try await client.connection() === first)

        let pid = try await RabbitMQCtl.waitForConnectionPID(named: name)
        _ = try await RabbitMQCtl.run(["close_connection", pid, "spotq test: forced close"])

        let error = try await #require(throws: AMQPError.self) { _ = try await nextDelivery(iterator) }
        #expect(error.code == .connectionClosed)
        #expect(error.replyCode == 320)
        #expect(error.replyText?.contains("spotq test: forced close") == true)
        #expect(!first.isOpen)
        #expect(first.closeReason == error)

        // Work goes on over a new connection.
        let second = try await client.connection()
        #expect(second !== first)
        #expect(second.isOpen)
        let again = try await second.openChannel()
        try await again.publish(exchange: "", routingKey: queue, body: "after reconnect".bytes)
        let delivery = try #require(try await nextDelivery(try await again.consume(queue: queue).makeAsyncIterator()))
        #expect(delivery.body.text == "after reconnect")
        try await delivery.ack()
        try await again.deleteQueue(queue)
        await client.close()
        #expect(!second.isOpen)
        await #expect(throws: AMQPError.self) { _ = try await client.connection() }
    }

    @Test func clientConnection_whenBrokerIsUnreachable_throwsAndBacksOff() async throws {
        let port = try closedPort()
        let client = AMQPClient(
            configuration: AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(port)/%2F", connectTimeout: .seconds(1)),
            reconnectPolicy: AMQPReconnectPolicy(initialDelay: .milliseconds(300), maximumDelay: .seconds(1), jitter: 0),
            logger: AMQPTest.logger)
        let firstError = try await #require(throws: AMQPError.self) { _ = try await client.connection() }
        #expect(firstError.code == .connectionFailed)
        let started = ContinuousClock.now
        await #expect(throws: AMQPError.self) { _ = try await client.connection() }
        #expect(ContinuousClock.now - started >= .milliseconds(250))
        await client.close()
    }
}
