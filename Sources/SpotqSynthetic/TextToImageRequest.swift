import SpotqCore

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

    /// The ComfyUI API-format workflow.
    public func workflow() -> JSONValue {
        func link(_ node: String, _ output: Int64) -> JSONValue { [.string(node), .integer(output)] }
        var nodes: [(String, JSONValue)] = [
            ("4", ["class_type": "CheckpointLoaderSimple", "inputs": ["ckpt_name": .string(checkpoint)]]),
        ]
        var model = link("4", 0)
        var clip = link("4", 1)
        for (index, lora) in loras.enumerated() {
            let id = String(10 + index)
            nodes.append((id, ["class_type": "LoraLoader", "inputs": [
                "lora_name": .string(lora.file), "strength_model": .number(lora.strength), "strength_clip": .number(lora.strength),
                "model": model, "clip": clip,
            ]]))
            model = link(id, 0)
            clip = link(id, 1)
        }
        nodes += [
            ("6", ["class_type": "CLIPTextEncode", "inputs": ["text": .string(positive), "clip": clip]]),
            ("7", ["class_type": "CLIPTextEncode", "inputs": ["text": .string(negative), "clip": clip]]),
            ("5", ["class_type": "EmptyLatentImage", "inputs": [
                "width": .integer(Int64(width)), "height": .integer(Int64(height)), "batch_size": 1,
            ]]),
            ("3", ["class_type": "KSampler", "inputs": [
                "seed": .unsigned(seed), "steps": .integer(Int64(steps)), "cfg": .number(cfg),
                "sampler_name": .string(samplerName), "scheduler": .string(scheduler), "denoise": 1,
                "model": model, "positive": link("6", 0), "negative": link("7", 0), "latent_image": link("5", 0),
            ]]),
            ("8", ["class_type": "VAEDecode", "inputs": ["samples": link("3", 0), "vae": link("4", 2)]]),
            ("9", ["class_type": "SaveImage", "inputs": ["filename_prefix": "spotq", "images": link("8", 0)]]),
        ]
        return .object(nodes)
    }

    /// The message (see ``EnqueueMessage``).
    public func message() -> JSONValue {
        [
            "version": .integer(Int64(EnqueueMessage.version)),
            "request_id": .string(requestID),
            "checkpoint": .string(checkpoint),
            "loras": .array(loras.map { ["file": .string($0.file), "strength": .number($0.strength)] }),
            "prompt": [
                "positive": .string(positive), "negative": .string(negative), "seed": .unsigned(seed),
                "width": .integer(Int64(width)), "height": .integer(Int64(height)), "steps": .integer(Int64(steps)),
                "cfg": .number(cfg), "sampler_name": .string(samplerName), "scheduler": .string(scheduler),
            ],
            "workflow": workflow(),
            "priority": .integer(Int64(priority)),
        ]
    }

    /// The message as one line of compact JSON.
    public func messageJSON() -> [UInt8] {
        message().serialized()
    }
}
