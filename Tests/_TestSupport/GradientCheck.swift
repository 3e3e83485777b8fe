import Layers
import TensorCore

/// Finite-difference checks of analytic derivatives, in Double.
public enum GradientCheck {
  /// The largest relative difference between `analytic` and the central difference (f(x+h) - f(x-h)) / 2h of f at
  /// every coordinate of x. Relative to max(1, |analytic|, |numeric|), so gradients near zero compare absolutely.
  public static func maxRelativeError(
    at x: [Double], analytic: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double
  ) -> (error: Double, index: Int) {
    precondition(x.count == analytic.count, "gradient has \(analytic.count) entries for \(x.count) inputs")
    var worst = (error: 0.0, index: -1)
    var xp = x
    for i in x.indices {
      xp[i] = x[i] + h
      let fp = f(xp)
      xp[i] = x[i] - h
      let fm = f(xp)
      xp[i] = x[i]
      let numeric = (fp - fm) / (2 * h)
      let e = abs(numeric - analytic[i]) / max(1, abs(numeric), abs(analytic[i]))
      if e > worst.error { worst = (e, i) }
    }
    return worst
  }
}

extension GradientCheck {
  /// Checks a layer's backward pass against finite differences of f(x, p) = sum(r * forward(x, p)) for a random
  /// upstream gradient r. Inputs are drawn in [-1, 1] and kept at least `kinkMargin` away from 0, so that kinks at
  /// 0 (ReLU, leaky ReLU, ReQU) are never crossed by the finite-difference step.
  /// Returns the largest relative errors of dL/dp and dL/dx.
  public static func layer<L: Layer>(
    _ layer: L, batch: Int = 3, seed: UInt64 = 1, kinkMargin: Double = 1e-3, inputs: [Double]? = nil, checkInput: Bool = true
  ) -> (parameters: Double, input: Double) where L.T == Double {
    let shape = [batch] + layer.inputShape
    let n = shape.reduce(1, *)
    var x = inputs ?? Reference.random(n, seed: seed)
    for i in x.indices where checkInput && abs(x[i]) < kinkMargin { x[i] = x[i] < 0 ? -kinkMargin * 10 : kinkMargin * 10 }
    var rng = RandomSource(seed: seed, stream: 5)
    var p = [Double](repeating: 0, count: layer.parameterCount)
    p.withUnsafeMutableBufferPointer { layer.initialize($0, using: &rng) }
    // Perturb the initial parameters so that no parameter sits at a special value (e.g. PReLU's slope).
    for i in p.indices { p[i] += 0.1 * rng.uniform(-1, 1) }
    let outShape = [batch] + layer.outputShape
    let r = Reference.random(outShape.reduce(1, *), seed: seed + 100)

    func f(_ x: [Double], _ p: [Double]) -> Double {
      let y = p.withUnsafeBufferPointer { layer.forward(Tensor(shape: shape, scalars: x), parameters: $0) }
      return zip(y.scalars, r).reduce(0) { $0 + $1.0 * $1.1 }
    }
    let xt = Tensor(shape: shape, scalars: x)
    var dp = [Double](repeating: 0, count: p.count)
    let dx: Tensor<Double>? = p.withUnsafeBufferPointer { pb in
      let y = layer.forward(xt, parameters: pb)
      return dp.withUnsafeMutableBufferPointer { dpb in
        layer.backward(Tensor(shape: outShape, scalars: r), input: xt, output: y, parameters: pb, gradients: dpb,
                       needsInputGradient: true)
      }
    }
    let pe = p.isEmpty ? 0 : maxRelativeError(at: p, analytic: dp) { f(x, $0) }.error
    // Token ids (an embedding's input) have no derivative: their check is left out.
    let xe = checkInput ? maxRelativeError(at: x, analytic: dx!.scalars) { f($0, p) }.error : 0
    return (pe, xe)
  }

  /// Checks d(loss sum)/d(prediction) against finite differences.
  public static func loss(_ loss: Loss, prediction: [Double], shape: [Int], targets: Targets<Double>) -> Double {
    let analytic = loss.evaluate(Tensor(shape: shape, scalars: prediction), targets).gradient!.scalars
    return maxRelativeError(at: prediction, analytic: analytic) {
      loss.evaluate(Tensor(shape: shape, scalars: $0), targets, gradient: false).sum
    }.error
  }
}

extension GradientCheck {
  /// d(loss sum)/d(every parameter) of a whole network at `parameters` on batch `x`, against finite differences:
  /// the largest relative error.
  public static func network(_ net: Network<Double>, parameters p: [Double], input x: Tensor<Double>, loss: Loss,
                             targets y: Targets<Double>, step h: Double = 1e-6) -> Double {
    func f(_ p: [Double]) -> Double {
      p.withUnsafeBufferPointer { loss.evaluate(net.predict(x, parameters: $0), y, gradient: false).sum }
    }
    var g = [Double](repeating: 0, count: net.parameterCount)
    p.withUnsafeBufferPointer { pb in
      let a = net.forward(x, parameters: pb)
      let dy = loss.evaluate(a.last!, y).gradient!
      g.withUnsafeMutableBufferPointer { _ = net.backward(dy, activations: a, parameters: pb, gradients: $0) }
    }
    return maxRelativeError(at: p, analytic: g, step: h, f).error
  }
}
