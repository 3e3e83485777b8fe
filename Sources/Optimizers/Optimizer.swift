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
  /// (The update rules themselves never throw; a wrapper that distributes the step, such as the ZeRO-1 step, may.)
  mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>, range: Range<Int>) throws
  /// A batch was skipped (`--on-nan skip-batch`): no update. A distributed step still meets its peers here.
  mutating func skipStep() throws
}

extension FirstOrderOptimizer {
  /// One step of every parameter.
  public mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>) throws {
    try step(parameters: parameters, gradients: gradients, range: 0..<parameters.count)
  }

  public mutating func skipStep() throws {}
}

/// The loss and gradient of the current batch at another parameter vector: what a line search asks for.
public typealias Objective<T> = (_ parameters: UnsafeBufferPointer<T>) throws -> (loss: Double, gradients: [T])

/// An update rule that searches along a direction, evaluating the batch's loss and gradient at trial points.
public protocol LineSearchOptimizer<T>: Optimizer {
  /// One update of `parameters`, given the batch loss `loss` and its gradient `gradients` there. `objective`
  /// evaluates the same batch at other points (`gradients` is valid until its first call). `batch` names the batch
  /// (equal names: the same samples), for `evaluatedTrialPoint`.
  mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>, loss: Double,
                     batch: Int, objective: Objective<T>) throws
  /// The loss and gradient the last step already computed at the current parameters for batch `batch` (the accepted
  /// line-search point), so that the trainer need not compute them again; nil when there is none.
  func evaluatedTrialPoint(batch: Int) -> (loss: Double, gradients: [T])?
  /// Why the last step found the optimum reached (the optimizer's tolerances), nil while it goes on.
  var converged: String? { get }
}
