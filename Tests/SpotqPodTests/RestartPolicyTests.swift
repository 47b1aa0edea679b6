import SpotqPod
import Testing

@Suite struct RestartPolicyTests {
    let policy = RestartPolicy(finalStatuses: [0, 3, 4, 5], initialDelay: .seconds(1), maximumDelay: .seconds(8), healthyRun: .seconds(60))

    @Test func aFinalStatusEndsSupervision_withThatStatus() {
        for status: Int32 in [0, 3, 4, 5] {
            var history = RestartPolicy.History()
            #expect(policy.decide(.exited(status), ranFor: .seconds(1), terminating: false, history: &history) == .stop(status: status))
        }
    }

    @Test func aCrashIsRestarted_afterADelayThatDoublesOnQuickCrashes_upToTheMaximum() {
        var history = RestartPolicy.History()
        let delays = (0..<6).map { _ in policy.decide(.exited(1), ranFor: .milliseconds(200), terminating: false, history: &history) }
        #expect(delays == [1, 2, 4, 8, 8, 8].map { .restart(after: .seconds($0)) })
    }

    @Test func aKillBySignalIsACrash() {
        var history = RestartPolicy.History()
        #expect(policy.decide(.signalled(9), ranFor: .seconds(5), terminating: false, history: &history) == .restart(after: .seconds(1)))
    }

    @Test func aRunThatLastedResetsTheDelay() {
        var history = RestartPolicy.History()
        for _ in 0..<3 { _ = policy.decide(.exited(1), ranFor: .seconds(1), terminating: false, history: &history) }
        #expect(policy.decide(.exited(1), ranFor: .seconds(61), terminating: false, history: &history) == .restart(after: .seconds(1)))
        #expect(policy.decide(.exited(1), ranFor: .seconds(1), terminating: false, history: &history) == .restart(after: .seconds(2)))
    }

    @Test func afterATerminationNoticeNothingIsRestarted_andASignalEndingGives128PlusItsNumber() {
        var history = RestartPolicy.History()
        #expect(policy.decide(.exited(1), ranFor: .seconds(1), terminating: true, history: &history) == .stop(status: 1))
        #expect(policy.decide(.signalled(15), ranFor: .seconds(1), terminating: true, history: &history) == .stop(status: 143))
    }
}
