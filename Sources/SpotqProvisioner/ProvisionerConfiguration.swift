import AMQPClient
import Foundation
import SpotqCore
import SpotqPod

/// `spotq provisioner`'s settings (README, "Provisioner").
public struct ProvisionerConfiguration: Sendable {
    public var fleet: FleetSettings
    /// The server URL pods upload to (reachable from the pods).
    public var podServerURL: String
    /// The AMQP URL pods consume with. With ``brokerManagementURL`` only its host, port and
    /// vhost are used: each pod gets its own user in it.
    public var podAMQPURL: String
    /// RabbitMQ's management API, with an administrator's credentials
    /// (SPOTQ_RABBITMQ_MANAGEMENT_URL): each pod gets its own broker user through it.
    public var brokerManagementURL: String?
    /// Broker users whose demand snapshots count (SPOTQ_DEMAND_PUBLISHERS, comma-separated);
    /// nil: the provisioner's own user.
    public var demandPublishers: Set<String>?
    /// PEM of the CA that signed the broker's certificate, sent to pods (SPOTQ_POD_AMQP_CA_FILE),
    /// when it is not a public CA a pod's system already trusts.
    public var podAMQPCAPEM: String?
    public var runPodEndpoint = "https://api.runpod.io/graphql"
    public var runPodAPIKey: String
    /// Seconds of setup assumed after a reclaim when pricing interruptions (until measured).
    public var recoverySeconds = 300.0
    /// The SHA-256 pods must find in the spotq binary the server serves them
    /// (SPOTQ_POD_BINARY_SHA256, else the hash of SPOTQ_POD_BINARY, else of this executable:
    /// the provisioner's own copy decides what pods run, not the server's).
    public var podBinarySHA256: String

    public init(fleet: FleetSettings, podServerURL: String, podAMQPURL: String, runPodAPIKey: String, podBinarySHA256: String) {
        self.fleet = fleet
        self.podBinarySHA256 = podBinarySHA256
        self.podServerURL = podServerURL
        self.podAMQPURL = podAMQPURL
        self.runPodAPIKey = runPodAPIKey
    }

    public static func from(_ source: SettingsSource, amqpURL: String, targetHoursPerPod: Double, setupSeconds: Double) throws -> ProvisionerConfiguration {
        guard let key = source.string(nil, env: "SPOTQ_RUNPOD_API_KEY") else {
            throw ConfigurationError(message: "SPOTQ_RUNPOD_API_KEY is not set: the provisioner rents pods with it (for `spotq devcloud`, any value it was started with)")
        }
        guard let server = source.string(nil, env: "SPOTQ_POD_SERVER_URL") else {
            throw ConfigurationError(message: "SPOTQ_POD_SERVER_URL is not set: the address of `spotq server`'s HTTP API as pods reach it, e.g. https://spotq.example.com")
        }
        if let refusal = PlainHTTPPolicy.refusal(server, variable: "SPOTQ_POD_SERVER_URL") { throw ConfigurationError(message: refusal) }
        var configuration = ProvisionerConfiguration(
            fleet: try FleetSettings.from(source, targetHoursPerPod: targetHoursPerPod), podServerURL: server,
            podAMQPURL: source.string(nil, env: "SPOTQ_POD_AMQP_URL") ?? amqpURL, runPodAPIKey: key, podBinarySHA256: try podBinaryHash(source))
        if let caFile = source.string(nil, env: "SPOTQ_POD_AMQP_CA_FILE") {
            guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8), AMQPTLSSettings.isPEMCertificate(pem) else {
                throw ConfigurationError(message: "SPOTQ_POD_AMQP_CA_FILE '\(caFile)' is not a readable PEM certificate file")
            }
            configuration.podAMQPCAPEM = pem
        }
        configuration.brokerManagementURL = source.string(nil, env: "SPOTQ_RABBITMQ_MANAGEMENT_URL")
        configuration.demandPublishers = source.names(env: "SPOTQ_DEMAND_PUBLISHERS")
        configuration.runPodEndpoint = source.string(nil, env: "SPOTQ_RUNPOD_API_URL") ?? configuration.runPodEndpoint
        configuration.recoverySeconds = setupSeconds
        return configuration
    }

    /// Exactly what a pod's worker needs; no database credentials, no API key.
    /// - Parameters:
    ///   - amqpURL: the pod's own broker login (default: the shared ``podAMQPURL``).
    ///   - uploadToken: the pod's own upload token.
    ///   - workPublicKeys: the keys that signed its batch's work (not secret; migration 0016).
    public func podEnvironment(batchID: Int64, amqpURL: String? = nil, uploadToken: String, workPublicKeys: [String]) -> [(key: String, value: String)] {
        var environment: [(key: String, value: String)] = [
            ("SPOTQ_BATCH_ID", "\(batchID)"), ("SPOTQ_SERVER_URL", podServerURL),
            ("SPOTQ_UPLOAD_TOKEN", uploadToken), ("SPOTQ_AMQP_URL", amqpURL ?? podAMQPURL),
            ("SPOTQ_WORKSPACE", fleet.template.volumeMountPath),
            // Pods check the planner's signature on their work with these.
            ("SPOTQ_WORK_PUBLIC_KEY", workPublicKeys.joined(separator: ",")),
        ]
        if let pem = podAMQPCAPEM { environment.append(("SPOTQ_AMQP_CA_PEM", pem)) }
        for (key, value) in fleet.template.bootstrapEnvironment.sorted(by: { $0.key < $1.key }) { environment.append((key, value)) }
        // Not secret: what the pod checks its bootstrap and binary against.
        environment.append(("SPOTQ_BOOTSTRAP_SHA256", PodSoftware.bootstrapSHA256))
        environment.append(("SPOTQ_BINARY_SHA256", podBinarySHA256))
        return environment
    }

    static func podBinaryHash(_ source: SettingsSource) throws -> String {
        if let pinned = source.string(nil, env: "SPOTQ_POD_BINARY_SHA256") {
            let hash = pinned.lowercased()
            guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
                throw ConfigurationError(message: "SPOTQ_POD_BINARY_SHA256 must be 64 hex digits (`sha256sum spotq`)")
            }
            return hash
        }
        let path = source.string(nil, env: "SPOTQ_POD_BINARY") ?? PodSoftware.binaryPath(environment: [:])
        do {
            return try PodSoftware.sha256(ofFile: path)
        } catch {
            throw ConfigurationError(message: "SPOTQ_POD_BINARY: \(error); set it to the spotq build the server serves pods, or SPOTQ_POD_BINARY_SHA256 to its hash")
        }
    }
}
