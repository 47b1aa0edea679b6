/// The planner's settings as flags and `SPOTQ_*` variables resolve them; the same for
/// `spotq plan` and the server's automatic planning.
public struct PlanningSettings: Sendable, Equatable {
    public var policy = PlanningPolicy()
    public var gpu = GPUProfile()
    /// Automatic planning: plan when this many images are pending…
    public var planAtItems = 257
    /// …or when the oldest pending image has waited this long (seconds).
    public var planAfterSeconds = 900

    public init() {}

    /// Values a command line gave; nil means "not given".
    public struct Overrides: Sendable {
        public var payloadCapGB: Double?
        public var minimumBatchHours: Double?
        public var targetHoursPerPod: Double?
        public var maximumBatchHours: Double?
        public var imagesPerHour: Double?
        public var gpuUSDPerHour: Double?
        public var downloadMbps: Double?
        public init() {}
    }

    public static func resolve(_ source: SettingsSource, overrides: Overrides = .init()) throws -> PlanningSettings {
        var settings = PlanningSettings()
        settings.policy.payloadCapBytes = Int64(try source.double(overrides.payloadCapGB, env: "SPOTQ_PLAN_PAYLOAD_CAP_GB", default: 120, range: 1...100_000) * 1e9)
        settings.policy.minimumBatchHours = try source.double(overrides.minimumBatchHours, env: "SPOTQ_PLAN_MIN_BATCH_HOURS", default: 1, range: 0...1_000)
        settings.policy.targetHoursPerPod = try source.double(overrides.targetHoursPerPod, env: "SPOTQ_PLAN_TARGET_POD_HOURS", default: 3, range: 0.001...1_000)
        settings.policy.maximumBatchHours = try source.double(overrides.maximumBatchHours, env: "SPOTQ_PLAN_MAX_BATCH_HOURS", default: 24, range: 0.1...10_000)
        settings.gpu.gpuType = source.string(nil, env: "SPOTQ_GPU_TYPE") ?? settings.gpu.gpuType
        settings.gpu.imagesPerHour = try source.double(overrides.imagesPerHour, env: "SPOTQ_GPU_IMAGES_PER_HOUR", default: 257, range: 1...1_000_000)
        settings.gpu.usdPerHour = try source.double(overrides.gpuUSDPerHour, env: "SPOTQ_GPU_USD_PER_HOUR", default: 0.12, range: 0...1_000)
        settings.gpu.volumeUSDPerGBMonth = try source.double(nil, env: "SPOTQ_VOLUME_USD_PER_GB_MONTH", default: 0.10, range: 0...100)
        settings.gpu.downloadMbps = try source.double(overrides.downloadMbps, env: "SPOTQ_DOWNLOAD_MBPS", default: 1576, range: 1...1_000_000)
        settings.gpu.fixedSetupSeconds = try source.double(nil, env: "SPOTQ_SETUP_SECONDS", default: 300, range: 0...86_400)
        settings.planAtItems = try source.integer(nil, env: "SPOTQ_PLAN_AT_ITEMS", default: 257, range: 1...100_000_000)
        settings.planAfterSeconds = try source.integer(nil, env: "SPOTQ_PLAN_AFTER_SECONDS", default: 900, range: 1...604_800)
        try settings.policy.validate()
        try settings.gpu.validate()
        return settings
    }

    /// Whether pending demand is enough to plan now.
    public func shouldPlan(_ demand: PendingDemand, now: Double) -> Bool {
        guard demand.items > 0 else { return false }
        if demand.items >= planAtItems { return true }
        guard let oldest = demand.oldestCreatedAt else { return false }
        return now - oldest.timeIntervalSince1970 >= Double(planAfterSeconds)
    }
}

import Foundation
