import Foundation

/// Where ComfyUI 0.3.64 looks for models (folder_paths.py): per kind, a list of folders, each
/// searched recursively; files are filtered by the kind's extensions and listed sorted, read
/// afresh on every call (so a file that appears later is listed without a restart).
public enum ComfyModelFolders {
    /// The kinds ComfyUI knows from the start, in its order, and their folders under `models/`.
    static let standardKinds: [(kind: String, folders: [String])] = [
        ("checkpoints", ["checkpoints"]), ("configs", ["configs"]), ("loras", ["loras"]), ("vae", ["vae"]),
        ("text_encoders", ["text_encoders", "clip"]), ("diffusion_models", ["unet", "diffusion_models"]),
        ("clip_vision", ["clip_vision"]), ("style_models", ["style_models"]), ("embeddings", ["embeddings"]),
        ("diffusers", ["diffusers"]), ("vae_approx", ["vae_approx"]), ("controlnet", ["controlnet", "t2i_adapter"]),
        ("gligen", ["gligen"]), ("upscale_models", ["upscale_models"]), ("custom_nodes", []), ("hypernetworks", ["hypernetworks"]),
        ("photomaker", ["photomaker"]), ("classifiers", ["classifiers"]), ("model_patches", ["model_patches"]), ("audio_encoders", ["audio_encoders"]),
    ]
    static let modelExtensions: Set<String> = [".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"]

    /// Old names ComfyUI still accepts (`map_legacy`).
    static func canonical(_ kind: String) -> String {
        ["unet": "diffusion_models", "clip": "text_encoders"][kind] ?? kind
    }

    /// Which file names a kind lists: nil lists every file (custom kinds from a YAML).
    static func extensions(of kind: String) -> Set<String>? {
        switch kind {
        case "configs": [".yaml"]
        case "diffusers": ["folder"]
        case "classifiers": [""]
        case "custom_nodes": nil
        case _ where standardKinds.contains { $0.kind == kind }: modelExtensions
        default: nil
        }
    }

    /// The layout of a ComfyUI folder: `<base>/models/<kind>/`, `<base>/custom_nodes`, and the
    /// folders ComfyUI adds under its output folder (`<output>/checkpoints`, `loras`, …).
    static func standard(base: URL, modelsDirectory: URL, outputDirectory: URL) -> [String: [URL]] {
        var folders: [String: [URL]] = [:]
        for (kind, names) in standardKinds {
            folders[kind] = names.map { modelsDirectory.appendingPathComponent($0) }
        }
        folders["custom_nodes"] = [base.appendingPathComponent("custom_nodes")]
        for (kind, name) in [("checkpoints", "checkpoints"), ("text_encoders", "clip"), ("vae", "vae"), ("diffusion_models", "diffusion_models"), ("loras", "loras")] {
            folders[kind, default: []].append(outputDirectory.appendingPathComponent(name))
        }
        return folders
    }

    /// The kinds in ComfyUI's order, then any a YAML added (sorted).
    static func kinds(_ folders: [String: [URL]]) -> [String] {
        let standard = standardKinds.map(\.kind)
        return standard.filter { folders[$0] != nil } + folders.keys.filter { !standard.contains($0) }.sorted()
    }

    /// `get_filename_list(kind)`: paths relative to their folder, sorted, without duplicates.
    static func files(_ kind: String, in folders: [String: [URL]]) -> [String] {
        let kind = canonical(kind)
        let allowed = extensions(of: kind)
        var names: Set<String> = []
        for folder in folders[kind] ?? [] {
            for name in listRecursively(folder) {
                let ext = (name as NSString).pathExtension
                let suffix = ext.isEmpty ? "" : "." + ext.lowercased()
                if let allowed, !allowed.contains(suffix) { continue }
                names.insert(name)
            }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func listRecursively(_ folder: URL) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
        var result: [String] = []
        func walk(_ directory: URL, _ relative: String) {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where name != ".git" {
                let url = directory.appendingPathComponent(name)
                let path = relative.isEmpty ? name : relative + "/" + name
                var sub: ObjCBool = false
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &sub), sub.boolValue { walk(url, path) } else { result.append(path) }
            }
        }
        walk(folder, "")
        return result
    }
}
