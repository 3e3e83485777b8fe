import Layers
import Testing
import TensorCore
import _TestSupport

/// Every derivative of the course's pieces (layers, activations, losses, whole networks) against central finite
/// differences, in Double, at several random points; and the values and layouts they rest on.
@Suite struct DerivativeTests {
  static let tolerance = 1e-7

  @Test func dense() {
    let e = GradientCheck.layer(Dense<Double>(inputs: 5, outputs: 4), batch: 3)
    #expect(e.parameters < Self.tolerance)
    #expect(e.input < Self.tolerance)
  }

  @Test(arguments: [Activation.identity, .sigmoid, .tanh, .relu, .leakyReLU(slope: 0.01), .leakyReLU(slope: 0.3), .requ])
  func activation(_ f: Activation) {
    for seed: UInt64 in 1...4 {
      let e = GradientCheck.layer(ActivationLayer<Double>(f, shape: [7]), batch: 3, seed: seed)
      #expect(e.input < Self.tolerance, "\(f) at seed \(seed)")
    }
  }

  /// The kinks themselves: just either side of 0 the derivatives are the one-sided ones.
  @Test func reluAndRequNearZero() {
    let x: [Double] = [-1e-4, 1e-4, -2e-4, 3e-4]
    for f in [Activation.relu, .leakyReLU(slope: 0.1), .requ] {
      let e = GradientCheck.layer(ActivationLayer<Double>(f, shape: [4]), batch: 1, kinkMargin: 1e-5, inputs: x)
      #expect(e.input < 1e-6, "\(f)")
    }
  }

  @Test func sigmoidAndTanhStayFiniteForLargeInputs() {
    let x: [Double] = [-800, -40, 40, 800]
    for f in [Activation.sigmoid, .tanh] {
      var y = [Double](repeating: 0, count: 4)
      Double.activate(f, x, &y, count: 4)
      #expect(y.allSatisfy { $0.isFinite }, "\(f): \(y)")
    }
  }

  @Test func flatten() {
    let e = GradientCheck.layer(Flatten<Double>(shape: [2, 3, 2]), batch: 2)
    #expect(e.input < Self.tolerance)
  }

  @Test func crossEntropy() {
    let p = Reference.random(12, seed: 3, scale: 4)
    #expect(GradientCheck.loss(.crossEntropy, prediction: p, shape: [3, 4], targets: .classes([0, 3, 2])) < Self.tolerance)
  }

  @Test func crossEntropyIsStableForHugeLogits() {
    let v = Loss.crossEntropy.evaluate(Tensor<Double>(shape: [1, 3], scalars: [1000, 0, -1000]), .classes([1]))
    #expect(abs(v.sum - 1000) < 1e-9)
    #expect(v.gradient!.scalars.allSatisfy { $0.isFinite })
  }

  @Test func crossEntropyValue() {
    // Written out: log(e^1 + e^2 + e^3) - 2 for class 1.
    let v = Loss.crossEntropy.evaluate(Tensor<Double>(shape: [1, 3], scalars: [1, 2, 3]), .classes([1]), gradient: false)
    #expect(abs(v.sum - (Double.log(Double.exp(1) + Double.exp(2) + Double.exp(3)) - 2)) < 1e-14)
  }

  @Test func mse() {
    let p = Reference.random(6, seed: 4), t = Reference.random(6, seed: 5)
    let targets = Targets<Double>.values(Tensor(shape: [3, 2], scalars: t))
    #expect(GradientCheck.loss(.mse, prediction: p, shape: [3, 2], targets: targets) < Self.tolerance)
    let v = Loss.mse.evaluate(Tensor(shape: [3, 2], scalars: p), targets, gradient: false)
    let expected = zip(p, t).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / 2  // mean over 2 outputs, summed over 3 rows
    #expect(abs(v.sum - expected) < 1e-14)
  }

  /// A whole network with its loss: d(loss sum)/d(every parameter).
  @Test(arguments: [Activation.relu, .tanh, .sigmoid])
  func mlpWithCrossEntropy(_ f: Activation) {
    let layers: [any Layer<Double>] = [
      Flatten<Double>(shape: [1, 2, 3]), Dense<Double>(inputs: 6, outputs: 5), ActivationLayer<Double>(f, shape: [5]),
      Dense<Double>(inputs: 5, outputs: 4), ActivationLayer<Double>(f, shape: [4]), Dense<Double>(inputs: 4, outputs: 3),
    ]
    let net = Network(layers)
    let x = Tensor(shape: [4, 1, 2, 3], scalars: Reference.random(24, seed: 10))
    let e = GradientCheck.network(net, parameters: net.initialParameters(seed: 9), input: x, loss: .crossEntropy,
                                  targets: .classes([0, 2, 1, 2]))
    #expect(e < Self.tolerance)
  }

  /// dL/dx of a whole network, when asked for; nothing (and no wasted product) when not.
  @Test func networkInputGradientOnlyWhenAsked() {
    let net = Network<Double>([Flatten<Double>(shape: [2, 3]), Dense<Double>(inputs: 6, outputs: 4),
                               ActivationLayer<Double>(.tanh, shape: [4]), Dense<Double>(inputs: 4, outputs: 2)])
    let p = net.initialParameters(seed: 3)
    let x = Reference.random(12, seed: 4)
    let r = Reference.random(4, seed: 5)
    func f(_ x: [Double]) -> Double {
      p.withUnsafeBufferPointer { zip(net.predict(Tensor(shape: [2, 2, 3], scalars: x), parameters: $0).scalars, r).reduce(0) { $0 + $1.0 * $1.1 } }
    }
    var g = [Double](repeating: 0, count: net.parameterCount)
    let (without, with): (Tensor<Double>?, Tensor<Double>?) = p.withUnsafeBufferPointer { pb in
      let a = net.forward(Tensor(shape: [2, 2, 3], scalars: x), parameters: pb)
      let dy = Tensor(shape: [2, 2], scalars: r)
      return g.withUnsafeMutableBufferPointer { gb in
        (net.backward(dy, activations: a, parameters: pb, gradients: gb),
         net.backward(dy, activations: a, parameters: pb, gradients: gb, needsInputGradient: true))
      }
    }
    #expect(without == nil)
    #expect(with!.shape == [2, 2, 3])
    #expect(GradientCheck.maxRelativeError(at: x, analytic: with!.scalars, f).error < Self.tolerance)
  }

  @Test func gradientsAccumulate() {
    // backward adds into the gradient buffer (zeroed once per step), so two passes give twice the gradient.
    let layer = Dense<Double>(inputs: 3, outputs: 2)
    let p = Reference.random(layer.parameterCount, seed: 1)
    let x = Tensor(shape: [2, 3], scalars: Reference.random(6, seed: 2))
    let dy = Tensor(shape: [2, 2], scalars: Reference.random(4, seed: 3))
    var once = [Double](repeating: 0, count: p.count), twice = once
    p.withUnsafeBufferPointer { pb in
      let y = layer.forward(x, parameters: pb)
      once.withUnsafeMutableBufferPointer { _ = layer.backward(dy, input: x, output: y, parameters: pb, gradients: $0, needsInputGradient: false) }
      twice.withUnsafeMutableBufferPointer { g in
        for _ in 0..<2 { _ = layer.backward(dy, input: x, output: y, parameters: pb, gradients: g, needsInputGradient: false) }
      }
    }
    #expect(zip(once, twice).allSatisfy { abs(2 * $0 - $1) < 1e-15 })
  }

  @Test func parameterLayoutAndNames() {
    let net = Network<Float>([Flatten<Float>(shape: [1, 28, 28]), Dense<Float>(inputs: 784, outputs: 256),
                              ActivationLayer<Float>(.relu, shape: [256]), Dense<Float>(inputs: 256, outputs: 10)])
    #expect(net.parameterCount == 784 * 256 + 256 + 256 * 10 + 10)
    let names = net.namedParameters.map(\.name)
    #expect(names == ["1.weight", "1.bias", "3.weight", "3.bias"])
    #expect(net.namedParameters.map(\.spec.isBias) == [false, true, false, true])
    #expect(net.namedParameters.last!.range.upperBound == net.parameterCount)
  }

  @Test func initialisationIsSeededAndBounded() {
    let net = Network<Double>([Dense<Double>(inputs: 100, outputs: 50)])
    let a = net.initialParameters(seed: 1), b = net.initialParameters(seed: 1), c = net.initialParameters(seed: 2)
    #expect(a == b)
    #expect(a != c)
    #expect(a.allSatisfy { abs($0) <= 0.1 })  // 1 / sqrt(100)
    #expect(a.map(abs).max()! > 0.09)
  }

  @Test(arguments: [[5], [3, 4, 4]])
  func prelu(shape: [Int]) {
    for seed: UInt64 in 1...4 {
      let e = GradientCheck.layer(PReLU<Double>(shape: shape), batch: 3, seed: seed)
      #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "seed \(seed): \(e)")
    }
  }

  @Test func preluSlopesAreParametersOfTheirUnit() {
    let layer = PReLU<Double>(shape: [2])
    let x = Tensor<Double>(shape: [2, 2], scalars: [-1, 2, -3, -4])
    let y = [0.5, 0.1].withUnsafeBufferPointer { layer.forward(x, parameters: $0) }
    #expect(y.scalars == [-0.5, 2, -1.5, -0.4])
  }

  @Test func softmaxLayerFullJacobian() {
    for seed: UInt64 in 1...4 {
      let e = GradientCheck.layer(Softmax<Double>(size: 6), batch: 3, seed: seed)
      #expect(e.input < Self.tolerance, "seed \(seed)")
    }
    let y = [Double]().withUnsafeBufferPointer {
      Softmax<Double>(size: 3).forward(Tensor(shape: [1, 3], scalars: [1000, 1000, 0]), parameters: $0)
    }
    #expect(abs(y.scalars[0] - 0.5) < 1e-12 && y.scalars[2] < 1e-300)
  }

  @Test(arguments: [(1, 2, 3, 1, 0), (2, 3, 3, 1, 1), (3, 2, 3, 2, 1), (2, 4, 5, 2, 2), (1, 1, 1, 1, 0)])
  func conv2d(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int) {
    let layer = Conv2D<Double>(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                               padding: padding, height: 6, width: 5)
    for seed: UInt64 in 1...2 {
      let e = GradientCheck.layer(layer, batch: 2, seed: seed)
      #expect(e.parameters < Self.tolerance && e.input < Self.tolerance, "\(layer.summary) seed \(seed): \(e)")
    }
  }

  /// A convolution written out as loops, against the im2col + gemm forward.
  @Test func conv2dMatchesTheDefinition() {
    let (c, f, k, s, pad, h, w, b) = (2, 3, 3, 2, 1, 5, 6, 2)
    let layer = Conv2D<Double>(inChannels: c, outChannels: f, kernel: k, stride: s, padding: pad, height: h, width: w)
    let p = Reference.random(layer.parameterCount, seed: 1), x = Reference.random(b * c * h * w, seed: 2)
    let y = p.withUnsafeBufferPointer { layer.forward(Tensor(shape: [b, c, h, w], scalars: x), parameters: $0) }
    let oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1
    #expect(y.shape == [b, f, oh, ow])
    for n in 0..<b {
      for o in 0..<f {
        for r in 0..<oh {
          for q in 0..<ow {
            var sum = p[f * c * k * k + o]  // bias
            for ch in 0..<c {
              for i in 0..<k {
                for j in 0..<k {
                  let hh = r * s - pad + i, ww = q * s - pad + j
                  guard hh >= 0, hh < h, ww >= 0, ww < w else { continue }
                  sum += p[((o * c + ch) * k + i) * k + j] * x[((n * c + ch) * h + hh) * w + ww]
                }
              }
            }
            #expect(abs(y.scalars[((n * f + o) * oh + r) * ow + q] - sum) < 1e-12)
          }
        }
      }
    }
  }

  /// Float's vectorised stride-1 convolution and its parameter gradients, in every build of the kernels this CPU runs,
  /// against Double's loops, on shapes that leave partial blocks or fill blocks of 6 and 8: channels not a multiple of
  /// them, widths not a multiple of 16, with and without
  /// padding and bias, and images large enough that the gradients take one sample a chunk.
  @Test(arguments: [(1, 6, 5, 2, 28, 28, 2), (6, 16, 5, 2, 14, 14, 23), (16, 6, 5, 2, 14, 14, 2), (3, 5, 3, 1, 7, 37, 2),
                    (2, 1, 1, 0, 4, 3, 2), (2, 7, 3, 0, 9, 18, 2), (3, 5, 3, 1, 64, 70, 2), (4, 8, 3, 1, 10, 33, 3),
                    (2, 24, 3, 1, 5, 20, 2)])
  func floatConvolutionMatchesDouble(c: Int, f: Int, k: Int, pad: Int, h: Int, w: Int, batch: Int) {
    let g = ConvolutionGeometry(batch: batch, channels: c, height: h, width: w, kernel: k, stride: 1, padding: pad)
    let x = Reference.random(batch * c * h * w, seed: 3), W = Reference.random(f * c * k * k, seed: 4)
    let bias = Reference.random(f, seed: 5), n = batch * f * g.outputHeight * g.outputWidth
    for withBias in [true, false] {
      var expected = [Double](repeating: .nan, count: n), got = [Float](repeating: .nan, count: n)
      bias.withUnsafeBufferPointer { b in
        Double.convolve(x, weights: W, bias: withBias ? b.baseAddress : nil, into: &expected, outChannels: f, g)
      }
      let xf = x.map(Float.init), Wf = W.map(Float.init), bf = bias.map(Float.init)
      // Every build of the vector kernels this CPU runs (AVX2, and AVX-512 where it has it).
      for isa in KernelISA.available {
        bf.withUnsafeBufferPointer { b in
          Float.convolve(xf, weights: Wf, bias: withBias ? b.baseAddress : nil, into: &got, outChannels: f, g, isa: isa)
        }
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max()!
        // Float rounding grows with the C k k terms of each sum; a misplaced term is off by about 1.
        #expect(worst < 1e-6 * Double(c * k * k), "\(isa): c \(c) f \(f) k \(k) pad \(pad) \(h)x\(w) bias \(withBias): \(worst)")
      }
    }
    // The parameter gradients, added onto what the buffers hold.
    let dy = Reference.random(n, seed: 6), start = Reference.random(f * c * k * k + f, seed: 7)
    var expected = start, got = start.map(Float.init)
    expected.withUnsafeMutableBufferPointer { e in
      Double.addConvolutionGradients(x: x, dy: dy, weights: e.baseAddress!, bias: e.baseAddress! + f * c * k * k,
                                     outChannels: f, g)
    }
    let xf = x.map(Float.init), dyf = dy.map(Float.init)
    for isa in KernelISA.available {
      got = start.map(Float.init)
      got.withUnsafeMutableBufferPointer { e in
        Float.addConvolutionGradients(x: xf, dy: dyf, weights: e.baseAddress!, bias: e.baseAddress! + f * c * k * k,
                                      outChannels: f, g, isa: isa)
      }
      let worst = zip(got, expected).map { abs(Double($0) - $1) }.max()!
      // Each sum has batch outH outW terms.
      #expect(worst < 1e-6 * Double(batch * g.outputHeight * g.outputWidth), "\(isa) gradients, c \(c) f \(f) k \(k): \(worst)")
    }
  }

  @Test func maxPool() {
    // Random inputs have no ties, so the maximum is unique and differentiable.
    for seed: UInt64 in 1...3 {
      let e = GradientCheck.layer(MaxPool2D<Double>(shape: [2, 6, 4], size: 2), batch: 2, seed: seed)
      #expect(e.input < Self.tolerance)
    }
    let e3 = GradientCheck.layer(MaxPool2D<Double>(shape: [1, 7, 7], size: 3, stride: 2), batch: 1, seed: 4)
    #expect(e3.input < Self.tolerance)
    let y = [Double]().withUnsafeBufferPointer {
      MaxPool2D<Double>(shape: [1, 2, 4]).forward(Tensor(shape: [1, 1, 2, 4], scalars: [1, 5, 2, 0, 3, 4, 8, 7]), parameters: $0)
    }
    #expect(y.scalars == [5, 8])
  }

  func randomClasses(_ n: Int, _ k: Int, seed: UInt64) -> [Int32] {
    var rng = RandomSource(seed: seed)
    return (0..<n).map { _ in Int32(rng.index(below: k)) }
  }

  @Test func hinge() {
    for seed: UInt64 in 1...4 {
      var p = Reference.random(12, seed: seed, scale: 3)
      let y = randomClasses(3, 4, seed: seed)
      // Keep every margin m + s_j - s_y away from its kink at 0.
      for _ in 0..<10 {
        var moved = false
        for i in 0..<3 {
          for j in 0..<4 where j != Int(y[i]) {
            let m = 1 + p[i * 4 + j] - p[i * 4 + Int(y[i])]
            if abs(m) < 1e-3 { p[i * 4 + j] += 0.01; moved = true }
          }
        }
        if !moved { break }
      }
      for mean in [false, true] {
        #expect(GradientCheck.loss(.hinge(margin: 1, mean: mean), prediction: p, shape: [3, 4], targets: .classes(y)) < Self.tolerance)
      }
    }
    // By hand: scores (1, 2, 0.5) for class 0, margin 1: max(0, 1 + 2 - 1) + max(0, 1 + 0.5 - 1) = 2 + 0.5.
    let v = Loss.hinge(margin: 1).evaluate(Tensor<Double>(shape: [1, 3], scalars: [1, 2, 0.5]), .classes([0]))
    #expect(abs(v.sum - 2.5) < 1e-15)
    #expect(v.gradient!.scalars == [-2, 1, 1])
    // The mean over the C = 3 classes is torch.nn.MultiMarginLoss()(tensor([[1, 2, 0.5]]), tensor([0])) = 0.8333.
    let mean = Loss.hinge(margin: 1, mean: true).evaluate(Tensor<Double>(shape: [1, 3], scalars: [1, 2, 0.5]), .classes([0]))
    #expect(abs(mean.sum - 2.5 / 3) < 1e-15)
    let third: Double = 1.0 / 3
    #expect(mean.gradient!.scalars == [-2 * third, third, third])
  }

  @Test func nllAfterSoftmax() {
    let p = [0.2, 0.5, 0.3, 0.1, 0.1, 0.8]
    #expect(GradientCheck.loss(.nll, prediction: p, shape: [2, 3], targets: .classes([1, 2])) < Self.tolerance)
    let v = Loss.nll.evaluate(Tensor<Double>(shape: [2, 3], scalars: p), .classes([1, 2]), gradient: false)
    #expect(abs(v.sum - (-Double.log(0.5) - Double.log(0.8))) < 1e-15)
  }

  @Test(arguments: [Loss.l1, .huber(delta: 0.5), .huber(delta: 2), .mse, .cosine])
  func regressionLosses(_ loss: Loss) {
    for seed: UInt64 in 1...4 {
      var p = Reference.random(12, seed: seed, scale: 2)
      let t = Reference.random(12, seed: seed + 10, scale: 2)
      // Away from the kinks: |p - t| not near 0 (L1) nor near delta (Huber).
      for i in p.indices {
        let d = abs(p[i] - t[i])
        if d < 1e-3 || abs(d - 0.5) < 1e-3 || abs(d - 2) < 1e-3 { p[i] += 0.01 }
      }
      let e = GradientCheck.loss(loss, prediction: p, shape: [3, 4], targets: .values(Tensor(shape: [3, 4], scalars: t)))
      #expect(e < Self.tolerance, "\(loss) seed \(seed)")
    }
  }

  @Test func lossValuesByHand() {
    let p = Tensor<Double>(shape: [1, 2], scalars: [3, -1]), t = Targets<Double>.values(Tensor(shape: [1, 2], scalars: [1, 1]))
    #expect(Loss.l1.evaluate(p, t, gradient: false).sum == (2 + 2) / 2)
    // Huber delta 1: |e| = 2 > 1 on both: 1 * (2 - 0.5) = 1.5 each, mean 1.5.
    #expect(Loss.huber(delta: 1).evaluate(p, t, gradient: false).sum == 1.5)
    // Cosine: p.t = 2, |p| = sqrt(10), |t| = sqrt(2): 1 - 2 / sqrt(20).
    #expect(abs(Loss.cosine.evaluate(p, t, gradient: false).sum - (1 - 2 / 20.0.squareRoot())) < 1e-15)
  }

  /// A small CNN with PReLU and a softmax output layer, end to end: d(loss)/d(every parameter).
  @Test func cnnWithPReLUAndSoftmaxOutput() {
    let conv = Conv2D<Double>(inChannels: 1, outChannels: 2, kernel: 3, padding: 1, height: 6, width: 6)
    let layers: [any Layer<Double>] = [
      conv, PReLU<Double>(shape: [2, 6, 6]), MaxPool2D<Double>(shape: [2, 6, 6]), Flatten<Double>(shape: [2, 3, 3]),
      Dense<Double>(inputs: 18, outputs: 4), Softmax<Double>(size: 4),
    ]
    let net = Network(layers)
    var p = net.initialParameters(seed: 3)
    for i in p.indices { p[i] += 0.05 * Reference.random(1, seed: UInt64(i))[0] }
    let x = Tensor(shape: [3, 1, 6, 6], scalars: Reference.random(108, seed: 4))
    #expect(GradientCheck.network(net, parameters: p, input: x, loss: .nll, targets: .classes([0, 3, 1])) < 1e-6)
  }
}

/// The course's hand-computable network: 3 inputs, 2 sigmoid hidden units, 1 sigmoid output, L2 loss, bias -0.2 in
/// both layers. One backward pass against the chain rule written out scalar by scalar, not by the library.
@Suite struct HandComputedNetworkTests {
  @Test func backwardMatchesTheChainRule() {
    let x = [1.0, 0.5, -1.5], target = 0.7
    // W1[i][j]: input i -> hidden j; W2[j]: hidden j -> output.
    let W1 = [[0.1, -0.3], [0.4, 0.2], [-0.5, 0.6]], b1 = [-0.2, -0.2], W2 = [0.7, -0.4], b2 = -0.2
    func sigma(_ z: Double) -> Double { 1 / (1 + Double.exp(-z)) }
    // Forward, by hand.
    let z1 = (0..<2).map { j in x[0] * W1[0][j] + x[1] * W1[1][j] + x[2] * W1[2][j] + b1[j] }
    let h = z1.map(sigma)
    let z2 = h[0] * W2[0] + h[1] * W2[1] + b2
    let o = sigma(z2)
    let L = (o - target) * (o - target)  // L2 loss of one output: (o - t)^2
    // Backward, by hand: dL/do = 2 (o - t); do/dz2 = o (1 - o); dz2/dW2_j = h_j; dz2/dh_j = W2_j;
    // dh_j/dz1_j = h_j (1 - h_j); dz1_j/dW1_ij = x_i.
    let dz2 = 2 * (o - target) * o * (1 - o)
    let dW2 = [dz2 * h[0], dz2 * h[1]], db2 = dz2
    let dz1 = (0..<2).map { j in dz2 * W2[j] * h[j] * (1 - h[j]) }
    let dW1 = (0..<3).map { i in (0..<2).map { j in dz1[j] * x[i] } }
    let db1 = dz1

    // The library: Dense(3 -> 2), sigmoid, Dense(2 -> 1), sigmoid, MSE.
    let net = Network<Double>([Dense<Double>(inputs: 3, outputs: 2), ActivationLayer<Double>(.sigmoid, shape: [2]),
                               Dense<Double>(inputs: 2, outputs: 1), ActivationLayer<Double>(.sigmoid, shape: [1])])
    let p = W1.flatMap { $0 } + b1 + W2 + [b2]  // each dense layer: W (inputs, outputs) row-major, then b
    var g = [Double](repeating: 0, count: p.count)
    let loss = p.withUnsafeBufferPointer { pb -> Double in
      let a = net.forward(Tensor(shape: [1, 3], scalars: x), parameters: pb)
      let v = Loss.mse.evaluate(a.last!, .values(Tensor(shape: [1, 1], scalars: [target])))
      g.withUnsafeMutableBufferPointer { _ = net.backward(v.gradient!, activations: a, parameters: pb, gradients: $0) }
      return v.sum
    }
    #expect(abs(loss - L) < 1e-15)
    let expected = dW1.flatMap { $0 } + db1 + dW2 + [db2]
    for (a, b) in zip(g, expected) { #expect(abs(a - b) < 1e-15, "\(g) vs \(expected)") }
  }
}
