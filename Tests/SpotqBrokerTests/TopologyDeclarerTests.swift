import AMQPClient
import SpotqBroker
import SpotqCore
import SpotqTestSupport
import Testing
import Logging

@Suite("spotq migrate: broker topology")
struct TopologyDeclarerTests {
    @Test func declaringTheStandardTopologyTwice_succeedsBothTimes_andTheQueuesExist() async throws {
        var logger = Logger(label: "spotq.test")
        logger.logLevel = .warning
        let url = try TestEnvironment.amqpURL()
        let first = try await TopologyDeclarer.declareStandard(amqpURL: url, logger: logger)
        let second = try await TopologyDeclarer.declareStandard(amqpURL: url, logger: logger)
        #expect(first == second)
        #expect(first.queues == BrokerTopology.standard().queues.count)
        let connection = try await AMQPConnection.connect(configuration: AMQPConfiguration(url: url), logger: logger)
        try await connection.withChannel { channel in
            for queue in BrokerTopology.standard().queues {
                _ = try await channel.declareQueuePassive(queue.name)
            }
        }
        await connection.close()
    }
}
