import Foundation
import SpotqCore

/// What running a validated prompt involves, worked out from its graph alone: the nodes in the
/// order ComfyUI runs them (each after the nodes it links to), the images each output node
/// saves and their size, and the nodes a fault lands on. Pure.
struct ComfyExecutionPlan {
    struct Save {
        var node: String
        var prefix: String
        /// PreviewImage: written to the temp folder, `"type": "temp"`.
        var temporary: Bool
        var width: Int
        var height: Int
        var count: Int
    }

    var order: [String] = []
    var saves: [Save] = []
    /// The first node loading a checkpoint (a corrupt checkpoint fails there).
    var loader: String?
    /// Where a long run spends its time, and so where an interrupt or a CUDA error lands.
    var busyNode: String?
    /// A node whose text holds ``DevcloudComfy/executionErrorMarker``.
    var markedNode: String?
    var seed: UInt64 = 0
    /// Each node's cache key (ComfyUI's input signature): its class and inputs, a link standing
    /// for the linked node's key, so the same graph sent again has the same keys.
    var signatures: [String: String] = [:]

    let nodes: [(String, JSONValue)]

    init(prompt: [(String, JSONValue)], outputs: [String], marker: String) {
        nodes = prompt
        var seen: Set<String> = []
        var order: [String] = []
        let graph = self
        func visit(_ id: String) {
            guard !seen.contains(id), graph.node(id) != nil else { return }
            seen.insert(id)
            for (_, from) in graph.links(id) { visit(from) }
            order.append(id)
        }
        for output in outputs { visit(output) }
        self.order = order
        for id in order {
            let inputs = (node(id)?[member: "inputs"]?.objectMembers ?? []).sorted { $0.0 < $1.0 }.map { (name: String, value: JSONValue) -> JSONValue in
                if case .array(let link) = value, link.count == 2, let from = link[0].stringValue, let key = signatures[from] {
                    return [.string(name), ["link", .string(key), link[1]]]
                }
                return [.string(name), value]
            }
            signatures[id] = Self.fnv1a(ComfyJSON.dumps([.string(classType(id)), .array(inputs)]))
        }
        for id in order {
            let type = classType(id)
            if loader == nil, type.hasPrefix("CheckpointLoader") { loader = id }
            if busyNode == nil, type.hasPrefix("KSampler") {
                busyNode = id
                seed = Self.unsigned(input(id, "seed") ?? input(id, "noise_seed")) ?? 0
            }
            if markedNode == nil, input(id, "text")?.stringValue?.contains(marker) == true { markedNode = id }
        }
        busyNode = busyNode ?? order.last
        for id in outputs {
            let (width, height, count) = size(of: linked(id, "images"), depth: 0)
            saves.append(Save(node: id, prefix: ComfyJSON.str(input(id, "filename_prefix") ?? "ComfyUI"), temporary: classType(id) == "PreviewImage",
                              width: width, height: height, count: count))
        }
    }

    /// 64-bit FNV-1a, hex: a short key that nests without growing.
    static func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }

    func node(_ id: String) -> JSONValue? { nodes.first { $0.0 == id }?.1 }
    func classType(_ id: String) -> String { node(id)?[member: "class_type"]?.stringValue ?? "" }
    func input(_ id: String, _ name: String) -> JSONValue? { node(id)?[member: "inputs"]?[member: name] }

    /// The node's link inputs: name and the node linked to.
    func links(_ id: String) -> [(String, String)] {
        (node(id)?[member: "inputs"]?.objectMembers ?? []).compactMap { name, value in
            guard case .array(let link) = value, link.count == 2, let from = link[0].stringValue, node(from) != nil else { return nil }
            return (name, from)
        }
    }

    func linked(_ id: String, _ name: String) -> String? { links(id).first { $0.0 == name }?.1 }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .integer(let whole)?: Double(whole)
        case .unsigned(let whole)?: Double(whole)
        case .number(let real)?: real
        case .string(let text)?: Double(text)
        default: nil
        }
    }

    static func unsigned(_ value: JSONValue?) -> UInt64? {
        switch value {
        case .integer(let whole)?: UInt64(truncatingIfNeeded: whole)
        case .unsigned(let whole)?: whole
        default: nil
        }
    }

    /// Width, height and batch size of the images arriving at a node, followed up its links.
    func size(of id: String?, depth: Int) -> (Int, Int, Int) {
        guard let id, depth < 64 else { return (512, 512, 1) }
        func int(_ name: String) -> Int? { Self.number(input(id, name)).map { Int($0) } }
        let upstream = { (name: String) in size(of: linked(id, name) ?? links(id).first?.1, depth: depth + 1) }
        switch classType(id) {
        case "EmptyLatentImage", "EmptyImage": return (int("width") ?? 512, int("height") ?? 512, int("batch_size") ?? 1)
        case "LoadImage": return (512, 512, 1)
        case "ImageScale", "LatentUpscale":
            let (w, h, n) = upstream(classType(id) == "ImageScale" ? "image" : "samples")
            let width = int("width") ?? 0, height = int("height") ?? 0
            if width == 0 && height == 0 { return (w, h, n) }
            if width == 0 { return (max(1, w * height / max(1, h)), height, n) }
            if height == 0 { return (width, max(1, h * width / max(1, w)), n) }
            return (width, height, n)
        case "ImageScaleBy", "LatentUpscaleBy":
            let (w, h, n) = upstream(classType(id) == "ImageScaleBy" ? "image" : "samples")
            let scale = Self.number(input(id, "scale_by")) ?? 1
            return (Int((Double(w) * scale).rounded()), Int((Double(h) * scale).rounded()), n)
        case "ImageUpscaleWithModel":
            let (w, h, n) = upstream("image")
            return (w * 4, h * 4, n)
        case "RepeatLatentBatch":
            let (w, h, n) = upstream("samples")
            return (w, h, n * (int("amount") ?? 1))
        default:
            for name in ["samples", "latent_image", "image", "images", "pixels"] {
                if let from = linked(id, name) { return size(of: from, depth: depth + 1) }
            }
            return (512, 512, 1)
        }
    }
}

/// Where SaveImage writes (folder_paths.get_save_image_path): `filename_prefix` may hold
/// subfolders ("spotq/batch7/item" → `spotq/batch7/item_00001_.png`), must stay inside the
/// output folder, and the counter continues after the highest one already on disk.
enum ComfySavePath {
    struct Outside: Error {
        var message: String
    }

    static func normpath(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == "..", let last = parts.last, last != ".." { parts.removeLast() }
            else if part == "..", absolute { continue }
            else { parts.append(part) }
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// The folder to write in, the subfolder to report, and the file name stem.
    static func resolve(prefix: String, outputDirectory: URL) throws -> (folder: URL, subfolder: String, filename: String) {
        let normalized = normpath(prefix)
        let slash = normalized.lastIndex(of: "/")
        let subfolder = slash.map { String(normalized[..<$0]) } ?? ""
        let filename = slash.map { String(normalized[normalized.index(after: $0)...]) } ?? normalized
        let root = outputDirectory.standardizedFileURL.path
        let folder: URL = normalized.hasPrefix("/")
            ? URL(fileURLWithPath: subfolder.isEmpty ? "/" : subfolder)
            : URL(fileURLWithPath: root).appendingPathComponent(subfolder)
        let path = folder.standardizedFileURL.path
        guard path == root || path.hasPrefix(root + "/") else {
            throw Outside(message: "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: \(path)\n         output_dir: \(root)")
        }
        return (folder.standardizedFileURL, subfolder, filename)
    }

    /// One more than the highest counter of `<filename>_NNNNN_…` files in `folder`, else 1.
    static func nextCounter(in folder: URL, filename: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let length = filename.count
        var highest = 0
        for name in names where name.count > length && name.hasPrefix(filename) && Array(name)[length] == "_" {
            let rest = name.dropFirst(length + 1)
            highest = max(highest, Int(rest.split(separator: "_", omittingEmptySubsequences: false).first ?? "") ?? 0)
        }
        return highest + 1
    }
}
