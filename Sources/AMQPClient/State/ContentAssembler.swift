/// The fields of a `basic.deliver`, copied out of rabbitmq-c's pool.
struct DeliverMethod: Sendable, Hashable {
    var consumerTag: String
    var deliveryTag: UInt64
    var redelivered: Bool
    var exchange: String
    var routingKey: String
}

/// Joins a content-bearing method (`basic.deliver`, `basic.return`) with the header frame and
/// the body frames that follow it on the same channel. Pure: frames come in already copied.
struct ContentAssembler {
    enum Method: Hashable {
        case deliver(DeliverMethod)
        case returned(ReturnInfo)
    }

    struct Content: Hashable {
        var method: Method
        var properties: AMQPMessageProperties
        var body: [UInt8]
    }

    struct Violation: Error, Hashable {
        var description: String
    }

    private enum State {
        case idle
        case awaitingHeader(Method)
        case awaitingBody(Method, AMQPMessageProperties, expected: Int, body: [UInt8])
    }

    private var state = State.idle

    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    mutating func begin(_ method: Method) throws(Violation) {
        guard isIdle else { throw Violation(description: "a new content method arrived before the previous body was complete") }
        state = .awaitingHeader(method)
    }

    mutating func header(bodySize: UInt64, properties: AMQPMessageProperties) throws(Violation) -> Content? {
        guard case .awaitingHeader(let method) = state else {
            throw Violation(description: "a content header arrived without a content method before it")
        }
        guard bodySize <= UInt64(Int.max) else { throw Violation(description: "body size \(bodySize) is too large") }
        if bodySize == 0 {
            state = .idle
            return Content(method: method, properties: properties, body: [])
        }
        var body: [UInt8] = []
        body.reserveCapacity(Int(bodySize))
        state = .awaitingBody(method, properties, expected: Int(bodySize), body: body)
        return nil
    }

    mutating func body(_ fragment: UnsafeRawBufferPointer) throws(Violation) -> Content? {
        guard case .awaitingBody(let method, let properties, let expected, var body) = state else {
            throw Violation(description: "a body frame arrived without a content header before it")
        }
        state = .idle  // drop our reference so `body` is appended to without a copy
        guard body.count + fragment.count <= expected else {
            throw Violation(description: "body frames carry more than the announced \(expected) bytes")
        }
        body.append(contentsOf: fragment)
        if body.count == expected {
            return Content(method: method, properties: properties, body: body)
        }
        state = .awaitingBody(method, properties, expected: expected, body: body)
        return nil
    }

    mutating func reset() {
        state = .idle
    }
}
