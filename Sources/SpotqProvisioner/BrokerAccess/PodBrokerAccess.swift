import Foundation
import SpotqCore

/// Each pod's own RabbitMQ user: made before the rental with ``PodBrokerGrant``'s
/// permissions and limits, deleted when the pod is terminated (its connections close at
/// once), and leftovers with no live pod deleted by ``reconcile(livePodUsers:)``. Only users
/// named for this vhost (``PodBrokerGrant/isPodUser(_:vhost:)``) are ever touched.
public struct PodBrokerAccess: Sendable {
    public let management: RabbitMQManagement
    /// The URL pods connect to (SPOTQ_POD_AMQP_URL): its host, port and vhost are kept, its
    /// user and password replaced by the pod's own.
    public let podAMQPURL: String
    public let vhost: String

    public init(management: RabbitMQManagement, podAMQPURL: String) throws {
        guard let components = URLComponents(string: podAMQPURL), ["amqp", "amqps"].contains(components.scheme ?? "") else {
            throw ConfigurationError(message: "SPOTQ_POD_AMQP_URL must be an amqp:// or amqps:// URL")
        }
        self.management = management
        self.podAMQPURL = podAMQPURL
        let path = components.percentEncodedPath
        vhost = path.isEmpty || path == "/" ? "/" : String(path.dropFirst()).removingPercentEncoding ?? "/"
    }

    /// A granted user and the URL carrying its credentials (a secret: never logged).
    public struct Granted: Sendable {
        public var user: String
        public var amqpURL: String
    }

    /// Creates pod `podRowID`'s user for `batchID`. On any failure the half-made user is
    /// deleted and the error thrown: no pod is rented without its own identity.
    public func grant(podRowID: Int64, batchID: Int64) async throws -> Granted {
        let grant = PodBrokerGrant(podRowID: podRowID, batchID: batchID, vhost: vhost)
        let password = BrokerPassword.generate()
        do {
            try await management.putUser(grant.user, passwordHash: BrokerPassword.rabbitMQHash(password))
            try await management.setPermissions(vhost: vhost, user: grant.user, grant.permissions)
            for topic in grant.topicPermissions {
                try await management.setTopicPermission(vhost: vhost, user: grant.user, topic)
            }
            try await management.setLimit(user: grant.user, "max-connections", grant.limits.maxConnections)
            try await management.setLimit(user: grant.user, "max-channels", grant.limits.maxChannels)
        } catch {
            _ = try? await management.deleteUser(grant.user)
            throw error
        }
        return Granted(user: grant.user, amqpURL: Self.url(podAMQPURL, user: grant.user, password: password))
    }

    /// `base` (an AMQP URL) with this login instead of its own. Names and passwords spotq makes
    /// need no percent-encoding.
    public static func url(_ base: String, user: String, password: String) -> String {
        guard var components = URLComponents(string: base) else { return base }
        components.percentEncodedUser = user
        components.percentEncodedPassword = password
        return components.string ?? base
    }

    /// Deletes `user`; its connections close at once. A user already gone is fine.
    public func revoke(_ user: String) async throws {
        try await management.deleteUser(user)
    }

    /// Deletes every one of this vhost's pod users not in `livePodUsers`; returns their names.
    public func reconcile(livePodUsers: Set<String>) async throws -> [String] {
        let leftovers = try await management.userNames().filter { PodBrokerGrant.isPodUser($0, vhost: vhost) && !livePodUsers.contains($0) }
        for user in leftovers { try await management.deleteUser(user) }
        return leftovers
    }
}
