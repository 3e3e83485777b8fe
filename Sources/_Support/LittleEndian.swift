/// Little-endian integers to and from bytes: the byte order of every file format dpt writes.
public enum LittleEndian {
  public static func bytes<I: FixedWidthInteger & UnsignedInteger>(_ v: I) -> [UInt8] {
    (0..<I.bitWidth / 8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
  }

  /// The integer of type `I` stored at `offset` of `bytes`.
  public static func read<I: FixedWidthInteger & UnsignedInteger, C: Collection<UInt8>>(_: I.Type, _ bytes: C, at offset: C.Index) -> I {
    var v: I = 0
    var i = offset
    for k in 0..<I.bitWidth / 8 {
      v |= I(bytes[i]) << (8 * k)
      i = bytes.index(after: i)
    }
    return v
  }
}
