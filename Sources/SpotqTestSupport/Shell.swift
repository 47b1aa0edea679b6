import Foundation
import ProcessLauncher

/// Runs the project's own scripts and tools from tests (through ``LaunchedProcess``: an
/// empty signal mask, default handlers, output in a file).
public enum Shell {
    /// Runs `executable` with `arguments`, waits, and throws with its output if it fails.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let (exitCode, output) = try await capture(executable, arguments)
        guard exitCode == 0 else {
            throw TestEnvironmentError(
                description: "\(executable) \(arguments.joined(separator: " ")) failed (exit \(exitCode)):\n\(output)")
        }
        return output
    }

    /// Runs `executable` with `arguments` and returns its exit code (-1 when a signal ended
    /// it) and its output (stdout and stderr together), whatever the code. Waits without
    /// holding a thread of Swift's pool (tests run side by side on two of them); a command
    /// still running after `limit` is killed and reported.
    public static func capture(_ executable: String, _ arguments: [String], limit: Duration = .seconds(600)) async throws -> (exitCode: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("spotq-shell-\(UUID().uuidString).log").path
        defer { unlink(outputPath) }
        let process: LaunchedProcess
        do {
            process = try LaunchedProcess(executable: executable, arguments: arguments, environment: ProcessInfo.processInfo.environment, outputPath: outputPath, truncate: true)
        } catch {
            throw TestEnvironmentError(description: "\(error)")
        }
        guard let exitCode = await process.wait(timeout: limit) else {
            process.signal(SIGKILL)
            _ = await process.wait(timeout: .seconds(10))
            throw TestEnvironmentError(description: "\(executable) \(arguments.joined(separator: " ")) did not finish within \(limit)")
        }
        return (exitCode, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}

/// A loopback TCP port nobody listens on now, for a child process told to listen on it.
/// Chosen below Linux's ephemeral range (32768–60999): a port from there could be taken by
/// any outgoing connection of a test running in parallel before the child binds it.
public enum FreePort {
    public static func find() throws -> Int {
        try find(consecutive: 1)
    }

    /// The first of `consecutive` free ports in a row (a RabbitMQ node wants five).
    public static func find(consecutive: Int) throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<(32_000 - consecutive))
            if (port..<port + consecutive).allSatisfy(canBind) { return port }
        }
        throw TestEnvironmentError(description: "could not find \(consecutive) free port(s) in a row in 20000-31999")
    }

    static func canBind(_ port: Int) -> Bool {
        guard let descriptor = LoopbackSocket.bound(port: port, reuseAddress: false) else { return false }
        close(descriptor)
        return true
    }
}
