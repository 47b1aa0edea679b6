import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ProcessLauncher
import SpotqCore
import SpotqDevcloud

/// `spotq devcloud` (`cloud`): the whole local cloud in one process.
struct DevcloudCloudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud",
        abstract: "The local cloud: RunPod's GraphQL API with pods as local containers running the real pod bootstrap, a model host, and faults.",
        discussion: """
            Serves POST /graphql (RunPod's calls spotq uses; the key it accepts from SPOTQ_RUNPOD_API_KEY or SPOTQ_RUNPOD_API_KEY_FILE, never a flag) and the
            admin routes POST /devcloud/pods/{id}/reclaim, POST /devcloud/pods/{id}/kill, POST /devcloud/reclaim-one[?hard=true],
            POST /devcloud/crash-worker?during=image|download, GET /devcloud/summary on --port; the model host
            (GET /models/{name}) on --assets-port. Each rented pod runs its dockerArgs as RunPod would (spotq's
            default fetches the bootstrap from SPOTQ_SERVER_URL and runs it) with the pod's environment, its volume
            in <work-dir>/pods/<id>/volume (SPOTQ_WORKSPACE), its output in container.log, and the pod image's
            stand-ins from <work-dir>/image: nvidia-smi, torch's CUDA check, and a ComfyUI repository whose
            main.py runs `spotq devcloud comfy`.
            """
    )

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Port of the RunPod API and admin routes.") var port = 8070
    @Option(name: .customLong("assets-port"), help: "Port of the model host.") var assetsPort = 8090
    @OptionGroup var models: ModelHostOptions
    @Option(name: .customLong("work-dir"), help: "Where pods' folders go.") var workDirectory = ".spotq/devcloud"
    @Option(name: .customLong("spotq"), help: "The spotq executable the pods' ComfyUI stand-in runs (default: this one; the worker's binary comes from the spotq server).") var spotqExecutable: String?
    @Option(name: .customLong("min-bid"), help: "Lowest accepted spot bid, USD per GPU-hour.") var minimumBid = 0.13
    @Option(name: .customLong("on-demand-price"), help: "On-demand price, USD per GPU-hour.") var onDemandPrice = 0.25
    @Option(help: "GPUs for rent in all.") var stock = 8
    @Flag(name: .customLong("no-spot"), help: "Answer the spot mutations as RunPod's schema without them does.") var noSpot = false
    @Option(name: .customLong("gpu-failure-rate"), help: "Chance a pod's GPU check fails.") var gpuFailureRate = 0.07
    @Option(name: .customLong("break-gpu"), help: "Break the GPU of the Nth rental (1-based; repeatable).") var brokenRentals: [Int] = []
    @Option(name: .customLong("start-seconds"), help: "Seconds before a pod's container is up.") var startSeconds = 1.0
    @Option(name: .customLong("failing-start-rate"), help: "Chance a pod never starts.") var failingStartRate = 0.0
    @Option(name: .customLong("resume-failure-rate"), help: "Chance a resume finds no free GPU.") var resumeFailureRate = 0.0
    @Option(name: .customLong("reclaim-grace"), help: "Seconds between a reclaim's SIGTERM and SIGKILL.") var reclaimGrace = 5.0
    @Option(name: .customLong("reclaim-every"), help: "Mean seconds between random reclaims (0: none).") var reclaimEvery = 0.0
    @Option(name: .customLong("seconds-per-image"), help: "Each pod's ComfyUI time per image.") var secondsPerImage = 1.0
    @Option(name: .customLong("worker-env"), help: "KEY=VALUE added to every worker's environment (repeatable).") var workerEnvironment: [String] = []
    @Option(help: "Seed of the fault dice.") var seed: UInt64 = 1

    func run() async throws {
        var configuredLogger = Logger(label: "spotq.devcloud")
        configuredLogger.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["SPOTQ_LOG_LEVEL"] ?? "info") ?? .info
        let logger = configuredLogger
        // A key on a command line is visible to every user of the machine: environment or file only.
        guard let key = ProcessInfo.processInfo.environment["SPOTQ_RUNPOD_API_KEY"], !key.isEmpty else {
            throw ValidationError("devcloud needs an API key to accept: set SPOTQ_RUNPOD_API_KEY (or SPOTQ_RUNPOD_API_KEY_FILE)")
        }
        let executable = spotqExecutable ?? Self.currentExecutable()
        var configuration = DevcloudCloud.Configuration(
            apiKey: key, root: URL(fileURLWithPath: workDirectory, isDirectory: true).standardizedFileURL, spotqExecutable: executable)
        configuration.minimumBid = minimumBid
        configuration.onDemandPrice = onDemandPrice
        configuration.stock = stock
        configuration.spotAvailable = !noSpot
        configuration.gpuFailureRate = gpuFailureRate
        configuration.brokenGPURentals = Set(brokenRentals)
        configuration.startSeconds = startSeconds
        configuration.failingStartRate = failingStartRate
        configuration.resumeFailureRate = resumeFailureRate
        configuration.reclaimGraceSeconds = reclaimGrace
        configuration.reclaimEverySeconds = reclaimEvery > 0 ? reclaimEvery : nil
        configuration.secondsPerImage = secondsPerImage
        configuration.randomSeed = seed
        for pair in workerEnvironment {
            guard let equals = pair.firstIndex(of: "=") else { throw ValidationError("--worker-env wants KEY=VALUE, got '\(pair)'") }
            configuration.workerEnvironment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        try FileManager.default.createDirectory(at: configuration.root, withIntermediateDirectories: true)
        let cloud = try DevcloudCloud(configuration: configuration, logger: logger)
        let assetServer = DevcloudAssetServer(configuration: models.configuration, logger: logger)
        let api = DevcloudServer.makeApplication(host: host, port: port, logger: logger, register: { cloud.register(on: $0) }) { port in
            logger.info("devcloud: RunPod API on http://\(host):\(port)/graphql")
        }
        let modelHost = DevcloudServer.makeApplication(host: host, port: assetsPort, logger: logger, register: { assetServer.register(on: $0) }) { port in
            logger.info("devcloud: model host on http://\(host):\(port)/models/")
        }
        await cloud.startChaos()
        // SIGTERM/SIGINT end the servers; then every pod's worker is stopped.
        let signals = TerminationSignals()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await api.run() }
            group.addTask { try await modelHost.run() }
            group.addTask {
                await signals.wait()
                throw CancellationError()
            }
            do {
                try await group.next()
            } catch is CancellationError {
            }
            group.cancelAll()
        }
        await cloud.shutdown()
        logger.info("devcloud: stopped")
    }

    static func currentExecutable() -> String {
        let path = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        return FileManager.default.isExecutableFile(atPath: path) ? path : CommandLine.arguments[0]
    }
}
