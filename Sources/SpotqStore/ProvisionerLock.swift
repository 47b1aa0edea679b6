import Logging
import PostgresClient

/// One provisioner at a time: two would each rent the pods the demand asks for. The lock is a
/// PostgreSQL session advisory lock, held by a connection of its own for the provisioner's life.
public enum ProvisionerLock {
    static let key: Int64 = 0x73_70_6F_74_66_6C_65_74  // "spotflet"

    /// Takes the lock if it is free; returns the connection holding it, or nil.
    public static func tryTake(_ configuration: PostgresConfiguration, logger: Logger) async throws -> PostgresConnection? {
        let connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
        if try await connection.query("SELECT pg_try_advisory_lock(\(key))")[0].decode(Bool.self, at: 0) { return connection }
        await connection.close()
        return nil
    }
}

/// The provisioner's hold on ``ProvisionerLock``. The lock lives as long as its session, so a
/// database restart takes it away; the holder then takes it again when it is free, and until
/// then answers "not held" (the provisioner does nothing), so a second provisioner that got
/// it meanwhile is never doubled and a restart of PostgreSQL needs no restart of spotq.
public actor ProvisionerLockHolder {
    let configuration: PostgresConfiguration
    let logger: Logger
    private var connection: PostgresConnection?
    private var standingBy = false

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Takes the lock if free (at start); true when held. Throws when the database cannot be reached.
    public func take() async throws -> Bool {
        if connection != nil { return true }
        connection = try await ProvisionerLock.tryTake(configuration, logger: logger)
        return connection != nil
    }

    /// Whether the lock is held now, asked on the lock's own session (a reconnected session
    /// holds no lock); after losing it, tries to take it again.
    public func isHeld() async -> Bool {
        if let connection {
            let rows = try? await connection.query("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted)")
            if (try? rows?.first?.decode(Bool.self, at: 0)) == true { return true }
            logger.warning("provisioner: lost its PostgreSQL lock (its session ended, e.g. a database restart); doing nothing until it holds the lock again")
            await connection.close()
            self.connection = nil
        }
        do {
            connection = try await ProvisionerLock.tryTake(configuration, logger: logger)
        } catch {
            return false  // the database is away; the next round asks again
        }
        if connection != nil {
            logger.info("provisioner: holds the PostgreSQL lock again")
            standingBy = false
            return true
        }
        if !standingBy {
            logger.warning("provisioner: another provisioner holds the lock now; standing by")
            standingBy = true
        }
        return false
    }

    public func release() async {
        await connection?.close()
        connection = nil
    }
}
