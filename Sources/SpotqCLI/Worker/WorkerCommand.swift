import ArgumentParser
import Foundation
import Logging
import SpotqCore
import SpotqWorker

/// `spotq worker`: what runs on a pod, configured by its environment.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a batch on this pod: GPU check, model downloads, ComfyUI, uploads (configured by SPOTQ_* environment).",
        discussion: """
            Needs SPOTQ_BATCH_ID, SPOTQ_SERVER_URL, SPOTQ_UPLOAD_TOKEN and SPOTQ_AMQP_URL; optional SPOTQ_COMFY_URL,
            SPOTQ_WORKSPACE, SPOTQ_POD_ID, SPOTQ_GPU_CHECK, SPOTQ_PREFETCH, SPOTQ_ASSET_WAIT_SECONDS,
            SPOTQ_MAX_FAILURES, SPOTQ_POD_FAULT_LIMIT, SPOTQ_MAX_POD_FAULTS, SPOTQ_MODEL_LIST_WAIT_SECONDS,
            SPOTQ_COMFY_OUTPUT_DIR, SPOTQ_IDLE_EXIT_SECONDS, SPOTQ_SPOT_METADATA_URL, SPOTQ_SPOT_POLL_MS,
            SPOTQ_HEARTBEAT_SECONDS, SPOTQ_TERMINATION_GRACE_MS (README, "The pod worker"). SIGTERM or SIGINT is a termination notice:
            unfinished work goes back to the queue within the grace. Exit status: 0 batch finished or termination
            honoured, 3 GPU check failed, 4 the server refused this pod's token, 5 pod faulted (ComfyUI unreachable
            or failing SPOTQ_POD_FAULT_LIMIT times in a row for reasons not the items', or not seeing the worker's
            models): its work was handed back and `pod.faulted` reported, for the provisioner to replace the pod.
            """
    )

    @Option(name: .customLong("log-level"), help: "trace … critical (env SPOTQ_LOG_LEVEL; default info).")
    var logLevel: String?

    func run() async throws {
        let settings = SettingsSource(environment: ProcessInfo.processInfo.environment)
        var logger = Logger(label: "spotq.worker")
        logger.logLevel = Logger.Level(rawValue: settings.string(logLevel, env: "SPOTQ_LOG_LEVEL") ?? "info") ?? .info
        let configuration = try WorkerConfiguration.from(settings)
        let exit = try await Worker(configuration: configuration, logger: logger).run()
        if exit != .finished { throw ExitCode(exit.rawValue) }
    }
}
