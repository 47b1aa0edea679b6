import Foundation
import Logging
import PostgresClient
import SpotqCore

/// Writes enqueue requests into `image_generation_queue`, the one path that SQL bulk
/// enqueue and the AMQP consumer share.
public struct QueueStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Returns once PostgreSQL answers a trivial query (within `timeout`); throws the
    /// client's error when it does not. The enqueue consumer asks before consuming.
    public func ping(timeout: Duration = .seconds(5)) async throws {
        _ = try await client.query("SELECT 1", timeout: timeout)
    }

    /// Inserts `messages` in one transaction and returns one outcome per message, in order.
    ///
    /// Duplicates (a `request_id` already queued, or repeated within `messages`) are
    /// `.duplicate`, never a second row. A message the database refuses (unknown asset, bad
    /// JSON shape, …) is `.rejected` with the database's explanation and does not stop the
    /// others. Errors that are not a message's fault (PostgreSQL unreachable, schema missing)
    /// are thrown, and then nothing was written.
    public func insert(_ messages: [EnqueueMessage]) async throws -> [EnqueueOutcome] {
        guard !messages.isEmpty else { return [] }
        return try await client.withConnection { connection in
            do {
                return try await connection.withTransaction { connection in
                    try await Self.insertAll(messages, on: connection)
                }
            } catch let error as PostgresError where Self.isRequestFault(error) {
                // One bad message spoils a multi-row statement; find which, one by one.
                return try await connection.withTransaction { connection in
                    try await Self.insertEachIsolated(messages, on: connection)
                }
            }
        }
    }

    /// True when PostgreSQL refused the data itself (classes 22 data exception and 23
    /// integrity violation, which our triggers raise, and 54 program limit, e.g. JSON nested
    /// too deeply): the message is at fault, and sending it again cannot help.
    public static func isRequestFault(_ error: PostgresError) -> Bool {
        guard error.code == .server, let state = error.sqlState else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("54")
    }

    /// The database's explanation of a refused row, for people.
    public static func reason(_ error: PostgresError) -> String {
        var text = error.message
        if let detail = error.detail { text += ". \(detail)" }
        if let hint = error.hint { text += " Hint: \(hint)" }
        return text
    }

    static let insertSQL = """
        INSERT INTO image_generation_queue (request_id, checkpoint, loras, prompt, workflow, priority)
        SELECT m.doc ->> 'request_id', m.doc ->> 'checkpoint',
               COALESCE(NULLIF(m.doc -> 'loras', 'null'::jsonb), '[]'::jsonb),
               m.doc -> 'prompt', m.doc -> 'workflow',
               COALESCE((m.doc ->> 'priority')::integer, 0)
        FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS m(doc, position)
        ORDER BY m.position
        ON CONFLICT (request_id) DO NOTHING
        RETURNING id, request_id
        """

    /// Message bodies are JSON already: joined into one array, they are one parameter.
    static func jsonArray(_ messages: some Collection<EnqueueMessage>) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        bytes.reserveCapacity(messages.reduce(2) { $0 + $1.body.count + 1 })
        for (index, message) in messages.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += message.body
        }
        bytes.append(UInt8(ascii: "]"))
        return String(decoding: bytes, as: UTF8.self)
    }

    static func insertAll(_ messages: [EnqueueMessage], on connection: PostgresConnection) async throws -> [EnqueueOutcome] {
        let rows = try await connection.query(PostgresQuery(sql: insertSQL, parameters: [PostgresRawJSON(jsonArray(messages))]))
        var inserted: [String: Int64] = [:]
        for row in rows {
            inserted[try row.decode(String.self, at: 1)] = try row.decode(Int64.self, at: 0)
        }
        // The first message with a request_id got the row; later ones are duplicates.
        var outcomes: [EnqueueOutcome] = []
        outcomes.reserveCapacity(messages.count)
        for message in messages {
            if let id = inserted.removeValue(forKey: message.requestID) {
                outcomes.append(.accepted(itemID: id))
            } else {
                outcomes.append(.duplicate)
            }
        }
        return outcomes
    }

    static func insertEachIsolated(_ messages: [EnqueueMessage], on connection: PostgresConnection) async throws -> [EnqueueOutcome] {
        var outcomes: [EnqueueOutcome] = []
        for message in messages {
            try await connection.runScript("SAVEPOINT spotq_enqueue_item")
            do {
                let outcome = try await insertAll([message], on: connection)
                try await connection.runScript("RELEASE SAVEPOINT spotq_enqueue_item")
                outcomes += outcome
            } catch let error as PostgresError where isRequestFault(error) {
                try await connection.runScript("ROLLBACK TO SAVEPOINT spotq_enqueue_item")
                outcomes.append(.rejected(reason: reason(error)))
            }
        }
        return outcomes
    }

    /// How much work waits to be planned.
    public func pendingDemand() async throws -> PendingDemand {
        let rows = try await client.query("""
            SELECT count(*)::bigint, min(created_at) FROM image_generation_queue WHERE status = 'pending'
            """)
        return PendingDemand(
            items: Int(try rows[0].decode(Int64.self, at: 0)),
            oldestCreatedAt: try rows[0].decode(Date?.self, at: 1))
    }
}
