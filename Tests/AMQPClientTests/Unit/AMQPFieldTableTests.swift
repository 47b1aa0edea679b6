import Foundation
import Testing

@testable import AMQPClient

@Suite("Field tables convert to C and back without loss")
struct AMQPFieldTableTests {
    private func roundTrip(_ table: AMQPTable) -> AMQPTable {
        let arena = CArena()
        return withExtendedLifetime(arena) { AMQPTable(c: arena.table(table)) }
    }

    @Test func everyFieldKind_survivesTheRoundTrip() {
        let table: AMQPTable = [
            "bool": true,
            "i8": .int8(-8), "u8": .uint8(8), "i16": .int16(-16), "u16": .uint16(16),
            "i32": .int32(-32), "u32": .uint32(32), "i64": .int64(-64), "u64": .uint64(64),
            "f32": .float(1.5), "f64": .double(-2.25),
            "decimal": .decimal(scale: 2, value: 12345),
            "string": "héllo", "empty": "",
            "bytes": .bytes([0, 1, 255]),
            "timestamp": .timestamp(Date(timeIntervalSince1970: 1_700_000_000)),
            "table": ["inner": ["deeper": 1]],
            "array": [1, "two", [3.0], ["k": false]],
            "emptyArray": .array([]),
            "emptyTable": .table([:]),
            "void": .void,
        ]
        #expect(roundTrip(table) == table)
    }

    @Test func integerLiterals_areSigned64Bit_andReadBackAsInts() {
        let table: AMQPTable = ["x-delivery-limit": 5, "x-max-length": 1_000_000]
        #expect(table["x-delivery-limit"] == .int64(5))
        #expect(roundTrip(table)["x-max-length"]?.intValue == 1_000_000)
    }

    @Test func subscriptSet_replacesInPlace_andNilRemoves() {
        var table: AMQPTable = ["a": 1, "b": 2]
        table["a"] = "one"
        table["c"] = 3
        table["b"] = nil
        #expect(table.keys == ["a", "c"])
        #expect(table["a"] == "one")
    }

    @Test func messageProperties_surviveTheRoundTrip() {
        let properties = AMQPMessageProperties(
            contentType: "application/json", contentEncoding: "gzip", headers: ["k": "v"], deliveryMode: .transient,
            priority: 9, correlationID: "c", replyTo: "r", expiration: "1000", messageID: "m",
            timestamp: Date(timeIntervalSince1970: 42), type: "t", userID: "u", appID: "a")
        let arena = CArena()
        let back = withExtendedLifetime(arena) { AMQPMessageProperties(c: properties.c(in: arena)) }
        #expect(back == properties)
        let none = withExtendedLifetime(arena) { AMQPMessageProperties(c: AMQPMessageProperties.none.c(in: arena)) }
        #expect(none == .none)
    }
}
