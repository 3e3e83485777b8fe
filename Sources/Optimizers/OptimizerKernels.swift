import RealModule
import TensorCore

/// The update rules, one loop over a buffer each (see `Scalar` for why they are protocol requirements with default
/// implementations). In all of them g' = g + wd p is the gradient with L2 weight decay wd.
public protocol OptimizerKernels: Scalar {
  /// SGD, PyTorch's rule with dampening 0: v = mu v + g'; d = nesterov ? g' + mu v : v (d = g' without momentum);
  /// p -= lr d.
  static func sgdStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, v: UnsafeMutablePointer<Self>?,
                      count: Int, lr: Self, momentum: Self, weightDecay: Self, nesterov: Bool)
  /// Adagrad: G += g'^2; p -= lr g' / (sqrt(G) + eps).
  static func adagradStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, sum: UnsafeMutablePointer<Self>,
                          count: Int, lr: Self, eps: Self, weightDecay: Self)
  /// RMSprop: v = alpha v + (1 - alpha) g'^2; with momentum b = mu b + g' / (sqrt(v) + eps), p -= lr b;
  /// without, p -= lr g' / (sqrt(v) + eps). `oneMinusAlpha` is 1 - alpha computed in Double, then rounded (as PyTorch
  /// does: 1 - 0.99 rounded to Float is not Float(1) - Float(0.99)).
  static func rmspropStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, v: UnsafeMutablePointer<Self>,
                          buffer: UnsafeMutablePointer<Self>?, count: Int, lr: Self, alpha: Self, oneMinusAlpha: Self,
                          eps: Self, momentum: Self, weightDecay: Self)
  /// Adam (AdamW with decoupled decay lambda > 0): g' = g + wd p; p *= 1 - lr lambda; m = b1 m + (1 - b1) g' (as
  /// PyTorch's lerp: m + (1 - b1)(g' - m)); v = b2 v + (1 - b2) g'^2; p -= (lr / c1) m / (sqrt(v) / sqrt(c2) + eps),
  /// c1 = 1 - b1^t, c2 = 1 - b2^t. The scalars come computed in Double, then rounded, as PyTorch computes them in
  /// Python floats: `shrink` = 1 - lr lambda, `oneMinus` = (1 - b1, 1 - b2) (Float's 1 - 0.999 is 0.00099998713),
  /// `stepSize` = lr / c1, `root2` = sqrt(c2).
  static func adamStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, m: UnsafeMutablePointer<Self>,
                       v: UnsafeMutablePointer<Self>, count: Int, beta2: Self, oneMinus: (beta1: Self, beta2: Self),
                       eps: Self, weightDecay: Self, shrink: Self, stepSize: Self, root2: Self)
}

extension Float: OptimizerKernels {}
extension Double: OptimizerKernels {}

extension OptimizerKernels {
  @_specialize(where Self == Float)
  @_specialize(where Self == Double)
  public static func sgdStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, v: UnsafeMutablePointer<Self>?,
                             count n: Int, lr: Self, momentum mu: Self, weightDecay wd: Self, nesterov: Bool) {
    guard let v else {
      for i in 0..<n { p[i] -= lr * (g[i] + wd * p[i]) }
      return
    }
    if nesterov {
      for i in 0..<n {
        let gi = g[i] + wd * p[i]
        v[i] = mu * v[i] + gi
        p[i] -= lr * (gi + mu * v[i])
      }
    } else {
      for i in 0..<n {
        v[i] = mu * v[i] + g[i] + wd * p[i]
        p[i] -= lr * v[i]
      }
    }
  }

  public static func adagradStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, sum: UnsafeMutablePointer<Self>,
                                 count n: Int, lr: Self, eps: Self, weightDecay wd: Self) {
    for i in 0..<n {
      let gi = g[i] + wd * p[i]
      sum[i] += gi * gi
      p[i] -= lr * gi / (sum[i].squareRoot() + eps)
    }
  }

  public static func rmspropStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, v: UnsafeMutablePointer<Self>,
                                 buffer: UnsafeMutablePointer<Self>?, count n: Int, lr: Self, alpha: Self,
                                 oneMinusAlpha: Self, eps: Self, momentum mu: Self, weightDecay wd: Self) {
    for i in 0..<n {
      let gi = g[i] + wd * p[i]
      v[i] = alpha * v[i] + oneMinusAlpha * gi * gi
      let denominator = v[i].squareRoot() + eps
      if let b = buffer {
        b[i] = mu * b[i] + gi / denominator
        p[i] -= lr * b[i]
      } else {
        p[i] -= lr * gi / denominator
      }
    }
  }

  // Specialised here: the conformances' witnesses called this generic body, one witness-table call an operation.
  @_specialize(where Self == Float)
  @_specialize(where Self == Double)
  public static func adamStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, m: UnsafeMutablePointer<Self>,
                              v: UnsafeMutablePointer<Self>, count n: Int, beta2 b2: Self,
                              oneMinus: (beta1: Self, beta2: Self), eps: Self, weightDecay wd: Self, shrink: Self,
                              stepSize: Self, root2: Self) {
    for i in 0..<n {
      let gi = g[i] + wd * p[i]  // the gradient is the one at the current point, before the decoupled shrink
      p[i] *= shrink  // exact when shrink is 1; a test here instead would keep the loop from vectorising
      m[i] += oneMinus.beta1 * (gi - m[i])
      v[i] = b2 * v[i] + oneMinus.beta2 * gi * gi
      p[i] -= stepSize * m[i] / (v[i].squareRoot() / root2 + eps)
    }
  }

}
