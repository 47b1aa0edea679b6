import DedicatedThread
import Foundation
import Logging
import ProcessLauncher

/// Runs the configured GPU check (`SPOTQ_GPU_CHECK`) through `/bin/sh -c`, off Swift's
/// cooperative pool: the child is started with posix_spawn (``LaunchedProcess``) and waited
/// for with a blocking `waitpid` on a thread of its own. What it printed (stdout and stderr)
/// is kept for the log and the `gpu_failed` event.
struct GPUCheck: Sendable {
    let command: String
    /// Environment variables the check never sees: it needs no credentials, and what it
    /// prints ends up in the log and in an event.
    static let withheld: Set<String> = ["SPOTQ_UPLOAD_TOKEN", "SPOTQ_AMQP_URL"]
    /// The most of its output kept (the end of it, where an error usually is).
    static let outputLimit = 2_000

    struct Outcome: Sendable, Equatable {
        /// The exit status; -1 when a signal ended it, nil when it could not be started.
        var status: Int32?
        /// The end of what it printed, or why it could not be started.
        var output: String
        var passed: Bool { status == 0 }
    }

    /// Runs the check. Cancelling the calling task kills the check, with every process it
    /// started (and it counts as failed).
    func run() async -> Outcome {
        let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-gpu-check-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let environment = ProcessInfo.processInfo.environment.filter { !Self.withheld.contains($0.key) }
        let process: LaunchedProcess
        do {
            process = try LaunchedProcess(executable: "/bin/sh", arguments: ["-c", command], environment: environment, outputPath: outputFile.path, truncate: true, ownProcessGroup: true)
        } catch {
            return Outcome(status: nil, output: "could not run the GPU check: \(error)")
        }
        let thread = DedicatedThread(name: "spotq-gpu-check")
        defer { thread.stop() }
        let status = await withTaskCancellationHandler {
            try? await thread.run { process.waitBlocking() }
        } onCancel: {
            // The shell and whatever it started.
            process.signalGroup(SIGKILL)
        }
        let printed = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        let output = String(printed.trimmingCharacters(in: .whitespacesAndNewlines).suffix(Self.outputLimit))
        return Outcome(status: Task.isCancelled ? -1 : status ?? -1, output: output)
    }
}
