import AMQPClient
import Foundation
import SpotqBroker
import SpotqCore
import Testing

@Suite("dead letters on the wire: the copy spotq publishes, what is kept of it, its replay")
struct DeadLetterMessageTests {
    let message = ReceivedMessage(
        body: Array(#"{"batch_id": 7, "item_id": 70}"#.utf8),
        properties: AMQPMessageProperties(contentType: "application/json", headers: ["x-own": .string("kept"), "x-count": .int64(3)], messageID: "item-70"),
        exchange: BrokerNames.workExchange, routingKey: BrokerNames.batchQueue(7))
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func aCopySpotqDeadLettered_readsBackWithItsReasonOriginTimeAndWorkItem() {
        let copy = AMQPOutgoingMessage.deadLetter(of: message, queue: BrokerNames.batchQueue(7), exchange: BrokerNames.deadLetterExchange, reason: "bad fields", now: now)
        let letter = DeadLetter(body: copy.body, properties: copy.properties, now: now.addingTimeInterval(60))
        #expect(letter.reason == "bad fields")
        #expect(letter.originExchange == BrokerNames.workExchange)
        #expect(letter.originRoutingKey == BrokerNames.batchQueue(7))
        #expect(letter.originQueue == BrokerNames.batchQueue(7))
        #expect(letter.deathCount == 1)
        #expect(letter.deadLetteredAt == now)
        #expect(letter.messageID == "item-70")
        #expect(letter.contentType == "application/json")
        #expect(letter.body == message.body)
        #expect(letter.workItem?.batchID == 7)
        #expect(letter.workItem?.itemID == 70)
    }

    @Test func aLetterWithNoHeaders_hasNoReasonRecorded_andTheTimeItWasRead() {
        let letter = DeadLetter(body: Array("x".utf8), properties: AMQPMessageProperties(), now: now)
        #expect(letter.reason == "no reason recorded")
        #expect(letter.originQueue == nil)
        #expect(letter.deadLetteredAt == now)
        #expect(letter.workItem == nil)
    }

    @Test func aReplay_goesToTheOrigin_withTheOriginalHeadersButNotTheDeadLetterOnes() {
        let copy = AMQPOutgoingMessage.deadLetter(of: message, queue: BrokerNames.batchQueue(7), exchange: BrokerNames.deadLetterExchange, reason: "bad fields", now: now)
        let letter = DeadLetter(body: copy.body, properties: copy.properties, now: now)
        let replay = AMQPOutgoingMessage.replay(of: letter, id: 42, exchange: BrokerNames.workExchange, routingKey: BrokerNames.batchQueue(7))
        #expect(replay.exchange == BrokerNames.workExchange)
        #expect(replay.routingKey == BrokerNames.batchQueue(7))
        #expect(replay.body == message.body)
        #expect(replay.mandatory)
        #expect(replay.properties.deliveryMode == .persistent)
        #expect(replay.properties.messageID == "item-70")
        #expect(replay.properties.contentType == "application/json")
        let headers = replay.properties.headers ?? AMQPTable()
        #expect(headers["x-own"]?.stringValue == "kept")
        #expect(headers["x-count"]?.intValue == 3)
        #expect(headers["x-spotq-replayed-from"]?.intValue == 42)
        #expect(headers[BrokerNames.reasonHeader] == nil)
        #expect(headers[BrokerNames.originQueueHeader] == nil)
        #expect(headers[BrokerNames.deadLetteredAtHeader] == nil)
    }
}
