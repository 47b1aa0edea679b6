import ArgumentParser
import Foundation
import SpotqPod

/// `spotq supervise`: the pod bootstrap runs ComfyUI and the worker under it.
struct SuperviseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise",
        abstract: "Run a command, restart it after a crash (with backoff), forward SIGTERM/SIGINT, keep its output in a rotated log.",
        discussion: """
            spotq supervise --name worker --log /workspace/spotq/logs/worker.log --no-restart 0,3,4,5 -- spotq worker
            The command is restarted after it crashes or exits with a status not in --no-restart: first after
            --restart-delay seconds, doubling after each run shorter than --healthy-seconds, up to --max-restart-delay.
            SIGTERM or SIGINT is passed to the command at once and ends supervision when it exits; the supervisor
            exits with the command's status (128 + N after signal N).
            """
    )

    @Option(help: "Name for the supervisor's own log lines.") var name = "child"
    @Option(help: "Log file for the command's output (default: stderr).") var log: String?
    @Option(name: .customLong("log-max-bytes"), help: "Rotate the log past this size.") var logMaxBytes = 10_000_000
    @Option(name: .customLong("log-keep"), help: "Rotated logs kept (name.1 … name.N).") var logKeep = 5
    @Option(name: .customLong("no-restart"), help: "Comma-separated exit statuses after which the command is not restarted.")
    var noRestart = "0"
    @Option(name: .customLong("restart-delay"), help: "Seconds before the first restart.") var restartDelay = 1.0
    @Option(name: .customLong("max-restart-delay"), help: "Longest wait between restarts, seconds.") var maxRestartDelay = 30.0
    @Option(name: .customLong("healthy-seconds"), help: "A run this long resets the restart delay.") var healthySeconds = 60.0
    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

    func run() async throws {
        let words = command
        guard !words.isEmpty else { throw ValidationError("supervise needs a command after --") }
        var statuses = Set<Int32>()
        for part in noRestart.split(separator: ",") {
            guard let status = Int32(part.trimmingCharacters(in: .whitespaces)), (0...255).contains(status) else {
                throw ValidationError("--no-restart wants exit statuses like 0,3,4 (got '\(noRestart)')")
            }
            statuses.insert(status)
        }
        guard restartDelay > 0, maxRestartDelay >= restartDelay, logMaxBytes > 0, logKeep >= 0 else {
            throw ValidationError("--restart-delay must be positive and at most --max-restart-delay; --log-max-bytes positive; --log-keep not negative")
        }
        var configuration = Supervisor.Configuration(name: name, command: words)
        configuration.policy = RestartPolicy(
            finalStatuses: statuses, initialDelay: .milliseconds(Int64(restartDelay * 1000)),
            maximumDelay: .milliseconds(Int64(maxRestartDelay * 1000)), healthyRun: .milliseconds(Int64(healthySeconds * 1000)))
        configuration.logPath = log
        configuration.logMaxBytes = logMaxBytes
        configuration.logKeep = logKeep
        let status = try await Supervisor(configuration: configuration).run()
        if status != 0 { throw ExitCode(status) }
    }
}
