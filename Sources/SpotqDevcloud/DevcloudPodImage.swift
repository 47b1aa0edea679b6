import Foundation
import ProcessLauncher

/// What devcloud's pod "image" holds besides this machine's own tools: stand-ins for what a
/// GPU image has and this machine lacks, so pods run spotq's real bootstrap unchanged.
/// - `bin/nvidia-smi`: lists one RTX A4000, or fails like a broken driver when the pod's
///   host has a broken GPU (`DEVCLOUD_GPU_BROKEN=1`);
/// - `python/torch`: the two calls spotq's GPU check makes (`torch.zeros(1).cuda()`,
///   `torch.cuda.is_available()`), on PYTHONPATH;
/// - `ComfyUI.git`: a git repository tagged like real ComfyUI (v0.3.64) whose `main.py`
///   takes real ComfyUI's flags and runs devcloud's ComfyUI stand-in (`spotq devcloud comfy`).
/// Only the environment points the bootstrap at them (PATH, PYTHONPATH, SPOTQ_COMFY_REPO).
public struct DevcloudPodImage: Sendable {
    public let root: URL
    /// The spotq executable the stand-in ComfyUI runs.
    public let spotqExecutable: String
    public static let comfyTag = "v0.3.64"

    public init(root: URL, spotqExecutable: String) {
        self.root = root
        self.spotqExecutable = spotqExecutable
    }

    public var binFolder: URL { root.appendingPathComponent("bin") }
    public var pythonFolder: URL { root.appendingPathComponent("python") }
    public var comfyRepository: URL { root.appendingPathComponent("ComfyUI.git") }

    /// Writes the stand-ins (once per devcloud work folder; cheap to repeat).
    public func prepare() throws {
        let files = FileManager.default
        try files.createDirectory(at: binFolder, withIntermediateDirectories: true)
        try files.createDirectory(at: pythonFolder.appendingPathComponent("torch"), withIntermediateDirectories: true)
        try write(Self.nvidiaSMI, to: binFolder.appendingPathComponent("nvidia-smi"), executable: true)
        try write(Self.torch, to: pythonFolder.appendingPathComponent("torch/__init__.py"))
        guard !files.fileExists(atPath: comfyRepository.appendingPathComponent(".git").path) else { return }
        try files.createDirectory(at: comfyRepository, withIntermediateDirectories: true)
        try write(Self.comfyMain, to: comfyRepository.appendingPathComponent("main.py"))
        try write("# devcloud's ComfyUI stand-in needs no Python packages.\n", to: comfyRepository.appendingPathComponent("requirements.txt"))
        try run("git init --quiet && git add main.py requirements.txt"
            + " && git -c user.name=devcloud -c user.email=devcloud@localhost commit --quiet -m 'ComfyUI stand-in'"
            + " && git tag \(Self.comfyTag)")
    }

    func write(_ text: String, to file: URL, executable: Bool = false) throws {
        try Data(text.utf8).write(to: file, options: .atomic)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path) }
    }

    func run(_ command: String) throws {
        let log = root.appendingPathComponent("prepare.log")
        var environment = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "LANG"].contains($0.key) }
        environment["GIT_DIR"] = comfyRepository.appendingPathComponent(".git").path
        environment["GIT_WORK_TREE"] = comfyRepository.path
        let process = try LaunchedProcess(executable: "/bin/sh", arguments: ["-c", "cd '\(comfyRepository.path)' && \(command)"], environment: environment, outputPath: log.path, truncate: true)
        guard process.waitBlocking() == 0 else {
            throw LaunchError(description: "devcloud could not make its ComfyUI stand-in repository: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
    }

    /// The container's environment besides the pod's own: this machine's basics, the
    /// stand-ins, the volume's local folder, the container's own /tmp, and this pod's
    /// ComfyUI port.
    public func environment(volume: URL, temporary: URL, comfyPort: Int, brokenGPU: Bool, promptLog: URL, secondsPerImage: Double) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { ["HOME", "LANG"].contains($0.key) }
        environment["TMPDIR"] = temporary.path
        environment["PATH"] = binFolder.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        environment["PYTHONPATH"] = pythonFolder.path
        environment["SPOTQ_WORKSPACE"] = volume.path
        environment["SPOTQ_COMFY_REPO"] = "file://" + comfyRepository.path
        environment["SPOTQ_COMFY_PORT"] = "\(comfyPort)"
        environment["DEVCLOUD_SPOTQ"] = spotqExecutable
        environment["DEVCLOUD_GPU_BROKEN"] = brokenGPU ? "1" : "0"
        environment["DEVCLOUD_PROMPT_LOG"] = promptLog.path
        environment["DEVCLOUD_SECONDS_PER_IMAGE"] = "\(secondsPerImage)"
        return environment
    }

    static let nvidiaSMI = """
        #!/bin/sh
        # devcloud's nvidia-smi: one RTX A4000, or a broken driver.
        if [ "${DEVCLOUD_GPU_BROKEN:-0}" = 1 ]; then
            echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running. (devcloud)"
            exit 9
        fi
        echo "GPU 0: NVIDIA RTX A4000 (UUID: GPU-devcloud)"

        """

    static let torch = """
        # devcloud's torch: only what spotq's GPU check calls.
        import os


        def _broken():
            return os.environ.get("DEVCLOUD_GPU_BROKEN") == "1"


        class _Cuda:
            @staticmethod
            def is_available():
                return not _broken()


        cuda = _Cuda()


        class _Tensor:
            def cuda(self):
                if _broken():
                    raise RuntimeError("CUDA error: no CUDA-capable device is detected (devcloud)")
                return self


        def zeros(*shape):
            return _Tensor()

        """

    static let comfyMain = """
        # devcloud's ComfyUI: takes real ComfyUI's flags (--listen, --port,
        # --extra-model-paths-config, --output-directory, --disable-metadata, ...) and runs
        # `spotq devcloud comfy` with them, plus what devcloud sets for the pod.
        import os
        import sys

        spotq = os.environ["DEVCLOUD_SPOTQ"]
        extra = ["--seconds-per-image", os.environ.get("DEVCLOUD_SECONDS_PER_IMAGE", "1")]
        if os.environ.get("DEVCLOUD_PROMPT_LOG"):
            extra += ["--prompt-log", os.environ["DEVCLOUD_PROMPT_LOG"]]
        os.execv(spotq, [spotq, "devcloud", "comfy", *sys.argv[1:], *extra])

        """
}
