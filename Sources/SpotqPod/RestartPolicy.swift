/// When `spotq supervise` starts its child again: after a crash, with a delay that doubles
/// on each quick crash (so a child failing at once does not spin) and starts over once a
/// run lasted; never after an exit status the child uses to say "do not restart me" (the
/// worker's 0 finished, 3 GPU failed, 4 refused, 5 pod faulted), nor after a termination
/// notice was forwarded.
public struct RestartPolicy: Sendable, Equatable {
    /// Exit statuses that end supervision.
    public var finalStatuses: Set<Int32>
    public var initialDelay: Duration
    public var maximumDelay: Duration
    /// A run this long resets the delay to ``initialDelay``.
    public var healthyRun: Duration

    public init(finalStatuses: Set<Int32> = [0], initialDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(30), healthyRun: Duration = .seconds(60)) {
        self.finalStatuses = finalStatuses
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.healthyRun = healthyRun
    }

    /// How a child ended.
    public enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    public enum Decision: Sendable, Equatable {
        case restart(after: Duration)
        /// Supervision ends; the supervisor exits with this status.
        case stop(status: Int32)
    }

    /// The delays so far: the state the decisions depend on.
    public struct History: Sendable, Equatable {
        public var lastDelay: Duration?
        public init() {}
    }

    public func decide(_ ending: Ending, ranFor: Duration, terminating: Bool, history: inout History) -> Decision {
        let status: Int32
        switch ending {
        case .exited(let code): status = code
        case .signalled(let signal): status = 128 + signal
        }
        if terminating { return .stop(status: status) }
        if case .exited(let code) = ending, finalStatuses.contains(code) { return .stop(status: code) }
        let delay: Duration
        if ranFor >= healthyRun {
            delay = initialDelay
        } else if let last = history.lastDelay {
            delay = min(last * 2, maximumDelay)
        } else {
            delay = initialDelay
        }
        history.lastDelay = delay
        return .restart(after: delay)
    }
}
