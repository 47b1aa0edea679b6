/// A statement and its parameters.
///
/// Written as a string literal with interpolations; every interpolated value becomes a
/// numbered parameter (`$1`, `$2`, …) and never part of the SQL text:
///
///     let query: PostgresQuery = "SELECT id FROM assets WHERE filename = \(name)"
///     // sql: "SELECT id FROM assets WHERE filename = $1", one parameter
///
/// Identifiers (schema or table names chosen by code, not users) use
/// `\(identifier: name)`, which quotes them.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public private(set) var sql: String
    public private(set) var parameters: [Parameter]

    /// One bound value: its text form (nil for NULL) and type OID.
    public struct Parameter: Sendable {
        public var text: String?
        public var typeOID: UInt32
    }

    public init(sql: String, parameters: [any PostgresEncodable] = []) {
        self.sql = sql
        self.parameters = parameters.map { Parameter(text: $0.postgresText, typeOID: type(of: $0).postgresTypeOID) }
    }

    public init(stringLiteral value: String) {
        self.sql = value
        self.parameters = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.parameters = stringInterpolation.parameters
    }

    /// The SQL text only; parameter values are not shown (they may be secrets or large).
    public var description: String { sql }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var parameters: [Parameter] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            parameters.append(Parameter(text: value.postgresText, typeOID: Value.postgresTypeOID))
            sql += "$\(parameters.count)"
        }

        /// An optional value: SQL NULL when nil. (Spelled out so an optional is bound, not
        /// taken for text.)
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            parameters.append(Parameter(text: value?.postgresText ?? nil, typeOID: Value.postgresTypeOID))
            sql += "$\(parameters.count)"
        }

        /// A quoted SQL identifier (`"my schema"`), for names chosen by code.
        public mutating func appendInterpolation(identifier: String) {
            sql += PostgresQuery.quoteIdentifier(identifier)
        }
    }

    /// Quotes an identifier the way PostgreSQL's `quote_ident` does.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Quotes a string literal for statements that take no parameters (CREATE ROLE …
    /// PASSWORD): with standard_conforming_strings (on since PostgreSQL 9.1) doubling the
    /// quote is all it takes.
    public static func quoteLiteral(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
