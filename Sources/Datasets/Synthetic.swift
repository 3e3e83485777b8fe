import TensorCore
import RealModule

/// Deterministic regression data that any rank can generate row by row: x_ij ~ N(0, 1), beta_j ~ U(-1, 1),
/// y_i = x_i . beta + noise * N(0, 1).
///
/// Every number comes from a counter-based hash (SplitMix64's finaliser) of (seed, row, column), so rank r makes
/// only its own rows, in any order, and the same numbers come out of `scripts/lstsq_reference.py` (numpy, the same
/// arithmetic vectorised) for the benchmark's comparison with numpy.
public enum Synthetic {
  public static let defaultNoise = 0.01

  @inline(__always)
  static func uniform(_ key: UInt64, _ counter: UInt64) -> Double {
    Double(RandomSource.mix(key &+ counter &* 0x9E37_79B9_7F4A_7C15) >> 11) * 0x1p-53
  }

  static func key(_ seed: UInt64, _ stream: UInt64) -> UInt64 { RandomSource.mix(seed &* 0xD1B5_4A32_D192_ED03 &+ stream) }

  /// A standard normal from two hashed uniforms (Box-Muller).
  @inline(__always)
  static func normal(_ key: UInt64, _ counter: UInt64) -> Double {
    let u1 = uniform(key, 2 &* counter), u2 = uniform(key, 2 &* counter &+ 1)
    return (-2 * Double.log(1 - u1)).squareRoot() * Double.cos(2 * Double.pi * u2)
  }

  /// The true coefficients beta (features), uniform in [-1, 1).
  public static func coefficients(features d: Int, seed: UInt64) -> [Double] {
    let k = key(seed, 2)
    return (0..<d).map { 2 * uniform(k, UInt64($0)) - 1 }
  }

  /// Rows `rows` of X (row-major, rows.count x d) and y.
  public static func rows(_ rows: Range<Int>, features d: Int, seed: UInt64, noise: Double = defaultNoise)
    -> (x: [Double], y: [Double])
  {
    let beta = coefficients(features: d, seed: seed)
    let k = key(seed, 1)
    var x = [Double](repeating: 0, count: rows.count * d), y = [Double](repeating: 0, count: rows.count)
    for (r, i) in rows.enumerated() {
      let base = UInt64(i) &* UInt64(d + 1)
      var dot = 0.0
      for j in 0..<d {
        let v = normal(k, base &+ UInt64(j))
        x[r * d + j] = v
        dot += v * beta[j]
      }
      y[r] = dot + noise * normal(k, base &+ UInt64(d))
    }
    return (x, y)
  }

  /// The whole data set as a regression table.
  public static func dataset(rows n: Int, features d: Int, seed: UInt64, noise: Double = defaultNoise) -> Dataset {
    dataset(0..<n, features: d, seed: seed, noise: noise)
  }

  /// The rows `range` of the data set (those a rank generates itself) as a regression table.
  public static func dataset(_ range: Range<Int>, features d: Int, seed: UInt64, noise: Double = defaultNoise) -> Dataset {
    let (x, y) = rows(range, features: d, seed: seed, noise: noise)
    return Dataset(features: .reals(x), count: range.count, sampleShape: [d], targets: y, task: .regression,
                   featureNames: (1...max(d, 1)).prefix(d).map { "x\($0)" }, targetName: "y")
  }
}
