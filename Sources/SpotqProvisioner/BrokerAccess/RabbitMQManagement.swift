import CurlClient
import Foundation
import SpotqCore

/// The parts of RabbitMQ's management HTTP API (`rabbitmq_management`) spotq uses to give
/// each pod its own broker user. The credentials come from the URL's userinfo and go only in
/// the `Authorization` header; user management needs a user tagged `administrator`.
public struct RabbitMQManagement: Sendable {
    /// `http(s)://host:port`, without credentials or a trailing slash.
    public let baseURL: String
    let authorization: String
    let http: HTTPClient

    /// - Parameter url: e.g. `https://spotq-admin:secret@rabbit.internal:15671` (SPOTQ_RABBITMQ_MANAGEMENT_URL).
    public init(url: String, http: HTTPClient) throws {
        guard var components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme),
              components.host?.isEmpty == false
        else {
            throw ConfigurationError(message: "SPOTQ_RABBITMQ_MANAGEMENT_URL must be an http(s) URL with the user and password in it, e.g. https://spotq-admin:secret@rabbit.internal:15671")
        }
        guard let user = components.user, let password = components.password else {
            throw ConfigurationError(message: "SPOTQ_RABBITMQ_MANAGEMENT_URL has no user and password: the management API needs a user tagged administrator")
        }
        let credentials = "\(user.removingPercentEncoding ?? user):\(password.removingPercentEncoding ?? password)"
        authorization = "Basic " + Data(credentials.utf8).base64EncodedString()
        components.user = nil
        components.password = nil
        components.path = ""
        components.query = nil
        baseURL = components.string ?? ""
        self.http = http
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Creates (or replaces) `user` with this RabbitMQ password hash and no tags: it cannot
    /// use the management API.
    public func putUser(_ user: String, passwordHash: String) async throws {
        try await send(.put, "/api/users/\(Self.segment(user))", body: [
            "password_hash": passwordHash, "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "",
        ], doing: "create broker user '\(user)'")
    }

    public func setPermissions(vhost: String, user: String, _ permissions: PodBrokerGrant.Permissions) async throws {
        try await send(.put, "/api/permissions/\(Self.segment(vhost))/\(Self.segment(user))", body: [
            "configure": permissions.configure, "write": permissions.write, "read": permissions.read,
        ], doing: "set permissions of '\(user)'")
    }

    public func setTopicPermission(vhost: String, user: String, _ permission: PodBrokerGrant.TopicPermission) async throws {
        try await send(.put, "/api/topic-permissions/\(Self.segment(vhost))/\(Self.segment(user))", body: [
            "exchange": permission.exchange, "write": permission.write, "read": permission.read,
        ], doing: "set topic permissions of '\(user)' on \(permission.exchange)")
    }

    /// `max-connections` or `max-channels`.
    public func setLimit(user: String, _ name: String, _ value: Int) async throws {
        try await send(.put, "/api/user-limits/\(Self.segment(user))/\(Self.segment(name))", body: ["value": value], doing: "limit \(name) of '\(user)'")
    }

    /// Deletes `user`, which closes its connections at once. False when there was no such user.
    @discardableResult
    public func deleteUser(_ user: String) async throws -> Bool {
        let response = try await http.send(request(.delete, "/api/users/\(Self.segment(user))"))
        if response.status == 404 { return false }
        try check(response, doing: "delete broker user '\(user)'")
        return true
    }

    /// Every broker user's name.
    public func userNames() async throws -> [String] {
        struct User: Decodable { var name: String }
        let response = try await http.send(request(.get, "/api/users?columns=name"))
        try check(response, doing: "list broker users")
        return try response.decode([User].self).map(\.name)
    }

    /// The names of `user`'s open connections.
    public func connections(of user: String) async throws -> [String] {
        struct Connection: Decodable { var name: String }
        let response = try await http.send(request(.get, "/api/connections/username/\(Self.segment(user))"))
        if response.status == 404 { return [] }
        try check(response, doing: "list the connections of '\(user)'")
        return try response.decode([Connection].self).map(\.name)
    }

    // MARK: Requests

    func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) -> HTTPRequest {
        var headers: HTTPHeaders = ["Authorization": authorization]
        // RabbitMQ 3.10 answers 406 to `Accept: application/json` on PUT /api/user-limits.
        if method == .get { headers["Accept"] = "application/json" }
        if body != nil { headers["Content-Type"] = "application/json" }
        return HTTPRequest(method: method, url: baseURL + path, headers: headers, body: body, timeout: .seconds(30))
    }

    func send(_ method: HTTPMethod, _ path: String, body: [String: any Sendable], doing what: String) async throws {
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        try check(try await http.send(request(method, path, body: Array(data))), doing: what)
    }

    func check(_ response: HTTPResponse, doing what: String) throws {
        guard !response.isSuccess else { return }
        let hint = response.status == 401
            ? " (check SPOTQ_RABBITMQ_MANAGEMENT_URL's user and password; managing users needs the administrator tag)" : ""
        throw Failure(description: "RabbitMQ's management API could not \(what): HTTP \(response.status) \(response.bodyText.prefix(300))\(hint)")
    }

    /// One path segment, percent-encoded (the default vhost `/` is `%2F`).
    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
