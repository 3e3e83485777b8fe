import RealModule
import TensorCore

/// How L-BFGS picks the step length along its direction d.
public enum LineSearch: String, CaseIterable, Sendable, Codable {
  /// Strong Wolfe conditions (c1 = 1e-4, c2 = 0.9): bracketing then zoom with safeguarded cubic interpolation
  /// (Nocedal & Wright, Algorithms 3.5 and 3.6; what `torch.optim.LBFGS(line_search_fn="strong_wolfe")` does).
  case strongWolfe = "strong-wolfe"
  /// Armijo backtracking: halve t until f(p + t d) <= f(p) + c1 t g.d.
  case backtracking
}
