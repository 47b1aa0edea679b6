import Foundation

/// A `spotq worker` process standing in for a pod's container. Spawned with an empty signal
/// mask and default dispositions (children of Swift's thread pool would otherwise inherit
/// SIGTERM blocked, and a reclaim's SIGTERM would go unheard), output to a log file.
final class PodProcess: @unchecked Sendable {
    // `pid` is set once; `exitStatus` is guarded by `lock`.
    let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    init(executable: String, arguments: [String], environment: [String: String], logPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
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
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let spawned = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw DevcloudError("could not start \(executable): \(String(cString: strerror(spawned)))") }
        pid = child
    }

    var hasExited: Bool { poll() != nil }

    /// The exit code (-1 when a signal ended it) once the process has ended; reaps it.
    func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : -1
        }
        return exitStatus
    }

    func signal(_ signal: Int32) {
        if poll() == nil { kill(pid, signal) }
    }

    /// Waits up to `timeout` for the end; returns the exit code or nil.
    func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = poll() { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM, then SIGKILL after `grace` (RunPod's reclaim: about 5 s).
    func terminate(grace: Duration) async {
        signal(SIGTERM)
        if await wait(timeout: grace) == nil {
            signal(SIGKILL)
            _ = await wait(timeout: .seconds(5))
        }
    }
}

struct DevcloudError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
