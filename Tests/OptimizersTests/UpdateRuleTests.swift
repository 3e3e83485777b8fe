import Optimizers
import Testing
import TensorCore
import _TestSupport

/// f(p) = 1/2 sum_i a_i (p_i - c_i)^2: convex, with curvatures spread over two orders of magnitude.
struct Quadratic {
  let a: [Double] = [10, 1, 0.1, 3, 0.5]
  let c: [Double] = [1, -2, 3, 0.5, -1]
  func loss(_ p: [Double]) -> Double {
    var f = 0.0
    for i in 0..<5 { let d = p[i] - c[i]; f += 0.5 * a[i] * d * d }
    return f
  }
  func gradient(_ p: [Double]) -> [Double] { (0..<5).map { a[$0] * (p[$0] - c[$0]) } }
  var minimum: Double { 0 }
}

func run<O: FirstOrderOptimizer>(_ o: inout O, steps: Int, from start: [Double], _ f: Quadratic = Quadratic()) throws -> [Double]
  where O.T == Double
{
  var p = start
  for _ in 0..<steps {
    let g = f.gradient(p)
    try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try o.step(parameters: pb, gradients: $0) } }
  }
  return p
}

func run<O: LineSearchOptimizer>(_ o: inout O, steps: Int, from start: [Double], _ f: Quadratic = Quadratic()) throws
  -> [Double] where O.T == Double
{
  var p = start
  for _ in 0..<steps {
    let g = f.gradient(p)
    let loss = f.loss(p)
    try p.withUnsafeMutableBufferPointer { pb in
      try g.withUnsafeBufferPointer { gb in
        try o.step(parameters: pb, gradients: gb, loss: loss, batch: 0) { q in (f.loss(Array(q)), f.gradient(Array(q))) }
      }
    }
  }
  return p
}

@Suite struct UpdateRuleTests {
  let start: [Double] = [0, 0, 0, 0, 0]

  @Test func adagradFollowsItsRule() throws {
    var o = Adagrad<Double>(learningRate: 0.5, eps: 1e-10, weightDecay: 0.01, decayMask: .all(5))
    var p = start, G = [Double](repeating: 0, count: 5), expected = start
    let f = Quadratic()
    for _ in 0..<4 {
      let g = f.gradient(p)
      try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try o.step(parameters: pb, gradients: $0) } }
      for i in 0..<5 {
        let gi = f.gradient(expected)[i] + 0.01 * expected[i]
        G[i] += gi * gi
        expected[i] -= 0.5 * gi / (G[i].squareRoot() + 1e-10)
      }
      #expect(Reference.maxRelativeDifference(p, expected) < 1e-14)
    }
  }

  @Test(arguments: [0.0, 0.9])
  func rmspropFollowsItsRule(momentum: Double) throws {
    var o = RMSprop<Double>(learningRate: 0.01, alpha: 0.9, eps: 1e-8, momentum: momentum, decayMask: .all(5))
    var p = start, v = [Double](repeating: 0, count: 5), b = v, expected = start
    let f = Quadratic()
    for _ in 0..<4 {
      let g = f.gradient(p)
      try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try o.step(parameters: pb, gradients: $0) } }
      for i in 0..<5 {
        let gi = f.gradient(expected)[i]
        v[i] = 0.9 * v[i] + 0.1 * gi * gi
        let s = gi / (v[i].squareRoot() + 1e-8)
        if momentum > 0 { b[i] = momentum * b[i] + s; expected[i] -= 0.01 * b[i] } else { expected[i] -= 0.01 * s }
      }
      #expect(Reference.maxRelativeDifference(p, expected) < 1e-14)
    }
  }

  /// Adam with its bias correction written out; AdamW's decoupled decay shrinks p before the update.
  @Test(arguments: [(0.0, 0.0), (0.01, 0.0), (0.0, 0.1)])
  func adamFollowsItsRuleWithBiasCorrection(weightDecay: Double, decoupled: Double) throws {
    let (lr, b1, b2, eps) = (0.01, 0.9, 0.999, 1e-8)
    var o = Adam<Double>(learningRate: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: weightDecay,
                         decoupledWeightDecay: decoupled, decayMask: .all(5))
    var p = start.map { $0 + 0.5 }, m = [Double](repeating: 0, count: 5), v = m
    var expected = p
    let f = Quadratic()
    for t in 1...5 {
      let g = f.gradient(p)
      try p.withUnsafeMutableBufferPointer { pb in try g.withUnsafeBufferPointer { try o.step(parameters: pb, gradients: $0) } }
      let gradient = f.gradient(expected)  // at the current point, as PyTorch computes it before AdamW's shrink
      for i in 0..<5 {
        let gi = gradient[i] + weightDecay * expected[i]
        expected[i] *= 1 - lr * decoupled
        m[i] = b1 * m[i] + (1 - b1) * gi
        v[i] = b2 * v[i] + (1 - b2) * gi * gi
        let mHat = m[i] / (1 - Double.pow(b1, Double(t))), vHat = v[i] / (1 - Double.pow(b2, Double(t)))
        expected[i] -= lr * mHat / (vHat.squareRoot() + eps)
      }
      #expect(Reference.maxRelativeDifference(p, expected) < 1e-13, "step \(t)")
    }
    // The first step of Adam moves every coordinate by lr, whatever the gradient's scale: the bias correction.
    var fresh = Adam<Double>(learningRate: 0.01, decayMask: .all(2))
    var q: [Double] = [0, 0]
    let big: [Double] = [1000, -0.001]
    try q.withUnsafeMutableBufferPointer { qb in try big.withUnsafeBufferPointer { try fresh.step(parameters: qb, gradients: $0) } }
    #expect(abs(q[0] + 0.01) < 1e-9 && abs(q[1] - 0.01) < 1e-6)
  }

  /// Each optimizer reaches f < 1e-6 on the quadratic (minimum 0, curvatures 0.1 to 10) within its budget of steps.
  /// (RMSprop's normalised steps keep it oscillating at amplitude ~lr around the minimum: it needs the small lr.
  /// L-BFGS accepts unit quasi-Newton steps and converges superlinearly: 15 steps give 3.8e-6, and it stops at
  /// 1.2e-11, where g.d > -1e-9 (PyTorch's tolerance_change): torch.optim.LBFGS(max_iter=1, history_size=5,
  /// line_search_fn="strong_wolfe") in float64 takes the same points to 1e-15, stopping at the same loss.)
  @Test func eachReachesAStatedLoss() throws {
    let f = Quadratic()
    var sgd = SGD<Double>(learningRate: 0.05, momentum: 0.9, decayMask: .all(5))
    #expect(f.loss(try run(&sgd, steps: 800, from: start)) < 1e-6)
    var adagrad = Adagrad<Double>(learningRate: 1, decayMask: .all(5))
    #expect(f.loss(try run(&adagrad, steps: 800, from: start)) < 1e-6)
    var rmsprop = RMSprop<Double>(learningRate: 0.001, decayMask: .all(5))
    #expect(f.loss(try run(&rmsprop, steps: 8000, from: start)) < 1e-6)
    var rmspropMomentum = RMSprop<Double>(learningRate: 0.01, momentum: 0.9, decayMask: .all(5))
    #expect(f.loss(try run(&rmspropMomentum, steps: 2000, from: start)) < 1e-4)
    var adam = Adam<Double>(learningRate: 0.1, decayMask: .all(5))
    #expect(f.loss(try run(&adam, steps: 2000, from: start)) < 1e-6)
    for search in LineSearch.allCases {
      var lbfgs = LBFGS<Double>(history: 5, lineSearch: search, decayMask: .all(5))
      #expect(f.loss(try run(&lbfgs, steps: 40, from: start)) < 1e-10, "\(search)")
    }
  }

  /// The two-loop recursion with one pair equals the BFGS update of H0 = gamma I written as a matrix:
  /// H1 = (I - rho s y^T) H0 (I - rho y s^T) + rho s s^T, rho = 1 / y.s, gamma = s.y / y.y.
  @Test func twoLoopRecursionIsTheBFGSMatrix() {
    var o = LBFGS<Double>(history: 3, decayMask: .all(3))
    let s: [Double] = [0.5, -1, 0.25], y: [Double] = [1, -1.5, 0.75], g: [Double] = [0.3, 0.2, -0.9]
    o.restore(SavedOptimizerState(step: 1, buffers: [.init("s", s), .init("y", y)]))
    let d = o.direction(g)
    let sy = zip(s, y).reduce(0) { $0 + $1.0 * $1.1 }, yy = y.reduce(0) { $0 + $1 * $1 }
    let rho = 1 / sy, gamma = sy / yy
    var H = [[Double]](repeating: [0, 0, 0], count: 3)
    for i in 0..<3 {
      for j in 0..<3 {
        var v = 0.0
        for k in 0..<3 {
          let left = (i == k ? 1 : 0) - rho * s[i] * y[k]
          let right = (k == j ? 1 : 0) - rho * y[k] * s[j]
          v += left * gamma * right
        }
        H[i][j] = v + rho * s[i] * s[j]
      }
    }
    let expected = (0..<3).map { i in -(0..<3).reduce(0.0) { $0 + H[i][$1] * g[$1] } }
    #expect(Reference.maxRelativeDifference(d, expected) < 1e-14)
  }

  /// Rosenbrock's valley: L-BFGS with the strong-Wolfe search reaches the minimum (1, 1) to 1.3e-6, where
  /// g.d > -1e-9 ends it, at the point torch.optim.LBFGS(max_iter=1, history_size=10, line_search_fn="strong_wolfe")
  /// reaches in float64 from (-1.2, 1) in 100 steps: (0.9999993334076402, 0.9999986743824548).
  @Test func lbfgsOnRosenbrock() throws {
    func f(_ p: [Double]) -> Double { 100 * Double.pow(p[1] - p[0] * p[0], 2) + Double.pow(1 - p[0], 2) }
    func g(_ p: [Double]) -> [Double] {
      [-400 * p[0] * (p[1] - p[0] * p[0]) - 2 * (1 - p[0]), 200 * (p[1] - p[0] * p[0])]
    }
    var o = LBFGS<Double>(history: 10, decayMask: .all(2))
    var p: [Double] = [-1.2, 1]
    for _ in 0..<100 {
      let grad = g(p), loss = f(p)
      try p.withUnsafeMutableBufferPointer { pb in
        try grad.withUnsafeBufferPointer { gb in
          try o.step(parameters: pb, gradients: gb, loss: loss, batch: 0) { q in (f(Array(q)), g(Array(q))) }
        }
      }
    }
    #expect(abs(p[0] - 1) < 2e-6 && abs(p[1] - 1) < 2e-6, "\(p)")
    #expect(Reference.maxRelativeDifference(p, [0.9999993334076402, 0.9999986743824548]) < 1e-9, "\(p)")
  }

  @Test func schedules() {
    let base = 0.1
    let step = LearningRateSchedule(.step(everyEpochs: 2, gamma: 0.5))
    // Halved every 2 epochs of 5 steps: steps 0-9 are epochs 0-1, 10-19 epochs 2-3, 40 is epoch 8.
    #expect([0, 9, 10, 19, 20, 40].map { step.rate(base: base, step: $0, stepsPerEpoch: 5, totalSteps: 100) }
      == [0.1, 0.1, 0.05, 0.05, 0.025, 0.00625])
    let cosine = LearningRateSchedule(.cosine(minimum: 0.01))
    #expect(cosine.rate(base: base, step: 0, stepsPerEpoch: 10, totalSteps: 100) == 0.1)
    #expect(abs(cosine.rate(base: base, step: 50, stepsPerEpoch: 10, totalSteps: 100) - 0.055) < 1e-15)
    #expect(abs(cosine.rate(base: base, step: 100, stepsPerEpoch: 10, totalSteps: 100) - 0.01) < 1e-15)
    let warm = LearningRateSchedule(.constant, warmupEpochs: 2)
    #expect([0, 4, 9, 10, 50].map { warm.rate(base: base, step: $0, stepsPerEpoch: 5, totalSteps: 100) }
      .enumerated().allSatisfy { i, r in abs(r - [0.01, 0.05, 0.1, 0.1, 0.1][i]) < 1e-15 })
  }
}
