import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SpotqCore
import SpotqSynthetic

/// `spotq devcloud comfy`: a ComfyUI stand-in speaking the HTTP API a pod uses
/// (`POST /prompt`, `GET /history/{id}`, `GET /view`, `GET /queue`, `GET /prompt`,
/// `POST /interrupt`, `GET /system_stats`, `GET /models/{folder}`, each also under `/api`).
/// It validates workflows like ComfyUI does where it matters to spotq: unknown node classes,
/// no output node, and `ckpt_name` / `lora_name` not among the files of its models folders
/// (`value_not_in_list`). It runs prompts one at a time, taking a set time per image, and
/// writes a real PNG per SaveImage node.
public actor DevcloudComfy {
    public struct Configuration: Sendable {
        /// Holds `checkpoints/` and `loras/` (the pod's `<workspace>/models`).
        public var modelsDirectory: URL
        public var outputDirectory: URL
        public var secondsPerImage: Double = 2
        /// Written images are the latent size divided by this (small, but real, PNGs).
        public var imageScale = 8

        public init(modelsDirectory: URL, outputDirectory: URL) {
            self.modelsDirectory = modelsDirectory
            self.outputDirectory = outputDirectory
        }
    }

    /// Node classes this stand-in knows; ComfyUI refuses others the same way.
    static let knownClasses: Set<String> = [
        "CheckpointLoaderSimple", "CheckpointLoader", "LoraLoader", "LoraLoaderModelOnly", "CLIPTextEncode",
        "EmptyLatentImage", "KSampler", "KSamplerAdvanced", "VAEDecode", "VAEEncode", "SaveImage", "PreviewImage",
        "LoadImage", "CLIPSetLastLayer", "LatentUpscale", "ImageScale",
    ]
    static let outputClasses: Set<String> = ["SaveImage", "PreviewImage"]
    static let modelExtensions = [".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"]

    struct Job: Sendable {
        var id: String
        var number: Int
        /// SaveImage / PreviewImage nodes: id, prefix, whether it is a temp preview.
        var outputs: [(node: String, prefix: String, temporary: Bool)]
        var width: Int
        var height: Int
        var seed: UInt64
        /// Set when a prompt text asks for an injected execution error (see ``executionErrorMarker``),
        /// or a loader names an unloadable model (``setUnloadable(_:)``).
        var failure: InjectedError? = nil
    }

    /// An `execution_error` a job ends with.
    struct InjectedError: Sendable {
        var node: String
        var nodeType: String
        var exceptionType: String
        var message: String
    }

    /// A prompt text holding this makes the image fail while running, as a CUDA error
    /// would: `execution_error` in its history. Fault tests use it.
    public static let executionErrorMarker = "[devcloud:execution-error]"
    /// A prompt text holding this makes the image fail while running for a reason of the
    /// workflow's (a shape mismatch, as a LoRA made for another model gives).
    public static let workflowErrorMarker = "[devcloud:workflow-error]"
    /// Models whose loader fails while running, as real ComfyUI does for a file that is not a
    /// safetensors file (SafetensorError "header too large").
    private var unloadable: Set<String> = []

    public func setUnloadable(_ filenames: Set<String>) { unloadable = filenames }

    public let configuration: Configuration
    let logger: Logger
    private var pending: [Job] = []
    private var running: Job?
    private var history: [String: String] = [:]
    private var counters: [String: Int] = [:]
    private var number = 0
    private var worker: Task<Void, Never>?
    private var interrupted = false
    /// Counts restarts: a job that was running when ComfyUI "restarted" leaves no history.
    private var epoch = 0
    /// Starts as configured; tests change it while the server runs.
    public private(set) var secondsPerImage: Double
    /// Prompts started so far (running or finished).
    public private(set) var started = 0

    public func setSecondsPerImage(_ seconds: Double) { secondsPerImage = seconds }

    /// True while a prompt is executing (the GPU is busy).
    public var isGenerating: Bool { running != nil }

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.secondsPerImage = configuration.secondsPerImage
    }

    // MARK: Routes

    public nonisolated func register(on router: Router<BasicRequestContext>) {
        for prefix in ["", "/api"] {
            router.post("\(prefix)/prompt") { request, _ in
                let body = try await request.body.collect(upTo: 16 << 20)
                let (status, text) = await self.submit(Data(buffer: body))
                return Self.json(status, text)
            }
            router.get("\(prefix)/prompt") { _, _ in Self.json(.ok, #"{"exec_info": {"queue_remaining": \#(await self.queueRemaining)}}"#) }
            router.get("\(prefix)/history/:id") { _, context in
                let id = context.parameters.get("id") ?? ""
                return Self.json(.ok, await self.historyJSON(id))
            }
            router.get("\(prefix)/queue") { _, _ in Self.json(.ok, await self.queueJSON()) }
            // Real ComfyUI: an empty body interrupts whatever runs; {"prompt_id": id} only that prompt.
            router.post("\(prefix)/interrupt") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 16)
                let promptID = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["prompt_id"] as? String
                await self.interrupt(promptID: promptID)
                return Response(status: .ok)
            }
            // {"delete": [ids]} drops pending prompts (their history stays {}); {"clear": true} all of them.
            router.post("\(prefix)/queue") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 20)
                let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]
                await self.editQueue(delete: object?["delete"] as? [String] ?? [], clear: object?["clear"] as? Bool ?? false)
                return Response(status: .ok)
            }
            router.get("\(prefix)/system_stats") { _, _ in Self.json(.ok, Self.systemStats) }
            router.get("\(prefix)/models/:folder") { _, context in
                let folder = context.parameters.get("folder") ?? ""
                guard folder == "checkpoints" || folder == "loras" else { return Response(status: .notFound) }
                let names = self.modelFiles(folder).map { JSONValue.string($0) }
                return Self.json(.ok, String(decoding: JSONValue.array(names).serialized(), as: UTF8.self))
            }
            router.get("\(prefix)/view") { request, _ in
                let query = request.uri.queryParameters
                let filename = query["filename"].map(String.init) ?? ""
                let subfolder = query["subfolder"].map(String.init) ?? ""
                guard !filename.isEmpty, !filename.hasPrefix("/"), !filename.contains(".."), !subfolder.contains("..") else {
                    return Response(status: .badRequest)
                }
                let url = self.configuration.outputDirectory.appendingPathComponent(subfolder).appendingPathComponent(filename)
                guard let data = FileManager.default.contents(atPath: url.path) else { return Response(status: .notFound) }
                return Response(
                    status: .ok, headers: [.contentType: "image/png", .contentDisposition: "filename=\"\(filename)\""],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
            }
        }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static let systemStats = #"{"system": {"os": "posix", "ram_total": 34359738368, "ram_free": 30000000000, "comfyui_version": "0.3.64-devcloud", "python_version": "3.11", "pytorch_version": "2.4.0", "embedded_python": false, "argv": ["main.py"]}, "devices": [{"name": "cuda:0 NVIDIA RTX A4000 (devcloud)", "type": "cuda", "index": 0, "vram_total": 17171480576, "vram_free": 16000000000, "torch_vram_total": 0, "torch_vram_free": 0}]}"#

    // MARK: Submitting

    nonisolated func modelFiles(_ folder: String) -> [String] {
        let directory = configuration.modelsDirectory.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { name in Self.modelExtensions.contains { name.lowercased().hasSuffix($0) } }.sorted()
    }

    /// Validates and queues; returns the HTTP status and body ComfyUI would.
    func submit(_ body: Data) -> (HTTPResponse.Status, String) {
        guard let root = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any], let prompt = root["prompt"] as? [String: Any] else {
            return (.badRequest, Self.error("no_prompt", "No prompt provided", "", nodeErrors: "{}"))
        }
        var outputs: [(String, String, Bool)] = []
        var nodeErrors: [(String, String)] = []
        var width = 1024, height = 1024
        var seed: UInt64 = 0
        var failure: InjectedError? = nil
        let checkpoints = modelFiles("checkpoints")
        let loras = modelFiles("loras")
        for (id, value) in prompt.sorted(by: { $0.key < $1.key }) {
            guard let node = value as? [String: Any], let classType = node["class_type"] as? String else {
                return (.badRequest, Self.error("invalid_prompt", "Cannot execute because a node is missing the class_type property.", "Node ID '#\(id)'", nodeErrors: "{}"))
            }
            guard Self.knownClasses.contains(classType) else {
                return (.badRequest, Self.error("invalid_prompt", "Cannot execute because node \(classType) does not exist.", "Node ID '#\(id)'", nodeErrors: "{}"))
            }
            let inputs = node["inputs"] as? [String: Any] ?? [:]
            for (input, folder, choices) in [("ckpt_name", "checkpoints", checkpoints), ("lora_name", "loras", loras)] {
                guard let name = inputs[input] as? String else { continue }
                guard choices.contains(name) else {
                    let list = choices.count > 20 ? "(list of length \(choices.count))" : "[" + choices.map { "'\($0)'" }.joined(separator: ", ") + "]"
                    let detail = "\(input): '\(name)' not in \(list)"
                    let error = JSONValue.object([
                        ("class_type", .string(classType)), ("dependent_outputs", .array([])),
                        ("errors", .array([.object([
                            ("type", "value_not_in_list"), ("message", "Value not in list"), ("details", .string(detail)),
                            ("extra_info", .object([("input_name", .string(input)), ("received_value", .string(name)), ("folder", .string(folder))])),
                        ])])),
                    ])
                    nodeErrors.append((id, String(decoding: error.serialized(), as: UTF8.self)))
                    continue
                }
            }
            if Self.outputClasses.contains(classType) {
                outputs.append((id, inputs["filename_prefix"] as? String ?? "ComfyUI", classType == "PreviewImage"))
            }
            if classType == "EmptyLatentImage" {
                width = (inputs["width"] as? Int) ?? width
                height = (inputs["height"] as? Int) ?? height
            }
            if classType.hasPrefix("KSampler"), let number = inputs["seed"] as? NSNumber { seed = number.uint64Value }
            if let text = inputs["text"] as? String, text.contains(Self.executionErrorMarker) {
                failure = InjectedError(node: id, nodeType: classType, exceptionType: "RuntimeError", message: "CUDA error: an illegal memory access was encountered (injected by devcloud)")
            }
            if let text = inputs["text"] as? String, text.contains(Self.workflowErrorMarker) {
                failure = InjectedError(node: id, nodeType: classType, exceptionType: "RuntimeError", message: "mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320) (injected by devcloud)\n")
            }
            if let name = (inputs["ckpt_name"] ?? inputs["lora_name"]) as? String, unloadable.contains(name), failure == nil {
                failure = InjectedError(node: id, nodeType: classType, exceptionType: "safetensors._safetensors_rust.SafetensorError", message: "Error while deserializing header: header too large\n")
            }
        }
        if !nodeErrors.isEmpty {
            let errors = "{" + nodeErrors.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
            // Real ComfyUI leaves `details` empty here: the causes are only in node_errors.
            return (.badRequest, Self.error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "", nodeErrors: errors))
        }
        guard !outputs.isEmpty else {
            return (.badRequest, Self.error("prompt_no_outputs", "Prompt has no outputs", "", nodeErrors: "[]"))
        }
        let id = (root["prompt_id"] as? String) ?? UUID().uuidString.lowercased()
        number += 1
        pending.append(Job(id: id, number: number, outputs: outputs, width: width, height: height, seed: seed, failure: failure))
        if worker == nil { worker = Task { await self.runQueue() } }
        return (.ok, #"{"prompt_id": "\#(id)", "number": \#(number), "node_errors": {}}"#)
    }

    static func error(_ type: String, _ message: String, _ details: String, nodeErrors: String) -> String {
        let error = JSONValue.object([("type", .string(type)), ("message", .string(message)), ("details", .string(details)), ("extra_info", .object([]))])
        return #"{"error": \#(String(decoding: error.serialized(), as: UTF8.self)), "node_errors": \#(nodeErrors)}"#
    }

    // MARK: Running

    var queueRemaining: Int { pending.count + (running == nil ? 0 : 1) }

    func runQueue() async {
        while !pending.isEmpty {
            let job = pending.removeFirst()
            running = job
            started += 1
            interrupted = false
            let epochAtStart = epoch
            let deadline = ContinuousClock.now + .seconds(secondsPerImage)
            while ContinuousClock.now < deadline && !interrupted {
                try? await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
            }
            if epoch != epochAtStart {
                // Restarted meanwhile: the prompt is gone, and so is any trace of it.
                continue
            } else if interrupted {
                history[job.id] = historyEntry(job, images: [], status: "error", message: "execution_interrupted")
            } else if let failure = job.failure {
                history[job.id] = historyEntry(job, images: [], status: "error", message: "execution_error", error: [
                    ("node_id", .string(failure.node)), ("node_type", .string(failure.nodeType)), ("exception_type", .string(failure.exceptionType)),
                    ("exception_message", .string(failure.message)), ("traceback", .array([])),
                ])
            } else {
                do {
                    let images = try writeImages(job)
                    history[job.id] = historyEntry(job, images: images, status: "success", message: "execution_success")
                } catch {
                    logger.error("devcloud comfy: could not write an image", metadata: ["error": "\(error)"])
                    history[job.id] = historyEntry(job, images: [], status: "error", message: "execution_error")
                }
            }
            running = nil
        }
        worker = nil
    }

    func writeImages(_ job: Job) throws -> [(node: String, filename: String, type: String)] {
        try FileManager.default.createDirectory(at: configuration.outputDirectory, withIntermediateDirectories: true)
        var written: [(String, String, String)] = []
        for output in job.outputs {
            let count = (counters[output.prefix] ?? 0) + 1
            counters[output.prefix] = count
            let filename = "\(output.prefix)_\(String(format: "%05d", count))_.png"
            let (w, h) = (max(8, job.width / configuration.imageScale), max(8, job.height / configuration.imageScale))
            let seed = job.seed
            let png = PNGEncoder.encode(width: w, height: h) { x, y in
                (UInt8(truncatingIfNeeded: x &* 7 &+ Int(seed & 0xFF)), UInt8(truncatingIfNeeded: y &* 5 &+ Int((seed >> 8) & 0xFF)), UInt8(truncatingIfNeeded: (x ^ y) &+ Int((seed >> 16) & 0xFF)))
            }
            try Data(png).write(to: configuration.outputDirectory.appendingPathComponent(filename))
            written.append((output.node, filename, output.temporary ? "temp" : "output"))
        }
        return written
    }

    func historyEntry(
        _ job: Job, images: [(node: String, filename: String, type: String)], status: String, message: String, error: [(String, JSONValue)] = []
    ) -> String {
        var outputs: [(String, JSONValue)] = []
        for image in images {
            outputs.append((image.node, .object([("images", .array([.object([("filename", .string(image.filename)), ("subfolder", ""), ("type", .string(image.type))])]))])))
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let entry = JSONValue.object([
            ("prompt", .array([.integer(Int64(job.number)), .string(job.id), .object([]), .object([]), .array(job.outputs.map { .string($0.node) })])),
            ("outputs", .object(outputs)),
            ("status", .object([
                ("status_str", .string(status)), ("completed", .bool(status == "success")),
                ("messages", .array([
                    .array(["execution_start", .object([("prompt_id", .string(job.id)), ("timestamp", .integer(now))])]),
                    .array([.string(message), .object([("prompt_id", .string(job.id)), ("timestamp", .integer(now))] + error)]),
                ])),
            ])),
        ])
        return String(decoding: entry.serialized(), as: UTF8.self)
    }

    func historyJSON(_ id: String) -> String {
        guard let entry = history[id] else { return "{}" }
        return "{\"\(id)\": \(entry)}"
    }

    func queueJSON() -> String {
        func row(_ job: Job) -> JSONValue { .array([.integer(Int64(job.number)), .string(job.id), .object([]), .object([]), .array(job.outputs.map { .string($0.node) })]) }
        let value = JSONValue.object([
            ("queue_running", .array(running.map { [row($0)] } ?? [])),
            ("queue_pending", .array(pending.map(row))),
        ])
        return String(decoding: value.serialized(), as: UTF8.self)
    }

    /// Stops the running image (its history says `execution_interrupted`); with a prompt id,
    /// only when that prompt is the one running.
    public func interrupt(promptID: String? = nil) {
        guard let running, promptID == nil || promptID == running.id else { return }
        interrupted = true
    }

    func editQueue(delete ids: [String], clear: Bool) {
        pending.removeAll { clear || ids.contains($0.id) }
    }

    /// What a ComfyUI restart does to the worker's prompts: the queue, the running prompt and
    /// the history (kept in memory) are gone; `/history/{id}` answers `{}` for good.
    public func restart() {
        pending.removeAll()
        history.removeAll()
        epoch += 1
        if running != nil { interrupted = true }
        running = nil
    }
}
