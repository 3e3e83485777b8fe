import TensorCore

/// A sequence of layers over one flat parameter buffer.
///
/// Layer i owns `parameters[offsets[i] ..< offsets[i + 1]]`; the gradient buffer has the same layout, so one
/// all-reduce of the gradient buffer synchronises every layer.
public struct Network<T: LayerKernels> {
  public let layers: [any Layer<T>]
  /// offsets[i] is where layer i's parameters start; offsets.last is the parameter count.
  public let offsets: [Int]

  public init(_ layers: [any Layer<T>]) {
    precondition(!layers.isEmpty, "a network needs at least one layer")
    for (a, b) in zip(layers, layers.dropFirst()) {
      precondition(a.outputShape == b.inputShape,
                   "layer '\(a.summary)' outputs \(a.outputShape) but '\(b.summary)' takes \(b.inputShape)")
    }
    self.layers = layers
    var offsets = [0]
    for layer in layers { offsets.append(offsets.last! + layer.parameterCount) }
    self.offsets = offsets
  }

  public var parameterCount: Int { offsets.last! }
  public var inputShape: [Int] { layers[0].inputShape }
  public var outputShape: [Int] { layers[layers.count - 1].outputShape }

  /// Every parameter tensor with its name ("1.weight": layer index, then the layer's name) and its flat range.
  public var namedParameters: [(name: String, spec: ParameterSpec, range: Range<Int>)] {
    var out: [(String, ParameterSpec, Range<Int>)] = []
    for (i, layer) in layers.enumerated() {
      var start = offsets[i]
      for spec in layer.parameters {
        out.append(("\(i).\(spec.name)", spec, start..<start + spec.count))
        start += spec.count
      }
    }
    return out
  }

  /// Initial parameters from `seed`: layer i draws from its own stream, so adding a layer does not change the
  /// initial values of the layers before it.
  public func initialParameters(seed: UInt64) -> [T] {
    var p = [T].zeros(parameterCount)
    p.withUnsafeMutableBufferPointer { p in
      for (i, layer) in layers.enumerated() {
        var rng = RandomSource(seed: seed, stream: 0x1A7E_0000 + UInt64(i))
        layer.initialize(UnsafeMutableBufferPointer(rebasing: p[offsets[i]..<offsets[i + 1]]), using: &rng)
      }
    }
    return p
  }

  /// The activations [x, a_1, ..., a_L] of a batch; the last one is the network's output.
  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> [Tensor<T>] {
    precondition(p.count == parameterCount, "network has \(parameterCount) parameters, got \(p.count)")
    var a = [x]
    a.reserveCapacity(layers.count + 1)
    for (i, layer) in layers.enumerated() {
      a.append(layer.forward(a[i], parameters: UnsafeBufferPointer(rebasing: p[offsets[i]..<offsets[i + 1]])))
    }
    return a
  }

  /// The output only, for evaluation.
  public func predict(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    var a = x
    for (i, layer) in layers.enumerated() {
      a = layer.forward(a, parameters: UnsafeBufferPointer(rebasing: p[offsets[i]..<offsets[i + 1]]))
    }
    return a
  }

  /// The pieces of the flat gradient in the order `backward` finishes them (see `Layer.gradientBlocks`): the last
  /// layer's first, each layer's in its own order. Every rank computes the same list, so an exchange can cut the same
  /// buckets from it on every rank.
  public func gradientBlocks(blockElements: Int) -> [Range<Int>] {
    var out: [Range<Int>] = []
    for i in stride(from: layers.count - 1, through: 0, by: -1) {
      out += layers[i].gradientBlocks(blockElements: blockElements).map { $0.lowerBound + offsets[i]..<$0.upperBound + offsets[i] }
    }
    return out
  }

  /// Adds dL/dp into `dp`, given dL/d(output) and the activations of `forward`. Returns dL/dx when asked.
  /// `ready` is called with each range of `gradientBlocks(blockElements:)` as soon as it is final.
  @discardableResult
  public func backward(
    _ dOutput: Tensor<T>, activations a: [Tensor<T>], parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool = false, blockElements: Int = .max,
    ready: (Range<Int>) -> Void = { _ in }
  ) -> Tensor<T>? {
    precondition(dp.count == parameterCount, "network has \(parameterCount) parameters, got \(dp.count) gradients")
    // Layer i needs dL/d(its input) only when a layer before it has parameters (or the caller asked for dL/dx):
    // the first dense layer after a Flatten skips the (B, out) x (out, in) product that nobody would read.
    let firstWithParameters = needsInputGradient ? 0 : (layers.firstIndex { $0.parameterCount > 0 } ?? layers.count)
    var d: Tensor<T>? = dOutput
    for i in stride(from: layers.count - 1, through: firstWithParameters, by: -1) {
      let offset = offsets[i]
      d = layers[i].backward(
        d!, input: a[i], output: a[i + 1],
        parameters: UnsafeBufferPointer(rebasing: p[offsets[i]..<offsets[i + 1]]),
        gradients: UnsafeMutableBufferPointer(rebasing: dp[offsets[i]..<offsets[i + 1]]),
        needsInputGradient: i > firstWithParameters || needsInputGradient, blockElements: blockElements
      ) { ready($0.lowerBound + offset..<$0.upperBound + offset) }
    }
    return needsInputGradient ? d : nil
  }

  public var summary: String { layers.map(\.summary).joined(separator: " | ") }
}
