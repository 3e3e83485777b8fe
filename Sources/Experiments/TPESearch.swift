import Foundation
import TensorCore
import _Support

/// The tree-structured Parzen estimator (Bergstra, Bardenet, Bengio and Kégl, NeurIPS 2011), as Optuna's
/// `TPESampler` runs it by default (`--search tpe --samples N`).
///
/// The first `startup` settings are drawn at random, as `RandomSearch` draws them. After that, the settings with
/// results are split by their score (the mean over their seeds of the last epoch's validation score, as
/// `SearchResult.score` has it; a diverged or failed setting scores worst): the best `gamma` of them are "good", the
/// rest "bad". For each axis on its own, a Parzen estimator (a mixture of one truncated normal per observation and
/// a prior over the whole range, in log space for a log-uniform axis; counts plus one for a list) is fitted to each
/// group, `candidates` values are drawn from the good one, and the one with the largest ratio l(x) / g(x) is
/// proposed. Its random state is kept in sweep.json, so `--resume` continues the same search.
public struct TPESearch: Searcher {
  public static let name = "tpe"
  public let axes: [SweepAxis]
  public let samples: Int
  public let seed: UInt64
  public private(set) var proposed = 0
  var rng: RandomSource

  /// Random settings before the estimator takes over (Optuna's n_startup_trials).
  public static let startup = 10
  /// The share of the settings with results called good (Hyperopt's 0.25; Optuna's default is 0.1 of up to 250),
  /// at least one and at most 25.
  public static let gamma = 0.25
  /// Values drawn from the good estimator, of which the best ratio is proposed (Optuna's n_ei_candidates).
  public static let candidates = 24

  public init(axes: [SweepAxis], samples: Int?, seed: UInt64) throws {
    guard let samples else { throw SweepProblem.searchNeedsSamples(search: Self.name) }
    (self.axes, self.samples, self.seed) = (axes, samples, seed)
    rng = RandomSource(seed: seed, stream: 0x7BE5_EA6C)
  }

  public var budget: Int? { samples }

  public mutating func next(history: [SearchResult]) -> [(String, String)]? {
    guard proposed < samples else { return nil }
    proposed += 1
    let scored = Self.settingScores(history)
    guard scored.count >= Self.startup else {
      return axes.map { ($0.option, Self.random($0, &rng)) }
    }
    let ranked = scored.sorted { $0.score > $1.score }
    let good = min(25, max(1, Int((Self.gamma * Double(ranked.count)).rounded(.up))))
    return axes.map { axis in
      let below = ranked.prefix(good).compactMap { $0.values[axis.option] }
      let above = ranked.dropFirst(good).compactMap { $0.values[axis.option] }
      return (axis.option, Self.propose(axis, good: below, bad: above, &rng))
    }
  }

  /// Each setting that has results: its values by option, and the mean of its seeds' scores (-infinity for a seed
  /// without one: it diverged or failed).
  static func settingScores(_ history: [SearchResult]) -> [(values: [String: String], score: Double)] {
    var order: [String] = [], sums: [String: (values: [String: String], total: Double, count: Int)] = [:]
    for r in history {
      let key = r.setting.values.map { $0.joined(separator: "=") }.joined(separator: ";")
      let s: Double
      if case .diverged = r.status { s = -.infinity } else { s = r.score.flatMap { $0.isFinite ? $0 : nil } ?? -.infinity }
      if sums[key] == nil {
        order.append(key)
        sums[key] = (Dictionary(r.setting.values.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a }), 0, 0)
      }
      sums[key]!.total += s
      sums[key]!.count += 1
    }
    return order.map { (sums[$0]!.values, sums[$0]!.total / Double(sums[$0]!.count)) }
  }

  /// A value of `axis` drawn as `RandomSearch` draws it.
  static func random(_ axis: SweepAxis, _ rng: inout RandomSource) -> String {
    switch axis.values {
    case .list(let v): return v[rng.index(below: v.count)]
    case .uniform(let a, let b): return SweepPlan.format(rng.uniform(a, b))
    case .logUniform(let a, let b): return SweepPlan.format(exp(rng.uniform(log(a), log(b))))
    }
  }

  /// The candidate of largest l(x) / g(x) among those drawn from l.
  static func propose(_ axis: SweepAxis, good: [String], bad: [String], _ rng: inout RandomSource) -> String {
    switch axis.values {
    case .list(let v):
      let l = Categorical(values: v, observed: good), g = Categorical(values: v, observed: bad)
      var best = (index: 0, ratio: -Double.infinity)
      for _ in 0..<candidates {
        let i = l.sample(&rng)
        let ratio = log(l.p[i]) - log(g.p[i])
        if ratio > best.ratio { best = (i, ratio) }
      }
      return v[best.index]
    case .uniform(let a, let b), .logUniform(let a, let b):
      let isLog: Bool
      if case .logUniform = axis.values { isLog = true } else { isLog = false }
      let (lo, hi) = isLog ? (log(a), log(b)) : (a, b)
      func t(_ s: String) -> Double? { Double(s).flatMap { isLog ? ($0 > 0 ? log($0) : nil) : $0 } }
      let l = Parzen(observed: good.compactMap(t), low: lo, high: hi), g = Parzen(observed: bad.compactMap(t), low: lo, high: hi)
      var best = (x: (lo + hi) / 2, ratio: -Double.infinity)
      for _ in 0..<candidates {
        let x = l.sample(&rng)
        let ratio = l.logDensity(x) - g.logDensity(x)
        if ratio > best.ratio { best = (x, ratio) }
      }
      return SweepPlan.format(isLog ? exp(best.x) : best.x)
    }
  }

  /// A list axis's estimator: each value's count among the observations plus one (the prior), normalised.
  struct Categorical {
    let p: [Double]
    init(values: [String], observed: [String]) {
      let counts = values.map { v in 1 + Double(observed.filter { $0 == v }.count) }
      let total = counts.reduce(0, +)
      p = counts.map { $0 / total }
    }
    func sample(_ rng: inout RandomSource) -> Int {
      var u = rng.uniform()
      for (i, q) in p.enumerated() {
        if u < q { return i }
        u -= q
      }
      return p.count - 1
    }
  }

  /// A numeric axis's estimator on [low, high]: an equal-weight mixture of normals truncated to the range, one at
  /// each observation with the larger distance to its neighbours (the range's ends included) as its width, clipped
  /// to [range / min(100, n + 1), range], and the prior: one at the middle as wide as the range.
  struct Parzen {
    let means: [Double], widths: [Double], low: Double, high: Double
    init(observed: [Double], low: Double, high: Double) {
      let range = high - low
      let sorted = observed.map { min(max($0, low), high) }.sorted()
      var widths: [Double] = []
      for (i, m) in sorted.enumerated() {
        let left = m - (i == 0 ? low : sorted[i - 1]), right = (i == sorted.count - 1 ? high : sorted[i + 1]) - m
        widths.append(min(max(max(left, right), range / Double(min(100, sorted.count + 1))), range))
      }
      (means, self.widths, self.low, self.high) = (sorted + [(low + high) / 2], widths + [range], low, high)
    }

    func sample(_ rng: inout RandomSource) -> Double {
      let k = rng.index(below: means.count)
      for _ in 0..<100 {
        let x = means[k] + widths[k] * rng.normal()
        if x >= low && x <= high { return x }
      }
      return min(max(means[k], low), high)
    }

    func logDensity(_ x: Double) -> Double {
      func phi(_ z: Double) -> Double { 0.5 * (1 + erf(z / 2.0.squareRoot())) }
      var total = 0.0
      for (m, s) in zip(means, widths) {
        let z = (x - m) / s
        let mass = max(phi((high - m) / s) - phi((low - m) / s), 1e-12)
        total += exp(-0.5 * z * z) / (s * (2 * Double.pi).squareRoot() * mass)
      }
      return log(total / Double(means.count))
    }
  }
}
