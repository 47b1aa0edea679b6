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

@Suite("Secret settings from files: NAME_FILE stands for NAME")
struct SecretFileSettingsTests {
    struct Missing: Error, CustomStringConvertible { var description: String { "no such file" } }
    let files = ["/run/secrets/db": "postgresql://spotq_server_login:pw@db/spotq\n", "/run/secrets/empty": "\n"]
    func read(_ path: String) throws -> String {
        guard let content = files[path] else { throw Missing() }
        return content
    }

    @Test func aFileSetting_isReadWithItsTrailingNewlineDropped_andOnlyForSecretNames() throws {
        let resolved = try SecretFileSettings.resolve(["SPOTQ_DATABASE_URL_FILE": "/run/secrets/db", "SPOTQ_LOG_LEVEL_FILE": "/run/secrets/db"], read: read)
        #expect(resolved == ["SPOTQ_DATABASE_URL": "postgresql://spotq_server_login:pw@db/spotq"])
    }

    @Test func bothSet_anUnreadableFile_andAnEmptyOne_areErrorsNamingTheVariable() {
        let cases: [([String: String], String)] = [
            (["SPOTQ_SECRET": "x", "SPOTQ_SECRET_FILE": "/run/secrets/db"], "both SPOTQ_SECRET and SPOTQ_SECRET_FILE are set; set one"),
            (["SPOTQ_AMQP_URL_FILE": "/nope"], "SPOTQ_AMQP_URL_FILE=/nope cannot be read: no such file"),
            (["SPOTQ_ADMIN_TOKEN_FILE": "/run/secrets/empty"], "SPOTQ_ADMIN_TOKEN_FILE=/run/secrets/empty is empty"),
        ]
        for (environment, message) in cases {
            do {
                _ = try SecretFileSettings.resolve(environment, read: read)
                Issue.record("expected: \(message)")
            } catch {
                #expect(error.message == message)
            }
        }
    }
}
