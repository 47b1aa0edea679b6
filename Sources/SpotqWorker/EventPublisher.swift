import AMQPClient
import Foundation
import Logging
import SpotqCore

/// Publishes this pod's events to `spotq.events` (best effort: an event lost to a broker
/// outage costs a line in `pod_events`, never an image).
actor EventPublisher {
    let channel: AMQPChannel
    let exchange: String
    let batchID: Int64
    let pod: SpotqEvent.Pod
    let logger: Logger
    private var sequence = 0
    private let run = UUID().uuidString.prefix(8).lowercased()

    init(channel: AMQPChannel, exchange: String, batchID: Int64, pod: SpotqEvent.Pod, logger: Logger) {
        self.channel = channel
        self.exchange = exchange
        self.batchID = batchID
        self.pod = pod
        self.logger = logger
    }

    func publish(_ kind: String, item: Int64? = nil, state: String? = nil, detail: [String: JSONScalar] = [:]) async {
        sequence += 1
        let event = SpotqEvent(
            eventKey: "\(pod.provider):\(pod.id):\(run):\(sequence)", kind: kind, batchID: batchID, itemID: item,
            pod: pod, state: state, detail: detail)
        do {
            try await channel.publish(
                exchange: exchange, routingKey: event.routingKey,
                body: Array(try SpotqEvent.encoder.encode(event)), properties: AMQPMessageProperties(contentType: "application/json"))
        } catch {
            logger.warning("worker: could not publish an event", metadata: ["kind": "\(kind)", "error": "\(error)"])
        }
    }

    func state(_ state: String, detail: [String: JSONScalar] = [:]) async {
        await publish("state", state: state, detail: detail)
    }
}
