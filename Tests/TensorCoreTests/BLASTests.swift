import Testing
import TensorCore
import _TestSupport

@Suite struct BLASTests {
  @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
  func gemmMatchesTripleLoop(transposeA: Bool, transposeB: Bool) {
    let (m, n, k) = (7, 5, 11)
    let a = Reference.random(m * k, seed: 1), b = Reference.random(k * n, seed: 2), c0 = Reference.random(m * n, seed: 3)
    let expected = zip(Reference.matmul(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB), c0)
      .map { 0.5 * $0 + 2 * $1 }
    // Double
    var c = c0
    Double.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a,
                lda: transposeA ? m : k, b: b, ldb: transposeB ? k : n, beta: 2, c: &c, ldc: n)
    #expect(Reference.maxRelativeDifference(c, expected) < 1e-13)
    // Float
    var cf = c0.map(Float.init)
    Float.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a.map(Float.init),
               lda: transposeA ? m : k, b: b.map(Float.init), ldb: transposeB ? k : n, beta: 2, c: &cf, ldc: n)
    #expect(Reference.maxRelativeDifference(cf.map(Double.init), expected) < 1e-5)
  }

  @Test func gemvAxpyScalDot() {
    let (m, n) = (6, 4)
    let a = Reference.random(m * n, seed: 4), x = Reference.random(n, seed: 5), xt = Reference.random(m, seed: 6)
    var y = [Double](repeating: 1, count: m)
    Double.gemv(transpose: false, m: m, n: n, alpha: 2, a: a, lda: n, x: x, beta: 3, y: &y)
    let ax = Reference.matmul(a, x, m: m, n: 1, k: n, transposeA: false, transposeB: false)
    #expect(Reference.maxRelativeDifference(y, ax.map { 2 * $0 + 3 }) < 1e-14)
    var yt = [Double](repeating: 0, count: n)
    Double.gemv(transpose: true, m: m, n: n, alpha: 1, a: a, lda: n, x: xt, beta: 0, y: &yt)
    #expect(Reference.maxRelativeDifference(yt, Reference.matmul(a, xt, m: n, n: 1, k: m, transposeA: true, transposeB: false)) < 1e-14)

    var z = x
    Double.axpy(n, -2, x, &z)
    #expect(z == x.map { -$0 })
    Double.scal(n, 3, &z)
    #expect(z == x.map { -3 * $0 })
    #expect(abs(Double.dot(n, x, x) - x.reduce(0) { $0 + $1 * $1 }) < 1e-14)
  }

  @Test func syrkIsTheGramMatrixUpperTriangle() {
    let (rows, cols) = (9, 4)
    let a = Reference.random(rows * cols, seed: 8)
    var c = [Double](repeating: 0, count: cols * cols)
    Double.syrk(transpose: true, n: cols, k: rows, alpha: 1, a: a, lda: cols, beta: 0, c: &c, ldc: cols)
    let gram = Reference.matmul(a, a, m: cols, n: cols, k: rows, transposeA: true, transposeB: false)
    for i in 0..<cols { for j in i..<cols { #expect(abs(c[i * cols + j] - gram[i * cols + j]) < 1e-13) } }
    // The same Gram matrix from A stored by columns: A^T (cols, rows) times its transpose.
    let byColumns = (0..<cols).flatMap { j in (0..<rows).map { a[$0 * cols + j] } }
    var d = [Double](repeating: 0, count: cols * cols)
    Double.syrk(transpose: false, n: cols, k: rows, alpha: 1, a: byColumns, lda: rows, beta: 0, c: &d, ldc: cols)
    for i in 0..<cols { for j in i..<cols { #expect(abs(d[i * cols + j] - gram[i * cols + j]) < 1e-13) } }
  }

  @Test func elementKernels() {
    let x: [Float] = [1, -2, 3, 0.5, 3, -7]  // (2, 3)
    var y = [Float](repeating: 9, count: 6)
    Float.broadcastRows([1, 2, 3], rows: 2, cols: 3, into: &y)
    #expect(y == [1, 2, 3, 1, 2, 3])
    var s: [Float] = [10, 10, 10]
    Float.addColumnSums(x, rows: 2, cols: 3, into: &s)
    #expect(s == [11.5, 11, 6])
    var r = [Int32](repeating: -1, count: 2)
    Float.argmaxRows(x, rows: 2, cols: 3, into: &r)
    #expect(r == [2, 1])  // the first of equal maxima
    #expect(Float.sum(x, count: 6) == -1.5)
    let squares: Double = 1 + 4 + 9 + 0.25 + 9 + 49
    #expect(Float.sumOfSquares(x, count: 6) == squares)
    #expect(Float.maxMagnitude(x, count: 6) == 7)
    #expect(Float.allFinite(x, count: 6))
    #expect(!Float.allFinite([1, .nan], count: 2))
    #expect(!Float.allFinite([.infinity, 1], count: 2))
    var bytes = [Float](repeating: 0, count: 3)
    Float.convert([0, 51, 255] as [UInt8], dividedBy: 255, into: &bytes, count: 3)
    #expect(bytes == [0, 0.2, 1])
  }
}

@Suite struct RandomSourceTests {
  @Test func sameSeedSameNumbersOtherStreamOtherNumbers() {
    var a = RandomSource(seed: 42, stream: 1), b = RandomSource(seed: 42, stream: 1), c = RandomSource(seed: 42, stream: 2)
    let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
    #expect(xa == xb)
    #expect(xa != xc)
  }

  @Test func permutationIsAPermutationAndStable() {
    var rng = RandomSource(seed: 7)
    let p = rng.permutation(1000)
    #expect(p.sorted() == Array(0..<1000))
    #expect(p != Array(0..<1000))
    // Pinned values: a change of the generator or of the shuffle would silently change every run's data order.
    var again = RandomSource(seed: 7)
    #expect(again.permutation(10) == RandomSource.pinnedPermutationOf10Seed7)
  }

  @Test func uniformAndNormalMoments() {
    var rng = RandomSource(seed: 3)
    let n = 200_000
    let u = (0..<n).map { _ in rng.uniform() }
    let mean = u.reduce(0, +) / Double(n)
    #expect(abs(mean - 0.5) < 0.005)
    #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
    let z = (0..<n).map { _ in rng.normal() }
    let zm = z.reduce(0, +) / Double(n)
    let zv = z.reduce(0) { $0 + ($1 - zm) * ($1 - zm) } / Double(n)
    #expect(abs(zm) < 0.01)
    #expect(abs(zv - 1) < 0.02)
    var counts = [Int](repeating: 0, count: 6)
    for _ in 0..<60_000 { counts[rng.index(below: 6)] += 1 }
    #expect(counts.allSatisfy { abs($0 - 10_000) < 400 })
  }
}
