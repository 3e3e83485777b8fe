import TensorCore

/// Naive references that the BLAS-backed code is checked against.
public enum Reference {
  /// C = op(A) op(B) with op(A) (m, k) and op(B) (k, n), row-major, by the triple loop in Double.
  public static func matmul(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool)
    -> [Double]
  {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var s = 0.0
        for l in 0..<k {
          let aij = transposeA ? a[l * m + i] : a[i * k + l]
          let blj = transposeB ? b[j * k + l] : b[l * n + j]
          s += aij * blj
        }
        c[i * n + j] = s
      }
    }
    return c
  }

  /// Uniform values in [-1, 1) from a seed.
  public static func random(_ count: Int, seed: UInt64, scale: Double = 1) -> [Double] {
    var rng = RandomSource(seed: seed, stream: 77)
    return (0..<count).map { _ in scale * rng.uniform(-1, 1) }
  }

  /// max_i |a_i - b_i| / max(1, |b_i|)
  public static func maxRelativeDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "comparing \(a.count) values with \(b.count)")
    return zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
  }
}
