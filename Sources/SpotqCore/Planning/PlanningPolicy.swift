/// The operator's rules for forming batches (seed 000: "a personal limit of 120GB max
/// payload", "most efficient to use 1 checkpoint per instance but if there's less than 1
/// hour of work ... add another checkpoint", "extending the run times to at least three
/// hours"), as settings.
public struct PlanningPolicy: Sendable, Equatable, Codable {
    /// Most bytes of models one batch (so each of its pods) downloads.
    public var payloadCapBytes: Int64 = 120_000_000_000
    /// A batch with less GPU work than this takes the next checkpoint in too, so setup
    /// time is not paid for a handful of images.
    public var minimumBatchHours: Double = 1
    /// Pods are sized so each has at least this much work (the provisioner uses it too).
    public var targetHoursPerPod: Double = 3
    /// A checkpoint with more work than this is split into several batches.
    public var maximumBatchHours: Double = 24
    /// Which download order batches get: the best simulated candidate, or the seed's order
    /// alone (for `spotq bench worker`, which measures the difference on a real pod).
    public var order: OrderChoice = .best

    public enum OrderChoice: String, Sendable, Equatable, Codable {
        case best, seed
    }

    public init() {}

    /// Checks the settings once, with messages that say what to fix.
    public func validate() throws(ConfigurationError) {
        guard payloadCapBytes > 0 else { throw ConfigurationError(message: "the payload cap must be positive") }
        guard minimumBatchHours >= 0 else { throw ConfigurationError(message: "the minimum batch hours must not be negative") }
        guard targetHoursPerPod > 0 else { throw ConfigurationError(message: "the target hours per pod must be positive") }
        guard maximumBatchHours > 0, maximumBatchHours >= minimumBatchHours else {
            throw ConfigurationError(message: "the maximum batch hours must be positive and at least the minimum batch hours")
        }
    }
}

/// What a GPU type does and costs, and what setting up a pod takes. Defaults are the
/// seed's RTX A4000 figures.
public struct GPUProfile: Sendable, Equatable, Codable {
    /// RunPod's gpuTypeId.
    public var gpuType = "NVIDIA RTX A4000"
    /// Seed 000: three A4000s make 771–900 images an hour; the low end, so estimates do
    /// not promise more than pods deliver.
    public var imagesPerHour: Double = 257
    /// USD per GPU-hour: the seed's starting spot bid.
    public var usdPerHour: Double = 0.12
    /// USD per GB-month of pod volume (RunPod's running-pod volume rate).
    public var volumeUSDPerGBMonth: Double = 0.10
    /// Added to the payload for the pod's toolchain (seed: "payload size plus 11 GB").
    public var toolchainGB: Double = 11
    /// Assumed download bandwidth, Mbit/s: the seed's `minDownload` (1576).
    public var downloadMbps: Double = 1576
    /// Pod start, image pull and toolchain setup before the first download, seconds.
    public var fixedSetupSeconds: Double = 300

    public init() {}

    public var secondsPerImage: Double { 3600 / imagesPerHour }
    public var bytesPerSecond: Double { downloadMbps * 1_000_000 / 8 }

    /// Pod volume for a payload: payload + toolchain, whole GB.
    public func volumeGB(payloadBytes: Int64) -> Int {
        Int((Double(payloadBytes) / 1e9 + toolchainGB).rounded(.up))
    }

    /// USD per hour of one pod with a volume of `volumeGB` (GPU plus storage).
    public func podUSDPerHour(volumeGB: Int) -> Double {
        usdPerHour + volumeUSDPerGBMonth * Double(volumeGB) / 730
    }

    public func validate() throws(ConfigurationError) {
        guard imagesPerHour > 0 else { throw ConfigurationError(message: "images per hour must be positive") }
        guard usdPerHour >= 0, volumeUSDPerGBMonth >= 0 else { throw ConfigurationError(message: "prices must not be negative") }
        guard downloadMbps > 0 else { throw ConfigurationError(message: "the download bandwidth must be positive") }
        guard fixedSetupSeconds >= 0, toolchainGB >= 0 else { throw ConfigurationError(message: "setup time and toolchain size must not be negative") }
    }
}
