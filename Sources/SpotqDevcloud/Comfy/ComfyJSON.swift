import Foundation
import SpotqCore

/// JSON the way ComfyUI's Python sees it: objects keep their order (Python dicts do), whole
/// numbers stay integers, and text is written back as `json.dumps` and `str()` write it, so
/// the stand-in's answers and PNG metadata read like real ComfyUI's.
enum ComfyJSON {
    struct SyntaxError: Error {}

    /// Parses a whole document (what `json.loads` accepts, less NaN and Infinity).
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = Parser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == bytes.count else { throw SyntaxError() }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value() throws -> JSONValue {
            guard index < bytes.count else { throw SyntaxError() }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, JSONValue)] = []
                skipSpace()
                if peek(UInt8(ascii: "}")) { index += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard peek(UInt8(ascii: "\"")) else { throw SyntaxError() }
                    let key = try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"))
                    skipSpace()
                    let member = try value()
                    // A repeated key keeps its first place and its last value, as in Python.
                    if let at = members.firstIndex(where: { $0.0 == key }) { members[at].1 = member } else { members.append((key, member)) }
                    skipSpace()
                    if peek(UInt8(ascii: ",")) { index += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return .object(members)
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [JSONValue] = []
                skipSpace()
                if peek(UInt8(ascii: "]")) { index += 1; return .array(elements) }
                while true {
                    skipSpace()
                    elements.append(try value())
                    skipSpace()
                    if peek(UInt8(ascii: ",")) { index += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return .array(elements)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return try number()
            }
        }

        func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

        mutating func expect(_ byte: UInt8) throws {
            guard peek(byte) else { throw SyntaxError() }
            index += 1
        }

        mutating func literal(_ word: String) throws {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index ..< index + expected.count]) == expected else { throw SyntaxError() }
            index += expected.count
        }

        mutating func number() throws -> JSONValue {
            let start = index
            var fraction = false
            while index < bytes.count, let character = Optional(bytes[index]),
                  (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(character) || [UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(character) {
                if [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(character) { fraction = true }
                index += 1
            }
            let text = String(decoding: bytes[start ..< index], as: UTF8.self)
            guard !text.isEmpty, text != "-" else { throw SyntaxError() }
            if !fraction, let whole = Int64(text) { return .integer(whole) }
            if !fraction, let whole = UInt64(text) { return .unsigned(whole) }
            guard let real = Double(text) else { throw SyntaxError() }
            return .number(real)
        }

        mutating func string() throws -> String {
            index += 1
            var units: [UInt16] = []
            var raw: [UInt8] = []
            func flushRaw() {
                units += String(decoding: raw, as: UTF8.self).utf16
                raw.removeAll()
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flushRaw()
                    return String(decoding: units, as: UTF16.self)
                case UInt8(ascii: "\\"):
                    flushRaw()
                    guard index < bytes.count else { throw SyntaxError() }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "n"): units.append(0x0A)
                    case UInt8(ascii: "t"): units.append(0x09)
                    case UInt8(ascii: "r"): units.append(0x0D)
                    case UInt8(ascii: "b"): units.append(0x08)
                    case UInt8(ascii: "f"): units.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard index + 4 <= bytes.count, let unit = UInt16(String(decoding: bytes[index ..< index + 4], as: UTF8.self), radix: 16) else { throw SyntaxError() }
                        index += 4
                        units.append(unit)
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): units.append(UInt16(escape))
                    default: throw SyntaxError()
                    }
                case 0..<0x20: throw SyntaxError()
                default: raw.append(byte)
                }
            }
            throw SyntaxError()
        }
    }

    // MARK: Writing as Python does

    /// `json.dumps(value)`: ", " and ": " separators, non-ASCII as `\uXXXX`.
    static func dumps(_ value: JSONValue) -> String {
        switch value {
        case .object(let members): "{" + members.map { quoted($0.0) + ": " + dumps($0.1) }.joined(separator: ", ") + "}"
        case .array(let elements): "[" + elements.map(dumps).joined(separator: ", ") + "]"
        case .string(let text): quoted(text)
        case .integer(let whole): String(whole)
        case .unsigned(let whole): String(whole)
        case .number(let real): real.isFinite ? pythonFloat(real) : (real.isNaN ? "NaN" : (real > 0 ? "Infinity" : "-Infinity"))
        case .bool(let flag): flag ? "true" : "false"
        case .null: "null"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default: out += String(format: "\\u%04x", unit)
            }
        }
        return out + "\""
    }

    /// `str(value)` of the parsed value: text bare, the rest as `repr`.
    static func str(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return repr(value)
    }

    /// `repr(value)`: `'text'`, `True`, `None`, `[1, 'a']`, `{'k': 1}`.
    static func repr(_ value: JSONValue) -> String {
        switch value {
        case .object(let members): "{" + members.map { repr(.string($0.0)) + ": " + repr($0.1) }.joined(separator: ", ") + "}"
        case .array(let elements): "[" + elements.map(repr).joined(separator: ", ") + "]"
        case .string(let text):
            text.contains("'") && !text.contains("\"")
                ? "\"" + text + "\""
                : "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'").replacingOccurrences(of: "\n", with: "\\n") + "'"
        case .integer(let whole): String(whole)
        case .unsigned(let whole): String(whole)
        case .number(let real): real.isFinite ? pythonFloat(real) : (real.isNaN ? "nan" : (real > 0 ? "inf" : "-inf"))
        case .bool(let flag): flag ? "True" : "False"
        case .null: "None"
        }
    }

    /// Python's float repr: `1.0`, `0.1`, `1e-05`, `1e+16`.
    static func pythonFloat(_ real: Double) -> String {
        var text = "\(real)"
        if let e = text.firstIndex(of: "e") {
            var exponent = String(text[text.index(after: e)...])
            var sign = "+"
            if exponent.hasPrefix("-") { sign = "-"; exponent.removeFirst() } else if exponent.hasPrefix("+") { exponent.removeFirst() }
            if exponent.count < 2 { exponent = "0" + exponent }
            var mantissa = String(text[..<e])
            if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
            text = mantissa + "e" + sign + exponent
        }
        return text
    }
}

extension JSONValue {
    /// The member named `key` of an object.
    subscript(member key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var objectMembers: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }
}
