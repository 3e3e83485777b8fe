import Collectives
import Datasets
import Foundation
import TensorCore
import _Support

/// How `LeastSquares.fit` solves.
public enum LeastSquaresMethod: String, CaseIterable, Sendable {
  /// The normal equations when X^T X is well conditioned, else QR.
  case auto
  /// (X^T X + lambda D) theta = X^T Y by Cholesky: one pass, p^2 numbers all-reduced; loses 2 log10 cond(X) digits.
  case normal
  /// TSQR: a QR factorisation per rank, the small R factors factored again on rank 0; loses log10 cond(X) digits.
  case qr
}

public struct LeastSquaresOptions: Sendable {
  public var method: LeastSquaresMethod
  /// lambda: the fit minimises ||X theta - Y||^2 + lambda ||theta_penalised||^2.
  public var ridge: Double
  /// Whether the ridge penalty applies to the intercept too (statistics: no; SGD with --decay-bias true: yes).
  public var penalizeIntercept: Bool

  /// cond(X^T X) above which `auto` takes QR: the normal equations would keep fewer than half of Double's digits.
  public static let autoThreshold = 1e8

  public init(method: LeastSquaresMethod = .auto, ridge: Double = 0, penalizeIntercept: Bool = false) {
    self.method = method
    self.ridge = ridge
    self.penalizeIntercept = penalizeIntercept
  }
}

/// A least-squares problem the method asked for cannot solve (computed from all-reduced sums: raised on every rank).
public enum LeastSquaresError: RaisedOnEveryRank, Equatable, CustomStringConvertible {
  case noRows
  /// Cholesky found no positive pivot (at the named parameter, when known).
  case singular(column: String?)
  /// X^T X is singular to machine precision.
  case numericallySingular(condition: Double)

  public var description: String {
    switch self {
    case .noRows: "no training rows to fit"
    case .singular(let c): "X^T X is singular: Cholesky found no positive pivot\(c.map { " at '\($0)'" } ?? "")"
    case .numericallySingular(let c): String(format: "X^T X is numerically singular (condition number %.2g)", c)
    }
  }
}

public enum LeastSquares {
  /// Solves min ||X theta - Y||^2 + lambda ||D theta||^2 over the rows of every rank's `block`.
  ///
  /// Normal equations: each rank forms [X Y]^T [X Y] of its rows with one `dsyrk` (X^T X, X^T Y and Y^T Y at once; the
  /// block's columns are its rows there),
  /// one all-reduce, then a Cholesky solve on every rank. QR (TSQR): each rank factors its rows, rank 0 stacks the
  /// small R factors (and sqrt(lambda) D), factors again and solves the triangular system, then broadcasts theta.
  public static func fit(_ block: DesignBlock, options: LeastSquaresOptions, communicator comm: any Communicator)
    throws -> LeastSquaresFit
  {
    // The first collective also lines the ranks up, so the time below is the solve's, not the data loading's.
    let n = Int(try comm.allReduce(Int64(block.rows), .sum))
    guard n > 0 else { throw LeastSquaresError.noRows }
    let start = WallClock.now()
    var fit: LeastSquaresFit
    switch options.method {
    case .qr:
      fit = try tsqr(block, rows: n, options: options, comm: comm, reason: .requested(.qr))
    case .normal, .auto:
      fit = try normalEquations(block, rows: n, options: options, comm: comm)
    }
    fit.seconds = WallClock.now() - start
    if fit.conditionNumber > 1e3 {
      fit.warnings.append(.largeCondition(fit.conditionNumber))
    }
    return fit
  }

  /// The indices of the penalised parameters.
  static func penalized(_ block: DesignBlock, _ options: LeastSquaresOptions) -> [Int] {
    (0..<block.parameters).filter { options.penalizeIntercept || !(block.intercept && $0 == 0) }
  }

  static func normalEquations(_ block: DesignBlock, rows n: Int, options: LeastSquaresOptions,
                              comm: any Communicator) throws -> LeastSquaresFit {
    let p = block.parameters, k = block.outputs, w = block.width
    // G = [X Y]^T [X Y] (upper triangle), summed over the ranks.
    var g = [Double](repeating: 0, count: w * w)
    if block.rows > 0 {
      Double.syrk(transpose: false, n: w, k: block.rows, alpha: 1, a: block.values, lda: block.rows, beta: 0, c: &g, ldc: w)
    }
    try comm.allReduce(&g, .sum)
    var a = [Double](repeating: 0, count: p * p)
    var b = [Double](repeating: 0, count: p * k)
    for i in 0..<p {
      for j in i..<p { a[i * p + j] = g[i * w + j] }
      for c in 0..<k { b[i * k + c] = g[i * w + p + c] }
    }
    for j in penalized(block, options) { a[j * p + j] += options.ridge }
    // cond(X^T X) = lambda_max / lambda_min, exactly (2-norm): an estimate (dpocon) follows a path that turns on the
    // signs of entries near zero, which change with the order the ranks' sums are added in.
    let eigenvalues = try LAPACK.symmetricEigenvalues(a, n: p)
    let conditionA = eigenvalues.first.map { $0 > 0 ? eigenvalues.last! / $0 : .infinity } ?? 1
    do {
      try LAPACK.cholesky(&a, n: p)
    } catch let e as LAPACKError {
      let column = e.info >= 1 && e.info <= block.names.count ? " at '\(block.names[e.info - 1])'" : ""
      if options.method == .auto {
        return try tsqr(block, rows: n, options: options, comm: comm,
                        reason: .automatic("auto: X^T X is singular (Cholesky stopped\(column)); QR with a minimum-norm solution"))
      }
      throw LeastSquaresError.singular(column: e.info >= 1 && e.info <= block.names.count ? block.names[e.info - 1] : nil)
    }
    var warnings: [FitWarning] = []
    var reason = FitReason.requested(.normal)
    if options.method == .auto {
      if conditionA > LeastSquaresOptions.autoThreshold {
        return try tsqr(block, rows: n, options: options, comm: comm,
                        reason: .automatic(String(format: "auto: cond(X^T X) ~ %.2g > %.0g, the normal equations would lose %.0f of 16 digits", conditionA, LeastSquaresOptions.autoThreshold, log10(conditionA))))
      }
      reason = .automatic(String(format: "auto: cond(X^T X) ~ %.2g <= %.0g", conditionA, LeastSquaresOptions.autoThreshold))
    } else if conditionA > 1 / Double.ulpOfOne {
      throw LeastSquaresError.numericallySingular(condition: conditionA)
    } else if conditionA > LeastSquaresOptions.autoThreshold {
      warnings.append(.normalLosesDigits(condition: conditionA))
    }
    try LAPACK.choleskySolve(factor: a, n: p, &b, k: k)
    var inverse: [Double]? = nil
    if options.ridge == 0 && k == 1 && n > p { inverse = try LAPACK.inverseFromFactor(a, n: p) }
    return LeastSquaresFit(
      theta: b, parameters: p, outputs: k, intercept: block.intercept, names: block.names, method: .normal,
      reason: reason, conditionNumber: conditionA.squareRoot(), rank: p, rows: n, ridge: options.ridge,
      warnings: warnings, seconds: 0, inverseGram: inverse)
  }

  static func tsqr(_ block: DesignBlock, rows n: Int, options: LeastSquaresOptions, comm: any Communicator,
                   reason: FitReason) throws -> LeastSquaresFit {
    let p = block.parameters, k = block.outputs, w = block.width
    // This rank's R: w x w (zero rows below min(rows, w)).
    let r: [Double] = block.rows > 0
      ? try block.values.withUnsafeBufferPointer { try LAPACK.qrR($0.baseAddress!, rows: block.rows, cols: w, byColumns: true) }
      : [Double](repeating: 0, count: w * w)
    let gathered = try comm.allGather(r.withUnsafeBytes { Array($0) })
    // Rank 0 solves; the others receive theta and the facts about it.
    var theta = [Double](repeating: 0, count: p * k)
    var facts = [0.0, 0.0, 0.0]  // condition number, rank, minimum-norm (1) or triangular (0)
    var inverse = [Double](repeating: .nan, count: p * p)
    if comm.rank == 0 {
      var stack: [Double] = []
      for bytes in gathered { stack += bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) } }
      let penalties = options.ridge > 0 ? penalized(block, options) : []
      for j in penalties {
        var row = [Double](repeating: 0, count: w)
        row[j] = options.ridge.squareRoot()
        stack += row
      }
      let stackRows = stack.count / w
      let rAll = try stack.withUnsafeBufferPointer { try LAPACK.qrR($0.baseAddress!, rows: stackRows, cols: w) }
      var rxx = [Double](repeating: 0, count: p * p)
      for i in 0..<p {
        for j in i..<p { rxx[i * p + j] = rAll[i * w + j] }
        for c in 0..<k { theta[i * k + c] = rAll[i * w + p + c] }  // Q^T Y
      }
      // cond(X) = cond(R) = s_max / s_min, exactly (2-norm).
      let singular = try LAPACK.singularValues(rxx, rows: p, cols: p)
      facts[0] = singular.last.map { $0 > 0 ? singular[0] / $0 : .infinity } ?? 1
      if 1 / facts[0] > 1e-12 {
        try LAPACK.triangularSolve(rxx, n: p, &theta, k: k)
        facts[1] = Double(p)
        if options.ridge == 0 && k == 1 && n > p { inverse = try LAPACK.inverseFromFactor(rxx, n: p) }
      } else {
        // R is (numerically) singular: the minimum-norm solution of R theta = Q^T Y is that of X theta = Y.
        let solved = try LAPACK.minimumNormSolve(rxx, rows: p, cols: p, theta, k: k,
                                                 rcond: Double.ulpOfOne * Double(max(n, p)))
        theta = solved.x
        facts[1] = Double(solved.rank)
        facts[2] = 1
        if let s = solved.singularValues.first, let m = solved.singularValues.last {
          facts[0] = m > 0 ? s / m : .infinity
        }
      }
    }
    try comm.broadcast(&theta, root: 0)
    try comm.broadcast(&facts, root: 0)
    try comm.broadcast(&inverse, root: 0)
    let rank = Int(facts[1])
    var why = reason
    var warnings: [FitWarning] = []
    if facts[2] == 1 {
      why = why.noting("; X has rank \(rank) of \(p): minimum-norm solution (SVD of R)")
      warnings.append(.rankDeficient(rank: rank, parameters: p))
    }
    return LeastSquaresFit(
      theta: theta, parameters: p, outputs: k, intercept: block.intercept, names: block.names, method: .qr,
      reason: why, conditionNumber: facts[0], rank: rank, rows: n, ridge: options.ridge, warnings: warnings,
      seconds: 0, inverseGram: inverse.allSatisfy { !$0.isNaN } ? inverse : nil)
  }
}

extension Standardization {
  /// The linear map T from coefficients fitted on standardised features to the same model in the features'
  /// original units, theta = T theta': w_j = w'_j / std_j and b = b' - sum_j w'_j mean_j / std_j.
  /// (p, p) row-major with the intercept first.
  public var coefficientMap: [Double] {
    let d = mean.count, p = d + 1
    var t = [Double](repeating: 0, count: p * p)
    t[0] = 1
    for j in 0..<d {
      t[j + 1] = -mean[j] / std[j]
      t[(j + 1) * p + j + 1] = 1 / std[j]
    }
    return t
  }

  /// theta (p, k), intercept row first, fitted on standardised features, in original units.
  public func unstandardize(theta: [Double], outputs k: Int) -> [Double] {
    let p = mean.count + 1
    precondition(theta.count == p * k, "unstandardize needs an intercept row and \(p - 1) feature rows")
    var out = [Double](repeating: 0, count: p * k)
    Double.gemm(transposeA: false, transposeB: false, m: p, n: k, k: p, alpha: 1, a: coefficientMap, lda: p,
                b: theta, ldb: k, beta: 0, c: &out, ldc: k)
    return out
  }

  /// A (p, p) covariance of standardised coefficients in original units: T C T^T.
  public func unstandardize(covariance c: [Double]) -> [Double] {
    let p = mean.count + 1, t = coefficientMap
    var tc = [Double](repeating: 0, count: p * p), out = tc
    Double.gemm(transposeA: false, transposeB: false, m: p, n: p, k: p, alpha: 1, a: t, lda: p, b: c, ldb: p,
                beta: 0, c: &tc, ldc: p)
    Double.gemm(transposeA: false, transposeB: true, m: p, n: p, k: p, alpha: 1, a: tc, lda: p, b: t, ldb: p,
                beta: 0, c: &out, ldc: p)
    return out
  }
}
