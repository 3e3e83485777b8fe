import Foundation

/// Just enough protobuf encoding for TensorBoard's events.
struct Protobuf {
  var bytes: [UInt8] = []

  mutating func key(_ field: Int, _ wire: UInt64) { varintRaw(UInt64(field) << 3 | wire) }

  mutating func varintRaw(_ v: UInt64) {
    var v = v
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  mutating func varint(_ field: Int, _ v: UInt64) {
    key(field, 0)
    varintRaw(v)
  }

  mutating func double(_ field: Int, _ v: Double) {
    key(field, 1)
    var bits = v.bitPattern
    for _ in 0..<8 { bytes.append(UInt8(bits & 0xFF)); bits >>= 8 }
  }

  mutating func float(_ field: Int, _ v: Float) {
    key(field, 5)
    var bits = v.bitPattern
    for _ in 0..<4 { bytes.append(UInt8(bits & 0xFF)); bits >>= 8 }
  }

  /// A packed repeated double field.
  mutating func doubles(_ field: Int, _ values: [Double]) {
    var data: [UInt8] = []
    for v in values {
      var bits = v.bitPattern
      for _ in 0..<8 { data.append(UInt8(bits & 0xFF)); bits >>= 8 }
    }
    lengthDelimited(field, data)
  }

  mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }

  mutating func message(_ field: Int, _ m: Protobuf) { lengthDelimited(field, m.bytes) }

  mutating func lengthDelimited(_ field: Int, _ data: [UInt8]) {
    key(field, 2)
    varintRaw(UInt64(data.count))
    bytes += data
  }
}
