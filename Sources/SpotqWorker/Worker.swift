import AMQPClient
import CurlClient
import Foundation
import Logging
import SpotqBroker
import SpotqCore
import SpotqBundle

/// `spotq worker`: what runs on every pod. GPU check, manifest, models downloaded in the
/// manifest's order (resumable, verified, announced with `asset.ready`), then one work
/// message at a time: ComfyUI generates, the bundle is uploaded with retries, and the
/// message is acked only after the server answered 2xx. See README, "The pod worker".
public struct Worker: Sendable {
    public let configuration: WorkerConfiguration
    public let logger: Logger

    public init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// How the worker ended; the process exit code.
    public enum Exit: Int32, Sendable {
        /// The batch is finished, or a termination notice was honoured.
        case finished = 0
        case gpuFailed = 3
        case refused = 4
    }

    public func run() async throws -> Exit {
        let notice = TerminationNotice()
        let signals = SignalWatcher()
        signals.start(notice: notice, grace: configuration.terminationGrace)
        defer { signals.stop() }
        let clients = try Clients(logger: logger)
        defer { clients.shutdown() }
        let poller = configuration.spotMetadataURL.map { base in
            Task {
                var poller = SpotNoticePoller(baseURL: base, http: clients.metadata, logger: logger)
                poller.interval = configuration.spotPollInterval
                await poller.watch(notice: notice)
            }
        }
        defer { poller?.cancel() }
        let amqp = AMQPClient(configuration: AMQPConfiguration(url: configuration.amqpURL, connectionName: "spotq worker \(configuration.podID)"), logger: logger)
        do {
            let exit = try await run(clients: clients, amqp: amqp, notice: notice)
            await amqp.close()
            return exit
        } catch {
            await amqp.close()
            throw error
        }
    }

    /// One HTTP client per independent stream of calls: a client runs one transfer at a
    /// time, and a model download must never hold up an upload or a ComfyUI call.
    struct Clients: Sendable {
        let downloads: HTTPClient
        let server: HTTPClient
        let comfy: HTTPClient
        let metadata: HTTPClient

        init(logger: Logger) throws {
            downloads = try HTTPClient(logger: logger, name: "spotq-downloads")
            server = try HTTPClient(logger: logger, name: "spotq-server-api")
            comfy = try HTTPClient(logger: logger, name: "spotq-comfy")
            metadata = try HTTPClient(logger: logger, name: "spotq-metadata")
        }

        func shutdown() {
            for client in [downloads, server, comfy, metadata] { client.shutdown() }
        }
    }

    func run(clients: Clients, amqp: AMQPClient, notice: TerminationNotice) async throws -> Exit {
        let events = EventPublisher(
            amqp: amqp, exchange: configuration.eventsExchange, batchID: configuration.batchID,
            pod: SpotqEvent.Pod(provider: configuration.provider, id: configuration.podID), logger: logger)
        await events.state(.starting)
        // Signs of life for the provisioner, whatever the worker is busy with.
        let interval = configuration.heartbeatInterval
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled else { return }
                await events.publish(.heartbeat)
            }
        }
        defer { heartbeat.cancel() }

        guard GPUCheck.passes(configuration.gpuCheckCommand, logger: logger) else {
            logger.error("worker: the GPU check failed; this pod is unusable and asks to be terminated")
            await events.state(.gpuFailed, detail: ["command": .string(configuration.gpuCheckCommand)])
            return .gpuFailed
        }

        let api = ServerAPI(configuration: configuration, http: clients.server)
        let manifest: BatchManifest
        do {
            manifest = try await api.manifest(until: notice)
        } catch let refused as ServerAPI.Refused {
            logger.error("worker: the server refused this pod: \(refused)")
            return .refused
        }
        await events.state(.downloading, detail: ["assets": .number(Double(manifest.assets.count)), "bytes": .number(Double(manifest.payloadBytes))])
        let availability = AssetAvailability(manifest.assets.map(\.filename))
        let setup = AssetSetup(configuration: configuration, http: clients.downloads, availability: availability, events: events, logger: logger)
        let downloads = Task { await setup.downloadAll(manifest.assets, notice: notice) }
        defer { downloads.cancel() }

        let comfy = ComfyClient(baseURL: configuration.comfyURL, http: clients.comfy)
        try await comfy.waitUntilUp(limit: .seconds(600))
        await events.state(.generating)
        let loop = WorkLoop(
            configuration: configuration, amqp: amqp, comfy: comfy, api: api, availability: availability,
            events: events, notice: notice, logger: logger)
        let outcome = try await loop.run()
        switch outcome {
        case .batchFinished:
            logger.info("worker: the batch has no work left; leaving")
            await events.state(.draining, detail: ["reason": .string("batch finished")])
        case .terminated(let reason):
            let after = await notice.millisecondsSinceNotice()
            logger.info("worker: stopped for a termination notice (\(reason)); unfinished work was handed back", metadata: ["after_ms": "\(after)"])
            await events.state(.draining, detail: ["reason": .string(reason)])
        }
        return .finished
    }
}

/// Runs the configured GPU check (`SPOTQ_GPU_CHECK`) through the shell.
enum GPUCheck {
    static func passes(_ command: String, logger: Logger) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            logger.error("worker: could not run the GPU check", metadata: ["error": "\(error)"])
            return false
        }
    }
}
