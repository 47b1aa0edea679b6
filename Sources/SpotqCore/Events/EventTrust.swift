/// Whether an event may be recorded, judged from who the broker says published it (the
/// validated `user_id`) and what spotq knows of that publisher; no I/O.
///
/// - No `user_id`: refused. The broker checks a `user_id` against the connection's login, so
///   only a message carrying one says who sent it.
/// - A pod's user (`pods.broker_user`): the event must be about that pod (provider and, once
///   the rental is recorded, the provider's pod id) and its batch. It is recorded against
///   the row the user belongs to, never against the pod it names.
/// - One of the trusted users (spotq's own components): recorded as it says.
/// - Anyone else: refused.
public enum EventTrust {
    /// What spotq knows of the pod a broker user belongs to.
    public struct PodRecord: Sendable, Equatable {
        public var rowID: Int64
        public var provider: String
        /// nil until the provider's answer to the rental is recorded.
        public var providerPodID: String?
        public var batchID: Int64?
        /// Terminated pods' users are deleted; a late event still in the queue is refused.
        public var terminated: Bool

        public init(rowID: Int64, provider: String, providerPodID: String?, batchID: Int64?, terminated: Bool) {
            self.rowID = rowID
            self.provider = provider
            self.providerPodID = providerPodID
            self.batchID = batchID
            self.terminated = terminated
        }
    }

    public enum Verdict: Sendable, Equatable {
        /// From spotq itself: recorded as it says.
        case trusted
        /// From this pod: recorded against its row.
        case fromPod(rowID: Int64)
        /// Dead-lettered with this reason; nothing changes.
        case refused(reason: String)
    }

    /// Who sent a message: its validated `user_id`; but when one of spotq's own users
    /// re-sent it (a dead letter's replay), the user its `x-spotq-published-by` header names.
    /// spotq fills that header from a validated `user_id`, and a pod cannot publish with a
    /// trusted `user_id`, so a replayed forgery is judged as its first sender's again.
    public static func sender(userID: String?, publishedBy: String?, trustedUsers: Set<String>) -> String? {
        guard let userID, trustedUsers.contains(userID), let publishedBy, !publishedBy.isEmpty else { return userID }
        return publishedBy
    }

    /// - Parameters:
    ///   - publisher: who sent it (``sender(userID:publishedBy:trustedUsers:)``).
    ///   - trustedUsers: spotq's own broker users (the server's at least).
    ///   - pod: the row whose `broker_user` is `publisher`, when there is one.
    public static func judge(_ event: SpotqEvent, publisher: String?, trustedUsers: Set<String>, pod: PodRecord?) -> Verdict {
        guard let publisher, !publisher.isEmpty else {
            return .refused(reason: "forged: the event carries no validated user_id, so nothing says who sent it")
        }
        if trustedUsers.contains(publisher) { return .trusted }
        guard let pod else {
            return .refused(reason: PodBrokerGrant.looksLikePodUser(publisher)
                ? "forged: broker user '\(publisher)' belongs to no pod spotq rented"
                : "forged: broker user '\(publisher)' is neither a pod's nor one of spotq's own")
        }
        let rowID = pod.rowID
        if pod.terminated {
            return .refused(reason: "forged: broker user '\(publisher)' belongs to pod #\(rowID), which is terminated")
        }
        if event.pod.provider != pod.provider || (pod.providerPodID != nil && event.pod.id != pod.providerPodID) {
            return .refused(reason: "forged: the event names pod \(event.pod.provider)/\(event.pod.id) but was sent by pod #\(rowID) (\(pod.provider)/\(pod.providerPodID ?? "not yet rented"))")
        }
        if event.batchID != pod.batchID {
            return .refused(reason: "forged: the event names batch \(event.batchID.map(String.init) ?? "none") but pod #\(rowID) works for batch \(pod.batchID.map(String.init) ?? "none")")
        }
        return .fromPod(rowID: rowID)
    }
}
