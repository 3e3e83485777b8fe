/// bfloat16 (`--compress bf16`): float32's 8-bit exponent with a 7-bit mantissa (relative rounding error at most
/// 2^-8), two bytes a value.
public struct BFloat16Codec: GradientCodec {
  public init() {}
  public static func parse(_ text: String) -> Self? { text == "bf16" || text == "bfloat16" ? Self() : nil }
  public static var syntax: String { "bf16" }
  public var description: String { "bf16" }

  public func blockBytes(count n: Int) -> Int { (n * 2 + 7) / 8 * 8 }

  public func encode(_ x: UnsafePointer<Float>, count n: Int, into block: UnsafeMutableRawPointer) {
    let codes = block.assumingMemoryBound(to: UInt16.self)
    for i in 0..<n { codes[i] = WireCodes.bfloat16(x[i]) }
    for i in n..<blockBytes(count: n) / 2 { codes[i] = 0 }
  }

  public func accumulate(_ block: UnsafeRawPointer, count n: Int, into y: UnsafeMutablePointer<Float>) {
    let codes = block.assumingMemoryBound(to: UInt16.self)
    for i in 0..<n { y[i] += WireCodes.value(bfloat16: codes[i]) }
  }

  public func decode(_ block: UnsafeRawPointer, count n: Int, into y: UnsafeMutablePointer<Float>) {
    let codes = block.assumingMemoryBound(to: UInt16.self)
    for i in 0..<n { y[i] = WireCodes.value(bfloat16: codes[i]) }
  }
}

/// IEEE half precision (`--compress fp16`): a 10-bit mantissa (2^-11) but a 5-bit exponent, so every block is sent
/// with a power-of-two scale chosen from its largest magnitude, which keeps it below 2^15 (no overflow) and lifts
/// small gradients out of the subnormal range. The block: the inverse scale (a Float), 4 spare bytes, the codes.
public struct Float16Codec: GradientCodec {
  public init() {}
  public static func parse(_ text: String) -> Self? { text == "fp16" || text == "float16" ? Self() : nil }
  public static var syntax: String { "fp16" }
  public var description: String { "fp16" }

  public func blockBytes(count n: Int) -> Int { 8 + (n * 2 + 7) / 8 * 8 }

  public func encode(_ x: UnsafePointer<Float>, count n: Int, into block: UnsafeMutableRawPointer) {
    let scale = WireCodes.float16Scale(largest: WireCodes.largestFiniteMagnitude(x, count: n))
    block.storeBytes(of: 1 / scale, as: Float.self)
    block.storeBytes(of: 0, toByteOffset: 4, as: Float.self)
    let codes = (block + 8).assumingMemoryBound(to: UInt16.self)
    for i in 0..<n { codes[i] = WireCodes.float16(x[i] * scale) }
    for i in n..<(blockBytes(count: n) - 8) / 2 { codes[i] = 0 }
  }

  public func accumulate(_ block: UnsafeRawPointer, count n: Int, into y: UnsafeMutablePointer<Float>) {
    let inverseScale = block.load(as: Float.self), codes = (block + 8).assumingMemoryBound(to: UInt16.self)
    for i in 0..<n { y[i] += WireCodes.value(float16: codes[i]) * inverseScale }
  }

  public func decode(_ block: UnsafeRawPointer, count n: Int, into y: UnsafeMutablePointer<Float>) {
    let inverseScale = block.load(as: Float.self), codes = (block + 8).assumingMemoryBound(to: UInt16.self)
    for i in 0..<n { y[i] = WireCodes.value(float16: codes[i]) * inverseScale }
  }
}

/// The 16-bit codes, as branch-free integer arithmetic on float32 bit patterns (the loops above vectorise; a libm or
/// compiler-rt call per element would cost more than the bytes it saves).
public enum WireCodes {
  /// float32 -> bfloat16, rounded to nearest even; NaN stays NaN.
  @inline(__always)
  public static func bfloat16(_ x: Float) -> UInt16 {
    let b = x.bitPattern
    let rounded = b &+ 0x7FFF &+ ((b >> 16) & 1)
    let isNaN = (b & 0x7FFF_FFFF) > 0x7F80_0000
    return isNaN ? 0x7FC0 : UInt16(truncatingIfNeeded: rounded >> 16)
  }

  @inline(__always)
  public static func value(bfloat16 c: UInt16) -> Float { Float(bitPattern: UInt32(c) << 16) }

  /// float32 -> IEEE binary16, rounded to nearest even: overflow becomes infinity, NaN a quiet NaN, and values below
  /// 2^-14 become subnormals (by adding a magic constant whose float addition does the rounding).
  @inline(__always)
  public static func float16(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let a = bits & 0x7FFF_FFFF
    // Normal results: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even.
    let odd = (a >> 13) & 1
    let normal = UInt16(truncatingIfNeeded: (a &+ 0xC800_0FFF &+ odd) >> 13)  // 0xC8000000 = (15 - 127) << 23
    // Subnormal results: 0.5 (exponent 126) added to |x| puts the 10 kept bits at the bottom of the mantissa.
    let magic = Float(bitPattern: 126 << 23)
    let subnormal = UInt16(truncatingIfNeeded: (Float(bitPattern: a) + magic).bitPattern &- magic.bitPattern)
    var h = a < (113 << 23) ? subnormal : normal
    h = a >= (143 << 23) ? 0x7C00 : h  // |x| >= 65536 (after rounding range): infinity
    h = a > 0x7F80_0000 ? 0x7E00 : h  // NaN
    return h | sign
  }

  /// IEEE binary16 -> float32 (exact).
  @inline(__always)
  public static func value(float16 c: UInt16) -> Float {
    let magnitude = UInt32(c & 0x7FFF) << 13
    let exponent = magnitude & (0x7C00 << 13)
    var bits = magnitude &+ (112 << 23)  // rebias 15 -> 127
    bits = exponent == (0x7C00 << 13) ? bits &+ (112 << 23) : bits  // infinity, NaN: exponent 255
    // Subnormals and zero: let the float unit normalise them.
    let subnormal = (Float(bitPattern: bits &+ (1 << 23)) - Float(bitPattern: 113 << 23)).bitPattern
    bits = exponent == 0 ? subnormal : bits
    return Float(bitPattern: bits | (UInt32(c & 0x8000) << 16))
  }

  /// The power of two s with max * s below 2^15 (so sums of a few such blocks stay inside float16's range of 65504),
  /// 1 for an all-zero block.
  public static func float16Scale(largest: Float) -> Float {
    guard largest > 0, largest.isFinite else { return 1 }
    let e = 14 - Int(largest.exponent)  // largest < 2^(exponent + 1), so largest * 2^e < 2^15
    return Float(sign: .plus, exponent: max(-120, min(120, e)), significand: 1)
  }

  /// max_i |x_i| (0 for none; NaN and infinities are skipped: they travel as codes of their own).
  public static func largestFiniteMagnitude(_ x: UnsafePointer<Float>, count n: Int) -> Float {
    // Four running maxima (a float max reduction does not vectorise: its order matters for NaN), then the careful
    // loop only if something was not finite.
    var m0: Float = 0, m1: Float = 0, m2: Float = 0, m3: Float = 0
    var i = 0
    while i + 4 <= n {
      let a0 = Swift.abs(x[i]), a1 = Swift.abs(x[i + 1]), a2 = Swift.abs(x[i + 2]), a3 = Swift.abs(x[i + 3])
      m0 = a0 > m0 ? a0 : m0
      m1 = a1 > m1 ? a1 : m1
      m2 = a2 > m2 ? a2 : m2
      m3 = a3 > m3 ? a3 : m3
      i += 4
    }
    while i < n {
      let a = Swift.abs(x[i])
      m0 = a > m0 ? a : m0
      i += 1
    }
    let m = Swift.max(Swift.max(m0, m1), Swift.max(m2, m3))
    if m.isFinite { return m }
    var finite: Float = 0
    for i in 0..<n {
      let a = Swift.abs(x[i])
      finite = a.isFinite && a > finite ? a : finite
    }
    return finite
  }
}
