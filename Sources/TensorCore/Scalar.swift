import RealModule
import _CBLAS

/// A floating-point type the tensor core computes in: `Float` for training, `Double` for gradient checks and least
/// squares.
///
/// Every loop over the elements of a buffer lives in a protocol requirement with a default implementation, so that
/// the conformances of `Float` and `Double` below are specialised in this module. Generic code elsewhere (layers
/// held as existentials, a trainer generic over its scalar) calls each kernel once per buffer and pays one dynamic
/// dispatch, not one per element. Other modules extend the set the same way (`LayerKernels`, `OptimizerKernels`).
public protocol Scalar: Real, BinaryFloatingPoint, Sendable, Codable {
  /// C = alpha * op(A) * op(B) + beta * C, row-major. op(A) is (m, k), op(B) is (k, n), C is (m, n).
  static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
    beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
  /// y = alpha * op(A) x + beta * y, row-major A of (m, n).
  static func gemv(
    transpose: Bool, m: Int, n: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
    x: UnsafePointer<Self>, beta: Self, y: UnsafeMutablePointer<Self>)
  /// C = alpha * A^T A + beta * C for A of (k, n) (transpose), or alpha * A A^T + beta * C for A of (n, k); only the
  /// upper triangle of C (n, n) is written.
  static func syrk(transpose: Bool, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int, beta: Self,
                   c: UnsafeMutablePointer<Self>, ldc: Int)
  /// y += alpha * x
  static func axpy(_ n: Int, _ alpha: Self, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>)
  /// x *= alpha
  static func scal(_ n: Int, _ alpha: Self, _ x: UnsafeMutablePointer<Self>)
  /// sum_i x_i y_i
  static func dot(_ n: Int, _ x: UnsafePointer<Self>, _ y: UnsafePointer<Self>) -> Self
  /// sum_i x_i y_i accumulated in Double (cblas_dsdot for Float).
  static func dotDouble(_ n: Int, _ x: UnsafePointer<Self>, _ y: UnsafePointer<Self>) -> Double

  // MARK: Element kernels shared by several modules (default implementations below)

  /// y_i = Self(x_i) / divisor: bytes (pixels) to scalars, rounded once.
  static func convert(_ x: UnsafePointer<UInt8>, dividedBy divisor: Self, into y: UnsafeMutablePointer<Self>, count: Int)
  /// y_i = Self(x_i)
  static func convert(_ x: UnsafePointer<Double>, into y: UnsafeMutablePointer<Self>, count: Int)
  /// x_i = Double(y_i)
  static func widen(_ y: UnsafePointer<Self>, into x: UnsafeMutablePointer<Double>, count: Int)
  /// sum_i x_i, accumulated in Double.
  static func sum(_ x: UnsafePointer<Self>, count: Int) -> Double
  /// sum_i x_i^2, accumulated in Double.
  static func sumOfSquares(_ x: UnsafePointer<Self>, count: Int) -> Double
  /// true when no element is NaN or infinite.
  static func allFinite(_ x: UnsafePointer<Self>, count: Int) -> Bool
  /// max_i |x_i| (0 for an empty buffer).
  static func maxMagnitude(_ x: UnsafePointer<Self>, count: Int) -> Self
  /// y[i, :] = v for every row i of y (rows, cols): broadcast a row vector (bias) down the batch.
  static func broadcastRows(_ v: UnsafePointer<Self>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Self>)
  /// s[j] += sum_i x[i, j] for x (rows, cols): the bias gradient.
  static func addColumnSums(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into s: UnsafeMutablePointer<Self>)
  /// index of the largest element of each row of x (rows, cols); the first one on ties.
  static func argmaxRows(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into r: UnsafeMutablePointer<Int32>)
  /// acc_i += trunc(x_i * scale) in 64-bit integers: sums that do not depend on the order of addition.
  /// `scale` is a power of two, chosen so that no sum overflows (and x finite). Truncation rather than rounding:
  /// as deterministic, at most one unit off, and a cvttsd2si instead of a libm call per element.
  static func addFixedPoint(_ x: UnsafePointer<Self>, scale: Double, into acc: UnsafeMutablePointer<Int64>, count: Int)
  /// y_i = Self(Double(acc_i) * inverseScale).
  static func fromFixedPoint(_ acc: UnsafePointer<Int64>, inverseScale: Double, into y: UnsafeMutablePointer<Self>, count: Int)
}

extension Scalar {
  @inline(__always)
  public static func convert(_ x: UnsafePointer<UInt8>, dividedBy divisor: Self, into y: UnsafeMutablePointer<Self>, count: Int) {
    for i in 0..<count { y[i] = Self(x[i]) / divisor }
  }

  @inline(__always)
  public static func convert(_ x: UnsafePointer<Double>, into y: UnsafeMutablePointer<Self>, count: Int) {
    for i in 0..<count { y[i] = Self(x[i]) }
  }

  @inline(__always)
  public static func widen(_ y: UnsafePointer<Self>, into x: UnsafeMutablePointer<Double>, count: Int) {
    for i in 0..<count { x[i] = Double(y[i]) }
  }

  public static func sum(_ x: UnsafePointer<Self>, count: Int) -> Double {
    var s = 0.0
    for i in 0..<count { s += Double(x[i]) }
    return s
  }

  public static func sumOfSquares(_ x: UnsafePointer<Self>, count: Int) -> Double {
    var s = 0.0
    for i in 0..<count { let v = Double(x[i]); s += v * v }
    return s
  }

  public static func allFinite(_ x: UnsafePointer<Self>, count: Int) -> Bool {
    // A NaN or an infinity makes the product of the sum with zero NaN; one pass, no branch per element.
    var s = Self.zero
    for i in 0..<count { s += x[i] * 0 }
    return s == 0
  }

  public static func maxMagnitude(_ x: UnsafePointer<Self>, count: Int) -> Self {
    var m = Self.zero
    for i in 0..<count { m = Swift.max(m, Swift.abs(x[i])) }
    return m
  }

  public static func broadcastRows(_ v: UnsafePointer<Self>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Self>) {
    for i in 0..<rows { (y + i * cols).update(from: v, count: cols) }
  }

  public static func addColumnSums(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into s: UnsafeMutablePointer<Self>) {
    for i in 0..<rows {
      let row = x + i * cols
      for j in 0..<cols { s[j] += row[j] }
    }
  }

  public static func addFixedPoint(_ x: UnsafePointer<Self>, scale: Double, into acc: UnsafeMutablePointer<Int64>, count: Int) {
    for i in 0..<count { acc[i] &+= Int64(Double(x[i]) * scale) }
  }

  public static func fromFixedPoint(_ acc: UnsafePointer<Int64>, inverseScale: Double, into y: UnsafeMutablePointer<Self>, count: Int) {
    for i in 0..<count { y[i] = Self(Double(acc[i]) * inverseScale) }
  }

  public static func argmaxRows(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into r: UnsafeMutablePointer<Int32>) {
    for i in 0..<rows {
      let row = x + i * cols
      var best = 0
      for j in 1..<Swift.max(cols, 1) where row[j] > row[best] { best = j }
      r[i] = Int32(best)
    }
  }
}

// MARK: - OpenBLAS for Float and Double

@inline(__always) private func order() -> CBLAS_ORDER { CblasRowMajor }
@inline(__always) private func trans(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: Scalar {
  public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    cblas_sgemm(order(), trans(transposeA), trans(transposeB), blasint(m), blasint(n), blasint(k),
                alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
  }

  public static func gemv(
    transpose: Bool, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>
  ) {
    cblas_sgemv(order(), trans(transpose), blasint(m), blasint(n), alpha, a, blasint(lda), x, 1, beta, y, 1)
  }

  public static func syrk(transpose: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, beta: Float,
                          c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_ssyrk(order(), CblasUpper, trans(transpose), blasint(n), blasint(k), alpha, a, blasint(lda), beta, c, blasint(ldc))
  }

  public static func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    cblas_saxpy(blasint(n), alpha, x, 1, y, 1)
  }

  public static func scal(_ n: Int, _ alpha: Float, _ x: UnsafeMutablePointer<Float>) {
    cblas_sscal(blasint(n), alpha, x, 1)
  }

  public static func dot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
    cblas_sdot(blasint(n), x, 1, y, 1)
  }

  public static func dotDouble(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
    cblas_dsdot(blasint(n), x, 1, y, 1)
  }
}

extension Double: Scalar {
  public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    cblas_dgemm(order(), trans(transposeA), trans(transposeB), blasint(m), blasint(n), blasint(k),
                alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
  }

  public static func gemv(
    transpose: Bool, m: Int, n: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
    x: UnsafePointer<Double>, beta: Double, y: UnsafeMutablePointer<Double>
  ) {
    cblas_dgemv(order(), trans(transpose), blasint(m), blasint(n), alpha, a, blasint(lda), x, 1, beta, y, 1)
  }

  public static func syrk(transpose: Bool, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int, beta: Double,
                          c: UnsafeMutablePointer<Double>, ldc: Int) {
    cblas_dsyrk(order(), CblasUpper, trans(transpose), blasint(n), blasint(k), alpha, a, blasint(lda), beta, c, blasint(ldc))
  }

  public static func axpy(_ n: Int, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
    cblas_daxpy(blasint(n), alpha, x, 1, y, 1)
  }

  public static func scal(_ n: Int, _ alpha: Double, _ x: UnsafeMutablePointer<Double>) {
    cblas_dscal(blasint(n), alpha, x, 1)
  }

  public static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
    cblas_ddot(blasint(n), x, 1, y, 1)
  }

  public static func dotDouble(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
    cblas_ddot(blasint(n), x, 1, y, 1)
  }
}
