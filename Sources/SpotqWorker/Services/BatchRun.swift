import AMQPClient
import Logging
import ServiceLifecycle
import SpotqCore

/// The pod's run of its batch, as the worker group's main service: GPU check, manifest
/// (handed to the downloads), ComfyUI up, then the work loop until the batch is finished or
/// a termination notice is honoured, or the pod is found faulted (``PodHealth``: then its
/// work is handed back, `pod.faulted` reported, and the exit is 5). Its graceful shutdown
/// (SIGTERM or SIGINT, by the group) is a termination notice with SPOTQ_TERMINATION_GRACE_MS
/// of grace. It ends the group when it returns; its ``Worker/Exit`` is left in `exit`.
struct BatchRun: Service {
    let configuration: WorkerConfiguration
    let clients: WorkerClients
    let amqp: AMQPClient
    let events: EventPublisher
    let notice: TerminationNotice
    let downloads: Handoff<AssetSetup.Plan>
    let exit: Locked<Worker.Exit?>
    let logger: Logger

    /// The reason a graceful shutdown gives: the group does not say which signal it caught,
    /// and a pod hears SIGTERM (SIGINT is a person at a terminal).
    static let shutdownReason = "SIGTERM"

    func run() async throws {
        let result = try await withGracefulShutdownHandler {
            try await runBatch()
        } onGracefulShutdown: {
            notice.announce(reason: Self.shutdownReason, within: configuration.terminationGrace)
        }
        exit.withLock { $0 = result }
    }

    func runBatch() async throws -> Worker.Exit {
        await events.state(.starting)
        let check = GPUCheck(command: configuration.gpuCheckCommand)
        guard let outcome = try await unlessNoticed(notice, { await check.run() }) else { return await leave() }
        guard outcome.passed else {
            logger.error("worker: the GPU check failed; this pod is unusable and asks to be terminated", metadata: [
                "status": "\(outcome.status.map(String.init) ?? "not started")", "output": "\(outcome.output)",
            ])
            var detail: [String: JSONScalar] = ["command": .string(configuration.gpuCheckCommand), "output": .string(outcome.output)]
            if let status = outcome.status { detail["status"] = .number(Double(status)) }
            await events.state(.gpuFailed, detail: detail)
            return .gpuFailed
        }

        let api = ServerAPI(configuration: configuration, http: clients.server)
        let manifest: BatchManifest
        do {
            guard let fetched = try await unlessNoticed(notice, { try await api.manifest(until: notice) }) else { return await leave() }
            manifest = fetched
        } catch let refused as ServerAPI.Refused {
            logger.error("worker: the server refused this pod: \(refused)")
            return .refused
        } catch is CancellationError where notice.isSet {
            return await leave()
        }
        await events.state(.downloading, detail: ["assets": .number(Double(manifest.assets.count)), "bytes": .number(Double(manifest.payloadBytes))])
        let availability = AssetAvailability(manifest.assets.map(\.filename))
        let health = PodHealth(
            breaker: PodFaultBreaker(limit: configuration.podFaultLimit, backoff: configuration.podFaultBackoff),
            notice: notice, grace: configuration.terminationGrace, logger: logger)
        let listing = ComfyClient(baseURL: configuration.comfyURL, http: clients.downloads)
        downloads.give(AssetSetup.Plan(
            setup: AssetSetup(configuration: configuration, http: clients.downloads, comfy: listing, availability: availability, health: health, events: events, logger: logger),
            assets: manifest.assets))

        var client = ComfyClient(baseURL: configuration.comfyURL, http: clients.comfy)
        client.unreachableLimit = configuration.comfyUnreachableLimit
        let comfy = client
        do {
            guard try await unlessNoticed(notice, { try await comfy.waitUntilUp(limit: .seconds(600)) }) != nil else { return await leave(health) }
        } catch let failure as ComfyFailure {
            health.giveUp(failure.description)
            return await leave(health)
        }
        await events.state(.generating)
        let loop = WorkLoop(
            configuration: configuration, amqp: amqp, api: api, availability: availability,
            attempts: ImageAttempt(configuration: configuration, comfy: comfy, api: api, notice: notice, activity: events.activity, logger: logger),
            health: health, events: events, notice: notice, logger: logger)
        switch try await loop.run() {
        case .batchFinished:
            logger.info("worker: the batch has no work left; leaving")
            events.activity.draining()
            await events.state(.draining, detail: ["reason": .string("batch finished")])
            return .finished
        case .terminated:
            return await leave(health)
        }
    }

    /// Leaves for the notice, or, when the pod was found faulted, reports `pod.faulted` with
    /// the reason and asks to be replaced (exit 5); either way its work is back in the queue.
    func leave(_ health: PodHealth) async -> Worker.Exit {
        guard let fault = health.faultReason else { return await leave() }
        logger.error("worker: left a faulted pod; its work was handed back", metadata: ["reason": "\(fault)", "after_ms": "\(notice.millisecondsSinceNotice())"])
        await events.state(.faulted, detail: ["reason": .string(String(fault.prefix(2_000)))])
        return .podFaulted
    }

    /// Leaves for the termination notice: whatever this pod held is back in the queue.
    func leave() async -> Worker.Exit {
        let reason = notice.reason ?? Self.shutdownReason
        events.activity.draining()
        logger.info("worker: stopped for a termination notice (\(reason)); unfinished work was handed back", metadata: ["after_ms": "\(notice.millisecondsSinceNotice())"])
        await events.state(.draining, detail: ["reason": .string(reason)])
        return .finished
    }
}
