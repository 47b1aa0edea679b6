import Foundation

/// A child process started with an empty signal mask and default signal dispositions, its
/// output (stdout and stderr) in a file.
///
/// Uses posix_spawn rather than Foundation's `Process`: a child spawned from a Swift
/// concurrency thread inherits that thread's signal mask (SIGTERM and others blocked), so a
/// `spotq worker` started that way would never hear a reclaim; and Foundation's exit
/// monitoring was seen to leave children unreaped. Output goes to a file, so a daemon the
/// child starts cannot hold a pipe open.
public final class LaunchedProcess: @unchecked Sendable {
    // `pid` is set once; `exitStatus` is guarded by `lock`.
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?
    private var signalNumber: Int32?

    /// Whether the child leads a process group of its own (see ``signalGroup(_:)``).
    public let leadsProcessGroup: Bool

    /// Starts `executable` with `arguments` and exactly `environment`; output is appended to
    /// (or, with `truncate`, replaces) the file at `outputPath`. With `ownProcessGroup` the
    /// child leads a new process group, so ``signalGroup(_:)`` reaches what it starts too
    /// (a shell's commands).
    public convenience init(executable: String, arguments: [String], environment: [String: String], outputPath: String, truncate: Bool = false, ownProcessGroup: Bool = false) throws {
        try self.init(executable: executable, arguments: arguments, environment: environment, ownProcessGroup: ownProcessGroup) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | (truncate ? O_TRUNC : O_APPEND), 0o600)
        }
    }

    /// Like the file form, with the child's stdout and stderr on `outputDescriptor` (the
    /// write end of a pipe its parent reads); `closing` are descriptors the child must not
    /// inherit (the pipe's read end).
    public convenience init(executable: String, arguments: [String], environment: [String: String], outputDescriptor: Int32, closing: [Int32] = [], ownProcessGroup: Bool = false) throws {
        try self.init(executable: executable, arguments: arguments, environment: environment, ownProcessGroup: ownProcessGroup) { actions in
            for descriptor in closing { posix_spawn_file_actions_addclose(&actions, descriptor) }
            posix_spawn_file_actions_adddup2(&actions, outputDescriptor, 1)
        }
    }

    private init(executable: String, arguments: [String], environment: [String: String], ownProcessGroup: Bool, stdout: (inout posix_spawn_file_actions_t) -> Void) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        stdout(&actions)
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
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let spawned = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw LaunchError(description: "could not start \(executable): \(String(cString: strerror(spawned)))") }
        pid = child
        leadsProcessGroup = ownProcessGroup
    }

    /// The exit code (-1 when a signal ended it) once the process has ended (reaping it),
    /// else nil.
    public func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { record(status) }
        return exitStatus
    }

    /// The signal that ended the process, once it ended by one.
    public var endingSignal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return signalNumber
    }

    /// Call with `lock` held.
    private func record(_ status: Int32) {
        exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : -1
        signalNumber = status & 0x7f == 0 ? nil : status & 0x7f
    }

    public var hasExited: Bool { poll() != nil }

    public func signal(_ signal: Int32) {
        if poll() == nil { kill(pid, signal) }
    }

    /// Sends `signal` to the child's whole process group (only the child without one).
    public func signalGroup(_ signal: Int32) {
        guard leadsProcessGroup else { return self.signal(signal) }
        kill(-pid, signal)
    }

    /// Waits up to `timeout` for the end; returns the exit code, or nil if it still runs.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = poll() { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Blocks the calling thread until the process ends (for short-lived tools).
    public func waitBlocking() -> Int32 {
        var status: Int32 = 0
        var reaped: pid_t
        repeat { reaped = waitpid(pid, &status, 0) } while reaped == -1 && errno == EINTR
        lock.lock()
        defer { lock.unlock() }
        // Already reaped by poll(): its record stands.
        if reaped == pid { record(status) }
        return exitStatus ?? -1
    }

    /// SIGTERM, then SIGKILL after `grace` (RunPod's reclaim: about 5 s).
    public func terminate(grace: Duration) async {
        signal(SIGTERM)
        if await wait(timeout: grace) == nil {
            signal(SIGKILL)
            _ = await wait(timeout: .seconds(5))
        }
    }
}

public struct LaunchError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}
