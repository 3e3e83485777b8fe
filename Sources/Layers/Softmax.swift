import TensorCore

/// Softmax as a layer of its own over the last dimension (a sample's vector, or each position's of a sequence):
/// y_i = e^{x_i} / sum_j e^{x_j}, with the full Jacobian-vector product
/// backward, dx_i = y_i (dy_i - sum_j dy_j y_j) (dy_j/dx_i = y_j ([i = j] - y_i)), not the shortcut fused with
/// cross-entropy. Follow it with `--loss nll` or `hinge`, not cross-entropy (which applies softmax itself).
public struct Softmax<T: LayerKernels>: ParameterFreeLayer {
  public let inputShape: [Int]
  public var outputShape: [Int] { inputShape }
  public init(size: Int) { inputShape = [size] }
  public init(shape: [Int]) { inputShape = shape }
  var cols: Int { inputShape[inputShape.count - 1] }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { T.softmaxRows(Tensor.base($0), Tensor.base(y), rows: x.count / cols, cols: cols) }
    }
  }

  public func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T> {
    return Tensor(shape: x.shape) { dx in
      Tensor.withBases(y, dy) { y, dy in
        T.softmaxBackward(y: y, dy: dy, dx: Tensor.base(dx), rows: x.count / cols, cols: cols)
      }
    }
  }

  public var summary: String { "softmax" }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.Softmax(dim=-1)") }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.node("Softmax", [x], [.int("axis", -1)], name: name)
  }
}

/// `softmax`: `nn.Softmax(dim=-1)`, over a vector or each position of a sequence.
public struct SoftmaxItem: LayerDefinition {
  public static let names = ["softmax"]
  public static let usage = "softmax"
  public init() {}
  public init(_ a: LayerArguments) throws { _ = try a.bind([], example: "softmax") }
  public var text: String { "softmax" }
  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    _ = try input.features("softmax")
    return Softmax<T>(shape: input.shape)
  }
}

/// The softmax layer's loops.
public protocol SoftmaxKernels: Scalar {
  /// Row-wise softmax of x (rows, cols), stable (the row maximum is subtracted first).
  static func softmaxRows(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, rows: Int, cols: Int)
  /// Softmax's Jacobian-vector product per row: dx_i = y_i (dy_i - sum_j dy_j y_j).
  static func softmaxBackward(y: UnsafePointer<Self>, dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>,
                              rows: Int, cols: Int)
}

extension SoftmaxKernels {
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
