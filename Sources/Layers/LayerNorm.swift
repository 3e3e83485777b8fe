import RealModule
import TensorCore

/// Layer normalisation over the last dimension (`torch.nn.LayerNorm(D)`): for each row x of D values (a sample of a
/// vector, each position of a sequence),
///
///   mean = (1/D) sum x, var = (1/D) sum (x - mean)^2, xhat = (x - mean) / sqrt(var + eps), y = w xhat + b,
///
/// and backward, with g = dy w:
///
///   dw += sum over rows of dy xhat, db += sum over rows of dy,
///   dx = (g - mean(g) - xhat mean(g xhat)) / sqrt(var + eps).
///
/// Unlike BatchNorm its statistics are each row's own, so it needs nothing from the other samples or ranks. The
/// forward pass keeps each row's mean and 1/std with its output. w starts at 1, b at 0.
///
/// Its loops are generic functions specialised for Float and Double where they are defined (`@_specialize`), so
/// that the layer is this one file and its table line: no kernel protocol to add to `LayerKernels`.
public struct LayerNorm<T: LayerKernels>: Layer {
  public let inputShape: [Int]
  public let eps: Double
  public var outputShape: [Int] { inputShape }
  /// D: the normalised dimension.
  public var width: Int { inputShape.last! }

  public init(shape: [Int], eps: Double = 1e-5) {
    precondition(!shape.isEmpty && eps > 0, "LayerNorm needs a shape and eps > 0")
    inputShape = shape
    self.eps = eps
  }

  public var parameters: [ParameterSpec] {
    [ParameterSpec(name: "weight", shape: [width]), ParameterSpec(name: "bias", shape: [width], isBias: true)]
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    for j in 0..<width {
      p[j] = 1
      p[width + j] = 0
    }
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    let D = width, rows = x.count / D
    var stats = Tensor<T>(zeros: [rows, 2])  // mean, 1/std of each row
    var y = Tensor<T>(shape: x.shape) { y in
      stats.withUnsafeMutableBufferPointer { s in
        x.withUnsafeBufferPointer { x in
          LayerNormLoops.normalize(Tensor.base(x), weight: Tensor.base(p), bias: Tensor.base(p) + D, Tensor.base(y), stats: Tensor.base(s),
                           rows: rows, width: D, eps: T(eps))
        }
      }
    }
    y.saved = [stats]
    return y
  }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    let D = width, rows = x.count / D
    let stats = y.saved.first ?? forward(x, parameters: p).saved[0]
    var dx = Tensor<T>(zeros: needsInputGradient ? x.shape : [0])
    Tensor.withBases(dy, x, stats) { dY, X, S in
      dx.withUnsafeMutableBufferPointer { dX in
        LayerNormLoops.backward(dy: dY, x: X, stats: S, weight: Tensor.base(p), dWeight: Tensor.base(dp), dBias: Tensor.base(dp) + D,
                            dx: needsInputGradient ? Tensor.base(dX) : nil, rows: rows, width: D)
      }
    }
    return needsInputGradient ? dx : nil
  }

  public var summary: String { "layernorm(\(width)\(eps != 1e-5 ? ", eps=\(eps)" : ""))" }
  public var pytorch: PyTorchModule? { PyTorchModule("nn.LayerNorm(\(width), eps=\(eps))") }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let D = width
    return graph.node("LayerNormalization", [x, graph.constant(name + ".weight", shape: [D], p, at: 0..<D),
                                             graph.constant(name + ".bias", shape: [D], p, at: D..<2 * D)],
                      [.int("axis", -1), .float("epsilon", Float(eps))], name: name)
  }
}

/// `layernorm(eps=1e-5)`: `nn.LayerNorm(D)` over the last dimension of a vector or of each position of a sequence.
public struct LayerNormItem: LayerDefinition {
  public static let names = ["layernorm", "layer-norm"]
  public static let usage = "layernorm(eps=1e-5)"
  public var eps: Double

  public init(eps: Double = 1e-5) { self.eps = eps }

  public init(_ a: LayerArguments) throws {
    guard a.positional.isEmpty else { throw LayerProblem("layernorm takes keywords only: layernorm(eps=1e-5)") }
    let b = try a.bind(["eps"], example: "layernorm(eps=1e-5)")
    guard let e = try b.number("eps", 1e-5), e > 0 else { throw LayerProblem("eps must be > 0") }
    self.init(eps: e)
  }

  public var text: String { LayerText.call("layernorm", eps != 1e-5 ? ["eps=\(eps)"] : []) }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    _ = try input.features("layernorm")
    return LayerNorm<T>(shape: input.shape, eps: eps)
  }
}

/// LayerNorm's loops over rows of `width` values (their sums: `RowReduction`).
enum LayerNormLoops {
  /// y = w (x - mean) istd + b per row; stats[2 r] = mean, stats[2 r + 1] = istd of row r (the variance from the
  /// centred values, two passes, as PyTorch's).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  static func normalize<T: Scalar>(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, bias b: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>,
                                   stats: UnsafeMutablePointer<T>, rows: Int, width D: Int, eps: T) {
    for r in 0..<rows {
      let row = x + r * D, out = y + r * D
      let mean = RowReduction.sum(D) { row[$0] } / T(D)
      let squares = RowReduction.sum(D) { let c = row[$0] - mean; return c * c }
      let istd = 1 / (squares / T(D) + eps).squareRoot()
      for j in 0..<D { out[j] = (row[j] - mean) * istd * w[j] + b[j] }
      stats[2 * r] = mean
      stats[2 * r + 1] = istd
    }
  }

  /// dw += sum dy xhat, db += sum dy, and (when dx is given) dx = (g - mean g - xhat mean(g xhat)) istd, g = dy w.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  static func backward<T: Scalar>(dy: UnsafePointer<T>, x: UnsafePointer<T>, stats: UnsafePointer<T>, weight w: UnsafePointer<T>,
                                  dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>, dx: UnsafeMutablePointer<T>?,
                                  rows: Int, width D: Int) {
    for r in 0..<rows {
      let g = dy + r * D, row = x + r * D, mean = stats[2 * r], istd = stats[2 * r + 1]
      for j in 0..<D {
        dWeight[j] += g[j] * (row[j] - mean) * istd
        dBias[j] += g[j]
      }
      guard let dx else { continue }
      let meanG = RowReduction.sum(D) { g[$0] * w[$0] } / T(D)
      let meanGX = RowReduction.sum(D) { g[$0] * w[$0] * ((row[$0] - mean) * istd) } / T(D)
      let out = dx + r * D
      for j in 0..<D {
        let xhat = (row[j] - mean) * istd
        out[j] = (g[j] * w[j] - meanG - xhat * meanGX) * istd
      }
    }
  }
}
