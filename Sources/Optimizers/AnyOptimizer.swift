import TensorCore

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

  /// A batch was skipped: no update (a distributed step still meets its peers).
  public mutating func skipStep() throws {
    if firstOrder != nil { try firstOrder!.skipStep() }
  }

  /// The loss and gradient the last line search computed at the current parameters for `batch`, if any.
  public func evaluatedTrialPoint(batch: Int) -> (loss: Double, gradients: [T])? { lineSearch?.evaluatedTrialPoint(batch: batch) }
}
