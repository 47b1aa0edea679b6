import ArgumentParser
import CurlClient
import Foundation
import SpotqCore
import SpotqProvisioner

/// `spotq broker-users`: makes (or renews) the least-privilege broker users of spotq's own
/// components through RabbitMQ's management API, and writes each one's AMQP URL to a file
/// only its owner can read. Passwords are generated, sent only as RabbitMQ password hashes,
/// and never printed.
struct BrokerUsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker-users",
        abstract: "Make the server's, provisioner's and website's own broker users; write their AMQP URLs to files.")

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Where each component's `<user>.env` (SPOTQ_AMQP_URL=…) is written, mode 600.")
    var writeTo: String

    @Option(help: "The URL components reach the broker at (its host, port and vhost are used; default SPOTQ_AMQP_URL).")
    var brokerURL: String?

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.broker-users")
        let settings = connection.settings
        guard let managementURL = settings.string(nil, env: "SPOTQ_RABBITMQ_MANAGEMENT_URL") else {
            throw ValidationError("SPOTQ_RABBITMQ_MANAGEMENT_URL is not set: the management API URL with an administrator's user and password")
        }
        let base = try brokerURL ?? connection.resolvedAMQPURL()
        let http = try HTTPClient(logger: logger, name: "spotq-broker-users")
        defer { http.shutdown() }
        let management = try RabbitMQManagement(url: managementURL, http: http)
        let vhost = try PodBrokerAccess(management: management, podAMQPURL: base).vhost
        try FileManager.default.createDirectory(atPath: writeTo, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for component in ComponentBrokerGrant.allCases {
            let password = BrokerPassword.generate()
            try await management.putUser(component.user, passwordHash: BrokerPassword.rabbitMQHash(password))
            try await management.setPermissions(vhost: vhost, user: component.user, component.permissions)
            let url = PodBrokerAccess.url(base, user: component.user, password: password)
            let path = (writeTo as NSString).appendingPathComponent("\(component.user).env")
            try SecretFile.write("SPOTQ_AMQP_URL=\(url)\n", to: path)
            print("\(component.user): permissions set on vhost '\(vhost)'; its URL is in \(path)")
        }
    }
}
