/// Checks one asset's fields with the same rules as the `assets` table's constraints, so a
/// bad file is refused before anything is written, with the line it came from.
enum AssetFieldValidator {
    static let extensions = [".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin"]

    static func asset(from fields: [String: String], place: String) -> Result<Asset, AssetFileError> {
        var problems: [String] = []
        let filename = (fields["filename"] ?? "").trimmingCharacters(in: .whitespaces)
        problems += filenameProblems(filename).map { "\(place): filename \($0)" }

        let kindText = (fields["kind"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        let kind = AssetKind(rawValue: kindText)
        if kind == nil { problems.append("\(place): kind must be checkpoint or lora, not \"\(kindText)\"") }

        let sizeText = (fields["size_bytes"] ?? "").trimmingCharacters(in: .whitespaces)
        let size = Int64(sizeText)
        if size == nil || size! <= 0 { problems.append("\(place): size_bytes must be a positive whole number of bytes, not \"\(sizeText)\"") }

        let sha = (fields["sha256"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        if sha.utf8.count != 64 || !sha.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) {
            problems.append("\(place): sha256 must be 64 hex digits, not \"\(sha.prefix(80))\"")
        }

        let url = (fields["source_url"] ?? "").trimmingCharacters(in: .whitespaces)
        // Checked first: a NUL would otherwise reach PostgreSQL, which refuses the whole import.
        if hasControlCharacters(url) {
            problems.append("\(place): source_url contains control characters")
        } else if !isHTTPURL(url) {
            problems.append("\(place): source_url must be an http:// or https:// URL, not \"\(url.prefix(200))\"")
        }

        guard problems.isEmpty, let kind, let size else { return .failure(AssetFileError(problems: problems)) }
        return .success(Asset(filename: filename, kind: kind, sizeBytes: size, sha256: sha, sourceURL: url))
    }

    /// Mirrors the `filename_*` constraints of migrations/0001_assets.sql.
    static func filenameProblems(_ name: String) -> [String] {
        if name.isEmpty { return ["is missing"] }
        var problems: [String] = []
        if name.utf8.count > 255 { problems.append("is longer than 255 bytes") }
        if name.contains("/") || name.contains("\\") { problems.append("\"\(name)\" must be a bare file name, without / or \\") }
        if name.contains("..") { problems.append("\"\(name)\" must not contain \"..\"") }
        if name.hasPrefix(".") { problems.append("\"\(name)\" must not start with a dot") }
        if hasControlCharacters(name) { problems.append("contains control characters") }
        let lower = name.lowercased()
        if !extensions.contains(where: { lower.hasSuffix($0) }) {
            problems.append("\"\(name)\" must end in \(extensions.joined(separator: ", "))")
        }
        return problems
    }

    /// C0 controls (NUL, line breaks, …) and DEL.
    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Mirrors `source_url_is_an_http_or_https_url`: a scheme, a host, no whitespace.
    static func isHTTPURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") { rest = text.dropFirst(8) } else if lower.hasPrefix("http://") { rest = text.dropFirst(7) } else { return false }
        if text.unicodeScalars.contains(where: { $0.properties.isWhitespace }) { return false }
        let host = rest.prefix { !"/?#".contains($0) }
        return !host.isEmpty
    }
}
