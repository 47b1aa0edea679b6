import AMQPClient
import Foundation
import SpotqTestSupport
import Testing

@Suite("AMQP consumers against the real broker")
struct AMQPConsumerTests {
    @Test func consumeWithManualAck_deliversBodyAndProperties_andAckRemovesTheMessage() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
            let stamp = Date(timeIntervalSince1970: 1_700_000_000)
            let properties = AMQPMessageProperties(
                contentType: "application/json", contentEncoding: "identity",
                headers: ["batch": "b1", "attempt": .int32(2), "nested": ["ok": true]],
                priority: 3, correlationID: "corr-1", replyTo: "replies", expiration: "60000",
                messageID: "msg-1", timestamp: stamp, type: "work", userID: "guest", appID: "spotq")
            try await channel.publish(exchange: "", routingKey: queue, body: #"{"n":1}"#.bytes, properties: properties)

            let consumer = try await channel.consume(queue: queue, consumerTag: "tests-ack")
            #expect(consumer.tag == "tests-ack")
            let iterator = consumer.makeAsyncIterator()
            let delivery = try #require(try await nextDelivery(iterator))
            #expect(delivery.body.text == #"{"n":1}"#)
            #expect(delivery.properties == properties)
            #expect(delivery.routingKey == queue)
            #expect(delivery.exchange == "")
            #expect(delivery.consumerTag == "tests-ack")
            #expect(!delivery.redelivered)
            try await delivery.ack()

            await consumer.cancel()
            #expect(try await nextDelivery(iterator) == nil)
            let info = try await channel.declareQueuePassive(queue)
            #expect(info.messageCount == 0)
            #expect(info.consumerCount == 0)
        }
    }

    @Test func largeMessageSpanningManyFrames_arrivesIntact() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            let body = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try await channel.publish(exchange: "", routingKey: queue, body: body)
            try await channel.publish(exchange: "", routingKey: queue, body: [])
            let consumer = try await channel.consume(queue: queue)
            let iterator = consumer.makeAsyncIterator()
            let large = try #require(try await nextDelivery(iterator))
            #expect(large.body == body)
            let empty = try #require(try await nextDelivery(iterator))
            #expect(empty.body.isEmpty)
            try await large.ack()
            try await empty.ack()
            await consumer.cancel()
        }
    }

    @Test func nackWithRequeue_redeliversTheMessage_markedRedelivered() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
            try await channel.publish(exchange: "", routingKey: queue, body: "again".bytes)
            let consumer = try await channel.consume(queue: queue)
            let iterator = consumer.makeAsyncIterator()

            let first = try #require(try await nextDelivery(iterator))
            #expect(!first.redelivered)
            try await first.nack(requeue: true)

            let second = try #require(try await nextDelivery(iterator))
            #expect(second.body.text == "again")
            #expect(second.redelivered)
            try await second.ack()
            await consumer.cancel()
        }
    }

    @Test func nackAndRejectWithoutRequeue_deadLetterToDLX_withXDeathHeader() async throws {
        let queue = TestEnvironment.uniqueName("q")
        let dead = TestEnvironment.uniqueName("dead")
        let dlx = TestEnvironment.uniqueName("dlx")
        try await AMQPTest.withChannel(deleting: [queue, dead], exchanges: [dlx]) { channel in
            try await channel.declareExchange(dlx, type: .direct)
            try await channel.declareQueue(dead)
            try await channel.bindQueue(dead, exchange: dlx, routingKey: "dead")
            try await channel.declareQueue(queue, arguments: [
                "x-queue-type": "quorum", "x-dead-letter-exchange": .string(dlx),
                "x-dead-letter-routing-key": "dead", "x-delivery-limit": 5,
            ])
            try await channel.publish(exchange: "", routingKey: queue, body: "nacked".bytes)
            try await channel.publish(exchange: "", routingKey: queue, body: "rejected".bytes)

            let consumer = try await channel.consume(queue: queue)
            let iterator = consumer.makeAsyncIterator()
            let first = try #require(try await nextDelivery(iterator))
            #expect(first.body.text == "nacked")
            try await first.nack(requeue: false)
            let second = try #require(try await nextDelivery(iterator))
            #expect(second.body.text == "rejected")
            try await second.reject(requeue: false)
            await consumer.cancel()

            let deadConsumer = try await channel.consume(queue: dead)
            let deadIterator = deadConsumer.makeAsyncIterator()
            var bodies: [String] = []
            for _ in 0..<2 {
                let letter = try #require(try await nextDelivery(deadIterator))
                bodies.append(letter.body.text)
                let deaths = try #require(letter.properties.headers?["x-death"]?.arrayValue)
                let death = try #require(deaths.first?.tableValue)
                #expect(death["queue"]?.stringValue == queue)
                #expect(death["reason"]?.stringValue == "rejected")
                #expect(death["count"]?.intValue == 1)
                try await letter.ack()
            }
            #expect(bodies.sorted() == ["nacked", "rejected"])
            await deadConsumer.cancel()
        }
    }

    @Test func qosPrefetch_limitsUnackedDeliveriesInFlight() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            _ = try await channel.publishBatch((0..<10).map {
                AMQPOutgoingMessage(exchange: "", routingKey: queue, body: "m\($0)".bytes)
            })
            try await channel.qos(prefetchCount: 3)
            let consumer = try await channel.consume(queue: queue)
            let iterator = consumer.makeAsyncIterator()
            var held: [AMQPDelivery] = []
            for _ in 0..<3 { held.append(try #require(try await nextDelivery(iterator))) }

            // With three unacked, the broker sends no fourth: the rest stay ready. (Waiting on
            // the iterator with a timeout would cancel the consumer, so ask the broker instead,
            // after giving it a moment it would use to push everything without QoS.)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await channel.declareQueuePassive(queue).messageCount == 7)

            try await held[0].ack()
            let fourth = try #require(try await nextDelivery(iterator))
            #expect(fourth.body.text == "m3")
            #expect(try await channel.declareQueuePassive(queue).messageCount == 6)
            await consumer.cancel()
        }
    }

    @Test func queueDeletedUnderConsumer_endsStreamWithConsumerCancelled() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            let consumer = try await channel.consume(queue: queue)
            let iterator = consumer.makeAsyncIterator()

            let other = try await channel.connection.openChannel()
            try await other.deleteQueue(queue)

            let error = try await #require(throws: AMQPError.self) { _ = try await nextDelivery(iterator) }
            #expect(error.code == .consumerCancelled)
            #expect(try await nextDelivery(iterator) == nil)
            #expect(channel.connection.isOpen)
        }
    }

    @Test func breakingOutOfTheLoop_cancelsTheConsumer_andRequeuesUndelivered() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            _ = try await channel.publishBatch((0..<5).map {
                AMQPOutgoingMessage(exchange: "", routingKey: queue, body: "m\($0)".bytes)
            })
            let consumer = try await channel.consume(queue: queue)
            for try await delivery in consumer {
                try await delivery.ack()
                break
            }
            // basic.cancel went out; the four buffered deliveries went back to the queue.
            try await eventually("no consumer and four ready messages", timeout: .seconds(5)) {
                let info = try await channel.declareQueuePassive(queue)
                return info.consumerCount == 0 && info.messageCount == 4
            }
        }
    }

    @Test func cancellingTheConsumingTask_throwsCancellationError_andCancelsTheConsumer() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            let consumer = try await channel.consume(queue: queue)
            let task = Task {
                for try await delivery in consumer { try await delivery.ack() }
            }
            try await eventually("the consumer is registered", timeout: .seconds(5)) {
                try await channel.declareQueuePassive(queue).consumerCount == 1
            }
            task.cancel()
            let result = try await withTimeout(.seconds(5), "the consuming task ends") { await task.result }
            #expect(throws: CancellationError.self) { try result.get() }
            try await eventually("basic.cancel reached the broker", timeout: .seconds(5)) {
                try await channel.declareQueuePassive(queue).consumerCount == 0
            }
        }
    }

    @Test func ackAfterChannelWasClosedByBroker_throwsChannelClosed() async throws {
        let queue = TestEnvironment.uniqueName("q")
        try await AMQPTest.withChannel(deleting: [queue]) { channel in
            try await channel.declareQueue(queue)
            try await channel.publish(exchange: "", routingKey: queue, body: "m".bytes)
            let consumer = try await channel.consume(queue: queue)
            let iterator = consumer.makeAsyncIterator()
            let delivery = try #require(try await nextDelivery(iterator))

            // A failing passive declare makes the broker close the channel under the consumer.
            await #expect(throws: AMQPError.self) { _ = try await channel.declareQueuePassive(TestEnvironment.uniqueName("missing")) }
            let ended = try await #require(throws: AMQPError.self) { _ = try await nextDelivery(iterator) }
            #expect(ended.code == .channelClosed)
            #expect(ended.replyText?.hasPrefix("NOT_FOUND") == true)

            let error = try await #require(throws: AMQPError.self) { try await delivery.ack() }
            #expect(error.code == .channelClosed)

            // The message went back to the queue and the reopened channel can take it again.
            let again = try await channel.consume(queue: queue)
            let redelivered = try #require(try await nextDelivery(again.makeAsyncIterator()))
            #expect(redelivered.redelivered)
            try await redelivered.ack()
            await again.cancel()
        }
    }
}
