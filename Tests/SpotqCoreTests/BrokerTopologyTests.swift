import SpotqCore
import Testing

@Suite("Broker topology")
struct BrokerTopologyTests {
    let topology = BrokerTopology.standard()

    @Test func everyBindingNamesADeclaredQueueAndExchange() {
        let queues = Set(topology.queues.map(\.name))
        let exchanges = Set(topology.exchanges.map(\.name))
        for binding in topology.bindings {
            #expect(queues.contains(binding.queue))
            #expect(exchanges.contains(binding.exchange))
        }
    }

    @Test func enqueueQueue_isQuorum_andDeadLettersAtLeastOnceToTheDLX() throws {
        let queue = try #require(topology.queues.first { $0.name == BrokerNames.enqueueQueue })
        #expect(queue.arguments["x-queue-type"] == .string("quorum"))
        #expect(queue.arguments["x-dead-letter-exchange"] == .string(BrokerNames.deadLetterExchange))
        #expect(queue.arguments["x-dead-letter-strategy"] == .string("at-least-once"))
        // At-least-once dead-lettering requires reject-publish overflow.
        #expect(queue.arguments["x-overflow"] == .string("reject-publish"))
    }

    @Test func podsExchanges_areTopicExchanges_soTopicPermissionsCanLimitThemToOneBatch() throws {
        for name in [BrokerNames.podRetryExchange, BrokerNames.podDeadLetterExchange, BrokerNames.eventsExchange] {
            let exchange = try #require(topology.exchanges.first { $0.name == name })
            #expect(exchange.kind == .topic, "\(name)")
        }
        let podDead = try #require(topology.bindings.first { $0.exchange == BrokerNames.podDeadLetterExchange })
        #expect(podDead.queue == BrokerNames.deadLetterQueue)
        #expect(podDead.routingKey == "spotq.batch.*")
    }

    @Test func deadLetterQueue_hasNoLengthCap() throws {
        let queue = try #require(topology.queues.first { $0.name == BrokerNames.deadLetterQueue })
        #expect(queue.arguments["x-max-length"] == nil)
        #expect(queue.arguments["x-max-length-bytes"] == nil)
    }

    @Test func demandQueue_keepsOnlyTheNewestSnapshot() throws {
        let queue = try #require(topology.queues.first { $0.name == BrokerNames.demandQueue })
        #expect(queue.arguments["x-max-length"] == .int(1))
        #expect(queue.arguments["x-overflow"] == .string("drop-head"))
    }

    @Test func batchQueue_isRoutedByItsOwnName_fromThePlannerAndFromItsPodsRetries_withAHighBackstopDeliveryLimit() {
        let (queue, bindings) = BrokerTopology.batch(42)
        #expect(queue.name == "spotq.batch.42")
        #expect(Set(bindings.map(\.exchange)) == [BrokerNames.workExchange, BrokerNames.podRetryExchange])
        #expect(bindings.allSatisfy { $0.routingKey == "spotq.batch.42" && $0.queue == "spotq.batch.42" })
        // Reclaims count as deliveries in a quorum queue; the limit must not kill reclaimed work.
        guard case .int(let limit) = queue.arguments["x-delivery-limit"] else { Issue.record("no delivery limit"); return }
        #expect(limit >= 20)
    }
}
