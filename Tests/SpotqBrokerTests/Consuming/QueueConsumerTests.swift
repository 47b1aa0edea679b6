import AMQPClient
import Foundation
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqTestSupport
import Testing

/// A handler whose decisions the message bodies dictate, reporting every step as an event.
struct ScriptedHandler: QueueHandler {
    enum Event: Sendable, Equatable {
        case settled(body: String, decision: DeliveryDecision, redelivered: Bool, failures: Int)
        case held(body: String)
        case waitingUntilReady
    }

    let events: AsyncStream<Event>.Continuation
    /// Fired while "PostgreSQL" is away: `hold` messages are held, `ready()` waits.
    let away: ConsumeStop<Void>
    let back: ConsumeStop<Void>
    /// Fired by a `pause` message, as the worker pauses while its models download.
    let pause: ConsumeStop<String>?

    func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        deliveries.map { delivery in
            let body = String(decoding: delivery.body, as: UTF8.self)
            let failures = DeliveryDecision.failures(in: delivery.properties)
            switch body {
            case "dead": return .deadLetter(reason: "refused: dead")
            case "retry": return failures < 2 ? .retry(failures: failures + 1) : .ack
            case "requeue": return delivery.redelivered ? .ack : .requeue
            case "hold":
                guard away.reason != nil, back.reason == nil else { return .ack }
                events.yield(.held(body: body))
                return .hold(reason: "PostgreSQL away")
            case "pause":
                guard !delivery.redelivered else { return .ack }
                pause?.fire("waiting for models")
                return .requeue
            default: return .ack
            }
        }
    }

    func ready() async throws {
        guard away.reason != nil, back.reason == nil else { return }
        events.yield(.waitingUntilReady)
        _ = await back.wait()
        try Task.checkCancellation()
    }

    func settled(_ deliveries: [AMQPDelivery], _ decisions: [DeliveryDecision], on channel: AMQPChannel) async {
        for (delivery, decision) in zip(deliveries, decisions) {
            events.yield(.settled(
                body: String(decoding: delivery.body, as: UTF8.self), decision: decision,
                redelivered: delivery.redelivered, failures: DeliveryDecision.failures(in: delivery.properties)))
        }
    }
}

/// A queue, an exchange and a dead-letter exchange of the test's own, on the shared broker.
struct ShellFixture {
    let amqp: AMQPClient
    let connection: AMQPConnection
    let queue = TestEnvironment.uniqueName("spotq_shell_q")
    let exchange = TestEnvironment.uniqueName("spotq_shell_x")
    let deadLetterExchange = TestEnvironment.uniqueName("spotq_shell_dlx")
    let deadQueue = TestEnvironment.uniqueName("spotq_shell_dead")
    static let logger: Logger = {
        var logger = Logger(label: "spotq.test.shell")
        logger.logLevel = .warning
        return logger
    }()

    static func with<T>(amqpURL: String? = nil, _ body: (ShellFixture) async throws -> T) async throws -> T {
        let configuration = AMQPConfiguration(url: try amqpURL ?? TestEnvironment.amqpURL())
        let connection = try await AMQPConnection.connect(configuration: configuration, logger: logger)
        let fixture = ShellFixture(amqp: AMQPClient(configuration: configuration, logger: logger), connection: connection)
        try await connection.withChannel { channel in
            try await channel.declareExchange(fixture.exchange, type: .topic, durable: false)
            try await channel.declareExchange(fixture.deadLetterExchange, type: .topic, durable: false)
            _ = try await channel.declareQueue(fixture.queue, durable: false)
            _ = try await channel.declareQueue(fixture.deadQueue, durable: false)
            try await channel.bindQueue(fixture.queue, exchange: fixture.exchange, routingKey: "#")
            try await channel.bindQueue(fixture.deadQueue, exchange: fixture.deadLetterExchange, routingKey: "#")
        }
        do {
            let result = try await body(fixture)
            await fixture.tearDown()
            return result
        } catch {
            await fixture.tearDown()
            throw error
        }
    }

    func tearDown() async {
        try? await connection.withChannel { channel in
            for queue in [queue, deadQueue] { _ = try await channel.deleteQueue(queue) }
            for exchange in [exchange, deadLetterExchange] { try await channel.deleteExchange(exchange) }
        }
        await connection.close()
        await amqp.close()
    }

    var configuration: QueueConsumerConfiguration {
        var configuration = QueueConsumerConfiguration(queue: queue, name: "shell test")
        configuration.deadLetterExchange = deadLetterExchange
        configuration.backoff = RetryBackoff(initial: .milliseconds(50), maximum: .milliseconds(200))
        return configuration
    }

    /// A consumer of the fixture's queue whose handler follows each message's script (acking
    /// plain ones), and the events it reports.
    func scriptedConsumer() -> (QueueConsumer<ScriptedHandler>, AsyncStream<ScriptedHandler.Event>) {
        let (events, continuation) = AsyncStream.makeStream(of: ScriptedHandler.Event.self)
        let handler = ScriptedHandler(events: continuation, away: ConsumeStop(), back: ConsumeStop(), pause: nil)
        return (QueueConsumer(configuration: configuration, amqp: amqp, handler: handler, logger: Self.logger), events)
    }

    func publish(_ body: String) async throws {
        try await connection.withChannel { channel in
            try await channel.publish(exchange: exchange, routingKey: "test.\(body)", body: Array(body.utf8))
        }
    }

    struct Counts: Equatable {
        var ready: Int
        var consumers: Int
    }

    /// Messages ready in `queue`, and its consumers.
    func counts(_ queue: String) async throws -> Counts {
        let info = try await connection.withChannel { try await $0.declareQueuePassive(queue) }
        return Counts(ready: info.messageCount, consumers: info.consumerCount)
    }

    /// Waits until `queue` shows `counts` (the broker requeues a closed channel's deliveries
    /// on its own time).
    func waitFor(_ queue: String, _ expected: Counts, within limit: Duration = .seconds(10)) async throws {
        try await eventually("\(queue) at \(expected)", timeout: limit) { try await counts(queue) == expected }
    }
}

/// Reads events until `count` match, or fails after `limit`.
func collect(
    _ events: AsyncStream<ScriptedHandler.Event>, _ count: Int, within limit: Duration = .seconds(20),
    where match: @escaping @Sendable (ScriptedHandler.Event) -> Bool = { _ in true }
) async throws -> [ScriptedHandler.Event] {
    try await withTimeout(limit, "\(count) handler events") {
        var seen: [ScriptedHandler.Event] = []
        for await event in events where match(event) {
            seen.append(event)
            if seen.count == count { break }
        }
        return seen
    }
}

@Suite("consumer shell: carrying out decisions on a real broker")
struct QueueConsumerTests {
    @Test func deadLettersRetriesRequeuesAndHolds_areCarriedOut_andNothingIsLeftUnacknowledged() async throws {
        try await ShellFixture.with { fixture in
            let (events, continuation) = AsyncStream.makeStream(of: ScriptedHandler.Event.self)
            let handler = ScriptedHandler(events: continuation, away: ConsumeStop(), back: ConsumeStop(), pause: nil)
            var configuration = fixture.configuration
            configuration.holdLimit = .milliseconds(600)
            let consumer = QueueConsumer(configuration: configuration, amqp: fixture.amqp, handler: handler, logger: ShellFixture.logger)
            let running = Task { try await consumer.consumeUntilCancelled() }
            defer { running.cancel() }
            let settled: @Sendable (ScriptedHandler.Event) -> Bool = { if case .settled = $0 { true } else { false } }

            try await fixture.publish("dead")
            #expect(try await collect(events, 1, where: settled) == [.settled(body: "dead", decision: .deadLetter(reason: "refused: dead"), redelivered: false, failures: 0)])
            let dead = try await withTimeout(.seconds(10), "the dead letter") { () -> AMQPDelivery in
                let channel = try await fixture.connection.openChannel()
                for try await delivery in try await channel.consume(queue: fixture.deadQueue) {
                    try await delivery.ack()
                    return delivery
                }
                throw QueueConsumerError(description: "the dead queue's consumer ended")
            }
            #expect(String(decoding: dead.body, as: UTF8.self) == "dead")
            #expect(dead.properties.headers?[BrokerNames.reasonHeader]?.stringValue == "refused: dead")
            #expect(dead.properties.headers?[BrokerNames.originQueueHeader]?.stringValue == fixture.queue)
            #expect(dead.properties.headers?[BrokerNames.originExchangeHeader]?.stringValue == fixture.exchange)

            try await fixture.publish("retry")
            #expect(try await collect(events, 3, where: settled) == [
                .settled(body: "retry", decision: .retry(failures: 1), redelivered: false, failures: 0),
                .settled(body: "retry", decision: .retry(failures: 2), redelivered: false, failures: 1),
                .settled(body: "retry", decision: .ack, redelivered: false, failures: 2),
            ])

            try await fixture.publish("requeue")
            #expect(try await collect(events, 2, where: settled) == [
                .settled(body: "requeue", decision: .requeue, redelivered: false, failures: 0),
                .settled(body: "requeue", decision: .ack, redelivered: true, failures: 0),
            ])

            // "PostgreSQL" goes away: the message is held, offered again, then handed back
            // (ready in the queue, not unacknowledged) while the handler is not ready.
            handler.away.fire(())
            try await fixture.publish("hold")
            let held = try await withTimeout(.seconds(20), "the hand-back") { () -> [ScriptedHandler.Event] in
                var seen: [ScriptedHandler.Event] = []
                for await event in events {
                    seen.append(event)
                    if event == .waitingUntilReady { break }
                }
                return seen
            }
            #expect(held.filter { $0 == .held(body: "hold") }.count >= 2)
            #expect(held.allSatisfy { $0 == .held(body: "hold") || $0 == .waitingUntilReady })
            try await fixture.waitFor(fixture.queue, .init(ready: 1, consumers: 0))
            handler.back.fire(())
            #expect(try await collect(events, 1, where: settled) == [.settled(body: "hold", decision: .ack, redelivered: true, failures: 0)])

            running.cancel()
            try await running.value
            try await fixture.waitFor(fixture.queue, .init(ready: 0, consumers: 0))
            #expect(try await fixture.counts(fixture.deadQueue) == .init(ready: 0, consumers: 0))
        }
    }

    @Test func aStopFromOutside_endsConsuming_andLeavesLaterMessagesQueued() async throws {
        try await ShellFixture.with { fixture in
            let (consumer, events) = fixture.scriptedConsumer()
            let notice = ConsumeStop<Void>()
            let stop = ConsumeStop<String>(watching: { await notice.wait() == nil ? nil : "terminating" })
            let consuming = Task { try await consumer.consume(until: stop) }
            try await fixture.publish("first")
            #expect(try await collect(events, 1) == [.settled(body: "first", decision: .ack, redelivered: false, failures: 0)])
            notice.fire(())
            #expect(try await withTimeout(.seconds(10), "the stop") { try await consuming.value } == "terminating")
            try await fixture.publish("second")
            try await fixture.waitFor(fixture.queue, .init(ready: 1, consumers: 0))
        }
    }

    @Test func aHandlerThatHandsBackAndPauses_getsNothingMore_untilItConsumesAgain() async throws {
        try await ShellFixture.with { fixture in
            let (events, continuation) = AsyncStream.makeStream(of: ScriptedHandler.Event.self)
            let pause = ConsumeStop<String>()
            let handler = ScriptedHandler(events: continuation, away: ConsumeStop(), back: ConsumeStop(), pause: pause)
            var configuration = fixture.configuration
            configuration.prefetch = 10
            let consumer = QueueConsumer(configuration: configuration, amqp: fixture.amqp, handler: handler, logger: ShellFixture.logger)
            for body in ["pause", "after-1", "after-2"] { try await fixture.publish(body) }
            let reason = try await withTimeout(.seconds(20), "the pause") { try await consumer.consume(until: pause) }
            #expect(reason == "waiting for models")
            #expect(try await collect(events, 1) == [.settled(body: "pause", decision: .requeue, redelivered: false, failures: 0)])
            try await fixture.waitFor(fixture.queue, .init(ready: 3, consumers: 0))

            // Consuming again (the models arrived) takes all three.
            let again = ConsumeStop<String>()
            let consuming = Task { try await consumer.consume(until: again) }
            let rest = try await collect(events, 3)
            #expect(Set(rest.compactMap { if case .settled(let body, _, _, _) = $0 { body } else { nil } }) == ["after-1", "after-2", "pause"])
            again.fire("done")
            #expect(try await consuming.value == "done")
        }
    }

    @Test func aQueueDeletedUnderTheConsumer_isConsumedAgainOnceItIsBack() async throws {
        try await ShellFixture.with { fixture in
            let (consumer, events) = fixture.scriptedConsumer()
            let stop = ConsumeStop<String>()
            let consuming = Task { try await consumer.consume(until: stop) }
            try await fixture.publish("before")
            #expect(try await collect(events, 1) == [.settled(body: "before", decision: .ack, redelivered: false, failures: 0)])

            // The broker cancels the consumer (its queue is gone); the shell consumes again on a
            // new channel, with backoff, once the queue is back.
            _ = try await fixture.connection.withChannel { try await $0.deleteQueue(fixture.queue) }
            try await fixture.connection.withChannel { channel in
                _ = try await channel.declareQueue(fixture.queue, durable: false)
                try await channel.bindQueue(fixture.queue, exchange: fixture.exchange, routingKey: "#")
            }
            try await fixture.publish("after")
            #expect(try await collect(events, 1) == [.settled(body: "after", decision: .ack, redelivered: false, failures: 0)])
            stop.fire("done")
            #expect(try await consuming.value == "done")
        }
    }

    @Test func aConnectionTheBrokerCloses_isReopened_andConsumingGoesOn() async throws {
        try await TemporaryVhost.with { amqpURL in
            try await ShellFixture.with(amqpURL: amqpURL) { fixture in
                let (consumer, events) = fixture.scriptedConsumer()
                let stop = ConsumeStop<String>()
                let consuming = Task { try await consumer.consume(until: stop) }
                try await fixture.publish("before")
                #expect(try await collect(events, 1) == [.settled(body: "before", decision: .ack, redelivered: false, failures: 0)])

                let vhost = String(try #require(URLComponents(string: amqpURL)?.path.dropFirst()))
                try await Shell.run(try TestEnvironment.value(of: "SPOTQ_RABBITMQCTL"), ["-q", "close_all_connections", "-p", vhost, "test: connection closed"])
                // A new connection of the test's own: the broker closed the fixture's too.
                let publisher = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: amqpURL), logger: ShellFixture.logger)
                try await publisher.withChannel { channel in
                    try await channel.publish(exchange: fixture.exchange, routingKey: "test.after", body: Array("after".utf8))
                }
                await publisher.close()
                #expect(try await collect(events, 1) == [.settled(body: "after", decision: .ack, redelivered: false, failures: 0)])
                stop.fire("done")
                #expect(try await consuming.value == "done")
            }
        }
    }

    @Test func asAService_aGracefulShutdownEndsConsuming_andLeavesLaterMessagesQueued() async throws {
        try await ShellFixture.with { fixture in
            let (consumer, events) = fixture.scriptedConsumer()
            let group = ServiceGroup(services: [consumer], logger: ShellFixture.logger)
            let running = Task { try await group.run() }
            try await fixture.publish("first")
            #expect(try await collect(events, 1) == [.settled(body: "first", decision: .ack, redelivered: false, failures: 0)])
            await group.triggerGracefulShutdown()
            try await withTimeout(.seconds(10), "the graceful shutdown") { try await running.value }
            try await fixture.publish("second")
            try await fixture.waitFor(fixture.queue, .init(ready: 1, consumers: 0))
        }
    }
}
