import AMQPClient
import Foundation
import Logging
import SpotqCore

/// Publishes this pod's events to `spotq.events` (best effort: an event lost to a broker
/// outage costs a line in `pod_events`, never an image).
actor EventPublisher {
    let amqp: AMQPClient
    let exchange: String
    let batchID: Int64
    let pod: SpotqEvent.Pod
    let logger: Logger
    /// What the worker is doing, for its heartbeats; kept here because every part that
    /// reports events (work loop, downloads) also says what it is doing.
    nonisolated let activity: ActivityTracker
    private var channel: AMQPChannel?
    private var sequence = 0
    private let run = UUID().uuidString.prefix(8).lowercased()

    init(amqp: AMQPClient, exchange: String, batchID: Int64, pod: SpotqEvent.Pod, logger: Logger, activity: ActivityTracker = ActivityTracker()) {
        self.amqp = amqp
        self.exchange = exchange
        self.batchID = batchID
        self.pod = pod
        self.logger = logger
        self.activity = activity
    }

    /// Publishes on its own channel, opened again (on a reconnected connection) after a
    /// broker outage, so heartbeats resume when the broker is back.
    func publish(_ kind: EventKind, item: Int64? = nil, state: PodState? = nil, detail: [String: JSONScalar] = [:]) async {
        sequence += 1
        let event = SpotqEvent(
            eventKey: "\(pod.provider):\(pod.id):\(run):\(sequence)", kind: kind, batchID: batchID, itemID: item,
            pod: pod, state: state, detail: detail)
        let body: [UInt8]
        do {
            body = Array(try SpotqEvent.encoder.encode(event))
        } catch {
            logger.warning("worker: could not encode an event", metadata: ["kind": "\(kind)", "error": "\(error)"])
            return
        }
        // A channel that died with the last connection fails once; then one fresh try.
        for attempt in 1...2 {
            do {
                let open: AMQPChannel
                if let channel {
                    open = channel
                } else {
                    open = try await amqp.connection().openChannel()
                    channel = open
                }
                try await open.publish(exchange: exchange, routingKey: event.routingKey, body: body, properties: AMQPMessageProperties(contentType: "application/json"))
                return
            } catch {
                let wasStale = channel != nil
                channel = nil
                if attempt == 1 && wasStale { continue }
                logger.warning("worker: could not publish an event", metadata: ["kind": "\(kind)", "error": "\(error)"])
                return
            }
        }
    }

    func publish(_ event: WorkerEvent) async {
        await publish(event.kind, item: event.item, detail: event.detail)
    }

    func state(_ state: PodState, detail: [String: JSONScalar] = [:]) async {
        await publish(.state, state: state, detail: detail)
    }
}
