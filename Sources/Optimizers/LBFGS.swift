import RealModule
import TensorCore

/// How L-BFGS picks the step length along its direction d.
public enum LineSearch: String, CaseIterable, Sendable {
  /// Strong Wolfe conditions (c1 = 1e-4, c2 = 0.9): bracketing then zoom with safeguarded cubic interpolation
  /// (Nocedal & Wright, Algorithms 3.5 and 3.6; what `torch.optim.LBFGS(line_search_fn="strong_wolfe")` does).
  case strongWolfe = "strong-wolfe"
  /// Armijo backtracking: halve t until f(p + t d) <= f(p) + c1 t g.d.
  case backtracking
}

/// Limited-memory BFGS: the direction is -H g, with H the BFGS inverse-Hessian approximation built from the last
/// `history` pairs (s, y) = (step, change of gradient) by the two-loop recursion, H0 = (s.y / y.y) I; the step length
/// comes from a line search. L2 weight decay wd adds (wd/2) ||p||^2 to the objective (and wd p to its gradient),
/// so the line search sees the same function the gradient describes.
///
/// Under mpirun every evaluation all-reduces the loss and the gradient, so every rank computes the same direction
/// and the same line search: the identical step.
public struct LBFGS<T: OptimizerKernels>: LineSearchOptimizer {
  /// The first trial step length of each line search (1 is natural for a quasi-Newton direction; the first step,
  /// with no curvature pairs yet, tries min(1, 1/|g|_1) lr).
  public var learningRate: Double
  public let history: Int
  public let lineSearch: LineSearch
  public let weightDecay: Double
  public let decayMask: DecayMask
  public let maxEvaluations = 25
  /// Loss evaluations of the last step (including the first, unless it was known).
  public private(set) var evaluations = 0
  public var state = State()

  /// Steps taken and the curvature pairs (s, y), oldest first.
  public struct State: Equatable {
    public var step = 0
    public var s: [[T]] = []
    public var y: [[T]] = []
  }

  var known: (batch: Int, loss: Double, gradients: [T])?

  public init(learningRate: Double = 1, history: Int = 10, lineSearch: LineSearch = .strongWolfe,
              weightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0 && history >= 1 && weightDecay >= 0, "L-BFGS's settings")
    self.learningRate = learningRate
    self.history = history
    self.lineSearch = lineSearch
    self.weightDecay = weightDecay
    self.decayMask = decayMask
  }

  public func knownEvaluation(batch: Int) -> (loss: Double, gradients: [T])? {
    guard let known, known.batch == batch else { return nil }
    return (known.loss, known.gradients)
  }

  /// The curvature pairs, oldest first, as two flat buffers "s" and "y" (pairs x parameters).
  public var savedState: SavedOptimizerState<T> {
    SavedOptimizerState(step: state.step, buffers: [.init("s", state.s.flatMap { $0 }), .init("y", state.y.flatMap { $0 })])
  }

  public mutating func restore(_ saved: SavedOptimizerState<T>) {
    let n = decayMask.count
    func split(_ a: [T]) -> [[T]] {
      guard n > 0 else { return [] }
      return stride(from: 0, to: a.count, by: n).map { Array(a[$0..<$0 + n]) }
    }
    state = State(step: saved.step, s: split(saved["s"]), y: split(saved["y"]))
    known = nil
  }

  /// f + (wd/2) ||p_decayed||^2 and g + wd p_decayed.
  func regularized(_ loss: Double, _ g: inout [T], at p: UnsafeBufferPointer<T>) -> Double {
    guard weightDecay > 0 else { return loss }
    var penalty = 0.0
    g.withUnsafeMutableBufferPointer { g in
      decayMask.forEachSegment(weightDecay: weightDecay, within: 0..<decayMask.count) { o, n, wd in
        guard wd > 0 else { return }
        penalty += wd / 2 * T.dotDouble(n, Tensor.base(p) + o, Tensor.base(p) + o)
        T.axpy(n, T(wd), Tensor.base(p) + o, g.baseAddress! + o)
      }
    }
    return loss + penalty
  }

  func dot(_ a: [T], _ b: [T]) -> Double { T.dotDouble(a.count, a, b) }

  /// The search direction -H g from the stored curvature pairs, by the two-loop recursion (-g when there are none).
  public func direction(_ g: [T]) -> [T] {
    var q = g
    let (s, y) = (state.s, state.y)
    let k = s.count
    guard k > 0 else {
      T.scal(q.count, -1, &q)
      return q
    }
    var alpha = [Double](repeating: 0, count: k)
    var rho = [Double](repeating: 0, count: k)
    for i in stride(from: k - 1, through: 0, by: -1) {
      rho[i] = 1 / dot(y[i], s[i])
      alpha[i] = rho[i] * dot(s[i], q)
      T.axpy(q.count, T(-alpha[i]), y[i], &q)
    }
    let gamma = dot(s[k - 1], y[k - 1]) / dot(y[k - 1], y[k - 1])
    T.scal(q.count, T(gamma), &q)
    for i in 0..<k {
      let beta = rho[i] * dot(y[i], q)
      T.axpy(q.count, T(alpha[i] - beta), s[i], &q)
    }
    T.scal(q.count, -1, &q)
    return q
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g0: UnsafeBufferPointer<T>,
                            loss: Double, batch: Int, objective: Objective<T>) throws {
    let n = p.count
    var g = Array(g0)
    let f0 = regularized(loss, &g, at: UnsafeBufferPointer(p))
    evaluations = known?.batch == batch ? 0 : 1
    known = nil
    state.step += 1
    guard T.maxMagnitude(g, count: n) > 1e-12 else { return }  // at a stationary point
    var d = direction(g)
    var gtd = dot(g, d)
    if !(gtd < -1e-12) {  // not a descent direction: forget the curvature pairs
      state.s.removeAll()
      state.y.removeAll()
      d = direction(g)
      gtd = dot(g, d)
    }
    let gradientL1 = T.sum(g.map { Swift.abs($0) }, count: n)
    var t = state.s.isEmpty ? min(1, 1 / gradientL1) * learningRate : learningRate

    // φ(t) = f(p + t d): one evaluation (all-reduced across ranks by the caller's closure).
    var trial = [T].zeros(n)
    func phi(_ t: Double) throws -> (f: Double, g: [T], gtd: Double, raw: Double, rawG: [T]) {
      trial.withUnsafeMutableBufferPointer { x in
        x.baseAddress!.copyScalars(from: p.baseAddress!, count: n)
        T.axpy(n, T(t), d, x.baseAddress!)
      }
      evaluations += 1
      let r = try trial.withUnsafeBufferPointer { try objective($0) }
      var gt = r.gradients
      let f = trial.withUnsafeBufferPointer { regularized(r.loss, &gt, at: $0) }
      return (f.isFinite ? f : .infinity, gt, dot(gt, d), r.loss, r.gradients)
    }

    var accepted: (t: Double, f: Double, g: [T], raw: Double, rawG: [T])? = nil
    switch lineSearch {
    case .backtracking:
      while evaluations < maxEvaluations {
        let e = try phi(t)
        if e.f <= f0 + 1e-4 * t * gtd {
          accepted = (t, e.f, e.g, e.raw, e.rawG)
          break
        }
        t /= 2
      }
    case .strongWolfe:
      accepted = try strongWolfe(t0: t, f0: f0, gtd0: gtd, dMax: Double(T.maxMagnitude(d, count: n)), phi)
    }
    guard let a = accepted else {
      // No step length decreased the loss enough: stay, and start the curvature memory afresh.
      state.s.removeAll()
      state.y.removeAll()
      return
    }
    // The new point is exactly the accepted trial point p + t d as evaluated (recomputing it could differ in the
    // last bit, and the evaluation kept for the next step must be the one at the parameters): s = p_new - p.
    trial.withUnsafeMutableBufferPointer { x in
      x.baseAddress!.copyScalars(from: p.baseAddress!, count: n)
      T.axpy(n, T(a.t), d, x.baseAddress!)
    }
    var step = trial
    T.axpy(n, -1, UnsafePointer(p.baseAddress!), &step)
    trial.withUnsafeBufferPointer { p.baseAddress!.copyScalars(from: $0.baseAddress!, count: n) }
    var change = a.g
    T.axpy(n, -1, g, &change)
    if dot(step, change) > 1e-10 {
      state.s.append(step)
      state.y.append(change)
      if state.s.count > history {
        state.s.removeFirst()
        state.y.removeFirst()
      }
    }
    known = (batch, a.raw, a.rawG)
  }

  /// Nocedal & Wright's line search for the strong Wolfe conditions:
  /// f(t) <= f0 + c1 t g0.d and |g(t).d| <= c2 |g0.d|.
  func strongWolfe(
    t0: Double, f0: Double, gtd0: Double, dMax: Double,
    _ phi: (Double) throws -> (f: Double, g: [T], gtd: Double, raw: Double, rawG: [T])
  ) throws -> (t: Double, f: Double, g: [T], raw: Double, rawG: [T])? {
    let c1 = 1e-4, c2 = 0.9
    typealias Point = (t: Double, f: Double, gtd: Double, g: [T], raw: Double, rawG: [T])
    var previous: Point = (0, f0, gtd0, [], f0, [])
    var t = t0
    var evaluationsLeft = maxEvaluations
    var lo: Point, hi: Point
    bracket: while true {
      guard evaluationsLeft > 0 else { return nil }
      evaluationsLeft -= 1
      let e = try phi(t)
      let current: Point = (t, e.f, e.gtd, e.g, e.raw, e.rawG)
      if e.f > f0 + c1 * t * gtd0 || (previous.t > 0 && e.f >= previous.f) {
        (lo, hi) = (previous, current)
        break bracket
      }
      if Swift.abs(e.gtd) <= -c2 * gtd0 { return (t, e.f, e.g, e.raw, e.rawG) }
      if e.gtd >= 0 {
        (lo, hi) = (current, previous)
        break bracket
      }
      // Extrapolate: a cubic step beyond t, at least 1.01 t and at most 10 t.
      let next = cubicMinimum(previous.t, previous.f, previous.gtd, t, e.f, e.gtd,
                              bounds: (t + 0.01 * (t - previous.t), t * 10))
      previous = current
      t = next
    }
    // Zoom between lo (satisfies sufficient decrease, lowest f so far) and hi.
    while evaluationsLeft > 0 {
      if Swift.abs(hi.t - lo.t) * dMax < 1e-12 { break }
      let (a, b) = (min(lo.t, hi.t), max(lo.t, hi.t))
      var t = hi.f.isFinite ? cubicMinimum(lo.t, lo.f, lo.gtd, hi.t, hi.f, hi.gtd, bounds: (a, b)) : (a + b) / 2
      // Keep away from the interval's ends (at least 10% inside).
      if min(b - t, t - a) < 0.1 * (b - a) { t = (a + b) / 2 }
      evaluationsLeft -= 1
      let e = try phi(t)
      let current: Point = (t, e.f, e.gtd, e.g, e.raw, e.rawG)
      if e.f > f0 + c1 * t * gtd0 || e.f >= lo.f {
        hi = current
      } else {
        if Swift.abs(e.gtd) <= -c2 * gtd0 { return (t, e.f, e.g, e.raw, e.rawG) }
        if e.gtd * (hi.t - lo.t) >= 0 { hi = lo }
        lo = current
      }
    }
    // Out of evaluations: the best point that decreased the loss enough, if any.
    guard lo.t > 0, lo.f <= f0 + c1 * lo.t * gtd0 else { return nil }
    return (lo.t, lo.f, lo.g, lo.raw, lo.rawG)
  }

  /// The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to `bounds` (their midpoint when the
  /// cubic has no minimum).
  func cubicMinimum(_ x1: Double, _ f1: Double, _ g1: Double, _ x2: Double, _ f2: Double, _ g2: Double,
                    bounds: (Double, Double)) -> Double {
    let (lower, upper) = bounds.0 <= bounds.1 ? bounds : (bounds.1, bounds.0)
    let d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    let square = d1 * d1 - g1 * g2
    guard square >= 0, f1.isFinite, f2.isFinite else { return (lower + upper) / 2 }
    let d2 = square.squareRoot() * (x2 >= x1 ? 1 : -1)
    let m = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    guard m.isFinite else { return (lower + upper) / 2 }
    return min(max(m, lower), upper)
  }

  public var summary: String {
    "lbfgs(lr=\(learningRate), history=\(history), \(lineSearch.rawValue)\(weightDecay > 0 ? ", weight-decay=\(weightDecay)" : ""))"
  }
}
