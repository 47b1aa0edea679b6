import ArgumentParser

/// `spotq bench`: measurements of spotq's own speed on this machine, as ratios against a
/// baseline measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure spotq's throughput on this machine.",
        subcommands: [EnqueueBenchCommand.self, PlanBenchCommand.self, WorkerBenchCommand.self, RevokeBenchCommand.self, IngestFloodBenchCommand.self]
    )
}
