import RealModule
import TensorCore

/// The update rules, one loop over a buffer each (see `Scalar` for why they are protocol requirements with default
/// implementations).
public protocol OptimizerKernels: Scalar {
  /// SGD with L2 weight decay and (Nesterov) momentum, PyTorch's rule with dampening 0:
  /// g' = g + wd p; v = mu v + g'; d = nesterov ? g' + mu v : v (d = g' without momentum); p -= lr d.
  static func sgdStep(p: UnsafeMutablePointer<Self>, g: UnsafePointer<Self>, v: UnsafeMutablePointer<Self>?,
                      count: Int, lr: Self, momentum: Self, weightDecay: Self, nesterov: Bool)
}

extension Float: OptimizerKernels {}
extension Double: OptimizerKernels {}

extension OptimizerKernels {
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
}
