import Foundation

/// A program the test starts in the background (a `spotq` subcommand, say), with an empty
/// signal mask so it can be stopped with SIGTERM like in production, and its output in a
/// file the test can read.
public final class ChildProcess: @unchecked Sendable {
    // `pid` is set once in init; `exitStatus` is only touched by `wait`, which tests call
    // from one task.
    public let pid: pid_t
    public let outputPath: String
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments` and `environment` added to this process's.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-child-\(UUID().uuidString).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let spawned = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw TestEnvironmentError(description: "could not start \(executable): \(String(cString: strerror(spawned)))")
        }
        pid = child
    }

    /// What the program printed so far (stdout and stderr).
    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) {
        if exitStatus == nil { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the program to exit; returns its exit code (-1 when a
    /// signal ended it), or nil if it is still running.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : -1
                return exitStatus
            }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

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

