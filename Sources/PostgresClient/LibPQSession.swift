import CLibPQ
import Foundation

/// One libpq connection. Not thread-safe: only its owner's `DedicatedThread` calls it.
///
/// Statements go out with the asynchronous API (`PQsendQueryParams`) so a statement can
/// be given up after its deadline or on cancellation: the session waits on the socket
/// in short slices, and when time is up asks the server to cancel the statement.
final class LibPQSession {
    private var connection: OpaquePointer?
    private var cancelHandle: OpaquePointer?
    let configuration: PostgresConfiguration

    private init(connection: OpaquePointer, configuration: PostgresConfiguration) {
        self.connection = connection
        self.cancelHandle = PQgetCancel(connection)
        self.configuration = configuration
    }

    deinit { close() }

    /// Opens a connection (blocking, bounded by the connect timeout) and prepares the
    /// session: UTC timestamps, ISO dates, and the configured search path.
    static func connect(_ configuration: PostgresConfiguration) throws -> LibPQSession {
        let timeoutSeconds = max(2, Int(configuration.connectTimeout.components.seconds))
        let keys = ["dbname", "connect_timeout", "application_name", "keepalives", "keepalives_idle",
                    "keepalives_interval", "keepalives_count", "client_encoding"]
        let values = [configuration.url, String(timeoutSeconds), configuration.applicationName, "1", "10", "5", "3", "UTF8"]
        let connection = withCStrings(keys) { keyPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keyPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(connection)
            throw PostgresError(
                code: .connectionFailed,
                message: "could not connect to PostgreSQL at \(configuration.endpoint): \(reason)")
        }
        // Server notices (e.g. "relation already exists, skipping") would go to stderr; drop them.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        let session = LibPQSession(connection: connection, configuration: configuration)
        var setup = "SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, YMD'"
        if let schema = configuration.searchPath {
            setup += "; SET search_path TO \(PostgresQuery.quoteIdentifier(schema)), public"
        }
        _ = try session.runScript(setup, deadline: ContinuousClock.now + configuration.statementTimeout, isCancelled: { false })
        return session
    }

    var isHealthy: Bool {
        guard let connection else { return false }
        return PQstatus(connection) == CONNECTION_OK && PQtransactionStatus(connection) != PQTRANS_UNKNOWN
    }

    /// True while a transaction is open (or failed and not yet rolled back).
    var isInTransaction: Bool {
        guard let connection else { return false }
        let status = PQtransactionStatus(connection)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    func close() {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        if let connection { PQfinish(connection) }
        cancelHandle = nil
        connection = nil
    }

    /// Runs one parameterized statement (extended protocol: one statement, values bound).
    func execute(_ query: PostgresQuery, deadline: ContinuousClock.Instant, isCancelled: () -> Bool) throws -> PostgresRows {
        let connection = try requireConnection()
        let count = Int32(query.parameters.count)
        let types = query.parameters.map { Oid($0.typeOID) }
        let sent: Int32 = withOptionalCStrings(query.parameters.map(\.text)) { values in
            PQsendQueryParams(connection, query.sql, count, types, values, nil, nil, 0)
        }
        guard sent == 1 else { throw connectionError(during: "sending a statement") }
        return try collectResults(deadline: deadline, isCancelled: isCancelled)
    }

    /// Runs SQL text that may hold several statements and takes no parameters (simple
    /// protocol). Used for migrations and fixed session settings, never for values.
    func runScript(_ sql: String, deadline: ContinuousClock.Instant, isCancelled: () -> Bool) throws -> PostgresRows {
        let connection = try requireConnection()
        guard PQsendQuery(connection, sql) == 1 else { throw connectionError(during: "sending a script") }
        return try collectResults(deadline: deadline, isCancelled: isCancelled)
    }

    /// Reads every result of the statement just sent; the first error wins. The
    /// connection is always left ready for the next statement.
    private func collectResults(deadline: ContinuousClock.Instant, isCancelled: () -> Bool) throws -> PostgresRows {
        let connection = try requireConnection()
        var firstError: PostgresError?
        var rows = PostgresRows(columns: [], cells: [], affectedRows: 0)
        var stopReason: StopReason?
        while true {
            while PQisBusy(connection) == 1 {
                if stopReason == nil {
                    if ContinuousClock.now >= deadline { stopReason = .timeout } else if isCancelled() { stopReason = .cancelled }
                    if stopReason != nil { requestCancel() }
                }
                guard waitReadable(connection, milliseconds: 100) else {
                    throw connectionError(during: "waiting for a result")
                }
                if PQconsumeInput(connection) == 0 {
                    throw connectionError(during: "reading a result")
                }
            }
            guard let result = PQgetResult(connection) else { break }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
                rows = Self.copyRows(result)
            case PGRES_COMMAND_OK:
                rows = PostgresRows(columns: [], cells: [], affectedRows: Int(String(cString: PQcmdTuples(result))) ?? 0)
            case PGRES_EMPTY_QUERY:
                break
            case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
                firstError = firstError ?? PostgresError(code: .server, message: "COPY is not supported by this client")
            default:
                firstError = firstError ?? Self.serverError(result)
            }
            if PQstatus(connection) == CONNECTION_BAD {
                throw connectionError(during: "running a statement")
            }
        }
        drainNotifications()
        switch stopReason {
        case .timeout:
            throw PostgresError(
                code: .timeout, message: "the statement did not finish within its timeout and was cancelled",
                sqlState: firstError?.sqlState)
        case .cancelled:
            throw CancellationError()
        case nil:
            if let firstError { throw firstError }
            return rows
        }
    }

    private enum StopReason { case timeout, cancelled }

    /// Notifications that arrive on a query connection are nobody's business: free them.
    private func drainNotifications() {
        guard let connection else { return }
        while let notification = PQnotifies(connection) { PQfreemem(notification) }
    }

    /// Asks the server to cancel the running statement. Safe from any thread.
    private func requestCancel() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    /// Waits up to `milliseconds` for the socket to become readable. False if it is gone.
    private func waitReadable(_ connection: OpaquePointer, milliseconds: Int32) -> Bool {
        let socket = PQsocket(connection)
        guard socket >= 0 else { return false }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        return ready >= 0 || errno == EINTR
    }

    private func requireConnection() throws -> OpaquePointer {
        guard let connection else {
            throw PostgresError(code: .connectionLost, message: "the connection to PostgreSQL is closed")
        }
        return connection
    }

    private func connectionError(during activity: String) -> PostgresError {
        let reason = connection.map { String(cString: PQerrorMessage($0)).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let lost = connection.map { PQstatus($0) == CONNECTION_BAD } ?? true
        return PostgresError(
            code: lost ? .connectionLost : .server,
            message: "PostgreSQL connection to \(configuration.endpoint) failed while \(activity)"
                + (reason.isEmpty ? "" : ": \(reason)"))
    }

    private static func serverError(_ result: OpaquePointer) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let message = field(Int32(UInt8(ascii: "M")))
            ?? String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
        return PostgresError(
            code: .server,
            message: message,
            sqlState: field(Int32(UInt8(ascii: "C"))),
            detail: field(Int32(UInt8(ascii: "D"))),
            hint: field(Int32(UInt8(ascii: "H"))),
            constraint: field(Int32(UInt8(ascii: "n"))),
            table: field(Int32(UInt8(ascii: "t"))),
            column: field(Int32(UInt8(ascii: "c"))))
    }

    private static func copyRows(_ result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [PostgresRows.Column] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(.init(
                name: String(cString: PQfname(result, Int32(column))),
                type: PostgresType(rawValue: UInt32(PQftype(result, Int32(column))))))
        }
        var cells: [String?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    cells.append(nil)
                } else {
                    cells.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
        }
        return PostgresRows(columns: columns, cells: cells, affectedRows: rowCount)
    }
}

// MARK: - Listening

extension LibPQSession {
    /// Waits up to `milliseconds` for notifications and returns those that arrived.
    /// Throws when the connection is gone.
    func awaitNotifications(milliseconds: Int32) throws -> [PostgresNotification] {
        let connection = try requireConnection()
        guard waitReadable(connection, milliseconds: milliseconds), PQconsumeInput(connection) == 1 else {
            throw connectionError(during: "listening for notifications")
        }
        if PQstatus(connection) == CONNECTION_BAD {
            throw connectionError(during: "listening for notifications")
        }
        var notifications: [PostgresNotification] = []
        while let notification = PQnotifies(connection) {
            notifications.append(PostgresNotification(
                channel: String(cString: notification.pointee.relname),
                payload: String(cString: notification.pointee.extra),
                senderPID: Int(notification.pointee.be_pid)))
            PQfreemem(notification)
        }
        return notifications
    }
}

// MARK: - C strings

private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    return body(duplicated.map { UnsafePointer($0) } + [nil])
}

private func withOptionalCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicated = strings.map { $0.map { strdup($0) } ?? nil }
    defer { duplicated.forEach { free($0) } }
    return body(duplicated.map { UnsafePointer($0) })
}
