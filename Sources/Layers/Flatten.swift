import TensorCore

/// Reshapes each sample to a vector: (B, d1, d2, ...) -> (B, d1 * d2 * ...). No parameters; dx is dy reshaped.
public struct Flatten<T: LayerKernels>: ParameterFreeLayer {
  public let inputShape: [Int]
  public var outputShape: [Int] { [inputShape.reduce(1, *)] }
  public init(shape: [Int]) { self.inputShape = shape }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    x.reshaped([x.batch] + outputShape)
  }

  public func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T> {
    dy.reshaped(x.shape)
  }

  public var summary: String { "flatten" }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.Flatten()") }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.node("Flatten", [x], [.int("axis", 1)], name: name)
  }
}

/// `flatten`: `nn.Flatten()`.
public struct FlattenItem: LayerDefinition {
  public static let names = ["flatten"]
  public static let usage = "flatten"
  public init() {}
  public init(_ a: LayerArguments) throws { _ = try a.bind([], example: "flatten") }
  public var text: String { "flatten" }
  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> { Flatten<T>(shape: input.shape) }
}
