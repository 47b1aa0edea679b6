import Foundation
import PostgresClient
import PostgresTestSupport
import SpotqTestSupport
import Testing

@Suite("PostgreSQL statements and rows")
struct PostgresQueryTests {
    @Test func interpolatedValues_becomeParameters_neverSQLText() {
        let hostile = "'; DROP TABLE assets; --"
        let query: PostgresQuery = "SELECT \(hostile)::text AS a, \(42) AS b FROM \(identifier: "my \"t\"")"
        #expect(query.sql == "SELECT $1::text AS a, $2 AS b FROM \"my \"\"t\"\"\"")
        #expect(query.parameters.map(\.text) == [hostile, "42"])
        #expect(!query.description.contains("DROP"))
    }

    @Test func values_roundTripThroughTheServer_withTheirTypes() async throws {
        try await TemporaryDatabase.with { configuration in
            let connection = try await PostgresConnection.connect(configuration: configuration, logger: testLogger)
            let hostile = "it's \"quoted\" \\ and ; DROP TABLE x; --"
            let when = Date(timeIntervalSince1970: 1_795_000_000.123456)
            let id = UUID()
            let bytes = PostgresBytes([0, 1, 2, 254, 255])
            let none: Int? = nil
            let rows = try await connection.query("""
                SELECT \(hostile)::text AS text, \(Int64.max) AS big, \(2.5) AS real, \(true) AS flag,
                       \(when) AS at, \(id) AS id, \(bytes) AS raw, \(none)::int AS missing,
                       \(PostgresArray([1, 2, 3]))::bigint[] AS list
                """)
            let row = try #require(rows.first)
            #expect(try row.decode(String.self, column: "text") == hostile)
            #expect(try row.decode(Int64.self, column: "big") == .max)
            #expect(try row.decode(Double.self, column: "real") == 2.5)
            #expect(try row.decode(Bool.self, column: "flag"))
            let decodedWhen = try row.decode(Date.self, column: "at")
            #expect(abs(decodedWhen.timeIntervalSince(when)) < 0.000_01)
            #expect(try row.decode(UUID.self, column: "id") == id)
            #expect(try row.decode(PostgresBytes.self, column: "raw") == bytes)
            #expect(try row.decode(Int?.self, column: "missing") == nil)
            #expect(try row.decode(String.self, column: "list") == "{1,2,3}")
            await connection.close()
        }
    }

    struct Item: Decodable, Equatable {
        struct LoRA: Codable, Equatable, Sendable { let file: String; let strength: Double }
        let id: Int
        let name: String
        let note: String?
        let loras: [LoRA]
        let createdAt: Date

        enum CodingKeys: String, CodingKey {
            case id, name, note, loras
            case createdAt = "created_at"
        }
    }

    @Test func rows_decodeIntoDecodableTypes_byColumnName_withJSONColumns() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            try await client.query("""
                CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, note text, loras jsonb NOT NULL,
                                    created_at timestamptz NOT NULL DEFAULT now())
                """)
            let loras = [Item.LoRA(file: "a.safetensors", strength: 0.75)]
            try await client.query("INSERT INTO items (id, name, loras) VALUES (1, \("first"), \(PostgresJSON(loras)))")
            let items = try await client.query("SELECT * FROM items").decode(Item.self)
            #expect(items.count == 1)
            #expect(items.first?.name == "first")
            #expect(items.first?.note == nil)
            #expect(items.first?.loras == loras)
            await client.shutdown()
        }
    }

    @Test func sqlError_carriesSQLStateDetailAndConstraint() async throws {
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            try await client.query("CREATE TABLE t (k text CONSTRAINT k_must_be_unique UNIQUE)")
            try await client.query("INSERT INTO t VALUES (\("x"))")
            let error = try await #require(throws: PostgresError.self) {
                try await client.query("INSERT INTO t VALUES (\("x"))")
            }
            #expect(error.code == .server)
            #expect(error.sqlState == "23505")
            #expect(error.constraint == "k_must_be_unique")
            #expect(error.detail?.contains("(k)=(x) already exists") == true)
            #expect(error.description.contains("SQLSTATE 23505"))

            let division = try await #require(throws: PostgresError.self) { try await client.query("SELECT 1/0") }
            #expect(division.sqlState == "22012")
            // The connection is fine afterwards.
            #expect(try await client.query("SELECT 1 AS one").first?.decode(Int.self, column: "one") == 1)
            await client.shutdown()
        }
    }

    @Test func transaction_rollsBackWhenTheBodyThrows_andCommitsOtherwise() async throws {
        struct Abort: Error {}
        try await TemporaryDatabase.with { configuration in
            let client = PostgresClient(configuration: configuration, logger: testLogger)
            try await client.query("CREATE TABLE t (v int)")
            await #expect(throws: Abort.self) {
                try await client.withTransaction { transaction in
                    try await transaction.query("INSERT INTO t VALUES (1)")
                    throw Abort()
                }
            }
            await #expect(throws: PostgresError.self) {
                try await client.withTransaction { transaction in
                    try await transaction.query("INSERT INTO t VALUES (2)")
                    try await transaction.query("INSERT INTO t VALUES ('not a number')")
                }
            }
            try await client.withTransaction { transaction in
                try await transaction.query("INSERT INTO t VALUES (3)")
            }
            let values = try await client.query("SELECT v FROM t ORDER BY v").map { try $0.decode(Int.self, at: 0) }
            #expect(values == [3])
            await client.shutdown()
        }
    }

    @Test func slowStatement_isCancelledAtItsTimeout_andTheConnectionGoesOn() async throws {
        try await TemporaryDatabase.with { configuration in
            let connection = try await PostgresConnection.connect(configuration: configuration, logger: testLogger)
            let error = try await #require(throws: PostgresError.self) {
                try await connection.query("SELECT pg_sleep(30)", timeout: .milliseconds(300))
            }
            #expect(error.code == .timeout)
            #expect(try await connection.query("SELECT 2 AS two").first?.decode(Int.self, at: 0) == 2)
            await connection.close()
        }
    }

    @Test func cancellingTheTask_abortsTheStatement() async throws {
        try await TemporaryDatabase.with { configuration in
            let connection = try await PostgresConnection.connect(configuration: configuration, logger: testLogger)
            let sleeper = Task { try await connection.query("SELECT pg_sleep(30)") }
            let watcher = try await PostgresConnection.connect(configuration: configuration, logger: testLogger)
            try await eventually("the statement running on the server") {
                try await watcher.query("SELECT count(*)::bigint FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'")[0].decode(Int64.self, at: 0) == 1
            }
            await watcher.close()
            sleeper.cancel()
            await #expect(throws: CancellationError.self) { try await sleeper.value }
            #expect(try await connection.query("SELECT 3").first?.decode(Int.self, at: 0) == 3)
            await connection.close()
        }
    }
}
