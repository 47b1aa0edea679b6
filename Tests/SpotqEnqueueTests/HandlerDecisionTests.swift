import AMQPClient
import Foundation
import SpotqBroker
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqSynthetic
import Testing
@testable import ServerTestSupport

@Suite("consumer handlers: decisions without servers")
struct HandlerDecisionTests {
    let validator = EnqueueMessageValidator()

    func request(_ id: String) -> ReceivedMessage {
        ReceivedMessage(
            body: TextToImageRequest(requestID: id, checkpoint: "model.safetensors", positive: "a test image").messageJSON(),
            properties: AMQPMessageProperties(contentType: "application/json"))
    }

    @Test func anEnqueueBatch_insertsTheValidMessages_andRefusesTheOthersWithTheirReason() {
        let batch = EnqueueBatch([request("a"), ReceivedMessage(body: Array("not json".utf8)), request("b")], validator: validator)
        #expect(batch.valid.map(\.index) == [0, 2])
        #expect(batch.valid.map(\.message.requestID) == ["a", "b"])
        #expect(batch.requestIDs == ["a", nil, "b"])
        #expect(batch.refusals[1]?.contains("not valid JSON") == true)

        let outcomes = batch.outcomes(inserted: [.accepted(itemID: 7), .rejected(reason: "unknown checkpoint")])
        #expect(outcomes[0] == .accepted(itemID: 7))
        #expect(outcomes[2] == .rejected(reason: "unknown checkpoint"))
        guard case .rejected = outcomes[1] else { Issue.record("the invalid message is not refused"); return }
        let decisions = EnqueueBatch.decisions(for: outcomes)
        #expect(decisions[0] == .ack)
        #expect(decisions[2] == .deadLetter(reason: "unknown checkpoint"))
        guard case .deadLetter(let reason) = decisions[1] else { Issue.record("the invalid message is not dead-lettered"); return }
        #expect(reason.contains("not valid JSON"))
    }

    @Test func aDuplicate_isAcked_andAnAllRefusedBatchInsertsNothing() {
        #expect(EnqueueBatch.decisions(for: [.duplicate, .accepted(itemID: 1)]) == [.ack, .ack])
        let batch = EnqueueBatch([ReceivedMessage(body: Array("[]".utf8))], validator: validator)
        #expect(batch.valid.isEmpty)
        #expect(batch.outcomes(inserted: []).count == 1)
    }

    @Test func whilePostgresCannotTakeTheBatch_everyDeliveryIsHeld() {
        struct Down: Error, CustomStringConvertible { var description = "connection refused" }
        #expect(EnqueueBatch.held(3, because: Down()) == Array(repeating: .hold(reason: "cannot write to PostgreSQL: connection refused"), count: 3))
    }

    @Test func replies_goOnlyToMessagesWithAReplyTo_withTheirCorrelationID() throws {
        var asking = request("a")
        asking.properties.replyTo = "amq.gen-reply"
        asking.properties.correlationID = "corr-1"
        let replies = EnqueueBatch.replies(for: [asking, request("b")], outcomes: [.duplicate, .accepted(itemID: 2)], requestIDs: ["a", "b"])
        #expect(replies.count == 1)
        let reply = try #require(replies.first)
        #expect(reply.exchange == "")
        #expect(reply.routingKey == "amq.gen-reply")
        #expect(reply.properties.correlationID == "corr-1")
        #expect(reply.properties.deliveryMode == .transient)
        let decoded = try JSONDecoder().decode(EnqueueReply.self, from: Data(reply.body))
        #expect(decoded == EnqueueReply(requestID: "a", outcome: .duplicate))
    }

    @Test func anEventThatIsNotAVersionOneSpotqEvent_isDeadLettered() throws {
        guard case .failure(let refusal) = EventDecisions.read(Array("{\"not\": \"an event\"}".utf8)) else {
            Issue.record("read as an event"); return
        }
        #expect(refusal.reason.hasPrefix("not a version-1 spotq event"))
        let event = SpotqEvent(eventKey: "k", kind: .state, batchID: 1, pod: SpotqEvent.Pod(provider: "devcloud", id: "p"), state: .downloading)
        let body = Array(try SpotqEvent.encoder.encode(event))
        guard case .success(let read) = EventDecisions.read(body) else { Issue.record("a good event refused"); return }
        #expect(read.eventKey == "k")
    }

    @Test func anEventTheDatabaseRefuses_isDeadLettered_andAnyOtherFailureHoldsIt() {
        #expect(EventDecisions.decision(afterRecordingFailed: EventStore.Rejected(description: "unknown batch 9")) == .deadLetter(reason: "unknown batch 9"))
        struct Down: Error, CustomStringConvertible { var description = "connection refused" }
        #expect(EventDecisions.decision(afterRecordingFailed: Down()) == .hold(reason: "cannot write to PostgreSQL: connection refused"))
    }
}
