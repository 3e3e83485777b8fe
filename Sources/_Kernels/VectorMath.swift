// This file is compiled twice, into _KernelsAVX2 and _KernelsAVX512 (see DirectConvolution.swift): Layers calls the
// build the CPU runs. Its loops call no library function, so that the compiler vectorises them (libm's erff and expf
// are one value a call: GELU through them took a fifth of a GPT's step).

/// GELU and exp for Float buffers, computed in Double (so that a Float result is rounded once, as libm's would be):
///
///   exp(a) = 2^n e^r,  n = round(a / ln 2), r = a - n ln 2 (in two parts), e^r by its Taylor series to r^8
///            (|r| <= ln2 / 2: the first term left out is below 2e-10), 2^n made in the exponent's bits;
///   erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0, P of degree 9 fitted to log(erfc(z) e^(z^2) / t)
///            on z in [0, 10] (Lawson's weighted least squares: relative error below 5e-8 there);
///   Phi(x) = erfc(-x / sqrt 2) / 2 for x < 0, 1 - erfc(x / sqrt 2) / 2 otherwise (each side to its relative
///            accuracy: no cancellation in the tail), phi(x) = e^(-x^2 / 2) / sqrt(2 pi).
public enum VectorMath {
  static let log2e = 1.4426950408889634
  static let ln2Hi = 0.6931471803691238  // ln 2 to 32 bits: n ln2Hi is exact for the n here
  static let ln2Lo = 1.9082149292705877e-10
  /// 1.5 * 2^52: a Double below 2^51 in magnitude added to it is rounded to an integer, held in the low bits.
  static let roundingShift = 6755399441055744.0

  /// e^a for a in [-700, 700] (callers clamp), without a call, to about 2e-10 relative (every result here is rounded
  /// to Float). Each step of Horner's rule is one fused multiply-add.
  @inline(__always)
  static func exp(_ a: Double) -> Double {
    let k = roundingShift.addingProduct(a, log2e)  // a / ln 2 rounded to an integer by the shift
    let n = k - roundingShift
    let r = a.addingProduct(-n, ln2Hi).addingProduct(-n, ln2Lo)
    var p = 1.0 / 40_320
    p = (1.0 / 5_040).addingProduct(p, r)
    p = (1.0 / 720).addingProduct(p, r)
    p = (1.0 / 120).addingProduct(p, r)
    p = (1.0 / 24).addingProduct(p, r)
    p = (1.0 / 6).addingProduct(p, r)
    p = 0.5.addingProduct(p, r)
    p = 1.0.addingProduct(p, r)
    p = 1.0.addingProduct(p, r)
    // n's two's complement sits in the low bits of `k`; 1023 + n, shifted into the exponent, is 2^n.
    let scale = Double(bitPattern: (k.bitPattern &+ 1023) << 52)
    return p * scale
  }

  /// erfc(z) for z >= 0; 0 beyond z = 10 (erfc(10) is 2e-45, below Float's smallest value).
  @inline(__always)
  static func erfc(_ z: Double) -> Double {
    let beyond = z > 10
    let z = Swift.min(z, 10)
    let t = 1 / (1 + 0.5 * z)
    var p = 0.14219418570956627
    p = (-0.6660626894621738).addingProduct(p, t)
    p = 1.1223999229892545.addingProduct(p, t)
    p = (-0.6512469163521111).addingProduct(p, t)
    p = (-0.11678893412106726).addingProduct(p, t)
    p = 0.020196809291185874.addingProduct(p, t)
    p = 0.028356801271004574.addingProduct(p, t)
    p = 0.3878997952413554.addingProduct(p, t)
    p = 0.9984925082581391.addingProduct(p, t)
    p = (-1.265441437602783).addingProduct(p, t)
    let e = t * exp(p.addingProduct(-z, z))
    return beyond ? 0 : e
  }

  static let invSqrt2 = 0.7071067811865476
  static let invSqrt2Pi = 0.3989422804014327

  /// y = x Phi(x), PyTorch's `nn.GELU()`.
  public static func gelu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
    for i in 0..<n {
      let v = Double(x[i])
      let e = erfc(Swift.abs(v) * invSqrt2) * 0.5
      let phi = v < 0 ? e : 1 - e
      y[i] = Float(v * phi)
    }
  }

  /// dx = dy (Phi(x) + x phi(x)), Phi(x) read off the forward pass's output as y / x (its error is y's, half a
  /// unit in Float's last place; 1/2 at x = 0), so that only phi takes an exponential.
  public static func geluBackward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                  _ dx: UnsafeMutablePointer<Float>, count n: Int) {
    for i in 0..<n {
      let v = Double(x[i])
      let cdf = v == 0 ? 0.5 : Double(y[i]) / v
      let pdf = invSqrt2Pi * exp(Swift.max(-0.5 * v * v, -700))
      dx[i] = Float(Double(dy[i]) * (cdf + v * pdf))
    }
  }

  static let tanhScale = 0.7978845608028654  // sqrt(2 / pi)
  static let cubic = 0.044715

  /// e^(-2u), with -2u clamped to [-700, 700]: (1 + tanh u) / 2 = 1 / (1 + e^(-2u)) and (1 - tanh u) / 2 =
  /// e^(-2u) / (1 + e^(-2u)) without 1 + tanh u, which loses every digit where tanh u is near -1.
  @inline(__always)
  static func expMinusTwice(_ u: Double) -> Double { exp(Swift.min(Swift.max(-2 * u, -700), 700)) }

  /// y = x (1 + tanh u) / 2 = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): PyTorch's
  /// `nn.GELU(approximate="tanh")`.
  public static func geluTanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
    for i in 0..<n {
      let v = Double(x[i])
      let e = expMinusTwice(tanhScale * (v + cubic * v * v * v))
      y[i] = Float(v / (1 + e))
    }
  }

  /// dx = dy (s + 2 x s (1 - s) u'), s = (1 + tanh u) / 2, u' = sqrt(2/pi) (1 + 3 0.044715 x^2).
  public static func geluTanhBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                      count n: Int) {
    for i in 0..<n {
      let v = Double(x[i]), v2 = v * v
      let e = expMinusTwice(tanhScale * (v + cubic * v2 * v))
      let s = 1 / (1 + e), r = e * s  // s and 1 - s
      let du = tanhScale * (1 + 3 * cubic * v2)
      dx[i] = Float(Double(dy[i]) * (s + 2 * v * s * r * du))
    }
  }

  /// x_j = e^(x_j - m) for j < n, returning their sum (a softmax row's numerators; m its largest value, so every
  /// argument is <= 0).
  public static func expShifted(_ x: UnsafeMutablePointer<Float>, count n: Int, minus m: Float) -> Float {
    let m = Double(m)
    for j in 0..<n { x[j] = Float(exp(Swift.max(Double(x[j]) - m, -700))) }
    // Eight running sums, added in a fixed order: the loop above vectorises, and this one nearly.
    var s = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
      s += SIMD8<Float>(UnsafeBufferPointer(start: x + j, count: 8))
      j += 8
    }
    var sum = s.sum()
    while j < n { sum += x[j]; j += 1 }
    return sum
  }
}
