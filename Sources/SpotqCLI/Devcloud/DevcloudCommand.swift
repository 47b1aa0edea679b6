import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SpotqCore
import SpotqDevcloud
import SpotqSynthetic

/// `spotq devcloud`: local stand-ins for the services spotq cannot reach from here.
struct DevcloudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devcloud",
        abstract: "Local stand-ins for RunPod, ComfyUI, model hosts and spot metadata (`spotq devcloud` alone runs the whole cloud).",
        subcommands: [DevcloudCloudCommand.self, DevcloudComfyCommand.self, DevcloudAssetsCommand.self, DevcloudAssetsCSVCommand.self, DevcloudSpotCommand.self, DevcloudRequestsCommand.self],
        defaultSubcommand: DevcloudCloudCommand.self
    )
}

/// A `NAME:SIZE` asset on the command line (SIZE in bytes, or with kB/MB/GB).
struct AssetSpec: ExpressibleByArgument {
    var filename: String
    var kind: AssetKind
    var size: Int64

    init?(argument: String) {
        let parts = argument.split(separator: ":").map(String.init)
        guard parts.count == 3, let kind = AssetKind(rawValue: parts[1]), let size = Self.bytes(parts[2]) else { return nil }
        (filename, self.kind, self.size) = (parts[0], kind, size)
    }

    static func bytes(_ text: String) -> Int64? {
        let lower = text.lowercased()
        for (suffix, factor) in [("gb", 1e9), ("mb", 1e6), ("kb", 1e3)] where lower.hasSuffix(suffix) {
            return Double(lower.dropLast(2)).map { Int64($0 * factor) }
        }
        return Int64(lower)
    }

    static let help: ArgumentHelp = "NAME:KIND:SIZE, e.g. base.safetensors:checkpoint:200MB (repeatable)."
}

struct DevcloudComfyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comfy",
        abstract: "A ComfyUI-compatible HTTP server that writes real PNGs, started with ComfyUI's own main.py flags.",
        discussion: """
            Models are read from <base>/models/<kind>/ (base: --base-directory, else the current directory) and from \
            the folders of each --extra-model-paths-config YAML; images go to --output-directory (else <base>/output).
            """)

    // ComfyUI's `--listen [IP]`: absent 127.0.0.1, bare 0.0.0.0, else the address given (the
    // first of a comma-separated list). ArgumentParser has no option with an optional value,
    // so the address is the one positional argument, allowed only after --listen.
    @Flag(name: .customLong("listen"), help: "Listen on IP (--listen IP), or on every address (a bare --listen); default 127.0.0.1.") var listenFlag = false
    @Argument(help: ArgumentHelp("The address after --listen.", visibility: .hidden)) var listenAddress: String?
    @Option(help: "Port (ComfyUI's default is 8188).") var port = 8188
    @Option(name: .customLong("base-directory"), help: "ComfyUI's folder: models/, custom_nodes/ (must exist), output/, input/, temp/.") var baseDirectory: String?
    @Option(name: .customLong("extra-model-paths-config"), parsing: .upToNextOption, help: "A YAML naming more model folders per kind (repeatable).")
    var extraModelPathsConfigs: [String] = []
    @Option(name: .customLong("output-directory"), help: "Where images are written (default <base>/output).") var outputDirectory: String?
    @Option(name: .customLong("input-directory"), help: "Where LoadImage reads (default <base>/input).") var inputDirectory: String?
    @Option(name: .customLong("temp-directory"), help: "Where PreviewImage writes (default <base>/temp).") var temporaryDirectory: String?
    @Flag(name: .customLong("disable-metadata"), help: "Do not embed the prompt in written PNGs.") var disableMetadata = false
    @Flag(help: "Accepted for ComfyUI compatibility; ignored.") var cpu = false
    @Flag(name: .customLong("cache-none"), help: "Run every node of every prompt (default: ComfyUI's classic cache, the same graph again writes no new file).")
    var cacheNone = false
    @Flag(name: .customLong("cache-classic"), help: "ComfyUI's default cache (accepted; it is the default).") var cacheClassic = false
    @Option(name: .customLong("seconds-per-image"), help: "devcloud: time each prompt takes.") var secondsPerImage = 2.0
    @Option(name: .customLong("image-scale"), help: "devcloud: images are the workflow's size divided by this (1: full size, as ComfyUI).") var imageScale = 8
    @Option(name: .customLong("interrupt-latency"), help: "devcloud: seconds a prompt runs on after an interrupt (the next step boundary).") var interruptLatency = 0.5
    @Option(help: "devcloud: make every prompt fail: checkpoint-unreadable or cuda-error.") var fault: String?
    @Option(name: .customLong("prompt-log"), help: "devcloud: append `started <id>` and `ended <id>` to this file as prompts run.") var promptLog: String?

    func validate() throws {
        if listenAddress != nil && !listenFlag { throw ValidationError("unexpected argument \(listenAddress!) (an address goes after --listen)") }
    }

    var listen: String { listenFlag ? (listenAddress ?? "0.0.0.0") : "127.0.0.1" }

    func run() async throws {
        var logger = Logger(label: "spotq.devcloud.comfy")
        logger.logLevel = .info
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        func url(_ path: String) -> URL { URL(fileURLWithPath: path, relativeTo: here).standardizedFileURL }
        // Fails (exit 1) as ComfyUI fails at start: a base directory without custom_nodes/, a bad YAML.
        var configuration = try DevcloudComfy.Configuration.comfyUI(
            baseDirectory: baseDirectory.map(url), extraModelPathsConfigs: extraModelPathsConfigs.map(url),
            outputDirectory: outputDirectory.map(url), currentDirectory: here)
        if let inputDirectory { configuration.inputDirectory = url(inputDirectory) }
        if let temporaryDirectory { configuration.temporaryDirectory = url(temporaryDirectory) }
        configuration.secondsPerImage = secondsPerImage
        configuration.interruptLatency = interruptLatency
        configuration.imageScale = max(1, imageScale)
        configuration.disableMetadata = disableMetadata
        configuration.promptLog = promptLog.map(url)
        configuration.cacheOutputs = !cacheNone
        if let fault {
            guard let chosen = DevcloudComfy.Fault(rawValue: fault) else {
                throw ValidationError("--fault must be one of \(DevcloudComfy.Fault.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.fault = chosen
        }
        let host = String(listen.split(separator: ",").first ?? "127.0.0.1")
        let comfy = DevcloudComfy(configuration: configuration, logger: logger)
        try await DevcloudServer.makeApplication(host: host, port: port, logger: logger, register: { comfy.register(on: $0) }).runService()
    }
}

/// The model host's options, shared by `spotq devcloud` and `spotq devcloud assets`.
struct ModelHostOptions: ParsableArguments {
    @Option(name: .customLong("asset"), help: AssetSpec.help) var assets: [AssetSpec] = []
    @Option(help: "Model host bandwidth cap per connection, Mbit/s (0: none).") var mbps = 0.0
    @Option(help: "Serve this model as 404 (repeatable).") var missing: [String] = []
    @Option(help: "Serve this model with a wrong byte, so its hash does not match (repeatable).") var corrupt: [String] = []

    var configuration: DevcloudAssetServer.Configuration {
        var configuration = DevcloudAssetServer.Configuration()
        configuration.catalog = Dictionary(assets.map { ($0.filename, $0.size) }, uniquingKeysWith: { $1 })
        configuration.bytesPerSecond = Int(mbps * 1_000_000 / 8)
        configuration.missing = Set(missing)
        configuration.corrupt = Set(corrupt)
        return configuration
    }
}

struct DevcloudAssetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assets", abstract: "A model host serving deterministic files with Range support and a bandwidth cap.")

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 8090
    @OptionGroup var models: ModelHostOptions

    func run() async throws {
        var logger = Logger(label: "spotq.devcloud.assets")
        logger.logLevel = .info
        let server = DevcloudAssetServer(configuration: models.configuration, logger: logger)
        try await DevcloudServer.makeApplication(host: host, port: port, logger: logger, register: { server.register(on: $0) }).runService()
    }
}

struct DevcloudAssetsCSVCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assets-csv",
        abstract: "Print the asset registry CSV (with real SHA-256) for files `spotq devcloud assets` serves.",
        discussion: "Pipe it into `spotq assets import -`.")

    @Option(name: .customLong("base-url"), help: "Where `spotq devcloud assets` listens.") var baseURL = "http://127.0.0.1:8090"
    @Option(name: .customLong("asset"), help: AssetSpec.help) var assets: [AssetSpec] = []

    func run() async throws {
        print(AssetFileParser.columns.joined(separator: ","))
        for asset in assets {
            let sha = DeterministicBytes(filename: asset.filename, size: asset.size).sha256()
            print("\(asset.filename),\(asset.kind.rawValue),\(asset.size),\(sha),\(baseURL)/models/\(asset.filename)")
        }
    }
}

struct DevcloudSpotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spot",
        abstract: "An AWS-style spot metadata endpoint; POST /devcloud/spot/terminate makes it announce a termination.")

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 8091

    func run() async throws {
        let logger = Logger(label: "spotq.devcloud.spot")
        let metadata = SpotMetadata()
        try await DevcloudServer.makeApplication(host: host, port: port, logger: logger, register: { metadata.register(on: $0) }).runService()
    }
}

struct DevcloudRequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "Print N text-to-image requests (version-1 JSON lines) over the given models, for `spotq enqueue`.",
        discussion: "Checkpoints are used round-robin with skew (the first most); every third request uses a LoRA, when given.")

    @Option(help: "Requests to print.") var count = 300
    @Option(name: .customLong("checkpoint"), help: "Checkpoint file name (repeatable).") var checkpoints: [String] = []
    @Option(name: .customLong("lora"), help: "LoRA file name (repeatable).") var loras: [String] = []
    @Option(help: "request_id prefix.") var prefix = "demo"

    func run() async throws {
        guard !checkpoints.isEmpty else { throw ValidationError("give at least one --checkpoint") }
        for index in 0..<count {
            // Skewed: checkpoint k gets about twice as many requests as checkpoint k + 1.
            var pick = 0
            var share = index % ((1 << checkpoints.count) - 1) + 1
            while pick < checkpoints.count - 1, share > (1 << (checkpoints.count - 1 - pick)) {
                share -= 1 << (checkpoints.count - 1 - pick)
                pick += 1
            }
            let useLora = !loras.isEmpty && index % 3 == 2
            let request = TextToImageRequest(
                requestID: "\(prefix)-\(index)", checkpoint: checkpoints[pick],
                loras: useLora ? [LoraUse(file: loras[index % loras.count], strength: 0.8)] : [],
                positive: "demo image \(index): a lighthouse at dawn")
            print(String(decoding: request.messageJSON(), as: UTF8.self))
        }
    }
}
