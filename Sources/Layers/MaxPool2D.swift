import TensorCore

/// Max pooling over size x size windows of each channel: (B, C, H, W) -> (B, C, outH, outW). Backward sends each
/// dy to the first position of its window holding the maximum (recomputed from x and y).
public struct MaxPool2D<T: LayerKernels>: PoolingLayer {
  public let inputShape: [Int]
  public let size: Int
  public let stride: Int

  public init(shape: [Int], size: Int = 2, stride: Int? = nil) {
    precondition(shape.count == 3, "MaxPool2D takes (channels, height, width) samples")
    self.inputShape = shape
    self.size = size
    self.stride = stride ?? size
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: [x.batch] + outputShape) { y in
      x.withUnsafeBufferPointer { T.maxPool(Tensor.base($0), Tensor.base(y), geometry(batch: x.batch)) }
    }
  }

  public func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T> {
    var dx = Tensor<T>(zeros: x.shape)
    dx.withUnsafeMutableBufferPointer { dxb in
      Tensor.withBases(x, y, dy) { x0, y, dy in
        T.maxPoolBackward(x: x0, y: y, dy: dy, dx: Tensor.base(dxb), geometry(batch: x.batch))
      }
    }
    return dx
  }

  public var summary: String { "maxpool \(size)x\(size)" }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.MaxPool2d(\(size), stride=\(stride))") }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.node("MaxPool", [x], [.ints("kernel_shape", [size, size]), .ints("strides", [stride, stride])], name: name)
  }
}

/// A pooling layer over size x size windows of each channel, with a stride: its geometry and output shape.
public protocol PoolingLayer<T>: ParameterFreeLayer {
  var size: Int { get }
  var stride: Int { get }
}

extension PoolingLayer {
  func geometry(batch: Int) -> PoolingGeometry {
    PoolingGeometry(planes: batch * inputShape[0], height: inputShape[1], width: inputShape[2], size: size, stride: stride)
  }

  public var outputShape: [Int] {
    let g = geometry(batch: 1)
    return [inputShape[0], g.outputHeight, g.outputWidth]
  }
}

/// `maxpool2d(k, stride=k)` and `avgpool2d(k, stride=k)` (aliases `maxpool`, `avgpool`): `nn.MaxPool2d`, `nn.AvgPool2d`.
public struct PoolItem: LayerDefinition {
  public static let names = ["maxpool2d", "avgpool2d", "maxpool", "avgpool"]
  public static let usage = "maxpool2d(k) or avgpool2d(k)"
  /// Max pooling, else average.
  public var max: Bool
  public var kernel, stride: Int

  public init(max: Bool, kernel: Int, stride: Int) {
    (self.max, self.kernel, self.stride) = (max, kernel, stride)
  }

  public init(_ a: LayerArguments) throws {
    let b = try a.bind(["kernel_size", "stride"], required: 1, example: "\(a.name)(2)")
    let k = try b.count("kernel_size", "the kernel size")
    try self.init(max: a.name.hasPrefix("max"), kernel: k, stride: b.count("stride", "the stride", otherwise: k))
  }

  public var text: String { LayerText.call(max ? "maxpool2d" : "avgpool2d", ["\(kernel)"] + (stride != kernel ? ["stride=\(stride)"] : [])) }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    let (_, h, w) = try input.images(max ? "maxpool2d" : "avgpool2d")
    guard kernel <= h && kernel <= w else { throw LayerProblem("a \(kernel)x\(kernel) window is larger than its input \(input.described)") }
    return max ? MaxPool2D<T>(shape: input.shape, size: kernel, stride: stride) : AvgPool2D<T>(shape: input.shape, size: kernel, stride: stride)
  }
}
