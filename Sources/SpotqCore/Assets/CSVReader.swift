/// A record of a CSV file and the line it starts on (1-based).
struct CSVRecord: Equatable {
    var line: Int
    var fields: [String]
}

struct CSVError: Error, CustomStringConvertible {
    var description: String
}

/// RFC 4180 CSV: comma-separated, fields optionally in double quotes, `""` for a quote
/// inside one, quoted fields may hold commas and line breaks; LF or CRLF line ends.
enum CSVReader {
    static func records(_ text: String) throws(CSVError) -> [CSVRecord] {
        var records: [CSVRecord] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var fieldWasQuoted = false
        var line = 1
        var recordLine = 1
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        // A UTF-8 byte-order mark is not part of the first column's name.
        if text.unicodeScalars.first == "\u{FEFF}" { _ = scalars.next() }

        func endRecord() {
            fields.append(field)
            records.append(CSVRecord(line: recordLine, fields: fields))
            fields = []
            field = ""
            fieldWasQuoted = false
        }

        while let scalar = pending ?? scalars.next() {
            pending = nil
            if inQuotes {
                if scalar == "\"" {
                    let next = scalars.next()
                    if next == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        inQuotes = false
                        pending = next
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case ",":
                fields.append(field)
                field = ""
                fieldWasQuoted = false
            case "\"":
                guard field.isEmpty, !fieldWasQuoted else {
                    throw CSVError(description: "line \(line): a quote inside an unquoted field; quote the whole field and double inner quotes")
                }
                inQuotes = true
                fieldWasQuoted = true
            case "\r":
                let next = scalars.next()
                if next != "\n" { pending = next }
                endRecord()
                line += 1
                recordLine = line
            case "\n":
                endRecord()
                line += 1
                recordLine = line
            default:
                if fieldWasQuoted && !scalar.properties.isWhitespace {
                    throw CSVError(description: "line \(line): text after a closing quote")
                }
                field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw CSVError(description: "line \(recordLine): a quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
