import DedicatedThread
import Foundation
import ProcessLauncher
import Synchronization

/// `spotq supervise`: runs one command on a pod, starts it again after a crash as
/// ``RestartPolicy`` says, forwards SIGTERM and SIGINT to it at once (a reclaim gives about
/// 5 s), and keeps its output (and its own lines) in a ``RotatingLog`` on the volume.
public struct Supervisor: Sendable {
    public struct Configuration: Sendable {
        /// Names the child in the supervisor's lines ("worker", "comfyui").
        public var name: String
        /// The command: an absolute path or a name looked up in PATH, then its arguments.
        public var command: [String]
        public var policy = RestartPolicy()
        /// nil: the child's output and the supervisor's lines go to stderr.
        public var logPath: String?
        public var logMaxBytes = 10_000_000
        public var logKeep = 5

        public init(name: String, command: [String]) {
            self.name = name
            self.command = command
        }
    }

    public let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Supervises until the policy says stop or a termination signal's child has ended;
    /// returns the status the supervisor exits with.
    public func run() async throws -> Int32 {
        let output = try SupervisedOutput(configuration: configuration)
        defer { output.close() }
        let executable = try Self.resolve(configuration.command[0])
        let state = SupervisorState()
        let signals = TerminationSignals { number in
            output.line("\(configuration.name): signal \(number) received; forwarding SIGTERM")
            state.terminate()
        }
        var history = RestartPolicy.History()
        let waiter = DedicatedThread(name: "spotq-supervise-wait")
        defer { waiter.stop() }
        while true {
            if state.terminating { return 143 }
            let started = ContinuousClock.now
            let process = try LaunchedProcess(
                executable: executable, arguments: Array(configuration.command.dropFirst()),
                environment: ProcessInfo.processInfo.environment, outputDescriptor: output.writeDescriptor, closing: [output.readDescriptor])
            state.setChild(process)
            // A signal that came while the child was being started.
            if state.terminating { process.signal(SIGTERM) }
            output.line("\(configuration.name): started (pid \(process.pid))")
            let code = try await waiter.run { process.waitBlocking() }
            state.setChild(nil)
            let ending: RestartPolicy.Ending = process.endingSignal.map { .signalled($0) } ?? .exited(code)
            let decision = configuration.policy.decide(
                ending, ranFor: ContinuousClock.now - started, terminating: state.terminating, history: &history)
            let how = switch ending {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "was killed by signal \(signal)"
            }
            switch decision {
            case .stop(let status):
                output.line("\(configuration.name): \(how); not restarted")
                return status
            case .restart(let delay):
                output.line("\(configuration.name): \(how); restarting in \(delay)")
                if await signals.wait(upTo: delay) { return 143 }
            }
        }
    }

    /// An absolute or relative path as is; a bare name through PATH, as a shell would.
    static func resolve(_ command: String) throws -> String {
        if command.contains("/") { return command }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(command)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw LaunchError(description: "supervise: \(command) is not in PATH")
    }
}

/// The pipe the child writes to, and the thread that copies it into the log. The supervisor
/// keeps the write end open, so restarts reuse the pipe and its own lines come in order.
final class SupervisedOutput: @unchecked Sendable {
    let readDescriptor: Int32
    let writeDescriptor: Int32
    private let reader: Thread
    /// Signalled when the reader has copied everything and seen the pipe's end.
    private let drained = DispatchSemaphore(value: 0)

    init(configuration: Supervisor.Configuration) throws {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else { throw LaunchError(description: "supervise: pipe: \(String(cString: strerror(errno)))") }
        (readDescriptor, writeDescriptor) = (descriptors[0], descriptors[1])
        // The supervisor's own copies are not for its children (they get theirs by dup2).
        _ = fcntl(readDescriptor, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeDescriptor, F_SETFD, FD_CLOEXEC)
        let log = try configuration.logPath.map { try RotatingLog(path: $0, maxBytes: configuration.logMaxBytes, keep: configuration.logKeep) }
        let source = readDescriptor
        let drained = self.drained
        reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                if let log {
                    // A full disk must not stop the child: its output is dropped instead.
                    try? log.write(buffer[0..<count])
                } else {
                    _ = buffer.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, count) }
                }
            }
            log?.close()
            drained.signal()
        }
        reader.name = "spotq-supervise-log"
        reader.start()
    }

    /// One line of the supervisor's own, timestamped, into the same log.
    func line(_ text: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let bytes = Array("\(stamp) supervise: \(text)\n".utf8)
        _ = bytes.withUnsafeBytes { write(writeDescriptor, $0.baseAddress, $0.count) }
    }

    /// Closes the supervisor's write end and waits (up to 2 s: a daemon the child left may
    /// hold the pipe open) until the reader has written the last of the child's output.
    func close() {
        Foundation.close(writeDescriptor)
        _ = drained.wait(timeout: .now() + 2)
    }
}

/// What the signal handler and the supervising loop share: the running child, and whether
/// a termination signal came.
final class SupervisorState: Sendable {
    private let child = Mutex<LaunchedProcess?>(nil)
    private let terminatingFlag = Mutex(false)

    var terminating: Bool { terminatingFlag.withLock { $0 } }

    /// Marks termination and passes SIGTERM to the child, if one runs.
    func terminate() {
        terminatingFlag.withLock { $0 = true }
        child.withLock { $0?.signal(SIGTERM) }
    }

    func setChild(_ process: LaunchedProcess?) { child.withLock { $0 = process } }
}
