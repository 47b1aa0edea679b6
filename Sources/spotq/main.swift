import SpotqCLI

await SpotqCommand.main()
