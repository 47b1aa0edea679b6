import CurlClient
import Foundation
import Hummingbird
import Logging
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqDevcloud
import SpotqPod
import SpotqProvisioner
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

/// Collects every log line (message and metadata), so a test can look for secrets in them.
final class CapturedLogs: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in CapturingHandler(sink: self) }
    }

    struct CapturingHandler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            sink.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
        }
    }
}

/// devcloud's cloud in this process, a database, and a provisioner whose rounds the test runs.
struct ProvisionerWorld: Sendable {
    let cloud: DevcloudCloud
    let postgres: PostgresClient
    let provisioner: Provisioner
    let demand: LatestDemand
    let logs: CapturedLogs
    let apiKey: String
    let endpoint: String
    let batch: Int64

    static let secret = String(repeating: "p", count: 40)

    func count(_ sql: String) async throws -> Int {
        try await postgres.count(sql)
    }

    /// Offers a fresh snapshot with `items` left in the batch, then runs one round.
    /// One provisioner round on fresh demand, at `now` (the provisioner's clock: a test moves
    /// time on by passing a later date, never by sleeping).
    func round(items: Int = 100, hours: Double = 1, at now: Date = Date()) async {
        await demand.offer(DemandSnapshot(takenAt: now, batches: [DemandSnapshot.BatchDemand(
            batchID: batch, ready: items, unacknowledged: 0, consumers: 0, remainingItems: items, remainingWorkHours: hours, payloadBytes: 2_000_000_000)], unplanned: []))
        await provisioner.round(now: now)
    }

    static func with(
        cloud configure: (inout DevcloudCloud.Configuration) -> Void = { _ in },
        fleet adjust: (inout FleetSettings) -> Void = { _ in },
        keyForProvisioner: String? = nil,
        podBrokerURL: String? = nil,
        _ body: (ProvisionerWorld) async throws -> Void
    ) async throws {
        try await TemporaryDatabase.with { database in
            let postgres = PostgresClient(configuration: database, logger: testLogger)
            try await EnqueueFixture.migrateAndRegister(postgres)
            // One planned batch for the pods to belong to.
            _ = try await QueueStore(client: postgres).insert([EnqueueMessage(requestID: "p-1", body: TextToImageRequest(requestID: "p-1", checkpoint: EnqueueFixture.checkpoint, positive: "x").messageJSON())])
            let (created, _, _) = try await PlannerStore(client: postgres).apply(policy: PlanningPolicy(), gpu: GPUProfile(), secret: secret)
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_cloud"))
            defer { try? FileManager.default.removeItem(at: root) }
            let apiKey = "key-" + UUID().uuidString
            var configuration = DevcloudCloud.Configuration(apiKey: apiKey, root: root, spotqExecutable: try ChildProcess.spotqBinary())
            configuration.gpuFailureRate = 0
            configuration.startSeconds = 0.2
            configuration.reclaimGraceSeconds = 0.5
            // Workers that can reach nothing: they wait for their manifest until stopped.
            configuration.workerEnvironment = ["SPOTQ_LOG_LEVEL": "warning"]
            configure(&configuration)
            let logs = CapturedLogs()
            let cloud = try DevcloudCloud(configuration: configuration, logger: logs.logger("devcloud"))
            let (ports, sink) = AsyncStream.makeStream(of: Int.self)
            let app = DevcloudServer.makeApplication(host: "127.0.0.1", port: 0, logger: logs.logger("devcloud.http"), register: { cloud.register(on: $0) }) { sink.yield($0) }
            let server = Task { try await app.run() }
            defer { server.cancel() }
            var port = 0
            for await value in ports {
                port = value
                break
            }
            var fleet = FleetSettings()
            fleet.template.dockerArgs = "bash -c 'start; sleep infinity'"
            fleet.limits.startTimeoutSeconds = 600
            adjust(&fleet)
            let endpoint = "http://127.0.0.1:\(port)/graphql"
            var provisionerConfiguration = ProvisionerConfiguration(
                fleet: fleet, podServerURL: "http://127.0.0.1:9/", podAMQPURL: podBrokerURL ?? "amqp://pod:podpass@127.0.0.1:9/spotq",
                runPodAPIKey: keyForProvisioner ?? apiKey, podBinarySHA256: try PodSoftware.sha256(ofFile: ChildProcess.spotqBinary()))
            provisionerConfiguration.runPodEndpoint = endpoint
            let http = try HTTPClient(logger: logs.logger("curl"))
            defer { http.shutdown() }
            let provisionerLogger = logs.logger("provisioner")
            let demand = LatestDemand(logger: provisionerLogger)
            let provisioner = Provisioner(
                configuration: provisionerConfiguration,
                provider: RunPodProvider(endpoint: endpoint, apiKey: keyForProvisioner ?? apiKey, http: http, logger: provisionerLogger),
                pods: PodStore(client: postgres), demand: demand, amqp: nil,
                brokerAccess: try podBrokerURL.map { try PodBrokerAccess(management: RabbitMQManagement(url: TestEnvironment.rabbitMQManagementURL(), http: http), podAMQPURL: $0) },
                logger: provisionerLogger)
            let world = ProvisionerWorld(cloud: cloud, postgres: postgres, provisioner: provisioner, demand: demand, logs: logs, apiKey: apiKey, endpoint: endpoint, batch: created[0].id)
            let result: Result<Void, any Error>
            do { result = .success(try await body(world)) } catch { result = .failure(error) }
            await cloud.shutdown()
            await postgres.shutdown()
            try result.get()
        }
    }
}

@Suite("provisioner against devcloud's RunPod API")
struct ProvisionerTests {
    @Test func theBidClimbsTheLadderToTheMarketsMinimum_andThePodGetsOnlyWhatItNeeds() async throws {
        try await ProvisionerWorld.with(cloud: { $0.minimumBid = 0.15 }) { world in
            await world.round(items: 100, hours: 1)
            #expect(try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id IS NOT NULL AND bid_usd_per_gpu_hour = 0.15 AND interruptible") == 1)
            #expect(try await world.count("SELECT count(*) FROM pods WHERE volume_gb = 13 AND container_disk_gb = 1") == 1)  // 2 GB payload + 11
            let id = try #require(await world.cloud.podIDs().all.first)
            let environment = try #require(await world.cloud.environment(ofPod: id))
            #expect(environment.keys.sorted() == [
                "SPOTQ_AMQP_URL", "SPOTQ_BATCH_ID", "SPOTQ_BINARY_SHA256", "SPOTQ_BOOTSTRAP_SHA256", "SPOTQ_SERVER_URL", "SPOTQ_UPLOAD_TOKEN",
                "SPOTQ_WORKSPACE", "SPOTQ_WORK_PUBLIC_KEY",
            ])
            // What the pod checks the bootstrap and binary the server gives it against.
            #expect(environment["SPOTQ_BOOTSTRAP_SHA256"] == PodSoftware.bootstrapSHA256)
            #expect(environment["SPOTQ_BINARY_SHA256"] == (try PodSoftware.sha256(ofFile: ChildProcess.spotqBinary())))
            #expect(environment["SPOTQ_WORK_PUBLIC_KEY"] == WorkSignature.Signer(secret: ProvisionerWorld.secret).publicKey, "the key that signed its batch")
            // The pod's own token, not the batch's: only its hash is stored, on the pod's row.
            let token = try #require(environment["SPOTQ_UPLOAD_TOKEN"])
            #expect(token.hasPrefix("sqp1_") && token != BatchToken.make(secret: ProvisionerWorld.secret, batchID: world.batch))
            #expect(try await world.postgres.query("SELECT upload_token_hash FROM pods").first?.decode(String?.self, at: 0) == BatchToken.hash(token))
            #expect(!environment.values.contains { $0.contains("postgres") || $0.contains(world.apiKey) })
            // Neither the API key nor the pod's token appears in any log line.
            #expect(!world.logs.all.contains(world.apiKey))
            #expect(!world.logs.all.contains(environment["SPOTQ_UPLOAD_TOKEN"]!))
            // The next round keeps it: one pod is what 1 hour of work wants.
            await world.round(items: 100, hours: 1)
            #expect(await world.cloud.podIDs().all.count == 1)
        }
    }

    /// Each rental gets a broker user of its own before the provider is asked, in the pod's
    /// environment; a failed rental leaves neither user nor row; a terminated pod's user is
    /// deleted; a leftover user of this vhost is reconciled away, another vhost's left alone.
    @Test func aPodGetsTheKeysThatSignedItsBatch_soARotatedSecretLocksNoPodOut_andABatchWithNoSignedWorkGetsNoPod() async throws {
        try await ProvisionerWorld.with { world in
            // SPOTQ_SECRET rotated while the batch was being published: its work carries both keys' signatures.
            let rotated = WorkSignature.Signer(secret: String(repeating: "r", count: 48)).publicKey
            try await BatchStore(client: world.postgres).recordSigningKey(world.batch, publicKey: rotated)
            try await BatchStore(client: world.postgres).recordSigningKey(world.batch, publicKey: rotated)
            await world.round(items: 100, hours: 1)
            let id = try #require(await world.cloud.podIDs().all.first)
            let environment = try #require(await world.cloud.environment(ofPod: id))
            #expect(environment["SPOTQ_WORK_PUBLIC_KEY"] == WorkSignature.Signer(secret: ProvisionerWorld.secret).publicKey + "," + rotated)

            // A batch planned but not yet published has no signed work: nothing to rent for.
            try await world.postgres.query("UPDATE batches SET work_public_keys = '{}' WHERE id = \(world.batch)")
            try await world.postgres.query("UPDATE pods SET state = 'terminated', terminated_at = now()")
            await world.round(items: 100, hours: 1)
            #expect(try await world.count("SELECT count(*) FROM pods WHERE state <> 'terminated'") == 0)
            #expect(world.logs.all.contains("has no signed work yet"))
        }
    }

    @Test func eachPodGetsItsOwnBrokerUser_removedWithThePod_andLeftoversAreReconciled() async throws {
        try await TemporaryVhost.with { amqpURL in
            let http = try HTTPClient(logger: testLogger)
            defer { http.shutdown() }
            let management = try RabbitMQManagement(url: TestEnvironment.rabbitMQManagementURL(), http: http)
            let elsewhere = try PodBrokerAccess(management: management, podAMQPURL: try TestEnvironment.amqpURL())
            let foreign = try await elsewhere.grant(podRowID: Int64.random(in: 1_000_000_000...9_000_000_000), batchID: 1)
            defer { Task { try? await management.deleteUser(foreign.user) } }
            // A spot market no bid reaches: the rental fails, and takes its user and row with it.
            try await ProvisionerWorld.with(cloud: { $0.minimumBid = 0.30 }, podBrokerURL: amqpURL) { world in
                // Only this vhost's pod users: other tests make and delete theirs on the shared broker meanwhile.
                let vhost = try PodBrokerAccess(management: management, podAMQPURL: amqpURL).vhost
                func podUsersHere() async throws -> Set<String> { Set(try await management.userNames().filter { PodBrokerGrant.isPodUser($0, vhost: vhost) }) }
                let before = try await podUsersHere()
                await world.round()
                #expect(try await world.count("SELECT count(*) FROM pods") == 0)
                #expect(try await podUsersHere() == before)
            }
            try await ProvisionerWorld.with(podBrokerURL: amqpURL) { world in
                let access = try PodBrokerAccess(management: management, podAMQPURL: amqpURL)
                let leftover = try await access.grant(podRowID: 999_999, batchID: world.batch)
                await world.round(items: 100, hours: 1)
                let user = try #require(try await world.postgres.query("SELECT broker_user FROM pods").first?.decode(String?.self, at: 0))
                #expect(PodBrokerGrant.isPodUser(user, vhost: access.vhost))
                let id = try #require(await world.cloud.podIDs().all.first)
                let podURL = try #require(await world.cloud.environment(ofPod: id)?["SPOTQ_AMQP_URL"])
                #expect(URLComponents(string: podURL)?.user == user)
                #expect(URLComponents(string: podURL)?.password?.count == 48)
                let users = Set(try await management.userNames())
                #expect(users.contains(user))
                #expect(!users.contains(leftover.user), "the leftover is reconciled in the same round")
                #expect(users.contains(foreign.user), "another vhost's pod user is not this deployment's to delete")
                #expect(!world.logs.all.contains(URLComponents(string: podURL)?.password ?? "-"), "the pod's broker password is never logged")
                // The pod goes away at the provider: its record ends and its user is deleted.
                await world.cloud.terminateNow(id)
                await world.provisioner.round(now: Date())
                #expect(try await world.count("SELECT count(*) FROM pods WHERE state = 'terminated'") == 1)
                #expect(!(try await management.userNames()).contains(user))
            }
        }
    }

    /// A provider's error may echo the rent input; what it says is logged and stored, so the
    /// pod's token, its broker login (whole, and its password alone) and the API key are cut.
    @Test func aProvidersErrorText_losesEverySecretTheRequestCarried() {
        let variables: [String: JSONValue] = ["input": .object([
            ("name", .string("spotq-b7-abc123")),
            ("env", .array([
                .object([("key", .string("SPOTQ_BATCH_ID")), ("value", .string("7"))]),
                .object([("key", .string("SPOTQ_UPLOAD_TOKEN")), ("value", .string("tok_7_0123456789abcdef"))]),
                .object([("key", .string("SPOTQ_AMQP_URL")), ("value", .string("amqps://spotq-pod-3-ab:0badc0ffee0badc0ffee@rabbit:5671/%2F"))]),
            ])),
        ])]
        let secrets = ProviderErrorRedaction.secrets(in: variables, extra: ["rpa_APIKEY123456"])
        let echoed = """
            invalid input: {"env":[{"key":"SPOTQ_UPLOAD_TOKEN","value":"tok_7_0123456789abcdef"},{"value":"amqps://spotq-pod-3-ab:0badc0ffee0badc0ffee@rabbit:5671/%2F"}]}             password 0badc0ffee0badc0ffee, key rpa_APIKEY123456, batch 7, pod spotq-b7-abc123
            """
        let redacted = ProviderErrorRedaction.redact(echoed, secrets: secrets)
        for secret in ["tok_7_0123456789abcdef", "0badc0ffee0badc0ffee", "rpa_APIKEY123456", "amqps://spotq-pod-3-ab"] {
            #expect(!redacted.contains(secret), "\(secret) survived: \(redacted)")
        }
        // What says which pod and batch stays readable.
        #expect(redacted.contains("batch 7") && redacted.contains("spotq-b7-abc123") && redacted.contains("SPOTQ_UPLOAD_TOKEN"))
    }

    @Test func spotAboveTheLadder_waitsByDefault_orGoesOnDemandWithAnAlert() async throws {
        // On-demand dearer than spot, so spot is what the price logic wants.
        try await ProvisionerWorld.with(cloud: { $0.minimumBid = 0.30; $0.onDemandPrice = 0.60 }) { world in
            await world.round()
            #expect(await world.cloud.podIDs().all.isEmpty)
            let counted1 = try await world.count("SELECT count(*) FROM fleet_alerts")
            #expect(counted1 == 0)
        }
        try await ProvisionerWorld.with(cloud: { $0.minimumBid = 0.30; $0.onDemandPrice = 0.60 }, fleet: { $0.fallback = .onDemand }) { world in
            await world.round()
            let counted2 = try await world.count("SELECT count(*) FROM pods WHERE NOT interruptible AND price_usd_per_hour = 0.60")
            #expect(counted2 == 1)
            let counted3 = try await world.count("SELECT count(*) FROM fleet_alerts WHERE kind = 'on-demand' AND message LIKE '%no spot capacity at 0.17%'")
            #expect(counted3 == 1)
        }
    }

    @Test func aProviderWithoutSpot_isReportedOnce_andTheFallbackIsUsed() async throws {
        // RunPod's schema without the spot mutations: a validation error, said once; `wait` rents nothing.
        try await ProvisionerWorld.with(cloud: { $0.spotAvailable = false }) { world in
            await world.round()
            await world.round()
            #expect(await world.cloud.podIDs().all.isEmpty)
            let said = try await world.count("SELECT count(*) FROM fleet_alerts WHERE kind = 'spot.unsupported' AND message LIKE '%Cannot query field%podRentInterruptable%'")
            #expect(said == 1)
        }
        // With the on-demand fallback, every pod is on-demand, each with an alert saying why.
        try await ProvisionerWorld.with(cloud: { $0.spotAvailable = false }, fleet: { $0.fallback = .onDemand }) { world in
            await world.round(items: 2_000, hours: 7)  // three pods wanted
            let onDemand = try await world.count("SELECT count(*) FROM pods WHERE NOT interruptible AND provider_pod_id IS NOT NULL")
            #expect(onDemand == 3)
            let alerts = try await world.count("SELECT count(*) FROM fleet_alerts WHERE kind = 'on-demand' AND message LIKE '%no spot market%'")
            #expect(alerts == 3)
        }
    }

    @Test func aWrongAPIKey_isRefused_andNeverLogged() async throws {
        let wrong = "wrong-" + UUID().uuidString
        try await ProvisionerWorld.with(keyForProvisioner: wrong) { world in
            await world.round()
            #expect(await world.cloud.podIDs().all.isEmpty)
            #expect(world.logs.all.contains("RunPod refused the API key"))
            #expect(!world.logs.all.contains(wrong))
        }
    }

    @Test func aReclaimedPodIsBidResumed_andOneThatCannotBeIsReplaced() async throws {
        try await ProvisionerWorld.with { world in
            await world.round()
            let id = try #require(await world.cloud.podIDs().all.first)
            #expect(await world.cloud.reclaimNow(id))
            await world.round()
            #expect(try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id = '\(id)' AND interruptions = 1 AND resume_attempts = 1") == 1)
            #expect(await world.cloud.podIDs().running == [id])
        }
        try await ProvisionerWorld.with(cloud: { $0.resumeFailureRate = 1 }) { world in
            await world.round()
            let id = try #require(await world.cloud.podIDs().all.first)
            #expect(await world.cloud.reclaimNow(id, hard: true))
            await world.round()
            #expect(try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id = '\(id)' AND state = 'terminated' AND last_error LIKE 'could not be resumed%not enough free GPUs%'") == 1)
            await world.round()
            let running = await world.cloud.podIDs().running
            #expect(running.count == 1 && running != [id])
        }
    }

    @Test func aRunningPodWhoseWorkerWentSilent_isReplaced() async throws {
        try await ProvisionerWorld.with { world in
            await world.round()
            let id = try #require(await world.cloud.podIDs().all.first)
            try await eventually("the provider reporting the pod running") {
                await world.round()
                return try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id = '\(id)' AND provider_status = 'running'") == 1
            }
            // Its worker generated, then nothing for ten minutes (crashed; the container lives on).
            try await world.postgres.query("UPDATE pods SET state = 'generating', last_seen_at = now() - interval '10 minutes' WHERE provider_pod_id = \(id)")
            await world.round()
            let ended = try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id = '\(id)' AND state = 'terminated' AND last_error LIKE 'no word from its worker%'")
            #expect(ended == 1)
            let now = await world.cloud.podIDs().all
            #expect(now.count == 1 && !now.contains(id))
        }
    }

    @Test func aPodItsWorkerReportedFaulted_isTerminatedAndReplaced_likeABrokenGPU() async throws {
        try await ProvisionerWorld.with { world in
            await world.round()
            let id = try #require(await world.cloud.podIDs().all.first)
            let row = try await world.postgres.query("SELECT id FROM pods WHERE provider_pod_id = \(id)")[0].decode(Int64.self, at: 0)
            try await world.postgres.query("UPDATE pods SET state = 'generating' WHERE id = \(row)")
            // What the worker sends once its breaker trips (exit 5), recorded as the recorder does.
            let faulted = SpotqEvent(
                eventKey: "faulted-\(id)", kind: .state, batchID: world.batch, pod: SpotqEvent.Pod(provider: "runpod", id: id), state: .faulted,
                detail: ["reason": .string("3 pod faults in a row; last: ComfyUI unreachable (POST /prompt): connection refused")])
            #expect(try await EventStore(client: world.postgres).record(faulted, podRowID: row))
            #expect(try await world.count("SELECT count(*) FROM pods WHERE id = \(row) AND state = 'faulted'") == 1)
            await world.round()
            #expect(try await world.count("SELECT count(*) FROM pods WHERE id = \(row) AND state = 'terminated' AND last_error = 'its worker reported it faulted'") == 1)
            let now = await world.cloud.podIDs().all
            #expect(now.count == 1 && !now.contains(id))
        }
    }

    @Test func aPodStuckStarting_isTerminatedAndReplaced() async throws {
        try await ProvisionerWorld.with(cloud: { $0.failingStartRate = 1 }, fleet: { $0.limits.startTimeoutSeconds = 1 }) { world in
            await world.round()
            let first = try #require(await world.cloud.podIDs().all.first)
            await world.round(at: Date().addingTimeInterval(1.3))
            #expect(try await world.count("SELECT count(*) FROM pods WHERE provider_pod_id = '\(first)' AND state = 'terminated' AND last_error LIKE 'still starting%'") == 1)
            let remaining = await world.cloud.podIDs().all
            #expect(remaining.count == 1 && !remaining.contains(first))
        }
    }

    @Test func aPodNamedLikeOursThatSpotqDoesNotKnow_isTerminatedWithAnAlert() async throws {
        try await ProvisionerWorld.with { world in
            let http = try HTTPClient(logger: testLogger)
            defer { http.shutdown() }
            let stranger = RunPodProvider(endpoint: world.endpoint, apiKey: world.apiKey, http: http, logger: testLogger)
            var template = FleetSettings.PodTemplate()
            template.dockerArgs = "sleep infinity"
            let request = PodRentRequest(name: "spotq-b1-lost", gpuType: "NVIDIA RTX A4000", template: template, volumeGB: 12, environment: [])
            let orphan = try await stranger.rentSpot(request, bidPerGPU: 0.14)
            let other = try await stranger.rentSpot(PodRentRequest(name: "someone-elses", gpuType: "NVIDIA RTX A4000", template: template, volumeGB: 12, environment: []), bidPerGPU: 0.14)
            await world.round(items: 0, hours: 0)
            let left = await world.cloud.podIDs().all
            #expect(!left.contains(orphan.id))
            #expect(left.contains(other.id))  // not ours: never touched
            let alerts = try await world.count("SELECT count(*) FROM fleet_alerts WHERE kind = 'orphan' AND message LIKE '%\(orphan.id)%'")
            #expect(alerts == 1)
        }
    }

    @Test func aStaleDemandSnapshot_isDropped_notActedOn() async throws {
        let demand = LatestDemand(logger: testLogger)
        let old = DemandSnapshot(takenAt: Date().addingTimeInterval(-300), batches: [], unplanned: [])
        await demand.offer(old)
        #expect(await demand.fresh(maxAge: 120, now: Date()) == nil)
        // Dropped, not kept for later: a newer one replaces it, an older one never does.
        let new = DemandSnapshot(takenAt: Date(), batches: [], unplanned: [])
        await demand.offer(new)
        await demand.offer(old)
        #expect(await demand.fresh(maxAge: 120, now: Date()) == new)
    }

    /// Only the server publishes demand: a snapshot whose validated user_id is anyone else's
    /// (a pod's) is ignored, however genuine it looks.
    @Test func aDemandSnapshotNotPublishedByTheServer_isIgnored() async throws {
        let demand = LatestDemand(logger: testLogger)
        // Whole seconds: the snapshot's JSON keeps no fractions.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let snapshot = DemandSnapshot(takenAt: now, batches: [], unplanned: [DemandSnapshot.CheckpointDemand(checkpoint: "a.safetensors", items: 3)])
        let body = Array(try DemandSnapshot.encoder.encode(snapshot))
        for publisher in [nil, "spotq-pod-3", ""] {
            await demand.offer(body, from: publisher, accepted: ["spotq-server"], now: now)
            #expect(await demand.fresh(maxAge: 120, now: now) == nil, "from \(publisher ?? "nobody")")
        }
        await demand.offer(body, from: "spotq-server", accepted: ["spotq-server"], now: now)
        #expect(await demand.fresh(maxAge: 120, now: now) == snapshot)
    }

    /// A snapshot dated in the future would outrank every genuine one after it (a pod that
    /// could publish one stopped the whole fleet): it is ignored, and the genuine ones count.
    @Test func aDemandSnapshotFromTheFuture_isIgnored_andGenuineOnesStillCount() async throws {
        let demand = LatestDemand(logger: testLogger)
        let now = Date()
        let forged = DemandSnapshot(takenAt: now.addingTimeInterval(86_400), batches: [], unplanned: [])
        let body = Array(try DemandSnapshot.encoder.encode(forged))
        await demand.offer(body, now: now)
        #expect(await demand.fresh(maxAge: 120, now: now) == nil)
        let genuine = DemandSnapshot(takenAt: now, batches: [], unplanned: [DemandSnapshot.CheckpointDemand(checkpoint: "a.safetensors", items: 3)])
        await demand.offer(genuine, now: now)
        await demand.offer(forged, now: now)
        #expect(await demand.fresh(maxAge: 120, now: now) == genuine)
        // A clock a little ahead is not a forgery.
        let skewed = DemandSnapshot(takenAt: now.addingTimeInterval(30), batches: [], unplanned: [])
        await demand.offer(skewed, now: now)
        #expect(await demand.fresh(maxAge: 120, now: now) == skewed)
    }

    @Test func costsAccrue_gpuWhileRunning_storageUntilTerminated() async throws {
        try await ProvisionerWorld.with { world in
            let began = Date()
            await world.round()
            await world.round(at: Date().addingTimeInterval(1.5))
            // The rounds' own time counts too (seconds under the whole suite's load).
            let elapsed = Date().timeIntervalSince(began) + 1.5
            let report = try await CostStore(client: world.postgres).report()
            let pod = try #require(report.pods.first)
            // 0.13 USD/h (devcloud refuses the first bid, 0.12) plus 13 GB of volume, for at least 1.5 s.
            let expectedPerHour = 0.13 + 13 * 0.10 / 730
            #expect(pod.accruedUSD > expectedPerHour * 1.0 / 3600 && pod.accruedUSD < expectedPerHour * (elapsed + 2) / 3600)
            #expect(abs(report.usdPerHourNow - 0.13) < 1e-9)
        }
    }
}

@Suite("provisioner process")
struct ProvisionerProcessTests {
    @Test func onlyOneProvisionerRunsAtATime() async throws {
        try await TemporaryVhost.with { amqpURL in
            try await TemporaryDatabase.with { database in
                let postgres = PostgresClient(configuration: database, logger: testLogger)
                try await EnqueueFixture.migrateAndRegister(postgres)
                await postgres.shutdown()
                let environment = [
                    "SPOTQ_DATABASE_URL": database.url, "SPOTQ_AMQP_URL": amqpURL, "SPOTQ_SECRET": String(repeating: "l", count: 40),
                    "SPOTQ_RUNPOD_API_KEY": "k", "SPOTQ_RUNPOD_API_URL": "http://127.0.0.1:9/graphql", "SPOTQ_POD_SERVER_URL": "http://127.0.0.1:9",
                    "SPOTQ_LOG_LEVEL": "warning",
                ]
                let held = try #require(try await ProvisionerLock.tryTake(database, logger: testLogger))
                let refused = try ChildProcess(try ChildProcess.spotqBinary(), ["provisioner", "--once"], environment: environment)
                #expect(await refused.wait(timeout: .seconds(60)) != 0)
                #expect(refused.output.contains("another spotq provisioner is running"), "\(refused.output)")
                await refused.cleanUp()
                await held.close()
                let alone = try ChildProcess(try ChildProcess.spotqBinary(), ["provisioner", "--once"], environment: environment)
                #expect(await alone.wait(timeout: .seconds(60)) == 0, "\(alone.output)")
                #expect(!alone.output.contains("SPOTQ_RUNPOD_API_KEY=k"))
                await alone.cleanUp()

                // A running provisioner whose lock session dies (a database restart) never runs
                // beside another one that took the lock meanwhile, and takes it back when free.
                var looping = environment
                looping["SPOTQ_PROVISION_INTERVAL_SECONDS"] = "0.5"
                looping["SPOTQ_LOG_LEVEL"] = "info"
                let running = try ChildProcess(try ChildProcess.spotqBinary(), ["provisioner"], environment: looping)
                let admin = PostgresClient(configuration: database, logger: testLogger)
                // Only the provisioner lock of this test's database: other tests share the server.
                let theLock = """
                    FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = \(0x7370_6F74) AND objid = \(0x666C_6574)
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """
                @Sendable func lockHolders() async throws -> Int64 { try await admin.query(PostgresQuery(sql: "SELECT count(*) " + theLock))[0].decode(Int64.self, at: 0) }
                try await eventually("the provisioner's lock", timeout: .seconds(60)) { try await lockHolders() > 0 }
                // Another session queues for the lock, then the provisioner's session is killed:
                // the queued one gets it first.
                let rival = try await PostgresConnection.connect(configuration: database, logger: testLogger)
                let rivalTakes = Task { try await rival.query("SELECT pg_advisory_lock(\(Int64(0x7370_6F74_666C_6574)))") }
                try await eventually("the rival waiting for the lock") {
                    try await admin.query(PostgresQuery(sql: "SELECT count(*) " + theLock.replacingOccurrences(of: "AND granted", with: "AND NOT granted")))[0].decode(Int64.self, at: 0) == 1
                }
                try await admin.query(PostgresQuery(sql: "SELECT pg_terminate_backend(pid) " + theLock))
                _ = try await rivalTakes.value
                try await eventually("the provisioner standing by", timeout: .seconds(30)) { running.output.contains("standing by") }
                #expect(running.output.contains("lost its PostgreSQL lock"), "\(running.output)")
                #expect(await running.wait(timeout: .zero) == nil, "it keeps running: \(running.output)")
                #expect(try await lockHolders() == 1)  // the rival's, not two
                await rival.close()
                try await eventually("the provisioner taking the lock again", timeout: .seconds(30)) { running.output.contains("holds the PostgreSQL lock again") }
                #expect(try await lockHolders() == 1)
                running.signal(SIGTERM)
                #expect(await running.wait(timeout: .seconds(30)) == 0, "\(running.output)")
                await running.cleanUp()
                await admin.shutdown()
            }
        }
    }
}
