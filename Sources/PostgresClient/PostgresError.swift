/// Every failure of the PostgreSQL client: a code to branch on, what the server said,
/// and a description that is safe to log (it never contains a password or a bound value).
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The URL could not be parsed.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// No connection could be made (refused, unknown host, bad credentials, timeout).
        public static let connectionFailed = Code("connectionFailed")
        /// An established connection dropped; the statement's outcome is unknown.
        public static let connectionLost = Code("connectionLost")
        /// The server rejected the statement; see ``sqlState``.
        public static let server = Code("server")
        /// The statement did not finish within its timeout and was cancelled.
        public static let timeout = Code("timeout")
        /// A column's value could not be turned into the requested Swift type.
        public static let decoding = Code("decoding")
        /// The client was shut down.
        public static let closed = Code("closed")
    }

    public var code: Code
    /// A short sentence a person can act on.
    public var message: String
    /// The five-character SQLSTATE, for server errors (e.g. `23505` unique violation).
    public var sqlState: String?
    /// The server's DETAIL, HINT and the constraint, table and column it names.
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var table: String?
    public var column: String?

    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil,
        hint: String? = nil, constraint: String? = nil, table: String? = nil, column: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
    }

    public var description: String {
        var text = sqlState.map { "SQLSTATE \($0): \(message)" } ?? message
        if let detail { text += " (detail: \(detail))" }
        if let hint { text += " (hint: \(hint))" }
        return text
    }

    /// True for errors where trying again later can succeed (the server went away or
    /// was too slow), as opposed to a statement that will fail the same way again.
    public var isTransient: Bool {
        switch code {
        case .connectionFailed, .connectionLost, .timeout: true
        case .server:
            // Class 08 (connection exception), 40001/40P01 (serialization, deadlock),
            // 57P01..57P03 (admin shutdown, crash shutdown, cannot connect now), 53 (resources).
            sqlState.map { $0.hasPrefix("08") || $0 == "40001" || $0 == "40P01" || $0.hasPrefix("57P") || $0.hasPrefix("53") } ?? false
        default: false
        }
    }
}
