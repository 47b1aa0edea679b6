import Foundation
import Logging
import SpotqCLI
import SpotqCore

/// The `spotq` binary's entry point. Logs go to stderr, so stdout holds only a command's
/// output (tables, JSON, summaries) and can be piped.
@main
enum SpotqMain {
    static func main() async {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        // `SPOTQ_*_FILE` settings become the settings they stand for, before any command reads them.
        do {
            let resolved = try SecretFileSettings.resolve(ProcessInfo.processInfo.environment, read: readFile)
            for (name, value) in resolved { setenv(name, value, 1) }
        } catch {
            FileHandle.standardError.write(Data("spotq: \(error)\n".utf8))
            exit(2)
        }
        await SpotqCommand.main()
    }

    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    static func readFile(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(description: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        return String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
    }
}
