/// CRC-32C (Castagnoli): the checksum of dpt's checkpoints and of TensorFlow's record files.
public enum CRC32C {
  static let table: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
  }

  public static func checksum<S: Sequence<UInt8>>(_ bytes: S) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }

  /// The checksum of raw memory (checkpoint payloads: parameters and optimizer buffers).
  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }

  /// TensorFlow's masked form: rotate right by 15 bits, add 0xa282ead8.
  public static func masked<S: Sequence<UInt8>>(_ bytes: S) -> UInt32 {
    let c = checksum(bytes)
    return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
  }
}
