import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SpotqCore

/// The HTTP routes of the ComfyUI stand-in, each also under `/api` as in ComfyUI.
extension DevcloudComfy {
    public nonisolated func register(on router: Router<BasicRequestContext>) {
        for prefix in ["", "/api"] {
            router.post("\(prefix)/prompt") { request, _ in
                let body = try await request.body.collect(upTo: 64 << 20)
                guard let (status, answer) = await self.submit(Array(buffer: body)) else { return Self.serverError() }
                return Self.json(status, answer)
            }
            router.get("\(prefix)/prompt") { _, _ in
                let remaining = await self.queueRemaining
                return Self.json(.ok, ["exec_info": ["queue_remaining": .integer(Int64(remaining))]])
            }
            router.get("\(prefix)/history") { request, _ in
                let limit = request.uri.queryParameters["max_items"].flatMap { Int(String($0)) }
                return Self.json(.ok, await self.allHistory(limit: limit))
            }
            router.get("\(prefix)/history/:id") { _, context in
                let id = context.parameters.get("id") ?? ""
                return Self.json(.ok, await self.historyJSON(id))
            }
            router.get("\(prefix)/queue") { _, _ in Self.json(.ok, await self.queueJSON()) }
            // Real ComfyUI: an empty body interrupts whatever runs; {"prompt_id": id} only that prompt.
            router.post("\(prefix)/interrupt") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 16)
                var promptID: String? = nil
                if let parsed = try? ComfyJSON.parse(Array(buffer: body)) {
                    guard case .object = parsed else { return Self.serverError() }  // `json_data.get` on a list
                    if let id = parsed[member: "prompt_id"], id != .null, id != .string("") { promptID = ComfyJSON.str(id) }
                }
                await self.interrupt(promptID: promptID)
                return Response(status: .ok)
            }
            // {"delete": [ids]} drops pending prompts (their history stays {}); {"clear": true} all of them.
            router.post("\(prefix)/queue") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 20)
                guard let object = try? ComfyJSON.parse(Array(buffer: body)), case .object = object else { return Self.serverError() }
                var ids: [String] = []
                if case .array(let values)? = object[member: "delete"] { ids = values.map(ComfyJSON.str) }
                await self.editQueue(delete: ids, clear: object[member: "clear"] == .bool(true))
                return Response(status: .ok)
            }
            router.get("\(prefix)/system_stats") { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: Self.systemStats)))
            }
            router.get("\(prefix)/models") { _, _ in
                Self.json(.ok, .array(ComfyModelFolders.kinds(self.configuration.modelFolders).map { .string($0) }))
            }
            router.get("\(prefix)/models/:kind") { _, context in
                let kind = ComfyModelFolders.canonical(context.parameters.get("kind") ?? "")
                guard self.configuration.modelFolders[kind] != nil else { return Response(status: .notFound) }
                return Self.json(.ok, .array(self.modelFiles(kind).map { .string($0) }))
            }
            router.get("\(prefix)/object_info") { _, _ in
                Self.json(.ok, .object(ComfyNodeClasses.list.map { ($0.name, self.objectInfo($0)) }))
            }
            router.get("\(prefix)/object_info/:class") { _, context in
                let name = context.parameters.get("class") ?? ""
                return Self.json(.ok, .object(ComfyNodeClasses.all[name].map { [(name, self.objectInfo($0))] } ?? []))
            }
            // {"unload_models": true, "free_memory": true}: nothing to free here but the cache.
            router.post("\(prefix)/free") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 16)
                if let object = try? ComfyJSON.parse(Array(buffer: body)), object[member: "unload_models"] == .bool(true) || object[member: "free_memory"] == .bool(true) {
                    await self.dropCache()
                }
                return Response(status: .ok)
            }
            router.get("\(prefix)/view") { request, _ in
                let query = request.uri.queryParameters
                switch self.viewFile(filename: query["filename"].map(String.init), type: query["type"].map(String.init), subfolder: query["subfolder"].map(String.init)) {
                case .failure(let refusal): return Response(status: refusal.status)
                case .success(let url):
                    guard let data = FileManager.default.contents(atPath: url.path) else { return Response(status: .notFound) }
                    let type = ["png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"][url.pathExtension.lowercased()] ?? "application/octet-stream"
                    return Response(
                        status: .ok, headers: [.contentType: type, .contentDisposition: "filename=\"\(url.lastPathComponent)\""],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
                }
            }
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: ComfyJSON.dumps(value))))
    }

    /// What aiohttp answers when a handler raises (real ComfyUI on a body it cannot handle).
    static func serverError() -> Response {
        Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: "500 Internal Server Error\n\nServer got itself in trouble")))
    }

    static let systemStats = #"{"system": {"os": "posix", "ram_total": 34359738368, "ram_free": 30000000000, "comfyui_version": "0.3.64-devcloud", "python_version": "3.11", "pytorch_version": "2.4.0", "embedded_python": false, "argv": ["main.py"]}, "devices": [{"name": "cuda:0 NVIDIA RTX A4000 (devcloud)", "type": "cuda", "index": 0, "vram_total": 17171480576, "vram_free": 16000000000, "torch_vram_total": 0, "torch_vram_free": 0}]}"#

    /// `/view`'s checks, in real ComfyUI's order: the file, or the status it answers.
    nonisolated func viewFile(filename: String?, type: String?, subfolder: String?) -> Result<URL, ViewRefusal> {
        guard var name = filename else { return .failure(ViewRefusal(.notFound)) }
        var folder: URL? = nil
        for (suffix, directory) in [("[output]", configuration.outputDirectory), ("[input]", configuration.inputDirectory), ("[temp]", configuration.temporaryDirectory)] where name.hasSuffix(suffix) {
            name = String(name.dropLast(suffix.count + 1))
            folder = directory
        }
        guard !name.isEmpty else { return .failure(ViewRefusal(.badRequest)) }
        guard !name.hasPrefix("/"), !name.contains("..") else { return .failure(ViewRefusal(.badRequest)) }
        if folder == nil {
            folder = ["output": configuration.outputDirectory, "temp": configuration.temporaryDirectory, "input": configuration.inputDirectory][type ?? "output"]
        }
        guard var directory = folder?.standardizedFileURL else { return .failure(ViewRefusal(.badRequest)) }
        if let subfolder {
            let root = directory.path
            let full = (subfolder.hasPrefix("/") ? URL(fileURLWithPath: subfolder) : directory.appendingPathComponent(subfolder)).standardizedFileURL
            guard full.path == root || full.path.hasPrefix(root + "/") else { return .failure(ViewRefusal(.forbidden)) }
            directory = full
        }
        let file = directory.appendingPathComponent((name as NSString).lastPathComponent)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue else { return .failure(ViewRefusal(.notFound)) }
        return .success(file)
    }

    struct ViewRefusal: Error {
        var status: HTTPResponse.Status
        init(_ status: HTTPResponse.Status) { self.status = status }
    }

    /// `GET /object_info/{class}`'s entry: inputs as `INPUT_TYPES` returns them (model lists read now).
    nonisolated func objectInfo(_ nodeClass: ComfyNodeClass) -> JSONValue {
        let validator = ComfyPromptValidator(prompt: [], classes: [:], modelFiles: { self.modelFiles($0) }, inputFiles: { self.inputFiles() })
        func section(_ inputs: [ComfyInput]) -> JSONValue { .object(inputs.map { ($0.name, validator.inputConfig($0)) }) }
        var input: [(String, JSONValue)] = [("required", section(nodeClass.required))]
        if !nodeClass.optional.isEmpty { input.append(("optional", section(nodeClass.optional))) }
        var order: [(String, JSONValue)] = [("required", .array(nodeClass.required.map { .string($0.name) }))]
        if !nodeClass.optional.isEmpty { order.append(("optional", .array(nodeClass.optional.map { .string($0.name) }))) }
        return [
            "input": .object(input), "input_order": .object(order),
            "output": .array(nodeClass.returnTypes.map { .string($0) }), "output_is_list": .array(nodeClass.returnTypes.map { _ in .bool(false) }),
            "output_name": .array(nodeClass.returnTypes.map { .string($0) }), "name": .string(nodeClass.name), "display_name": .string(nodeClass.name),
            "description": "", "python_module": "nodes", "category": "", "output_node": .bool(nodeClass.isOutput),
        ]
    }
}
