import Foundation

/// Runs the project's own scripts and tools from tests.
///
/// Uses posix_spawn and waitpid directly rather than Foundation's `Process`: a child
/// spawned from a Swift concurrency thread inherits that thread's signal mask (SIGTERM,
/// SIGINT and others blocked), and Foundation's exit monitoring was seen to leave the
/// child unreaped. Here the child gets an empty mask and default handlers, and its
/// output goes to a file, so a daemon it starts cannot hold a pipe open.
public enum Shell {
    /// Runs `executable` with `arguments`, waits, and throws with its output if it fails.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let (exitCode, output) = try capture(executable, arguments)
        guard exitCode == 0 else {
            throw TestEnvironmentError(
                description: "\(executable) \(arguments.joined(separator: " ")) failed (exit \(exitCode)):\n\(output)")
        }
        return output
    }

    /// Runs `executable` with `arguments` and returns its exit code (-1 when a signal ended
    /// it) and its output (stdout and stderr together), whatever the code.
    public static func capture(_ executable: String, _ arguments: [String]) throws -> (exitCode: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("spotq-shell-\(UUID().uuidString).log").path
        defer { unlink(outputPath) }

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

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw TestEnvironmentError(description: "could not start \(executable): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : -1, output)
    }
}

/// A loopback TCP port nobody listens on now, for a child process told to listen on it.
/// Chosen below Linux's ephemeral range (32768–60999): a port from there could be taken by
/// any outgoing connection of a test running in parallel before the child binds it.
public enum FreePort {
    public static func find() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            if canBind(port) { return port }
        }
        throw TestEnvironmentError(description: "could not find a free port in 20000-31999")
    }

    static func canBind(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
