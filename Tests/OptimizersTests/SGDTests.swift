import Optimizers
import Testing
import _TestSupport

@Suite struct SGDTests {
  /// PyTorch's SGD written out per coordinate: g' = g + wd p; v = mu v + g'; d = nesterov ? g' + mu v : v; p -= lr d.
  static func reference(p: inout [Double], v: inout [Double], g: [Double], lr: Double, mu: Double, wd: [Double],
                        nesterov: Bool) {
    for i in p.indices {
      let gi = g[i] + wd[i] * p[i]
      if mu == 0 {
        p[i] -= lr * gi
        continue
      }
      v[i] = mu * v[i] + gi
      p[i] -= lr * (nesterov ? gi + mu * v[i] : v[i])
    }
  }

  @Test(arguments: [(0.0, false, 0.0), (0.9, false, 0.0), (0.9, true, 0.0), (0.5, false, 0.01), (0.9, true, 0.1), (0.0, false, 0.05)])
  func stepsFollowTheRule(momentum: Double, nesterov: Bool, weightDecay: Double) throws {
    var p = Reference.random(10, seed: 1)
    var expected = p, v = [Double](repeating: 0, count: 10)
    var sgd = SGD<Double>(learningRate: 0.05, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                          decayMask: .all(10))
    for step in 0..<5 {
      let g = Reference.random(10, seed: 100 + UInt64(step))
      try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try sgd.step(parameters: pb, gradients: $0) } }
      Self.reference(p: &expected, v: &v, g: g, lr: 0.05, mu: momentum, wd: Array(repeating: weightDecay, count: 10),
                     nesterov: nesterov)
      #expect(Reference.maxRelativeDifference(p, expected) < 1e-15, "step \(step)")
    }
    #expect(sgd.state.step == 5)
  }

  @Test func decayMaskLeavesBiasesAlone() throws {
    let mask = DecayMask(decayed: [0..<4, 6..<9], count: 10)
    #expect(mask.segments.map(\.range) == [0..<4, 4..<6, 6..<9, 9..<10])
    #expect(mask.segments.map(\.decays) == [true, false, true, false])
    var p = Reference.random(10, seed: 2)
    var expected = p, v = [Double](repeating: 0, count: 10)
    var sgd = SGD<Double>(learningRate: 0.1, momentum: 0.9, weightDecay: 0.5, decayMask: mask)
    let wd = (0..<10).map { (0..<4).contains($0) || (6..<9).contains($0) ? 0.5 : 0 }
    for step in 0..<3 {
      let g = Reference.random(10, seed: 200 + UInt64(step))
      try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try sgd.step(parameters: pb, gradients: $0) } }
      Self.reference(p: &expected, v: &v, g: g, lr: 0.1, mu: 0.9, wd: wd, nesterov: false)
    }
    #expect(Reference.maxRelativeDifference(p, expected) < 1e-15)
  }

  /// Gradient descent on f(p) = 1/2 sum a_i (p_i - c_i)^2 with weight decay converges to the minimiser of
  /// f + wd/2 |p|^2: p_i = a_i c_i / (a_i + wd).
  @Test func convergesToTheRegularisedMinimum() throws {
    let a: [Double] = [1, 2, 0.5], c: [Double] = [3, -1, 2], wd = 0.1
    var p: [Double] = [0, 0, 0]
    var sgd = SGD<Double>(learningRate: 0.1, momentum: 0.9, weightDecay: wd, decayMask: .all(3))
    for _ in 0..<500 {
      let g = (0..<3).map { a[$0] * (p[$0] - c[$0]) }
      try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try sgd.step(parameters: pb, gradients: $0) } }
    }
    let expected = (0..<3).map { a[$0] * c[$0] / (a[$0] + wd) }
    #expect(Reference.maxRelativeDifference(p, expected) < 1e-10)
  }
}
