import ArgumentParser
import SpotqCore

/// Planner flags shared by `spotq plan` and `spotq bench plan`; each has a SPOTQ_* twin.
struct PlanOptions: ParsableArguments {
    @Option(name: .customLong("payload-cap-gb"), help: "Most GB of models per batch (env SPOTQ_PLAN_PAYLOAD_CAP_GB; default 120).")
    var payloadCapGB: Double?

    @Option(name: .customLong("min-batch-hours"), help: "Add checkpoints while a batch has less GPU work than this (env SPOTQ_PLAN_MIN_BATCH_HOURS; default 1).")
    var minimumBatchHours: Double?

    @Option(name: .customLong("target-pod-hours"), help: "Work each pod should get (env SPOTQ_PLAN_TARGET_POD_HOURS; default 3).")
    var targetHoursPerPod: Double?

    @Option(name: .customLong("max-batch-hours"), help: "Split checkpoints with more GPU work than this (env SPOTQ_PLAN_MAX_BATCH_HOURS; default 24).")
    var maximumBatchHours: Double?

    @Option(name: .customLong("images-per-hour"), help: "Images one GPU makes per hour (env SPOTQ_GPU_IMAGES_PER_HOUR; default 257, the seed's A4000).")
    var imagesPerHour: Double?

    @Option(name: .customLong("gpu-usd-per-hour"), help: "USD per GPU-hour (env SPOTQ_GPU_USD_PER_HOUR; default 0.12).")
    var gpuUSDPerHour: Double?

    @Option(name: .customLong("download-mbps"), help: "Assumed pod download bandwidth, Mbit/s (env SPOTQ_DOWNLOAD_MBPS; default 1576).")
    var downloadMbps: Double?

    func resolve(_ source: SettingsSource) throws -> PlanningSettings {
        var overrides = PlanningSettings.Overrides()
        overrides.payloadCapGB = payloadCapGB
        overrides.minimumBatchHours = minimumBatchHours
        overrides.targetHoursPerPod = targetHoursPerPod
        overrides.maximumBatchHours = maximumBatchHours
        overrides.imagesPerHour = imagesPerHour
        overrides.gpuUSDPerHour = gpuUSDPerHour
        overrides.downloadMbps = downloadMbps
        return try PlanningSettings.resolve(source, overrides: overrides)
    }
}
