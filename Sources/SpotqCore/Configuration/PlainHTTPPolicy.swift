import Foundation

/// Whether a URL a pod sends its bearer token to may be plain `http://`: only when it cannot
/// cross the internet (a loopback or private address, or `localhost`). Anything else must be
/// `https://`, or the token travels in clear.
public enum PlainHTTPPolicy {
    /// nil when `url` is acceptable; else why not, naming `variable`.
    public static func refusal(_ url: String, variable: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host, !host.isEmpty else {
            return "\(variable) '\(url)' is not an http(s) URL with a host"
        }
        switch scheme {
        case "https": return nil
        case "http":
            if isLocalOrPrivate(host) { return nil }
            return "\(variable) is plain http:// to \(host): pods send their upload token to it, which would cross the internet in clear; use https:// (plain http is allowed only to loopback and private addresses)"
        default:
            return "\(variable) '\(url)' must be https:// (or http:// to a loopback or private address)"
        }
    }

    /// Loopback, RFC 1918, link-local and unique-local addresses, and `localhost`.
    public static func isLocalOrPrivate(_ host: String) -> Bool {
        let name = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        if octets.count == 4, octets.allSatisfy({ $0 != nil }) {
            let (a, b) = (octets[0]!, octets[1]!)
            return a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168) || (a == 169 && b == 254)
        }
        if name.contains(":") {
            return name == "::1" || name.hasPrefix("fc") || name.hasPrefix("fd") || name.hasPrefix("fe80:")
        }
        return false
    }
}
