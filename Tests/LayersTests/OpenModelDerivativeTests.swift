import Foundation
import Layers
import Testing
import TensorCore
import _TestSupport

/// The derivatives of the layers of residual networks and transformers (issue 29) against central finite differences
/// in Double: LayerNorm, GELU both ways, embeddings, attention causal or not, residual blocks with and without a
/// shortcut (and with BatchNorm inside), bias-free dense and convolution, and layers that act on every position of a
/// sequence.
@Suite struct OpenModelDerivativeTests {
  static let tolerance = 1e-7

  @Test(arguments: [[6], [4, 6]])
  func layerNorm(shape: [Int]) {
    for seed: UInt64 in 1...3 {
      let e = GradientCheck.layer(LayerNorm<Double>(shape: shape, eps: 1e-5), batch: 3, seed: seed)
      #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "\(shape) seed \(seed): \(e)")
    }
  }

  @Test(arguments: [Activation.gelu, .geluTanh])
  func gelu(_ f: Activation) {
    for seed: UInt64 in 1...4 {
      let e = GradientCheck.layer(ActivationLayer<Double>(f, shape: [3, 7]), batch: 3, seed: seed)
      #expect(e.input < Self.tolerance, "\(f) at seed \(seed): \(e.input)")
    }
  }

  /// GELU's values against the formulas written out (erf, and the tanh approximation PyTorch names "tanh").
  @Test func geluValues() {
    let x: [Double] = [-6, -3, -1.5, -0.5, -1e-3, 0, 1e-3, 0.5, 1.5, 3, 6]
    var exact = [Double](repeating: 0, count: x.count), approximate = exact
    Double.activate(.gelu, x, &exact, count: x.count)
    Double.activate(.geluTanh, x, &approximate, count: x.count)
    for (i, v) in x.enumerated() {
      let e: Double = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
      let inner: Double = (2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)
      let t: Double = 0.5 * v * (1 + tanh(inner))
      #expect(abs(exact[i] - e) < 1e-12 && abs(approximate[i] - t) < 1e-12, "at \(v): \(exact[i]) \(e), \(approximate[i]) \(t)")
    }
  }

  @Test func embedding() {
    // Ids of a vocabulary of 5, some repeated (their rows' gradients add).
    let ids: [Double] = [0, 3, 3, 1, 4, 4, 2, 0]
    let e = GradientCheck.layer(Embedding<Double>(positions: 4, vocabulary: 5, width: 3), batch: 2, inputs: ids, checkInput: false)
    #expect(e.parameters < Self.tolerance, "\(e)")
  }

  @Test func positionEmbedding() {
    let e = GradientCheck.layer(PositionEmbedding<Double>(positions: 4, width: 3), batch: 3)
    #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "\(e)")
  }

  @Test(arguments: [true, false])
  func attention(causal: Bool) {
    for (heads, seed) in [(1, UInt64(1)), (2, 2), (3, 3)] {
      let e = GradientCheck.layer(Attention<Double>(positions: 5, width: 6, heads: heads, causal: causal), batch: 2, seed: seed)
      #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "causal \(causal), \(heads) heads: \(e)")
    }
  }

  /// A causal head's output at position t depends on positions up to t only.
  @Test func causalAttentionDoesNotSeeTheFuture() {
    let layer = Attention<Double>(positions: 4, width: 4, heads: 2, causal: true)
    var rng = RandomSource(seed: 9, stream: 1)
    var p = [Double](repeating: 0, count: layer.parameterCount)
    p.withUnsafeMutableBufferPointer { layer.initialize($0, using: &rng) }
    var x = Reference.random(16, seed: 4)
    let before = p.withUnsafeBufferPointer { layer.forward(Tensor(shape: [1, 4, 4], scalars: x), parameters: $0) }.scalars
    for j in 12..<16 { x[j] += 1 }  // the last position only
    let after = p.withUnsafeBufferPointer { layer.forward(Tensor(shape: [1, 4, 4], scalars: x), parameters: $0) }.scalars
    #expect(before[0..<12] == after[0..<12] && before[12...] != after[12...])
  }

  @Test func residualWithoutShortcut() {
    let body = Network<Double>([LayerNorm<Double>(shape: [3, 4]), Dense<Double>(inputs: 4, outputs: 8, leading: [3]),
                                ActivationLayer<Double>(.gelu, shape: [3, 8]), Dense<Double>(inputs: 8, outputs: 4, leading: [3])])
    let e = GradientCheck.layer(Residual<Double>(body: body), batch: 2)
    #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "\(e)")
  }

  /// A ResNet block that halves the size and doubles the channels: its shortcut a 1x1 stride-2 projection with its
  /// BatchNorm (batch statistics, as in training), blocks nested.
  @Test func residualWithProjectionShortcutAndBatchNorm() {
    let body = Network<Double>([
      Conv2D<Double>(inChannels: 2, outChannels: 4, kernel: 3, stride: 2, padding: 1, height: 6, width: 6, bias: false),
      BatchNorm<Double>(shape: [4, 3, 3]), ActivationLayer<Double>(.relu, shape: [4, 3, 3]),
      Residual<Double>(body: Network([Conv2D<Double>(inChannels: 4, outChannels: 4, kernel: 3, padding: 1, height: 3, width: 3)])),
    ])
    let shortcut = Network<Double>([Conv2D<Double>(inChannels: 2, outChannels: 4, kernel: 1, stride: 2, height: 6, width: 6, bias: false),
                                    BatchNorm<Double>(shape: [4, 3, 3])])
    for seed: UInt64 in 1...2 {
      let e = GradientCheck.layer(Residual<Double>(body: body, shortcut: shortcut), batch: 3, seed: seed)
      #expect(e.parameters < 1e-6 && e.input < 1e-6, "seed \(seed): \(e)")
    }
  }

  @Test func biasFreeDenseAndConvolution() {
    let dense = Dense<Double>(inputs: 5, outputs: 3, bias: false)
    #expect(dense.parameters.map(\.name) == ["weight"] && dense.parameterCount == 15)
    let d = GradientCheck.layer(dense, batch: 3)
    #expect(d.parameters < Self.tolerance && d.input < Self.tolerance, "\(d)")
    let conv = Conv2D<Double>(inChannels: 2, outChannels: 3, kernel: 3, padding: 1, height: 5, width: 4, bias: false)
    #expect(conv.parameters.map(\.name) == ["weight"])
    let c = GradientCheck.layer(conv, batch: 2)
    #expect(c.parameters < Self.tolerance && c.input < Self.tolerance, "\(c)")
  }

  /// On a sequence (B, T, D) dense acts on every position: the same as on B*T vectors.
  @Test func denseOnEveryPosition() {
    let sequence = Dense<Double>(inputs: 4, outputs: 3, leading: [5]), vectors = Dense<Double>(inputs: 4, outputs: 3)
    #expect(sequence.outputShape == [5, 3])
    let p = Reference.random(sequence.parameterCount, seed: 1), x = Reference.random(2 * 5 * 4, seed: 2)
    let a = p.withUnsafeBufferPointer { sequence.forward(Tensor(shape: [2, 5, 4], scalars: x), parameters: $0) }
    let b = p.withUnsafeBufferPointer { vectors.forward(Tensor(shape: [10, 4], scalars: x), parameters: $0) }
    #expect(a.scalars == b.scalars)
    let e = GradientCheck.layer(sequence, batch: 2)
    #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "\(e)")
  }

  /// A whole character GPT's list (two blocks) through the network, against finite differences of its loss.
  @Test func gptNetwork() throws {
    let items = try LayerList.parse("""
      embedding(8), position-embedding, residual(layernorm, attention(2, causal=true)), \
      residual(layernorm, dense(16), gelu, dense(8)), residual(layernorm, attention(2)), layernorm, dense(5)
      """)
    let layers: [any Layer<Double>] = try LayerList.build(items, inputShape: [4], outputs: 5, positions: 4, vocabulary: 5)
    let net = Network(layers)
    #expect(net.outputShape == [4, 5])
    let p = net.initialParameters(seed: 3)
    let ids: [Double] = [0, 1, 4, 2, 3, 3, 0, 1]
    let targets = Targets<Double>.classes([1, 4, 2, 0, 3, 0, 1, 2])
    let e = GradientCheck.network(net, parameters: p, input: Tensor(shape: [2, 4], scalars: ids), loss: .crossEntropy, targets: targets)
    #expect(e < Self.tolerance, "\(e)")
  }
}

/// Float's GELU and exponentials through the vector kernels (`_Kernels/VectorMath.swift`), in every build the CPU
/// runs, against libm in Double rounded once to Float: within 2 units in the last place of the value (or 1e-37 near 0).
@Suite struct VectorMathTests {
  static let inputs: [Float] = stride(from: -12.0, through: 12.0, by: 0.0137).map { Float($0) }
    + [0, -0, 1e-30, -1e-30, 1e-7, -1e-7, 3.4e38, -3.4e38, 88, -88, 100, -100]

  static func ulps(_ a: Float, _ b: Double) -> Double {
    let f = Float(b)
    guard f.isFinite else { return a == f ? 0 : .infinity }
    return abs(Double(a) - b) / max(Double(f.ulp), 1e-37)
  }

  @Test(arguments: KernelISA.available)
  func geluBothWaysAndTheirDerivatives(isa: KernelISA) {
    let x = Self.inputs, n = x.count
    var worst: [String: Double] = [:]
    for f in [Activation.gelu, .geluTanh] {
      var y = [Float](repeating: 0, count: n), dx = y
      let dy = [Float](repeating: 1, count: n)
      Float.activate(f, x, &y, count: n, isa: isa)
      Float.activateBackward(f, x: x, y: y, dy: dy, dx: &dx, count: n, isa: isa)
      for i in 0..<n {
        let v = Double(x[i])
        // The slope is a sum of two terms that cancel where it crosses 0: its error is measured against the terms.
        let (value, slope, terms): (Double, Double, Double)
        if f == .gelu {
          let cdf = 0.5 * erfc(-v / 2.0.squareRoot()), pdf = exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
          (value, slope, terms) = (v * cdf, cdf + v * pdf, abs(cdf) + abs(v * pdf))
        } else {
          // (1 + tanh u) / 2 as the logistic function of 2u, which keeps its digits where tanh u is near -1.
          let c = (2 / Double.pi).squareRoot(), u = c * (v + 0.044715 * v * v * v)
          let s = 1 / (1 + exp(-2 * u)), du = c * (1 + 3 * 0.044715 * v * v)
          (value, slope, terms) = (v * s, s + 2 * v * s * (1 - s) * du, abs(s) + abs(2 * v * s * (1 - s) * du))
        }
        worst["\(f) value", default: 0] = max(worst["\(f) value", default: 0], Self.ulps(y[i], value))
        if abs(v) < 1e18 {
          let e = abs(Double(dx[i]) - slope) / max(Double(Float(terms).ulp), 1e-37)
          worst["\(f) slope", default: 0] = max(worst["\(f) slope", default: 0], e)
        }
      }
    }
    #expect(worst.values.allSatisfy { $0 <= 2 }, "\(isa): \(worst)")
  }

  @Test(arguments: KernelISA.available)
  func exponentialsOfASoftmaxRow(isa: KernelISA) {
    var x: [Float] = (0..<67).map { Float($0) * -1.37 + 3 }
    let m: Float = 3, reference = x.map { exp(Double($0) - Double(m)) }
    let sum = Float.expShifted(&x, count: x.count, minus: m, isa: isa)
    let worst = zip(x, reference).map { Self.ulps($0, $1) }.max()!
    #expect(worst <= 1 && abs(Double(sum) - reference.reduce(0, +)) < 1e-6, "\(isa): \(worst) ulps, sum \(sum)")
  }
}
