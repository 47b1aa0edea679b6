/// The connection thread's view of one ``AMQPChannel``.
///
/// An `AMQPChannel` is a logical channel: when the broker closes it (a failed passive
/// declare, a publish to a missing exchange…), the record forgets its wire channel number and
/// the next operation opens a fresh one, restoring confirm mode and QoS. Each (re)open bumps
/// `generation`, so deliveries from an earlier incarnation can be told apart and refused.
final class ChannelRecord {
    let logicalID: Int
    /// The channel number on the wire while open.
    var wire: UInt16?
    var generation = 0
    var closedByApplication = false
    /// Why the broker last closed this channel, for errors about its stale deliveries.
    var lastError: AMQPError?
    var confirmMode = false
    var qos: (prefetchCount: UInt16, global: Bool)?
    var confirms = ConfirmTracker()
    var assembler = ContentAssembler()
    var consumers: [String: ConsumerBuffer] = [:]

    init(logicalID: Int) {
        self.logicalID = logicalID
    }
}

/// A publish or batch waiting for its confirms.
final class PublishWaiter {
    let promise: AsyncPromise<AMQPBatchOutcome>
    let logicalChannel: Int
    let count: Int
    let deadline: ContinuousClock.Instant
    var firstSequence: UInt64 = 0
    var remaining: Int
    var nacked: [Int] = []
    var returned: [AMQPReturnedMessage] = []

    init(promise: AsyncPromise<AMQPBatchOutcome>, logicalChannel: Int, count: Int, deadline: ContinuousClock.Instant) {
        self.promise = promise
        self.logicalChannel = logicalChannel
        self.count = count
        self.remaining = count
        self.deadline = deadline
    }

    var outcome: AMQPBatchOutcome {
        AMQPBatchOutcome(count: count, nacked: nacked.sorted(), returned: returned.sorted { $0.index < $1.index })
    }
}
