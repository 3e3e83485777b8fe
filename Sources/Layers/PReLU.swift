import TensorCore

/// Parametric ReLU: y = x if x > 0 else a_c x, with one learnable slope a_c per unit (per feature of a vector, per
/// channel of an image, as `torch.nn.PReLU(num_parameters:)`). The slopes live in the flat parameter buffer and the
/// optimizer updates them like any parameter. Initial slope 0.25 (PyTorch's).
///
/// dy/dx = 1 (x > 0) or a_c; dy/da_c = 0 (x > 0) or x, summed over the batch and the channel's positions.
public struct PReLU<T: LayerKernels>: Layer {
  public let inputShape: [Int]
  public var outputShape: [Int] { inputShape }
  public var channels: Int { inputShape[0] }
  var inner: Int { inputShape.dropFirst().reduce(1, *) }

  public init(shape: [Int]) { inputShape = shape }

  /// `nn.PReLU` calls its slopes "weight".
  public var parameters: [ParameterSpec] { [ParameterSpec(name: "slope", shape: [channels], pytorchName: "weight")] }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    for i in p.indices { p[i] = 0.25 }
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { x in
        T.prelu(Tensor.base(x), slopes: Tensor.base(p), Tensor.base(y), batch: x.count / (channels * inner),
                channels: channels, inner: inner)
      }
    }
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>? {
    var dx: Tensor<T>? = needsInputGradient ? Tensor(zeros: x.shape) : nil
    Tensor.withBases(x, dy) { X, dY in
      func run(_ dxp: UnsafeMutablePointer<T>?) {
        T.preluBackward(x: X, slopes: Tensor.base(p), dy: dY, dx: dxp, dSlopes: Tensor.base(dp),
                        batch: x.count / (channels * inner), channels: channels, inner: inner)
      }
      if dx == nil { run(nil) } else { dx!.withUnsafeMutableBufferPointer { run(Tensor.base($0)) } }
    }
    return dx
  }

  public var summary: String { "prelu(\(channels))" }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.PReLU(num_parameters=\(channels))") }

  /// PRelu's slope broadcasts from the right: (C, 1, 1) for images, so that each channel has its own.
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let shape = [channels] + [Int](repeating: 1, count: inputShape.count - 1)
    return graph.node("PRelu", [x, graph.constant(name + ".weight", shape: shape, p, at: 0..<channels)], name: name)
  }
}

/// PReLU's loops.
public protocol PReLUKernels: Scalar {
  /// PReLU over x viewed as (batch, channels, inner): y = x if x > 0 else a_c x, one learnable slope per channel.
  static func prelu(_ x: UnsafePointer<Self>, slopes a: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>,
                    batch: Int, channels: Int, inner: Int)
  /// PReLU's backward: dx = dy (x > 0) or a_c dy; da_c += sum of dy x over the x <= 0 entries of channel c.
  static func preluBackward(x: UnsafePointer<Self>, slopes a: UnsafePointer<Self>, dy: UnsafePointer<Self>,
                            dx: UnsafeMutablePointer<Self>?, dSlopes: UnsafeMutablePointer<Self>,
                            batch: Int, channels: Int, inner: Int)
}

extension PReLUKernels {
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
}

/// `prelu`: `nn.PReLU(num_parameters=C)`, one slope per unit of a vector or channel of an image.
public struct PReLUItem: LayerDefinition {
  public static let names = ["prelu"]
  public static let usage = "prelu"
  public init() {}
  public init(_ a: LayerArguments) throws { _ = try a.bind([], example: "prelu") }
  public var text: String { "prelu" }
  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    guard (input.shape.count == 1 && input.vocabulary == nil) || input.shape.count == 3 else {
      throw LayerProblem("prelu needs a vector or images; its input is \(input.described)")
    }
    return PReLU<T>(shape: input.shape)
  }
}
