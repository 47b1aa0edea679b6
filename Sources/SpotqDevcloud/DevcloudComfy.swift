import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SpotqCore
import SpotqSynthetic

/// `spotq devcloud comfy`: a ComfyUI stand-in speaking the HTTP API a pod uses (`POST /prompt`,
/// `GET /history[/{id}]`, `GET /view`, `GET|POST /queue`, `GET /prompt`, `POST /interrupt`,
/// `GET /system_stats`, `GET /models[/{kind}]`, `GET /object_info[/{class}]`, `POST /free`, each
/// also under `/api`; routes in DevcloudComfy+Routes.swift), answering as real
/// ComfyUI 0.3.64 answers (shared/reference/comfyui-real.md): the same validation and refusal
/// JSON (``ComfyPromptValidator``), 500 for bodies that crash ComfyUI, partly valid prompts run
/// for their valid outputs, subfolders in `filename_prefix`, a cooperative interrupt, and PNGs
/// carrying the prompt in `tEXt` chunks. It runs prompts one at a time, taking a set time each.
public actor DevcloudComfy {
    struct Job: Sendable {
        var id: String
        var number: Int
        var prompt: [(String, JSONValue)]
        var extraData: JSONValue
        /// The valid outputs, the only ones run.
        var outputs: [String]
    }

    /// A prompt text holding this makes the image fail while running, as a CUDA error
    /// would: `execution_error` in its history. Fault tests use it.
    public static let executionErrorMarker = "[devcloud:execution-error]"
    /// A prompt text holding this fails while running as a workflow of its own making would
    /// (a shape mismatch between its nodes): the item's fault, not the pod's.
    public static let workflowErrorMarker = "[devcloud:workflow-error]"

    public let configuration: Configuration
    let logger: Logger
    private var pending: [Job] = []
    private var running: Job?
    private var history: [String: JSONValue] = [:]
    private var historyOrder: [String] = []
    private var number = 0
    private var worker: Task<Void, Never>?
    /// When the running prompt stops after an interrupt (the next step boundary).
    private var interruptAt: ContinuousClock.Instant?
    /// The outputs of the last prompt's nodes by cache key (ComfyUI's classic cache keeps the
    /// nodes of the prompt it ran last): the images an output node saved, null for the others.
    private var cache: [String: JSONValue] = [:]
    /// Counts restarts: a job that was running when ComfyUI "restarted" leaves no history.
    private var epoch = 0
    /// Starts as configured; tests change it while the server runs.
    public private(set) var secondsPerImage: Double
    /// Starts as configured; tests change it while the server runs.
    public private(set) var fault: Fault?
    /// Prompts started so far (running or finished).
    public private(set) var started = 0

    public func setSecondsPerImage(_ seconds: Double) { secondsPerImage = seconds }

    /// `POST /free`: cached node outputs are dropped (models would be unloaded).
    func dropCache() { cache.removeAll() }

    /// Makes every prompt from now on fail this way (nil: none fails). Cached node outputs are
    /// dropped, so a graph that ran before fails too.
    public func setFault(_ fault: Fault?) {
        self.fault = fault
        cache.removeAll()
    }

    /// Model files a loader fails on at execution (SafetensorError "header too large"), as
    /// real ComfyUI fails on a file that is listed but broken.
    private var unloadable: Set<String> = []

    public func setUnloadable(_ filenames: Set<String>) {
        unloadable = filenames
        cache.removeAll()
    }

    /// The first loader (checkpoint or LoRA) that names an unloadable model.
    func unloadableLoader(_ plan: ComfyExecutionPlan) -> String? {
        plan.order.first { id in
            let type = plan.classType(id)
            guard type.hasPrefix("CheckpointLoader") || type.hasPrefix("LoraLoader") else { return false }
            return (plan.input(id, "ckpt_name") ?? plan.input(id, "lora_name"))?.stringValue.map(unloadable.contains) ?? false
        }
    }

    /// True while a prompt is executing (the GPU is busy).
    public var isGenerating: Bool { running != nil }

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.secondsPerImage = configuration.secondsPerImage
        self.fault = configuration.fault
    }

    // MARK: Submitting

    nonisolated func modelFiles(_ kind: String) -> [String] {
        ComfyModelFolders.files(kind, in: configuration.modelFolders)
    }

    nonisolated func inputFiles() -> [String] {
        let folder = configuration.inputDirectory
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }

    /// `post_prompt`: validates and queues; the status and JSON ComfyUI answers, nil for a 500.
    func submit(_ body: [UInt8]) -> (HTTPResponse.Status, JSONValue)? {
        guard let root = try? ComfyJSON.parse(body) else { return nil }
        let noPrompt: (HTTPResponse.Status, JSONValue) = (.badRequest, [
            "error": ComfyPromptValidator.error("no_prompt", "No prompt provided", "No prompt provided"), "node_errors": .object([]),
        ])
        // `"number" in json_data` and `"prompt" in json_data` on whatever the body is.
        switch root {
        case .object: break
        case .array(let elements):
            guard !elements.contains(.string("number")), !elements.contains(.string("prompt")) else { return nil }
            number += 1
            return noPrompt
        case .string(let text):
            guard !text.contains("number"), !text.contains("prompt") else { return nil }
            number += 1
            return noPrompt
        default: return nil
        }
        let number = self.number
        self.number += 1
        guard let prompt = root[member: "prompt"] else { return noPrompt }
        let id = root[member: "prompt_id"].map(ComfyJSON.str) ?? UUID().uuidString.lowercased()
        let outcome = ComfyPromptValidator.validate(prompt, modelFiles: { self.modelFiles($0) }, inputFiles: { self.inputFiles() })
        var extraData = root[member: "extra_data"] ?? .object([])
        if let client = root[member: "client_id"], case .object(var members) = extraData {
            members.removeAll { $0.0 == "client_id" }
            members.append(("client_id", client))
            extraData = .object(members)
        }
        switch outcome {
        case .crashed: return nil
        case .refused(let error, let nodeErrors): return (.badRequest, ["error": error, "node_errors": nodeErrors])
        case .accepted(let outputs, let nodeErrors):
            pending.append(Job(id: id, number: number, prompt: prompt.objectMembers ?? [], extraData: extraData, outputs: outputs))
            if worker == nil { worker = Task { await self.runQueue() } }
            return (.ok, ["prompt_id": .string(id), "number": .integer(Int64(number)), "node_errors": nodeErrors])
        }
    }

    // MARK: Running

    var queueRemaining: Int { pending.count + (running == nil ? 0 : 1) }

    /// How a prompt ended.
    enum Ending {
        case success([(node: String, images: [JSONValue])])
        case error(node: String, type: String, message: String)
        case interrupted(node: String)

        /// The node it stopped at, if it did not finish.
        var stoppedAt: String? {
            switch self {
            case .success: nil
            case .error(let node, _, _), .interrupted(let node): node
            }
        }
    }

    func runQueue() async {
        while !pending.isEmpty {
            let job = pending.removeFirst()
            running = job
            started += 1
            logPrompt("started", job.id)
            // Real ComfyUI clears the interrupt flag as a prompt starts: one sent while idle is lost.
            interruptAt = nil
            let epochAtStart = epoch
            let plan = ComfyExecutionPlan(prompt: job.prompt, outputs: job.outputs, marker: Self.executionErrorMarker)
            let cached = configuration.cacheOutputs ? plan.order.filter { cache[plan.signatures[$0] ?? ""] != nil } : []
            let ending: Ending
            if let fault, let failure = Self.failure(fault, plan: plan) {
                ending = failure
            } else if let loader = unloadableLoader(plan) {
                ending = .error(node: loader, type: "safetensors._safetensors_rust.SafetensorError", message: "Error while deserializing header: header too large\n")
            } else if !plan.order.isEmpty, cached.count == plan.order.count {
                // Every node is cached: nothing runs, nothing is written, the earlier images are named.
                ending = .success(plan.saves.map { save in
                    guard case .array(let images)? = cache[plan.signatures[save.node] ?? ""] else { return (save.node, []) }
                    return (save.node, images)
                })
            } else {
                let deadline = ContinuousClock.now + .seconds(secondsPerImage)
                while ContinuousClock.now < deadline, epoch == epochAtStart, interruptAt.map({ ContinuousClock.now < $0 }) ?? true {
                    let until = min(deadline, interruptAt ?? deadline)
                    try? await Task.sleep(for: min(.milliseconds(20), until - ContinuousClock.now))
                }
                if epoch != epochAtStart { continue }  // restarted meanwhile: the prompt is gone, and so is any trace of it
                if let at = interruptAt, ContinuousClock.now >= at {
                    ending = .interrupted(node: plan.busyNode ?? job.outputs[0])
                } else if let node = plan.markedNode {
                    ending = .error(node: node, type: "RuntimeError", message: "CUDA error: an illegal memory access was encountered (injected by devcloud)")
                } else if let node = plan.order.first(where: { plan.input($0, "text")?.stringValue?.contains(Self.workflowErrorMarker) == true }) {
                    ending = .error(node: node, type: "RuntimeError", message: "mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320) (injected by devcloud)\n")
                } else {
                    ending = writeImages(job, plan: plan)
                }
            }
            guard epoch == epochAtStart else { continue }
            remember(plan, ending: ending)
            record(job.id, historyEntry(job, plan: plan, cached: cached, ending: ending))
            running = nil
            logPrompt("ended", job.id)
        }
        worker = nil
    }

    /// One line to ``Configuration/promptLog``, appended (devcloud reads it from outside).
    func logPrompt(_ what: String, _ id: String) {
        guard let path = configuration.promptLog?.path else { return }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data("\(what) \(id)\n".utf8))
    }

    /// Where and how a fault makes this prompt fail; nil when it does not touch the prompt
    /// (a corrupt checkpoint does not stop a graph that loads none).
    static func failure(_ fault: Fault, plan: ComfyExecutionPlan) -> Ending? {
        switch fault {
        case .checkpointUnreadable:
            guard let loader = plan.loader else { return nil }
            return .error(node: loader, type: "safetensors._safetensors_rust.SafetensorError", message: "Error while deserializing header: header too large\n")
        case .cudaError:
            guard let node = plan.busyNode else { return nil }
            return .error(node: node, type: "RuntimeError", message: "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n")
        }
    }

    func writeImages(_ job: Job, plan: ComfyExecutionPlan) -> Ending {
        var outputs: [(String, [JSONValue])] = []
        for save in plan.saves {
            do {
                let root = save.temporary ? configuration.temporaryDirectory : configuration.outputDirectory
                let prefix = save.temporary ? save.prefix + "_temp_" + String((0..<5).map { _ in "abcdefghijklmnopqrstupvxyz".randomElement()! }) : save.prefix
                let (folder, subfolder, filename) = try ComfySavePath.resolve(prefix: prefix, outputDirectory: root)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                var counter = ComfySavePath.nextCounter(in: folder, filename: filename)
                var images: [JSONValue] = []
                var text: [(String, String)] = []
                if !configuration.disableMetadata {
                    text.append(("prompt", ComfyJSON.dumps(.object(job.prompt))))
                    for (key, value) in job.extraData[member: "extra_pnginfo"]?.objectMembers ?? [] { text.append((key, ComfyJSON.dumps(value))) }
                }
                for index in 0..<max(1, save.count) {
                    let name = "\(filename)_\(String(format: "%05d", counter))_.png"
                    let (w, h) = (max(8, save.width / configuration.imageScale), max(8, save.height / configuration.imageScale))
                    let seed = plan.seed &+ UInt64(index)
                    let png = PNGEncoder.encode(width: w, height: h, text: text) { x, y in
                        (UInt8(truncatingIfNeeded: x &* 7 &+ Int(seed & 0xFF)), UInt8(truncatingIfNeeded: y &* 5 &+ Int((seed >> 8) & 0xFF)), UInt8(truncatingIfNeeded: (x ^ y) &+ Int((seed >> 16) & 0xFF)))
                    }
                    try Data(png).write(to: folder.appendingPathComponent(name))
                    images.append(["filename": .string(name), "subfolder": .string(subfolder), "type": .string(save.temporary ? "temp" : "output")])
                    counter += 1
                }
                outputs.append((save.node, images))
            } catch let outside as ComfySavePath.Outside {
                return .error(node: save.node, type: "Exception", message: outside.message)
            } catch {
                logger.error("devcloud comfy: could not write an image", metadata: ["error": "\(error)"])
                return .error(node: save.node, type: "OSError", message: "\(error)")
            }
        }
        return .success(outputs)
    }

    /// Keeps the outputs of the nodes this prompt ran (those before the one it stopped at), as
    /// the classic cache keeps only the nodes of the prompt it ran last.
    func remember(_ plan: ComfyExecutionPlan, ending: Ending) {
        guard configuration.cacheOutputs, fault == nil else { return }
        var kept: [String: JSONValue] = [:]
        var saved: [String: JSONValue] = [:]
        if case .success(let outputs) = ending { for (node, images) in outputs { saved[node] = .array(images) } }
        for node in plan.order {
            if node == ending.stoppedAt { break }
            guard let key = plan.signatures[node] else { continue }
            kept[key] = saved[node] ?? cache[key] ?? .null
        }
        cache = kept
    }

    func historyEntry(_ job: Job, plan: ComfyExecutionPlan, cached: [String], ending: Ending) -> JSONValue {
        func now() -> JSONValue { .integer(Int64(Date().timeIntervalSince1970 * 1000)) }
        func executed(before node: String) -> JSONValue { .array(plan.order.prefix { $0 != node }.map { .string($0) }) }
        var messages: [JSONValue] = [
            ["execution_start", ["prompt_id": .string(job.id), "timestamp": now()]],
            ["execution_cached", ["nodes": .array(cached.map { .string($0) }), "prompt_id": .string(job.id), "timestamp": now()]],
        ]
        var outputs: [(String, JSONValue)] = []
        var meta: [(String, JSONValue)] = []
        let status: String
        switch ending {
        case .success(let saved):
            status = "success"
            for (node, images) in saved {
                outputs.append((node, ["images": .array(images)]))
                meta.append((node, ["node_id": .string(node), "display_node": .string(node), "parent_node": .null, "real_node_id": .string(node)]))
            }
            messages.append(["execution_success", ["prompt_id": .string(job.id), "timestamp": now()]])
        case .error(let node, let type, let message):
            status = "error"
            let inputs = (plan.node(node)?[member: "inputs"]?.objectMembers ?? []).compactMap { (name: String, value: JSONValue) -> (String, JSONValue)? in
                if case .array(let link) = value, link.count == 2 { return nil }
                return (name, .array([value]))
            }
            messages.append(["execution_error", [
                "prompt_id": .string(job.id), "node_id": .string(node), "node_type": .string(plan.classType(node)), "executed": executed(before: node),
                "exception_message": .string(message), "exception_type": .string(type),
                "traceback": ["  File \"/ComfyUI/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(...)\n"],
                "current_inputs": .object(inputs), "current_outputs": executed(before: node), "timestamp": now(),
            ]])
        case .interrupted(let node):
            status = "error"
            messages.append(["execution_interrupted", [
                "prompt_id": .string(job.id), "node_id": .string(node), "node_type": .string(plan.classType(node)), "executed": executed(before: node), "timestamp": now(),
            ]])
        }
        return [
            "prompt": queueRow(job),
            "outputs": .object(outputs),
            "status": ["status_str": .string(status), "completed": .bool(status == "success"), "messages": .array(messages)],
            "meta": .object(meta),
        ]
    }

    func record(_ id: String, _ entry: JSONValue) {
        if history[id] == nil { historyOrder.append(id) }
        history[id] = entry
    }

    func historyJSON(_ id: String) -> JSONValue {
        guard let entry = history[id] else { return .object([]) }
        return .object([(id, entry)])
    }

    func allHistory(limit: Int?) -> JSONValue {
        let ids = limit.map { Array(historyOrder.suffix($0)) } ?? historyOrder
        return .object(ids.compactMap { id in history[id].map { (id, $0) } })
    }

    func queueRow(_ job: Job) -> JSONValue {
        .array([.integer(Int64(job.number)), .string(job.id), .object(job.prompt), job.extraData, .array(job.outputs.map { .string($0) })])
    }

    func queueJSON() -> JSONValue {
        ["queue_running": .array(running.map { [queueRow($0)] } ?? []), "queue_pending": .array(pending.map(queueRow))]
    }

    /// Stops the running prompt at its next step boundary (``Configuration/interruptLatency``
    /// from now); its history says `execution_interrupted`. With a prompt id, only when that
    /// prompt is the one running. An interrupt while nothing runs is lost, as in real ComfyUI.
    public func interrupt(promptID: String? = nil) {
        guard let running, promptID == nil || promptID == running.id else { return }
        if interruptAt == nil { interruptAt = ContinuousClock.now + .seconds(configuration.interruptLatency) }
    }

    func editQueue(delete ids: [String], clear: Bool) {
        pending.removeAll { clear || ids.contains($0.id) }
    }

    /// What a ComfyUI restart does to the worker's prompts: the queue, the running prompt and
    /// the history (kept in memory) are gone; `/history/{id}` answers `{}` for good.
    public func restart() {
        pending.removeAll()
        history.removeAll()
        historyOrder.removeAll()
        epoch += 1
        interruptAt = nil
        cache.removeAll()
        running = nil
    }
}
