import SpotqCore

/// One input of a ComfyUI node class, as its `INPUT_TYPES` declares it: the type (a link
/// type such as `MODEL`, a widget type, or a list of choices) and the options dict, written
/// here in the same order as ComfyUI's nodes.py so `input_config` in a refusal reads the same.
struct ComfyInput: Sendable {
    enum Kind: Sendable {
        /// Filled by a link `[node, slot]` from a node returning this type.
        case link(String)
        case int, float, string, boolean
        case choices([String])
        /// The files of a model kind (`folder_paths.get_filename_list(kind)`), read when validating.
        case models(String)
        /// The files of the input folder (LoadImage).
        case inputFiles
    }

    var name: String
    var kind: Kind
    var options: [(String, JSONValue)]

    /// The type as ComfyUI names it, for `return_type_mismatch` and `input_config`.
    var typeName: String {
        switch kind {
        case .link(let type): type
        case .int: "INT"
        case .float: "FLOAT"
        case .string: "STRING"
        case .boolean: "BOOLEAN"
        case .choices, .models, .inputFiles: "COMBO"
        }
    }

    func option(_ key: String) -> JSONValue? { options.first { $0.0 == key }?.1 }

    static func link(_ name: String, _ type: String, tooltip: String? = nil) -> ComfyInput {
        ComfyInput(name: name, kind: .link(type), options: tooltip.map { [("tooltip", .string($0))] } ?? [])
    }
}

/// A node class: its inputs, what it returns, and whether it is an output (`OUTPUT_NODE`).
struct ComfyNodeClass: Sendable {
    var name: String
    var required: [ComfyInput]
    var optional: [ComfyInput] = []
    var returnTypes: [String]
    var isOutput = false
    /// Inputs a `VALIDATE_INPUTS` checks instead of the list check (LoadImage's image).
    var customValidated: Set<String> = []

    var inputs: [(input: ComfyInput, required: Bool)] { required.map { ($0, true) } + optional.map { ($0, false) } }
}

/// The core node classes of ComfyUI 0.3.64 that spotq's workflows and a model-free smoke test
/// use (text to image with LoRAs, upscales, an EmptyImage → ImageBlur → SaveImage graph).
/// A class not listed here is refused as real ComfyUI refuses a class it does not know.
enum ComfyNodeClasses {
    /// `comfy.samplers.KSampler.SAMPLERS` of 0.3.64 (42 names).
    static let samplers = [
        "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral",
        "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu",
        "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
        "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp",
        "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
        "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
    ]
    /// `comfy.samplers.KSampler.SCHEDULERS` of 0.3.64.
    static let schedulers = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic", "kl_optimal"]

    static let maxResolution: Int64 = 16384
    static let latentUpscaleMethods = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
    static let imageUpscaleMethods = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    static let cropMethods = ["disabled", "center"]

    static func value(_ name: String, _ kind: ComfyInput.Kind, _ options: [(String, JSONValue)] = []) -> ComfyInput {
        ComfyInput(name: name, kind: kind, options: options)
    }

    static let all: [String: ComfyNodeClass] = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })

    static let list: [ComfyNodeClass] = [
        ComfyNodeClass(name: "CheckpointLoaderSimple", required: [
            value("ckpt_name", .models("checkpoints"), [("tooltip", "The name of the checkpoint (model) to load.")]),
        ], returnTypes: ["MODEL", "CLIP", "VAE"]),
        ComfyNodeClass(name: "CheckpointLoader", required: [
            value("config_name", .models("configs")), value("ckpt_name", .models("checkpoints")),
        ], returnTypes: ["MODEL", "CLIP", "VAE"]),
        ComfyNodeClass(name: "LoraLoader", required: [
            .link("model", "MODEL", tooltip: "The diffusion model the LoRA will be applied to."),
            .link("clip", "CLIP", tooltip: "The CLIP model the LoRA will be applied to."),
            value("lora_name", .models("loras"), [("tooltip", "The name of the LoRA.")]),
            value("strength_model", .float, [("default", 1.0), ("min", -100.0), ("max", 100.0), ("step", 0.01), ("tooltip", "How strongly to modify the diffusion model. This value can be negative.")]),
            value("strength_clip", .float, [("default", 1.0), ("min", -100.0), ("max", 100.0), ("step", 0.01), ("tooltip", "How strongly to modify the CLIP model. This value can be negative.")]),
        ], returnTypes: ["MODEL", "CLIP"]),
        ComfyNodeClass(name: "LoraLoaderModelOnly", required: [
            .link("model", "MODEL"), value("lora_name", .models("loras")),
            value("strength_model", .float, [("default", 1.0), ("min", -100.0), ("max", 100.0), ("step", 0.01)]),
        ], returnTypes: ["MODEL"]),
        ComfyNodeClass(name: "VAELoader", required: [value("vae_name", .models("vae"))], returnTypes: ["VAE"]),
        ComfyNodeClass(name: "UpscaleModelLoader", required: [value("model_name", .models("upscale_models"))], returnTypes: ["UPSCALE_MODEL"]),
        ComfyNodeClass(name: "CLIPTextEncode", required: [
            value("text", .string, [("multiline", true), ("dynamicPrompts", true), ("tooltip", "The text to be encoded.")]),
            .link("clip", "CLIP", tooltip: "The CLIP model used for encoding the text."),
        ], returnTypes: ["CONDITIONING"]),
        ComfyNodeClass(name: "CLIPSetLastLayer", required: [
            .link("clip", "CLIP"), value("stop_at_clip_layer", .int, [("default", -1), ("min", -24), ("max", -1), ("step", 1)]),
        ], returnTypes: ["CLIP"]),
        ComfyNodeClass(name: "ConditioningCombine", required: [.link("conditioning_1", "CONDITIONING"), .link("conditioning_2", "CONDITIONING")], returnTypes: ["CONDITIONING"]),
        ComfyNodeClass(name: "ConditioningZeroOut", required: [.link("conditioning", "CONDITIONING")], returnTypes: ["CONDITIONING"]),
        ComfyNodeClass(name: "EmptyLatentImage", required: [
            value("width", .int, [("default", 512), ("min", 16), ("max", .integer(maxResolution)), ("step", 8), ("tooltip", "The width of the latent images in pixels.")]),
            value("height", .int, [("default", 512), ("min", 16), ("max", .integer(maxResolution)), ("step", 8), ("tooltip", "The height of the latent images in pixels.")]),
            value("batch_size", .int, [("default", 1), ("min", 1), ("max", 4096), ("tooltip", "The number of latent images in the batch.")]),
        ], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "KSampler", required: [
            .link("model", "MODEL", tooltip: "The model used for denoising the input latent."),
            value("seed", .int, [("default", 0), ("min", 0), ("max", .unsigned(UInt64.max)), ("control_after_generate", true), ("tooltip", "The random seed used for creating the noise.")]),
            value("steps", .int, [("default", 20), ("min", 1), ("max", 10000), ("tooltip", "The number of steps used in the denoising process.")]),
            value("cfg", .float, [("default", 8.0), ("min", 0.0), ("max", 100.0), ("step", 0.1), ("round", 0.01), ("tooltip", "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality.")]),
            value("sampler_name", .choices(samplers), [("tooltip", "The algorithm used when sampling, this can affect the quality, speed, and style of the generated output.")]),
            value("scheduler", .choices(schedulers), [("tooltip", "The scheduler controls how noise is gradually removed to form the image.")]),
            .link("positive", "CONDITIONING", tooltip: "The conditioning describing the attributes you want to include in the image."),
            .link("negative", "CONDITIONING", tooltip: "The conditioning describing the attributes you want to exclude from the image."),
            .link("latent_image", "LATENT", tooltip: "The latent image to denoise."),
            value("denoise", .float, [("default", 1.0), ("min", 0.0), ("max", 1.0), ("step", 0.01), ("tooltip", "The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling.")]),
        ], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "KSamplerAdvanced", required: [
            .link("model", "MODEL"), value("add_noise", .choices(["enable", "disable"])),
            value("noise_seed", .int, [("default", 0), ("min", 0), ("max", .unsigned(UInt64.max)), ("control_after_generate", true)]),
            value("steps", .int, [("default", 20), ("min", 1), ("max", 10000)]),
            value("cfg", .float, [("default", 8.0), ("min", 0.0), ("max", 100.0), ("step", 0.1), ("round", 0.01)]),
            value("sampler_name", .choices(samplers)), value("scheduler", .choices(schedulers)),
            .link("positive", "CONDITIONING"), .link("negative", "CONDITIONING"), .link("latent_image", "LATENT"),
            value("start_at_step", .int, [("default", 0), ("min", 0), ("max", 10000)]),
            value("end_at_step", .int, [("default", 10000), ("min", 0), ("max", 10000)]),
            value("return_with_leftover_noise", .choices(["disable", "enable"])),
        ], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "VAEDecode", required: [
            .link("samples", "LATENT", tooltip: "The latent to be decoded."), .link("vae", "VAE", tooltip: "The VAE model used for decoding the latent."),
        ], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "VAEEncode", required: [.link("pixels", "IMAGE"), .link("vae", "VAE")], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "LatentUpscale", required: [
            .link("samples", "LATENT"), value("upscale_method", .choices(latentUpscaleMethods)),
            value("width", .int, [("default", 512), ("min", 0), ("max", .integer(maxResolution)), ("step", 8)]),
            value("height", .int, [("default", 512), ("min", 0), ("max", .integer(maxResolution)), ("step", 8)]),
            value("crop", .choices(cropMethods)),
        ], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "LatentUpscaleBy", required: [
            .link("samples", "LATENT"), value("upscale_method", .choices(latentUpscaleMethods)),
            value("scale_by", .float, [("default", 1.5), ("min", 0.01), ("max", 8.0), ("step", 0.01)]),
        ], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "RepeatLatentBatch", required: [
            .link("samples", "LATENT"), value("amount", .int, [("default", 1), ("min", 1), ("max", 64)]),
        ], returnTypes: ["LATENT"]),
        ComfyNodeClass(name: "ImageScale", required: [
            .link("image", "IMAGE"), value("upscale_method", .choices(imageUpscaleMethods)),
            value("width", .int, [("default", 512), ("min", 0), ("max", .integer(maxResolution)), ("step", 1)]),
            value("height", .int, [("default", 512), ("min", 0), ("max", .integer(maxResolution)), ("step", 1)]),
            value("crop", .choices(cropMethods)),
        ], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "ImageScaleBy", required: [
            .link("image", "IMAGE"), value("upscale_method", .choices(imageUpscaleMethods)),
            value("scale_by", .float, [("default", 1.0), ("min", 0.01), ("max", 8.0), ("step", 0.01)]),
        ], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "ImageUpscaleWithModel", required: [.link("upscale_model", "UPSCALE_MODEL"), .link("image", "IMAGE")], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "ImageInvert", required: [.link("image", "IMAGE")], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "EmptyImage", required: [
            value("width", .int, [("default", 512), ("min", 1), ("max", .integer(maxResolution)), ("step", 1)]),
            value("height", .int, [("default", 512), ("min", 1), ("max", .integer(maxResolution)), ("step", 1)]),
            value("batch_size", .int, [("default", 1), ("min", 1), ("max", 4096)]),
            value("color", .int, [("default", 0), ("min", 0), ("max", 0xFFFFFF), ("step", 1), ("display", "color")]),
        ], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "ImageBlur", required: [
            .link("image", "IMAGE"),
            value("blur_radius", .int, [("default", 1), ("min", 1), ("max", 31), ("step", 1)]),
            value("sigma", .float, [("default", 1.0), ("min", 0.1), ("max", 10.0), ("step", 0.1)]),
        ], returnTypes: ["IMAGE"]),
        ComfyNodeClass(name: "LoadImage", required: [value("image", .inputFiles, [("image_upload", true)])], returnTypes: ["IMAGE", "MASK"], customValidated: ["image"]),
        ComfyNodeClass(name: "SaveImage", required: [
            .link("images", "IMAGE", tooltip: "The images to save."),
            value("filename_prefix", .string, [("default", "ComfyUI"), ("tooltip", "The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes.")]),
        ], returnTypes: [], isOutput: true),
        ComfyNodeClass(name: "PreviewImage", required: [.link("images", "IMAGE")], returnTypes: [], isOutput: true),
    ]
}
