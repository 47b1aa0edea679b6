import Foundation

/// How pods are rented (RunPod's fields; the seed's values by default) and how the fleet is
/// sized. From `SPOTQ_*` settings; see README, "Provisioner".
public struct FleetSettings: Sendable {
    public var limits = FleetPlanner.Limits()
    public var bids = BidLadder()
    public var fallback = SpotFallback.wait
    /// Spot above this multiple of the base bid is not used (on-demand, with an alert).
    public var spotAlertMultiple = 3.0
    public var template = PodTemplate()
    /// GPU types to choose from, with images per hour (seed: A4000 at 257).
    public var candidates = [GPUChoice.Candidate(gpuType: "NVIDIA RTX A4000", imagesPerHour: 257)]
    public var volumeUSDPerGBMonth = 0.10
    /// How often the provisioner looks (snapshot, provider, actions, costs).
    public var intervalSeconds = 15.0
    /// A demand snapshot older than this is stale: dropped, not acted on.
    public var snapshotMaxAgeSeconds = 120.0
    /// Names of spotq's pods start with this; others at the provider are never touched.
    public var namePrefix = "spotq"

    public init() {}

    /// What a pod is rented with.
    public struct PodTemplate: Sendable, Equatable {
        public var imageName = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
        public var cloudType = "ALL"
        public var gpuCount = 1
        public var containerDiskGB = 1
        /// Added to the batch's payload for the volume (the seed's toolchain overhead).
        public var extraVolumeGB = 11
        public var volumeMountPath = "/workspace"
        public var minDownloadMbps = 1576
        /// None by default: ComfyUI has no authentication, and a published port lets anyone who
        /// knows the pod's id read its prompts and images and submit workflows.
        public var ports = ""
        /// The container's command. The default fetches the pod bootstrap from the spotq server
        /// (`$SPOTQ_SERVER_URL/v1/pod/bootstrap.sh`), refuses it unless its SHA-256 is the one
        /// the provisioner pinned in SPOTQ_BOOTSTRAP_SHA256, and execs it, so the bootstrap
        /// receives the container's SIGTERM itself and ends in `sleep infinity` (seed: a pod
        /// whose command ends restarts in a loop). One of your own must end in `sleep infinity`.
        public var dockerArgs = PodTemplate.bootstrapDockerArgs

        /// What the pod bootstrap installs, passed to pods when set here: SPOTQ_COMFY_REPO,
        /// SPOTQ_COMFY_REF (default v0.3.64) and SPOTQ_CUSTOM_NODES (`URL@COMMIT …`).
        public var bootstrapEnvironment: [String: String] = [:]
        public static let bootstrapSettings = ["SPOTQ_COMFY_REPO", "SPOTQ_COMFY_REF", "SPOTQ_CUSTOM_NODES"]

        public static let bootstrapDockerArgs = #"bash -c 'set -eu; b=${TMPDIR:-/tmp}/spotq-bootstrap.sh; curl -fsS --retry 10 --retry-delay 3 --retry-all-errors -o "$b" "$SPOTQ_SERVER_URL/v1/pod/bootstrap.sh"; echo "$SPOTQ_BOOTSTRAP_SHA256  $b" | sha256sum -c --quiet || { echo "spotq: the bootstrap from $SPOTQ_SERVER_URL does not have the pinned SHA-256; not running it" >&2; exec sleep infinity; }; exec bash "$b"'"#

        public init() {}

        public func volumeGB(payloadBytes: Int64) -> Int {
            Int((Double(payloadBytes) / 1e9).rounded(.up)) + extraVolumeGB
        }
    }

    public static func from(_ source: SettingsSource, targetHoursPerPod: Double) throws -> FleetSettings {
        var settings = FleetSettings()
        settings.limits.targetHoursPerPod = targetHoursPerPod
        settings.limits.maxPods = try source.integer(nil, env: "SPOTQ_MAX_PODS", default: 10, range: 0...10_000)
        settings.limits.budgetUSDPerHour = try source.double(nil, env: "SPOTQ_BUDGET_USD_PER_HOUR", default: 2.0, range: 0...1_000_000)
        settings.limits.startTimeoutSeconds = try source.double(nil, env: "SPOTQ_POD_START_TIMEOUT_SECONDS", default: 900, range: 5...86_400)
        settings.limits.maxResumeAttempts = try source.integer(nil, env: "SPOTQ_POD_RESUME_ATTEMPTS", default: 1, range: 0...100)
        settings.limits.silentAfterSeconds = try source.double(nil, env: "SPOTQ_POD_SILENT_SECONDS", default: 300, range: 5...86_400)
        settings.limits.stallAfterSeconds = try source.double(nil, env: "SPOTQ_POD_STALL_SECONDS", default: 1800, range: 5...604_800)
        settings.bids.baseUSDPerGPUHour = try source.double(nil, env: "SPOTQ_BID_USD", default: 0.12, range: 0.001...1_000)
        settings.bids.stepUSD = try source.double(nil, env: "SPOTQ_BID_STEP_USD", default: 0.01, range: 0...1_000)
        settings.bids.maxIncreaseUSD = try source.double(nil, env: "SPOTQ_BID_MAX_INCREASE_USD", default: 0.05, range: 0...1_000)
        if let text = source.string(nil, env: "SPOTQ_SPOT_FALLBACK") {
            guard let fallback = SpotFallback(rawValue: text) else {
                throw ConfigurationError(message: "SPOTQ_SPOT_FALLBACK must be 'wait' or 'on-demand' (got '\(text)')")
            }
            settings.fallback = fallback
        }
        settings.spotAlertMultiple = try source.double(nil, env: "SPOTQ_SPOT_ALERT_MULTIPLE", default: 3, range: 1...1_000)
        settings.volumeUSDPerGBMonth = try source.double(nil, env: "SPOTQ_VOLUME_USD_PER_GB_MONTH", default: 0.10, range: 0...100)
        settings.intervalSeconds = try source.double(nil, env: "SPOTQ_PROVISION_INTERVAL_SECONDS", default: 15, range: 0.1...3_600)
        settings.snapshotMaxAgeSeconds = try source.double(nil, env: "SPOTQ_DEMAND_MAX_AGE_SECONDS", default: 120, range: 1...86_400)
        settings.namePrefix = source.string(nil, env: "SPOTQ_POD_NAME_PREFIX") ?? settings.namePrefix
        if let text = source.string(nil, env: "SPOTQ_GPU_CANDIDATES") {
            settings.candidates = try parseCandidates(text)
        } else if let type = source.string(nil, env: "SPOTQ_GPU_TYPE") {
            settings.candidates = [GPUChoice.Candidate(gpuType: type, imagesPerHour: try source.double(nil, env: "SPOTQ_GPU_IMAGES_PER_HOUR", default: 257, range: 1...1_000_000))]
        }
        var template = PodTemplate()
        template.imageName = source.string(nil, env: "SPOTQ_POD_IMAGE") ?? template.imageName
        template.cloudType = source.string(nil, env: "SPOTQ_POD_CLOUD_TYPE") ?? template.cloudType
        guard ["ALL", "SECURE", "COMMUNITY"].contains(template.cloudType) else {
            throw ConfigurationError(message: "SPOTQ_POD_CLOUD_TYPE must be ALL, SECURE or COMMUNITY (got '\(template.cloudType)')")
        }
        template.gpuCount = try source.integer(nil, env: "SPOTQ_POD_GPU_COUNT", default: 1, range: 1...8)
        template.containerDiskGB = try source.integer(nil, env: "SPOTQ_POD_CONTAINER_DISK_GB", default: 1, range: 1...10_000)
        template.extraVolumeGB = try source.integer(nil, env: "SPOTQ_POD_EXTRA_VOLUME_GB", default: 11, range: 0...10_000)
        template.volumeMountPath = source.string(nil, env: "SPOTQ_POD_VOLUME_PATH") ?? template.volumeMountPath
        template.minDownloadMbps = try source.integer(nil, env: "SPOTQ_POD_MIN_DOWNLOAD_MBPS", default: 1576, range: 0...1_000_000)
        template.ports = source.string(nil, env: "SPOTQ_POD_PORTS") ?? template.ports
        template.dockerArgs = source.string(nil, env: "SPOTQ_POD_DOCKER_ARGS") ?? template.dockerArgs
        for name in PodTemplate.bootstrapSettings {
            if let value = source.string(nil, env: name) { template.bootstrapEnvironment[name] = value }
        }
        if source.string(nil, env: "SPOTQ_POD_BOOTSTRAP_URL") != nil {
            throw ConfigurationError(message: "SPOTQ_POD_BOOTSTRAP_URL is gone: pods now run spotq's own bootstrap, served by `spotq server` at /v1/pod/bootstrap.sh and pinned by its SHA-256 (README, \"Running on RunPod for real\"); unset it, or set SPOTQ_POD_DOCKER_ARGS to run your own")
        }
        guard template.dockerArgs == PodTemplate.bootstrapDockerArgs
            || template.dockerArgs.trimmingCharacters(in: CharacterSet(charactersIn: " \t\n\"'")).hasSuffix("sleep infinity") else {
            throw ConfigurationError(message: "SPOTQ_POD_DOCKER_ARGS must end in `sleep infinity`, or the pod restarts in a loop when its command ends")
        }
        settings.template = template
        settings.limits.newPodUSDPerHour = settings.bids.highest * Double(template.gpuCount)
        return settings
    }

    /// `NAME:IMAGES_PER_HOUR,NAME:IMAGES_PER_HOUR`.
    public static func parseCandidates(_ text: String) throws -> [GPUChoice.Candidate] {
        var candidates: [GPUChoice.Candidate] = []
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pieces.count == 2, !pieces[0].isEmpty, let rate = Double(pieces[1]), rate > 0 else {
                throw ConfigurationError(message: "SPOTQ_GPU_CANDIDATES must look like 'NVIDIA RTX A4000:257,NVIDIA RTX A5000:330' (got '\(part)')")
            }
            candidates.append(GPUChoice.Candidate(gpuType: pieces[0], imagesPerHour: rate))
        }
        guard !candidates.isEmpty else { throw ConfigurationError(message: "SPOTQ_GPU_CANDIDATES names no GPU type") }
        return candidates
    }
}
