import Layers
import Testing
import TensorCore
import _TestSupport

/// Every derivative against central finite differences, in Double.
@Suite struct GradientTests {
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
}
