import SpotqTestSupport
import Testing

@testable import AMQPClient

@Suite("Frames rabbitmq-c queued during an RPC")
struct QueuedFrameTests {
    /// rabbitmq-c queues a `channel.close` for channel B that arrives while an RPC on channel
    /// A waits, and its next RPC on B would never see it. This runs the three steps inside one
    /// job on the connection thread, so nothing dispatches the queue in between.
    @Test func channelCloseQueuedDuringAnotherRPC_isHandledBeforeTheNextRPCOnThatChannel() async throws {
        let slow = TestEnvironment.uniqueName("q")
        let existing = TestEnvironment.uniqueName("q")
        let missing = TestEnvironment.uniqueName("nox")
        try await AMQPTest.withChannel(deleting: [slow, existing]) { a in
            try await a.declareQueue(existing)
            let b = try await a.connection.openChannel()
            let (aID, bID) = (a.id, b.id)
            let confirm = AsyncPromise<AMQPBatchOutcome>()
            let info = try await withTimeout(.seconds(8), "the RPC on the closed channel") {
                try await a.connection.handle.perform { core in
                    let lost = AMQPOutgoingMessage(exchange: missing, routingKey: "x", body: [1])
                    try core.publishBatch(bID, [lost], promise: confirm)
                    // A quorum queue takes a Raft round: B's channel.close arrives meanwhile.
                    _ = try core.declareQueue(
                        aID, name: slow, passive: false, durable: true, exclusive: false, autoDelete: false,
                        arguments: ["x-queue-type": "quorum"])
                    return try core.declareQueue(
                        bID, name: existing, passive: true, durable: false, exclusive: false, autoDelete: false,
                        arguments: [:])
                }
            }
            #expect(info.name == existing)
            let error = try await #require(throws: AMQPError.self) { try await confirm.value() }
            #expect(error.replyCode == 404)
            #expect(a.connection.isOpen)
        }
    }
}
