import ServiceLifecycle
import SpotqCore

/// Signs of life for the provisioner (`pod.heartbeat` at start, then every
/// SPOTQ_HEARTBEAT_SECONDS), whatever the rest of the worker is busy with, until the group
/// shuts down. Each says what the worker is doing and its progress mark
/// (``HeartbeatReport``), so the provisioner can tell a stuck worker from a busy one.
struct Heartbeat: Service {
    let events: EventPublisher
    let interval: Duration

    func run() async throws {
        await untilGracefulShutdown {
            while true {
                // The first at once: a restarted worker's row is not judged on the last one's word.
                await beat()
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
    }

    func beat() async {
        let report = events.activity.report()
        await events.publish(.heartbeat, item: report.itemID, detail: report.detail)
    }
}
