import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqTestSupport
import Testing
@testable import ServerTestSupport

/// A pod turned against the fleet: while honest pods work, an attacker holding the cloud
/// account key reads a live pod's environment from the provider's pod listing and, with that
/// pod's own broker credentials, tries every move the README names
/// (scripts/clients/hostile_pod.py, written from the README alone). Each is refused by the
/// broker or discarded by the server with its reason, and the honest work ends as always.
@Suite("chaos: a hostile pod")
struct HostilePodChaosTests {
    /// What the broker lets through (the pod's own batch's keys), only for the server to
    /// discard: events dead-lettered as forged, the dead letter recorded with the pod's own
    /// batch as its origin.
    static func passesTheBroker(_ attack: String) -> Bool {
        attack.hasSuffix("on this pod's key") || attack.hasSuffix("claimed to be in this pod's batch") || attack.hasPrefix("heartbeats for pod")
            || attack.hasSuffix("through spotq.pod.dead") || attack.hasPrefix("its own workflow")
    }

    struct Report: Decodable {
        struct Pod: Decodable {
            var id: String
            var batch: Int64
            var victim: String
            var other_batch: Int64
        }
        struct Attack: Decodable {
            var attack: String
            var refused: String?
            var detail: String
        }
        var pod: Pod
        var attacks: [Attack]
    }

    @Test func everyAttackWithAPodsOwnCredentials_isRefusedOrDiscarded_andTheHonestWorkIsDoneOnce() async throws {
        var options = FaultScenario.options(images: ChaosScale.pick(short: 40, full: 120), seed: 23, secondsPerImage: 0.4)
        // Enough pods that the first batch cannot take them all (the full form's batches are larger).
        options.provisionerEnvironment["SPOTQ_MAX_PODS"] = ChaosScale.pick(short: "4", full: "8")
        let loginFile = FileManager.default.temporaryDirectory.appendingPathComponent("spotq-hostile-\(UUID().uuidString).json").path
        defer { unlink(loginFile) }
        let holder = ReportHolder()
        try await FaultScenario(name: "hostile pod (its own credentials, every attack)", options: options, strikeAt: 2).run { world in
            // Two pods on different batches: one to attack from, one to attack.
            try await eventually("two batches with a running pod each", timeout: .seconds(90)) {
                try await world.count("""
                    SELECT count(DISTINCT batch_id) FROM pods WHERE state IN ('starting', 'downloading', 'generating') AND provider_pod_id IS NOT NULL
                    """) >= 2
            }
            let items = try await world.fixture.postgres.query(PostgresQuery(sql: """
                SELECT batch_id, min(id) FROM image_generation_queue WHERE batch_id IS NOT NULL AND status <> 'done' GROUP BY batch_id
                """)).map { "\(try $0.decode(Int64.self, at: 0)):\(try $0.decode(Int64.self, at: 1))" }
            let management = try Self.withoutCredentials(TestEnvironment.rabbitMQManagementURL())
            // The account key in a file of the attacker's, not on a command line.
            let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("spotq_key")).path
            defer { unlink(keyFile) }
            guard FileManager.default.createFile(atPath: keyFile, contents: Data(world.apiKey.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw TestEnvironmentError(description: "could not write \(keyFile)")
            }
            let output = try await Shell.run(try ReadmeBlocks.python(), [
                try TestEnvironment.script("clients/hostile_pod.py"), "--api", world.apiURL + "/graphql", "--api-key-file", keyFile,
                "--management", management, "--save-login", loginFile,
            ] + items.flatMap { ["--item", $0] })
            let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") })
            await holder.set(try JSONDecoder().decode(Report.self, from: Data(line.utf8)))
        } checks: { world, _ in
            let report = try #require(await holder.report)
            #expect(report.attacks.count >= 20)
            for attack in report.attacks {
                if Self.passesTheBroker(attack.attack) {
                    print("chaos | hostile pod | \(attack.attack): let through by the broker, discarded by spotq")
                } else {
                    print("chaos | hostile pod | \(attack.attack): refused by the broker: \(attack.refused ?? "NOT REFUSED")")
                    #expect(attack.refused != nil, "the broker let '\(attack.attack)' through: \(attack.detail)")
                }
            }
            // What got through the broker was dead-lettered as forged and changed nothing.
            let reasons = try await world.fixture.postgres.query(PostgresQuery(sql: "SELECT reason FROM dead_letters WHERE reason LIKE 'forged: %'"))
                .map { try $0.decode(String.self, at: 0) }
            for reason in reasons { print("chaos | hostile pod | discarded: \(reason)") }
            for expected in ["names batch \(report.pod.other_batch)", "is not in batch \(report.pod.batch)", "names pod runpod/\(report.pod.victim)"] {
                #expect(reasons.contains { $0.contains(expected) }, "no event dead-lettered as forged because it \(expected): \(reasons)")
            }
            let victim = try await world.count("""
                SELECT count(*) FROM pods WHERE provider_pod_id = '\(report.pod.victim)' AND (state = 'gpu_failed' OR last_error = 'its GPU check failed')
                """)
            #expect(victim == 0, "the victim pod was taken for GPU-failed")
            #expect(try await world.count("SELECT count(*) FROM pods WHERE state = 'gpu_failed'") == 0)
            #expect(try await world.count("SELECT count(*) FROM pod_events WHERE event_key LIKE 'hostile-%'") == 0)
            // The honest pods refused the unsigned workflow unrendered (and it failed no item).
            try await eventually("the unsigned work dead-lettered by an honest pod", timeout: .seconds(60)) {
                try await world.count("SELECT count(*) FROM dead_letters WHERE reason LIKE 'forged work: %' AND convert_from(body, 'UTF8') LIKE '%hostile-work%'") == 1
            }
            // The forged dead letter names its own batch as origin: a replay cannot reach spotq.enqueue.
            let origins = try await world.fixture.postgres.query(PostgresQuery(sql: """
                SELECT origin_exchange, origin_routing_key FROM dead_letters WHERE convert_from(body, 'UTF8') LIKE '%hostile-replay%'
                """)).map { "\(try $0.decode(String?.self, at: 0) ?? "-") \(try $0.decode(String?.self, at: 1) ?? "-")" }
            #expect(origins == ["spotq.work spotq.batch.\(report.pod.batch)"], "\(origins)")
            // No demand snapshot from the attacker counted: the fleet was never emptied.
            #expect(!world.logs.contains("ignored a demand snapshot taken in the future"))
        }
        // The pods are terminated: the credentials harvested from one no longer log in.
        let output = try await Shell.run(try ReadmeBlocks.python(), [try TestEnvironment.script("clients/hostile_pod.py"), "--login-with", loginFile])
        #expect(output.contains("\"login\": \"refused\""), "\(output)")
    }

    static func withoutCredentials(_ url: String) throws -> String {
        var components = try #require(URLComponents(string: url))
        components.user = nil
        components.password = nil
        return try #require(components.string)
    }
}

actor ReportHolder {
    var report: HostilePodChaosTests.Report?
    func set(_ value: HostilePodChaosTests.Report) { report = value }
}
