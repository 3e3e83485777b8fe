import _CBLAS

/// A LAPACK routine reported a failure.
public struct LAPACKError: Error, CustomStringConvertible {
  public var routine: String
  public var info: Int
  public var description: String { "\(routine) failed (info \(info))" }
}

/// The LAPACK routines of Debian's OpenBLAS, for Double, on dpt's row-major buffers.
///
/// LAPACK is column-major, and a row-major (m, n) buffer is the column-major (n, m) transpose. So: a symmetric
/// matrix whose upper triangle is filled row-major is, to LAPACK, a matrix with its lower triangle filled ("L");
/// the QR factorisation of a row-major (m, n) matrix is the LQ factorisation (`dgelqf`) of the same buffer, and
/// R = L^T lands, read row-major, in the buffer's first n rows' upper triangle.
public enum LAPACK {
  @inline(__always) private static func check(_ info: Int32, _ routine: String) throws {
    if info != 0 { throw LAPACKError(routine: routine, info: Int(info)) }
  }

  /// Cholesky factorisation A = U^T U of the symmetric positive definite (n, n) matrix whose upper triangle `a`
  /// holds (row-major), in place. Throws with info = j when the leading minor of order j is not positive.
  public static func cholesky(_ a: inout [Double], n: Int) throws {
    var n32 = Int32(n), lda = Int32(max(n, 1)), info: Int32 = 0
    dpotrf_("L", &n32, &a, &lda, &info, 1)
    try check(info, "dpotrf")
  }

  /// Solves A X = B with A's Cholesky factor from `cholesky`. B is (n, k) row-major and is overwritten by X.
  public static func choleskySolve(factor: [Double], n: Int, _ b: inout [Double], k: Int) throws {
    var bt = transpose(b, rows: n, cols: k)
    var n32 = Int32(n), k32 = Int32(k), ld = Int32(max(n, 1)), info: Int32 = 0
    dpotrs_("L", &n32, &k32, factor, &ld, &bt, &ld, &info, 1)
    try check(info, "dpotrs")
    b = transpose(bt, rows: k, cols: n)
  }

  /// (U^T U)^-1 from the upper-triangular U (a Cholesky factor, or the R of a QR factorisation), as a full
  /// symmetric (n, n) matrix.
  public static func inverseFromFactor(_ u: [Double], n: Int) throws -> [Double] {
    var a = u
    var n32 = Int32(n), lda = Int32(max(n, 1)), info: Int32 = 0
    dpotri_("L", &n32, &a, &lda, &info, 1)
    try check(info, "dpotri")
    for i in 0..<n { for j in 0..<i { a[i * n + j] = a[j * n + i] } }  // mirror the upper triangle (row-major)
    return a
  }

  /// The R factor (n, n), upper triangular, row-major, of the QR factorisation of the (m, n) matrix `a`, row-major
  /// or, `byColumns`, column-major (rows beyond min(m, n) are zero).
  ///
  /// Tall and skinny, block by block: each block of `blockRows` rows is copied column-major under the R found so far
  /// and factored with `dgeqrf` (Householder vectors down contiguous columns), so the memory touched at once stays
  /// small and the access is unit-stride. (The LQ factorisation of the row-major buffer seen column-major, `dgelqf`,
  /// needs no copy but walks each Householder vector with a stride of n: 20-50x slower here.)
  public static func qrR(_ a: UnsafePointer<Double>, rows m: Int, cols n: Int, byColumns: Bool = false, blockRows: Int = 8192) throws -> [Double] {
    let (rowStride, columnStride) = byColumns ? (1, m) : (n, 1)
    var r = [Double](repeating: 0, count: n * n)  // row-major
    var have = 0  // rows of r in use: min(rows seen, n)
    let block = max(blockRows, n)
    var stack = [Double](repeating: 0, count: (block + n) * n)  // column-major, leading dimension block + n
    var tau = [Double](repeating: 0, count: n)
    var work: [Double] = []
    var start = 0
    while start < m {
      let rowsHere = min(block, m - start)
      let height = have + rowsHere
      let ld = block + n
      // [R; A[start ..< start + rowsHere]] column-major.
      for j in 0..<n {
        let column = j * ld
        for i in 0..<have { stack[column + i] = r[i * n + j] }
        let source = a + start * rowStride + j * columnStride
        for i in 0..<rowsHere { stack[column + have + i] = source[i * rowStride] }
      }
      var m32 = Int32(height), n32 = Int32(n), lda = Int32(ld), info: Int32 = 0, lwork: Int32 = -1
      if work.isEmpty {
        var query = 0.0
        dgeqrf_(&m32, &n32, &stack, &lda, &tau, &query, &lwork, &info)
        try check(info, "dgeqrf (workspace query)")
        work = [Double](repeating: 0, count: max(Int(query), n * 64, 1))
      }
      lwork = Int32(work.count)
      dgeqrf_(&m32, &n32, &stack, &lda, &tau, &work, &lwork, &info)
      try check(info, "dgeqrf")
      have = min(height, n)
      for i in 0..<n { for j in 0..<n { r[i * n + j] = i < have && j >= i ? stack[j * ld + i] : 0 } }
      start += rowsHere
    }
    return r
  }

  /// Solves R X = B for the upper-triangular (n, n) row-major R. B is (n, k) row-major, overwritten by X.
  public static func triangularSolve(_ r: [Double], n: Int, _ b: inout [Double], k: Int) throws {
    var bt = transpose(b, rows: n, cols: k)
    var n32 = Int32(n), k32 = Int32(k), ld = Int32(max(n, 1)), info: Int32 = 0
    // Column-major the buffer holds R^T (lower); solving (R^T)^T X = B is trans = "T".
    dtrtrs_("L", "T", "N", &n32, &k32, r, &ld, &bt, &ld, &info, 1, 1, 1)
    try check(info, "dtrtrs")
    b = transpose(bt, rows: k, cols: n)
  }

  /// The minimum-norm least-squares solution of A X = B through the SVD (dgelsd), for a possibly rank-deficient
  /// row-major A (m, n) and B (m, k). Singular values below `rcond` times the largest count as zero.
  /// Returns X (n, k) row-major, the singular values and the effective rank.
  public static func minimumNormSolve(_ a: [Double], rows m: Int, cols n: Int, _ b: [Double], k: Int, rcond: Double)
    throws -> (x: [Double], singularValues: [Double], rank: Int)
  {
    var ac = transpose(a, rows: m, cols: n)
    let ldb = max(m, n)
    var bc = [Double](repeating: 0, count: ldb * k)
    for i in 0..<m { for j in 0..<k { bc[j * ldb + i] = b[i * k + j] } }
    var m32 = Int32(m), n32 = Int32(n), k32 = Int32(k), lda = Int32(max(m, 1)), ldb32 = Int32(ldb)
    var s = [Double](repeating: 0, count: max(min(m, n), 1))
    var rc = rcond, rank: Int32 = 0, info: Int32 = 0
    var query = 0.0, lwork: Int32 = -1, iquery: Int32 = 0
    dgelsd_(&m32, &n32, &k32, &ac, &lda, &bc, &ldb32, &s, &rc, &rank, &query, &lwork, &iquery, &info)
    try check(info, "dgelsd (workspace query)")
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: max(Int(lwork), 1))
    var iwork = [Int32](repeating: 0, count: max(Int(iquery), 1))
    dgelsd_(&m32, &n32, &k32, &ac, &lda, &bc, &ldb32, &s, &rc, &rank, &work, &lwork, &iwork, &info)
    try check(info, "dgelsd")
    var x = [Double](repeating: 0, count: n * k)
    for i in 0..<n { for j in 0..<k { x[i * k + j] = bc[j * ldb + i] } }
    return (x, s, Int(rank))
  }

  /// Eigenvalues, ascending, of the symmetric (n, n) matrix whose upper triangle `a` holds.
  public static func symmetricEigenvalues(_ a: [Double], n: Int) throws -> [Double] {
    var c = a
    var n32 = Int32(n), lda = Int32(max(n, 1)), info: Int32 = 0
    var w = [Double](repeating: 0, count: max(n, 1))
    var query = 0.0, lwork: Int32 = -1
    dsyev_("N", "L", &n32, &c, &lda, &w, &query, &lwork, &info, 1, 1)
    try check(info, "dsyev (workspace query)")
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: max(Int(lwork), 1))
    dsyev_("N", "L", &n32, &c, &lda, &w, &work, &lwork, &info, 1, 1)
    try check(info, "dsyev")
    return Array(w.prefix(n))
  }

  /// Singular values, descending, of the row-major (rows, cols) matrix `a` (dgesdd, values only).
  public static func singularValues(_ a: [Double], rows m: Int, cols n: Int) throws -> [Double] {
    var c = transpose(a, rows: m, cols: n)  // column-major
    var m32 = Int32(m), n32 = Int32(n), lda = Int32(max(m, 1)), one: Int32 = 1, info: Int32 = 0
    var s = [Double](repeating: 0, count: max(min(m, n), 1))
    var iwork = [Int32](repeating: 0, count: max(8 * min(m, n), 1))
    var u = 0.0, vt = 0.0, query = 0.0, lwork: Int32 = -1
    dgesdd_("N", &m32, &n32, &c, &lda, &s, &u, &one, &vt, &one, &query, &lwork, &iwork, &info, 1)
    try check(info, "dgesdd (workspace query)")
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: max(Int(lwork), 1))
    dgesdd_("N", &m32, &n32, &c, &lda, &s, &u, &one, &vt, &one, &work, &lwork, &iwork, &info, 1)
    try check(info, "dgesdd")
    return Array(s.prefix(min(m, n)))
  }

  /// The (cols, rows) transpose of a row-major (rows, cols) matrix.
  public static func transpose(_ a: [Double], rows: Int, cols: Int) -> [Double] {
    if rows == 1 || cols == 1 { return a }
    var t = [Double](repeating: 0, count: a.count)
    for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = a[i * cols + j] } }
    return t
  }
}
