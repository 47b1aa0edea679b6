import AMQPClient
import ArgumentParser
import CurlClient
import Foundation
import Logging
import SpotqBroker
import SpotqCore
import SpotqProvisioner

/// `spotq bench revoke`: how long a pod's broker access outlives its termination. Each round
/// makes a pod user as the provisioner does (``PodBrokerAccess/grant(podRowID:batchID:)``),
/// connects with it and consumes its batch queue, deletes the user as termination does, and
/// times until the broker has closed that consumer.
struct RevokeBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Measure the time from deleting a pod's broker user to its connection being closed.",
        discussion: """
            Needs SPOTQ_RABBITMQ_MANAGEMENT_URL (an administrator) and SPOTQ_AMQP_URL (with rights to
            declare and delete a scratch queue); pods connect to --pod-amqp-url (default SPOTQ_AMQP_URL;
            use amqps:// to measure over TLS). Users and queues it makes are deleted.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("pod-amqp-url"), help: "Pods' broker URL (its host, port and vhost); default SPOTQ_AMQP_URL.")
    var podAMQPURL: String?

    @Option(help: "Rounds; the median and the slowest are printed.")
    var rounds = 20

    func run() async throws {
        var logger = try connection.makeLogger(label: "spotq.bench")
        logger.logLevel = max(logger.logLevel, .error)
        guard let managementURL = connection.settings.string(nil, env: "SPOTQ_RABBITMQ_MANAGEMENT_URL") else {
            throw ValidationError("SPOTQ_RABBITMQ_MANAGEMENT_URL is not set")
        }
        let adminURL = try connection.resolvedAMQPURL()
        try ConnectionOptions.refusePassword(in: podAMQPURL, flag: "--pod-amqp-url", env: "SPOTQ_AMQP_URL")
        let http = try HTTPClient(logger: logger, name: "spotq-bench-revoke")
        defer { http.shutdown() }
        let access = try PodBrokerAccess(management: RabbitMQManagement(url: managementURL, http: http), podAMQPURL: podAMQPURL ?? adminURL)
        let admin = try await AMQPConnection.connect(configuration: .spotq(url: adminURL, connectionName: "spotq bench revoke"), logger: logger)
        var grants: [Double] = [], revokes: [Double] = [], closes: [Double] = []
        // Row and batch ids no deployment reaches, so nothing real is touched.
        let base = Int64(9_000_000_000) + Int64.random(in: 0..<1_000_000) * 1_000
        for round in 0..<rounds {
            let batch = base + Int64(round)
            let queue = try await admin.withChannel { try await TopologyDeclarer.declareBatch(batch, on: $0) }
            let started = ContinuousClock.now
            let granted = try await access.grant(podRowID: batch, batchID: batch)
            grants.append(Self.milliseconds(ContinuousClock.now - started))
            let pod = try await AMQPConnection.connect(configuration: .spotq(url: granted.amqpURL, connectionName: "spotq bench pod"), logger: logger)
            let consumer = try await pod.openChannel().consume(queue: queue)
            let ended = Task<ContinuousClock.Instant, Never> {
                do { for try await _ in consumer {} } catch {}
                return ContinuousClock.now
            }
            let revoking = ContinuousClock.now
            try await access.revoke(granted.user)
            revokes.append(Self.milliseconds(ContinuousClock.now - revoking))
            closes.append(Self.milliseconds(await ended.value - revoking))
            await pod.close()
            try await admin.withChannel { _ = try await $0.deleteQueue(queue) }
        }
        await admin.close()
        func row(_ what: String, _ values: [Double]) {
            let sorted = values.sorted()
            print(String(format: "%@: median %.1f ms, slowest %.1f ms", what, sorted[sorted.count / 2], sorted.last ?? 0))
        }
        print("\(rounds) pod users over \(AMQPConfiguration(url: podAMQPURL ?? adminURL).redactedURL):")
        row("grant (user, permissions, 3 topic permissions, 2 limits)", grants)
        row("revoke (DELETE /api/users, answered)", revokes)
        row("revoke until the pod's consumer was closed", closes)
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}
