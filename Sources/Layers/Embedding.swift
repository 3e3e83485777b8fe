import TensorCore

/// Token ids to vectors (`torch.nn.Embedding(V, D)`): a sample of T ids (B, T) becomes (B, T, D), row t the table's
/// row of id t. W is (V, D), initialised as PyTorch's, N(0, 1). Backward adds each position's dy into its id's row
/// (dW[id] += dy[b, t]); ids have no gradient (dx is zero).
public struct Embedding<T: LayerKernels>: Layer {
  public let positions: Int
  public let vocabulary: Int
  public let width: Int

  public init(positions: Int, vocabulary: Int, width: Int) {
    precondition(positions > 0 && vocabulary > 0 && width > 0, "Embedding needs positions, a vocabulary and a width")
    (self.positions, self.vocabulary, self.width) = (positions, vocabulary, width)
  }

  public var inputShape: [Int] { [positions] }
  public var outputShape: [Int] { [positions, width] }
  public var parameters: [ParameterSpec] { [ParameterSpec(name: "weight", shape: [vocabulary, width])] }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    for i in p.indices { p[i] = T(rng.normal()) }
  }

  /// The id at `x[i]`, checked: a value that is not an id of the vocabulary is a programming error (the data set
  /// makes ids).
  @inline(__always)
  func id(_ v: T) -> Int {
    let k = Int(v)
    precondition(T(k) == v && k >= 0 && k < vocabulary, "token id \(v) is not one of the vocabulary's 0..<\(vocabulary)")
    return k
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    // x is (B, T) ids, W is (V, D), y is (B, T, D)
    let D = width
    return Tensor(shape: [x.batch, positions, D]) { y in
      let W = Tensor.base(p), out = Tensor.base(y)
      x.withUnsafeBufferPointer { x in
        for i in 0..<x.count { (out + i * D).copyScalars(from: W + id(x[i]) * D, count: D) }
      }
    }
  }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    let D = width
    x.withUnsafeBufferPointer { xb in
      dy.withUnsafeBufferPointer { dyb in
        let dW = Tensor.base(dp), g = Tensor.base(dyb)
        for i in 0..<xb.count { T.axpy(D, 1, g + i * D, dW + id(xb[i]) * D) }
      }
    }
    return needsInputGradient ? Tensor(zeros: x.shape) : nil
  }

  public var summary: String { "embedding(\(vocabulary), \(width))" }

  /// Gather of the table's rows, the ids cast to int64 (the graph's input may hold them as floats, as dpt does).
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let ids = graph.node("Cast", [x], [.int("to", 7)], name: name + ".ids")  // 7: INT64
    return graph.node("Gather", [graph.constant(name + ".weight", shape: [vocabulary, width], p, at: 0..<vocabulary * width), ids],
                      [.int("axis", 0)], name: name)
  }

  public var pytorch: PyTorchModule? {
    PyTorchModule("Embedding(\(vocabulary), \(width))", classes: ["Embedding": """
      class Embedding(nn.Embedding):
          \"\"\"nn.Embedding taking its token ids as any number type (dpt's inputs are floats).\"\"\"
          def forward(self, x):
              return super().forward(x.long())
      """])
  }
}

/// A learned table added to a sequence, one row a position (nanoGPT's `wpe`): (B, T, D) + P, P of shape (T, D)
/// initialised N(0, 0.02^2). dP += sum over the batch of dy; dx = dy.
public struct PositionEmbedding<T: LayerKernels>: Layer {
  public let positions: Int
  public let width: Int

  public init(positions: Int, width: Int) {
    precondition(positions > 0 && width > 0, "PositionEmbedding needs positions and a width")
    (self.positions, self.width) = (positions, width)
  }

  public var inputShape: [Int] { [positions, width] }
  public var outputShape: [Int] { [positions, width] }
  public var parameters: [ParameterSpec] { [ParameterSpec(name: "weight", shape: [positions, width])] }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    for i in p.indices { p[i] = T(0.02 * rng.normal()) }
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    var y = x
    y.saved = []
    let n = positions * width
    y.withUnsafeMutableBufferPointer { y in
      for b in 0..<x.batch { T.axpy(n, 1, Tensor.base(p), Tensor.base(y) + b * n) }
    }
    return y
  }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    let n = positions * width
    dy.withUnsafeBufferPointer { g in
      for b in 0..<dy.batch { T.axpy(n, 1, Tensor.base(g) + b * n, Tensor.base(dp)) }
    }
    return needsInputGradient ? dy : nil
  }

  public var summary: String { "position-embedding(\(positions), \(width))" }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.node("Add", [x, graph.constant(name + ".weight", shape: [positions, width], p, at: 0..<positions * width)], name: name)
  }

  public var pytorch: PyTorchModule? {
    PyTorchModule("PositionEmbedding(\(positions), \(width))", classes: ["PositionEmbedding": """
      class PositionEmbedding(nn.Module):
          \"\"\"A learned (T, D) table added to a sequence (dpt's position-embedding).\"\"\"
          def __init__(self, t, d):
              super().__init__()
              self.weight = nn.Parameter(torch.zeros(t, d))

          def forward(self, x):
              return x + self.weight[: x.shape[1]]
      """])
  }
}

/// `embedding(D)`: token ids to vectors of D, the vocabulary V from the data (`nn.Embedding(V, D)`).
public struct EmbeddingItem: LayerDefinition {
  public static let names = ["embedding"]
  public static let usage = "embedding(D)"
  public var width: Int

  public init(width: Int) { self.width = width }

  public init(_ a: LayerArguments) throws {
    let b = try a.bind(["dim"], required: 1, example: "embedding(128)")
    self.init(width: try b.count("dim", "the width"))
  }

  public var text: String { "embedding(\(width))" }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    guard let v = input.vocabulary, input.shape.count == 1 else {
      throw LayerProblem("embedding needs token ids (a text data set: --dataset text:FILE --context T); its input is \(input.described)")
    }
    return Embedding<T>(positions: input.shape[0], vocabulary: v, width: width)
  }
}

/// `position-embedding`: a learned (T, D) table added to a sequence, T the data's context length.
public struct PositionEmbeddingItem: LayerDefinition {
  public static let names = ["position-embedding", "positional-embedding"]
  public static let usage = "position-embedding"
  public init() {}
  public init(_ a: LayerArguments) throws { _ = try a.bind([], example: "position-embedding") }
  public var text: String { "position-embedding" }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    guard input.shape.count == 2 else {
      throw LayerProblem("position-embedding needs a sequence of vectors (after embedding(D)); its input is \(input.described)")
    }
    return PositionEmbedding<T>(positions: input.shape[0], width: input.shape[1])
  }
}
