import Foundation
import ProcessLauncher

/// A program the test starts in the background (a `spotq` subcommand, say), with an empty
/// signal mask so it can be stopped with SIGTERM like in production, and its output in a
/// file the test can read.
public final class ChildProcess: Sendable {
    let process: LaunchedProcess
    public let outputPath: String

    public var pid: pid_t { process.pid }

    /// Starts `executable` with `arguments` and `environment` added to this process's.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-child-\(UUID().uuidString).log").path
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        do {
            process = try LaunchedProcess(executable: executable, arguments: arguments, environment: merged, outputPath: outputPath, truncate: true)
        } catch {
            throw TestEnvironmentError(description: "\(error)")
        }
    }

    /// What the program printed so far (stdout and stderr).
    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) { process.signal(signal) }

    /// True once the program has exited (it is reaped then).
    public var hasExited: Bool { process.hasExited }

    /// Waits up to `timeout` for the program to exit; returns its exit code (-1 when a
    /// signal ended it), or nil if it is still running.
    public func wait(timeout: Duration) async -> Int32? { await process.wait(timeout: timeout) }

    /// SIGTERM, then SIGKILL if it still runs after `grace`.
    public func terminate(grace: Duration) async { await process.terminate(grace: grace) }

    /// Kills the program if it still runs, reaps it and deletes its output file.
    public func cleanUp() async {
        signal(SIGKILL)
        _ = await wait(timeout: .seconds(5))
        unlink(outputPath)
    }

    /// The `spotq` binary built next to the test bundle (swift build / swift test build both).
    public static func spotqBinary() throws -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("spotq").path,
            TestEnvironment.packageRoot().appendingPathComponent(".build/debug/spotq").path,
        ]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestEnvironmentError(description: "the spotq binary was not found at \(candidates.joined(separator: " or ")); run swift build")
        }
        return path
    }
}
