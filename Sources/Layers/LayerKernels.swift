import RealModule
import TensorCore

/// The element-wise math of layers and losses, one call per buffer (see `Scalar` for why these are protocol
/// requirements with default implementations: `Float` and `Double` conform in this module and are specialised here).
public protocol LayerKernels: Scalar {
  /// y_i = f(x_i)
  static func activate(_ f: Activation, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count: Int)
  /// dx_i = dy_i * f'(x_i), with f'(x) written through x or y = f(x), whichever is cheaper.
  static func activateBackward(_ f: Activation, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
                               dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, count: Int)
  /// Loss of each row and dL/dprediction of the batch sum; see `Loss`. Returns sum_i loss_i in Double.
  static func loss(_ loss: Loss, prediction p: UnsafePointer<Self>, classes: UnsafePointer<Int32>?,
                   targets t: UnsafePointer<Self>?, rows: Int, cols: Int,
                   gradient g: UnsafeMutablePointer<Self>?) -> Double
}

extension Float: LayerKernels {}
extension Double: LayerKernels {}

extension LayerKernels {
  public static func activate(_ f: Activation, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count n: Int) {
    switch f {
    case .identity:
      y.update(from: x, count: n)
    case .sigmoid:
      for i in 0..<n { y[i] = sigmoid(x[i]) }
    case .tanh:
      for i in 0..<n { y[i] = Self.tanh(x[i]) }
    case .relu:
      for i in 0..<n { y[i] = Swift.max(x[i], 0) }
    case .leakyReLU(let slope):
      let a = Self(slope)
      for i in 0..<n { y[i] = x[i] > 0 ? x[i] : a * x[i] }
    case .requ:
      for i in 0..<n { let r = Swift.max(x[i], 0); y[i] = r * r }
    }
  }

  public static func activateBackward(_ f: Activation, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
                                      dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, count n: Int) {
    switch f {
    case .identity:
      dx.update(from: dy, count: n)
    case .sigmoid:  // s' = s (1 - s)
      for i in 0..<n { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    case .tanh:  // tanh' = 1 - tanh^2
      for i in 0..<n { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    case .relu:  // 1 for x > 0, else 0 (0 at the kink, as PyTorch)
      for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : 0 }
    case .leakyReLU(let slope):
      let a = Self(slope)
      for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : a * dy[i] }
    case .requ:  // d/dx max(0, x)^2 = 2 max(0, x)
      for i in 0..<n { dx[i] = 2 * Swift.max(x[i], 0) * dy[i] }
    }
  }

  @inline(__always)
  static func sigmoid(_ x: Self) -> Self {
    // Two branches keep exp's argument <= 0: no overflow for large |x|.
    if x >= 0 { return 1 / (1 + Self.exp(-x)) }
    let e = Self.exp(x)
    return e / (1 + e)
  }

  public static func loss(_ loss: Loss, prediction p: UnsafePointer<Self>, classes: UnsafePointer<Int32>?,
                          targets t: UnsafePointer<Self>?, rows: Int, cols: Int,
                          gradient g: UnsafeMutablePointer<Self>?) -> Double {
    var total = 0.0
    switch loss {
    case .crossEntropy:
      let y = classes!
      for i in 0..<rows {
        let z = p + i * cols
        var m = z[0]
        for j in 1..<cols { m = Swift.max(m, z[j]) }
        var s = Self.zero
        for j in 0..<cols { s += Self.exp(z[j] - m) }
        let logS = Self.log(s)
        let c = Int(y[i])
        total += Double(m + logS - z[c])  // -log softmax(z)_c = log sum_j e^{z_j} - z_c
        if let g {
          let gi = g + i * cols
          let invS = 1 / s
          for j in 0..<cols { gi[j] = Self.exp(z[j] - m) * invS }  // softmax(z)_j - [j == c]
          gi[c] -= 1
        }
      }
    case .mse:
      let t = t!
      let scale = 1 / Self(cols)
      for i in 0..<rows {
        var s = Self.zero
        for j in 0..<cols {
          let k = i * cols + j
          let d = p[k] - t[k]
          s += d * d
          if let g { g[k] = 2 * scale * d }
        }
        total += Double(s * scale)
      }
    }
    return total
  }
}
