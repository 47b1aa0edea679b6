import AMQPClient
import Foundation

extension AMQPConfiguration {
    /// The configuration every spotq component connects with: `url` (`amqp://` or
    /// `amqps://`) and, for TLS, the CA file in `SPOTQ_AMQP_CA_FILE` (else the system's
    /// bundle). Peer and host-name checks are always on: spotq has no switch to turn them off.
    public static func spotq(
        url: String, connectionName: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> AMQPConfiguration {
        var configuration = AMQPConfiguration(url: url, connectionName: connectionName)
        if let caFile = environment["SPOTQ_AMQP_CA_FILE"], !caFile.isEmpty { configuration.tls.caFile = caFile }
        return configuration
    }
}
