import AMQPClient
import Foundation
import Logging
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqStore

/// `spotq provisioner`: every interval, reconciles spotq's pods with the provider's list,
/// accrues their cost, and, when a fresh demand snapshot is at hand, sizes the fleet
/// (``FleetPlanner``) and carries out the actions: rent (spot bids, then the fallback),
/// resume, drain, terminate.
public actor Provisioner: Service {
    let configuration: ProvisionerConfiguration
    let provider: any CloudProvider
    let pods: PodStore
    let demand: LatestDemand
    let amqp: AMQPClient?
    /// Each pod's own broker user (SPOTQ_RABBITMQ_MANAGEMENT_URL); nil: pods share SPOTQ_POD_AMQP_URL's login.
    let brokerAccess: PodBrokerAccess?
    let logger: Logger
    /// Set once the provider answers that it has no spot API; said once, then the fallback is used.
    private(set) var spotUnsupported = false
    /// Said once per change: whether pods' events reach the database.
    private var eventsRecordedLastRound = true
    /// The last round that found pods' events not being recorded: silence counts from then.
    private var eventsUnrecordedAt: Date?
    /// Last rent failure per batch, so a failing rent is reported once, not every round.
    private var lastRentFailure: [Int64: String] = [:]
    /// Answers whether this provisioner holds the one-provisioner lock (taking it again after
    /// losing it, when free). A round runs only while it does.
    public var stillHoldsLock: (@Sendable () async -> Bool)?

    public func setLockCheck(_ check: @escaping @Sendable () async -> Bool) { stillHoldsLock = check }

    /// Said once per change: whether leftover broker users could be listed.
    private var brokerUsersFailure: String?

    public init(
        configuration: ProvisionerConfiguration, provider: any CloudProvider, pods: PodStore, demand: LatestDemand, amqp: AMQPClient?,
        brokerAccess: PodBrokerAccess? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.provider = provider
        self.pods = pods
        self.demand = demand
        self.amqp = amqp
        self.brokerAccess = brokerAccess
        self.logger = logger
    }

    public nonisolated func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let amqp {
                let consumer = demand.consumer(amqp: amqp)
                group.addTask {
                    do { try await consumer.consumeUntilCancelled() } catch {
                        self.logger.error("provisioner: stopped reading the demand queue", metadata: ["error": "\(error)"])
                    }
                }
            }
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    // Not holding it: another provisioner may be acting; this one does nothing.
                    if await self.stillHoldsLock?() ?? true { await self.round(now: Date()) }
                    // A graceful shutdown cancels the sleep: that ends the loop, not in an error.
                    try? await Task.sleep(for: .milliseconds(Int64(self.configuration.fleet.intervalSeconds * 1000)))
                }
            }
            group.cancelAll()
        }
    }

    /// One round; never throws (a failing provider or database is logged and retried next round).
    public func round(now: Date) async {
        do {
            try await reconcile(now: now)
            try await reconcileBrokerUsers()
            try await pods.accrue(now: now)
            guard let snapshot = await demand.fresh(maxAge: configuration.fleet.snapshotMaxAgeSeconds, now: now) else { return }
            let live = try await pods.live()
            var limits = configuration.fleet.limits
            if !(await eventsAreRecorded()) {
                // Pods' heartbeats are waiting in the broker, not in last_seen_at: none is silent
                // (or stalled: their progress is in those heartbeats too), and once the recorder
                // catches up (its prefetched events still being written while the queue already
                // looks empty) silence and stalls count from this round on.
                limits.silentAfterSeconds = .infinity
                limits.stallAfterSeconds = .infinity
                eventsUnrecordedAt = now
            }
            let planner = FleetPlanner(limits: limits)
            for action in planner.plan(demand: snapshot, pods: live.map(\.fleetPod), now: now, eventsRecordedSince: eventsUnrecordedAt) {
                try await carryOut(action, live: live)
            }
        } catch {
            logger.error("provisioner: this round failed; trying again next round", metadata: ["error": "\(error)"])
        }
    }

    /// Whether pods' events reach the database now: the recorder (`spotq server`'s events
    /// component) consumes and has no backlog. While it is down or catching up, pods' last
    /// word is older than what they said, and judging them silent would replace healthy pods.
    /// Without a broker to ask (tests driving rounds by hand), assumed so.
    func eventsAreRecorded() async -> Bool {
        guard let amqp else { return true }
        guard let connection = try? await amqp.connection(),
              let info = try? await QueueInspector.look(connection, at: [BrokerNames.eventsRecorderQueue])[BrokerNames.eventsRecorderQueue]
        else { return false }
        let recorded = info.consumerCount > 0 && info.messageCount == 0
        if recorded != eventsRecordedLastRound {
            eventsRecordedLastRound = recorded
            if recorded {
                logger.info("provisioner: pods' events are recorded again; silent pods are replaced again")
            } else {
                logger.warning("provisioner: pods' events are not being recorded (no recorder on \(BrokerNames.eventsRecorderQueue), or a backlog); not judging any pod silent meanwhile",
                               metadata: ["consumers": "\(info.consumerCount)", "backlog": "\(info.messageCount)"])
            }
        }
        return recorded
    }

    // MARK: Reconciling

    /// The provider's list is the truth about which pods exist and whether they run.
    func reconcile(now: Date) async throws {
        let listed: [ProviderPod]
        do {
            listed = try await provider.listPods()
        } catch {
            logger.warning("provisioner: could not list the provider's pods", metadata: ["error": "\(error)"])
            return
        }
        let byID = Dictionary(listed.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let live = try await pods.live()
        for pod in live {
            guard let providerID = pod.providerPodID else {
                // Written before a rental that never came back (a crash in between).
                if now.timeIntervalSince(pod.requestedAt) > 120 { try await ended(pod, reason: "never rented") }
                continue
            }
            guard let seen = byID[providerID], seen.status != .gone else {
                try await ended(pod, reason: "no longer listed by \(provider.name)")
                continue
            }
            if try await pods.providerStatus(pod.id, seen.status) {
                logger.warning("provisioner: pod \(providerID) was reclaimed", metadata: ["batch": "\(pod.batchID.map(String.init) ?? "-")", "detail": "\(seen.lastStatusChange ?? "")"])
            }
        }
        // Pods named like ours that spotq does not know cost money and do nothing: end them.
        let known = Set(live.compactMap(\.providerPodID))
        for orphan in listed where orphan.name.hasPrefix(configuration.fleet.namePrefix + "-") && !known.contains(orphan.id) && orphan.status != .gone {
            logger.warning("provisioner: terminating pod \(orphan.id) (\(orphan.name)), which spotq has no live record of")
            try await pods.alert(kind: "orphan", message: "terminated \(provider.name) pod \(orphan.id) (\(orphan.name)): spotq had no live record of it")
            try? await provider.terminate(podID: orphan.id)
        }
    }

    /// Pods' broker users with no live pod (a crash between making one and recording the
    /// pod's end, or a deletion that failed) are deleted, like orphaned pods.
    func reconcileBrokerUsers() async throws {
        guard let brokerAccess else { return }
        let live = Set(try await pods.live().compactMap(\.brokerUser))
        do {
            for user in try await brokerAccess.reconcile(livePodUsers: live) {
                logger.warning("provisioner: deleted broker user \(user), which belongs to no live pod")
            }
            if brokerUsersFailure != nil { logger.info("provisioner: broker users can be reconciled again") }
            brokerUsersFailure = nil
        } catch {
            let message = "\(error)"
            if brokerUsersFailure != message { logger.warning("provisioner: could not reconcile pods' broker users", metadata: ["error": "\(message)"]) }
            brokerUsersFailure = message
        }
    }

    /// Records a pod's end and revokes its broker user, which closes its connections. A
    /// revocation that fails is logged; reconciling deletes the user next round.
    func ended(_ pod: PodStore.PodRow, reason: String) async throws {
        try await pods.terminated(pod.id, reason: reason)
        guard let user = pod.brokerUser, let brokerAccess else { return }
        do {
            try await brokerAccess.revoke(user)
        } catch {
            logger.warning("provisioner: could not delete broker user \(user) of an ended pod; trying again next round", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Actions

    func carryOut(_ action: FleetAction, live: [PodStore.PodRow]) async throws {
        switch action {
        case .rent(let batch, let payload):
            try await rent(batch: batch, payloadBytes: payload)
        case .resume(let id):
            guard let pod = live.first(where: { $0.id == id }), let providerID = pod.providerPodID else { return }
            do {
                if pod.interruptible {
                    let bid = pod.bidUSDPerGPUHour ?? configuration.fleet.bids.baseUSDPerGPUHour
                    try await provider.bidResume(podID: providerID, bidPerGPU: bid, gpuCount: pod.gpuCount)
                } else {
                    try await provider.resume(podID: providerID, gpuCount: pod.gpuCount)
                }
                try await pods.resuming(id, bid: nil)
                logger.info("provisioner: resumed reclaimed pod \(providerID) (its volume keeps the models)")
            } catch {
                // The host's GPUs are gone (or no capacity at the bid): replace it.
                logger.warning("provisioner: could not resume pod \(providerID); replacing it", metadata: ["error": "\(error)"])
                try await pods.resuming(id, bid: nil)
                try await terminate(pod, reason: "could not be resumed: \(error)")
            }
        case .terminate(let id, let reason):
            guard let pod = live.first(where: { $0.id == id }) else { return }
            try await terminate(pod, reason: reason)
        case .replaceStalled(let id, let reason):
            guard let pod = live.first(where: { $0.id == id }) else { return }
            logger.warning("provisioner: pod \(pod.providerPodID ?? "#\(id)") is \(reason)", metadata: ["batch": "\(pod.batchID.map(String.init) ?? "-")"])
            // Raised once it is gone: a termination that failed is tried (and judged) again next round.
            guard try await terminate(pod, reason: reason) else { return }
            try await pods.alert(kind: "pod.stalled", message: "pod \(pod.providerPodID ?? "#\(id)") (batch \(pod.batchID.map(String.init) ?? "-")) \(reason)", pod: id)
        case .drain(let id, let reason):
            guard let pod = live.first(where: { $0.id == id }), let providerID = pod.providerPodID else { return }
            do {
                try await provider.stop(podID: providerID)
                try await pods.stopRequested(id)
                logger.info("provisioner: draining pod \(providerID): \(reason)")
            } catch {
                logger.warning("provisioner: could not stop pod \(providerID)", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Returns false when the provider could not terminate it (tried again next round).
    @discardableResult
    func terminate(_ pod: PodStore.PodRow, reason: String) async throws -> Bool {
        if let providerID = pod.providerPodID {
            do {
                try await provider.terminate(podID: providerID)
            } catch where error.kind == .notFound {
                // Already gone.
            } catch {
                logger.warning("provisioner: could not terminate pod \(providerID); trying again next round", metadata: ["error": "\(error)"])
                return false
            }
        }
        try await ended(pod, reason: reason)
        logger.info("provisioner: terminated pod \(pod.providerPodID ?? "#\(pod.id)"): \(reason)")
        return true
    }

    /// Rents one pod for `batch`: the GPU type and market by expected USD per image when
    /// prices are known; spot bids up the ladder; then the fallback. The pod's row (and its
    /// own broker user) exist before the provider is asked; a rental that fails removes both.
    func rent(batch: Int64, payloadBytes: Int64) async throws {
        let fleet = configuration.fleet
        // A pod verifies its work with the keys that signed its batch; none yet means the
        // planner has not published it, and there is nothing to work on.
        let workPublicKeys = try await pods.workPublicKeys(batch: batch)
        guard !workPublicKeys.isEmpty else {
            logger.info("provisioner: batch \(batch) has no signed work yet; renting for it later")
            return
        }
        let choice = await chooseGPU()
        let name = "\(fleet.namePrefix)-b\(batch)-\(UUID().uuidString.prefix(6).lowercased())"
        let volumeGB = fleet.template.volumeGB(payloadBytes: payloadBytes)
        // The pod's own upload token: only its hash is kept, and it dies with the pod.
        let uploadToken = BatchToken.makePodToken()
        let id = try await pods.insertRequested(PodStore.Request(
            batchID: batch, provider: provider.name, name: name, gpuType: choice.gpuType, gpuCount: fleet.template.gpuCount,
            interruptible: false, bidUSDPerGPUHour: nil, volumeGB: volumeGB, containerDiskGB: fleet.template.containerDiskGB,
            storageUSDPerGBMonth: fleet.volumeUSDPerGBMonth), brokerUserVhost: brokerAccess?.vhost, uploadTokenHash: BatchToken.hash(uploadToken))
        var amqpURL = configuration.podAMQPURL
        var brokerUser: String?
        if let brokerAccess {
            do {
                let granted = try await brokerAccess.grant(podRowID: id, batchID: batch)
                (amqpURL, brokerUser) = (granted.amqpURL, granted.user)
            } catch {
                try await pods.discardUnrented(id)
                report(batch: batch, "could not make the pod's own broker user: \(error)")
                return
            }
        }
        let request = PodRentRequest(
            name: name, gpuType: choice.gpuType, template: fleet.template, volumeGB: volumeGB,
            environment: configuration.podEnvironment(batchID: batch, amqpURL: amqpURL, uploadToken: uploadToken, workPublicKeys: workPublicKeys))
        guard let rental = try await rentPod(request, choice: choice, batch: batch) else {
            if let brokerUser { try? await brokerAccess?.revoke(brokerUser) }
            try await pods.discardUnrented(id)
            return
        }
        try await record(rental.pod, id: id, request: request, batch: batch, interruptible: rental.interruptible, bid: rental.bid)
    }

    /// Asks the provider: spot bids up the ladder (when spot was chosen), then the fallback.
    /// nil when no pod was rented (the reason is reported).
    func rentPod(_ request: PodRentRequest, choice: (gpuType: String, interruptible: Bool, alert: String?), batch: Int64) async throws
        -> (pod: ProviderPod, interruptible: Bool, bid: Double?)?
    {
        let fleet = configuration.fleet
        var lastError = ""
        if choice.interruptible && !spotUnsupported {
            for bid in fleet.bids.bids {
                do {
                    return (try await provider.rentSpot(request, bidPerGPU: bid), true, bid)
                } catch where error.kind == .noCapacity {
                    lastError = "no spot capacity at \(bid) USD/GPU/h: \(error.message)"
                } catch where error.kind == .spotUnsupported {
                    spotUnsupported = true
                    logger.error("provisioner: \(provider.name) offers no spot pods any more (\(error.message)); using the fallback '\(fleet.fallback.rawValue)' from now on")
                    try await pods.alert(kind: "spot.unsupported", message: "\(provider.name) has no spot API any more: \(error.message); fallback \(fleet.fallback.rawValue)")
                    break
                } catch {
                    report(batch: batch, "could not rent a pod: \(error)")
                    return nil
                }
            }
        }
        // Spot was not chosen (on-demand is cheaper per image, or spot passed the alert
        // multiple), or it failed: the fallback decides.
        let why: String
        var alert = true
        if !choice.interruptible && !spotUnsupported {
            why = choice.alert ?? "on-demand is cheaper per image at current prices"
            alert = choice.alert != nil
        } else if fleet.fallback == .onDemand {
            why = spotUnsupported ? "\(provider.name) has no spot market" : lastError
        } else {
            report(batch: batch, (spotUnsupported ? "\(provider.name) has no spot market" : lastError) + "; waiting (SPOTQ_SPOT_FALLBACK=wait)")
            return nil
        }
        do {
            let pod = try await provider.rentOnDemand(request)
            logger.warning("provisioner: rented pod \(pod.id) on-demand for batch \(batch): \(why)")
            if alert {
                try await pods.alert(kind: "on-demand", message: "batch \(batch): rented \(pod.id) on-demand (\(pod.costPerHour.map { "\($0) USD/h" } ?? "list price")): \(why)")
            }
            return (pod, false, nil)
        } catch {
            report(batch: batch, "\(lastError.isEmpty ? "" : lastError + "; ")on-demand failed too: \(error)")
            return nil
        }
    }

    func record(_ pod: ProviderPod, id: Int64, request: PodRentRequest, batch: Int64, interruptible: Bool, bid: Double?) async throws {
        let fleet = configuration.fleet
        let price = pod.costPerHour ?? (bid.map { $0 * Double(fleet.template.gpuCount) } ?? 0)
        try await pods.rented(id, providerPodID: pod.id, interruptible: interruptible, bid: bid, priceUSDPerHour: price)
        lastRentFailure[batch] = nil
        logger.info("provisioner: rented pod \(pod.id) for batch \(batch)", metadata: [
            "spot": "\(interruptible)", "bid": "\(bid.map { "\($0)" } ?? "-")", "usd_per_hour": "\(price)", "volume_gb": "\(request.volumeGB)",
        ])
    }

    func report(batch: Int64, _ message: String) {
        guard lastRentFailure[batch] != message else { return }
        lastRentFailure[batch] = message
        logger.warning("provisioner: no pod for batch \(batch): \(message)")
    }

    /// Price awareness: the cheapest expected USD per image among the configured GPU types
    /// at live prices; without prices, the first type on spot.
    func chooseGPU() async -> (gpuType: String, interruptible: Bool, alert: String?) {
        let fleet = configuration.fleet
        let first = fleet.candidates[0].gpuType
        guard let prices = try? await provider.prices(gpuTypes: fleet.candidates.map(\.gpuType), gpuCount: fleet.template.gpuCount), !prices.isEmpty else {
            return (first, true, nil)
        }
        let history = (try? await pods.history()) ?? PodStore.History(interruptionsPerHour: 0, podHours: 0, imagesPerHourByGPU: [:])
        let candidates = fleet.candidates.map { candidate in
            // Measured throughput wins once a GPU type has an hour of history.
            var candidate = candidate
            if let measured = history.imagesPerHourByGPU[candidate.gpuType], measured > 0 { candidate.imagesPerHour = measured }
            return candidate
        }
        // The operator's fallback rules the markets: with `wait`, never on-demand.
        let adjustedPrices = prices.map { price in
            var price = price
            if spotUnsupported { price.spotMinimumBid = nil }
            if fleet.fallback == .wait { price.onDemand = nil }
            return price
        }
        guard let decision = GPUChoice.choose(
            candidates: candidates, prices: adjustedPrices, baseBid: fleet.bids.baseUSDPerGPUHour, spotAlertMultiple: fleet.spotAlertMultiple,
            interruptionsPerHour: history.interruptionsPerHour, recoveryHours: configuration.recoverySeconds / 3600)
        else { return (first, true, nil) }
        return (decision.gpuType, decision.interruptible, decision.alert)
    }
}
