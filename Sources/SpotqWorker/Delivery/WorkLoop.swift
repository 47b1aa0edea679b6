import AMQPClient
import Logging
import SpotqBroker
import SpotqCore

/// Consumes the batch's queue on the consumer shell, one delivery at a time through
/// ``WorkHandler``, until a termination notice or the batch is finished; in between it stops
/// consuming (holding nothing) while the models a delivery needs download.
struct WorkLoop: Sendable {
    let configuration: WorkerConfiguration
    let amqp: AMQPClient
    let api: ServerAPI
    let availability: AssetAvailability
    let attempts: ImageAttempt
    let health: PodHealth
    let events: EventPublisher
    let notice: TerminationNotice
    let logger: Logger
    let idle = IdleTimer()

    enum Outcome: Sendable, Equatable {
        case batchFinished
        case terminated(String)
    }

    /// Why one consume session ended.
    enum Stop: Sendable, Equatable {
        case terminating
        case batchFinished
        /// A delivery was handed back because these models are still downloading.
        case waitForModels([String])
    }

    var consumerConfiguration: QueueConsumerConfiguration {
        var consumer = QueueConsumerConfiguration(queue: BrokerNames.batchQueue(configuration.batchID), name: "worker")
        consumer.prefetch = UInt16(configuration.prefetch)
        consumer.batchSize = 1
        // The only exchanges toward queues a pod's broker user may write to, each limited to
        // its batch's routing key (PodBrokerGrant).
        consumer.retryExchange = BrokerNames.podRetryExchange
        consumer.deadLetterExchange = BrokerNames.podDeadLetterExchange
        return consumer
    }

    /// Rethrows what reconnecting cannot fix (the shell's judgement) and cancellation.
    func run() async throws -> Outcome {
        while true {
            if let reason = notice.reason { return .terminated(reason) }
            idle.restart()
            events.activity.waitingForWork()
            let stop = ConsumeStop<Stop>(watching: [
                {
                    await notice.wait()
                    return Task.isCancelled ? nil : .terminating
                },
                { await batchFinished() },
            ])
            let handler = WorkHandler(
                configuration: configuration, availability: availability, attempts: attempts, health: health, events: events,
                notice: notice, idle: idle, stop: stop, logger: logger)
            let consumer = QueueConsumer(configuration: consumerConfiguration, amqp: amqp, handler: handler, logger: logger)
            switch try await consumer.consume(until: stop) {
            case .terminating:
                return .terminated(notice.reason ?? "termination notice")
            case .batchFinished:
                return .batchFinished
            case .waitForModels(let models):
                // Nothing is held while the models download; a notice ends the wait.
                events.activity.waitingForAsset(availability.firstPending(models))
                _ = try await unlessNoticed(notice) { await availability.settled(models) }
            }
        }
    }

    /// Returns `.batchFinished` once the consumer has been idle for SPOTQ_IDLE_EXIT_SECONDS
    /// and the server says no item is left (only the server knows: another pod may hold the
    /// rest); nil when cancelled. Asked again after each further idle period.
    func batchFinished() async -> Stop? {
        while true {
            do {
                try await idle.idle(for: configuration.idleExit)
            } catch {
                return nil
            }
            if await api.remaining() == 0 { return .batchFinished }
            if Task.isCancelled { return nil }
            idle.restart()
        }
    }
}
