import Logging
import SpotqCLI

/// The `spotq` binary's entry point. Logs go to stderr, so stdout holds only a command's
/// output (tables, JSON, summaries) and can be piped.
@main
enum SpotqMain {
    static func main() async {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        await SpotqCommand.main()
    }
}
