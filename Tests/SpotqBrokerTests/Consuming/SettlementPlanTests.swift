import AMQPClient
import Foundation
import SpotqBroker
import SpotqCore
import Testing

@Suite("consumer shell: what decisions mean on the wire")
struct SettlementPlanTests {
    let message = ReceivedMessage(
        body: Array("hello".utf8), properties: AMQPMessageProperties(contentType: "application/json", headers: ["x-own": .string("kept")]),
        exchange: "spotq.work", routingKey: "batch.7")
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func plan(_ decisions: [DeliveryDecision]) -> SettlementPlan {
        SettlementPlan(messages: Array(repeating: message, count: decisions.count), decisions: decisions, queue: "spotq.batch.7", deadLetterExchange: "spotq.dlx", now: now)
    }

    /// RabbitMQ refuses a user_id other than the publisher's login: a copy of a pod's message
    /// published by the server must not carry the pod's, and keeps it in a header instead.
    @Test func copies_moveTheOriginalsUserIDToAHeader_andCarryNoneOfTheirOwn() throws {
        var fromPod = message
        fromPod.properties.userID = "spotq-pod-4"
        let plan = SettlementPlan(
            messages: [fromPod, fromPod], decisions: [.deadLetter(reason: "forged"), .retry(failures: 1)], queue: "spotq.events.recorder",
            deadLetterExchange: "spotq.dlx", retryExchange: "spotq.pod.retry", now: now)
        for copy in plan.publishes {
            #expect(copy.properties.userID == nil)
            #expect(copy.properties.headers?[BrokerNames.publishedByHeader]?.stringValue == "spotq-pod-4")
        }
        #expect(plan.publishes[1].exchange == "spotq.pod.retry")
        #expect(plan.publishes[1].routingKey == fromPod.routingKey)
    }

    @Test func ackAndRequeue_publishNothing() {
        let plan = plan([.ack, .requeue])
        #expect(plan.publishes.isEmpty)
        #expect(plan.actions == [.ack, .requeue])
        #expect(plan.held.isEmpty)
        #expect(plan.settled == [0, 1])
    }

    @Test func aDeadLetter_isACopyToTheDeadLetterExchangeWithReasonAndOrigin_thenTheOriginalIsAcked() throws {
        let plan = plan([.deadLetter(reason: "bad fields")])
        #expect(plan.actions == [.ack])
        let copy = try #require(plan.publishes.first)
        #expect(copy == AMQPOutgoingMessage.deadLetter(of: message, queue: "spotq.batch.7", exchange: "spotq.dlx", reason: "bad fields", now: now))
        #expect(copy.exchange == "spotq.dlx")
        #expect(copy.routingKey == "batch.7")
        #expect(copy.body == message.body)
        #expect(copy.properties.headers?[BrokerNames.reasonHeader]?.stringValue == "bad fields")
        #expect(copy.properties.headers?[BrokerNames.originQueueHeader]?.stringValue == "spotq.batch.7")
        #expect(copy.properties.headers?[BrokerNames.originExchangeHeader]?.stringValue == "spotq.work")
        #expect(copy.properties.headers?["x-own"]?.stringValue == "kept")
        #expect(copy.properties.deliveryMode == .persistent)
    }

    @Test func aRetry_isAMandatoryCopyToTheOwnExchangeAndRoutingKey_carryingTheFailureCount() throws {
        let plan = plan([.retry(failures: 3)])
        #expect(plan.actions == [.ack])
        let copy = try #require(plan.publishes.first)
        #expect(copy.exchange == "spotq.work")
        #expect(copy.routingKey == "batch.7")
        #expect(copy.mandatory)
        #expect(copy.body == message.body)
        #expect(copy.properties.contentType == "application/json")
        #expect(copy.properties.headers?[DeliveryDecision.failuresHeader]?.intValue == 3)
        #expect(copy.properties.headers?["x-own"]?.stringValue == "kept")
        #expect(DeliveryDecision.failures(in: copy.properties) == 3)
        #expect(DeliveryDecision.failures(in: message.properties) == 0)
    }

    @Test func aGiveUp_isADeadLetterWhoseFailureHeaderCountsWhatItsReasonSays() throws {
        var retried = message
        var headers = retried.properties.headers ?? AMQPTable()
        headers[DeliveryDecision.failuresHeader] = .int64(2)
        retried.properties.headers = headers
        let plan = SettlementPlan(
            messages: [retried], decisions: [.giveUp(failures: 3, reason: "failed 3 times; last: x")],
            queue: "spotq.batch.7", deadLetterExchange: "spotq.dlx", now: now)
        #expect(plan.actions == [.ack])
        let copy = try #require(plan.publishes.first)
        #expect(copy.exchange == "spotq.dlx")
        #expect(copy.properties.headers?[BrokerNames.reasonHeader]?.stringValue == "failed 3 times; last: x")
        #expect(DeliveryDecision.failures(in: copy.properties) == 3)
        #expect(DeliveryDecision.failures(in: retried.properties) == 2)
        #expect(copy.properties.headers?[DeliveryDecision.podFaultsHeader] == nil)
        let poison = try #require(SettlementPlan(
            messages: [retried], decisions: [.giveUp(failures: 2, podFaults: 10, reason: "handed back after 10 pod faults; last: x")],
            queue: "spotq.batch.7", deadLetterExchange: "spotq.dlx", now: now).publishes.first)
        #expect(DeliveryDecision.podFaults(in: poison.properties) == 10)
        #expect(DeliveryDecision.failures(in: poison.properties) == 2)
    }

    @Test func aHandBack_isARetryCopyCountingPodFaults_itsFailureCountUnchanged() throws {
        var retried = message
        var headers = retried.properties.headers ?? AMQPTable()
        headers[DeliveryDecision.failuresHeader] = .int64(2)
        retried.properties.headers = headers
        let plan = SettlementPlan(
            messages: [retried], decisions: [.handBack(podFaults: 4)], queue: "spotq.batch.7", deadLetterExchange: "spotq.dlx",
            retryExchange: "spotq.pod.retry", now: now)
        #expect(plan.actions == [.ack])
        let copy = try #require(plan.publishes.first)
        #expect(copy.exchange == "spotq.pod.retry")
        #expect(copy.routingKey == "batch.7")
        #expect(copy.mandatory)
        #expect(DeliveryDecision.podFaults(in: copy.properties) == 4)
        #expect(DeliveryDecision.failures(in: copy.properties) == 2)
        #expect(DeliveryDecision.podFaults(in: retried.properties) == 0)
    }

    @Test func heldDeliveries_areNeitherPublishedNorAcked_andTheFirstReasonIsKept() {
        let plan = plan([.hold(reason: "PostgreSQL away"), .deadLetter(reason: "x"), .hold(reason: "later"), .ack])
        #expect(plan.actions == [.hold, .ack, .hold, .ack])
        #expect(plan.publishes.count == 1)
        #expect(plan.held == [0, 2])
        #expect(plan.settled == [1, 3])
        #expect(plan.holdReason == "PostgreSQL away")
    }

    @Test func aBatch_publishesItsCopiesInOrder() {
        let plan = plan([.deadLetter(reason: "one"), .ack, .retry(failures: 1), .deadLetter(reason: "two")])
        #expect(plan.publishes.map(\.exchange) == ["spotq.dlx", "spotq.work", "spotq.dlx"])
        #expect(plan.publishes.map { $0.properties.headers?[BrokerNames.reasonHeader]?.stringValue } == ["one", nil, "two"])
        #expect(plan.actions == [.ack, .ack, .ack, .ack])
    }
}

@Suite("consumer shell: holding and reconnecting")
struct HoldPolicyTests {
    let policy = HoldPolicy(limit: .seconds(10), backoff: RetryBackoff(initial: .seconds(1), maximum: .seconds(4), jitter: 0))

    @Test func withinTheLimit_heldDeliveriesAreRetried_afterAGrowingBackoff() {
        #expect(policy.next(afterHolds: 1, elapsed: .zero) == .retry(after: .seconds(1)))
        #expect(policy.next(afterHolds: 2, elapsed: .seconds(1)) == .retry(after: .seconds(2)))
        #expect(policy.next(afterHolds: 5, elapsed: .seconds(3)) == .retry(after: .seconds(4)))
    }

    @Test func theLastWait_neverRunsPastTheLimit() {
        #expect(policy.next(afterHolds: 5, elapsed: .seconds(9)) == .retry(after: .seconds(1)))
    }

    @Test func atTheLimit_theDeliveriesAreHandedBack() {
        #expect(policy.next(afterHolds: 6, elapsed: .seconds(10)) == .handBack)
        #expect(policy.next(afterHolds: 1, elapsed: .seconds(11)) == .handBack)
    }

    @Test func onlyErrorsReconnectingCannotFix_stopTheConsumer() {
        #expect(QueueConsumerConfiguration.isPermanent(AMQPError(code: .authenticationFailed, message: "")))
        #expect(QueueConsumerConfiguration.isPermanent(AMQPError(code: .invalidURL, message: "")))
        #expect(QueueConsumerConfiguration.isPermanent(AMQPError(code: .closed, message: "")))
        #expect(QueueConsumerConfiguration.isPermanent(QueueConsumerError(description: "3 decisions for 2 deliveries")))
        for code in [AMQPError.Code.connectionClosed, .channelClosed, .connectionFailed, .timeout, .heartbeatTimeout, .consumerCancelled, .publishNacked, .publishReturned] {
            #expect(!QueueConsumerConfiguration.isPermanent(AMQPError(code: code, message: "")), "\(code)")
        }
        struct Other: Error {}
        #expect(!QueueConsumerConfiguration.isPermanent(Other()))
    }
}

@Suite("consumer shell: stopping from outside")
struct ConsumeStopTests {
    @Test func theFirstReasonWins_andWaitersGetIt() async throws {
        let stop = ConsumeStop<String>()
        #expect(stop.reason == nil)
        async let waited = stop.wait()
        stop.fire("terminating")
        stop.fire("finished")
        #expect(await waited == "terminating")
        #expect(stop.reason == "terminating")
        #expect(await stop.wait() == "terminating")
    }

    @Test func aCancelledWaiter_returnsNil_withoutFiring() async throws {
        let stop = ConsumeStop<String>()
        let waiter = Task { await stop.wait() }
        waiter.cancel()
        #expect(await waiter.value == nil)
        #expect(stop.reason == nil)
    }
}
