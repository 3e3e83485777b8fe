/// A seeded pseudo-random source (SplitMix64): the same numbers for the same seed and stream on every machine, rank
/// and Swift version. dpt never uses the standard library's shuffles, whose algorithm may change between releases.
public struct RandomSource: RandomNumberGenerator, Sendable, Codable {
  private var state: UInt64

  /// Its state as 16 hex digits (a JSON number would round 64 bits to a Double's 53).
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(String(state, radix: 16))
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    guard let s = UInt64(try c.decode(String.self), radix: 16) else {
      throw DecodingError.dataCorruptedError(in: c, debugDescription: "a random state is 16 hex digits")
    }
    state = s
  }

  /// `stream` separates independent sequences that share a seed (e.g. one per epoch).
  public init(seed: UInt64, stream: UInt64 = 0) {
    state = RandomSource.mix(seed &+ 0x9E37_79B9_7F4A_7C15) ^ RandomSource.mix(stream &* 0xD1B5_4A32_D192_ED03 &+ 1)
  }

  /// SplitMix64's finaliser: a bijective scramble of 64 bits (also the counter-based hash of `Synthetic`).
  @inlinable @inline(__always)
  public static func mix(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  @inline(__always)
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    return RandomSource.mix(state)
  }

  /// Uniform in [0, 1), 53 random bits.
  public mutating func uniform() -> Double {
    Double(next() >> 11) * 0x1p-53
  }

  /// Uniform in [low, high).
  public mutating func uniform(_ low: Double, _ high: Double) -> Double {
    low + (high - low) * uniform()
  }

  /// Standard normal (Box-Muller).
  public mutating func normal() -> Double {
    let u1 = 1 - uniform()  // (0, 1]
    let u2 = uniform()
    return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
  }

  /// Uniform integer in 0..<n without modulo bias (Lemire's multiply-and-reject).
  public mutating func index(below n: Int) -> Int {
    precondition(n > 0, "index(below:) needs n > 0")
    let bound = UInt64(n)
    var product = next().multipliedFullWidth(by: bound)
    if product.low < bound {
      let threshold = (0 &- bound) % bound
      while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
    }
    return Int(product.high)
  }

  /// A uniformly random permutation of 0..<n (Fisher-Yates).
  public mutating func permutation(_ n: Int) -> [Int] {
    var p = Array(0..<n)
    if n < 2 { return p }
    for i in stride(from: n - 1, to: 0, by: -1) {
      p.swapAt(i, index(below: i + 1))
    }
    return p
  }
}

import RealModule
@inline(__always) private func _log(_ x: Double) -> Double { Double.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Double.cos(x) }
