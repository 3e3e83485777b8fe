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
  /// PReLU over x viewed as (batch, channels, inner): y = x if x > 0 else a_c x, one learnable slope per channel.
  static func prelu(_ x: UnsafePointer<Self>, slopes a: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>,
                    batch: Int, channels: Int, inner: Int)
  /// PReLU's backward: dx = dy (x > 0) or a_c dy; da_c += sum of dy x over the x <= 0 entries of channel c.
  static func preluBackward(x: UnsafePointer<Self>, slopes a: UnsafePointer<Self>, dy: UnsafePointer<Self>,
                            dx: UnsafeMutablePointer<Self>?, dSlopes: UnsafeMutablePointer<Self>,
                            batch: Int, channels: Int, inner: Int)
  /// Row-wise softmax of x (rows, cols), stable (the row maximum is subtracted first).
  static func softmaxRows(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, rows: Int, cols: Int)
  /// Softmax's Jacobian-vector product per row: dx_i = y_i (dy_i - sum_j dy_j y_j).
  static func softmaxBackward(y: UnsafePointer<Self>, dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>,
                              rows: Int, cols: Int)

  /// Loss of each row and dL/dprediction of the batch sum; see `Loss`. Returns sum_i loss_i in Double.
  static func loss(_ loss: Loss, prediction p: UnsafePointer<Self>, classes: UnsafePointer<Int32>?,
                   targets t: UnsafePointer<Self>?, rows: Int, cols: Int,
                   gradient g: UnsafeMutablePointer<Self>?) -> Double

  /// Unfolds the k x k windows of x (batch, channels, height, width) into columns (channels k k, batch outH outW):
  /// cols[(c k + i) k + j, (b outH + oh) outW + ow] = x[b, c, oh s - pad + i, ow s - pad + j] (0 outside).
  static func im2col(_ x: UnsafePointer<Self>, _ cols: UnsafeMutablePointer<Self>, _ g: ConvolutionGeometry)
  /// The adjoint of im2col: adds every column entry back onto the input position it came from.
  static func col2im(_ cols: UnsafePointer<Self>, _ dx: UnsafeMutablePointer<Self>, _ g: ConvolutionGeometry)
  /// out[b, a, p] = x[a, b, p] for x (A, B, P): swaps the two leading axes.
  static func swapLeadingAxes(_ x: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>, a: Int, b: Int, p: Int)
  /// y[i, :] = v_i for y (rows, cols).
  static func fillRows(_ v: UnsafePointer<Self>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Self>)
  /// s_i += sum_j x[i, j] for x (rows, cols).
  static func addRowSums(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into s: UnsafeMutablePointer<Self>)
  /// Max pooling of x (planes, height, width) over size x size windows with a stride.
  static func maxPool(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ g: PoolingGeometry)
  /// Max pooling's backward: each dy goes to the first position of its window that holds the maximum.
  static func maxPoolBackward(x: UnsafePointer<Self>, y: UnsafePointer<Self>, dy: UnsafePointer<Self>,
                              dx: UnsafeMutablePointer<Self>, _ g: PoolingGeometry)
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

  public static func prelu(_ x: UnsafePointer<Self>, slopes a: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>,
                           batch: Int, channels: Int, inner: Int) {
    var k = 0
    for _ in 0..<batch {
      for c in 0..<channels {
        let ac = a[c]
        for _ in 0..<inner {
          y[k] = x[k] > 0 ? x[k] : ac * x[k]
          k += 1
        }
      }
    }
  }

  public static func preluBackward(x: UnsafePointer<Self>, slopes a: UnsafePointer<Self>, dy: UnsafePointer<Self>,
                                   dx: UnsafeMutablePointer<Self>?, dSlopes: UnsafeMutablePointer<Self>,
                                   batch: Int, channels: Int, inner: Int) {
    var k = 0
    for _ in 0..<batch {
      for c in 0..<channels {
        let ac = a[c]
        var da = Self.zero
        for _ in 0..<inner {
          if x[k] > 0 {
            dx?[k] = dy[k]
          } else {
            dx?[k] = ac * dy[k]
            da += x[k] * dy[k]
          }
          k += 1
        }
        dSlopes[c] += da
      }
    }
  }

  public static func softmaxRows(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, rows: Int, cols: Int) {
    for i in 0..<rows {
      let xi = x + i * cols, yi = y + i * cols
      var m = xi[0]
      for j in 1..<cols { m = Swift.max(m, xi[j]) }
      var s = Self.zero
      for j in 0..<cols { yi[j] = Self.exp(xi[j] - m); s += yi[j] }
      let inv = 1 / s
      for j in 0..<cols { yi[j] *= inv }
    }
  }

  public static func softmaxBackward(y: UnsafePointer<Self>, dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>,
                                     rows: Int, cols: Int) {
    for i in 0..<rows {
      let yi = y + i * cols, dyi = dy + i * cols, dxi = dx + i * cols
      var s = Self.zero
      for j in 0..<cols { s += dyi[j] * yi[j] }
      for j in 0..<cols { dxi[j] = yi[j] * (dyi[j] - s) }
    }
  }
}
