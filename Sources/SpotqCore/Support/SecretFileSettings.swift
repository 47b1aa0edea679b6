/// Secret settings may come from a file instead of the environment: `NAME_FILE=/path` stands
/// for `NAME=<the file's content>` (trailing newline dropped), the convention of Docker and
/// compose secrets. A password in a file is not in `docker inspect`, `/proc/<pid>/environ`
/// of a parent, or a shell's history. Only the names below are read this way.
public enum SecretFileSettings {
    public static let names: [String] = [
        "SPOTQ_DATABASE_URL", "SPOTQ_AMQP_URL", "SPOTQ_SECRET", "SPOTQ_ADMIN_TOKEN", "SPOTQ_RUNPOD_API_KEY",
        "SPOTQ_RABBITMQ_MANAGEMENT_URL", "SPOTQ_POD_AMQP_URL", "SPOTQ_UPLOAD_TOKEN",
    ]

    /// The settings to add to `environment`: each `NAME` whose `NAME_FILE` is set, read with
    /// `read`. Both set is an error (which one would win is not obvious), as is an unreadable
    /// or empty file.
    public static func resolve(_ environment: [String: String], read: (String) throws -> String) throws(ConfigurationError) -> [String: String] {
        var resolved: [String: String] = [:]
        for name in names {
            guard let path = environment[name + "_FILE"], !path.isEmpty else { continue }
            if let direct = environment[name], !direct.isEmpty {
                throw ConfigurationError(message: "both \(name) and \(name)_FILE are set; set one")
            }
            let content: String
            do {
                content = try read(path)
            } catch {
                throw ConfigurationError(message: "\(name)_FILE=\(path) cannot be read: \(error)")
            }
            var value = Substring(content)
            while let last = value.last, last == "\n" || last == "\r" { value = value.dropLast() }
            guard !value.isEmpty else { throw ConfigurationError(message: "\(name)_FILE=\(path) is empty") }
            resolved[name] = String(value)
        }
        return resolved
    }
}
