import AMQPClient
import Logging
import ServiceLifecycle
import SpotqCore

/// One queue's consumer as a swift-service-lifecycle `Service`: owns the channel and its QoS,
/// reconnects with backoff, hands deliveries to its ``QueueHandler`` and carries out the
/// decisions (ack, requeue, dead letter, retry copy, hold).
///
/// - A dead letter or retry copy is published with a confirm, and only then is its original
///   acked; a group's copies go out in one `publishBatch` and all must be confirmed before
///   any of the group is acked (else the channel closes and the group goes back to the queue).
/// - Held deliveries stay unacknowledged and are offered again after a backoff, for at most
///   the hold limit; then the channel is closed (everything in hand goes back to the queue)
///   and the consumer waits for the handler's `ready()` before consuming again.
/// - A lost channel or connection is reopened with backoff; errors reconnecting cannot fix
///   (``QueueConsumerConfiguration/isPermanent(_:)``) are thrown.
public struct QueueConsumer<Handler: QueueHandler>: Service {
    public typealias Configuration = QueueConsumerConfiguration

    public let configuration: Configuration
    public let amqp: AMQPClient
    public let handler: Handler
    public let logger: Logger

    public init(configuration: Configuration, amqp: AMQPClient, handler: Handler, logger: Logger) {
        self.configuration = configuration
        self.amqp = amqp
        self.handler = handler
        self.logger = logger
    }

    /// Consumes until graceful shutdown (the group in hand is finished first) or cancellation.
    public func run() async throws {
        let shutdown = ConsumeStop<Void>(watching: {
            do { try await gracefulShutdown() } catch { return nil }
            return ()
        })
        do {
            try await consume(until: shutdown)
        } catch is CancellationError {}
    }

    /// Consumes until the task is cancelled, then returns.
    public func consumeUntilCancelled() async throws {
        do {
            try await consume(until: ConsumeStop<Void>())
        } catch is CancellationError {}
    }

    /// Consumes, reconnecting as needed, until `stop` fires; returns its reason. Deliveries
    /// received but not handed to the handler go back to the queue. Throws `CancellationError`
    /// when the task is cancelled (unacknowledged deliveries go back to the queue) and the
    /// errors reconnecting cannot fix.
    @discardableResult
    public func consume<Reason: Sendable>(until stop: ConsumeStop<Reason>) async throws -> Reason {
        try await withThrowingTaskGroup(of: Void.self) { watches in
            for watch in stop.watches {
                watches.addTask { if let reason = await watch() { stop.fire(reason) } }
            }
            let reason = try await consumeReconnecting(until: stop)
            watches.cancelAll()
            return reason
        }
    }

    /// How one channel's consumption ended, short of an error.
    enum ChannelEnd<Reason: Sendable> {
        case stopped(Reason)
        /// Held past the hold limit: the channel was closed with the deliveries in hand.
        case handedBack(count: Int, reason: String)
        /// The delivery sequence ended without a stop.
        case ended
    }

    func consumeReconnecting<Reason: Sendable>(until stop: ConsumeStop<Reason>) async throws -> Reason {
        let name = configuration.name
        var failures = 0
        while true {
            try Task.checkCancellation()
            if let reason = stop.reason { return reason }
            do {
                guard try await waitUntilReady(stop) else { continue }
                switch try await consumeOnChannel(until: stop, failures: &failures) {
                case .stopped(let reason):
                    return reason
                case .handedBack(let count, let reason):
                    logger.warning("\(name): handed \(count) held messages back to the queue; waiting until it can work again", metadata: ["reason": "\(reason)"])
                case .ended:
                    failures += 1
                    try await pause(configuration.backoff.delay(afterFailures: failures), unless: stop)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                if Self.isPermanent(error) {
                    logger.error("\(name): consumer stopped for good", metadata: ["error": "\(error)"])
                    throw error
                }
                failures += 1
                let delay = configuration.backoff.delay(afterFailures: failures)
                logger.warning("\(name): consumer stopped; starting again", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try await pause(delay, unless: stop)
            }
        }
    }

    static func isPermanent(_ error: any Error) -> Bool { Configuration.isPermanent(error) }

    /// Calls the handler's `ready()` until it returns; false if the stop fired first.
    func waitUntilReady<Reason: Sendable>(_ stop: ConsumeStop<Reason>) async throws -> Bool {
        var failures = 0
        while true {
            do {
                return try await unlessStopped(stop) { try await handler.ready() } != nil
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failures += 1
                logger.warning("\(configuration.name): not ready to consume", metadata: ["error": "\(error)"])
                try await pause(configuration.backoff.delay(afterFailures: failures), unless: stop)
                if stop.reason != nil { return false }
            }
        }
    }

    func consumeOnChannel<Reason: Sendable>(until stop: ConsumeStop<Reason>, failures: inout Int) async throws -> ChannelEnd<Reason> {
        let channel = try await amqp.connection().openChannel()
        do {
            try await channel.qos(prefetchCount: configuration.prefetch)
            let consumer = try await channel.consume(queue: configuration.queue)
            logger.info("\(configuration.name): consuming", metadata: ["queue": "\(configuration.queue)", "consumer": "\(consumer.tag)"])
            failures = 0
            let end = try await withThrowingTaskGroup(of: Void.self) { group in
                // A stop ends the delivery sequence; deliveries not handed out are requeued.
                group.addTask { if await stop.wait() != nil { await consumer.cancel() } }
                let end = try await consumeDeliveries(of: consumer, on: channel, until: stop)
                group.cancelAll()
                return end
            }
            // Closing the channel hands every unacknowledged delivery back to the queue.
            try? await channel.close()
            return end
        } catch {
            try? await channel.close()
            throw error
        }
    }

    func consumeDeliveries<Reason: Sendable>(of consumer: AMQPConsumer, on channel: AMQPChannel, until stop: ConsumeStop<Reason>) async throws -> ChannelEnd<Reason> {
        var deliveries = consumer.makeAsyncIterator()
        while let group = try await deliveries.nextBatch(max: max(configuration.batchSize, 1)) {
            if let reason = stop.reason {
                for delivery in group { try await delivery.nack(requeue: true) }
                return .stopped(reason)
            }
            if let end = try await settle(group, on: channel, until: stop) { return end }
            if let reason = stop.reason { return .stopped(reason) }
        }
        if let reason = stop.reason { return .stopped(reason) }
        return .ended
    }

    /// Decides and carries out one group, holding what the handler holds; nil when all of it
    /// was settled.
    func settle<Reason: Sendable>(_ group: [AMQPDelivery], on channel: AMQPChannel, until stop: ConsumeStop<Reason>) async throws -> ChannelEnd<Reason>? {
        let name = configuration.name
        var inHand = group
        var holds = 0
        let started = ContinuousClock.now
        while true {
            let decisions = await handler.decide(inHand)
            guard decisions.count == inHand.count else {
                throw QueueConsumerError(description: "\(name): the handler returned \(decisions.count) decisions for \(inHand.count) deliveries")
            }
            let plan = SettlementPlan(
                messages: inHand.map(ReceivedMessage.init), decisions: decisions,
                queue: configuration.queue, deadLetterExchange: configuration.deadLetterExchange,
                retryExchange: configuration.retryExchange)
            try await carryOut(plan, for: inHand, on: channel)
            let settled = plan.settled
            if !settled.isEmpty {
                await handler.settled(settled.map { inHand[$0] }, settled.map { decisions[$0] }, on: channel)
            }
            let held = plan.held
            guard !held.isEmpty else {
                if holds > 0 { logger.info("\(name): held messages settled", metadata: ["held_for": "\(ContinuousClock.now - started)"]) }
                return nil
            }
            holds += 1
            let reason = plan.holdReason ?? "held"
            switch configuration.holdPolicy.next(afterHolds: holds, elapsed: ContinuousClock.now - started) {
            case .handBack:
                return .handedBack(count: held.count, reason: reason)
            case .retry(let delay):
                if holds == 1 {
                    logger.warning("\(name): holding \(held.count) messages unacknowledged and retrying", metadata: ["reason": "\(reason)"])
                }
                inHand = held.map { inHand[$0] }
                if try await unlessStopped(stop, { try await Task.sleep(for: delay) }) == nil, let why = stop.reason {
                    for delivery in inHand { try await delivery.nack(requeue: true) }
                    return .stopped(why)
                }
            }
        }
    }

    /// Publishes the plan's copies (all confirmed, or it throws and nothing is acked), then
    /// acks and requeues.
    func carryOut(_ plan: SettlementPlan, for deliveries: [AMQPDelivery], on channel: AMQPChannel) async throws {
        if !plan.publishes.isEmpty {
            let outcome = try await channel.publishBatch(plan.publishes)
            guard outcome.allConfirmed else {
                let returned = outcome.returned.first
                throw AMQPError(
                    code: returned == nil ? .publishNacked : .publishReturned,
                    message: "the broker did not confirm \(outcome.count - outcome.confirmedCount) of \(outcome.count) dead letters and retry copies; their messages stay queued",
                    replyCode: returned?.replyCode, replyText: returned?.replyText)
            }
        }
        for (delivery, action) in zip(deliveries, plan.actions) {
            switch action {
            case .ack: try await delivery.ack()
            case .requeue: try await delivery.nack(requeue: true)
            case .hold: continue
            }
        }
    }

    /// Waits `delay`, cut short by the stop.
    func pause<Reason: Sendable>(_ delay: Duration, unless stop: ConsumeStop<Reason>) async throws {
        _ = try await unlessStopped(stop) { try await Task.sleep(for: delay) }
    }
}

/// Runs `operation` until it returns or `stop` fires; nil when the stop fired first (the
/// operation is then cancelled).
func unlessStopped<Reason: Sendable, T: Sendable>(_ stop: ConsumeStop<Reason>, _ operation: @escaping @Sendable () async throws -> T) async throws -> T? {
    if stop.reason != nil { return nil }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            guard await stop.wait() != nil else { throw CancellationError() }
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}
