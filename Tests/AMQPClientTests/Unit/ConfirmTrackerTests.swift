import Testing

@testable import AMQPClient

@Suite("Publisher-confirm bookkeeping")
struct ConfirmTrackerTests {
    private let noRoute = ReturnInfo(replyCode: 312, replyText: "NO_ROUTE", exchange: "x", routingKey: "k")

    @Test func singleAcks_settleTheirOwnTagOnly() {
        var tracker = ConfirmTracker()
        #expect(tracker.register(token: 1) == 1)
        #expect(tracker.register(token: 1) == 2)
        #expect(tracker.settle(tag: 2, multiple: false, ack: true) == [.init(sequence: 2, token: 1, outcome: .acked)])
        #expect(tracker.pendingCount == 1)
        #expect(tracker.settle(tag: 2, multiple: false, ack: true).isEmpty)
    }

    @Test func multipleAck_settlesEverythingUpToTheTag() {
        var tracker = ConfirmTracker()
        for token in [1, 1, 2, 2] { _ = tracker.register(token: token) }
        _ = tracker.settle(tag: 2, multiple: false, ack: true)
        let settled = tracker.settle(tag: 3, multiple: true, ack: true)
        #expect(settled.map(\.sequence) == [1, 3])
        #expect(tracker.pendingCount == 1)
        #expect(tracker.settle(tag: 0, multiple: true, ack: false) == [.init(sequence: 4, token: 2, outcome: .nacked)])
    }

    @Test func returnBeforeAck_marksTheAckedTagAsReturned() {
        var tracker = ConfirmTracker()
        for _ in 0..<3 { _ = tracker.register(token: 7) }
        tracker.returned(noRoute)
        // The ack for message 2 follows its return; message 1 is still waiting on a queue.
        #expect(tracker.settle(tag: 2, multiple: false, ack: true) == [.init(sequence: 2, token: 7, outcome: .returned(noRoute))])
        #expect(tracker.settle(tag: 3, multiple: true, ack: true).map(\.outcome) == [.acked, .acked])
    }

    @Test func returnFollowedByMultipleAck_appliesToTheHighestTagOnly() {
        var tracker = ConfirmTracker()
        for _ in 0..<3 { _ = tracker.register(token: 1) }
        tracker.returned(noRoute)
        let outcomes = tracker.settle(tag: 3, multiple: true, ack: true).map(\.outcome)
        #expect(outcomes == [.acked, .acked, .returned(noRoute)])
    }

    @Test func reset_returnsWaitingTokens_andNumbersFromOneAgain() {
        var tracker = ConfirmTracker()
        _ = tracker.register(token: 1)
        _ = tracker.register(token: 2)
        #expect(tracker.reset() == [1, 2])
        #expect(tracker.pendingCount == 0)
        #expect(tracker.register(token: 3) == 1)
    }
}
