import Foundation

/// Reads an asset registry file: JSON (an array of objects, or `{"assets": [...]}`) or CSV
/// with a header row. Columns / keys: `filename`, `kind`, `size_bytes`, `sha256`,
/// `source_url`. Every problem in the file is reported at once, with its line or index,
/// so an operator fixes the file in one pass.
public enum AssetFileParser {
    public enum Format: String, Sendable {
        case json, csv

        /// By extension (`.json`, `.csv`), else by the first non-blank character.
        public static func detect(path: String, contents: [UInt8]) -> Format {
            let lower = path.lowercased()
            if lower.hasSuffix(".json") { return .json }
            if lower.hasSuffix(".csv") { return .csv }
            let first = contents.first { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0xEF || $0 == 0xBB || $0 == 0xBF) }
            return first == UInt8(ascii: "[") || first == UInt8(ascii: "{") ? .json : .csv
        }
    }

    public static let columns = ["filename", "kind", "size_bytes", "sha256", "source_url"]

    public static func parse(_ contents: [UInt8], format: Format) throws(AssetFileError) -> [Asset] {
        switch format {
        case .json: try parseJSON(contents)
        case .csv: try parseCSV(contents)
        }
    }

    // MARK: JSON

    static func parseJSON(_ contents: [UInt8]) throws(AssetFileError) -> [Asset] {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(contents), options: [.fragmentsAllowed])
        } catch {
            throw AssetFileError(problems: ["the file is not valid JSON: \(JSONText.describe(error))"])
        }
        let entries: [Any]
        if let array = root as? [Any] {
            entries = array
        } else if let object = root as? [String: Any], let array = object["assets"] as? [Any] {
            entries = array
        } else {
            throw AssetFileError(problems: [#"expected a JSON array of assets, or {"assets": [...]}"#])
        }
        var problems: [String] = []
        var assets: [Asset] = []
        for (index, entry) in entries.enumerated() {
            let place = "assets[\(index)]"
            guard let object = entry as? [String: Any] else {
                problems.append("\(place): expected an object, not \(JSONText.typeName(entry))")
                continue
            }
            var fields: [String: String] = [:]
            var entryProblems: [String] = []
            for (key, value) in object {
                guard columns.contains(key) else {
                    entryProblems.append("\(place): unknown key \"\(key)\" (expected \(columns.joined(separator: ", ")))")
                    continue
                }
                if key == "size_bytes" {
                    if let number = value as? NSNumber, !JSONText.isBool(number), let whole = Int64(exactly: number.doubleValue) {
                        fields[key] = String(whole)
                    } else {
                        entryProblems.append("\(place).size_bytes must be a whole number, not \(JSONText.typeName(value))")
                    }
                } else if let text = value as? String {
                    fields[key] = text
                } else {
                    entryProblems.append("\(place).\(key) must be a string, not \(JSONText.typeName(value))")
                }
            }
            if !entryProblems.isEmpty {
                problems += entryProblems
                continue
            }
            switch AssetFieldValidator.asset(from: fields, place: place) {
            case .success(let asset): assets.append(asset)
            case .failure(let failure): problems += failure.problems
            }
        }
        problems += duplicateProblems(assets)
        guard problems.isEmpty else { throw AssetFileError(problems: problems) }
        return assets
    }

    // MARK: CSV

    static func parseCSV(_ contents: [UInt8]) throws(AssetFileError) -> [Asset] {
        guard let text = String(bytes: contents, encoding: .utf8) else {
            throw AssetFileError(problems: ["the file is not UTF-8 text"])
        }
        let records: [CSVRecord]
        do {
            records = try CSVReader.records(text)
        } catch {
            throw AssetFileError(problems: [error.description])
        }
        guard let header = records.first else {
            throw AssetFileError(problems: ["the file is empty; expected a header row: \(columns.joined(separator: ","))"])
        }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let missing = columns.filter { !names.contains($0) }
        let unknown = names.filter { !columns.contains($0) }
        guard missing.isEmpty, unknown.isEmpty, Set(names).count == names.count else {
            var problems: [String] = []
            if !missing.isEmpty { problems.append("line \(header.line): the header lacks \(missing.joined(separator: ", "))") }
            if !unknown.isEmpty { problems.append("line \(header.line): unknown column(s) \(unknown.joined(separator: ", "))") }
            if Set(names).count != names.count { problems.append("line \(header.line): a column is named twice") }
            problems.append("expected the header row: \(columns.joined(separator: ","))")
            throw AssetFileError(problems: problems)
        }
        var problems: [String] = []
        var assets: [Asset] = []
        for record in records.dropFirst() {
            if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            let place = "line \(record.line)"
            guard record.fields.count == names.count else {
                problems.append("\(place): \(record.fields.count) fields, expected \(names.count)")
                continue
            }
            var fields: [String: String] = [:]
            for (name, value) in zip(names, record.fields) { fields[name] = value }
            switch AssetFieldValidator.asset(from: fields, place: place) {
            case .success(let asset): assets.append(asset)
            case .failure(let failure): problems += failure.problems
            }
        }
        problems += duplicateProblems(assets)
        guard problems.isEmpty else { throw AssetFileError(problems: problems) }
        return assets
    }

    /// The same file name twice in one file is fine only when both rows agree.
    static func duplicateProblems(_ assets: [Asset]) -> [String] {
        var seen: [String: Asset] = [:]
        var problems: [String] = []
        for asset in assets {
            if let earlier = seen[asset.filename], earlier != asset {
                problems.append("\"\(asset.filename)\" appears twice with different values")
            }
            seen[asset.filename] = asset
        }
        return problems
    }
}

/// Everything wrong with an asset file.
public struct AssetFileError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String {
        problems.count == 1 ? problems[0] : "\(problems.count) problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
