import Collectives
import Datasets
import Foundation
import TensorCore
import _Support

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
