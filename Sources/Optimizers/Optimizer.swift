import TensorCore

/// What every optimizer offers the trainer: the learning rate a schedule sets, a summary for the run's header, and
/// its state in the form a checkpoint stores.
///
/// Two kinds build on it: `FirstOrderOptimizer` (one step from the gradient: SGD, Adagrad, RMSprop, Adam) and
/// `LineSearchOptimizer` (L-BFGS, which evaluates the batch's loss at trial points).
public protocol Optimizer<T> {
  associatedtype T: OptimizerKernels
  /// The step size the next step uses; learning-rate schedules set it before each step.
  var learningRate: Double { get set }
  /// e.g. "sgd(lr=0.1, momentum=0.9, nesterov, weight-decay=0.0005)"
  var summary: String { get }
  /// The optimizer's memory as a checkpoint stores it: the step count and named flat buffers.
  var savedState: SavedOptimizerState<T> { get }
  /// Continues from `saved`, which has the names and sizes of `savedState` (a buffer that starts empty, L-BFGS's
  /// curvature pairs, may hold any whole number of parameter vectors).
  mutating func restore(_ saved: SavedOptimizerState<T>)
}

/// A first-order update rule: one step over the flat parameter buffer, from the gradient there (the mean over the
/// global batch, the same on every rank).
public protocol FirstOrderOptimizer<T>: Optimizer {
  /// One step of the parameters in `range` only, from the gradients there (`parameters` and `gradients` are the
  /// whole buffers; the state outside `range` is left as it is). A sharded step: each rank of a host updates its
  /// own part of parameters they share. Called once per step: the step count advances.
  mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>, range: Range<Int>)
}

extension FirstOrderOptimizer {
  /// One step of every parameter.
  public mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>) {
    step(parameters: parameters, gradients: gradients, range: 0..<parameters.count)
  }
}

/// The loss and gradient of the current batch at another parameter vector: what a line search asks for.
public typealias Objective<T> = (_ parameters: UnsafeBufferPointer<T>) throws -> (loss: Double, gradients: [T])

/// An update rule that searches along a direction, evaluating the batch's loss and gradient at trial points.
public protocol LineSearchOptimizer<T>: Optimizer {
  /// One update of `parameters`, given the batch loss `loss` and its gradient `gradients` there. `objective`
  /// evaluates the same batch at other points (`gradients` is valid until its first call). `batch` names the batch
  /// (equal names: the same samples), for `knownEvaluation`.
  mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>, loss: Double,
                     batch: Int, objective: Objective<T>) throws
  /// The loss and gradient the last step already computed at the current parameters for batch `batch` (the accepted
  /// line-search point), so that the trainer need not compute them again; nil when there is none.
  func knownEvaluation(batch: Int) -> (loss: Double, gradients: [T])?
}

/// An optimizer's memory as a checkpoint stores it: a step count and named buffers, in a fixed order.
public struct SavedOptimizerState<T: Scalar>: Equatable {
  public var step: Int
  public var buffers: [Buffer]

  public struct Buffer: Equatable {
    public var name: String
    public var values: [T]
    public init(_ name: String, _ values: [T]) {
      self.name = name
      self.values = values
    }
  }

  public init(step: Int, buffers: [Buffer] = []) {
    self.step = step
    self.buffers = buffers
  }

  /// The values of the buffer `name` (empty when there is none).
  public subscript(name: String) -> [T] { buffers.first { $0.name == name }?.values ?? [] }
}

/// Which parameters the weight decay applies to: every parameter (PyTorch's default), or all but the biases
/// (the convention of ridge regression, whose penalty leaves the intercept out).
public struct DecayMask: Equatable, Sendable {
  /// Ranges of the flat buffer that are decayed; the rest is not.
  public var decayed: [Range<Int>]
  public let count: Int

  public static func all(_ count: Int) -> DecayMask { DecayMask(decayed: [0..<count], count: count) }

  public init(decayed: [Range<Int>], count: Int) {
    self.decayed = decayed
    self.count = count
  }

  /// The buffer split into consecutive ranges, each with whether it decays.
  public var segments: [(range: Range<Int>, decays: Bool)] {
    var out: [(Range<Int>, Bool)] = []
    var at = 0
    for r in decayed.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
      if r.lowerBound > at { out.append((at..<r.lowerBound, false)) }
      out.append((r, true))
      at = r.upperBound
    }
    if at < count { out.append((at..<count, false)) }
    return out
  }

  /// The segments cut to `range` (the empty ones left out).
  public func segments(within range: Range<Int>) -> [(range: Range<Int>, decays: Bool)] {
    segments.compactMap { s in
      let r = s.range.clamped(to: range)
      return r.isEmpty ? nil : (r, s.decays)
    }
  }

  /// Runs `body` on each segment within `range` with the decay that applies there (wd or 0).
  func forEachSegment(weightDecay wd: Double, within range: Range<Int>,
                      _ body: (_ offset: Int, _ count: Int, _ decay: Double) -> Void) {
    for (r, decays) in segments(within: range) { body(r.lowerBound, r.count, decays ? wd : 0) }
  }
}

/// p *= 1 - lr lambda over the decayed parameters within `range` (decoupled weight decay: SGDW, AdamW).
func applyDecoupledDecay<T: OptimizerKernels>(_ p: UnsafeMutableBufferPointer<T>, rate: Double, learningRate: Double,
                                             mask: DecayMask, range: Range<Int>) {
  guard rate > 0 else { return }
  mask.forEachSegment(weightDecay: rate, within: range) { o, n, lambda in
    if lambda > 0 { T.scal(n, T(1 - learningRate * lambda), Tensor.base(p) + o) }
  }
}

/// ", weight-decay=0.0005" and ", decoupled-weight-decay=0.01" when set: the decays of a summary (the L2 decay is
/// always shown, so that a run's header says what it used).
func decaySummary(_ weightDecay: Double, _ decoupled: Double) -> String {
  ", weight-decay=\(weightDecay)" + (decoupled > 0 ? ", decoupled-weight-decay=\(decoupled)" : "")
}

/// An optimizer of either kind, as a trainer holds it: exactly one of the two is set. (Two optionals rather than an
/// enum: a mutating step through `firstOrder!` updates the buffers in place, where an enum's payload would be copied
/// out, and its arrays with it.)
public struct AnyOptimizer<T: OptimizerKernels> {
  public var firstOrder: (any FirstOrderOptimizer<T>)?
  public var lineSearch: (any LineSearchOptimizer<T>)?

  public init(_ o: any FirstOrderOptimizer<T>) { firstOrder = o }
  public init(_ o: any LineSearchOptimizer<T>) { lineSearch = o }

  var base: any Optimizer<T> { firstOrder ?? lineSearch! }

  public var learningRate: Double {
    get { base.learningRate }
    set { if firstOrder != nil { firstOrder!.learningRate = newValue } else { lineSearch!.learningRate = newValue } }
  }

  public var summary: String { base.summary }
  public var savedState: SavedOptimizerState<T> { base.savedState }

  public mutating func restore(_ saved: SavedOptimizerState<T>) {
    if firstOrder != nil { firstOrder!.restore(saved) } else { lineSearch!.restore(saved) }
  }

  /// The loss and gradient the last line search computed at the current parameters for `batch`, if any.
  public func knownEvaluation(batch: Int) -> (loss: Double, gradients: [T])? { lineSearch?.knownEvaluation(batch: batch) }
}
