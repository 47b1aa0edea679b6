internal import CRabbitMQ
import Foundation

extension AMQPMessageProperties {
    /// Copies properties rabbitmq-c decoded out of its pool.
    init(c p: amqp_basic_properties_t) {
        self = .none
        let flags = p._flags
        func has(_ flag: Int32) -> Bool { flags & amqp_flags_t(flag) != 0 }
        if has(AMQP_BASIC_CONTENT_TYPE_FLAG) { contentType = p.content_type.string }
        if has(AMQP_BASIC_CONTENT_ENCODING_FLAG) { contentEncoding = p.content_encoding.string }
        if has(AMQP_BASIC_HEADERS_FLAG) { headers = AMQPTable(c: p.headers) }
        if has(AMQP_BASIC_DELIVERY_MODE_FLAG) { deliveryMode = AMQPDeliveryMode(rawValue: p.delivery_mode) }
        if has(AMQP_BASIC_PRIORITY_FLAG) { priority = p.priority }
        if has(AMQP_BASIC_CORRELATION_ID_FLAG) { correlationID = p.correlation_id.string }
        if has(AMQP_BASIC_REPLY_TO_FLAG) { replyTo = p.reply_to.string }
        if has(AMQP_BASIC_EXPIRATION_FLAG) { expiration = p.expiration.string }
        if has(AMQP_BASIC_MESSAGE_ID_FLAG) { messageID = p.message_id.string }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { timestamp = Date(timeIntervalSince1970: TimeInterval(p.timestamp)) }
        if has(AMQP_BASIC_TYPE_FLAG) { type = p.type.string }
        if has(AMQP_BASIC_USER_ID_FLAG) { userID = p.user_id.string }
        if has(AMQP_BASIC_APP_ID_FLAG) { appID = p.app_id.string }
    }

    /// The C struct, its strings and tables allocated in `arena`.
    func c(in arena: CArena) -> amqp_basic_properties_t {
        var p = amqp_basic_properties_t()
        var flags: Int32 = 0
        func set(_ value: String?, _ flag: Int32, _ field: WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>) {
            guard let value else { return }
            p[keyPath: field] = arena.bytes(value)
            flags |= flag
        }
        set(contentType, AMQP_BASIC_CONTENT_TYPE_FLAG, \.content_type)
        set(contentEncoding, AMQP_BASIC_CONTENT_ENCODING_FLAG, \.content_encoding)
        if let headers {
            p.headers = arena.table(headers)
            flags |= AMQP_BASIC_HEADERS_FLAG
        }
        if let deliveryMode {
            p.delivery_mode = deliveryMode.rawValue
            flags |= AMQP_BASIC_DELIVERY_MODE_FLAG
        }
        if let priority {
            p.priority = priority
            flags |= AMQP_BASIC_PRIORITY_FLAG
        }
        set(correlationID, AMQP_BASIC_CORRELATION_ID_FLAG, \.correlation_id)
        set(replyTo, AMQP_BASIC_REPLY_TO_FLAG, \.reply_to)
        set(expiration, AMQP_BASIC_EXPIRATION_FLAG, \.expiration)
        set(messageID, AMQP_BASIC_MESSAGE_ID_FLAG, \.message_id)
        if let timestamp {
            p.timestamp = UInt64(max(0, timestamp.timeIntervalSince1970.rounded(.down)))
            flags |= AMQP_BASIC_TIMESTAMP_FLAG
        }
        set(type, AMQP_BASIC_TYPE_FLAG, \.type)
        set(userID, AMQP_BASIC_USER_ID_FLAG, \.user_id)
        set(appID, AMQP_BASIC_APP_ID_FLAG, \.app_id)
        p._flags = amqp_flags_t(flags)
        return p
    }
}
