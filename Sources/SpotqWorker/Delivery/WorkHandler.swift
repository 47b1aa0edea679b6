import AMQPClient
import Logging
import SpotqBroker
import SpotqCore

/// The work loop's handler on the consumer shell: drives a ``WorkDeliveryMachine`` per
/// delivery with the I/O it asks for (waiting for models and the breaker's pause, generating
/// and uploading, publishing events) and returns its decision for the shell to carry out.
/// Every attempt's end is told to ``PodHealth``.
struct WorkHandler: QueueHandler {
    let configuration: WorkerConfiguration
    let availability: AssetAvailability
    let attempts: ImageAttempt
    let health: PodHealth
    let events: EventPublisher
    let notice: TerminationNotice
    let idle: IdleTimer
    /// This consume session's stop: fired to pause while models download.
    let stop: ConsumeStop<WorkLoop.Stop>
    let logger: Logger
    /// The settlement of the delivery in hand, between `decide` and `settled` (one
    /// delivery at a time).
    private let inHand = Locked<(tag: UInt64, item: Int64?, settlement: Settlement)?>(nil)

    init(
        configuration: WorkerConfiguration, availability: AssetAvailability, attempts: ImageAttempt, health: PodHealth, events: EventPublisher,
        notice: TerminationNotice, idle: IdleTimer, stop: ConsumeStop<WorkLoop.Stop>, logger: Logger
    ) {
        self.configuration = configuration
        self.availability = availability
        self.attempts = attempts
        self.health = health
        self.events = events
        self.notice = notice
        self.idle = idle
        self.stop = stop
        self.logger = logger
    }

    func decide(_ deliveries: [AMQPDelivery]) async -> [DeliveryDecision] {
        var decisions: [DeliveryDecision] = []
        for delivery in deliveries { decisions.append(await decide(delivery)) }
        return decisions
    }

    func decide(_ delivery: AMQPDelivery) async -> DeliveryDecision {
        idle.begin()
        defer { idle.end(); events.activity.waitingForWork() }
        var machine = WorkDeliveryMachine(
            failuresSoFar: DeliveryDecision.failures(in: delivery.properties), maxFailures: configuration.maxFailures,
            podFaultsSoFar: DeliveryDecision.podFaults(in: delivery.properties), maxPodFaults: configuration.maxPodFaults)
        var item: WorkItem? = nil
        var action: WorkDeliveryMachine.Action
        if notice.isSet {
            action = machine.handle(.noticed)
        } else {
            var read = WorkItem.read(delivery.body)
            if let verifier = configuration.workVerifier, let forged = verifier.refusal(
                queue: BrokerNames.batchQueue(configuration.batchID), body: delivery.body,
                signature: delivery.properties.headers?[WorkSignature.header]?.stringValue)
            {
                logger.warning("worker: refused work the planner did not sign; dead-lettered unrendered", metadata: [
                    "reason": "\(forged)", "user_id": "\(delivery.properties.userID ?? "-")",
                ])
                read = .failure(WorkDeliveryMachine.Unreadable(reason: forged))
            }
            item = try? read.get()
            action = machine.handle(.opened(read.map(\.order)))
        }
        while true {
            switch action {
            case .waitForModels(let models):
                events.activity.waitingForAsset(availability.firstPending(models))
                // Ready models wait out the breaker's pause after a pod fault, unless noticed.
                let state = try? await unlessNoticed(notice) { [availability, health, configuration] in
                    let state = await availability.wait(for: models, limit: configuration.assetWait)
                    if state == .ready { try await health.pauseBeforeAttempt() }
                    return state
                }
                action = machine.handle(state.map { .models($0) } ?? .noticed)
            case .attempt(let started):
                guard let item else { return .requeue }
                events.activity.generating(item: item.itemID)
                for event in started { await events.publish(event) }
                let result = await attempts.run(item)
                logger.debug("worker: item attempted", metadata: ["item": "\(item.itemID)", "result": "\(result)"])
                health.record(result)
                action = machine.handle(.attempted(result))
            case .settle(let settlement):
                if settlement.movesForward { events.activity.progressed() }
                for event in settlement.eventsBefore { await events.publish(event) }
                switch settlement.decision {
                case .deadLetter(let reason), .giveUp(_, _, let reason):
                    logger.warning("worker: dead-lettered a work message", metadata: ["reason": "\(reason)"])
                default:
                    break
                }
                if case .pauseUntilModels(let models) = settlement.followUp {
                    // Hold nothing while the models download.
                    stop.fire(.waitForModels(models))
                }
                inHand.withLock { $0 = (delivery.deliveryTag, item?.itemID, settlement) }
                return settlement.decision
            case .none:
                // The machine ignored an event it cannot take here; the delivery goes back.
                logger.error("worker: the delivery rules stopped without a decision; handing the delivery back", metadata: ["state": "\(machine.state)"])
                return .requeue
            }
        }
    }

    func settled(_ deliveries: [AMQPDelivery], _ decisions: [DeliveryDecision], on channel: AMQPChannel) async {
        for delivery in deliveries {
            let taken = inHand.withLock { inHand -> (item: Int64?, settlement: Settlement)? in
                guard let current = inHand, current.tag == delivery.deliveryTag else { return nil }
                inHand = nil
                return (current.item, current.settlement)
            }
            guard let (item, settlement) = taken else { continue }
            if case .markModelUnusable(let filename, let reason) = settlement.followUp {
                logger.error("worker: ComfyUI cannot load a verified model; the items needing it are dead-lettered", metadata: ["model": "\(filename)", "reason": "\(reason)"])
                availability.markFailed(filename, reason: reason)
                await events.publish(.assetFailed, detail: ["filename": .string(filename), "reason": .string(String(reason.prefix(1_000))), "stage": .string("load")])
            }
            if settlement.followUp == .interruptComfy {
                logger.info("worker: handed back the image in progress", metadata: ["item": "\(item.map(String.init) ?? "?")", "handed_back_after_ms": "\(notice.millisecondsSinceNotice())"])
                await attempts.comfy.interrupt()
            }
            for event in settlement.eventsAfter { await events.publish(event) }
        }
    }
}
