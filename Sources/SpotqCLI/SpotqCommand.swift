import ArgumentParser

/// `spotq`: the one binary. Each subcommand is a part of the system or an operator tool.
public struct SpotqCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "spotq",
        abstract: "Runs a website's image-generation backlog on cheap spot GPU pods.",
        discussion: """
            Configuration comes from flags, then SPOTQ_* environment variables, then defaults.
            See README.md for every setting.
            """,
        subcommands: [
            MigrateCommand.self, AssetsCommand.self, EnqueueCommand.self, PlanCommand.self, ServerCommand.self, ProvisionerCommand.self, CostCommand.self, DeadLetterCommand.self, StatusCommand.self, QueuesCommand.self, BatchesCommand.self, PodsCommand.self, WorkerCommand.self, SuperviseCommand.self, DevcloudCommand.self, BenchCommand.self, BrokerUsersCommand.self, DatabaseUsersCommand.self,
        ]
    )

    public init() {}
}
