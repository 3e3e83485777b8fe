import Layers
import Testing
import TensorCore
import _TestSupport

/// The layers a list adds (BatchNorm, dropout, average pooling), half-MSE, and the list itself.
@Suite struct ListLayerTests {
  static let tolerance = 1e-7

  /// BatchNorm's backward pass goes through the batch statistics: every input moves every output of its channel.
  @Test(arguments: [[5], [3, 4, 4]])
  func batchNorm(shape: [Int]) {
    for seed: UInt64 in 1...4 {
      let e = GradientCheck.layer(BatchNorm<Double>(shape: shape, momentum: 0.2, eps: 1e-3), batch: 4, seed: seed)
      #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "\(shape) seed \(seed): \(e)")
    }
  }

  /// A batch cut into pieces (ranks, or deterministic chunks) is normalised with the whole batch's statistics: the
  /// same outputs, gradients and running statistics as one piece.
  @Test func batchNormOverPiecesIsBatchNormOverTheWholeBatch() throws {
    let layer = BatchNorm<Double>(shape: [2, 3, 3])
    let x = Reference.random(5 * 18, seed: 3), dy = Reference.random(5 * 18, seed: 4)
    let p = [1.5, 0.5, 0.2, -0.1]
    func run(_ cuts: [Range<Int>]) throws -> (y: [Double], dx: [Double], dp: [Double], buffers: [Double]) {
      let pieces = cuts.map { Tensor(shape: [$0.count, 2, 3, 3], scalars: Array(x[$0.lowerBound * 18..<$0.upperBound * 18])) }
      let grads = cuts.map { Tensor(shape: [$0.count, 2, 3, 3], scalars: Array(dy[$0.lowerBound * 18..<$0.upperBound * 18])) }
      let context = StepContext(training: true, rows: cuts.map { Array($0) })
      var buffers = layer.initialBuffers()
      var dp = cuts.map { _ in [Double](repeating: 0, count: 4) }
      let y = try p.withUnsafeBufferPointer { pb in
        try buffers.withUnsafeMutableBufferPointer { try layer.forward(pieces, parameters: pb, buffers: $0, context: context, index: 0) }
      }
      let dx = try p.withUnsafeBufferPointer { pb -> [Tensor<Double>] in
        var sinks = dp.map { _ in UnsafeMutableBufferPointer<Double>.allocate(capacity: 4) }
        defer { for s in sinks { s.deallocate() } }
        for s in sinks { s.initialize(repeating: 0) }
        let out = try layer.backward(grads, inputs: pieces, outputs: y, parameters: pb, gradients: sinks, context: context,
                                     index: 0, needsInputGradient: true)!
        for k in dp.indices { dp[k] = Array(sinks[k]) }
        sinks = []
        return out
      }
      let total = dp.reduce([Double](repeating: 0, count: 4)) { zip($0, $1).map(+) }
      return (y.flatMap(\.scalars), dx.flatMap(\.scalars), total, buffers)
    }
    let whole = try run([0..<5]), split = try run([0..<2, 2..<3, 3..<5])
    for (a, b) in [(whole.y, split.y), (whole.dx, split.dx), (whole.dp, split.dp), (whole.buffers, split.buffers)] {
      #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-12 })
    }
    // Running statistics as PyTorch's: momentum 0.1, the unbiased variance, one batch counted.
    let c0 = (0..<5).flatMap { n in (0..<9).map { x[n * 18 + $0] } }
    let mean = c0.reduce(0, +) / 45, variance = c0.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 44
    #expect(abs(whole.buffers[0] - 0.1 * mean) < 1e-12 && abs(whole.buffers[2] - (0.9 + 0.1 * variance)) < 1e-12)
    #expect(whole.buffers[4] == 1)
  }

  /// In evaluation BatchNorm uses its running statistics.
  @Test func batchNormEvaluatesWithRunningStatistics() {
    let layer = BatchNorm<Double>(shape: [2])
    let x = Tensor<Double>(shape: [1, 2], scalars: [3, 5])
    let y = [2.0, 1, 0.5, -1].withUnsafeBufferPointer { p in
      [1.0, 2, 4, 9, 7].withUnsafeBufferPointer { layer.evaluate(x, parameters: p, buffers: $0) }
    }
    #expect(abs(y.scalars[0] - (2 * (3 - 1) / (4 + 1e-5).squareRoot() + 0.5)) < 1e-12)
    #expect(abs(y.scalars[1] - (1 * (5 - 2) / (9 + 1e-5).squareRoot() - 1)) < 1e-12)
  }

  /// Dropout's masks depend on the sample's global index, not on the piece or rank computing it; kept units are
  /// scaled by 1 / (1 - p), about 1 - p of them are kept, and the backward pass uses the same mask.
  @Test func dropoutMasksAreFunctionsOfTheSample() throws {
    let layer = Dropout<Double>(shape: [50], p: 0.3)
    let x = Tensor<Double>(shape: [8, 50], scalars: Reference.random(400, seed: 2).map { $0 + 2 })
    func run(_ cuts: [Range<Int>], step: Int = 3) throws -> [Double] {
      let pieces = cuts.map { Tensor(shape: [$0.count, 50], scalars: Array(x.scalars[$0.lowerBound * 50..<$0.upperBound * 50])) }
      let context = StepContext(training: true, seed: 7, epoch: 1, step: step, rows: cuts.map { Array($0) })
      var none: [Double] = []
      let y = try [Double]().withUnsafeBufferPointer { p in
        try none.withUnsafeMutableBufferPointer { try layer.forward(pieces, parameters: p, buffers: $0, context: context, index: 4) }
      }
      let dx = try [Double]().withUnsafeBufferPointer { p in
        try layer.backward(pieces, inputs: pieces, outputs: y, parameters: p, gradients: [], context: context, index: 4,
                           needsInputGradient: true)!
      }
      #expect(y.flatMap(\.scalars) == dx.flatMap(\.scalars), "the same mask and scale backward")
      return y.flatMap(\.scalars)
    }
    let whole = try run([0..<8])
    #expect(try run([0..<3, 3..<8]) == whole && run([0..<1, 1..<2, 2..<8]) == whole)
    #expect(try run([0..<8], step: 4) != whole, "another step, other masks")
    let kept = zip(whole, x.scalars).filter { $0.0 != 0 }
    #expect(kept.allSatisfy { abs($0.0 - $0.1 / 0.7) < 1e-12 })
    #expect(abs(Double(kept.count) / 400 - 0.7) < 0.08, "\(kept.count) of 400 kept")
    // In evaluation dropout is the identity.
    let e = [Double]().withUnsafeBufferPointer { p in [Double]().withUnsafeBufferPointer { layer.evaluate(x, parameters: p, buffers: $0) } }
    #expect(e == x)
  }

  @Test func avgPool() {
    for seed: UInt64 in 1...3 {
      for (size, stride) in [(2, 2), (3, 1), (2, 3)] {
        let e = GradientCheck.layer(AvgPool2D<Double>(shape: [2, 6, 7], size: size, stride: stride), batch: 2, seed: seed)
        #expect(e.input < Self.tolerance, "\(size), \(stride): \(e)")
      }
    }
    let y = [Double]().withUnsafeBufferPointer {
      AvgPool2D<Double>(shape: [1, 2, 4], size: 2).forward(Tensor(shape: [1, 1, 2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8]), parameters: $0)
    }
    #expect(y.scalars == [3.5, 5.5])
  }

  @Test func halfMSE() {
    for seed: UInt64 in 1...3 {
      let p = Reference.random(12, seed: seed), t = Reference.random(12, seed: seed + 9)
      let targets = Targets<Double>.values(Tensor(shape: [4, 3], scalars: t))
      let v = Loss.halfMSE.evaluate(Tensor(shape: [4, 3], scalars: p), targets)
      let e = GradientCheck.maxRelativeError(at: p, analytic: v.gradient!.scalars) {
        Loss.halfMSE.evaluate(Tensor(shape: [4, 3], scalars: $0), targets, gradient: false).sum
      }
      #expect(e.error < Self.tolerance)
      let mse = Loss.mse.evaluate(Tensor(shape: [4, 3], scalars: p), targets, gradient: false).sum
      #expect(abs(v.sum - mse / 2) < 1e-12, "half the mean squared error")
    }
  }

  // MARK: The list

  @Test func listsParseInPyTorchsVocabulary() throws {
    let items = try LayerList.parse("Linear(3), relu, dense(1) , tanh")
    #expect(items == [.dense(units: 3), .activation(.relu), .dense(units: 1), .activation(.tanh)])
    let cnn = try LayerList.parse("conv2d(6, 5, padding=2), relu, maxpool2d(2), conv2d(16, 5), avgpool2d(2, stride=1), flatten, dropout(0.25), batchnorm(momentum=0.05), leaky-relu(0.2), prelu, softmax")
    #expect(cnn.map(\.description) == ["conv2d(6, 5, padding=2)", "relu", "maxpool2d(2)", "conv2d(16, 5)", "avgpool2d(2, stride=1)",
                                       "flatten", "dropout(0.25)", "batchnorm(momentum=0.05)", "leaky-relu(0.2)", "prelu", "softmax"])
    // A file: newlines separate items too, # starts a comment, and errors name the line.
    let file = "# the hand-out's network\ndense(3)   # hidden\nsigmoid\n\ndense(1), sigmoid\n"
    #expect(try LayerList.parse(file, file: true) == [.dense(units: 3), .activation(.sigmoid), .dense(units: 1), .activation(.sigmoid)])
    do { _ = try LayerList.parse("dense(3)\nconv2d(6)\n", file: true) } catch let e as LayerError {
      #expect("\(e)" == "line 2, item 2 'conv2d(6)': conv2d needs channels and a kernel size, e.g. conv2d(6, 5)")
    }
    // Windows line ends (\r\n, or \r alone) and a byte-order mark read as the same list, errors on the same line
    // (issue 28, item 17: CRLF was "unbalanced parentheses", the mark an unknown layer).
    let windows = "\u{FEFF}# the hand-out's network\r\ndense(3)   # hidden\r\nsigmoid\r\n\r\ndense(\r\n1), sigmoid\r\n"
    #expect(try LayerList.parse(windows, file: true) == [.dense(units: 3), .activation(.sigmoid), .dense(units: 1), .activation(.sigmoid)])
    #expect(try LayerList.parse("dense(3)\rsigmoid", file: true) == [.dense(units: 3), .activation(.sigmoid)])
    do { _ = try LayerList.parse("\u{FEFF}dense(3)\r\nconv2d(6)\r\n", file: true) } catch let e as LayerError {
      #expect("\(e)" == "line 2, item 2 'conv2d(6)': conv2d needs channels and a kernel size, e.g. conv2d(6, 5)")
    }
  }

  @Test(arguments: [
    ("dense(3), relu, conv2d(6), dense(10)", "item 3 'conv2d(6)': conv2d needs channels and a kernel size, e.g. conv2d(6, 5)"),
    ("dense(0)", "item 1 'dense(0)': the number of units must be a whole number from 1 to 16777216 (got 0)"),
    ("dense(2.5)", "the number of units must be a whole number"),
    ("dropout(1)", "p must be at least 0 and below 1"),
    ("relu(2)", "relu takes no arguments"),
    ("dense(3), swish", "item 2 'swish': unknown layer 'swish'"),
    ("conv2d(6, 5, stride=2, stride=3)", "stride is given twice"),
    ("dense(3", "unbalanced parentheses"),
    ("batchnorm(0.1)", "takes keywords only"),
    ("maxpool2d(2, dilation=2)", "maxpool2d has no argument 'dilation'"),
    ("", "the list is empty"),
  ])
  func badListsNameTheItem(_ text: String, _ message: String) {
    do {
      _ = try LayerList.parse(text)
      Issue.record("'\(text)' parsed")
    } catch { #expect("\(error)".contains(message), "\(error)") }
  }

  @Test(arguments: [
    ("conv2d(6, 5), relu, dense(10)", [1, 28, 28], 10, "item 3 'dense(10)': dense needs a vector or a sequence of vectors; its input is 6x24x24: add flatten before it"),
    ("conv2d(6, 31), flatten, dense(10)", [1, 28, 28], 10, "item 1 'conv2d(6, 31)': a 31x31 kernel is larger than its input 1x28x28"),
    ("dense(3), relu, dense(4)", [5], 10, "the list ends in 4 values, but the data have 10 outputs (classes or targets): make item 3 'dense(4)' dense(10)"),
    ("maxpool2d(2), dense(3)", [4], 3, "item 1 'maxpool2d(2)': maxpool2d needs images (channels x height x width); its input is a vector of 4"),
    ("flatten, batchnorm2d, dense(2)", [1, 3, 3], 2, "batchnorm2d takes images (after a convolution); its input is a vector of 9"),
    ("maxpool2d(4), flatten, dense(2)", [1, 3, 3], 2, "a 4x4 window is larger than its input 1x3x3"),
  ])
  func shapesThatDoNotFitNameBoth(_ text: String, _ input: [Int], _ outputs: Int, _ message: String) throws {
    do {
      _ = try LayerList.build(try LayerList.parse(text), inputShape: input, outputs: outputs, as: Float.self)
      Issue.record("'\(text)' built")
    } catch { #expect("\(error)".contains(message), "\(error)") }
  }

  /// A list builds the layers it names, numbered as PyTorch numbers a Sequential's modules.
  @Test func aListBuildsItsLayersInOrder() throws {
    let network = Network<Float>(try LayerList.build(try LayerList.parse("conv2d(6, 5, padding=2), batchnorm, relu, maxpool2d(2), flatten, dropout(0.5), dense(10)"),
                                                     inputShape: [1, 28, 28], outputs: 10))
    #expect(network.namedParameters.map(\.name) == ["0.weight", "0.bias", "1.weight", "1.bias", "6.weight", "6.bias"])
    #expect(network.namedBuffers.map(\.name) == ["1.running_mean", "1.running_var", "1.num_batches_tracked"])
    #expect(network.summary == "conv 1->6 5x5 pad 2 | batchnorm2d(6) | relu | maxpool 2x2 | flatten | dropout(0.5) | dense 1176 -> 10")
  }
}
