import TensorCore

/// The loss and gradient of the current batch at another point: what a line search asks for.
public typealias Evaluation<T> = (_ parameters: UnsafeBufferPointer<T>) throws -> (loss: Double, gradients: [T])

/// An update rule over one flat parameter buffer, with its state held explicitly (so checkpoints can save it).
public protocol Optimizer<T> {
  associatedtype T: OptimizerKernels
  /// The step size the next `step` uses; learning-rate schedules set it before each step.
  var learningRate: Double { get set }
  /// One update of `parameters`, given the batch loss `loss` and its gradient `gradients` there (the mean over the
  /// global batch). `evaluate` recomputes loss and gradient of the same batch at other points; first-order methods
  /// never call it, L-BFGS's line search does. `gradients` is valid until the first call of `evaluate`. `batch`
  /// names the batch (equal names: the same samples), for `knownEvaluation`.
  mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>, loss: Double,
                     batch: Int, evaluate: Evaluation<T>) throws
  /// The loss and gradient the last step already computed at the current parameters for batch `batch` (L-BFGS's
  /// last line-search point), so that the trainer need not compute them again; nil for most optimizers.
  func knownEvaluation(batch: Int) -> (loss: Double, gradients: [T])?
  /// Everything `step` remembers between calls, as named flat buffers plus a step count.
  var state: OptimizerState<T> { get set }
  /// e.g. "sgd(lr=0.1, momentum=0.9, nesterov, weight-decay=0.0005)"
  var summary: String { get }
}

extension Optimizer {
  public func knownEvaluation(batch: Int) -> (loss: Double, gradients: [T])? { nil }

  /// A first-order step (no line search).
  public mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>) {
    let name = summary
    try! step(parameters: parameters, gradients: gradients, loss: .nan, batch: 0) { _ in
      preconditionFailure("\(name) evaluated the loss during a first-order step")
    }
  }
}

/// An optimizer's memory: a step count and named buffers shaped like the parameters (or smaller).
public struct OptimizerState<T: Scalar>: Equatable {
  public var step: Int
  public var buffers: [String: [T]]
  public init(step: Int = 0, buffers: [String: [T]] = [:]) {
    self.step = step
    self.buffers = buffers
  }
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

  /// Runs `body` on each segment with the decay that applies there (wd or 0).
  func forEachSegment(weightDecay wd: Double, _ body: (_ offset: Int, _ count: Int, _ decay: Double) -> Void) {
    for (range, decays) in segments { body(range.lowerBound, range.count, decays ? wd : 0) }
  }
}
