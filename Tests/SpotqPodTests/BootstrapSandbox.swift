import Foundation
import Hummingbird
import Logging
import ProcessLauncher
import SpotqDevcloud
import SpotqHTTP
import SpotqPod
import SpotqTestSupport

/// A pod's bootstrap run on this machine: the real script (as built into spotq), the real
/// binary served by the server's own routes, and devcloud's pod image for what a GPU image
/// has and this machine lacks (nvidia-smi, CUDA torch, ComfyUI's repository).
final class BootstrapSandbox: Sendable {
    let root: URL
    let volume: URL
    let serverURL: String
    let binarySHA256: String
    let image: DevcloudPodImage
    let comfyPort: Int

    var script: URL { root.appendingPathComponent("bootstrap.sh") }
    var markers: URL { volume.appendingPathComponent("spotq/markers") }
    var logsFolder: URL { volume.appendingPathComponent("spotq/logs") }

    private init(root: URL, serverURL: String, binarySHA256: String) throws {
        self.root = root
        volume = root.appendingPathComponent("volume")
        self.serverURL = serverURL
        self.binarySHA256 = binarySHA256
        image = DevcloudPodImage(root: root.appendingPathComponent("image"), spotqExecutable: try ChildProcess.spotqBinary())
        comfyPort = try FreePort.find()
        try image.prepare()
        try Data(PodSoftware.bootstrapScript).write(to: script)
    }

    static func with(_ body: (BootstrapSandbox) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_bootstrap"))
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let binary = try ChildProcess.spotqBinary()
        var quiet = Logger(label: "spotq.test.pod-software")
        quiet.logLevel = .critical
        let logger = quiet
        let server = RestartableListener(name: "the pod software server") { port, listening in
            let app = DevcloudServer.makeApplication(host: "127.0.0.1", port: port, logger: logger, register: { PodSoftwareRoutes(binaryPath: binary).register(on: $0) }, onServerRunning: listening)
            return { try await app.run() }
        }
        let port = try await server.start()
        let sandbox = try BootstrapSandbox(root: root, serverURL: "http://127.0.0.1:\(port)", binarySHA256: try PodSoftware.sha256(ofFile: binary))
        do {
            try await body(sandbox)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    /// The environment a devcloud pod's container gets, minus what the provisioner adds
    /// besides the server and the binary's hash: the worker started at the end has no batch.
    func environment(brokenGPU: Bool = false, _ extra: [String: String] = [:]) -> [String: String] {
        let temporary = root.appendingPathComponent("tmp")
        try? FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        var environment = image.environment(
            volume: volume, temporary: temporary, comfyPort: comfyPort, brokenGPU: brokenGPU,
            promptLog: root.appendingPathComponent("comfy-prompts.log"), secondsPerImage: 0.1)
        environment["SPOTQ_SERVER_URL"] = serverURL
        environment["SPOTQ_BINARY_SHA256"] = binarySHA256
        environment["SPOTQ_COMFY_START_SECONDS"] = "60"
        for (key, value) in extra { environment[key] = value }
        return environment
    }

    /// Starts the bootstrap as a container's first process (a process group of its own).
    func start(_ environment: [String: String]) throws -> LaunchedProcess {
        try LaunchedProcess(
            executable: "/bin/bash", arguments: [script.path], environment: environment,
            outputPath: root.appendingPathComponent("container.log").path, ownProcessGroup: true)
    }

    /// SIGKILLs the whole container, as a host failing would.
    func kill(_ container: LaunchedProcess) async {
        container.signalGroup(SIGKILL)
        _ = await container.wait(timeout: .seconds(10))
        try? await eventually("the container's processes are gone", timeout: .seconds(10)) {
            !Self.groupAlive(container.pid)
        }
    }

    static func groupAlive(_ group: pid_t) -> Bool { Glibc.kill(-group, 0) == 0 }

    var bootstrapLog: String { (try? String(contentsOf: logsFolder.appendingPathComponent("bootstrap.log"), encoding: .utf8)) ?? "" }

    func finishedSteps() -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: markers.path)) ?? []).filter { !$0.hasSuffix(".tmp") })
    }

    /// Waits until this run's part of the bootstrap log (after `offset` characters) holds `text`.
    func waitForLog(_ text: String, after offset: Int, timeout: Duration = .seconds(120)) async throws -> String {
        try await waitForRun(after: offset, "'\(text)'", timeout: timeout) { $0.contains(text) }
    }

    /// Waits until this run's part of the bootstrap log satisfies `holds`.
    func waitForRun(
        after offset: Int, _ what: String, timeout: Duration = .seconds(120), _ holds: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        do {
            return try await eventually("the bootstrap log shows \(what)", timeout: timeout) {
                let run = String(self.bootstrapLog.dropFirst(offset))
                return holds(run) ? run : nil
            }
        } catch {
            let container = (try? String(contentsOf: root.appendingPathComponent("container.log"), encoding: .utf8)) ?? ""
            throw TestEnvironmentError(description: "\(error)\n--- this run's bootstrap log:\n\(bootstrapLog.dropFirst(offset))\n--- container output:\n\(container.suffix(3_000))")
        }
    }

    /// A git repository standing for a custom node, at one commit; returns `URL@commit`.
    func makeCustomNode(named name: String) async throws -> String {
        let repository = root.appendingPathComponent("\(name).git")
        try FileManager.default.createDirectory(at: repository, withIntermediateDirectories: true)
        try Data("NODE_CLASS_MAPPINGS = {}\n".utf8).write(to: repository.appendingPathComponent("__init__.py"))
        try Data("# needs nothing\n".utf8).write(to: repository.appendingPathComponent("requirements.txt"))
        let made = try await Shell.capture("/bin/sh", ["-c", "cd '\(repository.path)' && git init --quiet && git add . && git -c user.name=t -c user.email=t@localhost commit --quiet -m node && git rev-parse HEAD"])
        guard made.exitCode == 0 else { throw TestEnvironmentError(description: "custom node repository: \(made.output)") }
        return "file://\(repository.path)@\(made.output.trimmingCharacters(in: .whitespacesAndNewlines))"
    }
}
