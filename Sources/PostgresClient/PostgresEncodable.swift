import Foundation

/// A Swift value that can be bound to a statement parameter (`$1`, `$2`, …).
///
/// Values always travel as parameters in libpq's text format and are never spliced into
/// SQL text. `nil` from ``postgresText`` means SQL NULL.
public protocol PostgresEncodable: Sendable {
    /// The value in PostgreSQL's text input syntax.
    var postgresText: String? { get }
    /// The parameter's type OID; 0 lets the server infer it from context (used for
    /// strings, so a string can fill a `text`, `jsonb` or enum column alike).
    static var postgresTypeOID: UInt32 { get }
}

extension String: PostgresEncodable {
    public var postgresText: String? { self }
    public static var postgresTypeOID: UInt32 { 0 }
}

extension Int: PostgresEncodable {
    public var postgresText: String? { String(self) }
    public static var postgresTypeOID: UInt32 { PostgresType.int8.rawValue }
}

extension Int64: PostgresEncodable {
    public var postgresText: String? { String(self) }
    public static var postgresTypeOID: UInt32 { PostgresType.int8.rawValue }
}

extension Int32: PostgresEncodable {
    public var postgresText: String? { String(self) }
    public static var postgresTypeOID: UInt32 { PostgresType.int4.rawValue }
}

extension Double: PostgresEncodable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }
    public static var postgresTypeOID: UInt32 { PostgresType.float8.rawValue }
}

extension Bool: PostgresEncodable {
    public var postgresText: String? { self ? "t" : "f" }
    public static var postgresTypeOID: UInt32 { PostgresType.bool.rawValue }
}

extension Date: PostgresEncodable {
    public var postgresText: String? { PostgresTimestamp.format(self) }
    public static var postgresTypeOID: UInt32 { PostgresType.timestamptz.rawValue }
}

extension UUID: PostgresEncodable {
    public var postgresText: String? { uuidString.lowercased() }
    public static var postgresTypeOID: UInt32 { PostgresType.uuid.rawValue }
}

extension Decimal: PostgresEncodable {
    public var postgresText: String? { "\(self)" }
    public static var postgresTypeOID: UInt32 { PostgresType.numeric.rawValue }
}

/// Raw bytes, bound as `bytea`.
public struct PostgresBytes: PostgresEncodable, PostgresDecodable, Hashable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var postgresText: String? {
        "\\x" + bytes.map { String(format: "%02x", $0) }.joined()
    }
    public static var postgresTypeOID: UInt32 { PostgresType.bytea.rawValue }

    public init(postgresText text: String, type: PostgresType) throws {
        guard text.hasPrefix("\\x"), text.utf8.count % 2 == 0 else {
            throw PostgresError(code: .decoding, message: "bytea value is not in hex format")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((text.utf8.count - 2) / 2)
        var iterator = text.utf8.dropFirst(2).makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = hexValue(high), let l = hexValue(low) else {
                throw PostgresError(code: .decoding, message: "bytea value holds a non-hex digit")
            }
            bytes.append(h << 4 | l)
        }
        self.bytes = bytes
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// A `Codable` value stored in a `json` or `jsonb` column.
public struct PostgresJSON<Value: Codable & Sendable>: PostgresEncodable, PostgresDecodable {
    public var value: Value
    public init(_ value: Value) { self.value = value }

    public var postgresText: String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }
    public static var postgresTypeOID: UInt32 { PostgresType.jsonb.rawValue }

    public init(postgresText text: String, type: PostgresType) throws {
        do {
            value = try JSONDecoder().decode(Value.self, from: Data(text.utf8))
        } catch {
            throw PostgresError(code: .decoding, message: "JSON column does not match \(Value.self): \(error)")
        }
    }
}

/// A JSON document passed through as text, bound as `jsonb`.
public struct PostgresRawJSON: PostgresEncodable, PostgresDecodable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public var postgresText: String? { text }
    public static var postgresTypeOID: UInt32 { PostgresType.jsonb.rawValue }
    public init(postgresText text: String, type: PostgresType) throws { self.text = text }
}

/// An array of values, bound as a PostgreSQL array literal (e.g. for `= ANY($1)`).
public struct PostgresArray<Element: PostgresEncodable>: PostgresEncodable {
    public var elements: [Element?]
    public init(_ elements: [Element?]) { self.elements = elements }

    public var postgresText: String? {
        let items = elements.map { element -> String in
            guard let text = element?.postgresText else { return "NULL" }
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        }
        return "{" + items.joined(separator: ",") + "}"
    }
    public static var postgresTypeOID: UInt32 {
        switch Element.postgresTypeOID {
        case PostgresType.int8.rawValue: 1016
        case PostgresType.int4.rawValue: 1007
        case PostgresType.float8.rawValue: 1022
        case PostgresType.bool.rawValue: 1000
        case PostgresType.uuid.rawValue: 2951
        default: 1009  // text[]
        }
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText ?? nil }
    public static var postgresTypeOID: UInt32 { Wrapped.postgresTypeOID }
}
