@testable import CurlClient
import Testing

@Suite("ReceivePacer")
struct ReceivePacerTests {
    @Test func pacer_allowsABurstThenHoldsToTheRate() {
        let start = ContinuousClock.now
        var pacer = ReceivePacer(bytesPerSecond: 1000, now: start)
        // Burst is a quarter second's worth: 250 bytes pass without waiting.
        #expect(pacer.delay(afterReceiving: 250, now: start) == .zero)
        // 500 more at once must wait half a second.
        #expect(pacer.delay(afterReceiving: 500, now: start) == .milliseconds(500))
        // After waiting that out, 100 more bytes wait 100 ms.
        #expect(pacer.delay(afterReceiving: 100, now: start + .milliseconds(500)) == .milliseconds(100))
    }

    @Test func pacer_afterAnIdleSpell_allowsOnlyTheBurstNotTheBacklog() {
        let start = ContinuousClock.now
        var pacer = ReceivePacer(bytesPerSecond: 1000, now: start)
        _ = pacer.delay(afterReceiving: 250, now: start)
        // Ten idle seconds refill the bucket to its 250-byte burst, no more.
        #expect(pacer.delay(afterReceiving: 1250, now: start + .seconds(10)) == .seconds(1))
    }

    @Test func pacer_burstIsCappedAt16KiB() {
        let pacer = ReceivePacer(bytesPerSecond: 100 * 1024 * 1024, now: .now)
        #expect(pacer.burst == 16 * 1024)
    }
}
