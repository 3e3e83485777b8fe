/// How the values of a reduction travel between ranks.
public enum WireFormat: String, Sendable, CaseIterable {
  /// The elements themselves (float32 for training): the sum is the plain all-reduce's, up to summation order.
  case exact
  /// bfloat16: float32's 8-bit exponent with a 7-bit mantissa (relative rounding error at most 2^-8). Half the bytes.
  case bfloat16
  /// IEEE half precision: a 10-bit mantissa (2^-11) but a 5-bit exponent, so every block is sent with a power-of-two
  /// scale chosen from its largest magnitude, which keeps it below 2^15 (no overflow) and lifts small gradients out
  /// of the subnormal range.
  case float16

  /// Bytes of one value on the wire, for elements of `elementBytes`.
  public func bytes(elementBytes: Int) -> Int { self == .exact ? elementBytes : 2 }
}

/// An element type whose reductions can travel as 16-bit codes: the conversion loops, specialised per type in this
/// module (as `Scalar` explains for the tensor core's kernels), so that generic callers pay one dynamic dispatch per
/// buffer and none per element.
public protocol WireScalar: Reducible, BinaryFloatingPoint {
  /// codes_i = 16-bit code of (x_i * scale)
  static func encode16(_ x: UnsafePointer<Self>, count: Int, scale: Float, format: WireFormat,
                       into codes: UnsafeMutablePointer<UInt16>)
  /// y_i += value(codes_i) * inverseScale, accumulated in Self.
  static func accumulate16(_ codes: UnsafePointer<UInt16>, count: Int, inverseScale: Float, format: WireFormat,
                           into y: UnsafeMutablePointer<Self>)
  /// y_i = value(codes_i) * inverseScale
  static func decode16(_ codes: UnsafePointer<UInt16>, count: Int, inverseScale: Float, format: WireFormat,
                       into y: UnsafeMutablePointer<Self>)
  /// y_i += x_i
  static func add(_ x: UnsafePointer<Self>, into y: UnsafeMutablePointer<Self>, count: Int)
  /// max_i |x_i| as a Float (0 for none; NaN and infinities are skipped: they travel as codes of their own)
  static func largestFiniteMagnitude(_ x: UnsafePointer<Self>, count: Int) -> Float
  /// The value as a Double, and back (specialised here: a conversion in generic code costs a dispatch).
  static func double(_ x: Self) -> Double
  static func element(_ x: Double) -> Self
}

extension Float: WireScalar {}
extension Double: WireScalar {}

extension WireScalar {
  public static func encode16(_ x: UnsafePointer<Self>, count n: Int, scale: Float, format: WireFormat,
                              into codes: UnsafeMutablePointer<UInt16>) {
    switch format {
    case .bfloat16: for i in 0..<n { codes[i] = WireCodes.bfloat16(Float(x[i]) * scale) }
    case .float16: for i in 0..<n { codes[i] = WireCodes.float16(Float(x[i]) * scale) }
    case .exact: preconditionFailure("exact values are not encoded")
    }
  }

  public static func accumulate16(_ codes: UnsafePointer<UInt16>, count n: Int, inverseScale: Float,
                                  format: WireFormat, into y: UnsafeMutablePointer<Self>) {
    switch format {
    case .bfloat16: for i in 0..<n { y[i] += Self(WireCodes.value(bfloat16: codes[i]) * inverseScale) }
    case .float16: for i in 0..<n { y[i] += Self(WireCodes.value(float16: codes[i]) * inverseScale) }
    case .exact: preconditionFailure("exact values are not decoded")
    }
  }

  public static func decode16(_ codes: UnsafePointer<UInt16>, count n: Int, inverseScale: Float, format: WireFormat,
                              into y: UnsafeMutablePointer<Self>) {
    switch format {
    case .bfloat16: for i in 0..<n { y[i] = Self(WireCodes.value(bfloat16: codes[i]) * inverseScale) }
    case .float16: for i in 0..<n { y[i] = Self(WireCodes.value(float16: codes[i]) * inverseScale) }
    case .exact: preconditionFailure("exact values are not decoded")
    }
  }

  public static func add(_ x: UnsafePointer<Self>, into y: UnsafeMutablePointer<Self>, count n: Int) {
    for i in 0..<n { y[i] += x[i] }
  }

  public static func largestFiniteMagnitude(_ x: UnsafePointer<Self>, count n: Int) -> Float {
    // Four running maxima (a float max reduction does not vectorise: its order matters for NaN), then the careful
    // loop only if something was not finite.
    var m0: Float = 0, m1: Float = 0, m2: Float = 0, m3: Float = 0
    var i = 0
    while i + 4 <= n {
      let a0 = Swift.abs(Float(x[i])), a1 = Swift.abs(Float(x[i + 1]))
      let a2 = Swift.abs(Float(x[i + 2])), a3 = Swift.abs(Float(x[i + 3]))
      m0 = a0 > m0 ? a0 : m0
      m1 = a1 > m1 ? a1 : m1
      m2 = a2 > m2 ? a2 : m2
      m3 = a3 > m3 ? a3 : m3
      i += 4
    }
    while i < n {
      let a = Swift.abs(Float(x[i]))
      m0 = a > m0 ? a : m0
      i += 1
    }
    let m = Swift.max(Swift.max(m0, m1), Swift.max(m2, m3))
    if m.isFinite { return m }
    var finite: Float = 0
    for i in 0..<n {
      let a = Swift.abs(Float(x[i]))
      finite = a.isFinite && a > finite ? a : finite
    }
    return finite
  }

  public static func double(_ x: Self) -> Double { Double(x) }
  public static func element(_ x: Double) -> Self { Self(x) }
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
}
