import PostgresClient
import SpotqCore

// Lifecycle values travel as text parameters; SQL status lists are built from the enums
// (`status = ANY(\(ItemStatus.sources(of: .started).sql))`), never written as literals.

extension ItemStatus: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { rawValue }
    public static var postgresTypeOID: UInt32 { 0 }
    public init(postgresText text: String, type: PostgresType) throws {
        guard let status = ItemStatus(rawValue: text) else { throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not an item status") }
        self = status
    }
}

extension BatchStatus: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { rawValue }
    public static var postgresTypeOID: UInt32 { 0 }
    public init(postgresText text: String, type: PostgresType) throws {
        guard let status = BatchStatus(rawValue: text) else { throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a batch status") }
        self = status
    }
}

extension PodState: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { rawValue }
    public static var postgresTypeOID: UInt32 { 0 }
    public init(postgresText text: String, type: PostgresType) throws {
        guard let state = PodState(rawValue: text) else { throw PostgresError(code: .decoding, message: "'\(text.prefix(40))' is not a pod state") }
        self = state
    }
}

extension Array where Element: PostgresEncodable {
    /// The values as one `text[]` parameter, for `= ANY(…)`.
    var sql: PostgresArray<Element> { PostgresArray(self) }
}

extension FleetPod.ProviderStatus: PostgresEncodable {
    public var postgresText: String? { rawValue }
    public static var postgresTypeOID: UInt32 { 0 }
}
