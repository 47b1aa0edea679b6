import Foundation
import SpotqCore
import Testing
import SpotqSynthetic

@Suite("enqueue: message envelope")
struct EnqueueMessageValidatorTests {
    let validator = EnqueueMessageValidator(maxBytes: 4_096)

    func reason(_ text: String, contentType: String? = nil, encoding: String? = nil) -> String? {
        if case .failure(let rejection) = validator.validate(body: Array(text.utf8), contentType: contentType, contentEncoding: encoding) {
            return rejection.reason
        }
        return nil
    }

    let valid = #"{"version": 1, "request_id": "r1", "checkpoint": "c.safetensors", "prompt": {"positive": "x"}, "workflow": {"1": {}}}"#

    @Test func aValidMessage_keepsItsBodyByteForByte() throws {
        let body = Array(#"{"version":1,"request_id":"r1","checkpoint":"c","loras":null,"priority":5,"prompt":{"positive":"x","seed":18446744073709551615},"workflow":{}}"#.utf8)
        let message = try validator.validate(body: body, contentType: "application/json; charset=utf-8").get()
        #expect(message.requestID == "r1")
        #expect(message.body == body)
    }

    @Test func notJSON_notAnObject_tooLarge_orEncoded_isRefusedWithAReason() {
        #expect(reason("{not json")?.hasPrefix("the body is not valid JSON") == true)
        #expect(reason("[1, 2]") == "the body must be a JSON object, not array")
        #expect(reason(String(repeating: " ", count: 5_000) + valid)?.contains("the limit is 4096") == true)
        #expect(reason(valid, encoding: "gzip")?.contains("content_encoding \"gzip\" is not supported") == true)
        #expect(reason(valid, contentType: "text/plain")?.contains("is not application/json") == true)
    }

    @Test func versionMissingOrUnknown_isRefused() {
        #expect(reason(#"{"request_id": "r"}"#) == "\"version\" is missing; this server reads version 1")
        #expect(reason(valid.replacingOccurrences(of: #""version": 1"#, with: #""version": 2"#)) == "unknown version 2; this server reads version 1")
        #expect(reason(valid.replacingOccurrences(of: #""version": 1"#, with: #""version": "1""#))?.hasPrefix("unknown version \"1\"") == true)
    }

    @Test func missingMistypedOrUnknownFields_areRefused() {
        #expect(reason(valid.replacingOccurrences(of: #", "workflow": {"1": {}}"#, with: "")) == "\"workflow\" is missing")
        #expect(reason(valid.replacingOccurrences(of: #"{"positive": "x"}"#, with: #""x""#)) == "\"prompt\" must be a JSON object, not string")
        #expect(reason(valid.replacingOccurrences(of: "\"request_id\": \"r1\"", with: "\"request_id\": 7")) == "\"request_id\" must be a JSON string, not number")
        #expect(reason(valid.replacingOccurrences(of: "}}}", with: "}}, \"loras\": {}}")) == "\"loras\" must be a JSON array, not object")
        #expect(reason(valid.replacingOccurrences(of: "}}}", with: "}}, \"priority\": 1.5}"))?.hasPrefix("\"priority\" must be a whole number") == true)
        #expect(reason(valid.replacingOccurrences(of: "}}}", with: "}}, \"propmt\": 1}"))?.hasPrefix("unknown field \"propmt\"") == true)
    }

    @Test func aRefusalAfterTheRequestIDWasRead_carriesIt() {
        let result = validator.validate(body: Array(valid.replacingOccurrences(of: #""version": 1"#, with: #""version": 9"#).utf8))
        guard case .failure(let rejection) = result else { Issue.record("expected a refusal"); return }
        #expect(rejection.requestID == "r1")
    }

    @Test func theBuiltTextToImageRequest_passes() throws {
        let request = TextToImageRequest(requestID: "t", checkpoint: "c.safetensors", loras: [LoraUse(file: "l.safetensors", strength: 0.5)], positive: "p")
        _ = try EnqueueMessageValidator().validate(body: request.messageJSON()).get()
    }
}

@Suite("enqueue: JSON Lines and summaries")
struct JSONLinesTests {
    @Test func split_skipsBlankLines_handlesCRLFAndBOM_andKeepsLineNumbers() {
        let lines = JSONLines.split(Array("\u{FEFF}{\"a\":1}\r\n\n   \n{\"b\":2}".utf8))
        #expect(lines == [EnqueueLine(number: 1, body: Array("{\"a\":1}".utf8)), EnqueueLine(number: 4, body: Array("{\"b\":2}".utf8))])
    }

    @Test func summary_groupsReasons_mostFrequentFirst_withTheirFirstLines() {
        var summary = EnqueueSummary()
        summary.record(.accepted(itemID: 1), place: 1)
        summary.record(.duplicate, place: 2)
        for line in 3...9 { summary.record(.rejected(reason: "bad"), place: line) }
        summary.record(.rejected(reason: "worse"), place: 10)
        #expect(summary.total == 10)
        #expect(summary.reasonsByCount.map(\.reason) == ["bad", "worse"])
        #expect(summary.reasonsByCount[0].places == [3, 4, 5, 6, 7])
    }

    @Test func reply_roundTripsEveryOutcome() throws {
        for outcome in [EnqueueOutcome.accepted(itemID: 7), .duplicate, .rejected(reason: "no")] {
            let reply = try JSONDecoder().decode(EnqueueReply.self, from: Data(EnqueueReply(requestID: "r", outcome: outcome).encoded()))
            #expect(reply.enqueueOutcome == outcome)
            #expect(reply.requestID == "r")
        }
    }
}

@Suite("retry backoff")
struct RetryBackoffTests {
    @Test func delays_growExponentially_andStopAtTheCap() {
        let backoff = RetryBackoff(initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2, jitter: 0)
        #expect(backoff.delay(afterFailures: 0) == .zero)
        #expect(backoff.delay(afterFailures: 1) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 3) == .milliseconds(400))
        #expect(backoff.delay(afterFailures: 50) == .seconds(1))
    }

    @Test func jitter_staysWithinItsSpread() {
        let backoff = RetryBackoff(initial: .seconds(1), maximum: .seconds(10), multiplier: 2, jitter: 0.2)
        for _ in 0..<100 {
            let delay = backoff.delay(afterFailures: 1)
            #expect(delay >= .milliseconds(800) && delay <= .milliseconds(1200))
        }
    }
}

@Suite("JSON writer")
struct JSONValueTests {
    @Test func serialized_escapesStrings_keepsOrder_andRoundTripsThroughFoundation() throws {
        let value: JSONValue = ["b": "quote \" backslash \\ newline \n tab \t bell \u{07} é", "a": [1, 2.5, true, .null, .unsigned(UInt64.max)]]
        let text = String(decoding: value.serialized(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"b":"#))
        #expect(text.contains(#"\u0007"#))
        #expect(text.contains("18446744073709551615"))
        let parsed = try JSONSerialization.jsonObject(with: Data(value.serialized())) as? [String: Any]
        #expect(parsed?["b"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{07} é")
    }
}
