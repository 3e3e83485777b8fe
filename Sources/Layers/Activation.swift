import RealModule
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
/// | gelu | x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 | Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi) |
/// | gelu(tanh) | x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3) | (1 + tanh u) / 2 + x (1 - tanh^2 u) u' / 2, u' = sqrt(2/pi) (1 + 3 0.044715 x^2) |
public enum Activation: Equatable, Sendable, Codable, CustomStringConvertible {
  case identity
  case sigmoid
  case tanh
  case relu
  case leakyReLU(slope: Double)
  case requ
  /// PyTorch's `nn.GELU()` (erf) and `nn.GELU(approximate="tanh")`.
  case gelu
  case geluTanh

  public var description: String {
    switch self {
    case .identity: "identity"
    case .sigmoid: "sigmoid"
    case .tanh: "tanh"
    case .relu: "relu"
    case .leakyReLU(let a): "leaky-relu(\(a))"
    case .requ: "requ"
    case .gelu: "gelu"
    case .geluTanh: "gelu(tanh)"
    }
  }
}

/// An element-wise activation as a layer without parameters: y = f(x), dx = dy * f'(x).
public struct ActivationLayer<T: LayerKernels>: ParameterFreeLayer {
  public let activation: Activation
  public let inputShape: [Int]
  public var outputShape: [Int] { inputShape }
  public init(_ activation: Activation, shape: [Int]) {
    self.activation = activation
    self.inputShape = shape
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { x in T.activate(activation, Tensor.base(x), Tensor.base(y), count: x.count) }
    }
  }

  public func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T> {
    return Tensor(shape: x.shape) { dx in
      Tensor.withBases(x, y, dy) { x, y, dy in
        T.activateBackward(activation, x: x, y: y, dy: dy, dx: Tensor.base(dx), count: dx.count)
      }
    }
  }

  public var summary: String { "\(activation)" }

  public var pytorch: PyTorchModule? {
    switch activation {
    case .identity: PyTorchModule("nn.Identity()")
    case .sigmoid: PyTorchModule("nn.Sigmoid()")
    case .tanh: PyTorchModule("nn.Tanh()")
    case .relu: PyTorchModule("nn.ReLU()")
    case .leakyReLU(let slope): PyTorchModule("nn.LeakyReLU(negative_slope=\(slope))")
    case .gelu: PyTorchModule("nn.GELU()")
    case .geluTanh: PyTorchModule("nn.GELU(approximate=\"tanh\")")
    case .requ:
      PyTorchModule("ReQU()", classes: ["ReQU": """
        class ReQU(nn.Module):
            \"\"\"max(0, x)^2, dpt's requ.\"\"\"
            def forward(self, x):
                return torch.relu(x) ** 2
        """])
    }
  }

  /// ONNX's own operator where it has one; requ and the two GELUs (opset 20's Gelu is too new for most runtimes) as
  /// their formulas.
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    switch activation {
    case .identity: return graph.node("Identity", [x], name: name)
    case .sigmoid: return graph.node("Sigmoid", [x], name: name)
    case .tanh: return graph.node("Tanh", [x], name: name)
    case .relu: return graph.node("Relu", [x], name: name)
    case .leakyReLU(let a): return graph.node("LeakyRelu", [x], [.float("alpha", Float(a))], name: name)
    case .requ:
      let r = graph.node("Relu", [x], name: name + ".relu")
      return graph.node("Mul", [r, r], name: name)
    case .gelu, .geluTanh:
      // x (1 + g) / 2, g = erf(x / sqrt 2) or tanh(sqrt(2/pi) (x + 0.044715 x^3))
      let g: String
      if activation == .gelu {
        g = graph.node("Erf", [graph.scaled(x, by: Float(1 / 2.0.squareRoot()), name: name + ".scaled")], name: name + ".erf")
      } else {
        let cube = graph.node("Mul", [graph.node("Mul", [x, x], name: name + ".square"), x], name: name + ".cube")
        let inner = graph.node("Add", [x, graph.scaled(cube, by: 0.044715, name: name + ".cubic")], name: name + ".inner")
        g = graph.node("Tanh", [graph.scaled(inner, by: Float((2 / Double.pi).squareRoot()), name: name + ".u")], name: name + ".tanh")
      }
      let onePlus = graph.node("Add", [g, graph.constant(name + ".one", shape: [], [1])], name: name + ".one_plus")
      return graph.scaled(graph.node("Mul", [x, onePlus], name: name + ".product"), by: 0.5, name: name)
    }
  }
}

/// The element-wise activations: `relu`, `tanh`, `sigmoid`, `identity`, `requ`, `leaky-relu(slope=0.01)`, `gelu`
/// (erf, `nn.GELU()`) and `gelu(tanh)` (`nn.GELU(approximate="tanh")`), on any shape.
public struct ActivationItem: LayerDefinition {
  public static let names = ["relu", "tanh", "sigmoid", "requ", "identity", "leaky-relu", "leakyrelu", "gelu"]
  public static let usage = "relu, tanh, sigmoid, gelu, gelu(tanh), leaky-relu(slope), requ, identity"
  public var activation: Activation

  public init(_ activation: Activation) { self.activation = activation }

  public init(_ a: LayerArguments) throws {
    switch a.name {
    case "leaky-relu", "leakyrelu":
      let b = try a.bind(["slope"], example: "leaky-relu(0.01)")
      self.init(.leakyReLU(slope: try b.number("slope", 0.01)!))
    case "gelu":
      let b = try a.bind(["approximate"], example: "gelu(tanh)")
      self.init(try b.word("approximate", ["none", "tanh"], "none") == "tanh" ? .geluTanh : .gelu)
    default:
      _ = try a.bind([], example: a.name)
      self.init(["relu": .relu, "tanh": .tanh, "sigmoid": .sigmoid, "requ": .requ, "identity": .identity][a.name]!)
    }
  }

  public var text: String {
    switch activation {
    case .leakyReLU(let a): "leaky-relu(\(LayerText.number(a)))"
    default: activation.description
    }
  }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    if input.vocabulary != nil { throw LayerProblem("\(text) needs vectors; its input is \(input.described): add embedding(D) before it") }
    return ActivationLayer<T>(activation, shape: input.shape)
  }
}

/// The activations' loops, one call per buffer (requirements with default implementations, specialised per
/// scalar type: see `Scalar`).
public protocol ActivationKernels: Scalar {
  /// y_i = f(x_i)
  static func activate(_ f: Activation, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count: Int)
  /// dx_i = dy_i * f'(x_i), with f'(x) written through x or y = f(x), whichever is cheaper.
  static func activateBackward(_ f: Activation, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
                               dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, count: Int)
}

extension ActivationKernels {
  public static func activate(_ f: Activation, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count n: Int) {
    activateLoops(f, x, y, count: n)
  }

  public static func activateBackward(_ f: Activation, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
                                      dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, count n: Int) {
    activateBackwardLoops(f, x: x, y: y, dy: dy, dx: dx, count: n)
  }

  /// The loops through the numerics library's functions (libm's erf, exp, tanh), for any scalar type.
  static func activateLoops(_ f: Activation, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count n: Int) {
    switch f {
    case .identity:
      y.update(from: x, count: n)
    case .sigmoid:
      for i in 0..<n { y[i] = sigmoid(x[i]) }
    case .tanh:
      for i in 0..<n { y[i] = Self.tanh(x[i]) }
    case .relu:
      for i in 0..<n { y[i] = Swift.max(x[i], 0) }
    case .leakyReLU(let slope):
      let a = Self(slope)
      for i in 0..<n { y[i] = x[i] > 0 ? x[i] : a * x[i] }
    case .requ:
      for i in 0..<n { let r = Swift.max(x[i], 0); y[i] = r * r }
    case .gelu:
      let s = 1 / Self.sqrt(2)
      for i in 0..<n { y[i] = x[i] * (1 + Self.erf(x[i] * s)) / 2 }
    case .geluTanh:
      let c = Self.sqrt(2 / Self.pi), a: Self = 0.044715
      for i in 0..<n { let v = x[i]; y[i] = v * (1 + Self.tanh(c * (v + a * v * v * v))) / 2 }
    }
  }

  static func activateBackwardLoops(_ f: Activation, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
                                    dy: UnsafePointer<Self>, dx: UnsafeMutablePointer<Self>, count n: Int) {
    switch f {
    case .identity:
      dx.update(from: dy, count: n)
    case .sigmoid:  // s' = s (1 - s)
      for i in 0..<n { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    case .tanh:  // tanh' = 1 - tanh^2
      for i in 0..<n { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    case .relu:  // 1 for x > 0, else 0 (0 at the kink, as PyTorch)
      for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : 0 }
    case .leakyReLU(let slope):
      let a = Self(slope)
      for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : a * dy[i] }
    case .requ:  // d/dx max(0, x)^2 = 2 max(0, x)
      for i in 0..<n { dx[i] = 2 * Swift.max(x[i], 0) * dy[i] }
    case .gelu:  // Phi(x) + x phi(x)
      let s = 1 / Self.sqrt(2), k = 1 / Self.sqrt(2 * Self.pi)
      for i in 0..<n {
        let v = x[i], phi: Self = k * Self.exp(-v * v / 2)
        dx[i] = dy[i] * ((1 + Self.erf(v * s)) / 2 + v * phi)
      }
    case .geluTanh:  // (1 + t) / 2 + x (1 - t^2) u' / 2
      let c = Self.sqrt(2 / Self.pi), a: Self = 0.044715
      for i in 0..<n {
        let v = x[i], v2: Self = v * v, t: Self = Self.tanh(c * (v + a * v2 * v))
        let du: Self = c * (1 + 3 * a * v2)
        let slope: Self = (1 + t) / 2 + v * (1 - t * t) * du / 2
        dx[i] = dy[i] * slope
      }
    }
  }

  @inline(__always)
  static func sigmoid(_ x: Self) -> Self {
    // Two branches keep exp's argument <= 0: no overflow for large |x|.
    if x >= 0 { return 1 / (1 + Self.exp(-x)) }
    let e = Self.exp(x)
    return e / (1 + e)
  }
}
