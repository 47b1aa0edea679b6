import AMQPClient
import Foundation
import SpotqCore

/// What a pod's `spotq worker` is told, all by environment (README, "The pod worker"). It
/// holds no database credentials: a pod talks to RabbitMQ, the server's HTTP API, and
/// ComfyUI only.
public struct WorkerConfiguration: Sendable {
    public var batchID: Int64
    public var serverURL: String
    public var uploadToken: String
    public var amqpURL: String
    /// The CA that signed the broker's certificate, as PEM text (SPOTQ_AMQP_CA_PEM): the
    /// provisioner sends it when the broker's CA is private, since a pod has no file of ours.
    /// Without it, SPOTQ_AMQP_CA_FILE, else the system's CAs.
    public var amqpCAPEM: String?
    /// Checks the planner's signature on each work message (SPOTQ_WORK_PUBLIC_KEY); unsigned or
    /// wrongly signed work is dead-lettered unrendered. nil checks nothing.
    public var workVerifier: WorkSignature.Verifier?
    public var comfyURL = "http://127.0.0.1:8188"
    public var workspace: URL
    /// Who this pod is, for events: provider name and the provider's pod id.
    public var provider = "devcloud"
    public var podID: String
    /// Shell command that must exit 0 on a usable GPU.
    /// The bootstrap's check (it exports its own as SPOTQ_GPU_CHECK): the driver, then a CUDA
    /// allocation through torch.
    public var gpuCheckCommand = #"nvidia-smi -L && python3 -c 'import torch, sys; torch.zeros(1).cuda(); sys.exit(0 if torch.cuda.is_available() else 1)'"#
    /// Unacknowledged work messages held at once.
    public var prefetch = 2
    /// Longest a delivery is held waiting for its models; then the consumer hands its
    /// deliveries back and waits for the download without holding any.
    public var assetWait: Duration = .seconds(20)
    /// Real failures (not reclaims) of one image before it is dead-lettered. Pod faults and
    /// models ComfyUI cannot load do not count.
    public var maxFailures = 3
    /// Pod faults in a row (ComfyUI unreachable, 5xx, a lost prompt, CUDA, a full disk…) after
    /// which the worker hands its work back, reports `pod.faulted` and exits 5, for the
    /// provisioner to replace the pod (SPOTQ_POD_FAULT_LIMIT).
    public var podFaultLimit = 3
    /// Pod faults one image may meet, on any pods, before it is dead-lettered
    /// (SPOTQ_MAX_POD_FAULTS): an image that makes every ComfyUI fail (out of memory at its
    /// size, say) would otherwise be handed around for ever, every pod tripping on it.
    public var maxPodFaults = 10
    /// The pause before the attempt after a pod fault, growing with the faults in a row.
    /// Capped at 30 s: ComfyUI coming back is noticed within that, and a dead one is asked
    /// once per pause, not in a tight loop.
    public var podFaultBackoff = RetryBackoff(initial: .seconds(1), maximum: .seconds(30))
    /// Longest a verified model may stay unlisted by ComfyUI (`GET /models/<folder>`) before
    /// the pod counts as not seeing its model folders (SPOTQ_MODEL_LIST_WAIT_SECONDS).
    public var modelListWait: Duration = .seconds(10)
    /// Longest ComfyUI may leave `/history` and `/queue` unanswered while an image is awaited.
    public var comfyUnreachableLimit: Duration = .seconds(30)
    /// ComfyUI's output folder (SPOTQ_COMFY_OUTPUT_DIR): each image is deleted from it once its
    /// upload was stored. nil deletes nothing.
    public var comfyOutputDirectory: URL?
    /// An idle queue for this long, with the server reporting no work left, ends the pod.
    public var idleExit: Duration = .seconds(30)
    /// AWS-style metadata base URL to poll for `spot/instance-action`; nil polls nothing.
    public var spotMetadataURL: String?
    /// How often the metadata service is asked (AWS recommends every 5 s).
    public var spotPollInterval: Duration = .seconds(5)
    /// How often the worker says it is alive (the provisioner replaces a pod silent for
    /// SPOTQ_POD_SILENT_SECONDS).
    public var heartbeatInterval: Duration = .seconds(60)
    /// Time allowed after SIGTERM to finish the current image (RunPod sends SIGKILL about
    /// 5 s later; the rest is for handing back, interrupting ComfyUI and leaving).
    public var terminationGrace: Duration = .seconds(3)
    /// Longest one image may take in ComfyUI.
    public var generationTimeout: Duration = .seconds(1800)
    /// Each upload attempt's limit; attempts go on while the pod lives.
    public var uploadAttemptTimeout: Duration = .seconds(120)
    /// Capped at 5 s: a pod waiting to upload holds its GPU idle, so it notices the server's
    /// return within seconds; a connection attempt every 5 s per pod costs the server nothing.
    public var uploadBackoff = RetryBackoff(initial: .milliseconds(500), maximum: .seconds(5))
    /// Where events go; only `spotq bench worker` changes it, to keep its events out of the
    /// operator's records.
    public var eventsExchange = BrokerNames.eventsExchange

    public init(batchID: Int64, serverURL: String, uploadToken: String, amqpURL: String, workspace: URL, podID: String) {
        self.batchID = batchID
        self.serverURL = serverURL
        self.uploadToken = uploadToken
        self.amqpURL = amqpURL
        self.workspace = workspace
        self.podID = podID
    }

    public static func from(_ settings: SettingsSource) throws -> WorkerConfiguration {
        func required(_ name: String, _ what: String) throws -> String {
            guard let value = settings.string(nil, env: name) else { throw ConfigurationError(message: "\(name) is not set: \(what)") }
            return value
        }
        guard let batch = Int64(try required("SPOTQ_BATCH_ID", "the batch this pod works on")), batch > 0 else {
            throw ConfigurationError(message: "SPOTQ_BATCH_ID must be a positive batch id")
        }
        var configuration = WorkerConfiguration(
            batchID: batch,
            serverURL: try required("SPOTQ_SERVER_URL", "the spotq server's HTTP address, e.g. https://spotq.example.com"),
            uploadToken: try required("SPOTQ_UPLOAD_TOKEN", "the batch's upload token"),
            amqpURL: try required("SPOTQ_AMQP_URL", "RabbitMQ's URL"),
            workspace: URL(fileURLWithPath: settings.string(nil, env: "SPOTQ_WORKSPACE") ?? "/workspace"),
            podID: settings.string(nil, env: "SPOTQ_POD_ID") ?? settings.string(nil, env: "RUNPOD_POD_ID") ?? ProcessInfo.processInfo.hostName)
        if let refusal = PlainHTTPPolicy.refusal(configuration.serverURL, variable: "SPOTQ_SERVER_URL") { throw ConfigurationError(message: refusal) }
        configuration.amqpCAPEM = settings.string(nil, env: "SPOTQ_AMQP_CA_PEM")
        if let pem = configuration.amqpCAPEM, !AMQPTLSSettings.isPEMCertificate(pem) {
            throw ConfigurationError(message: "SPOTQ_AMQP_CA_PEM is not a PEM certificate (it must hold -----BEGIN CERTIFICATE-----)")
        }
        if let key = settings.string(nil, env: "SPOTQ_WORK_PUBLIC_KEY") {
            guard let verifier = WorkSignature.Verifier(publicKeys: key) else {
                throw ConfigurationError(message: "SPOTQ_WORK_PUBLIC_KEY is not a comma-separated list of base64 Ed25519 public keys")
            }
            configuration.workVerifier = verifier
        }
        configuration.comfyURL = settings.string(nil, env: "SPOTQ_COMFY_URL") ?? configuration.comfyURL
        configuration.provider = settings.string(nil, env: "SPOTQ_POD_PROVIDER") ?? (settings.string(nil, env: "RUNPOD_POD_ID") != nil ? "runpod" : "devcloud")
        configuration.gpuCheckCommand = settings.string(nil, env: "SPOTQ_GPU_CHECK") ?? configuration.gpuCheckCommand
        configuration.prefetch = try settings.integer(nil, env: "SPOTQ_PREFETCH", default: 2, range: 1...100)
        configuration.assetWait = .seconds(try settings.integer(nil, env: "SPOTQ_ASSET_WAIT_SECONDS", default: 20, range: 1...600))
        configuration.maxFailures = try settings.integer(nil, env: "SPOTQ_MAX_FAILURES", default: 3, range: 1...100)
        configuration.podFaultLimit = try settings.integer(nil, env: "SPOTQ_POD_FAULT_LIMIT", default: 3, range: 1...100)
        configuration.maxPodFaults = try settings.integer(nil, env: "SPOTQ_MAX_POD_FAULTS", default: 10, range: 1...1_000)
        configuration.modelListWait = .seconds(try settings.integer(nil, env: "SPOTQ_MODEL_LIST_WAIT_SECONDS", default: 10, range: 1...600))
        configuration.comfyOutputDirectory = settings.string(nil, env: "SPOTQ_COMFY_OUTPUT_DIR").map { URL(fileURLWithPath: $0, isDirectory: true) }
        configuration.idleExit = .seconds(try settings.integer(nil, env: "SPOTQ_IDLE_EXIT_SECONDS", default: 30, range: 1...86_400))
        configuration.spotMetadataURL = settings.string(nil, env: "SPOTQ_SPOT_METADATA_URL")
        configuration.spotPollInterval = .milliseconds(try settings.integer(nil, env: "SPOTQ_SPOT_POLL_MS", default: 5_000, range: 50...600_000))
        configuration.heartbeatInterval = .seconds(try settings.integer(nil, env: "SPOTQ_HEARTBEAT_SECONDS", default: 60, range: 1...3_600))
        configuration.terminationGrace = .milliseconds(try settings.integer(nil, env: "SPOTQ_TERMINATION_GRACE_MS", default: 3_000, range: 0...600_000))
        return configuration
    }
}
