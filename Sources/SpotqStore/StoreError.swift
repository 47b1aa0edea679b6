/// A failure in spotq's database layer that is not a plain PostgreSQL error.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
