import SpotqCore
import SpotqHTTP
import Testing
@testable import ServerTestSupport

@Suite("HTTP configuration: the pods' listener and the ops listener")
struct HTTPServerConfigurationTests {
    @Test func theOpsListener_defaultsTo8081_apartFromThePods8080() throws {
        let configuration = try HTTPServerConfiguration.from(SettingsSource(environment: [:]))
        #expect(configuration.host == "127.0.0.1" && configuration.port == 8080)
        #expect(configuration.opsHost == "127.0.0.1" && configuration.opsPort == 8081)
    }

    @Test func bothAddresses_areRead_andMustDiffer() throws {
        let configuration = try HTTPServerConfiguration.from(SettingsSource(environment: [
            "SPOTQ_HTTP_ADDR": "0.0.0.0:9000", "SPOTQ_OPS_HTTP_ADDR": "[::1]:9001",
        ]))
        #expect(configuration.host == "0.0.0.0" && configuration.port == 9000)
        #expect(configuration.opsHost == "::1" && configuration.opsPort == 9001)
        #expect(throws: ConfigurationError.self) {
            try HTTPServerConfiguration.from(SettingsSource(environment: ["SPOTQ_HTTP_ADDR": "127.0.0.1:8081"]))
        }
        #expect(throws: ConfigurationError.self) {
            try HTTPServerConfiguration.from(SettingsSource(environment: ["SPOTQ_OPS_HTTP_ADDR": "no-port"]))
        }
    }
}
