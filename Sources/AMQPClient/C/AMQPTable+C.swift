internal import CRabbitMQ
import Foundation

// Copies C values rabbitmq-c decoded into its pools out into Swift values, so the pools can be
// recycled right after.

extension amqp_bytes_t {
    /// The bytes as a Swift string (invalid UTF-8 is repaired, never trapped on).
    var string: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }

    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }
}

extension AMQPTable {
    init(c table: amqp_table_t) {
        self.init()
        guard table.num_entries > 0, let entries = table.entries else { return }
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            self[entry.key.string] = AMQPFieldValue(c: entry.value)
        }
    }
}

extension AMQPFieldValue {
    init(c field: amqp_field_value_t) {
        let value = field.value
        switch amqp_field_value_kind_t(rawValue: UInt32(field.kind)) {
        case AMQP_FIELD_KIND_BOOLEAN: self = .bool(value.boolean != 0)
        case AMQP_FIELD_KIND_I8: self = .int8(value.i8)
        case AMQP_FIELD_KIND_U8: self = .uint8(value.u8)
        case AMQP_FIELD_KIND_I16: self = .int16(value.i16)
        case AMQP_FIELD_KIND_U16: self = .uint16(value.u16)
        case AMQP_FIELD_KIND_I32: self = .int32(value.i32)
        case AMQP_FIELD_KIND_U32: self = .uint32(value.u32)
        case AMQP_FIELD_KIND_I64: self = .int64(value.i64)
        case AMQP_FIELD_KIND_U64: self = .uint64(value.u64)
        case AMQP_FIELD_KIND_F32: self = .float(value.f32)
        case AMQP_FIELD_KIND_F64: self = .double(value.f64)
        case AMQP_FIELD_KIND_DECIMAL: self = .decimal(scale: value.decimal.decimals, value: value.decimal.value)
        case AMQP_FIELD_KIND_UTF8: self = .string(value.bytes.string)
        case AMQP_FIELD_KIND_BYTES: self = .bytes(value.bytes.array)
        case AMQP_FIELD_KIND_TIMESTAMP: self = .timestamp(Date(timeIntervalSince1970: TimeInterval(value.u64)))
        case AMQP_FIELD_KIND_TABLE: self = .table(AMQPTable(c: value.table))
        case AMQP_FIELD_KIND_ARRAY:
            var elements: [AMQPFieldValue] = []
            if value.array.num_entries > 0, let entries = value.array.entries {
                elements = (0..<Int(value.array.num_entries)).map { AMQPFieldValue(c: entries[$0]) }
            }
            self = .array(elements)
        default: self = .void
        }
    }
}
