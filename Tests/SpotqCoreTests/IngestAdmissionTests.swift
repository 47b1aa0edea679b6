import Foundation
import SpotqCore
import Testing

@Suite("ingest admission: slots in all and a share per token")
struct IngestAdmissionTests {
    @Test func aTokenGetsAtMostItsShare_andOthersStillGetSlots_untilAllAreTaken() {
        var admission = IngestAdmission(limits: IngestConcurrency(maxConcurrent: 3, maxPerToken: 2, retryAfterSeconds: 1))
        guard case .admitted(let a1) = admission.admit(token: "a"), case .admitted(let a2) = admission.admit(token: "a") else {
            Issue.record("the first two of a token are admitted")
            return
        }
        #expect(a1 != a2)
        #expect(admission.admit(token: "a") == .overShare(limit: 2))
        guard case .admitted(let b1) = admission.admit(token: "b") else {
            Issue.record("another token gets the free slot")
            return
        }
        #expect(Set([a1, a2, b1]) == [0, 1, 2])
        #expect(admission.admit(token: "c") == .full(limit: 3))
        #expect(admission.inProgress == 3)
        #expect(admission.refusals == 2)
        #expect(admission.admissions == 3)

        admission.release(slot: a1, token: "a")
        #expect(admission.admit(token: "c") == .admitted(slot: a1))
        #expect(admission.admit(token: "a") == .full(limit: 3))
        admission.release(slot: a2, token: "a")
        #expect(admission.admit(token: "a") == .admitted(slot: a2))
    }
}

@Suite("Retry-After: what a busy server asks for, within reason")
struct RetryAfterTests {
    @Test func delaySeconds_andHTTPDates_areRead_capped_andNonsenseIgnored() {
        #expect(RetryAfter.delay("7") == .seconds(7))
        #expect(RetryAfter.delay(" 0 ") == .zero)
        #expect(RetryAfter.delay("86400") == .seconds(60), "capped, so a server cannot park a pod for a day")
        #expect(RetryAfter.delay("99999999999999999999") == .seconds(60))
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:47 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:27 GMT", now: now) == .zero, "a date in the past: now")
        #expect(RetryAfter.delay(nil) == nil)
        #expect(RetryAfter.delay("soon") == nil)
        #expect(RetryAfter.delay("-5") == nil)
        #expect(RetryAfter.delay("١٢") == nil, "only ASCII digits")
    }
}
