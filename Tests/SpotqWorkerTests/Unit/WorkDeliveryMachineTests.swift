import SpotqBroker
import Testing

@testable import SpotqWorker
@testable import ServerTestSupport

/// The worker's per-delivery rules, without a broker, a server or ComfyUI: every (state,
/// event) pair, the impossible ones included, and the failure count at its edges.
@Suite("pod worker: the delivery rules")
struct WorkDeliveryMachineTests {
    typealias Machine = WorkDeliveryMachine
    static let order = Machine.WorkOrder(itemID: 42, models: ["base.safetensors", "style.safetensors"])

    /// Every event the handler can report.
    static let events: [Machine.Event] = [
        .opened(.success(order)), .opened(.failure(Machine.Unreadable(reason: "the work message is not a JSON object"))),
        .noticed,
        .models(.pending), .models(.ready), .models(.failed("model style.safetensors is unavailable: HTTP 404")),
        .attempted(.stored), .attempted(.refused("ComfyUI refused the workflow: MysteryNode")),
        .attempted(.failed("ComfyUI could not run the prompt")), .attempted(.interrupted),
        .attempted(.modelUnusable(filename: "base.safetensors", reason: "ComfyUI cannot load it: SafetensorError: header too large")),
        .attempted(.podFault("ComfyUI unreachable (POST /prompt): connection refused")),
    ]

    /// A machine driven into `state` by legal events.
    static func machine(in state: String, failuresSoFar: Int = 0, maxFailures: Int = 3) -> Machine {
        var machine = Machine(failuresSoFar: failuresSoFar, maxFailures: maxFailures)
        switch state {
        case "received": break
        case "waitingForModels": _ = machine.handle(.opened(.success(order)))
        case "attempting":
            _ = machine.handle(.opened(.success(order)))
            _ = machine.handle(.models(.ready))
        case "settled":
            _ = machine.handle(.noticed)
        default: Issue.record("no state \(state)")
        }
        return machine
    }

    static func failed(_ reason: String, final: Bool) -> WorkerEvent {
        WorkerEvent(kind: .imageFailed, item: 42, detail: ["reason": .string(reason), "final": .bool(final)])
    }

    /// What each pair does; nil: the pair is impossible (or meaningless) and changes nothing.
    static func expected(_ state: String, _ event: Machine.Event) -> Machine.Action? {
        switch (state, event) {
        case ("received", .noticed):
            return .settle(Settlement(decision: .requeue))
        case ("received", .opened(.success(let order))):
            return .waitForModels(order.models)
        case ("received", .opened(.failure(let unreadable))):
            return .settle(Settlement(decision: .deadLetter(reason: unreadable.reason)))
        case ("waitingForModels", .noticed):
            return .settle(Settlement(decision: .requeue))
        case ("waitingForModels", .models(.ready)):
            return .attempt(events: [WorkerEvent(kind: .imageStarted, item: 42)])
        case ("waitingForModels", .models(.pending)):
            return .settle(Settlement(decision: .requeue, followUp: .pauseUntilModels(order.models)))
        case ("waitingForModels", .models(.failed(let reason))):
            return .settle(Settlement(decision: .deadLetter(reason: reason), eventsBefore: [failed(reason, final: true)]))
        case ("attempting", .attempted(.stored)):
            return .settle(Settlement(decision: .ack, eventsAfter: [WorkerEvent(kind: .imageDone, item: 42)]))
        case ("attempting", .attempted(.refused(let reason))):
            return .settle(Settlement(decision: .deadLetter(reason: reason), eventsBefore: [failed(reason, final: true)]))
        case ("attempting", .attempted(.failed(let reason))):
            return .settle(Settlement(decision: .retry(failures: 1), eventsAfter: [failed(reason, final: false)]))
        case ("attempting", .attempted(.modelUnusable(let filename, let reason))):
            let final = "model \(filename) is unavailable: \(reason)"
            return .settle(Settlement(decision: .deadLetter(reason: final), eventsBefore: [failed(final, final: true)], followUp: .markModelUnusable(filename: filename, reason: reason)))
        case ("attempting", .attempted(.podFault(let reason))):
            return .settle(Settlement(decision: .handBack(podFaults: 1), eventsAfter: [WorkerEvent(kind: .imageInterrupted, item: 42, detail: ["reason": .string(reason), "pod_fault": .bool(true)])]))
        case ("attempting", .attempted(.interrupted)):
            return .settle(Settlement(decision: .requeue, eventsAfter: [WorkerEvent(kind: .imageInterrupted, item: 42)], followUp: .interruptComfy))
        default:
            return nil
        }
    }

    @Test(arguments: ["received", "waitingForModels", "attempting", "settled"])
    func everyEventInEveryState_doesWhatTheRulesSay_andImpossibleOnesChangeNothing(state: String) {
        for event in Self.events {
            var machine = Self.machine(in: state)
            let before = machine.state
            let action = machine.handle(event)
            guard let expected = Self.expected(state, event) else {
                #expect(action == .none, "\(state) + \(event)")
                #expect(machine.state == before, "\(state) + \(event)")
                continue
            }
            #expect(action == expected, "\(state) + \(event)")
            switch action {
            case .settle(let settlement): #expect(machine.state == .settled(settlement))
            case .waitForModels: #expect(machine.state == .waitingForModels(Self.order))
            case .attempt: #expect(machine.state == .attempting(Self.order))
            case .none: Issue.record("\(state) + \(event) expected an action")
            }
        }
    }

    @Test func aDeliveryNeverGetsASecondDecision() {
        var machine = Self.machine(in: "attempting")
        guard case .settle = machine.handle(.attempted(.stored)) else { return #expect(Bool(false)) }
        for event in Self.events { #expect(machine.handle(event) == .none) }
    }

    @Test func aFailure_isRetriedWithTheCountPlusOne_untilTheLimit() {
        for failuresSoFar in 0..<2 {
            var machine = Self.machine(in: "attempting", failuresSoFar: failuresSoFar, maxFailures: 3)
            #expect(machine.handle(.attempted(.failed("timeout"))) == .settle(Settlement(
                decision: .retry(failures: failuresSoFar + 1), eventsAfter: [Self.failed("timeout", final: false)])))
        }
    }

    @Test func theFailureThatReachesTheLimit_deadLettersTheImage_withTheCountAndTheLastReason() {
        var machine = Self.machine(in: "attempting", failuresSoFar: 2, maxFailures: 3)
        let reason = "failed 3 times; last: ComfyUI could not run the prompt: RuntimeError: CUDA error"
        #expect(machine.handle(.attempted(.failed("ComfyUI could not run the prompt: RuntimeError: CUDA error"))) == .settle(Settlement(
            decision: .giveUp(failures: 3, reason: reason), eventsBefore: [Self.failed(reason, final: true)])))
    }

    @Test func aCountPastTheLimit_stillDeadLetters_andOneFailureAllowed_deadLettersTheFirst() {
        var past = Self.machine(in: "attempting", failuresSoFar: 7, maxFailures: 3)
        #expect(past.handle(.attempted(.failed("x"))) == .settle(Settlement(
            decision: .giveUp(failures: 8, reason: "failed 8 times; last: x"), eventsBefore: [Self.failed("failed 8 times; last: x", final: true)])))
        var strict = Self.machine(in: "attempting", failuresSoFar: 0, maxFailures: 1)
        #expect(strict.handle(.attempted(.failed("x"))) == .settle(Settlement(
            decision: .giveUp(failures: 1, reason: "failed 1 times; last: x"), eventsBefore: [Self.failed("failed 1 times; last: x", final: true)])))
    }

    @Test func podFaultsAndUnloadableModels_neverCountAgainstTheItem() {
        var faulted = Self.machine(in: "attempting", failuresSoFar: 2, maxFailures: 3)
        guard case .settle(let handedBack) = faulted.handle(.attempted(.podFault("ComfyUI no longer has prompt p"))) else { return #expect(Bool(false)) }
        // Back to the queue with its failure count untouched (the next pod starts from 2, not 3), one more pod fault counted.
        #expect(handedBack.decision == .handBack(podFaults: 1))
        var unusable = Self.machine(in: "attempting", failuresSoFar: 0, maxFailures: 3)
        guard case .settle(let deadLettered) = unusable.handle(.attempted(.modelUnusable(filename: "base.safetensors", reason: "header too large"))) else { return #expect(Bool(false)) }
        #expect(deadLettered.decision == .deadLetter(reason: "model base.safetensors is unavailable: header too large"))
    }

    @Test func thePodFaultThatReachesItsLimit_deadLettersTheImageAsPoison_bothCountsInItsHeaders() {
        var poison = Machine(failuresSoFar: 1, maxFailures: 3, podFaultsSoFar: 9, maxPodFaults: 10)
        _ = poison.handle(.opened(.success(Self.order)))
        _ = poison.handle(.models(.ready))
        let reason = "handed back after 10 pod faults; last: ComfyUI could not run the prompt: torch.OutOfMemoryError: CUDA out of memory"
        #expect(poison.handle(.attempted(.podFault("ComfyUI could not run the prompt: torch.OutOfMemoryError: CUDA out of memory"))) == .settle(Settlement(
            decision: .giveUp(failures: 1, podFaults: 10, reason: reason), eventsBefore: [Self.failed(reason, final: true)])))
        var below = Machine(failuresSoFar: 0, maxFailures: 3, podFaultsSoFar: 8, maxPodFaults: 10)
        _ = below.handle(.opened(.success(Self.order)))
        _ = below.handle(.models(.ready))
        guard case .settle(let handedBack) = below.handle(.attempted(.podFault("x"))) else { return #expect(Bool(false)) }
        #expect(handedBack.decision == .handBack(podFaults: 9))
    }

    @Test func interruptionsAndRefusals_neverCountAsFailures() {
        var interrupted = Self.machine(in: "attempting", failuresSoFar: 2, maxFailures: 3)
        guard case .settle(let handedBack) = interrupted.handle(.attempted(.interrupted)) else { return #expect(Bool(false)) }
        #expect(handedBack.decision == .requeue)
        var refused = Self.machine(in: "attempting", failuresSoFar: 0, maxFailures: 3)
        guard case .settle(let deadLettered) = refused.handle(.attempted(.refused("the server answered 422: bad bundle"))) else { return #expect(Bool(false)) }
        #expect(deadLettered.decision == .deadLetter(reason: "the server answered 422: bad bundle"))
    }

    @Test func aNegativeFailuresHeader_countsAsNone() {
        var machine = Self.machine(in: "attempting", failuresSoFar: -5, maxFailures: 3)
        #expect(machine.handle(.attempted(.failed("x"))) == .settle(Settlement(decision: .retry(failures: 1), eventsAfter: [Self.failed("x", final: false)])))
    }

    @Test func aNoticeWhileGenerating_leavesTheAttemptToTheDeadline() {
        var machine = Self.machine(in: "attempting")
        #expect(machine.handle(.noticed) == .none)
        #expect(machine.state == .attempting(Self.order))
        guard case .settle(let settlement) = machine.handle(.attempted(.interrupted)) else { return #expect(Bool(false)) }
        #expect(settlement.followUp == .interruptComfy)
    }

    @Test func aWholeDelivery_fromBodyToAck() {
        var machine = Machine(failuresSoFar: 0, maxFailures: 3)
        #expect(machine.handle(.opened(.success(Self.order))) == .waitForModels(["base.safetensors", "style.safetensors"]))
        #expect(machine.handle(.models(.ready)) == .attempt(events: [WorkerEvent(kind: .imageStarted, item: 42)]))
        #expect(machine.handle(.attempted(.stored)) == .settle(Settlement(decision: .ack, eventsAfter: [WorkerEvent(kind: .imageDone, item: 42)])))
    }
}
