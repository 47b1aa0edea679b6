import DedicatedThread
import Foundation
import Logging

/// One PostgreSQL connection with a thread of its own.
///
/// Every libpq call runs on the connection's `DedicatedThread`, so callers suspend
/// instead of blocking Swift's cooperative pool. When the server goes away the failing
/// statement throws ``PostgresError/Code-swift.struct/connectionLost`` (its outcome is
/// unknown), the loss is logged, and the next statement reconnects — except inside a
/// transaction, which fails as a whole instead of silently continuing on a new session.
public final class PostgresConnection: Sendable {
    public let configuration: PostgresConfiguration
    private let thread: DedicatedThread
    private let slot: SessionSlot
    private let logger: Logger

    private init(configuration: PostgresConfiguration, thread: DedicatedThread, slot: SessionSlot, logger: Logger) {
        self.configuration = configuration
        self.thread = thread
        self.slot = slot
        self.logger = logger
    }

    /// Opens a connection; throws ``PostgresError`` naming the host and port when it cannot.
    public static func connect(configuration: PostgresConfiguration, logger: Logger) async throws -> PostgresConnection {
        let thread = DedicatedThread(name: "spotq-postgres")
        let slot = SessionSlot()
        do {
            try await thread.run {
                slot.session = try LibPQSession.connect(configuration)
            }
        } catch {
            thread.stop()
            throw error
        }
        return PostgresConnection(configuration: configuration, thread: thread, slot: slot, logger: logger)
    }

    /// Runs one statement and returns its rows.
    /// - Parameter timeout: overrides the configured statement timeout.
    @discardableResult
    public func query(_ query: PostgresQuery, timeout: Duration? = nil) async throws -> PostgresRows {
        try await perform(timeout: timeout) { session, deadline, isCancelled in
            try session.execute(query, deadline: deadline, isCancelled: isCancelled)
        }
    }

    /// Runs SQL text holding one or more statements without parameters (migrations).
    public func runScript(_ sql: String, timeout: Duration? = nil) async throws {
        _ = try await perform(timeout: timeout) { session, deadline, isCancelled in
            try session.runScript(sql, deadline: deadline, isCancelled: isCancelled)
        }
    }

    /// Runs `body` inside BEGIN … COMMIT. Any error thrown by `body` (or by COMMIT) rolls
    /// the transaction back and is rethrown.
    public func withTransaction<T>(
        isolation: PostgresIsolation = .readCommitted,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await runScript("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        slot.setTransactionOpen(true)
        do {
            let result = try await body(self)
            try await runScript("COMMIT")
            slot.setTransactionOpen(false)
            return result
        } catch {
            slot.setTransactionOpen(false)
            await rollbackQuietly()
            throw error
        }
    }

    /// Closes the connection and ends its thread.
    public func close() async {
        _ = try? await thread.run { [slot] in
            slot.session?.close()
            slot.session = nil
        }
        thread.stop()
    }

    /// False once the session is known to be broken; it will reconnect on next use.
    public var isHealthy: Bool {
        get async { (try? await thread.run { [slot] in slot.session?.isHealthy ?? false }) ?? false }
    }

    private func rollbackQuietly() async {
        // Not cancellable: a rollback must reach the server even when the task was cancelled.
        let slot = self.slot
        let deadline = ContinuousClock.now + .seconds(10)
        _ = try? await thread.run {
            guard let session = slot.session, session.isInTransaction else { return }
            _ = try session.runScript("ROLLBACK", deadline: deadline, isCancelled: { false })
        }
    }

    private func perform(
        timeout: Duration?,
        _ work: @escaping @Sendable (LibPQSession, ContinuousClock.Instant, () -> Bool) throws -> PostgresRows
    ) async throws -> PostgresRows {
        let deadline = ContinuousClock.now + (timeout ?? configuration.statementTimeout)
        let cancellation = CancellationFlag()
        let slot = self.slot
        let configuration = self.configuration
        let logger = self.logger
        return try await withTaskCancellationHandler {
            try await thread.run {
                let session = try slot.usableSession(configuration: configuration, logger: logger)
                do {
                    return try work(session, deadline, { cancellation.isCancelled })
                } catch let error as PostgresError where error.code == .connectionLost {
                    logger.warning("PostgreSQL connection lost; the next statement reconnects",
                                   metadata: ["postgres.endpoint": "\(configuration.endpoint)", "error": "\(error)"])
                    session.close()
                    slot.session = nil
                    throw error
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }
}

/// Transaction isolation levels.
public enum PostgresIsolation: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// The connection's libpq session.
///
/// `@unchecked Sendable`: `session` is only read or written by jobs on the owning
/// connection's `DedicatedThread`; `transactionOpen` is guarded by `lock`.
private final class SessionSlot: @unchecked Sendable {
    var session: LibPQSession?
    private let lock = NSLock()
    private var transactionOpen = false

    func setTransactionOpen(_ open: Bool) {
        lock.withLock { transactionOpen = open }
    }

    /// The current session, reconnecting first if it was lost — unless a transaction is
    /// open, whose statements must not continue on a different session.
    func usableSession(configuration: PostgresConfiguration, logger: Logger) throws -> LibPQSession {
        if let session, session.isHealthy { return session }
        if lock.withLock({ transactionOpen }) {
            throw PostgresError(code: .connectionLost, message: "the connection dropped during a transaction, which was rolled back by the server")
        }
        session?.close()
        session = nil
        let fresh = try LibPQSession.connect(configuration)
        logger.info("PostgreSQL connection re-established", metadata: ["postgres.endpoint": "\(configuration.endpoint)"])
        session = fresh
        return fresh
    }
}
