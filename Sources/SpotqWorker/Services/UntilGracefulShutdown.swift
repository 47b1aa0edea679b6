import ServiceLifecycle

/// Runs `work` until it returns or the group shuts down gracefully (then it is cancelled),
/// and returns only once graceful shutdown has begun (or the task is cancelled).
///
/// A `ServiceGroup` shuts its services down one at a time, the last first; a service that
/// returns while another one is shutting down ends the group with
/// `serviceFinishedUnexpectedly`. So a worker part whose work is done (the downloads, the
/// spot poller after a notice) waits for its turn instead of returning.
func untilGracefulShutdown(_ work: @escaping @Sendable () async -> Void) async {
    await cancelWhenGracefulShutdown(work)
    try? await gracefulShutdown()
}
