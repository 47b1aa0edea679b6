/// One non-blank line of a JSONL file, with its 1-based line number.
public struct EnqueueLine: Sendable, Equatable {
    public var number: Int
    public var body: [UInt8]

    public init(number: Int, body: [UInt8]) {
        self.number = number
        self.body = body
    }
}

/// Splits JSON Lines input (one JSON document per line, LF or CRLF), skipping blank lines.
public enum JSONLines {
    public static func split(_ bytes: [UInt8]) -> [EnqueueLine] {
        var lines: [EnqueueLine] = []
        var number = 0
        var start = 0
        // A UTF-8 byte-order mark is not part of the first document.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        while start <= bytes.count {
            number += 1
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            var end = newline
            if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = bytes[start..<end]
            if line.contains(where: { !($0 == 0x20 || $0 == 0x09) }) {
                lines.append(EnqueueLine(number: number, body: Array(line)))
            }
            start = newline + 1
        }
        return lines
    }
}
