import ArgumentParser
import SpotqCLI

/// The `spotq` binary's entry point: the root command of `SpotqCLI`, marked `@main`
/// here because a library target cannot hold the entry point.
@main
struct SpotqMain: AsyncParsableCommand {
    static let configuration = SpotqCommand.configuration
}
