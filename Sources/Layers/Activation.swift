import RealModule
import TensorCore

/// A scalar non-linearity applied element-wise.
///
/// | name | f(x) | f'(x) |
/// |---|---|---|
/// | identity | x | 1 |
/// | sigmoid | 1 / (1 + e^-x) | f(x) (1 - f(x)) |
/// | tanh | tanh x | 1 - tanh^2 x |
/// | relu | max(0, x) | 1 if x > 0 else 0 |
/// | leakyReLU(a) | x if x > 0 else a x | 1 if x > 0 else a |
/// | requ | max(0, x)^2 | 2 max(0, x) |
public enum Activation: Equatable, Sendable, Codable, CustomStringConvertible {
  case identity
  case sigmoid
  case tanh
  case relu
  case leakyReLU(slope: Double)
  case requ

  public var description: String {
    switch self {
    case .identity: "identity"
    case .sigmoid: "sigmoid"
    case .tanh: "tanh"
    case .relu: "relu"
    case .leakyReLU(let a): "leaky-relu(\(a))"
    case .requ: "requ"
    }
  }
}

/// An element-wise activation as a layer without parameters: y = f(x), dx = dy * f'(x).
public struct ActivationLayer<T: LayerKernels>: ParameterFreeLayer {
  public let activation: Activation
  public let inputShape: [Int]
  public var outputShape: [Int] { inputShape }
  public init(_ activation: Activation, shape: [Int]) {
    self.activation = activation
    self.inputShape = shape
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { x in T.activate(activation, Tensor.base(x), Tensor.base(y), count: x.count) }
    }
  }

  public func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T> {
    return Tensor(shape: x.shape) { dx in
      Tensor.withBases(x, y, dy) { x, y, dy in
        T.activateBackward(activation, x: x, y: y, dy: dy, dx: Tensor.base(dx), count: dx.count)
      }
    }
  }

  public var summary: String { "\(activation)" }
}

/// The activations' loops, one call per buffer (requirements with default implementations, specialised per
/// scalar type: see `Scalar`).
public protocol ActivationKernels: Scalar {
  /// y_i = f(x_i)
  static func activate(_ f: Activation, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count: Int)
  /// dx_i = dy_i * f'(x_i), with f'(x) written through x or y = f(x), whichever is cheaper.
  static func activateBackward(_ f: Activation, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
                               dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, count: Int)
}

extension ActivationKernels {
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
}
