import Foundation

/// Reads a command's input file, or stdin for `-`, with an error that names the file.
enum InputFile {
    static func read(_ path: String) throws -> [UInt8] {
        if path == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read \(path): no such file, or not readable")
        }
        return Array(data)
    }
}

/// A failure the command reports as one line to stderr, exiting with status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
