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
