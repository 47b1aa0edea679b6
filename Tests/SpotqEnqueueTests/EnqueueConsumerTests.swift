import AMQPClient
import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqCore
import SpotqServer
import SpotqStore
import SpotqTestSupport
import Testing
import SpotqSynthetic
@testable import ServerTestSupport

@Suite("enqueue by AMQP: the server's consumer")
struct EnqueueConsumerTests {
    @Test func validMessages_becomePendingRows_andAreAckedAfterCommit() async throws {
        try await EnqueueFixture.with { fixture in
            try await fixture.withConsumer {
                for index in 0..<30 {
                    try await fixture.publish(fixture.request("r\(index)", loras: index % 2 == 0 ? [] : [LoraUse(file: EnqueueFixture.lora, strength: 0.7)]))
                }
                try await eventually("30 rows") { try await fixture.rowCount() == 30 }
                try await eventually("queue drained") { try await fixture.ready(fixture.queue) == 0 }
            }
            let statuses = try await fixture.postgres.query("SELECT DISTINCT status FROM image_generation_queue").map { try $0.decode(String.self, at: 0) }
            #expect(statuses == ["pending"])
            #expect(try await fixture.ready(fixture.deadQueue) == 0)
        }
    }

    @Test func aDuplicateRequestID_isAckedWithoutASecondRow_andAnsweredAsDuplicate() async throws {
        try await EnqueueFixture.with { fixture in
            let replyChannel = try await fixture.connection.openChannel()
            let replyQueue = try await replyChannel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
            let replies = try await replyChannel.consume(queue: replyQueue)
            let properties = AMQPMessageProperties(contentType: "application/json", correlationID: "c", replyTo: replyQueue)
            try await fixture.withConsumer {
                try await fixture.publish(fixture.request("same"), properties: properties)
                try await fixture.publish(fixture.request("same"), properties: properties)
                let answers = try await withTimeout(.seconds(20), "two replies") {
                    var answers: [EnqueueReply] = []
                    for try await delivery in replies {
                        try await delivery.ack()
                        answers.append(try JSONDecoder().decode(EnqueueReply.self, from: Data(delivery.body)))
                        if answers.count == 2 { break }
                    }
                    return answers
                }
                #expect(answers.map(\.outcome) == ["accepted", "duplicate"])
                #expect(answers.allSatisfy { $0.requestID == "same" })
            }
            #expect(try await fixture.rowCount() == 1)
            #expect(try await fixture.ready(fixture.queue) == 0)
            try? await replyChannel.close()
        }
    }

    @Test func invalidMessages_areDeadLetteredWithAReason_andValidOnesBehindThemAreInserted() async throws {
        try await EnqueueFixture.with { fixture in
            let bad: [(body: String, reason: String)] = [
                ("this is not json", "the body is not valid JSON"),
                (#"{"version": 2, "request_id": "v2"}"#, "unknown version 2"),
                (#"{"version": 1, "request_id": "m", "checkpoint": "base.safetensors", "prompt": {"positive": "x"}}"#, "\"workflow\" is missing"),
                (#"{"version": 1, "request_id": "t", "checkpoint": "base.safetensors", "prompt": "x", "workflow": {}}"#, "\"prompt\" must be a JSON object, not string"),
                (String(decoding: fixture.request("unknown", checkpoint: "nope.safetensors"), as: UTF8.self), "unknown checkpoint \"nope.safetensors\""),
                (String(decoding: fixture.request("lora-as-ckpt", checkpoint: EnqueueFixture.lora), as: UTF8.self), "is a lora, not a checkpoint"),
                (#"{"version": 1, "request_id": "big", "checkpoint": "base.safetensors", "prompt": {"positive": "\#(String(repeating: "x", count: 70_000))"}, "workflow": {}}"#, "the limit is 65536"),
            ]
            try await fixture.withConsumer({ $0.maxMessageBytes = 65_536 }) {
                for (index, entry) in bad.enumerated() {
                    try await fixture.publish(Array(entry.body.utf8))
                    try await fixture.publish(fixture.request("good-\(index)"))
                }
                try await eventually("7 good rows") { try await fixture.rowCount() == bad.count }
                let dead = try await fixture.deadLetters(bad.count)
                for (entry, letter) in zip(bad, dead) {
                    #expect(letter.reason?.contains(entry.reason) == true, "\(letter.reason ?? "no reason") should mention \(entry.reason)")
                    #expect(letter.body == Array(entry.body.utf8))
                    #expect(letter.properties.headers?[BrokerNames.originQueueHeader]?.stringValue == fixture.queue)
                    #expect(letter.properties.headers?[BrokerNames.originExchangeHeader]?.stringValue == fixture.exchange)
                }
                try await eventually("queue drained") { try await fixture.ready(fixture.queue) == 0 }
            }
            #expect(try await fixture.requestIDs() == (0..<bad.count).map { "good-\($0)" }.sorted())
            // Nothing was requeued in a loop: the dead queue holds exactly one copy of each.
            #expect(try await fixture.ready(fixture.deadQueue) == 0)
        }
    }

    @Test func sixtyFourBitSeeds_keepEveryDigit() async throws {
        try await EnqueueFixture.with { fixture in
            var request = TextToImageRequest(requestID: "seed", checkpoint: EnqueueFixture.checkpoint, positive: "x")
            request.seed = UInt64.max
            try await fixture.withConsumer {
                try await fixture.publish(request.messageJSON())
                try await eventually("the row") { try await fixture.rowCount() == 1 }
            }
            let seed = try await fixture.postgres.query("SELECT prompt ->> 'seed' FROM image_generation_queue").first?.decode(String.self, at: 0)
            #expect(seed == "18446744073709551615")
        }
    }

    @Test func whilePostgresIsDown_nothingIsAcked_andTheConsumerResumesWhenItReturns() async throws {
        let server = try PrivatePostgres()
        do {
            try await server.start()
            try await EnqueueFixture.with(databaseURL: server.url) { fixture in
                try await fixture.withConsumer({ $0.holdLimit = .seconds(2) }) {
                    try await fixture.publish(fixture.request("before"))
                    try await eventually("the first row") { try await fixture.rowCount() == 1 }

                    try await server.stop()
                    for index in 0..<20 { try await fixture.publish(fixture.request("during-\(index)")) }
                    // The consumer holds them, gives up after the hold limit, hands them back and
                    // stops consuming: all 20 are ready in the queue again, none dead-lettered.
                    try await eventually("20 messages back in the queue", timeout: .seconds(30)) {
                        try await fixture.ready(fixture.queue) == 20
                    }
                    #expect(try await fixture.ready(fixture.deadQueue) == 0)

                    try await server.start()
                    try await eventually("all rows after PostgreSQL returned", timeout: .seconds(30)) {
                        try await fixture.rowCount() == 21
                    }
                    try await eventually("queue drained") { try await fixture.ready(fixture.queue) == 0 }
                }
                #expect(try await fixture.ready(fixture.deadQueue) == 0)
            }
            await server.destroy()
        } catch {
            await server.destroy()
            throw error
        }
    }
}
