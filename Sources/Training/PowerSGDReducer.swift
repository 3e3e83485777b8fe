import Collectives
import Layers
import TensorCore

/// `--compress powersgd:R`: rank-R PowerSGD with error feedback (Vogels, Karimireddy & Jaggi, NeurIPS 2019), the
/// algorithm of PyTorch's `powerSGD_hook`.
///
/// Each weight matrix whose rank-R factors are less than half its size is sent as two thin factors. With M the
/// matrix's local gradient plus this rank's error memory e:
///
///     M = G + e                 (rows x cols)
///     P = M Q                   (rows x R; Q from the last step: the warm start)
///     P = sum over ranks of P, then orthogonalised (Gram-Schmidt on its columns)
///     Q_local = M^T P           (cols x R)
///     e = M - P Q_local^T       (what this rank's compressed contribution left out, added back next step)
///     Q = sum over ranks of Q_local
///     G = P Q^T                 (the gradient every rank applies; Q is kept for the next step)
///
/// Biases, other vectors, small matrices and the loss slot travel uncompressed, in the same reduction as the P
/// factors, so a step costs two reductions (P with the rest, then Q), both `BucketReduction`s of float32. The first
/// `warmupSteps` steps use the uncompressed exchange (PyTorch's start_powerSGD_iter). The error is computed from
/// this rank's own Q_local, as in the paper's Algorithm 1 (PyTorch subtracts the averaged approximation instead; the
/// errors summed over the ranks are the same), while the Q reduction is in flight. The result is not the plain sum,
/// so N ranks do not take one rank's step, but every rank applies the same bits and a run is bitwise repeatable for
/// a seed and world size. If a step's P or Q comes back non-finite, the error memory and Q start afresh, so that
/// `--on-nan skip-batch` can go on.
public final class PowerSGDReducer<T: TrainingScalar>: GradientReducer, ReducerReport {
  /// A compressed weight matrix: its range in the flat buffer, its shape, and where its pieces live.
  struct Matrix {
    var range: Range<Int>
    var rows: Int
    var cols: Int
    /// Offsets in the error buffer, the P part of the staging and the Q buffers.
    var errorOffset: Int
    var pOffset: Int
    var qOffset: Int
  }

  let communicator: any Communicator
  public let rank: Int
  public let warmupSteps: Int
  let seed: UInt64
  /// The compressed matrices, in the order the backward pass finishes them (descending ranges).
  let matrices: [Matrix]
  /// The ranges sent as they are (the loss slot included), descending.
  let uncompressed: [Range<Int>]
  let uncompressedCount: Int
  let buffer: LossCarryingBuffer<T>
  /// e for every compressed matrix, then the staging [uncompressed values, P factors], Q (warm start), Q_local and
  /// Q's reduction buffer.
  let error: UnsafeMutableBufferPointer<T>
  let staging: UnsafeMutableBufferPointer<T>
  let q: UnsafeMutableBufferPointer<T>
  let qLocal: UnsafeMutableBufferPointer<T>
  let qReduced: UnsafeMutableBufferPointer<T>
  let first: BucketReduction<T>
  let second: BucketReduction<T>
  private var steps = 0
  private var prepared = 0
  private var finalFrom = 0
  private var inWarmup: Bool { steps < warmupSteps }
  private var lastStepCompressed = false
  private var scratch: [Double] = []

  init(network: Network<T>, communicator: any Communicator, rank R: Int, warmupSteps: Int, seed: UInt64) {
    precondition(R >= 1, "PowerSGD's rank must be at least 1")
    self.communicator = communicator
    self.rank = R
    self.warmupSteps = warmupSteps
    self.seed = seed
    let plan = Self.plan(network, rank: R)
    let (matrices, plain, errorCount, pCount, qCount) = (plan.matrices, plan.uncompressed, plan.errorCount, plan.pCount, plan.qCount)
    let P = network.parameterCount
    self.matrices = matrices
    self.uncompressed = plain
    uncompressedCount = plain.reduce(0) { $0 + $1.count }
    buffer = LossCarryingBuffer(parameters: P)
    error = .allocate(capacity: max(errorCount, 1))
    staging = .allocate(capacity: uncompressedCount + pCount)
    q = .allocate(capacity: max(qCount, 1))
    qLocal = .allocate(capacity: max(qCount, 1))
    qReduced = .allocate(capacity: max(qCount, 1))
    first = BucketReduction<T>(communicator: communicator, count: uncompressedCount + pCount, codec: nil)
    second = BucketReduction<T>(communicator: communicator, count: qCount, codec: nil)
    resetMemory()
  }

  /// Which weight matrices are compressed (those whose rank-R factors are less than half their size) and where each
  /// one's pieces live; the rest travels as it is, the loss slot included. Descending, as the backward pass finishes
  /// them.
  static func plan(_ network: Network<T>, rank R: Int)
    -> (matrices: [Matrix], uncompressed: [Range<Int>], errorCount: Int, pCount: Int, qCount: Int)
  {
    let P = network.parameterCount
    var matrices: [Matrix] = [], plain: [Range<Int>] = [P..<P + 1]
    var errorCount = 0, pCount = 0, qCount = 0
    for named in network.namedParameters.reversed() {
      let shape = named.spec.shape
      let rows = shape.first ?? 1, cols = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1
      if shape.count >= 2 && 2 * (rows + cols) * R < rows * cols {
        matrices.append(Matrix(range: named.range, rows: rows, cols: cols, errorOffset: errorCount, pOffset: pCount,
                               qOffset: qCount))
        errorCount += rows * cols
        pCount += rows * R
        qCount += cols * R
      } else if let last = plain.last, last.lowerBound == named.range.upperBound {
        plain[plain.count - 1] = named.range.lowerBound..<last.upperBound
      } else {
        plain.append(named.range)
      }
    }
    return (matrices, plain, errorCount, pCount, qCount)
  }

  deinit {
    for b in [error, staging, q, qLocal, qReduced] { b.deallocate() }
  }

  /// e = 0 and Q from a seeded normal distribution, the same on every rank.
  func resetMemory() {
    error.zero()
    var rng = RandomSource(seed: seed, stream: 0x9057_5C9D)
    let values = (0..<q.count).map { _ in rng.normal() }
    T.convert(values, into: q.baseAddress!, count: q.count)
  }

  public var summary: String {
    let sent = matrices.map { "\($0.rows)x\($0.cols)" }.joined(separator: ", ")
    return "powersgd rank \(rank) (\(sent.isEmpty ? "no matrix large enough" : "compressing " + sent); \(warmupSteps) uncompressed steps first)"
  }

  public var bytesSent: Int {
    lastStepCompressed ? first.bytesSent + second.bytesSent : ringBytes(buffer.storage.count * MemoryLayout<T>.stride, ranks: communicator.size)
  }

  public var blockElements: Int { .max }
  public var gradient: UnsafeMutableBufferPointer<T> { buffer.gradient }

  public func begin(pieces: Int, piecesInBatch: Int) -> [UnsafeMutableBufferPointer<T>] {
    let buffers = buffer.begin(pieces: pieces, reducer: "PowerSGD")
    finalFrom = buffer.storage.count
    prepared = 0
    return buffers
  }

  public func setLossSums(_ sums: [Double]) { buffer.lossSum = sums[0] }

  /// A matrix the backward pass has finished gets its P factor at once, while the layers below are computed.
  public func ready(_ range: Range<Int>) {
    finalFrom = min(finalFrom, range.lowerBound)
    guard !inWarmup else { return }
    while prepared < matrices.count && matrices[prepared].range.lowerBound >= finalFrom {
      prepare(matrices[prepared])
      prepared += 1
    }
  }

  /// M = G + e (kept in e), P = M Q.
  func prepare(_ m: Matrix) {
    let M = error.baseAddress! + m.errorOffset
    T.axpy(m.rows * m.cols, 1, buffer.storage.baseAddress! + m.range.lowerBound, M)
    T.gemm(transposeA: false, transposeB: false, m: m.rows, n: rank, k: m.cols, alpha: 1, a: M, lda: m.cols,
           b: q.baseAddress! + m.qOffset, ldb: rank, beta: 0, c: pFactor(m), ldc: rank)
  }

  func pFactor(_ m: Matrix) -> UnsafeMutablePointer<T> { staging.baseAddress! + uncompressedCount + m.pOffset }

  public func finish() throws -> Double {
    defer { steps += 1 }
    lastStepCompressed = !inWarmup
    if inWarmup {  // the plain all-reduce
      try communicator.allReduce(buffer.storage, .sum)
      return buffer.lossSum
    }
    let g = buffer.storage.baseAddress!
    while prepared < matrices.count {
      prepare(matrices[prepared])
      prepared += 1
    }
    // The uncompressed values and every P, in one reduction.
    var at = 0
    for r in uncompressed {
      (staging.baseAddress! + at).copyScalars(from: g + r.lowerBound, count: r.count)
      at += r.count
    }
    try first.start(staging.baseAddress!)
    try first.wait()
    at = 0
    for r in uncompressed {
      (g + r.lowerBound).copyScalars(from: staging.baseAddress! + at, count: r.count)
      at += r.count
    }
    let pFinite = T.allFinite(staging.baseAddress! + uncompressedCount, count: staging.count - uncompressedCount)
    // Orthogonalise each P, then Q_local = M^T P and the error e = M - P Q_local^T while the Q reduction travels.
    for m in matrices {
      orthogonalize(pFactor(m), rows: m.rows, columns: rank)
      T.gemm(transposeA: true, transposeB: false, m: m.cols, n: rank, k: m.rows, alpha: 1,
             a: error.baseAddress! + m.errorOffset, lda: m.cols, b: pFactor(m), ldb: rank, beta: 0,
             c: qLocal.baseAddress! + m.qOffset, ldc: rank)
    }
    qReduced.baseAddress!.copyScalars(from: qLocal.baseAddress!, count: qReduced.count)
    try second.start(qReduced.baseAddress!)
    for m in matrices {
      T.gemm(transposeA: false, transposeB: true, m: m.rows, n: m.cols, k: rank, alpha: -1, a: pFactor(m), lda: rank,
             b: qLocal.baseAddress! + m.qOffset, ldb: rank, beta: 1, c: error.baseAddress! + m.errorOffset, ldc: m.cols)
    }
    try second.wait()
    // G = P Q^T; Q is the next step's warm start.
    for m in matrices {
      T.gemm(transposeA: false, transposeB: true, m: m.rows, n: m.cols, k: rank, alpha: 1, a: pFactor(m), lda: rank,
             b: qReduced.baseAddress! + m.qOffset, ldb: rank, beta: 0, c: g + m.range.lowerBound, ldc: m.cols)
    }
    if pFinite && T.allFinite(qReduced.baseAddress!, count: qReduced.count) {
      q.baseAddress!.copyScalars(from: qReduced.baseAddress!, count: q.count)
    } else {
      resetMemory()
    }
    return buffer.lossSum
  }

  /// Gram-Schmidt on the columns of the row-major (rows x columns) matrix a, in Double: each column is made
  /// orthogonal to the ones before it, then scaled to unit length (a column that vanishes, when P has lower rank, becomes zero).
  func orthogonalize(_ a: UnsafeMutablePointer<T>, rows: Int, columns c: Int) {
    if scratch.count < rows * c { scratch = [Double](repeating: 0, count: rows * c) }
    scratch.withUnsafeMutableBufferPointer { v in
      let v = v.baseAddress!
      T.widen(a, into: v, count: rows * c)  // element (i, j) at v[i c + j]
      for j in 0..<c {
        for k in 0..<j {
          var d = 0.0
          for i in 0..<rows { d += v[i * c + k] * v[i * c + j] }
          for i in 0..<rows { v[i * c + j] -= d * v[i * c + k] }
        }
        var norm = 0.0
        for i in 0..<rows { norm += v[i * c + j] * v[i * c + j] }
        let scale = norm > 1e-60 ? 1 / norm.squareRoot() : 0
        for i in 0..<rows { v[i * c + j] *= scale }
      }
      T.convert(v, into: a, count: rows * c)
    }
  }
}
