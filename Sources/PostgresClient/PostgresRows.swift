import Foundation

/// The rows a statement returned, copied out of libpq (so no C memory outlives the call).
public struct PostgresRows: Sendable, RandomAccessCollection {
    public struct Column: Sendable, Hashable {
        public let name: String
        public let type: PostgresType
    }

    public let columns: [Column]
    /// Rows affected, as reported by the server (`INSERT 0 5` → 5), for statements without rows.
    public let affectedRows: Int
    let cells: [String?]
    let columnIndex: [String: Int]

    init(columns: [Column], cells: [String?], affectedRows: Int) {
        self.columns = columns
        self.cells = cells
        self.affectedRows = affectedRows
        var index: [String: Int] = [:]
        for (i, column) in columns.enumerated() where index[column.name] == nil { index[column.name] = i }
        self.columnIndex = index
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { columns.isEmpty ? 0 : cells.count / columns.count }
    public subscript(position: Int) -> PostgresRow { PostgresRow(rows: self, row: position) }

    /// Decodes every row into `T`, matching columns to `T`'s coding keys by name.
    public func decode<T: Decodable>(_ type: T.Type) throws -> [T] {
        try map { try $0.decode(T.self) }
    }
}

/// One row of a result: read a column by position or by name, as a typed value.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let row: Int

    public var columns: [PostgresRows.Column] { rows.columns }

    /// The raw text of column `index`, nil for NULL.
    public func text(at index: Int) -> String? {
        rows.cells[row * rows.columns.count + index]
    }

    /// The value of column `index` as `T`; throws for NULL (use the optional overload).
    public func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int) throws -> T {
        guard index < rows.columns.count else {
            throw PostgresError(code: .decoding, message: "column \(index) does not exist (row has \(rows.columns.count))")
        }
        guard let text = text(at: index) else {
            throw PostgresError(code: .decoding, message: "column \"\(rows.columns[index].name)\" is NULL, expected \(T.self)")
        }
        do {
            return try T(postgresText: text, type: rows.columns[index].type)
        } catch var error as PostgresError {
            error.message = "column \"\(rows.columns[index].name)\": \(error.message)"
            throw error
        }
    }

    public func decode<T: PostgresDecodable>(_ type: T?.Type, at index: Int) throws -> T? {
        guard index < rows.columns.count, text(at: index) != nil else { return nil }
        return try decode(T.self, at: index)
    }

    public func decode<T: PostgresDecodable>(_ type: T.Type, column name: String) throws -> T {
        try decode(T.self, at: index(of: name))
    }

    public func decode<T: PostgresDecodable>(_ type: T?.Type, column name: String) throws -> T? {
        try decode(T?.self, at: index(of: name))
    }

    /// The whole row as a `Decodable` type whose coding keys are column names. Properties
    /// whose type is not a ``PostgresDecodable`` are decoded from JSON (for `jsonb` columns).
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: PostgresRowDecoder(row: self))
    }

    func index(of name: String) throws -> Int {
        guard let index = rows.columnIndex[name] else {
            throw PostgresError(code: .decoding, message: "the result has no column named \"\(name)\"")
        }
        return index
    }

    func hasColumn(_ name: String) -> Bool { rows.columnIndex[name] != nil }
}
