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
public enum Activation: Equatable, Sendable, CustomStringConvertible {
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
public struct ActivationLayer<T: LayerKernels>: Layer {
  public let activation: Activation
  public let inputShape: [Int]
  public var outputShape: [Int] { inputShape }
  public var parameters: [ParameterSpec] { [] }

  public init(_ activation: Activation, shape: [Int]) {
    self.activation = activation
    self.inputShape = shape
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {}

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { x in T.activate(activation, Tensor.base(x), Tensor.base(y), count: x.count) }
    }
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>? {
    guard needsInputGradient else { return nil }
    return Tensor(shape: x.shape) { dx in
      Tensor.withBases(x, y, dy) { x, y, dy in
        T.activateBackward(activation, x: x, y: y, dy: dy, dx: Tensor.base(dx), count: dx.count)
      }
    }
  }

  public var summary: String { "\(activation)" }
}
