import Layers
import TensorCore

/// Finite-difference checks of analytic derivatives, in Double.
public enum GradientCheck {
  /// The largest relative difference between `analytic` and the central difference (f(x+h) - f(x-h)) / 2h of f at
  /// every coordinate of x. Relative to max(1, |analytic|, |numeric|), so gradients near zero compare absolutely.
  public static func maxRelativeError(
    at x: [Double], analytic: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double
  ) -> (error: Double, index: Int) {
    precondition(x.count == analytic.count, "gradient has \(analytic.count) entries for \(x.count) inputs")
    var worst = (error: 0.0, index: -1)
    var xp = x
    for i in x.indices {
      xp[i] = x[i] + h
      let fp = f(xp)
      xp[i] = x[i] - h
      let fm = f(xp)
      xp[i] = x[i]
      let numeric = (fp - fm) / (2 * h)
      let e = abs(numeric - analytic[i]) / max(1, abs(numeric), abs(analytic[i]))
      if e > worst.error { worst = (e, i) }
    }
    return worst
  }
}
