import Foundation
import SpotqCore

/// What must never come back out of a provider's error text: a provider may echo the
/// request (a pod's environment holds its upload token and its broker login), and that
/// text goes to the log, `pods.last_error` and `fleet_alerts`.
public enum ProviderErrorRedaction {
    /// The secrets a request carries: every value of its `env` entries (and, for URLs, their
    /// passwords on their own), plus `extra` (the API key). Values shorter than 8 characters
    /// (a batch id) are left: they are no secret, and redacting them would blank common words.
    public static func secrets(in variables: [String: JSONValue], extra: [String]) -> [String] {
        var found = extra
        func walk(_ value: JSONValue, underEnv: Bool) {
            switch value {
            case .object(let members):
                for (key, member) in members {
                    if underEnv, key == "value", case .string(let text) = member {
                        found.append(text)
                        if let password = URLComponents(string: text)?.password { found.append(password) }
                    } else {
                        walk(member, underEnv: underEnv || key == "env")
                    }
                }
            case .array(let elements):
                for element in elements { walk(element, underEnv: underEnv) }
            default:
                break
            }
        }
        for value in variables.values { walk(value, underEnv: false) }
        return found.filter { $0.count >= 8 }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret replaced by `***` (longest first, so a URL goes before the
    /// password inside it).
    public static func redact(_ text: String, secrets: [String]) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "***") }
    }
}
