import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic

/// The whole system as separate processes, the way an operator runs it: `spotq devcloud`
/// (RunPod's API, pods as `spotq worker` processes, a model host), `spotq server` and
/// `spotq provisioner`, in a database and vhost of their own (or on a private PostgreSQL
/// or RabbitMQ a test restarts).
struct FleetWorld: Sendable {
    static let models: [(String, AssetKind, Int64)] = [
        ("e2e_base.safetensors", .checkpoint, 20_000_000), ("e2e_anime.safetensors", .checkpoint, 12_000_000),
        ("e2e_ink.safetensors", .lora, 2_000_000),
    ]

    struct Options: Sendable {
        var images: Int
        var devcloudArguments: [String] = []
        var secondsPerImage = 0.2
        /// The model host's bandwidth per connection.
        var mbps = 800
        /// A private PostgreSQL's URL (the test restarts it); nil: a database on the shared one.
        var databaseURL: String? = nil
        /// A private RabbitMQ node's URL; nil: a vhost of its own on the shared broker.
        var amqpURL: String? = nil
        /// The same private node over TLS, its CA, and its management API, where each pod's
        /// own broker user is made (set with ``amqpURL``); nil: the shared broker's.
        var podAMQPS: (url: String, caFile: String, managementURL: String)? = nil
        /// Requests added to the `images` ordinary ones (poison work), and raw request bodies.
        var extraRequests: [TextToImageRequest] = []
        var extraMessages: [(requestID: String, body: [UInt8])] = []
        /// Models registered besides ``FleetWorld/models`` (give devcloud `--asset`s for them too).
        var extraAssets: [(String, AssetKind, Int64)] = []
        /// Puts a relay between pods and server that SIGKILLs the worker of the upload after
        /// this many, half-way through its body (scripts/clients/upload_cutter.py).
        var uploadCutAfter: Int? = nil
        /// Added to the provisioner's environment (and the server's, for the planning ones).
        var provisionerEnvironment: [String: String] = [:]
        /// Added to every worker's environment.
        var workerEnvironment: [String: String] = [:]

        /// The requests: checkpoints 2:1, every fourth with the LoRA.
        var requests: [TextToImageRequest] {
            (0..<images).map { index in
                TextToImageRequest(requestID: "e2e-\(index)", checkpoint: FleetWorld.models[index % 3 == 0 ? 1 : 0].0,
                                   loras: index % 4 == 1 ? [LoraUse(file: FleetWorld.models[2].0, strength: 0.7)] : [], positive: "e2e \(index)")
            } + extraRequests
        }

        var messages: [EnqueueMessage] {
            requests.map { EnqueueMessage(requestID: $0.requestID, body: $0.messageJSON()) } + extraMessages.map { EnqueueMessage(requestID: $0.requestID, body: $0.body) }
        }

        var total: Int { images + extraRequests.count + extraMessages.count }
    }

    let fixture: EnqueueFixture
    let root: URL
    let apiURL: String
    let apiKey: String
    /// The server's pod listener (manifests, uploads).
    let serverURL: String
    /// The server's ops listener (`/metrics`, the dashboard).
    let opsURL: String
    let processes: FleetProcesses

    /// A count; a statement that meets a connection lost to a PostgreSQL restart is tried
    /// again (the first statement after a restart fails, the next reconnects).
    func count(_ sql: String) async throws -> Int {
        let postgres = fixture.postgres
        return try await eventually("an answer to \(sql.prefix(60))", timeout: .seconds(10), poll: .milliseconds(500)) { try await postgres.count(sql) }
    }

    var logs: String { processes.logs }

    /// Starts devcloud, registers the models, enqueues the requests, starts server and
    /// provisioner; runs `body`; stops everything.
    static func with(images: Int, devcloudArguments: [String], _ body: (FleetWorld) async throws -> Void) async throws {
        try await with(Options(images: images, devcloudArguments: devcloudArguments), body)
    }

    static func with(_ options: Options, _ body: (FleetWorld) async throws -> Void) async throws {
        // The server and the provisioner log in as their own least-privilege roles (README,
        // "Security"), so a statement either makes without its grant fails here.
        let setUp: (EnqueueFixture) async throws -> Void = { fixture in
            try await TemporaryLogin.with(memberOf: DatabaseComponent.server.group, on: fixture.database) { server in
                try await TemporaryLogin.with(memberOf: DatabaseComponent.provisioner.group, on: fixture.database) { provisioner in
                    try await run(options, fixture: fixture, logins: (server.url, provisioner.url), body)
                }
            }
        }
        if let amqpURL = options.amqpURL {
            try await EnqueueFixture.with(databaseURL: options.databaseURL, amqpURL: amqpURL, setUp)
        } else {
            try await EnqueueFixture.with(databaseURL: options.databaseURL, ownVhost: true, setUp)
        }
    }

    private static func run(
        _ options: Options, fixture: EnqueueFixture, logins: (server: String, provisioner: String), _ body: (FleetWorld) async throws -> Void
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_e2e"))
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let (apiPort, modelsPort, httpPort, relayPort) = (try FreePort.find(), try FreePort.find(), try FreePort.find(), try FreePort.find())
        let opsPort = try FreePort.find()
        let apiKey = "e2e-" + UUID().uuidString
        let secret = String(repeating: "e", count: 48)
        let processes = FleetProcesses()
        let world = FleetWorld(fixture: fixture, root: root, apiURL: "http://127.0.0.1:\(apiPort)", apiKey: apiKey,
                               serverURL: "http://127.0.0.1:\(httpPort)", opsURL: "http://127.0.0.1:\(opsPort)", processes: processes)
        let spotq = try ChildProcess.spotqBinary()
        let base: [String: String] = ["SPOTQ_DATABASE_URL": fixture.database.url, "SPOTQ_AMQP_URL": fixture.amqp.configuration.url, "SPOTQ_LOG_LEVEL": "info"]
        let assetArguments = models.flatMap { ["--asset", "\($0.0):\($0.1.rawValue):\($0.2)"] }
        let workerEnvironment = ["SPOTQ_IDLE_EXIT_SECONDS": "3", "SPOTQ_TERMINATION_GRACE_MS": "1500"].merging(options.workerEnvironment) { $1 }
        defer { processes.signalAll(SIGTERM) }
        try processes.start("devcloud", spotq, ["devcloud", "--port", "\(apiPort)", "--assets-port", "\(modelsPort)",
            "--work-dir", root.appendingPathComponent("devcloud").path, "--mbps", "\(options.mbps)", "--seconds-per-image", "\(options.secondsPerImage)",
            "--start-seconds", "0.5"] + workerEnvironment.sorted { $0.key < $1.key }.flatMap { ["--worker-env", "\($0.key)=\($0.value)"] }
            + assetArguments + options.devcloudArguments, environment: base.merging(["SPOTQ_RUNPOD_API_KEY": apiKey]) { $1 })
        try await eventually("devcloud listening", timeout: .seconds(30)) {
            (try? await Shell.capture("/usr/bin/curl", ["-fsS", "http://127.0.0.1:\(apiPort)/healthz"]))?.exitCode == 0
        }
        _ = try await AssetStore(client: fixture.postgres).importAssets((models + options.extraAssets).map { name, kind, size in
            Asset(filename: name, kind: kind, sizeBytes: size, sha256: DeterministicBytes(filename: name, size: size).sha256(), sourceURL: "http://127.0.0.1:\(modelsPort)/models/\(name)")
        })
        let outcomes = try await QueueStore(client: fixture.postgres).insert(options.messages)
        guard outcomes.allSatisfy({ if case .accepted = $0 { true } else { false } }) else { throw TestEnvironmentError(description: "setup: \(outcomes)") }
        // 0.2 s per image is 18,000 an hour; about 6 s of work per pod gives a fleet of several.
        let planning: [String: String] = [
            "SPOTQ_SECRET": secret, "SPOTQ_GPU_IMAGES_PER_HOUR": "\(Int(3600 / options.secondsPerImage))", "SPOTQ_PLAN_TARGET_POD_HOURS": "0.0017",
            "SPOTQ_PLAN_MIN_BATCH_HOURS": "0.001", "SPOTQ_SETUP_SECONDS": "1", "SPOTQ_DOWNLOAD_MBPS": "\(options.mbps)",
            "SPOTQ_PLAN_AT_ITEMS": "1", "SPOTQ_PLAN_AFTER_SECONDS": "1",
        ]
        try processes.start("server", spotq, ["server"], environment: base.merging(planning) { $1 }.merging([
            "SPOTQ_DATABASE_URL": logins.server,
            "SPOTQ_HTTP_ADDR": "127.0.0.1:\(httpPort)", "SPOTQ_OPS_HTTP_ADDR": "127.0.0.1:\(opsPort)", "SPOTQ_STORAGE_DIR": root.appendingPathComponent("images").path, "SPOTQ_DEMAND_INTERVAL_SECONDS": "1",
        ]) { $1 })
        var podServerURL = "http://127.0.0.1:\(httpPort)"
        if let cutAfter = options.uploadCutAfter {
            try processes.start("relay", "/usr/bin/python3", [try TestEnvironment.script("clients/upload_cutter.py"), "--listen", "\(relayPort)",
                                                              "--target", "\(httpPort)", "--cut-after", "\(cutAfter)"], environment: [:])
            podServerURL = "http://127.0.0.1:\(relayPort)"
        }
        // The provisioner holds no SPOTQ_SECRET: pods get the keys that signed their batch.
        try processes.start("provisioner", spotq, ["provisioner"], environment: base.merging(planning.filter { $0.key != "SPOTQ_SECRET" }) { $1 }.merging([
            "SPOTQ_DATABASE_URL": logins.provisioner,
            "SPOTQ_RUNPOD_API_URL": "http://127.0.0.1:\(apiPort)/graphql", "SPOTQ_RUNPOD_API_KEY": apiKey,
            "SPOTQ_POD_SERVER_URL": podServerURL, "SPOTQ_PROVISION_INTERVAL_SECONDS": "1",
            // Pods reach the broker as they would over the internet: by TLS, the CA sent to them.
            "SPOTQ_POD_AMQP_URL": try options.podAMQPS?.url ?? Self.tlsURL(sameVhostAs: fixture.amqp.configuration.url),
            "SPOTQ_POD_AMQP_CA_FILE": try options.podAMQPS?.caFile ?? TestEnvironment.amqpCAFile(),
            // Each pod gets its own broker user, as in production.
            "SPOTQ_RABBITMQ_MANAGEMENT_URL": try options.podAMQPS?.managementURL ?? TestEnvironment.rabbitMQManagementURL(),
            "SPOTQ_DEMAND_MAX_AGE_SECONDS": "20", "SPOTQ_MAX_PODS": "5", "SPOTQ_POD_START_TIMEOUT_SECONDS": "30",
        ]) { $1 }.merging(options.provisionerEnvironment) { $1 })
        do {
            try await body(world)
        } catch {
            Issue.record("logs:\n\(world.logs)")
            throw error
        }
        for (name, process) in processes.running {
            process.signal(SIGTERM)
            let status = await process.wait(timeout: .seconds(20))
            #expect(status == 0, "\(name) did not stop cleanly: \(process.output.suffix(2_000))")
            await process.cleanUp()
        }
    }

    /// The shared broker's TLS listener, on the vhost `plainURL` (a vhost of the shared broker) names.
    static func tlsURL(sameVhostAs plainURL: String) throws -> String {
        let tls = try TestEnvironment.amqpsURL()
        guard let vhostStart = plainURL.lastIndex(of: "/"), let tlsVhostStart = tls.lastIndex(of: "/") else {
            throw TestEnvironmentError(description: "AMQP URLs without a vhost: \(AMQPConfiguration(url: plainURL).redactedURL)")
        }
        return String(tls[..<tlsVhostStart]) + plainURL[vhostStart...]
    }

    /// Waits until every item is settled; `inject` runs once when `at` images are done.
    func untilSettled(_ images: Int, timeout: Duration, inject: [(at: Int, path: String)] = []) async throws {
        let pending = Injections(inject)
        try await eventually("all \(images) images settled", timeout: timeout, poll: .milliseconds(250)) {
            // A dead process ends the wait at once; checkAlive below says which.
            guard processes.allAlive else { return true }
            let done = try await count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'")
            // An injection that found no pod to hit (all between lives) is tried again next look.
            if let next = pending.next(atDone: done), (try? await devcloudPost(next.path)) == true { pending.struck(next) }
            return try await count("SELECT count(*) FROM image_generation_queue WHERE status IN ('done', 'failed')") >= images
        }
        try processes.checkAlive()
    }

    /// Waits until `done` images are stored (the moment to strike).
    func untilDone(atLeast done: Int, timeout: Duration = .seconds(120)) async throws {
        try await eventually("\(done) images done", timeout: timeout, poll: .milliseconds(100)) {
            guard processes.allAlive else { return true }
            return try await count("SELECT count(*) FROM image_generation_queue WHERE status = 'done'") >= done
        }
        try processes.checkAlive()
    }

    /// POSTs to a devcloud admin route; true on a 2xx.
    func devcloudPost(_ path: String) async throws -> Bool {
        try await Shell.capture("/usr/bin/curl", ["-fsS", "-X", "POST", apiURL + path]).exitCode == 0
    }

    func devcloudSummary() async throws -> [String: Int] {
        let text = try await Shell.capture("/usr/bin/curl", ["-fsS", apiURL + "/devcloud/summary"]).output
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Int]) ?? [:]
    }
}

/// The world's child processes by name, each restartable with the command it began with.
final class FleetProcesses: @unchecked Sendable {
    private struct Entry {
        let executable: String
        let arguments: [String]
        let environment: [String: String]
        var process: ChildProcess?
        /// Output of earlier lives (a restarted process gets a new log).
        var earlierOutput = ""
    }

    private let lock = NSLock()
    private var entries: [(String, Entry)] = []

    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String]) throws {
        let process = try ChildProcess(executable, arguments, environment: environment)
        lock.withLock { entries.append((name, Entry(executable: executable, arguments: arguments, environment: environment, process: process))) }
    }

    /// The processes that are meant to be running.
    var running: [(String, ChildProcess)] {
        lock.withLock { entries.compactMap { name, entry in entry.process.map { (name, $0) } } }
    }

    func process(_ name: String) -> ChildProcess? {
        lock.withLock { entries.first { $0.0 == name }?.1.process }
    }

    /// Stops `name` with SIGTERM (SIGKILL after 20 s) and keeps it stopped until `resume`.
    func stop(_ name: String) async {
        guard let process = process(name) else { return }
        await process.terminate(grace: .seconds(20))
        lock.withLock {
            guard let index = entries.firstIndex(where: { $0.0 == name }) else { return }
            entries[index].1.earlierOutput += process.output
            entries[index].1.process = nil
        }
        await process.cleanUp()
    }

    /// Starts `name` again with its first command.
    func resume(_ name: String) throws {
        try lock.withLock {
            guard let index = entries.firstIndex(where: { $0.0 == name }), entries[index].1.process == nil else { return }
            let entry = entries[index].1
            entries[index].1.process = try ChildProcess(entry.executable, entry.arguments, environment: entry.environment)
        }
    }

    /// Every process that should be running is.
    var allAlive: Bool { running.allSatisfy { !$0.1.hasExited } }

    /// Throws when a process that should be running has stopped.
    func checkAlive() throws {
        for (name, process) in running where process.hasExited {
            throw TestEnvironmentError(description: "spotq \(name) stopped:\n\(process.output.suffix(3_000))")
        }
    }

    func signalAll(_ signal: Int32) {
        for (_, process) in running { process.signal(signal) }
    }

    var logs: String {
        lock.withLock {
            entries.map { name, entry in
                let text = entry.earlierOutput + (entry.process?.output ?? "")
                return "--- \(name):\n\(text.split(separator: "\n").suffix(25).joined(separator: "\n"))"
            }.joined(separator: "\n")
        }
    }
}

/// Faults to strike once so many images are done, each struck once (tried again while it
/// finds no pod to hit).
final class Injections: @unchecked Sendable {
    // Every access holds `lock`.
    private let lock = NSLock()
    private var pending: [(at: Int, path: String)]

    init(_ pending: [(at: Int, path: String)]) { self.pending = pending }

    /// The next fault due with `done` images stored, if any.
    func next(atDone done: Int) -> (at: Int, path: String)? {
        lock.withLock { pending.first.flatMap { done >= $0.at ? $0 : nil } }
    }

    func struck(_ injection: (at: Int, path: String)) {
        lock.withLock { if pending.first?.path == injection.path, pending.first?.at == injection.at { pending.removeFirst() } }
    }
}
