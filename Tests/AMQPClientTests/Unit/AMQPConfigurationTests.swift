import Testing

@testable import AMQPClient

@Suite("AMQP URLs, configuration and reconnect backoff")
struct AMQPConfigurationTests {
    @Test func url_isParsedLikeRabbitMQC_withPercentDecodedVhost() throws {
        let endpoint = try AMQPEndpoint(parsing: "amqp://spot%40q:p%3Ass@broker.local:5673/spot%2Fq")
        #expect(endpoint.host == "broker.local")
        #expect(endpoint.port == 5673)
        #expect(endpoint.user == "spot@q")
        #expect(endpoint.password == "p:ss")
        #expect(endpoint.vhost == "spot/q")
        #expect(try AMQPEndpoint(parsing: "amqp://guest:guest@127.0.0.1:5672/%2F").vhost == "/")
    }

    @Test func urlWithoutPath_usesDefaultVhostAndPort() throws {
        let endpoint = try AMQPEndpoint(parsing: "amqp://rabbit")
        #expect(endpoint.vhost == "/")
        #expect(endpoint.port == 5672)
        #expect(endpoint.user == "guest")
    }

    @Test func onlyPlainAMQPToAnotherHost_crossesTheNetworkInClear() throws {
        #expect(try AMQPEndpoint(parsing: "amqp://u:p@broker.example.com/v").crossesNetworkInClear)
        #expect(try AMQPEndpoint(parsing: "amqp://u:p@10.0.0.5:5672/v").crossesNetworkInClear)
        #expect(!(try AMQPEndpoint(parsing: "amqps://u:p@broker.example.com/v")).crossesNetworkInClear)
        #expect(!(try AMQPEndpoint(parsing: "amqp://u:p@127.0.0.1:5672/v")).crossesNetworkInClear)
        #expect(!(try AMQPEndpoint(parsing: "amqp://u:p@localhost/v")).crossesNetworkInClear)
    }

    @Test func badURLs_throwInvalidURL_withoutThePassword() {
        for url in ["http://u:topsecret@h/", "amqp://u:topsecret@h:99999/", "amqp://u:topsecret@h/v?heartbeat=5"] {
            let error = #expect(throws: AMQPError.self) { try AMQPEndpoint(parsing: url) }
            #expect(error?.code == .invalidURL)
            #expect(error?.description.contains("topsecret") == false)
        }
    }

    @Test func descriptions_neverShowThePassword() throws {
        let configuration = AMQPConfiguration(url: "amqp://spotq:topsecret@h:5672/%2F", connectionName: "worker")
        #expect(configuration.redactedURL == "amqp://spotq:***@h:5672/%2F")
        #expect(!configuration.description.contains("topsecret"))
        #expect(!(try configuration.endpoint()).description.contains("topsecret"))
    }

    @Test func outOfRangeSettings_areRejectedAtValidation() {
        var configuration = AMQPConfiguration(url: "amqp://h")
        configuration.heartbeatSeconds = -1
        #expect(throws: AMQPError.self) { try configuration.endpoint() }
        configuration.heartbeatSeconds = 30
        configuration.rpcTimeout = .zero
        #expect(throws: AMQPError.self) { try configuration.endpoint() }
    }

    @Test func backoff_growsExponentially_isCapped_andJittered() {
        let policy = AMQPReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(2), multiplier: 2, jitter: 0)
        #expect(policy.delay(afterFailures: 0) == .zero)
        #expect(policy.delay(afterFailures: 1) == .milliseconds(100))
        #expect(policy.delay(afterFailures: 3) == .milliseconds(400))
        #expect(policy.delay(afterFailures: 50) == .seconds(2))
        let jittered = AMQPReconnectPolicy(initialDelay: .seconds(1), maximumDelay: .seconds(10), jitter: 0.2)
        for _ in 0..<50 {
            let delay = jittered.delay(afterFailures: 1)
            #expect(delay >= .milliseconds(800) && delay <= .milliseconds(1200))
        }
    }
}
