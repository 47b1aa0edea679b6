import Logging

/// A small pool of PostgreSQL connections: the way the rest of spotq talks to the database.
///
/// Each caller leases a connection for the length of a closure, so statements of one
/// transaction never interleave with another task's.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    private let pool: ConnectionPool

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.pool = ConnectionPool(configuration: configuration, logger: logger)
    }

    /// Leases a connection for `body`, returning it to the pool afterwards.
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await pool.lease()
        do {
            let result = try await body(connection)
            await pool.release(connection)
            return result
        } catch {
            await pool.release(connection)
            throw error
        }
    }

    /// Leases a connection and runs `body` in a transaction on it.
    public func withTransaction<T>(
        isolation: PostgresIsolation = .readCommitted,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction(isolation: isolation, body)
        }
    }

    /// Runs one statement on any free connection.
    @discardableResult
    public func query(_ query: PostgresQuery, timeout: Duration? = nil) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query, timeout: timeout) }
    }

    /// Closes every idle connection; leased ones close when they come back.
    public func shutdown() async {
        await pool.shutdown()
    }
}

private actor ConnectionPool {
    let configuration: PostgresConfiguration
    let logger: Logger
    private var idle: [PostgresConnection] = []
    private var openCount = 0
    private var waiters: [CheckedContinuation<PostgresConnection?, any Error>] = []
    private var isShutDown = false

    init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func lease() async throws -> PostgresConnection {
        guard !isShutDown else { throw PostgresError(code: .closed, message: "the PostgreSQL client was shut down") }
        if let connection = idle.popLast() { return connection }
        if openCount >= configuration.maxConnections {
            // Wait for a release: it hands over a connection, or nil meaning "open your own".
            if let connection = try await withCheckedThrowingContinuation({ waiters.append($0) }) {
                return connection
            }
        }
        openCount += 1
        do {
            return try await PostgresConnection.connect(configuration: configuration, logger: logger)
        } catch {
            openCount -= 1
            wakeOneWaiterToOpen()
            throw error
        }
    }

    func release(_ connection: PostgresConnection) async {
        if isShutDown {
            openCount -= 1
            await connection.close()
        } else if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: connection)
        } else {
            idle.append(connection)
        }
    }

    func shutdown() async {
        isShutDown = true
        for waiter in waiters {
            waiter.resume(throwing: PostgresError(code: .closed, message: "the PostgreSQL client was shut down"))
        }
        waiters.removeAll()
        let connections = idle
        idle.removeAll()
        openCount -= connections.count
        for connection in connections { await connection.close() }
    }

    private func wakeOneWaiterToOpen() {
        if !waiters.isEmpty { waiters.removeFirst().resume(returning: nil) }
    }
}
