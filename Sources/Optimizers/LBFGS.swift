import Foundation
import RealModule
import TensorCore

/// Limited-memory BFGS: the direction is -H g, with H the BFGS inverse-Hessian approximation built from the last
/// `history` pairs (s, y) = (t d, change of gradient) by the two-loop recursion, H0 = (s.y / y.y) I; the step length
/// comes from a line search. L2 weight decay wd adds (wd/2) ||p||^2 to the objective (and wd p to its gradient),
/// so the line search sees the same function the gradient describes.
///
/// One `step` is one iteration of `torch.optim.LBFGS(max_iter=1, max_eval=26, history_size=history,
/// line_search_fn="strong_wolfe")`, with its rules: the very first iteration tries t = min(1, 1/|g|_1) lr, later ones
/// t = lr; no step when max |g| <= 1e-7; pairs with s.y <= 1e-10 are not kept; the strong-Wolfe search brackets, then
/// zooms by cubic interpolation, taking a point within 10% of the bracket's end once and moving it 10% inside the
/// second time; it stops when the bracket is shorter than 1e-9 / max |d| or after 25 evaluations beyond the first,
/// and returns the lowest point found. Where dpt differs, and why:
/// - When -H g is not a descent direction (g.d > -1e-9), PyTorch ends the step and would repeat it unchanged on the
///   next call; dpt forgets the pairs and searches along -g (with t = lr).
/// - When the search finds no lower point (it returns t = 0), dpt also forgets the pairs; PyTorch keeps them.
/// - The pairs are formed from the gradient the search returned at the new point, for the same batch (PyTorch takes
///   the next call's gradient, which on mini-batches is another batch's); full-batch, the two are the same.
/// - `backtracking` (halve t until Armijo holds, at most 25 evaluations) has no PyTorch counterpart;
///   PyTorch's `line_search_fn=None` (a fixed step) is not offered.
///
/// Under mpirun every evaluation all-reduces the loss and the gradient, so every rank computes the same direction
/// and the same line search: the identical step.
public struct LBFGS<T: OptimizerKernels>: LineSearchOptimizer {
  /// The trial step length of each line search (1 is natural for a quasi-Newton direction; the very first step, with
  /// no curvature pairs yet, tries min(1, 1/|g|_1) lr).
  public var learningRate: Double
  public let history: Int
  public let lineSearch: LineSearch
  public let weightDecay: Double
  public let decayMask: DecayMask
  /// PyTorch's defaults: the line search's evaluations beyond the first (max_ls), tolerance_grad, tolerance_change.
  public static var maxLineSearchIterations: Int { 25 }
  public static var gradientTolerance: Double { 1e-7 }
  public static var changeTolerance: Double { 1e-9 }
  public var state = State()

  /// Iterations taken (PyTorch's n_iter) and the curvature pairs (s, y), oldest first.
  public struct State: Equatable {
    public var step = 0
    public var s: [[T]] = []
    public var y: [[T]] = []
  }

  var known: (batch: Int, loss: Double, gradients: [T])?
  /// Why the last step found the parameters converged (PyTorch's tolerances), nil while it goes on.
  public private(set) var converged: String?

  public init(learningRate: Double = 1, history: Int = 100, lineSearch: LineSearch = .strongWolfe,
              weightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0 && history >= 1 && weightDecay >= 0, "L-BFGS's settings")
    self.learningRate = learningRate
    self.history = history
    self.lineSearch = lineSearch
    self.weightDecay = weightDecay
    self.decayMask = decayMask
  }

  public func evaluatedTrialPoint(batch: Int) -> (loss: Double, gradients: [T])? {
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

  /// A point of the line search: step length t, objective f (regularized) and its gradient g, g.d, and the batch's
  /// own loss and gradient there (what the trainer reuses).
  typealias Point = (t: Double, f: Double, gtd: Double, g: [T], raw: Double, rawG: [T])

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g0: UnsafeBufferPointer<T>,
                            loss: Double, batch: Int, objective: Objective<T>) throws {
    let n = p.count
    var g = Array(g0)
    let f0 = regularized(loss, &g, at: UnsafeBufferPointer(p))
    known = nil
    converged = nil
    let gMax = Double(T.maxMagnitude(g, count: n))
    guard gMax > Self.gradientTolerance else {  // optimal: PyTorch does nothing
      converged = "the gradient's largest entry \(String(format: "%.3g", Double(gMax))) is at most tolerance_grad \(Self.gradientTolerance)"
      return
    }
    state.step += 1
    var d = direction(g)
    var gtd = dot(g, d)
    var reset = false
    if !(gtd < -Self.changeTolerance) {  // not a descent direction: forget the curvature pairs (PyTorch stops)
      forgetPairs()
      reset = true
      d = direction(g)
      gtd = dot(g, d)
      guard gtd < -Self.changeTolerance else {
        converged = "the directional derivative \(String(format: "%.3g", Double(gtd))) is above -tolerance_change \(Self.changeTolerance)"
        return
      }
    }
    let gradientL1 = T.sum(g.map { Swift.abs($0) }, count: n)
    let t0 = state.step == 1 && !reset ? min(1, 1 / gradientL1) * learningRate : learningRate

    // φ(t) = f(p + t d): one evaluation (all-reduced across ranks by the caller's closure).
    var trial = [T].zeros(n)
    func phi(_ t: Double) throws -> Point {
      trial.withUnsafeMutableBufferPointer { x in
        x.baseAddress!.copyScalars(from: p.baseAddress!, count: n)
        T.axpy(n, T(t), d, x.baseAddress!)
      }
      let r = try trial.withUnsafeBufferPointer { try objective($0) }
      var gt = r.gradients
      let f = trial.withUnsafeBufferPointer { regularized(r.loss, &gt, at: $0) }
      return (t, f.isFinite ? f : .infinity, dot(gt, d), gt, r.loss, r.gradients)
    }

    let start: Point = (0, f0, gtd, g, loss, Array(g0))
    let a: Point
    switch lineSearch {
    case .backtracking:
      a = try backtracking(t0: t0, start: start, phi)
    case .strongWolfe:
      a = try strongWolfe(t0: t0, start: start, dMax: Double(T.maxMagnitude(d, count: n)), phi)
    }
    guard a.t > 0 else {
      // No step length decreased the loss: stay, and start the curvature memory afresh. Along steepest descent (no
      // pairs to forget) that is the optimum to the precision of the arithmetic: the objective's rounding noise is
      // larger than any decrease left (which kernel the BLAS runs decides the last digits, so a tolerance of 1e-9
      // on a Float loss is met on one CPU and never on another).
      if state.s.isEmpty {
        converged = "no step along steepest descent lowered the objective (\(String(format: "%.6g", f0))): the optimum to \(T.self)'s precision"
      }
      forgetPairs()
      return
    }
    // The new point is exactly the accepted trial point p + t d as evaluated (the evaluation kept for the next step
    // must be the one at the parameters). s = t d, y = g_new - g, as PyTorch forms them.
    T.axpy(n, T(a.t), d, p.baseAddress!)
    var s = d
    T.scal(n, T(a.t), &s)
    var y = a.g
    T.axpy(n, -1, g, &y)
    if dot(y, s) > 1e-10 {
      state.s.append(s)
      state.y.append(y)
      if state.s.count > history {
        state.s.removeFirst()
        state.y.removeFirst()
      }
    }
    known = (batch, a.raw, a.rawG)
    // PyTorch's other two stopping rules: a step or a change of the objective below tolerance_change.
    let change = abs(a.t) * Double(T.maxMagnitude(d, count: n))
    if change <= Self.changeTolerance {
      converged = "the step's largest change \(String(format: "%.3g", Double(change))) is at most tolerance_change \(Self.changeTolerance)"
    } else if abs(a.f - f0) < Self.changeTolerance {
      converged = "the objective changed by \(String(format: "%.3g", Double(abs(a.f - f0)))), less than tolerance_change \(Self.changeTolerance)"
    }
  }

  mutating func forgetPairs() {
    state.s.removeAll()
    state.y.removeAll()
  }

  /// Armijo backtracking: halve t until f(t) <= f0 + c1 t g0.d (c1 = 1e-4); the start point (t = 0) when 25
  /// evaluations do not find one.
  func backtracking(t0: Double, start: Point, _ phi: (Double) throws -> Point) throws -> Point {
    var t = t0
    for _ in 0..<Self.maxLineSearchIterations {
      let e = try phi(t)
      if e.f <= start.f + 1e-4 * t * start.gtd { return e }
      t /= 2
    }
    return start
  }

  /// The strong Wolfe conditions f(t) <= f0 + c1 t g0.d and |g(t).d| <= c2 |g0.d| (c1 = 1e-4, c2 = 0.9), searched as
  /// `torch.optim.lbfgs._strong_wolfe` does (Nocedal & Wright, Algorithms 3.5 and 3.6, by way of minFunc): the point
  /// that satisfies them, else the lowest point of the last bracket (the start point, t = 0, when none was lower).
  func strongWolfe(t0: Double, start: Point, dMax: Double, _ phi: (Double) throws -> Point) throws -> Point {
    let c1 = 1e-4, c2 = 0.9, (f0, gtd0) = (start.f, start.gtd), maxIterations = Self.maxLineSearchIterations
    var t = t0
    var current = try phi(t)
    var previous = start
    var bracket: [Point] = []
    var done = false
    var iterations = 0
    while iterations < maxIterations {
      // PyTorch compares with the previous point only from the third evaluation on (ls_iter > 1).
      if current.f > f0 + c1 * t * gtd0 || (iterations > 1 && current.f >= previous.f) {
        bracket = [previous, current]
        break
      }
      if Swift.abs(current.gtd) <= -c2 * gtd0 {
        bracket = [current]
        done = true
        break
      }
      if current.gtd >= 0 {
        bracket = [previous, current]
        break
      }
      // Extrapolate: a cubic step beyond t, at least t + 0.01 (t - t_prev) and at most 10 t.
      let next = cubicMinimum(previous.t, previous.f, previous.gtd, t, current.f, current.gtd,
                              bounds: (t + 0.01 * (t - previous.t), t * 10))
      previous = current
      t = next
      current = try phi(t)
      iterations += 1
    }
    if iterations == maxIterations { bracket = [start, current] }

    // Zoom: refine the bracket until a point satisfies both conditions.
    func ordered() -> (low: Int, high: Int) { bracket[0].f <= bracket[bracket.count - 1].f ? (0, 1) : (1, 0) }
    var (low, high) = ordered()
    var insufficientProgress = false
    while !done && iterations < maxIterations {
      if Swift.abs(bracket[1].t - bracket[0].t) * dMax < Self.changeTolerance { break }
      var t = cubicMinimum(bracket[0].t, bracket[0].f, bracket[0].gtd, bracket[1].t, bracket[1].f, bracket[1].gtd)
      let (a, b) = (min(bracket[0].t, bracket[1].t), max(bracket[0].t, bracket[1].t))
      let margin = 0.1 * (b - a)
      if min(b - t, t - a) < margin {
        // Within 10% of an end: accepted once; the second time in a row (or at an end) moved 10% inside.
        if insufficientProgress || t >= b || t <= a {
          t = Swift.abs(t - b) < Swift.abs(t - a) ? b - margin : a + margin
          insufficientProgress = false
        } else {
          insufficientProgress = true
        }
      } else {
        insufficientProgress = false
      }
      let e = try phi(t)
      iterations += 1
      if e.f > f0 + c1 * t * gtd0 || e.f >= bracket[low].f {
        bracket[high] = e
        (low, high) = ordered()
      } else {
        if Swift.abs(e.gtd) <= -c2 * gtd0 {
          done = true
        } else if e.gtd * (bracket[high].t - bracket[low].t) >= 0 {
          bracket[high] = bracket[low]
        }
        bracket[low] = e
      }
    }
    return bracket[low]
  }

  /// The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to `bounds` (default: between x1 and
  /// x2); their midpoint when the cubic has no minimum. Written as PyTorch's `_cubic_interpolate`, branch for branch.
  func cubicMinimum(_ x1: Double, _ f1: Double, _ g1: Double, _ x2: Double, _ f2: Double, _ g2: Double,
                    bounds: (Double, Double)? = nil) -> Double {
    let (lower, upper) = bounds ?? (x1 <= x2 ? (x1, x2) : (x2, x1))
    let d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    let square = d1 * d1 - g1 * g2
    guard square >= 0, f1.isFinite, f2.isFinite else { return (lower + upper) / 2 }
    let d2 = square.squareRoot()
    let m = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                     : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    guard m.isFinite else { return (lower + upper) / 2 }
    return min(max(m, lower), upper)
  }

  public var summary: String {
    "lbfgs(lr=\(learningRate), history=\(history), \(lineSearch.rawValue), weight-decay=\(weightDecay))"
  }
}
