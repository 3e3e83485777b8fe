import TensorCore

/// An update rule over one flat parameter buffer, with its state held explicitly (so checkpoints can save it).
public protocol Optimizer<T> {
  associatedtype T: OptimizerKernels
  /// The step size the next `step` uses; learning-rate schedules set it before each step.
  var learningRate: Double { get set }
  /// One update of `parameters` along `gradients` (the gradient of the mean loss over the global batch).
  mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>)
  /// Everything `step` remembers between calls, as named flat buffers plus a step count.
  var state: OptimizerState<T> { get set }
  /// e.g. "sgd(lr=0.1, momentum=0.9, nesterov, weight-decay=0.0005)"
  var summary: String { get }
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

/// Which parameters the L2 weight decay applies to: every parameter (PyTorch's default), or all but the biases
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
}
