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

/// One rank's rows of the augmented design matrix [1 | X | Y], row-major: the intercept column (when the model has
/// one), the features, then the targets.
public struct DesignBlock {
  public var values: [Double]
  public let rows: Int
  public let features: Int
  public let outputs: Int
  public let intercept: Bool
  /// Names of the parameters (rows of theta): "intercept" (when fitted), then the features.
  public var names: [String]

  /// p: the intercept (when fitted) and one coefficient per feature.
  public var parameters: Int { (intercept ? 1 : 0) + features }
  public var width: Int { parameters + outputs }

  public init(rows: Int, features: Int, outputs: Int, intercept: Bool, values: [Double], names: [String]? = nil) {
    precondition(values.count == rows * ((intercept ? 1 : 0) + features + outputs), "design block shape")
    self.rows = rows
    self.features = features
    self.outputs = outputs
    self.intercept = intercept
    self.values = values
    self.names = names ?? ((intercept ? ["intercept"] : []) + (0..<features).map { "x\($0 + 1)" })
  }

  /// The rows `range` of a data set; targets are its values (regression) or one-hot rows (classification).
  public init(_ data: Dataset, rows range: Range<Int>, intercept: Bool) {
    let d = data.featureCount
    let k = data.task == .regression ? data.targetWidth : data.classCount
    let width = (intercept ? 1 : 0) + d + k
    var v = [Double](repeating: 0, count: range.count * width)
    let y: [Double] = range.isEmpty ? [] : data.targetValues(at: range, as: Double.self).scalars
    for (r, i) in range.enumerated() {
      var o = r * width
      if intercept { v[o] = 1; o += 1 }
      switch data.features {
      case .bytes(let b, let s): for j in 0..<d { v[o + j] = Double(b[i * d + j]) / s }
      case .reals(let x): for j in 0..<d { v[o + j] = x[i * d + j] }
      }
      for j in 0..<k { v[o + d + j] = y[r * k + j] }
    }
    let featureNames = data.featureNames.count == d ? data.featureNames : (0..<d).map { "x\($0 + 1)" }
    self.init(rows: range.count, features: d, outputs: k, intercept: intercept, values: v,
              names: (intercept ? ["intercept"] : []) + featureNames)
  }
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

/// A least-squares solution: theta (p, k), with how it was found.
public struct LeastSquaresFit: Sendable {
  /// (p, k) row-major: the intercept's row first (when fitted), then one row per feature.
  public var theta: [Double]
  public var parameters: Int
  public var outputs: Int
  public var intercept: Bool
  public var names: [String]
  /// The method used (normal or qr), and why.
  public var method: LeastSquaresMethod
  public var reason: FitReason
  /// The 2-norm condition number of X, s_max / s_min (of [X; sqrt(lambda) D] with a ridge): the same for any rank count.
  public var conditionNumber: Double
  /// Numerical rank of X (p unless the minimum-norm solution was needed).
  public var rank: Int
  /// Training rows (all ranks).
  public var rows: Int
  public var ridge: Double
  public var warnings: [FitWarning]
  /// Seconds from the first Gram/QR product to the solution on every rank.
  public var seconds: Double
  /// (X^T X)^-1, for standard errors: plain least squares of full rank only.
  public var inverseGram: [Double]?

  /// The prediction of one feature row: [1, x] theta.
  public func predict(_ x: [Double]) -> [Double] {
    let row = (intercept ? [1.0] : []) + x
    return (0..<outputs).map { c in (0..<parameters).reduce(0.0) { $0 + row[$1] * theta[$1 * outputs + c] } }
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

/// Why a fit used its method: asked for, or chosen by `auto` (the text says on what grounds); `note` adds what
/// happened on the way (a rank-deficient R).
public enum FitReason: Equatable, Sendable, CustomStringConvertible {
  case requested(LeastSquaresMethod, note: String = "")
  case automatic(String)

  public var description: String {
    switch self {
    case .requested(let m, let note): "\(m.rawValue) as requested\(note)"
    case .automatic(let why): why
    }
  }

  func noting(_ text: String) -> FitReason {
    switch self {
    case .requested(let m, let note): .requested(m, note: note + text)
    case .automatic(let why): .automatic(why + text)
    }
  }
}

/// What a user should know about a fit.
public enum FitWarning: Equatable, Sendable, CustomStringConvertible {
  /// cond(X) above 1e3.
  case largeCondition(Double)
  /// The normal equations were asked for on an ill-conditioned X^T X.
  case normalLosesDigits(condition: Double)
  /// X has rank `rank` < `parameters`: the minimum-norm solution among many.
  case rankDeficient(rank: Int, parameters: Int)

  public var description: String {
    switch self {
    case .largeCondition(let c):
      String(format: "the condition number is large (%.3g): the features may be strongly collinear or on very different scales", c)
    case .normalLosesDigits(let c):
      String(format: "cond(X^T X) ~ %.2g: the normal equations lose about %.0f of 16 digits", c, log10(c))
    case .rankDeficient(let r, let p): "X has rank \(r) < \(p) parameters: the solution is the one of minimum norm among many"
    }
  }
}

public enum LeastSquares {
  /// Solves min ||X theta - Y||^2 + lambda ||D theta||^2 over the rows of every rank's `block`.
  ///
  /// Normal equations: each rank forms [X Y]^T [X Y] of its rows with one `dsyrk` (X^T X, X^T Y and Y^T Y at once),
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
      Double.syrk(n: w, k: block.rows, alpha: 1, a: block.values, lda: w, beta: 0, c: &g, ldc: w)
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
      ? try block.values.withUnsafeBufferPointer { try LAPACK.qrR($0.baseAddress!, rows: block.rows, cols: w) }
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

/// Sums that describe how a linear model theta fits a data set (reduced over the ranks).
public struct LinearFitQuality: Sendable {
  public var count: Int
  public var outputs: Int
  /// Sum of squared errors over every target value.
  public var squaredErrorSum: Double
  /// Sum of squared deviations of the targets from their column means.
  public var totalSumOfSquares: Double
  /// Samples whose largest prediction is their class (classification data), else nil.
  public var correct: Double?

  /// Mean squared error per target value.
  public var mse: Double { squaredErrorSum / Double(count * outputs) }
  public var rmse: Double { mse.squareRoot() }
  public var r2: Double { 1 - squaredErrorSum / totalSumOfSquares }
  public var accuracy: Double? { correct.map { $0 / Double(count) } }

  /// Evaluates theta (p, k) on `data`: each rank takes a contiguous slice of the rows, in chunks; one all-reduce.
  public static func evaluate(theta: [Double], intercept: Bool, on data: Dataset, communicator comm: any Communicator)
    throws -> LinearFitQuality?
  {
    guard data.count > 0 else { return nil }
    let k = data.task == .regression ? data.targetWidth : data.classCount
    let p = (intercept ? 1 : 0) + data.featureCount
    precondition(theta.count == p * k, "theta is \(theta.count) numbers for \(p) x \(k)")
    let mine = Sharding.slice(0..<data.count, rank: comm.rank, size: comm.size)
    var sums = [Double](repeating: 0, count: 2 + 2 * k)  // sse, correct, sum y_c, sum y_c^2
    var start = mine.lowerBound
    while start < mine.upperBound {
      let range = start..<min(start + 4096, mine.upperBound)
      let block = DesignBlock(data, rows: range, intercept: intercept)
      let w = block.width
      var prediction = [Double](repeating: 0, count: range.count * k)
      block.values.withUnsafeBufferPointer { x in  // [1 X] theta: (rows, p) (p, k), the rows' stride is w
        Double.gemm(transposeA: false, transposeB: false, m: range.count, n: k, k: p, alpha: 1, a: x.baseAddress!,
                    lda: w, b: theta, ldb: k, beta: 0, c: &prediction, ldc: k)
      }
      for r in 0..<range.count {
        var best = 0
        for c in 0..<k {
          let y = block.values[r * w + p + c], e = prediction[r * k + c] - y
          sums[0] += e * e
          sums[2 + c] += y
          sums[2 + k + c] += y * y
          if prediction[r * k + c] > prediction[r * k + best] { best = c }
        }
        if data.task == .classification && Int32(best) == data.labels[range.lowerBound + r] { sums[1] += 1 }
      }
      start = range.upperBound
    }
    try comm.allReduce(&sums, .sum)
    let n = Double(data.count)
    let sst = (0..<k).reduce(0.0) { $0 + sums[2 + k + $1] - sums[2 + $1] * sums[2 + $1] / n }
    return LinearFitQuality(count: data.count, outputs: k, squaredErrorSum: sums[0], totalSumOfSquares: sst,
                            correct: data.task == .classification ? sums[1] : nil)
  }
}

extension LeastSquaresFit {
  /// Standard errors of the coefficients (plain least squares with one output): sqrt(sigma^2 diag((X^T X)^-1)),
  /// sigma^2 = SSE / (n - p). nil with a ridge, several outputs, or rank deficiency.
  public func standardErrors(squaredErrorSum sse: Double) -> [Double]? {
    guard let inv = inverseGram, rows > parameters else { return nil }
    let sigma2 = sse / Double(rows - parameters)
    return (0..<parameters).map { (sigma2 * inv[$0 * parameters + $0]).squareRoot() }
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
