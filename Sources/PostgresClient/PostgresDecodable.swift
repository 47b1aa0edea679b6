import Foundation

/// The type OIDs spotq reads and writes. Others decode as text.
public struct PostgresType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let bool = PostgresType(rawValue: 16)
    public static let bytea = PostgresType(rawValue: 17)
    public static let int8 = PostgresType(rawValue: 20)
    public static let int2 = PostgresType(rawValue: 21)
    public static let int4 = PostgresType(rawValue: 23)
    public static let text = PostgresType(rawValue: 25)
    public static let oid = PostgresType(rawValue: 26)
    public static let json = PostgresType(rawValue: 114)
    public static let float4 = PostgresType(rawValue: 700)
    public static let float8 = PostgresType(rawValue: 701)
    public static let varchar = PostgresType(rawValue: 1043)
    public static let timestamp = PostgresType(rawValue: 1114)
    public static let timestamptz = PostgresType(rawValue: 1184)
    public static let numeric = PostgresType(rawValue: 1700)
    public static let uuid = PostgresType(rawValue: 2950)
    public static let jsonb = PostgresType(rawValue: 3802)

    var isJSON: Bool { self == .json || self == .jsonb }
}

/// A Swift type that can be read from a column in PostgreSQL's text output format.
public protocol PostgresDecodable: Sendable {
    init(postgresText text: String, type: PostgresType) throws
}

extension String: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws { self = text }
}

extension Int: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        self = try parse(text, as: "integer", Int.init)
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        self = try parse(text, as: "bigint", Int64.init)
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        self = try parse(text, as: "integer", Int32.init)
    }
}

extension Double: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self = try parse(text, as: "double", Double.init)
        }
    }
}

extension Decimal: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
            throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a numeric value")
        }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a boolean")
        }
    }
}

extension Date: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        guard let date = PostgresTimestamp.parse(text) else {
            throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a timestamp")
        }
        self = date
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText text: String, type: PostgresType) throws {
        guard let uuid = UUID(uuidString: text) else {
            throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a UUID")
        }
        self = uuid
    }
}

private func parse<T>(_ text: String, as name: String, _ make: (String) -> T?) throws -> T {
    guard let value = make(text) else {
        throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a valid \(name)")
    }
    return value
}

/// Timestamps in the one format sessions are set to (ISO, UTC).
enum PostgresTimestamp {
    /// `2026-11-23 11:35:00.123456+00`: microseconds, PostgreSQL's own precision.
    static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = seconds.rounded(.down)
        var micros = Int(((seconds - whole) * 1_000_000).rounded())
        if micros == 1_000_000 { whole += 1; micros = 0 }
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
                      parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, micros)
    }

    /// Parses `2026-11-23 11:35:00.123456+00` (and `…T…` / `Z` forms).
    static func parse(_ text: String) -> Date? {
        var normalized = text.replacingOccurrences(of: " ", with: "T")
        // "+00" → "+00:00"; timestamps without a zone are taken as UTC.
        if let zoneStart = normalized.lastIndex(where: { $0 == "+" || $0 == "-" }),
           normalized.distance(from: normalized.startIndex, to: zoneStart) > 10 {
            let zone = normalized[zoneStart...]
            if zone.count == 3 { normalized += ":00" }
        } else if !normalized.hasSuffix("Z") {
            normalized += "Z"
        }
        // Foundation's ISO 8601 parser accepts at most millisecond-style fractions reliably;
        // trim microseconds to milliseconds precision before parsing, then add them back.
        var fraction = 0.0
        if let dot = normalized.firstIndex(of: ".") {
            let digitsEnd = normalized[dot...].dropFirst().firstIndex(where: { !$0.isNumber }) ?? normalized.endIndex
            fraction = Double("0" + normalized[dot..<digitsEnd]) ?? 0
            normalized.removeSubrange(dot..<digitsEnd)
        }
        guard let whole = try? Date(normalized, strategy: .iso8601) else { return nil }
        return whole.addingTimeInterval(fraction)
    }
}
