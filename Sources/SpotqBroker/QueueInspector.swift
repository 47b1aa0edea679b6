import AMQPClient
import SpotqCore

/// Looks at spotq's queues without the management plugin: ready messages and consumers by
/// passive declare.
public enum QueueInspector {
    /// The queues `spotq queues` and `/metrics` report: the standard ones, then the batches'.
    public static func spotqQueues(batches: [Int64]) -> [String] {
        [BrokerNames.enqueueQueue, BrokerNames.eventsRecorderQueue, BrokerNames.demandQueue, BrokerNames.deadLetterQueue]
            + batches.map(BrokerNames.batchQueue)
    }

    /// Each queue of `names` that exists, with its counts. A missing queue (a batch not
    /// published yet) closes the channel that asked, so each queue gets a channel of its own.
    public static func look(_ connection: AMQPConnection, at names: [String]) async throws -> [String: AMQPQueueInfo] {
        var infos: [String: AMQPQueueInfo] = [:]
        for name in names {
            let channel = try await connection.openChannel()
            infos[name] = try? await channel.declareQueuePassive(name)
            try? await channel.close()
        }
        return infos
    }
}
