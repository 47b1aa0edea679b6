import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ProcessLauncher
import SpotqCore
import SpotqSynthetic

/// `spotq devcloud`'s cloud: the RunPod GraphQL calls spotq makes (`POST /graphql`, either
/// auth form, 401 for a wrong key), each pod a local "container" running the pod's own
/// `dockerArgs` as RunPod would (spotq's default fetches and runs the real pod bootstrap,
/// which installs ComfyUI's stand-in from ``DevcloudPodImage`` and starts the worker under
/// its supervisor), with a volume folder kept across stop and resume; a spot market with a
/// minimum bid and limited stock; and faults: broken GPUs, reclaims (SIGTERM to the
/// container's first process, then SIGKILL to all of it after a grace), hard kills, worker
/// crashes, slow or failing starts, failing resumes.
public actor DevcloudCloud {
    public struct Configuration: Sendable {
        public var apiKey: String
        /// Pods' folders: `<root>/pods/<id>/{volume,container.log,comfy-prompts.log}`; the
        /// pod image's stand-ins in `<root>/image`.
        public var root: URL
        /// The `spotq` executable the pod image's ComfyUI stand-in runs (the worker's binary
        /// comes from the spotq server, as on RunPod).
        public var spotqExecutable: String
        public var gpuTypes = ["NVIDIA RTX A4000"]
        /// Lowest accepted spot bid per GPU-hour.
        public var minimumBid = 0.13
        public var onDemandPrice = 0.25
        /// GPUs for rent in all.
        public var stock = 8
        /// false: the spot mutations answer as a schema without them (RunPod's phase-out).
        public var spotAvailable = true
        /// Chance a new pod's GPU check fails (the seed saw 5–10%).
        public var gpuFailureRate = 0.07
        /// Rentals (1-based, in order) whose GPU is broken regardless of the rate.
        public var brokenGPURentals: Set<Int> = []
        /// Seconds before a pod's container is up (`runtime` null until then).
        public var startSeconds = 1.0
        /// Chance a pod never starts.
        public var failingStartRate = 0.0
        /// Chance a bid-resume finds no free GPU on the host.
        public var resumeFailureRate = 0.0
        /// Reclaims: SIGTERM, then SIGKILL after this.
        public var reclaimGraceSeconds = 5.0
        /// Mean seconds between random reclaims of running spot pods; nil: none.
        public var reclaimEverySeconds: Double?
        public var secondsPerImage = 1.0
        /// Added to every pod's container environment (log level, idle exit, …).
        public var workerEnvironment: [String: String] = [:]
        /// Pods' ComfyUI ports are taken from here up: below 19000, so neither Linux's ephemeral
        /// range nor the tests' free ports (20000–31999) reach them, and a server a test stops
        /// for a while gets its port back.
        public var comfyPortBase = 12_000 + Int(getpid() % 50) * 100
        public var randomSeed: UInt64 = 1

        public init(apiKey: String, root: URL, spotqExecutable: String) {
            self.apiKey = apiKey
            self.root = root
            self.spotqExecutable = spotqExecutable
        }
    }

    final class Pod: @unchecked Sendable {
        // Mutated only inside the actor.
        let id: String
        let name: String
        let gpuType: String
        let gpuCount: Int
        let interruptible: Bool
        var bid: Double?
        var costPerHour: Double
        var desiredStatus = "RUNNING"
        var runtimeSince: Date?
        var lastStatusChange: String
        let environment: [String: String]
        /// The container's command ("" is the image's default: idle).
        let dockerArgs: String
        let volumeGB: Int
        let brokenGPU: Bool
        let neverStarts: Bool
        /// The container's first process, leading a process group holding all of it.
        var container: LaunchedProcess?
        var comfyPort = 0
        var reclaims = 0

        init(id: String, name: String, gpuType: String, gpuCount: Int, interruptible: Bool, bid: Double?, costPerHour: Double,
             environment: [String: String], dockerArgs: String, volumeGB: Int, brokenGPU: Bool, neverStarts: Bool) {
            self.id = id
            self.name = name
            self.gpuType = gpuType
            self.gpuCount = gpuCount
            self.interruptible = interruptible
            self.bid = bid
            self.costPerHour = costPerHour
            self.environment = environment
            self.dockerArgs = dockerArgs
            self.volumeGB = volumeGB
            self.brokenGPU = brokenGPU
            self.neverStarts = neverStarts
            self.lastStatusChange = "Rented by User: \(Date())"
        }
    }

    public let configuration: Configuration
    let logger: Logger
    private var pods: [String: Pod] = [:]
    private var rentals = 0
    private var random: SplitMix
    private var chaos: Task<Void, Never>?
    /// What happened, for tests and the demo's summary.
    public private(set) var reclaimCount = 0
    public private(set) var brokenGPUCount = 0
    public private(set) var killCount = 0
    public private(set) var crashCount = 0
    /// Prompts started by the ComfyUI of pods that are gone.
    private var promptsOfEndedPods = 0
    let image: DevcloudPodImage

    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.random = SplitMix(seed: configuration.randomSeed)
        image = DevcloudPodImage(root: configuration.root.appendingPathComponent("image"), spotqExecutable: configuration.spotqExecutable)
        try image.prepare()
    }

    // MARK: Routes

    public nonisolated func register(on router: Router<BasicRequestContext>) {
        router.post("/graphql") { request, _ in
            let key = request.uri.queryParameters.get("api_key")
                ?? request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            guard let key, Self.constantTimeEqual(key, self.configuration.apiKey) else {
                return Self.json(.unauthorized, #"{"errors": [{"message": "Unauthorized"}]}"#)
            }
            let body = try await request.body.collect(upTo: 1 << 20)
            let (status, text) = await self.graphQL(Data(buffer: body))
            return Self.json(status, text)
        }
        router.post("/devcloud/pods/:id/reclaim") { _, context in
            let ok = await self.reclaim(context.parameters.get("id") ?? "", hard: false)
            return Response(status: ok ? .ok : .notFound)
        }
        router.post("/devcloud/pods/:id/kill") { _, context in
            let ok = await self.reclaim(context.parameters.get("id") ?? "", hard: true)
            return Response(status: ok ? .ok : .notFound)
        }
        // Reclaims one running spot pod whose worker is alive (the demo's injected reclaim).
        router.post("/devcloud/reclaim-one") { request, _ in
            let hard = request.uri.queryParameters.get("hard") == "true"
            guard let id = await self.reclaimSomePod(hard: hard) else { return Response(status: .notFound) }
            return Self.json(.ok, #"{"pod": "\#(id)"}"#)
        }
        // SIGKILLs the worker process of one running pod while it is generating an image
        // (`during=image`) or has a model download under way (`during=download`); the
        // container stays up, like a worker crashing. `process=comfyui` kills the pod's
        // ComfyUI instead (with `during=image`). `within=S` (at most 120) waits up to S
        // seconds for a pod to be in that phase; 409 when none is (by then).
        router.post("/devcloud/crash-worker") { request, _ in
            guard let phase = request.uri.queryParameters.get("during").flatMap({ WorkerPhase(rawValue: String($0)) }) else {
                return Self.json(.badRequest, #"{"error": "during must be image or download"}"#)
            }
            guard let process = PodProcess(rawValue: request.uri.queryParameters.get("process").map { String($0) } ?? "worker") else {
                return Self.json(.badRequest, #"{"error": "process must be worker or comfyui"}"#)
            }
            let within = request.uri.queryParameters.get("within").flatMap { Double(String($0)) }.map { min(max($0, 0), 120) } ?? 0
            let deadline = ContinuousClock.now + .milliseconds(Int64(within * 1000))
            var crashed = await self.crash(process, during: phase)
            while crashed == nil, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
                crashed = await self.crash(process, during: phase)
            }
            guard let id = crashed else {
                return Self.json(.conflict, #"{"error": "no pod's worker is in that phase now"}"#)
            }
            return Self.json(.ok, #"{"pod": "\#(id)"}"#)
        }
        router.get("/devcloud/summary") { _, _ in Self.json(.ok, await self.summaryJSON()) }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: GraphQL

    /// The operation's root field, from `mutation Name(...) { field(...) {...} }` or `query { field ... }`.
    static func rootField(_ query: String) -> String? {
        guard let brace = query.firstIndex(of: "{") else { return nil }
        let rest = query[query.index(after: brace)...].drop { $0 == " " || $0 == "\n" || $0 == "\t" }
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return name.isEmpty ? nil : String(name)
    }

    func graphQL(_ body: Data) async -> (HTTPResponse.Status, String) {
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any], let query = object["query"] as? String,
              let field = Self.rootField(query)
        else { return (.badRequest, Self.validationError("Must provide a query string.")) }
        let variables = object["variables"] as? [String: Any] ?? [:]
        let input = variables["input"] as? [String: Any] ?? [:]
        if !configuration.spotAvailable, field == "podRentInterruptable" || field == "podBidResume" {
            return (.badRequest, Self.validationError("Cannot query field \\\"\(field)\\\" on type \\\"Mutation\\\"."))
        }
        switch field {
        case "podRentInterruptable": return rent(input, spot: true, field: field)
        case "podFindAndDeployOnDemand": return rent(input, spot: false, field: field)
        case "podStop": return await stop(input)
        case "podBidResume": return resume(input, spot: true, field: field)
        case "podResume": return resume(input, spot: false, field: field)
        case "podTerminate": return await terminateCall(input)
        case "myself": return (.ok, #"{"data": {"myself": {"pods": [\#(pods.values.sorted { $0.id < $1.id }.map(podJSON).joined(separator: ", "))]}}}"#)
        case "pod":
            guard let pod = pods[input["podId"] as? String ?? ""] else { return (.ok, #"{"data": {"pod": null}}"#) }
            return (.ok, #"{"data": {"pod": \#(podJSON(pod))}}"#)
        case "gpuTypes": return (.ok, #"{"data": {"gpuTypes": [\#(configuration.gpuTypes.map(gpuTypeJSON).joined(separator: ", "))]}}"#)
        default:
            return (.badRequest, Self.validationError("Cannot query field \\\"\(field)\\\" on type \\\"Query\\\"."))
        }
    }

    static func validationError(_ message: String) -> String {
        #"{"errors": [{"message": "\#(message)", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}"#
    }

    static func resolverError(_ field: String, _ message: String) -> String {
        #"{"errors": [{"message": "\#(message)", "path": ["\#(field)"], "extensions": {"code": "SUPPLY_CONSTRAINT"}}], "data": {"\#(field)": null}}"#
    }

    var gpusInUse: Int { pods.values.filter { $0.desiredStatus == "RUNNING" }.reduce(0) { $0 + $1.gpuCount } }

    func rent(_ input: [String: Any], spot: Bool, field: String) -> (HTTPResponse.Status, String) {
        let gpuType = input["gpuTypeId"] as? String ?? ""
        let gpuCount = (input["gpuCount"] as? NSNumber)?.intValue ?? 1
        guard configuration.gpuTypes.contains(gpuType) else {
            return (.ok, Self.resolverError(field, "There are no longer any instances available with the requested specifications. Please refresh and try again."))
        }
        var bid: Double?
        if spot {
            guard let offered = (input["bidPerGpu"] as? NSNumber)?.doubleValue else {
                return (.badRequest, Self.validationError("Field \\\"bidPerGpu\\\" of required type \\\"Float!\\\" was not provided."))
            }
            guard offered + 1e-9 >= configuration.minimumBid else {
                return (.ok, Self.resolverError(field, "There are no instances available with the request specifications. Please try again later."))
            }
            bid = offered
        }
        guard gpusInUse + gpuCount <= configuration.stock else {
            return (.ok, Self.resolverError(field, spot
                ? "There are no instances available with the request specifications. Please try again later."
                : "There are no longer any instances available with the requested specifications. Please refresh and try again."))
        }
        rentals += 1
        var environment: [String: String] = [:]
        for entry in input["env"] as? [[String: Any]] ?? [] {
            if let key = entry["key"] as? String, let value = entry["value"] as? String { environment[key] = value }
        }
        let broken = configuration.brokenGPURentals.contains(rentals) || random.next() < configuration.gpuFailureRate
        let neverStarts = random.next() < configuration.failingStartRate
        let id = Self.podID(&random)
        let pod = Pod(
            id: id, name: input["name"] as? String ?? id, gpuType: gpuType, gpuCount: gpuCount, interruptible: spot, bid: bid,
            costPerHour: (bid ?? configuration.onDemandPrice) * Double(gpuCount), environment: environment,
            dockerArgs: input["dockerArgs"] as? String ?? "", volumeGB: (input["volumeInGb"] as? NSNumber)?.intValue ?? 0, brokenGPU: broken, neverStarts: neverStarts)
        pods[id] = pod
        if broken { brokenGPUCount += 1 }
        logger.info("devcloud: rented pod \(id) (\(pod.name))", metadata: ["spot": "\(spot)", "bid": "\(bid.map { "\($0)" } ?? "-")", "broken_gpu": "\(broken)"])
        start(pod)
        return (.ok, #"{"data": {"\#(field)": \#(podJSON(pod))}}"#)
    }

    func resume(_ input: [String: Any], spot: Bool, field: String) -> (HTTPResponse.Status, String) {
        guard let pod = pods[input["podId"] as? String ?? ""] else { return (.ok, Self.resolverError(field, "Pod not found.")) }
        if pod.interruptible && !spot { return (.ok, Self.resolverError(field, "Cannot resume a spot pod as an on demand pod.")) }
        guard pod.desiredStatus == "EXITED" else { return (.ok, #"{"data": {"\#(field)": \#(podJSON(pod))}}"#) }
        if spot {
            let bid = (input["bidPerGpu"] as? NSNumber)?.doubleValue ?? 0
            guard bid + 1e-9 >= configuration.minimumBid else {
                return (.ok, Self.resolverError(field, "There are no instances available with the request specifications. Please try again later."))
            }
            pod.bid = bid
            pod.costPerHour = bid * Double(pod.gpuCount)
        }
        guard gpusInUse + pod.gpuCount <= configuration.stock, random.next() >= configuration.resumeFailureRate else {
            return (.ok, Self.resolverError(field, "There are not enough free GPUs on the host machine to start this pod."))
        }
        pod.desiredStatus = "RUNNING"
        pod.lastStatusChange = "Resumed by User: \(Date())"
        start(pod)
        return (.ok, #"{"data": {"\#(field)": \#(podJSON(pod))}}"#)
    }

    func stop(_ input: [String: Any]) async -> (HTTPResponse.Status, String) {
        guard let pod = pods[input["podId"] as? String ?? ""] else { return (.ok, Self.resolverError("podStop", "Pod not found.")) }
        await halt(pod, grace: .seconds(configuration.reclaimGraceSeconds), reason: "Exited by user: \(Date())")
        return (.ok, #"{"data": {"podStop": {"id": "\#(pod.id)", "desiredStatus": "EXITED"}}}"#)
    }

    func terminateCall(_ input: [String: Any]) async -> (HTTPResponse.Status, String) {
        guard let pod = pods[input["podId"] as? String ?? ""] else { return (.ok, Self.resolverError("podTerminate", "Pod not found.")) }
        pods[pod.id] = nil
        await halt(pod, grace: .seconds(1), reason: "Terminated by user")
        promptsOfEndedPods += Self.promptsStarted(promptLog: promptLog(pod))
        try? FileManager.default.removeItem(at: folder(pod))
        logger.info("devcloud: terminated pod \(pod.id)")
        return (.ok, #"{"data": {"podTerminate": null}}"#)
    }

    // MARK: Pods' lives

    func folder(_ pod: Pod) -> URL { configuration.root.appendingPathComponent("pods").appendingPathComponent(pod.id) }
    /// The pod's volume (its SPOTQ_WORKSPACE), kept across stop and resume.
    func volume(_ pod: Pod) -> URL { folder(pod).appendingPathComponent("volume") }
    /// Where the pod's ComfyUI stand-in logs the prompts it starts and ends.
    func promptLog(_ pod: Pod) -> URL { folder(pod).appendingPathComponent("comfy-prompts.log") }

    /// Brings a pod's container up after the start delay.
    func start(_ pod: Pod) {
        pod.runtimeSince = nil
        guard !pod.neverStarts else { return }
        let delay = configuration.startSeconds
        Task {
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            await self.boot(pod)
        }
    }

    /// Starts the pod's container: its dockerArgs through a shell, as Docker splits them,
    /// in a process group of its own, output in `container.log`.
    func boot(_ pod: Pod) async {
        guard pods[pod.id] === pod, pod.desiredStatus == "RUNNING", pod.container == nil else { return }
        let folder = folder(pod)
        let volume = self.volume(pod)
        // The container disk: wiped at every start, as RunPod wipes it on stop.
        let temporary = folder.appendingPathComponent("tmp")
        try? FileManager.default.removeItem(at: temporary)
        for made in [volume, temporary] { try? FileManager.default.createDirectory(at: made, withIntermediateDirectories: true) }
        pod.comfyPort = freeComfyPort()
        var environment = pod.environment
        for (key, value) in configuration.workerEnvironment { environment[key] = value }
        // The container's own, last: the volume's mount (SPOTQ_WORKSPACE, which the pod's
        // environment names as RunPod's mount path), its /tmp, the image's stand-ins.
        let container = image.environment(
            volume: volume, temporary: temporary, comfyPort: pod.comfyPort, brokenGPU: pod.brokenGPU,
            promptLog: promptLog(pod), secondsPerImage: configuration.secondsPerImage)
        for (key, value) in container { environment[key] = value }
        // What RunPod sets inside a pod.
        environment["RUNPOD_POD_ID"] = pod.id
        environment["RUNPOD_GPU_COUNT"] = "\(pod.gpuCount)"
        let command = pod.dockerArgs.trimmingCharacters(in: .whitespaces).isEmpty ? "sleep infinity" : pod.dockerArgs
        do {
            pod.container = try LaunchedProcess(
                executable: "/bin/sh", arguments: ["-c", command], environment: environment,
                outputPath: folder.appendingPathComponent("container.log").path, ownProcessGroup: true)
            pod.runtimeSince = Date()
            logger.info("devcloud: pod \(pod.id) is up", metadata: ["comfy_port": "\(pod.comfyPort)", "pid": "\(pod.container!.pid)"])
        } catch {
            logger.error("devcloud: pod \(pod.id) could not start its container", metadata: ["error": "\(error)"])
        }
    }

    /// A port no other pod of this devcloud uses and nothing listens on now.
    func freeComfyPort() -> Int {
        let taken = Set(pods.values.filter { $0.container != nil }.map(\.comfyPort))
        for port in configuration.comfyPortBase..<(configuration.comfyPortBase + 1_000) where !taken.contains(port) && Self.canBind(port) {
            return port
        }
        return configuration.comfyPortBase
    }

    static func canBind(_ port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Stops a pod's container as Docker does: SIGTERM to its first process, SIGKILL to all
    /// of it after `grace` (or once the first process left).
    func halt(_ pod: Pod, grace: Duration, reason: String) async {
        pod.desiredStatus = "EXITED"
        pod.runtimeSince = nil
        pod.lastStatusChange = reason
        let container = pod.container
        pod.container = nil
        guard let container else { return }
        if grace > .zero {
            container.signal(SIGTERM)
            _ = await container.wait(timeout: grace)
        }
        container.signalGroup(SIGKILL)
        _ = await container.wait(timeout: .seconds(5))
        await Self.waitForGroupToEnd(container.pid)
    }

    /// The rest of a killed group is gone a moment after its leader.
    static func waitForGroupToEnd(_ group: pid_t) async {
        for _ in 0..<250 where !PodProcesses.inGroup(group).isEmpty {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A reclaim: SIGTERM then SIGKILL after the grace (`hard`: SIGKILL at once, like a host
    /// failing); the pod shows EXITED "Exited by Runpod" and keeps its volume.
    func reclaim(_ id: String, hard: Bool) async -> Bool {
        guard let pod = pods[id], pod.desiredStatus == "RUNNING" else { return false }
        if hard { killCount += 1 } else { reclaimCount += 1 }
        pod.reclaims += 1
        logger.info("devcloud: \(hard ? "killing" : "reclaiming") pod \(id)")
        await halt(pod, grace: hard ? .zero : .seconds(configuration.reclaimGraceSeconds), reason: "Exited by Runpod: \(Date())")
        return true
    }

    public enum WorkerPhase: String, Sendable {
        case image, download
    }

    /// What a crash kills: the `spotq worker` process, or the ComfyUI stand-in.
    public enum PodProcess: String, Sendable {
        case worker, comfyui

        func matches(_ arguments: [String]) -> Bool {
            switch self {
            case .worker: arguments.dropFirst().first == "worker"
            case .comfyui: Array(arguments.dropFirst().prefix(2)) == ["devcloud", "comfy"]
            }
        }
    }

    /// SIGKILLs `process` in a running pod that is in `phase`; the pod's container (and its
    /// supervisors, which start the process again) keeps running.
    func crash(_ process: PodProcess, during phase: WorkerPhase) async -> String? {
        for pod in pods.values.sorted(by: { $0.id < $1.id }) where pod.desiredStatus == "RUNNING" {
            guard let container = pod.container, !container.hasExited,
                  let victim = PodProcesses.inGroup(container.pid).first(where: { process.matches($0.arguments) })
            else { continue }
            let inPhase: Bool
            switch phase {
            case .image: inPhase = Self.isGenerating(promptLog: promptLog(pod))
            case .download: inPhase = Self.hasPartialDownload(volume(pod).appendingPathComponent("models"))
            }
            guard inPhase else { continue }
            kill(victim.pid, SIGKILL)
            crashCount += 1
            logger.info("devcloud: crashed the \(process.rawValue) of pod \(pod.id) during \(phase.rawValue)")
            return pod.id
        }
        return nil
    }

    /// The stand-in ComfyUI logs `started <id>` and `ended <id>`: it generates while the last
    /// line is a start.
    static func isGenerating(promptLog: URL) -> Bool {
        guard let text = try? String(contentsOf: promptLog, encoding: .utf8) else { return false }
        return text.split(separator: "\n").last?.hasPrefix("started ") ?? false
    }

    static func promptsStarted(promptLog: URL) -> Int {
        guard let text = try? String(contentsOf: promptLog, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { $0.hasPrefix("started ") }.count
    }

    /// A model download is under way when a non-empty `.partial` file sits in the models folder.
    static func hasPartialDownload(_ models: URL) -> Bool {
        guard let files = FileManager.default.enumerator(at: models, includingPropertiesForKeys: [.fileSizeKey]) else { return false }
        for case let file as URL in files where file.lastPathComponent.hasSuffix(".partial") {
            if ((try? file.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) > 0 { return true }
        }
        return false
    }

    func reclaimSomePod(hard: Bool) async -> String? {
        let candidates = pods.values.filter { pod in
            pod.desiredStatus == "RUNNING" && !pod.brokenGPU
                && pod.container.map { PodProcesses.inGroup($0.pid).contains { PodProcess.worker.matches($0.arguments) } } == true
        }
            .sorted { $0.id < $1.id }
        guard !candidates.isEmpty else { return nil }
        let pod = candidates[Int(random.next() * Double(candidates.count)) % candidates.count]
        return await reclaim(pod.id, hard: hard) ? pod.id : nil
    }

    /// Random reclaims of running spot pods, on average every `reclaimEverySeconds`.
    public func startChaos() {
        guard let mean = configuration.reclaimEverySeconds, chaos == nil else { return }
        chaos = Task {
            while !Task.isCancelled {
                let wait = -mean * log(max(1e-9, 1 - (await self.nextRandom())))
                try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                _ = await self.reclaimSomePod(hard: await self.nextRandom() < 0.3)
            }
        }
    }

    func nextRandom() -> Double { random.next() }

    /// The environment a pod was rented with (what its worker gets besides devcloud's own).
    public func environment(ofPod id: String) -> [String: String]? { pods[id]?.environment }

    /// Ids of the pods that exist, and of those running.
    public func podIDs() -> (all: [String], running: [String]) {
        (pods.keys.sorted(), pods.values.filter { $0.desiredStatus == "RUNNING" }.map(\.id).sorted())
    }

    /// Terminates a pod as someone with the account key would (the console, another script):
    /// it is gone from the listing.
    public func terminateNow(_ id: String) async { _ = await terminateCall(["podId": id]) }

    /// Reclaims a pod now (`hard`: SIGKILL at once).
    public func reclaimNow(_ id: String, hard: Bool = false) async -> Bool { await reclaim(id, hard: hard) }

    /// Ends every pod (devcloud shutting down).
    public func shutdown() async {
        chaos?.cancel()
        for pod in pods.values { await halt(pod, grace: .seconds(1), reason: "devcloud stopped") }
    }

    // MARK: JSON

    func podJSON(_ pod: Pod) -> String {
        var runtime = "null"
        if let since = pod.runtimeSince, pod.desiredStatus == "RUNNING", Date().timeIntervalSince(since) >= 0 {
            runtime = #"{"uptimeInSeconds": \#(Int(Date().timeIntervalSince(since))), "ports": [], "gpus": [{"id": "GPU-0", "gpuUtilPercent": 0, "memoryUtilPercent": 0}]}"#
        }
        let env = pod.environment.keys.sorted().map { key in
            // In full, as RunPod answers `myself { pods { env } }`: whoever holds the account key
            // reads every pod's secrets, which is why a pod holds only its own.
            "\"\(Self.escape("\(key)=\(pod.environment[key] ?? "")"))\""
        }.joined(separator: ", ")
        return #"{"id": "\#(pod.id)", "name": "\#(Self.escape(pod.name))", "desiredStatus": "\#(pod.desiredStatus)", "podType": "\#(pod.interruptible ? "INTERRUPTABLE" : "RESERVED")", "costPerHr": \#(pod.costPerHour), "gpuCount": \#(pod.gpuCount), "volumeInGb": \#(pod.volumeGB), "containerDiskInGb": 1, "imageName": "devcloud", "machineId": "devcloud-1", "lastStatusChange": "\#(Self.escape(pod.lastStatusChange))", "env": [\#(env)], "machine": {"gpuDisplayName": "\#(Self.escape(pod.gpuType))", "podHostId": "\#(pod.id)-devcloud"}, "runtime": \#(runtime)}"#
    }

    func gpuTypeJSON(_ id: String) -> String {
        let free = configuration.stock - gpusInUse
        let stock = free <= 0 ? "None" : free < 3 ? "Low" : free < 6 ? "Medium" : "High"
        let spot = configuration.spotAvailable ? "\(configuration.minimumBid)" : "null"
        return #"{"id": "\#(Self.escape(id))", "displayName": "\#(Self.escape(id))", "memoryInGb": 16, "secureCloud": true, "communityCloud": true, "maxGpuCount": \#(configuration.stock), "securePrice": \#(configuration.onDemandPrice), "communityPrice": \#(configuration.onDemandPrice), "secureSpotPrice": \#(spot), "communitySpotPrice": \#(spot), "lowestPrice": {"minimumBidPrice": \#(spot), "uninterruptablePrice": \#(configuration.onDemandPrice), "stockStatus": "\#(stock)", "gpuTypeId": "\#(Self.escape(id))"}}"#
    }

    func summaryJSON() async -> String {
        let running = pods.values.filter { $0.desiredStatus == "RUNNING" }.count
        var prompts = promptsOfEndedPods
        for pod in pods.values { prompts += Self.promptsStarted(promptLog: promptLog(pod)) }
        return #"{"pods": \#(pods.count), "running": \#(running), "rentals": \#(rentals), "reclaims": \#(reclaimCount), "kills": \#(killCount), "worker_crashes": \#(crashCount), "broken_gpus": \#(brokenGPUCount), "prompts_started": \#(prompts)}"#
    }

    static func escape(_ text: String) -> String {
        String(decoding: JSONValue.string(text).serialized().dropFirst().dropLast(), as: UTF8.self)
    }

    static func podID(_ random: inout SplitMix) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<14).map { _ in letters[Int(random.next() * Double(letters.count)) % letters.count] })
    }
}

/// A small seeded generator: the same faults for the same seed.
struct SplitMix: Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    /// Uniform in [0, 1).
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Double(DeterministicBytes.mix(state) >> 11) / Double(1 << 53)
    }
}
