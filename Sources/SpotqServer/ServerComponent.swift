/// The background parts of `spotq server`; each can run alone (`--only`) to scale out.
public enum ServerComponent: String, Sendable, CaseIterable {
    /// Consumes `spotq.enqueue` into `image_generation_queue`.
    case enqueue
    /// Watches pending demand (LISTEN spotq_pending), plans batches when enough waits, and
    /// publishes their work messages.
    case planner
    /// HTTP: pods' manifests and result uploads (SPOTQ_HTTP_ADDR); /metrics and the dashboard (SPOTQ_OPS_HTTP_ADDR).
    case http
    /// Records pod, asset and image events from `spotq.events` in `pod_events`.
    case events
    /// Publishes demand snapshots (`metrics.demand`) for the provisioner.
    case demand
    /// Records everything that reaches `spotq.dead` in `dead_letters`.
    case deadletters

    /// Parses a comma-separated list such as `enqueue,planner,http`.
    public static func parseList(_ text: String) throws(ServerComponentError) -> Set<ServerComponent> {
        var components = Set<ServerComponent>()
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let component = ServerComponent(rawValue: part.lowercased()) else {
                throw ServerComponentError(message: "unknown server component '\(part)'; choose from \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            components.insert(component)
        }
        guard !components.isEmpty else { throw ServerComponentError(message: "--only needs at least one component") }
        return components
    }
}

public struct ServerComponentError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
