/// Where a setting's value comes from: a flag, then a `SPOTQ_*` environment variable,
/// then the documented default. Pure, so configuration is tested without a process.
public struct SettingsSource: Sendable {
    public let environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    /// The flag's value if given, else the non-empty environment variable, else nil.
    public func string(_ flag: String?, env name: String) -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let value = environment[name], !value.isEmpty { return value }
        return nil
    }

    /// A comma-separated list of names in the environment variable (spaces trimmed, empty
    /// entries dropped); nil when it is not set.
    public func names(env name: String) -> Set<String>? {
        guard let text = string(nil, env: name) else { return nil }
        return Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// Like ``string(_:env:)`` but a missing value is an error naming both ways to set it.
    public func required(_ flag: String?, env name: String, flagName: String, what: String) throws -> String {
        guard let value = string(flag, env: name) else {
            throw ConfigurationError(message: "\(what) is not set: pass \(flagName) or set \(name)")
        }
        return value
    }

    /// An integer setting within `range`, with a default.
    public func integer(_ flag: Int?, env name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        let resolved: Int
        if let flag {
            resolved = flag
        } else if let text = environment[name], !text.isEmpty {
            guard let parsed = Int(text) else {
                throw ConfigurationError(message: "\(name)='\(text)' is not a whole number")
            }
            resolved = parsed
        } else {
            resolved = value
        }
        guard range.contains(resolved) else {
            throw ConfigurationError(message: "\(name) must be between \(range.lowerBound) and \(range.upperBound) (got \(resolved))")
        }
        return resolved
    }
}

extension SettingsSource {
    /// A decimal setting within `range`, with a default.
    public func double(_ flag: Double?, env name: String, default value: Double, range: ClosedRange<Double>) throws -> Double {
        let resolved: Double
        if let flag {
            resolved = flag
        } else if let text = environment[name], !text.isEmpty {
            guard let parsed = Double(text), parsed.isFinite else {
                throw ConfigurationError(message: "\(name)='\(text)' is not a number")
            }
            resolved = parsed
        } else {
            resolved = value
        }
        guard range.contains(resolved) else {
            throw ConfigurationError(message: "\(name) must be between \(range.lowerBound) and \(range.upperBound) (got \(resolved))")
        }
        return resolved
    }
}

/// A setting that is missing or invalid; the message says how to fix it.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
