import TensorCore

/// Reshapes each sample to a vector: (B, d1, d2, ...) -> (B, d1 * d2 * ...). No parameters; dx is dy reshaped.
public struct Flatten<T: LayerKernels>: Layer {
  public let inputShape: [Int]
  public var outputShape: [Int] { [inputShape.reduce(1, *)] }
  public var parameters: [ParameterSpec] { [] }

  public init(shape: [Int]) { self.inputShape = shape }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {}

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    x.reshaped([x.batch] + outputShape)
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>? {
    needsInputGradient ? dy.reshaped(x.shape) : nil
  }

  public var summary: String { "flatten" }
}
