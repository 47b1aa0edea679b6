import SpotqCore
import Testing

@Suite("Settings: flag, then SPOTQ_* environment, then default")
struct SettingsSourceTests {
    let source = SettingsSource(environment: ["SPOTQ_DATABASE_URL": "postgresql://env", "SPOTQ_EMPTY": "", "SPOTQ_N": "7", "SPOTQ_BAD": "x"])

    @Test func flag_winsOverEnvironment() {
        #expect(source.string("postgresql://flag", env: "SPOTQ_DATABASE_URL") == "postgresql://flag")
    }

    @Test func environment_isUsedWithoutAFlag_andEmptyMeansUnset() {
        #expect(source.string(nil, env: "SPOTQ_DATABASE_URL") == "postgresql://env")
        #expect(source.string(nil, env: "SPOTQ_EMPTY") == nil)
    }

    @Test func missingRequiredSetting_namesTheFlagAndTheVariable() {
        do {
            _ = try source.required(nil, env: "SPOTQ_AMQP_URL", flagName: "--amqp-url", what: "the RabbitMQ URL")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "the RabbitMQ URL is not set: pass --amqp-url or set SPOTQ_AMQP_URL")
        }
    }

    @Test func integers_areParsedAndRangeChecked() throws {
        #expect(try source.integer(nil, env: "SPOTQ_N", default: 1, range: 1...10) == 7)
        #expect(try source.integer(3, env: "SPOTQ_N", default: 1, range: 1...10) == 3)
        #expect(try source.integer(nil, env: "SPOTQ_UNSET", default: 4, range: 1...10) == 4)
        #expect(throws: ConfigurationError.self) { try source.integer(nil, env: "SPOTQ_BAD", default: 1, range: 1...10) }
        #expect(throws: ConfigurationError.self) { try source.integer(11, env: "SPOTQ_N", default: 1, range: 1...10) }
    }
}
