import TensorCore

/// Sums and maxima over a row, in eight interleaved partial results combined in a fixed order at the end: one running
/// sum waits on every add before it, and a row of LayerNorm or of attention's scores took several times as long.
enum RowReduction {
  /// sum_j f(j) for j < n.
  @inline(__always)
  static func sum<T: Scalar>(_ n: Int, _ f: (Int) -> T) -> T {
    var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0, s4: T = 0, s5: T = 0, s6: T = 0, s7: T = 0
    var j = 0
    while j + 8 <= n {
      s0 += f(j); s1 += f(j + 1); s2 += f(j + 2); s3 += f(j + 3)
      s4 += f(j + 4); s5 += f(j + 5); s6 += f(j + 6); s7 += f(j + 7)
      j += 8
    }
    while j < n { s0 += f(j); j += 1 }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
  }

  /// max_j x[j] for 0 < n.
  @inline(__always)
  static func max<T: Scalar>(_ x: UnsafePointer<T>, _ n: Int) -> T {
    var m = (x[0], x[0], x[0], x[0], x[0], x[0], x[0], x[0])
    var j = 0
    while j + 8 <= n {
      m.0 = Swift.max(m.0, x[j]); m.1 = Swift.max(m.1, x[j + 1]); m.2 = Swift.max(m.2, x[j + 2]); m.3 = Swift.max(m.3, x[j + 3])
      m.4 = Swift.max(m.4, x[j + 4]); m.5 = Swift.max(m.5, x[j + 5]); m.6 = Swift.max(m.6, x[j + 6]); m.7 = Swift.max(m.7, x[j + 7])
      j += 8
    }
    while j < n { m.0 = Swift.max(m.0, x[j]); j += 1 }
    return Swift.max(Swift.max(Swift.max(m.0, m.1), Swift.max(m.2, m.3)), Swift.max(Swift.max(m.4, m.5), Swift.max(m.6, m.7)))
  }
}
