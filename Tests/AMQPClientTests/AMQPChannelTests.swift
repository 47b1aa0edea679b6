import AMQPClient
import SpotqTestSupport
import Testing

@Suite("AMQP channels against the real broker")
struct AMQPChannelTests {
    @Test func quorumQueueWithDeadLetterArguments_isDeclared_andPassiveDeclareReportsCounts() async throws {
        let queue = TestEnvironment.uniqueName("q")
        let dlx = TestEnvironment.uniqueName("dlx")
        try await AMQPTest.withChannel(deleting: [queue], exchanges: [dlx]) { channel in
            try await channel.declareExchange(dlx, type: .direct)
            let arguments: AMQPTable = [
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": .string(dlx),
                "x-dead-letter-routing-key": "dead",
                "x-delivery-limit": 3,
                "x-max-length": 100,
                "x-overflow": "reject-publish",
            ]
            let declared = try await channel.declareQueue(queue, durable: true, arguments: arguments)
            #expect(declared == AMQPQueueInfo(name: queue, messageCount: 0, consumerCount: 0))

            // Declaring again with the same arguments is idempotent.
            try await channel.declareQueue(queue, durable: true, arguments: arguments)

            let outcome = try await channel.publishBatch((0..<3).map {
                AMQPOutgoingMessage(exchange: "", routingKey: queue, body: "m\($0)".bytes)
            })
            #expect(outcome.allConfirmed)
            try await eventually("three ready messages", timeout: .seconds(5)) {
                try await channel.declareQueuePassive(queue).messageCount == 3
            }
            let info = try await channel.declareQueuePassive(queue)
            #expect(info.consumerCount == 0)
            #expect(try await channel.purgeQueue(queue) == 3)
        }
    }

    @Test func redeclaringQueueWithOtherArguments_throwsPreconditionFailed_andChannelGoesOn() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue, arguments: ["x-max-length": 10])
            let error = try await #require(throws: AMQPError.self) {
                try await channel.declareQueue(queue, arguments: ["x-max-length": 20])
            }
            #expect(error.code == .channelClosed)
            #expect(error.replyCode == 406)
            #expect(error.replyText?.contains("PRECONDITION_FAILED") == true)
            #expect(try await channel.declareQueuePassive(queue).name == queue)
        }
    }

    @Test func publishBatch_withConfirms_returnsWhenAllAcked_andQueueHoldsThemAll() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
            let messages = (0..<200).map { index in
                AMQPOutgoingMessage(
                    exchange: "", routingKey: queue, body: "item \(index)".bytes,
                    properties: AMQPMessageProperties(contentType: "text/plain", headers: ["index": .int64(Int64(index))]))
            }
            let outcome = try await channel.publishBatch(messages)
            #expect(outcome.count == 200)
            #expect(outcome.confirmedCount == 200)
            #expect(outcome.allConfirmed)
            try await eventually("200 ready messages", timeout: .seconds(5)) {
                try await channel.declareQueuePassive(queue).messageCount == 200
            }
        }
    }

    @Test func publishBatch_toFullQueueWithRejectPublish_reportsNacks() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue, arguments: ["x-max-length": 2, "x-overflow": "reject-publish"])
            let outcome = try await channel.publishBatch((0..<5).map {
                AMQPOutgoingMessage(exchange: "", routingKey: queue, body: "m\($0)".bytes)
            })
            #expect(outcome.nacked == [2, 3, 4])
            #expect(outcome.confirmedCount == 2)
            let error = try await #require(throws: AMQPError.self) {
                try await channel.publish(exchange: "", routingKey: queue, body: "one more".bytes)
            }
            #expect(error.code == .publishNacked)
        }
    }

    @Test func passiveDeclareOfMissingQueue_throwsNotFound_andSameChannelStillWorks() async throws {
        let missing = TestEnvironment.uniqueName("missing")
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.qos(prefetchCount: 5)
            let error = try await #require(throws: AMQPError.self) {
                try await channel.declareQueuePassive(missing)
            }
            #expect(error.code == .channelClosed)
            #expect(error.replyCode == 404)
            #expect(error.replyText?.hasPrefix("NOT_FOUND") == true)
            #expect(error.replyText?.contains(missing) == true)

            // The channel reopened itself: declare, publish with confirms, check.
            try await channel.declareQueue(queue)
            try await channel.publish(exchange: "", routingKey: queue, body: "after".bytes)
            #expect(try await channel.declareQueuePassive(queue).messageCount == 1)
            #expect(channel.connection.isOpen)
        }
    }

    @Test func publishToMissingExchange_throwsChannelClosedWithBrokerText_andClientGoesOn() async throws {
        let missing = TestEnvironment.uniqueName("nox")
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            let error = try await #require(throws: AMQPError.self) {
                try await channel.publish(exchange: missing, routingKey: "x", body: "lost".bytes)
            }
            #expect(error.code == .channelClosed)
            #expect(error.replyCode == 404)
            #expect(error.replyText == "NOT_FOUND - no exchange '\(missing)' in vhost '/'")
            #expect(!error.description.contains("guest:guest"))

            try await channel.publish(exchange: "", routingKey: queue, body: "kept".bytes)
            let outcome = try await channel.publishBatch([
                AMQPOutgoingMessage(exchange: "", routingKey: queue, body: "kept 2".bytes),
                AMQPOutgoingMessage(exchange: "", routingKey: queue, body: "kept 3".bytes),
            ])
            #expect(outcome.allConfirmed)
            #expect(try await channel.declareQueuePassive(queue).messageCount == 3)
        }
    }

    @Test func mandatoryPublishToUnboundExchange_reportsReturnWithNoRoute() async throws {
        let exchange = TestEnvironment.uniqueName("x")
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue], exchanges: [exchange]) { channel in
            try await channel.declareExchange(exchange, type: .direct, durable: false, autoDelete: false)
            try await channel.declareQueue(queue)
            try await channel.bindQueue(queue, exchange: exchange, routingKey: "bound")

            let error = try await #require(throws: AMQPError.self) {
                try await channel.publish(exchange: exchange, routingKey: "nowhere", body: "x".bytes, mandatory: true)
            }
            #expect(error.code == .publishReturned)
            #expect(error.replyCode == 312)
            #expect(error.replyText == "NO_ROUTE")

            let outcome = try await channel.publishBatch([
                AMQPOutgoingMessage(exchange: exchange, routingKey: "bound", body: "0".bytes, mandatory: true),
                AMQPOutgoingMessage(exchange: exchange, routingKey: "nowhere", body: "1".bytes, mandatory: true),
                AMQPOutgoingMessage(exchange: exchange, routingKey: "bound", body: "2".bytes, mandatory: true),
                AMQPOutgoingMessage(exchange: exchange, routingKey: "nowhere-else", body: "3".bytes, mandatory: true),
                AMQPOutgoingMessage(exchange: exchange, routingKey: "nowhere", body: "4".bytes, mandatory: false),
            ])
            #expect(outcome.returned.map(\.index) == [1, 3])
            #expect(outcome.returned.map(\.routingKey) == ["nowhere", "nowhere-else"])
            #expect(outcome.returned.allSatisfy { $0.replyCode == 312 && $0.replyText == "NO_ROUTE" })
            #expect(outcome.nacked.isEmpty)
            #expect(outcome.confirmedCount == 3)
            #expect(try await channel.declareQueuePassive(queue).messageCount == 2)

            try await channel.unbindQueue(queue, exchange: exchange, routingKey: "bound")
            await #expect(throws: AMQPError.self) {
                try await channel.publish(exchange: exchange, routingKey: "bound", body: "x".bytes, mandatory: true)
            }
        }
    }

    @Test func closedChannel_refusesWork_withClosedCode() async throws {
        let connection = try await AMQPTest.connect()
        let channel = try await connection.openChannel()
        try await channel.close()
        try await channel.close()
        let error = try await #require(throws: AMQPError.self) {
            try await channel.declareQueuePassive("amq.whatever")
        }
        #expect(error.code == .closed)
        #expect(connection.isOpen)
        await connection.close()
    }
}
