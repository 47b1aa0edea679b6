import Foundation

/// A LoRA an item applies, and how strongly.
public struct LoraUse: Sendable, Hashable, Codable {
    public var file: String
    public var strength: Double

    public init(file: String, strength: Double) {
        self.file = file
        self.strength = strength
    }
}

/// Builds a version-1 enqueue message for a plain text-to-image job with the standard
/// ComfyUI nodes (checkpoint loader, a LoRA loader per LoRA, two prompts, empty latent,
/// KSampler, VAE decode, save). The demo, the benchmarks and the tests use it; a website
/// sends its own workflows.
public struct TextToImageRequest: Sendable {
    public var requestID: String
    public var checkpoint: String
    public var loras: [LoraUse] = []
    public var positive: String
    public var negative = "blurry, low quality"
    public var seed: UInt64 = 0
    public var width = 1024
    public var height = 1024
    public var steps = 25
    public var cfg = 7.0
    public var samplerName = "euler"
    public var scheduler = "normal"
    public var priority = 0

    public init(requestID: String, checkpoint: String, loras: [LoraUse] = [], positive: String) {
        self.requestID = requestID
        self.checkpoint = checkpoint
        self.loras = loras
        self.positive = positive
    }

    /// The ComfyUI API-format workflow, as a JSON object.
    public func workflow() -> [String: Any] {
        var nodes: [String: Any] = [
            "4": ["class_type": "CheckpointLoaderSimple", "inputs": ["ckpt_name": checkpoint]],
        ]
        var model: [Any] = ["4", 0]
        var clip: [Any] = ["4", 1]
        for (index, lora) in loras.enumerated() {
            let id = String(10 + index)
            nodes[id] = ["class_type": "LoraLoader", "inputs": [
                "lora_name": lora.file, "strength_model": lora.strength, "strength_clip": lora.strength,
                "model": model, "clip": clip,
            ] as [String: Any]]
            model = [id, 0]
            clip = [id, 1]
        }
        nodes["6"] = ["class_type": "CLIPTextEncode", "inputs": ["text": positive, "clip": clip] as [String: Any]]
        nodes["7"] = ["class_type": "CLIPTextEncode", "inputs": ["text": negative, "clip": clip] as [String: Any]]
        nodes["5"] = ["class_type": "EmptyLatentImage", "inputs": ["width": width, "height": height, "batch_size": 1]]
        nodes["3"] = ["class_type": "KSampler", "inputs": [
            "seed": NSNumber(value: seed), "steps": steps, "cfg": cfg, "sampler_name": samplerName, "scheduler": scheduler,
            "denoise": 1, "model": model, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
        ] as [String: Any]]
        nodes["8"] = ["class_type": "VAEDecode", "inputs": ["samples": ["3", 0], "vae": ["4", 2]] as [String: Any]]
        nodes["9"] = ["class_type": "SaveImage", "inputs": ["filename_prefix": "spotq", "images": ["8", 0]] as [String: Any]]
        return nodes
    }

    /// The message object (see ``EnqueueMessage``).
    public func messageObject() -> [String: Any] {
        [
            "version": EnqueueMessage.version,
            "request_id": requestID,
            "checkpoint": checkpoint,
            "loras": loras.map { ["file": $0.file, "strength": $0.strength] as [String: Any] },
            "prompt": [
                "positive": positive, "negative": negative, "seed": NSNumber(value: seed), "width": width, "height": height,
                "steps": steps, "cfg": cfg, "sampler_name": samplerName, "scheduler": scheduler,
            ] as [String: Any],
            "workflow": workflow(),
            "priority": priority,
        ]
    }

    /// The message as one line of compact JSON.
    public func messageJSON() -> [UInt8] {
        // Every value above is JSON-serializable, so this cannot fail.
        Array(try! JSONSerialization.data(withJSONObject: messageObject(), options: [.sortedKeys, .withoutEscapingSlashes]))
    }
}
