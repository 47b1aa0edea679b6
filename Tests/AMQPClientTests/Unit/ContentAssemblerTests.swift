import Testing

@testable import AMQPClient

@Suite("Joining content frames into messages")
struct ContentAssemblerTests {
    private let deliver = ContentAssembler.Method.deliver(
        DeliverMethod(consumerTag: "c", deliveryTag: 1, redelivered: false, exchange: "", routingKey: "q"))

    private func body(_ assembler: inout ContentAssembler, _ bytes: [UInt8]) throws -> ContentAssembler.Content? {
        try bytes.withUnsafeBytes { try assembler.body($0) }
    }

    @Test func bodySplitOverFrames_isJoinedInOrder() throws {
        var assembler = ContentAssembler()
        try assembler.begin(deliver)
        #expect(try assembler.header(bodySize: 5, properties: .none) == nil)
        #expect(try body(&assembler, [1, 2]) == nil)
        let content = try #require(try body(&assembler, [3, 4, 5]))
        #expect(content.body == [1, 2, 3, 4, 5])
        #expect(content.method == deliver)
        #expect(assembler.isIdle)
    }

    @Test func emptyBody_completesAtTheHeader() throws {
        var assembler = ContentAssembler()
        try assembler.begin(deliver)
        #expect(try assembler.header(bodySize: 0, properties: .none)?.body == [])
    }

    @Test func framesOutOfOrder_areProtocolViolations() throws {
        var assembler = ContentAssembler()
        #expect(throws: ContentAssembler.Violation.self) { try assembler.header(bodySize: 1, properties: .none) }
        #expect(throws: ContentAssembler.Violation.self) { try body(&assembler, [1]) }
        try assembler.begin(deliver)
        #expect(throws: ContentAssembler.Violation.self) { try assembler.begin(deliver) }
        _ = try assembler.header(bodySize: 1, properties: .none)
        #expect(throws: ContentAssembler.Violation.self) { try body(&assembler, [1, 2]) }
    }
}
