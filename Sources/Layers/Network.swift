import TensorCore

/// A sequence of layers over one flat parameter buffer (and one flat buffer of state, for the layers that keep any).
///
/// Layer i owns `parameters[offsets[i] ..< offsets[i + 1]]`; the gradient buffer has the same layout, so one
/// all-reduce of the gradient buffer synchronises every layer. Buffers (BatchNorm's running statistics) live in a
/// second flat buffer, `bufferOffsets`, that no optimizer sees.
public struct Network<T: LayerKernels> {
  public let layers: [any Layer<T>]
  /// offsets[i] is where layer i's parameters start; offsets.last is the parameter count.
  public let offsets: [Int]
  /// bufferOffsets[i] is where layer i's buffers start; bufferOffsets.last is the buffer count.
  public let bufferOffsets: [Int]
  /// The layers that see all pieces of a batch at once (BatchNorm, dropout), by index; nil for the others.
  let batchLayers: [(any BatchLayer<T>)?]

  public init(_ layers: [any Layer<T>]) {
    precondition(!layers.isEmpty, "a network needs at least one layer")
    for (a, b) in zip(layers, layers.dropFirst()) {
      precondition(a.outputShape == b.inputShape,
                   "layer '\(a.summary)' outputs \(a.outputShape) but '\(b.summary)' takes \(b.inputShape)")
    }
    self.layers = layers
    var offsets = [0], bufferOffsets = [0]
    for layer in layers {
      offsets.append(offsets.last! + layer.parameterCount)
      bufferOffsets.append(bufferOffsets.last! + layer.buffers.reduce(0) { $0 + $1.count })
    }
    self.offsets = offsets
    self.bufferOffsets = bufferOffsets
    batchLayers = layers.map { ($0 as? any BatchLayer<T>).flatMap { $0.seesWholeBatch ? $0 : nil } }
  }

  public var parameterCount: Int { offsets.last! }
  public var bufferCount: Int { bufferOffsets.last! }
  public var inputShape: [Int] { layers[0].inputShape }
  public var outputShape: [Int] { layers[layers.count - 1].outputShape }
  /// Whether some layer needs the step's context (its passes then see every piece of a batch at once).
  public var hasBatchLayers: Bool { batchLayers.contains { $0 != nil } }
  /// Whether some layer normalises by statistics of the whole batch (BatchNorm).
  public var hasBatchStatistics: Bool { batchLayers.contains { $0?.usesBatchStatistics == true } }

  /// Every parameter tensor with its name ("1.weight": layer index, then the layer's name) and its flat range.
  public var namedParameters: [(name: String, spec: ParameterSpec, range: Range<Int>)] {
    named(offsets) { $0.parameters }
  }

  /// Every buffer tensor ("1.running_mean") and its range in the flat buffer of state.
  public var namedBuffers: [(name: String, spec: ParameterSpec, range: Range<Int>)] {
    named(bufferOffsets) { $0.buffers }
  }

  func named(_ offsets: [Int], _ specs: (any Layer<T>) -> [ParameterSpec]) -> [(name: String, spec: ParameterSpec, range: Range<Int>)] {
    var out: [(String, ParameterSpec, Range<Int>)] = []
    for (i, layer) in layers.enumerated() {
      var start = offsets[i]
      for spec in specs(layer) {
        let named = spec.nested(in: "\(i)")
        out.append((named.name, named, start..<start + spec.count))
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

  /// The buffers' initial values (running mean 0, running variance 1, counts 0).
  public func initialBuffers() -> [T] { initialBufferValues.map { T($0) } }

  /// The buffers' initial values in Double.
  public var initialBufferValues: [Double] { layers.flatMap { ($0 as? any BufferHolder)?.initialBuffers() ?? [] } }

  func slice(_ p: UnsafeBufferPointer<T>, _ i: Int) -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(rebasing: p[offsets[i]..<offsets[i + 1]])
  }

  /// The activations [x, a_1, ..., a_L] of a batch alone (one piece, a context of its own); the last one is the
  /// network's output.
  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> [Tensor<T>] {
    precondition(p.count == parameterCount, "network has \(parameterCount) parameters, got \(p.count)")
    var a = [x]
    a.reserveCapacity(layers.count + 1)
    for (i, layer) in layers.enumerated() { a.append(layer.forward(a[i], parameters: slice(p, i))) }
    return a
  }

  /// The activations of each piece of a training step's batch, layer by layer: every layer runs on every piece before
  /// the next layer starts, so that a `BatchLayer` sees them all (its statistics are the global batch's). Layers keep
  /// their state in `buffers` (nil: the network has none). `index` gives the step context's index of layer i (a
  /// network inside a residual block numbers its layers apart from the outer ones: `StepContext.nested`).
  public func forward(_ pieces: [Tensor<T>], parameters p: UnsafeBufferPointer<T>, buffers: UnsafeMutableBufferPointer<T>,
                      context: StepContext, index: (Int) -> Int = { $0 }) throws -> [[Tensor<T>]] {
    precondition(p.count == parameterCount, "network has \(parameterCount) parameters, got \(p.count)")
    precondition(buffers.count == bufferCount, "network has \(bufferCount) buffers, got \(buffers.count)")
    var a = pieces.map { [$0] }
    for (i, layer) in layers.enumerated() {
      if let batch = batchLayers[i] {
        let b = UnsafeMutableBufferPointer(rebasing: buffers[bufferOffsets[i]..<bufferOffsets[i + 1]])
        let y = try batch.forward(a.map { $0[i] }, parameters: slice(p, i), buffers: b, context: context, index: index(i))
        for k in a.indices { a[k].append(y[k]) }
      } else {
        for k in a.indices { a[k].append(layer.forward(a[k][i], parameters: slice(p, i))) }
      }
    }
    return a
  }

  /// The output only, for evaluation: BatchNorm with its running statistics (from `buffers`), dropout off.
  public func predict(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>, buffers: UnsafeBufferPointer<T>? = nil) -> Tensor<T> {
    var a = x
    for (i, layer) in layers.enumerated() {
      if let batch = batchLayers[i] {
        let own = buffers.map { UnsafeBufferPointer(rebasing: $0[bufferOffsets[i]..<bufferOffsets[i + 1]]) }
        if let own { a = batch.evaluate(a, parameters: slice(p, i), buffers: own); continue }
        var initial = (layer as? any BufferHolder)?.initialBuffers().map { T($0) } ?? []
        a = initial.withUnsafeMutableBufferPointer { batch.evaluate(a, parameters: slice(p, i), buffers: UnsafeBufferPointer($0)) }
      } else {
        a = layer.forward(a, parameters: slice(p, i))
      }
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

  /// The first layer whose input gradient is needed: a layer before one with parameters needs none (the first dense
  /// layer after a Flatten skips the (B, out) x (out, in) product nobody would read).
  func firstNeeded(_ needsInputGradient: Bool) -> Int {
    needsInputGradient ? 0 : (layers.firstIndex { $0.parameterCount > 0 } ?? layers.count)
  }

  /// Adds dL/dp into `dp`, given dL/d(output) and the activations of `forward` (one batch alone). Returns dL/dx when
  /// asked. `ready` is called with each range of `gradientBlocks(blockElements:)` as soon as it is final.
  @discardableResult
  public func backward(
    _ dOutput: Tensor<T>, activations a: [Tensor<T>], parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool = false, blockElements: Int = .max,
    ready: (Range<Int>) -> Void = { _ in }
  ) -> Tensor<T>? {
    precondition(dp.count == parameterCount, "network has \(parameterCount) parameters, got \(dp.count) gradients")
    let first = firstNeeded(needsInputGradient)
    var d: Tensor<T>? = dOutput
    for i in stride(from: layers.count - 1, through: first, by: -1) {
      let offset = offsets[i]
      d = layers[i].backward(
        d!, input: a[i], output: a[i + 1], parameters: slice(p, i),
        gradients: UnsafeMutableBufferPointer(rebasing: dp[offsets[i]..<offsets[i + 1]]),
        needsInputGradient: i > first || needsInputGradient, blockElements: blockElements
      ) { ready($0.lowerBound + offset..<$0.upperBound + offset) }
    }
    return needsInputGradient ? d : nil
  }

  /// The backward pass of a training step's pieces, layer by layer (as `forward(_:parameters:buffers:context:)`):
  /// piece k's parameter gradients are added into `gradients[k]`. With one piece, `ready` is told each range of
  /// `gradientBlocks(blockElements:)` as soon as it is final; with several, each layer's range once every piece has
  /// it. `observe`, when given, is told each layer's dL/d(output) of every piece before that layer's backward pass
  /// (and then every layer's is computed, down to the first). Returns dL/dx of every piece when asked.
  @discardableResult
  public func backward(
    _ dOutputs: [Tensor<T>], activations a: [[Tensor<T>]], parameters p: UnsafeBufferPointer<T>,
    gradients dp: [UnsafeMutableBufferPointer<T>], context: StepContext, needsInputGradient: Bool = false,
    blockElements: Int = .max, ready: (Range<Int>) -> Void = { _ in }, observe: ((Int, [Tensor<T>]) -> Void)? = nil,
    index: (Int) -> Int = { $0 }
  ) throws -> [Tensor<T>]? {
    let first = firstNeeded(observe != nil || needsInputGradient)
    var d = dOutputs
    for i in stride(from: layers.count - 1, through: first, by: -1) {
      observe?(i, d)
      let offset = offsets[i], needs = i > first || needsInputGradient
      let own = dp.map { UnsafeMutableBufferPointer(rebasing: $0[offsets[i]..<offsets[i + 1]]) }
      if let batch = batchLayers[i] {
        let dx = try batch.backward(d, inputs: a.map { $0[i] }, outputs: a.map { $0[i + 1] }, parameters: slice(p, i),
                                    gradients: own, context: context, index: index(i), needsInputGradient: needs)
        if let dx { d = dx }
        for block in layers[i].gradientBlocks(blockElements: blockElements) { ready(block.lowerBound + offset..<block.upperBound + offset) }
      } else if d.count == 1 {
        d[0] = layers[i].backward(d[0], input: a[0][i], output: a[0][i + 1], parameters: slice(p, i), gradients: own[0],
                                  needsInputGradient: needs, blockElements: blockElements) {
          ready($0.lowerBound + offset..<$0.upperBound + offset)
        } ?? d[0]
      } else {
        for k in d.indices {
          d[k] = layers[i].backward(d[k], input: a[k][i], output: a[k][i + 1], parameters: slice(p, i), gradients: own[k],
                                    needsInputGradient: needs) ?? d[k]
        }
        for block in layers[i].gradientBlocks(blockElements: blockElements) { ready(block.lowerBound + offset..<block.upperBound + offset) }
      }
    }
    return needsInputGradient ? d : nil
  }

  public var summary: String { layers.map(\.summary).joined(separator: " | ") }
}
