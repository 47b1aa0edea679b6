import Foundation
import HTTPTypes

/// `Authorization: Bearer <token>`, read in one place for the pod and the admin routes.
enum BearerToken {
    /// The token, or nil when the header is missing, of another scheme, or empty.
    static func parse(_ headers: HTTPFields) -> String? {
        guard let header = headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
