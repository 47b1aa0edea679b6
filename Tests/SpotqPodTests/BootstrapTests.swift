import Foundation
import ProcessLauncher
import SpotqCore
import SpotqPod
import SpotqTestSupport
import Testing

/// The pod bootstrap (Sources/SpotqPod/bootstrap.sh) run for real, killed and run again;
/// one at a time, as each installs a venv and fetches the binary.
@Suite(.serialized) struct BootstrapTests {
    @Test func aBootstrapKilledAtEachStep_resumesWithoutRedoingFinishedSteps_andAResumedPodSkipsEveryInstall() async throws {
        try await BootstrapSandbox.with { sandbox in
            let node = try await sandbox.makeCustomNode(named: "spotq-test-node")
            let environment = sandbox.environment(["SPOTQ_CUSTOM_NODES": node])
            let nodeStep = "custom-node-spotq-test-node-\(node.split(separator: "@").last!)"
            var finishedAtKill: Set<String> = []
            // Each kill point, or what this run says instead when an earlier run, killed later
            // than asked (a loaded machine), had finished that step already.
            let killPoints = [
                ("packages: starting", "packages: done before"), ("binary: fetching", "binary: present and verified"),
                ("comfyui: starting", "comfyui: done before"), ("venv: starting", "venv: done before"),
                ("\(nodeStep): starting", "\(nodeStep): done before"), ("comfyui: answering", "comfyui: answering"),
            ]
            for (killPoint, orAlready) in killPoints {
                let offset = sandbox.bootstrapLog.count
                let container = try sandbox.start(environment)
                // What this run found done must be skipped (each says so as the run reaches it), not redone.
                let done = finishedAtKill
                let run = try await sandbox.waitForRun(after: offset, "'\(killPoint)', every finished step skipped") { run in
                    (run.contains(killPoint) || run.contains(orAlready)) && done.allSatisfy { run.contains("\($0): done before, skipped") }
                }
                for step in finishedAtKill {
                    #expect(!run.contains("\(step): starting"), "\(step) was redone after a kill at '\(killPoint)'")
                }
                finishedAtKill = sandbox.finishedSteps()
                await sandbox.kill(container)
            }
            #expect(finishedAtKill == ["packages", "comfyui", "venv", nodeStep])
            // Run once more to the end: nothing is installed again, the binary is not fetched.
            let offset = sandbox.bootstrapLog.count
            let container = try sandbox.start(environment)
            let run = try await sandbox.waitForLog("starting the worker", after: offset)
            await sandbox.kill(container)
            Self.report("resumed pod", run)
            for step in finishedAtKill {
                #expect(run.contains("\(step): done before, skipped"))
                #expect(!run.contains("\(step): starting"), "\(run)")
            }
            #expect(run.contains("binary: present and verified"))
            #expect(!run.contains("binary: fetching"), "\(run)")
            #expect(run.contains("comfyui: answering on 127.0.0.1:\(sandbox.comfyPort)"))
            let installed = try PodSoftware.sha256(ofFile: sandbox.volume.appendingPathComponent("spotq/bin/spotq").path)
            #expect(installed == sandbox.binarySHA256)
            #expect(FileManager.default.fileExists(atPath: sandbox.volume.appendingPathComponent("ComfyUI/custom_nodes/spotq-test-node/__init__.py").path))
        }
    }

    @Test func comfyUIIsStartedOnLoopbackOnly_seeingTheWorkersModelFolders_withMetadataOff_andWithoutThePodsSecrets() async throws {
        try await BootstrapSandbox.with { sandbox in
            let container = try sandbox.start(sandbox.environment(["SPOTQ_UPLOAD_TOKEN": "sqp1_secret-of-the-worker", "SPOTQ_AMQP_URL": "amqps://pod:secret@localhost:1/x"]))
            Self.report("new pod", try await sandbox.waitForLog("starting the worker", after: 0))
            defer { Task { await sandbox.kill(container) } }
            let comfy = try #require(PodProcessArguments.find(group: container.pid) { Array($0.dropFirst().prefix(2)) == ["devcloud", "comfy"] }, "ComfyUI runs in the container")
            let arguments = comfy.arguments.joined(separator: " ")
            // ComfyUI and its custom nodes are anyone's code: they get neither the token nor the broker login.
            let environment = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(comfy.pid)/environ"))) ?? Data(), as: UTF8.self)
            #expect(environment.contains("SPOTQ_COMFY_PORT="), "the environment was read")
            #expect(!environment.contains("secret-of-the-worker") && !environment.contains("SPOTQ_AMQP_URL="))
            #expect(arguments.contains("--listen 127.0.0.1"))
            #expect(arguments.contains("--disable-metadata"))
            #expect(arguments.contains("--extra-model-paths-config \(sandbox.volume.path)/spotq/extra_model_paths.yaml"))
            let paths = try String(contentsOf: sandbox.volume.appendingPathComponent("spotq/extra_model_paths.yaml"), encoding: .utf8)
            #expect(paths.contains("base_path: \(sandbox.volume.path)/models"))
            #expect(paths.contains("checkpoints: checkpoints") && paths.contains("loras: loras"))
            await sandbox.kill(container)
        }
    }

    @Test func aBrokenGPUSkipsTheInstalls_andLeavesTheReportToTheWorker() async throws {
        try await BootstrapSandbox.with { sandbox in
            let container = try sandbox.start(sandbox.environment(brokenGPU: true))
            let run = try await sandbox.waitForLog("starting the worker", after: 0)
            await sandbox.kill(container)
            #expect(run.contains("gpu: check failed; skipping installs"))
            #expect(run.contains("NVIDIA-SMI has failed"), "the check's output is in the log")
            #expect(!run.contains("comfyui: starting") && !run.contains("venv: starting"))
        }
    }

    @Test func aBinaryWithAnotherHashIsNeverRun() async throws {
        try await BootstrapSandbox.with { sandbox in
            let wrong = String(repeating: "0", count: 64)
            let container = try sandbox.start(sandbox.environment(["SPOTQ_BINARY_SHA256": wrong]))
            let status = await container.wait(timeout: .seconds(60))
            await sandbox.kill(container)
            let log = sandbox.bootstrapLog
            #expect(status == 1)
            #expect(log.contains("is not the expected \(wrong); discarded"))
            #expect(log.contains("FAILED: binary: no verified spotq binary"))
            #expect(!FileManager.default.fileExists(atPath: sandbox.volume.appendingPathComponent("spotq/bin/spotq").path))
        }
    }

    @Test func theContainerCommandRunsOnlyABootstrapWithThePinnedHash() async throws {
        try await BootstrapSandbox.with { sandbox in
            for (pinned, runs) in [(String(repeating: "f", count: 64), false), (PodSoftware.bootstrapSHA256, true)] {
                let offset = sandbox.bootstrapLog.count
                let output = sandbox.root.appendingPathComponent("docker-args-\(runs).log")
                let container = try LaunchedProcess(
                    executable: "/bin/sh", arguments: ["-c", FleetSettings.PodTemplate.bootstrapDockerArgs],
                    environment: sandbox.environment(["SPOTQ_BOOTSTRAP_SHA256": pinned]), outputPath: output.path, ownProcessGroup: true)
                if runs {
                    _ = try await sandbox.waitForLog("starting on volume", after: offset)
                } else {
                    try await eventually("the container refuses the bootstrap") {
                        ((try? String(contentsOf: output, encoding: .utf8)) ?? "").contains("does not have the pinned SHA-256; not running it")
                    }
                    #expect(sandbox.bootstrapLog.count == offset, "the refused bootstrap did not run")
                }
                await sandbox.kill(container)
            }
        }
    }
}

extension BootstrapTests {
    /// Prints the bootstrap's own timing line, for the README's figures (not asserted).
    static func report(_ what: String, _ run: String) {
        if let line = run.split(separator: "\n").first(where: { $0.contains("starting the worker") }) { print("bootstrap | \(what) | \(line)") }
    }
}

/// The command lines of a container's processes.
enum PodProcessArguments {
    static func find(group: pid_t, where matches: ([String]) -> Bool) -> (pid: pid_t, arguments: [String])? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), getpgid(pid) == group,
                  let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { continue }
            let arguments = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if matches(arguments) { return (pid, arguments) }
        }
        return nil
    }
}
