import SpotqCore
import Testing

/// Every (state, event) pair of each lifecycle: the allowed moves are listed, and every pair
/// not listed must be refused (nil), so a new case or a changed rule fails here.
@Suite("lifecycles: every state × event pair")
struct LifecycleTests {
    @Test func itemStatus_movesOnlyAsListed_andRefusesEveryOtherPair() {
        let allowed: [ItemStatus: [ItemEvent: ItemStatus]] = [
            .pending: [.planned: .planned],
            .planned: [.published: .queued, .started: .running, .retried: .queued, .gaveUp: .failed, .stored: .done, .deadLettered: .failed],
            .queued: [.started: .running, .retried: .queued, .gaveUp: .failed, .interrupted: .queued, .stored: .done, .deadLettered: .failed],
            .running: [.retried: .queued, .gaveUp: .failed, .interrupted: .queued, .stored: .done, .deadLettered: .failed],
            .done: [:],
            .failed: [.started: .running, .retried: .queued, .gaveUp: .failed, .stored: .done, .replayed: .queued],
        ]
        #expect(Set(allowed.keys) == Set(ItemStatus.allCases))
        for status in ItemStatus.allCases {
            for event in ItemEvent.allCases {
                #expect(status.after(event) == allowed[status]?[event], "\(status) on \(event)")
            }
        }
    }

    @Test func aDoneItem_neverChanges() {
        #expect(ItemEvent.allCases.allSatisfy { ItemStatus.done.after($0) == nil })
        #expect(ItemEvent.allCases.allSatisfy { !ItemStatus.sources(of: $0).contains(.done) })
    }

    @Test func everyItemStatus_isReachedByAnEvent_exceptTheWebsitesPending() {
        let reached = Set(ItemStatus.allCases.flatMap { status in ItemEvent.allCases.compactMap { status.after($0) } })
        #expect(reached == Set(ItemStatus.allCases).subtracting([.pending]))
    }

    @Test func itemSources_areTheStatusesAnEventApplies() {
        #expect(ItemStatus.sources(of: .planned) == [.pending])
        #expect(ItemStatus.sources(of: .interrupted) == [.queued, .running])
        #expect(ItemStatus.sources(of: .replayed) == [.failed])
        #expect(ItemStatus.unfinished == [.pending, .planned, .queued, .running])
    }

    @Test func batchStatus_movesOnlyAsListed_andRefusesEveryOtherPair() {
        let allowed: [BatchStatus: [BatchEvent: BatchStatus]] = [
            .planned: [.publishing: .publishing, .allPublished: .queued],
            .publishing: [.allPublished: .queued],
            .queued: [.imageStarted: .running, .settled: .done, .settledAllFailed: .failed],
            .running: [.settled: .done, .settledAllFailed: .failed],
            .done: [.replayed: .queued],
            .failed: [.replayed: .queued],
        ]
        #expect(Set(allowed.keys) == Set(BatchStatus.allCases))
        for status in BatchStatus.allCases {
            for event in BatchEvent.allCases {
                #expect(status.after(event) == allowed[status]?[event], "\(status) on \(event)")
            }
        }
        let reached = Set(BatchStatus.allCases.flatMap { status in BatchEvent.allCases.compactMap { status.after($0) } })
        #expect(reached == Set(BatchStatus.allCases).subtracting([.planned]))
    }

    @Test func podState_movesOnlyAsListed_andRefusesEveryOtherPair() {
        let working: [PodState] = [.requested, .starting, .downloading, .generating, .draining]
        var allowed: [PodState: [PodEvent: PodState]] = [:]
        for state in working {
            var moves: [PodEvent: PodState] = [.reclaimed: .reclaimed, .terminated: .terminated]
            for reported in PodState.reportable { moves[.reported(reported)] = reported }
            allowed[state] = moves
        }
        allowed[.gpuFailed] = [.reclaimed: .reclaimed, .terminated: .terminated]
        allowed[.faulted] = [.reclaimed: .reclaimed, .terminated: .terminated]
        allowed[.reclaimed] = [.resumed: .starting, .terminated: .terminated]
        allowed[.terminated] = [:]
        #expect(Set(allowed.keys) == Set(PodState.allCases))
        for state in PodState.allCases {
            for event in PodEvent.allCases {
                #expect(state.after(event) == allowed[state]?[event], "\(state) on \(event)")
            }
        }
    }

    @Test func aWorkingPod_canReportItselfFaulted_andAFaultedOneHoldsNoWork() {
        for state in [PodState.starting, .downloading, .generating, .draining] {
            #expect(state.after(.reported(.faulted)) == .faulted, "\(state)")
        }
        #expect(PodState.holdingNoWork.contains(.faulted))
    }

    @Test func aPod_cannotReportItselfReclaimedTerminatedOrRequested() {
        for claimed in [PodState.reclaimed, .terminated, .requested] {
            #expect(PodState.sources(of: .reported(claimed)).isEmpty, "reported(\(claimed))")
        }
    }

    @Test func aReclaimedGPUFailedOrFaultedPod_ignoresLateReports() {
        for state in [PodState.reclaimed, .gpuFailed, .faulted, .terminated] {
            #expect(PodState.reportable.allSatisfy { state.after(.reported($0)) == nil }, "\(state)")
        }
    }

    @Test func eventKinds_mapToTheItemEventsTheyReport() {
        #expect(EventKind.imageStarted.itemEvent(final: false) == .started)
        #expect(EventKind.imageFailed.itemEvent(final: false) == .retried)
        #expect(EventKind.imageFailed.itemEvent(final: true) == .gaveUp)
        #expect(EventKind.imageInterrupted.itemEvent(final: true) == .interrupted)
        for kind in [EventKind.state, .heartbeat, .assetReady, .assetFailed, .imageDone] {
            #expect(kind.itemEvent(final: true) == nil && kind.itemEvent(final: false) == nil)
        }
        #expect(EventKind(rawValue: "pod.heartbeat") == .heartbeat)
    }
}

@Suite("lifecycles: one target per event")
struct LifecycleTargetTests {
    @Test func everyEvent_hasOneTarget_whateverItsSource() {
        for event in ItemEvent.allCases {
            #expect(Set(ItemStatus.sources(of: event).compactMap { $0.after(event) }) == [ItemStatus.target(of: event)], "\(event)")
        }
        for event in BatchEvent.allCases {
            #expect(Set(BatchStatus.sources(of: event).compactMap { $0.after(event) }) == [BatchStatus.target(of: event)], "\(event)")
        }
        for event in PodEvent.allCases where !PodState.sources(of: event).isEmpty {
            #expect(Set(PodState.sources(of: event).compactMap { $0.after(event) }) == [PodState.target(of: event)], "\(event)")
        }
    }
}
