import Crypto
import Foundation

/// What one pod may do on RabbitMQ: its own broker user, made by the provisioner before the
/// rental and deleted when the pod is terminated (which also closes its connections).
///
/// The pod may declare nothing, read only its batch's queue, and publish only to the three
/// topic exchanges its worker needs, each limited by topic permission to its own batch's
/// routing keys: events (`asset.…`, `image.…`, `pod.…` ending in `.<batch>`), retries and
/// dead letters (`spotq.batch.<batch>`). It cannot reach `spotq.work`, `spotq.dlx`,
/// `spotq.enqueue`, the demand snapshot or any other batch.
public struct PodBrokerGrant: Sendable, Equatable {
    /// The broker user: ``PodBrokerGrant/userName(podRowID:vhost:)``.
    public var user: String
    public var batchID: Int64
    public var permissions: Permissions
    public var topicPermissions: [TopicPermission]
    public var limits: Limits

    /// RabbitMQ's three per-vhost regexes over resource names.
    public struct Permissions: Sendable, Equatable {
        public var configure: String
        public var write: String
        public var read: String
    }

    /// Routing-key regexes on one topic exchange.
    public struct TopicPermission: Sendable, Equatable {
        public var exchange: String
        public var write: String
        public var read: String
    }

    public struct Limits: Sendable, Equatable {
        /// A worker holds one connection; a reconnect may briefly hold a second.
        public var maxConnections = 3
        /// Consuming, events, and a few spare for reconnects.
        public var maxChannels = 16
    }

    /// Every pod user's name starts with this; reconciling deletes those with no live pod.
    public static let userPrefix = "spotq-pod-"

    /// `spotq-pod-<row>-<vhost tag>`: users are global to a broker, so the name also says
    /// which vhost's spotq made it (two deployments on one broker never share a name, and
    /// each reconciles only its own). The recorder finds the pod by `pods.broker_user`.
    public static func userName(podRowID: Int64, vhost: String) -> String { "\(userPrefix)\(podRowID)-\(vhostTag(vhost))" }

    /// Whether `user` is named like one of this vhost's pods' users.
    public static func isPodUser(_ user: String, vhost: String) -> Bool {
        let suffix = "-" + vhostTag(vhost)
        guard user.hasPrefix(userPrefix), user.hasSuffix(suffix) else { return false }
        let id = user.dropFirst(userPrefix.count).dropLast(suffix.count)
        return !id.isEmpty && id.allSatisfy(\.isASCII) && id.allSatisfy(\.isNumber)
    }

    /// Whether `user` is named like any spotq pod's user (of any vhost).
    public static func looksLikePodUser(_ user: String) -> Bool { user.hasPrefix(userPrefix) }

    /// 8 hex digits of the vhost name's SHA-256.
    public static func vhostTag(_ vhost: String) -> String {
        SHA256.hash(data: Array(vhost.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    public init(podRowID: Int64, batchID: Int64, vhost: String) {
        user = Self.userName(podRowID: podRowID, vhost: vhost)
        self.batchID = batchID
        let queue = Self.escaped(BrokerNames.batchQueue(batchID))
        let writable = [BrokerNames.eventsExchange, BrokerNames.podRetryExchange, BrokerNames.podDeadLetterExchange].map(Self.escaped)
        permissions = Permissions(configure: "^$", write: "^(\(writable.joined(separator: "|")))$", read: "^\(queue)$")
        topicPermissions = [
            TopicPermission(exchange: BrokerNames.eventsExchange, write: "^(asset|image|pod)\\.[a-z_]+\\.\(batchID)$", read: "^$"),
            TopicPermission(exchange: BrokerNames.podRetryExchange, write: "^\(queue)$", read: "^$"),
            TopicPermission(exchange: BrokerNames.podDeadLetterExchange, write: "^\(queue)$", read: "^$"),
        ]
        limits = Limits()
    }

    /// `text` as a regex matching only itself (spotq's names hold dots, nothing else special).
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\.^$|?*+()[]{}".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
