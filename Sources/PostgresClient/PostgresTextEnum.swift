/// A string enum stored in a `text` column as its raw value: conform to bind and decode it.
public protocol PostgresTextEnum: RawRepresentable, PostgresEncodable, PostgresDecodable where RawValue == String {}

extension PostgresTextEnum {
    public var postgresText: String? { rawValue }
    public static var postgresTypeOID: UInt32 { 0 }

    public init(postgresText text: String, type: PostgresType) throws {
        guard let value = Self(rawValue: text) else {
            throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a \(Self.self)")
        }
        self = value
    }
}
