import Testing
import TensorCore
import _TestSupport

@Suite struct LAPACKTests {
  /// A = M^T M + I: symmetric positive definite (upper triangle is all LAPACK reads).
  func spd(_ n: Int, seed: UInt64) -> [Double] {
    let m = Reference.random(n * n, seed: seed)
    var a = Reference.matmul(m, m, m: n, n: n, k: n, transposeA: true, transposeB: false)
    for i in 0..<n { a[i * n + i] += 1 }
    return a
  }

  @Test func choleskySolveRecoversX() throws {
    let n = 6, k = 2
    let a = spd(n, seed: 1), x = Reference.random(n * k, seed: 2)
    var b = Reference.matmul(a, x, m: n, n: k, k: n, transposeA: false, transposeB: false)
    var factor = a
    for i in 0..<n { for j in 0..<i { factor[i * n + j] = .nan } }  // the lower triangle must not be read
    try LAPACK.cholesky(&factor, n: n)
    try LAPACK.choleskySolve(factor: factor, n: n, &b, k: k)
    #expect(Reference.maxRelativeDifference(b, x) < 1e-12)
    let inverse = try LAPACK.inverseFromFactor(factor, n: n)
    let identity = Reference.matmul(inverse, a, m: n, n: n, k: n, transposeA: false, transposeB: false)
    for i in 0..<n { for j in 0..<n { #expect(abs(identity[i * n + j] - (i == j ? 1 : 0)) < 1e-12) } }
  }

  @Test func choleskyOfASingularMatrixNamesThePivot() {
    var a: [Double] = [1, 1, 0, 1, 1, 0, 0, 0, 1]  // columns 0 and 1 equal
    #expect(throws: LAPACKError.self) { try LAPACK.cholesky(&a, n: 3) }
    do { try LAPACK.cholesky(&a, n: 3) } catch let e as LAPACKError { #expect(e.info == 2) } catch {}
  }

  /// Blocks of 4 rows exercise the stacking of R on the next block: 9 rows are three blocks.
  @Test(arguments: [(9, 4, 4), (4, 4, 8192), (3, 5, 8192), (30, 3, 4), (1000, 7, 64)])
  func qrRSatisfiesRTRIsATA(rows m: Int, cols n: Int, block: Int) throws {
    let a = Reference.random(m * n, seed: 3)
    let r = try a.withUnsafeBufferPointer { try LAPACK.qrR($0.baseAddress!, rows: m, cols: n, blockRows: block) }
    for i in 0..<n { for j in 0..<i { #expect(r[i * n + j] == 0) } }
    let rtr = Reference.matmul(r, r, m: n, n: n, k: n, transposeA: true, transposeB: false)
    let ata = Reference.matmul(a, a, m: n, n: n, k: m, transposeA: true, transposeB: false)
    #expect(Reference.maxRelativeDifference(rtr, ata) < 1e-12)
    if m < n { for i in m..<n { for j in 0..<n { #expect(r[i * n + j] == 0) } } }
    // The same matrix stored by columns gives the same R.
    let byColumns = (0..<n).flatMap { j in (0..<m).map { a[$0 * n + j] } }
    let c = try byColumns.withUnsafeBufferPointer { try LAPACK.qrR($0.baseAddress!, rows: m, cols: n, byColumns: true, blockRows: block) }
    #expect(c == r)
  }

  @Test func triangularSolve() throws {
    let r: [Double] = [2, 1, -1, 0, 3, 0.5, 0, 0, 4]
    let x: [Double] = [1, -2, 0.5, 3, 0.25, -1]  // (3, 2)
    var b = Reference.matmul(r, x, m: 3, n: 2, k: 3, transposeA: false, transposeB: false)
    try LAPACK.triangularSolve(r, n: 3, &b, k: 2)
    #expect(Reference.maxRelativeDifference(b, x) < 1e-14)
  }

  /// Two equal columns: infinitely many least-squares solutions; the minimum-norm one splits the weight equally.
  @Test func minimumNormSolveOnARankDeficientMatrix() throws {
    let m = 8
    let u = Reference.random(m, seed: 5), v = Reference.random(m, seed: 6)
    var a = [Double]()
    for i in 0..<m { a += [u[i], u[i], v[i]] }
    let b = (0..<m).map { 3 * u[$0] - v[$0] }
    let solved = try LAPACK.minimumNormSolve(a, rows: m, cols: 3, b, k: 1, rcond: 1e-12)
    #expect(solved.rank == 2)
    #expect(abs(solved.x[0] - 1.5) < 1e-12 && abs(solved.x[1] - 1.5) < 1e-12 && abs(solved.x[2] + 1) < 1e-12)
    #expect(solved.singularValues.last! < 1e-12)
  }

  /// A = U diag(3, 2, 0.5) V^T with orthogonal U (4x3 columns) and V: its singular values, however it is rotated.
  @Test func singularValues() throws {
    let c = 0.6, s = 0.8
    let u: [Double] = [c, -s, 0, s, c, 0, 0, 0, 1, 0, 0, 0]  // (4, 3), orthonormal columns
    let v: [Double] = [1, 0, 0, 0, c, s, 0, -s, c]  // (3, 3) rotation
    var us = u
    for i in 0..<4 { for (j, d) in [3.0, 2, 0.5].enumerated() { us[i * 3 + j] *= d } }
    let a = Reference.matmul(us, v, m: 4, n: 3, k: 3, transposeA: false, transposeB: true)
    #expect(Reference.maxRelativeDifference(try LAPACK.singularValues(a, rows: 4, cols: 3), [3, 2, 0.5]) < 1e-14)
  }

  @Test func eigenvalues() throws {
    let a: [Double] = [2, 1, 0, 1, 2, 0, 0, 0, 5]
    let w = try LAPACK.symmetricEigenvalues(a, n: 3)
    #expect(Reference.maxRelativeDifference(w, [1, 3, 5]) < 1e-14)
  }
}
