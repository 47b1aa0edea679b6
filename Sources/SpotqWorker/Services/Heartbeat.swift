import ServiceLifecycle
import SpotqCore

/// Signs of life for the provisioner (`pod.heartbeat` every SPOTQ_HEARTBEAT_SECONDS),
/// whatever the rest of the worker is busy with, until the group shuts down.
struct Heartbeat: Service {
    let events: EventPublisher
    let interval: Duration

    func run() async throws {
        await untilGracefulShutdown {
            while true {
                do { try await Task.sleep(for: interval) } catch { return }
                await events.publish(.heartbeat)
            }
        }
    }
}
