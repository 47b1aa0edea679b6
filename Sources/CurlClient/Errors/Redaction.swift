import Foundation

/// Keeps secrets out of errors and logs.
enum Redaction {
    static let placeholder = "REDACTED"

    /// `url` with the userinfo password and every query value replaced by `REDACTED`.
    /// Query names stay so a person can still tell which request it was; the fragment is dropped.
    static func redactedURL(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.scheme != nil else {
            // Not parseable: show only what precedes any userinfo or query.
            let cut = url.firstIndex { $0 == "?" || $0 == "#" } ?? url.endIndex
            var head = String(url[..<cut])
            if let at = head.lastIndex(of: "@"), let schemeEnd = head.range(of: "://") {
                head.replaceSubrange(schemeEnd.upperBound..<head.index(after: at), with: "\(placeholder)@")
            }
            return head + (cut < url.endIndex && url[cut] == "?" ? "?\(placeholder)" : "")
        }
        if components.password != nil { components.password = placeholder }
        components.fragment = nil
        if let items = components.queryItems {
            components.percentEncodedQuery = items
                .map { $0.value == nil ? $0.name : "\($0.name)=\(placeholder)" }
                .joined(separator: "&")
        }
        return components.string ?? "<unprintable URL>"
    }
}

/// The secrets of one request (userinfo password, query values, credential header values),
/// for scrubbing text that came from elsewhere: libcurl's error buffer, a server's error body.
struct Redactor: Sendable {
    private var secrets: [String] = []

    init(url: String, headers: HTTPHeaders = [:]) {
        if let components = URLComponents(string: url) {
            if let password = components.password { add(password) }
            if let password = components.percentEncodedPassword { add(password) }
            for item in components.queryItems ?? [] {
                if let value = item.value { add(value) }
            }
            if let query = components.percentEncodedQuery {
                for pair in query.split(separator: "&") {
                    if let equals = pair.firstIndex(of: "=") { add(String(pair[pair.index(after: equals)...])) }
                }
            }
        }
        for field in headers where field.isSensitive {
            add(field.value)
            // `Bearer abc`: the credential alone may be echoed without its scheme.
            if let space = field.value.firstIndex(of: " ") {
                add(String(field.value[field.value.index(after: space)...]))
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort { $0.count > $1.count }
    }

    private mutating func add(_ secret: String) {
        let trimmed = secret.trimmingCharacters(in: .whitespaces)
        // Very short values ("1", "true") are not secrets and would shred the text.
        if trimmed.count >= 6 { secrets.append(trimmed) }
    }

    func scrub(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: Redaction.placeholder) }
    }
}
