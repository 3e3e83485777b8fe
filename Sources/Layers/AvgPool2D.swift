import TensorCore

/// Average pooling over size x size windows of each channel, with a stride (default the size, no padding, as
/// `torch.nn.AvgPool2d(k)`): y = (1/k^2) sum of the window; backward spreads each dy / k^2 over its window.
public struct AvgPool2D<T: LayerKernels>: PoolingLayer {
  public let inputShape: [Int]
  public let size: Int
  public let stride: Int

  public init(shape: [Int], size: Int = 2, stride: Int? = nil) {
    precondition(shape.count == 3, "AvgPool2D takes (channels, height, width) samples")
    self.inputShape = shape
    self.size = size
    self.stride = stride ?? size
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: [x.batch] + outputShape) { y in
      x.withUnsafeBufferPointer { T.avgPool(Tensor.base($0), Tensor.base(y), geometry(batch: x.batch)) }
    }
  }

  public func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T> {
    var dx = Tensor<T>(zeros: x.shape)
    dx.withUnsafeMutableBufferPointer { dxb in
      dy.withUnsafeBufferPointer { T.avgPoolBackward(dy: Tensor.base($0), dx: Tensor.base(dxb), geometry(batch: x.batch)) }
    }
    return dx
  }

  public var summary: String { "avgpool \(size)x\(size)" + (stride != size ? " stride \(stride)" : "") }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.AvgPool2d(\(size), stride=\(stride))") }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.node("AveragePool", [x], [.ints("kernel_shape", [size, size]), .ints("strides", [stride, stride])], name: name)
  }
}

/// Average pooling's loops.
public protocol AveragePoolingKernels: Scalar {
  static func avgPool(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ g: PoolingGeometry)
  /// dx += dy / size^2 over each window (dx starts at zero).
  static func avgPoolBackward(dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, _ g: PoolingGeometry)
}

extension AveragePoolingKernels {
  public static func avgPool(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ g: PoolingGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth, k = g.size, scale = 1 / Self(k * k)
    for n in 0..<g.planes {
      let plane = x + n * g.height * g.width, out = y + n * oh * ow
      for r in 0..<oh {
        for q in 0..<ow {
          var s = Self.zero
          for i in 0..<k {
            let row = plane + (r * g.stride + i) * g.width + q * g.stride
            for j in 0..<k { s += row[j] }
          }
          out[r * ow + q] = s * scale
        }
      }
    }
  }

  public static func avgPoolBackward(dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, _ g: PoolingGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth, k = g.size, scale = 1 / Self(k * k)
    for n in 0..<g.planes {
      let plane = dx + n * g.height * g.width, grad = dy + n * oh * ow
      for r in 0..<oh {
        for q in 0..<ow {
          let d = grad[r * ow + q] * scale
          for i in 0..<k {
            let row = plane + (r * g.stride + i) * g.width + q * g.stride
            for j in 0..<k { row[j] += d }
          }
        }
      }
    }
  }
}
