/// The broker users of spotq's own components and what each may do on its vhost
/// (`spotq broker-users` makes them; the README's "Security" table lists them).
public enum ComponentBrokerGrant: String, Sendable, CaseIterable {
    /// `spotq server`: declares the topology and batch queues, consumes the enqueue, events and
    /// dead-letter queues, publishes work, dead letters, replays, demand and enqueue replies.
    case server = "spotq-server"
    /// `spotq provisioner`: reads the demand snapshot; declares and publishes nothing. Its
    /// management API login (an administrator, for pods' users) is a separate credential.
    case provisioner = "spotq-provisioner"
    /// The website: publishes requests to `spotq.enqueue`, and may read replies on its own
    /// server-named reply queue (`amq.gen-…`).
    case website = "spotq-website"

    public var user: String { rawValue }

    public var permissions: PodBrokerGrant.Permissions {
        switch self {
        case .server:
            // amq.default: enqueue replies go to the website's reply_to queue through it.
            PodBrokerGrant.Permissions(configure: "^spotq\\.", write: "^(spotq\\..+|amq\\.default)$", read: "^spotq\\.")
        case .provisioner:
            PodBrokerGrant.Permissions(configure: "^$", write: "^$", read: "^spotq\\.demand$")
        case .website:
            PodBrokerGrant.Permissions(configure: "^amq\\.gen-", write: "^(spotq\\.enqueue|amq\\.gen-.+)$", read: "^amq\\.gen-")
        }
    }
}
