import TensorCore

/// Inverted dropout: in training each unit of each sample is kept with probability 1 - p and scaled by 1 / (1 - p),
/// else zeroed; in evaluation it is the identity. dx = dy times the same mask and scale.
///
/// Each mask is a pure function of (seed, epoch, step, layer, global sample index, unit), hashed: the rank that
/// computes a sample, the chunk it falls in and the number of ranks change nothing, so N ranks take exactly the
/// step one rank takes, and `--deterministic` stays bitwise equal for any rank count. (The masks are not PyTorch's,
/// whose generator is sequential; `scripts/torch_oracle.py` applies the same hash inside PyTorch.)
public struct Dropout<T: LayerKernels>: BatchLayer {
  public let inputShape: [Int]
  public let p: Double
  public var outputShape: [Int] { inputShape }
  public var parameters: [ParameterSpec] { [] }

  public init(shape: [Int], p: Double) {
    precondition(p >= 0 && p < 1, "dropout needs 0 <= p < 1")
    inputShape = shape
    self.p = p
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {}

  /// The key of a step's masks for layer `index`: every sample's row of units hashes from it.
  static func key(_ c: StepContext, index: Int) -> UInt32 {
    var h = DropoutMask.mix(UInt32(truncatingIfNeeded: c.seed) ^ DropoutMask.mix(UInt32(truncatingIfNeeded: c.seed >> 32)))
    for v in [c.epoch, c.step, index] { h = DropoutMask.mix(h ^ UInt32(truncatingIfNeeded: v) &* 0x9E37_79B9) }
    return h
  }

  func masked(_ x: Tensor<T>, rows: [Int], key: UInt32) -> Tensor<T> {
    let units = x.sampleSize
    return Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { xb in
        for (r, sample) in rows.enumerated() {
          T.dropout(Tensor.base(xb) + r * units, Tensor.base(y) + r * units, count: units, p: p,
                    key: DropoutMask.mix(key ^ UInt32(truncatingIfNeeded: sample) &* 0x85EB_CA6B))
        }
      }
    }
  }

  public func forward(_ x: [Tensor<T>], parameters: UnsafeBufferPointer<T>, buffers: UnsafeMutableBufferPointer<T>,
                      context: StepContext, index: Int) throws -> [Tensor<T>] {
    guard context.training && p > 0 else { return x }
    let key = Dropout.key(context, index: index)
    return x.indices.map { masked(x[$0], rows: context.rows[$0], key: key) }
  }

  public func backward(_ dy: [Tensor<T>], inputs x: [Tensor<T>], outputs y: [Tensor<T>], parameters: UnsafeBufferPointer<T>,
                       gradients: [UnsafeMutableBufferPointer<T>], context: StepContext, index: Int,
                       needsInputGradient: Bool) throws -> [Tensor<T>]? {
    guard needsInputGradient else { return nil }
    guard context.training && p > 0 else { return dy }
    let key = Dropout.key(context, index: index)
    return dy.indices.map { masked(dy[$0], rows: context.rows[$0], key: key) }  // the same mask, the same scale
  }

  public func evaluate(_ x: Tensor<T>, parameters: UnsafeBufferPointer<T>, buffers: UnsafeBufferPointer<T>) -> Tensor<T> { x }

  public func forward(_ x: Tensor<T>, parameters: UnsafeBufferPointer<T>) -> Tensor<T> { x }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    needsInputGradient ? dy : nil
  }

  public var summary: String { "dropout(\(p))" }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.Dropout(p=\(p))") }

  /// At inference dropout passes its input on.
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters _: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.node("Identity", [x], name: name)
  }
}

/// The hash behind dropout's masks: 32-bit, so that its loop vectorises (AVX2 multiplies 32-bit lanes).
public enum DropoutMask {
  /// lowbias32 (Chris Wellons' integer hash): a bijection of UInt32 with good avalanche.
  @inline(__always)
  public static func mix(_ v: UInt32) -> UInt32 {
    var x = v
    x ^= x >> 16
    x &*= 0x7FEB_352D
    x ^= x >> 15
    x &*= 0x846C_A68B
    x ^= x >> 16
    return x
  }

  /// Whether unit `i` of the row keyed `key` is kept: its hash, as a fraction of 2^32, is at least p.
  @inline(__always)
  public static func keeps(key: UInt32, unit i: Int, threshold: UInt32) -> Bool {
    mix(key ^ UInt32(truncatingIfNeeded: i) &* 0xC2B2_AE35) >= threshold
  }

  /// p as a threshold on 32-bit hashes: floor(p 2^32).
  public static func threshold(_ p: Double) -> UInt32 { UInt32(Swift.min(p * 4_294_967_296, 4_294_967_295)) }
}

/// Dropout's loop.
public protocol DropoutKernels: Scalar {
  /// y_i = x_i / (1 - p) where unit i of the row keyed `key` is kept, else 0.
  static func dropout(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count: Int, p: Double, key: UInt32)
}

extension DropoutKernels {
  public static func dropout(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count: Int, p: Double, key: UInt32) {
    let threshold = DropoutMask.threshold(p), scale = Self(1 / (1 - p))
    for i in 0..<count { y[i] = DropoutMask.keeps(key: key, unit: i, threshold: threshold) ? x[i] * scale : 0 }
  }
}

/// `dropout(p=0.5)`: `nn.Dropout(p)`, on any shape.
public struct DropoutItem: LayerDefinition {
  public static let names = ["dropout"]
  public static let usage = "dropout(p)"
  public var p: Double

  public init(p: Double) { self.p = p }

  public init(_ a: LayerArguments) throws {
    let b = try a.bind(["p"], example: "dropout(0.5)")
    guard let p = try b.number("p", 0.5), p >= 0, p < 1 else {
      throw LayerProblem("p must be at least 0 and below 1 (got \(b.values["p"] ?? ""))")
    }
    self.init(p: p)
  }

  public var text: String { "dropout(\(LayerText.number(p)))" }
  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    if input.vocabulary != nil { throw LayerProblem("dropout needs vectors; its input is \(input.described): add embedding(D) before it") }
    return Dropout<T>(shape: input.shape, p: p)
  }
}
