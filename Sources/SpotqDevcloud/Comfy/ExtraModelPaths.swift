import Foundation

/// ComfyUI's `--extra-model-paths-config FILE` (utils/extra_config.py): a YAML of named
/// sections, each with an optional `base_path`, an optional `is_default`, and per-kind keys
/// whose values are one folder or several, one a line (a `|` block). Only that subset of YAML
/// is read; anything else is refused with the line it is on, never guessed at.
public enum ExtraModelPaths {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// One folder a YAML adds to a kind; `first` when the section says `is_default: true`.
    struct Entry: Equatable {
        var kind: String
        var folder: URL
        var first: Bool
    }

    /// Reads `file` and returns its folders, resolved as ComfyUI resolves them: relative
    /// paths against `base_path` when the section has one, else against the YAML's folder.
    static func load(_ file: URL, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [Entry] {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw Invalid(description: "--extra-model-paths-config \(file.path): no such file")
        }
        let sections = try parse(String(decoding: data, as: UTF8.self), name: file.path)
        let yamlFolder = file.deletingLastPathComponent().standardizedFileURL
        var entries: [Entry] = []
        for section in sections {
            var base: URL? = nil
            var first = false
            var kinds: [(String, String)] = []
            for (key, value) in section.values {
                switch key {
                case "base_path":
                    let expanded = expand(value, environment: environment)
                    base = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : yamlFolder.appendingPathComponent(expanded)
                case "is_default":
                    guard let flag = ["true": true, "false": false, "yes": true, "no": false][value.lowercased()] else {
                        throw Invalid(description: "\(file.path): section \(section.name): is_default must be true or false, not \(value)")
                    }
                    first = flag
                default: kinds.append((key, value))
                }
            }
            for (kind, value) in kinds {
                for line in value.split(separator: "\n", omittingEmptySubsequences: true) {
                    let path = String(line)
                    let folder: URL
                    if let base { folder = path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path) }
                    else { folder = path.hasPrefix("/") ? URL(fileURLWithPath: path) : yamlFolder.appendingPathComponent(path) }
                    entries.append(Entry(kind: ComfyModelFolders.canonical(kind), folder: folder.standardizedFileURL, first: first))
                }
            }
        }
        return entries
    }

    /// Adds `entries` to `folders` as `add_model_folder_path` does.
    static func apply(_ entries: [Entry], to folders: inout [String: [URL]]) {
        for entry in entries {
            if entry.first { folders[entry.kind, default: []].insert(entry.folder, at: 0) } else { folders[entry.kind, default: []].append(entry.folder) }
        }
    }

    /// `os.path.expandvars(os.path.expanduser(path))`.
    static func expand(_ path: String, environment: [String: String]) -> String {
        var text = path
        if text == "~" || text.hasPrefix("~/") { text = (environment["HOME"] ?? NSHomeDirectory()) + text.dropFirst() }
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            guard text[index] == "$" else { out.append(text[index]); index = text.index(after: index); continue }
            var end = text.index(after: index)
            var name = ""
            if end < text.endIndex, text[end] == "{", let close = text[end...].firstIndex(of: "}") {
                name = String(text[text.index(after: end) ..< close])
                end = text.index(after: close)
            } else {
                while end < text.endIndex, text[end].isLetter || text[end].isNumber || text[end] == "_" { name.append(text[end]); end = text.index(after: end) }
            }
            if let value = environment[name], !name.isEmpty { out += value } else { out += text[index ..< end] }
            index = end
        }
        return out
    }

    struct Section {
        var name: String
        var values: [(String, String)]
    }

    /// The YAML subset: top-level `name:` lines, then `key: value` or `key: |` lines indented
    /// by one common amount, block lines indented deeper; `#` comments and blank lines.
    static func parse(_ text: String, name: String) throws -> [Section] {
        var sections: [Section] = []
        var indent: Int? = nil
        var block: (key: String, lines: [String], indent: Int?)? = nil
        func fail(_ number: Int, _ why: String) -> Invalid {
            Invalid(description: "\(name) line \(number): \(why) (spotq reads only sections of `kind: folder` and `kind: |` blocks, as ComfyUI's extra_model_paths.yaml uses)")
        }
        func finishBlock() {
            guard let open = block else { return }
            sections[sections.count - 1].values.append((open.key, open.lines.joined(separator: "\n")))
            block = nil
        }
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            let leading = line.prefix { $0 == " " || $0 == "\t" }
            if leading.contains("\t") { throw fail(number, "tabs are not allowed for indentation") }
            let depth = leading.count
            let body = String(line.dropFirst(depth))
            if var open = block {
                if body.isEmpty { open.lines.append(""); block = open; continue }
                if depth > (indent ?? 0) {
                    let blockIndent = open.indent ?? depth
                    guard depth >= blockIndent else { throw fail(number, "a block line is indented less than the first") }
                    open.indent = blockIndent
                    open.lines.append(String(repeating: " ", count: depth - blockIndent) + body)
                    block = open
                    continue
                }
                finishBlock()
            }
            if body.isEmpty || body.hasPrefix("#") { continue }
            let content = stripComment(body)
            if depth == 0 {
                guard content.hasSuffix(":"), !content.dropLast().contains(":"), content.count > 1 else {
                    throw fail(number, "a top-level line must name a section, like `comfyui:`")
                }
                if content.hasPrefix("- ") || content.hasPrefix("[") || content.hasPrefix("{") { throw fail(number, "lists and flow collections are not supported") }
                sections.append(Section(name: String(content.dropLast()).trimmingCharacters(in: .whitespaces), values: []))
                indent = nil
                continue
            }
            guard !sections.isEmpty else { throw fail(number, "an indented line before any section") }
            if indent == nil { indent = depth }
            guard depth == indent else { throw fail(number, "nested mappings are not supported") }
            if content.hasPrefix("- ") || content == "-" { throw fail(number, "lists are not supported; give several folders as a `|` block") }
            guard let colon = content.range(of: ":"), !content[..<colon.lowerBound].isEmpty else { throw fail(number, "expected `key: value`") }
            let key = content[..<colon.lowerBound].trimmingCharacters(in: .whitespaces)
            let value = content[colon.upperBound...].trimmingCharacters(in: .whitespaces)
            if value == "|" || value == "|-" || value == "|+" {
                block = (key, [], nil)
                continue
            }
            if value.isEmpty { throw fail(number, "\(key) has no value") }
            if let first = value.first, "[{&*!>%@`".contains(first) { throw fail(number, "\(key): this YAML form is not supported") }
            sections[sections.count - 1].values.append((key, try scalar(value, line: number, fail: fail)))
        }
        if block != nil { finishBlock() }
        return sections
    }

    static func stripComment(_ text: String) -> String {
        if text.hasPrefix("\"") || text.hasPrefix("'") { return text.trimmingCharacters(in: .whitespaces) }
        if let hash = text.range(of: " #") { return String(text[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces) }
        return text.trimmingCharacters(in: .whitespaces)
    }

    static func scalar(_ value: String, line: Int, fail: (Int, String) -> Invalid) throws -> String {
        for quote in ["\"", "'"] where value.hasPrefix(quote) {
            guard value.count >= 2, value.hasSuffix(quote) else { throw fail(line, "an unterminated quoted value") }
            let inner = String(value.dropFirst().dropLast())
            if quote == "\"", inner.contains("\\") { throw fail(line, "escapes in double-quoted values are not supported") }
            return quote == "'" ? inner.replacingOccurrences(of: "''", with: "'") : inner
        }
        return value
    }
}
