import Foundation

/// Just enough protobuf encoding for the two protobuf files dpt writes: TensorBoard's events and ONNX models. A
/// message is its fields' bytes in order; a nested message is a length-delimited field holding another's bytes.
public struct Protobuf: Sendable {
  public var bytes: [UInt8] = []

  public init() {}

  public mutating func key(_ field: Int, _ wire: UInt64) { varintRaw(UInt64(field) << 3 | wire) }

  public mutating func varintRaw(_ v: UInt64) {
    var v = v
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  public mutating func varint(_ field: Int, _ v: UInt64) {
    key(field, 0)
    varintRaw(v)
  }

  public mutating func double(_ field: Int, _ v: Double) {
    key(field, 1)
    var bits = v.bitPattern
    for _ in 0..<8 { bytes.append(UInt8(bits & 0xFF)); bits >>= 8 }
  }

  public mutating func float(_ field: Int, _ v: Float) {
    key(field, 5)
    var bits = v.bitPattern
    for _ in 0..<4 { bytes.append(UInt8(bits & 0xFF)); bits >>= 8 }
  }

  /// A packed repeated double field.
  public mutating func doubles(_ field: Int, _ values: [Double]) {
    var data: [UInt8] = []
    for v in values {
      var bits = v.bitPattern
      for _ in 0..<8 { data.append(UInt8(bits & 0xFF)); bits >>= 8 }
    }
    lengthDelimited(field, data)
  }

  public mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }

  public mutating func message(_ field: Int, _ m: Protobuf) { lengthDelimited(field, m.bytes) }

  public mutating func lengthDelimited(_ field: Int, _ data: [UInt8]) {
    key(field, 2)
    varintRaw(UInt64(data.count))
    bytes += data
  }
}

extension Protobuf {
  /// A packed repeated varint field (int64s, ONNX's dims and ints).
  public mutating func varints(_ field: Int, _ values: [Int64]) {
    var packed = Protobuf()
    for v in values { packed.varintRaw(UInt64(bitPattern: v)) }
    lengthDelimited(field, packed.bytes)
  }

  /// The bytes of `values` as little-endian 32-bit floats (ONNX's raw_data).
  public static func littleEndian(_ values: [Float]) -> [UInt8] {
    var out = [UInt8](); out.reserveCapacity(values.count * 4)
    for v in values { var b = v.bitPattern; for _ in 0..<4 { out.append(UInt8(b & 0xFF)); b >>= 8 } }
    return out
  }
}
